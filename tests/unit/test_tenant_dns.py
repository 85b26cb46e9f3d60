"""DNS records for a commune: the DKIM TXT value is parsed from opendkim-genkey output."""

from __future__ import annotations

import pytest

from tnoctl.cli.tenant_dns import dkim_txt_value, records_for
from tnoctl.errors import OperationFailed

GENKEY_TXT = """tno2026._domainkey\tIN\tTXT\t( "v=DKIM1; h=sha256; k=rsa; "
\t  "p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAx"
\t  "yz123" )  ; ----- DKIM key tno2026 for givors.test
"""


def test_dkim_value_joins_chunks():
    expected = "v=DKIM1; h=sha256; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAxyz123"
    assert dkim_txt_value(GENKEY_TXT) == expected


def test_dkim_value_without_key_is_an_error():
    with pytest.raises(OperationFailed):
        dkim_txt_value('( "v=DKIM1; k=rsa; " )')


def test_records_for_a_domain():
    records = records_for("givors.test", "mail.givors.test", "office.givors.test", "v=DKIM1; p=abc")
    by_name = {(r["name"], r["type"]): r["value"] for r in records}
    assert by_name[("givors.test.", "MX")] == "10 mail.givors.test."
    assert by_name[("givors.test.", "TXT")] == "v=spf1 mx -all"
    assert by_name[("tno2026._domainkey.givors.test.", "TXT")] == "v=DKIM1; p=abc"
    assert by_name[("_dmarc.givors.test.", "TXT")].startswith("v=DMARC1; p=quarantine")
    assert ("office.givors.test.", "CNAME") in by_name
