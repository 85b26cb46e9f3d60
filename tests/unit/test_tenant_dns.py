"""DNS records for a commune: the DKIM TXT value is parsed from opendkim-genkey output."""

from __future__ import annotations

import pytest

from tnoctl.actions.tenant_dns import dkim_txt_value, records_for
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


def test_dkim_keys_are_read_over_env_ssh_one_cat_per_domain(tmp_path):
    from tests.unit.fakes import FakeSsh, make_env
    from tnoctl import paths
    from tnoctl.actions.tenant_dns import TenantDnsRequest, dkim_path, run

    ssh = FakeSsh(results={})
    env = make_env(paths.LAB_INVENTORY, tmp_path, ssh=ssh)
    tenant = env.inventory.tenant("givors")
    ssh.results[tenant.placement.mail] = (0, GENKEY_TXT)
    outcome = run(env, TenantDnsRequest("givors"))
    assert ssh.commands == [(tenant.placement.mail, ("cat", dkim_path(d))) for d in tenant.domains]
    assert dkim_path("givors.test") == "/etc/opendkim/keys/givors.test/tno2026.txt"
    assert any(r["type"] == "TXT" and r["value"].startswith("v=DKIM1") for r in outcome.data["records"])
    assert any(line.startswith("tno2026._domainkey.") for line in outcome.lines)


def test_missing_dkim_key_is_one_error_line(tmp_path):
    from tests.unit.fakes import FakeSsh, make_env
    from tnoctl import paths
    from tnoctl.actions.tenant_dns import TenantDnsRequest, run

    env = make_env(paths.LAB_INVENTORY, tmp_path, ssh=FakeSsh(results={}))
    env.ssh.results[env.inventory.tenant("givors").placement.mail] = (1, "No such file")
    with pytest.raises(OperationFailed, match=r"no DKIM key for .* yet; run 'tnoctl deploy' first"):
        run(env, TenantDnsRequest("givors"))


def test_mta_sts_record_id_follows_the_policy():
    from tnoctl.actions.tenant_dns import mta_sts_id, mta_sts_policy

    records = records_for("givors.test", "mail.givors.test", None, None)
    txt = {r["name"]: r["value"] for r in records if r["type"] == "TXT"}
    policy = mta_sts_policy("mail.givors.test")
    assert "mx: mail.givors.test\r\n" in policy and policy.startswith("version: STSv1\r\n")
    assert txt["_mta-sts.givors.test."] == f"v=STSv1; id={mta_sts_id(policy)}"
    assert mta_sts_id(policy) != mta_sts_id(mta_sts_policy("mail.other.test"))
