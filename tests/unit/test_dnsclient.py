"""The dnspython adapter: direct authoritative queries, TSIG-signed updates, no secret in errors (#15)."""

from __future__ import annotations

import base64

import dns.message
import dns.query
import dns.rcode
import dns.tsig
import pytest

from tnoctl.errors import OperationFailed
from tnoctl.run.dnsclient import DnspythonClient, TsigKey, split_server

SECRET = base64.b64encode(b"k" * 32).decode()
KEY = TsigKey("tno-lab-update.", "hmac-sha256", SECRET)


@pytest.mark.parametrize("server,expected", [
    ("198.18.0.1", ("198.18.0.1", 53)),
    ("198.18.0.1:5353", ("198.18.0.1", 5353)),
    ("[2001:db8::53]:54", ("2001:db8::53", 54)),
    ("[2001:db8::53]", ("2001:db8::53", 53)),
])
def test_split_server(server, expected):
    assert split_server(server) == expected


def test_key_repr_hides_the_secret():
    assert SECRET not in repr(KEY)


def test_query_joins_txt_chunks_and_asks_without_recursion(monkeypatch):
    seen = []

    def fake_udp(request, address, timeout, port):
        seen.append((request, address, port))
        response = dns.message.make_response(request)
        rrset = response.find_rrset(response.answer, request.question[0].name, 1, 16, create=True)
        rrset.add(dns.rdata.from_text(1, 16, '"v=DKIM1; k=rsa; " "p=abc"'))
        return response, False

    monkeypatch.setattr(dns.query, "udp_with_fallback", fake_udp)
    values = DnspythonClient("198.18.0.1").query("tno2026._domainkey.a.test.", "TXT")
    assert values == ["v=DKIM1; k=rsa; p=abc"]
    request, address, port = seen[0]
    assert (address, port) == ("198.18.0.1", 53)
    assert not request.flags & dns.flags.RD


def test_nxdomain_is_no_values(monkeypatch):
    def fake_udp(request, address, timeout, port):
        response = dns.message.make_response(request)
        response.set_rcode(dns.rcode.NXDOMAIN)
        return response, False

    monkeypatch.setattr(dns.query, "udp_with_fallback", fake_udp)
    assert DnspythonClient("198.18.0.1").query("_dmarc.a.test.", "TXT") == []


def test_update_is_tsig_signed_and_refusal_names_only_the_rcode(monkeypatch):
    sent = []

    def fake_tcp(message, address, timeout, port):
        sent.append(message)
        wire = message.to_wire()  # signs with the key: fails if the keyring is wrong
        assert wire
        response = dns.message.make_response(dns.message.from_wire(wire, keyring=message.keyring))
        response.set_rcode(dns.rcode.REFUSED)
        return response

    monkeypatch.setattr(dns.query, "tcp", fake_tcp)
    client = DnspythonClient("198.18.0.1", KEY)
    with pytest.raises(OperationFailed) as info:
        client.update("a.test", [("a.test.", "TXT", '"v=spf1 a -all"')], [("a.test.", "TXT", '"v=spf1 mx -all"')])
    assert "REFUSED" in str(info.value) and SECRET not in str(info.value)
    assert sent[0].keyname == dns.name.from_text("tno-lab-update.")
    assert sent[0].keyalgorithm == dns.tsig.HMAC_SHA256


def test_update_without_key_is_refused_before_sending(monkeypatch):
    monkeypatch.setattr(dns.query, "tcp", lambda *a, **k: pytest.fail("sent"))
    with pytest.raises(OperationFailed, match="tno_dns_tsig_key_name"):
        DnspythonClient("198.18.0.1").update("a.test", [], [("a.test.", "MX", "10 mail.a.test.")])
