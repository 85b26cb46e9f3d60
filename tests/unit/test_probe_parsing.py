"""Pure parsing of every probe kind, on recorded server outputs."""

from __future__ import annotations

import io
import json

import pytest

from tnoctl.probes import backup_freshness, imap, office, queue, roundtrip, smtp
from tnoctl.state.store import BackupResult, BackupStatus

POSTFIX_EHLO = (b"250-mail1.lab.test\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-VRFY\r\n250-ETRN\r\n"
                b"250-STARTTLS\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n250-SMTPUTF8\r\n"
                b"250 CHUNKING\r\n")


def test_smtp_banner_and_multiline_ehlo() -> None:
    banner = smtp.read_reply(io.BytesIO(b"220 mail1.lab.test ESMTP Postfix (Debian/GNU)\r\n"))
    assert banner.code == 220 and banner.lines[0].startswith("mail1.lab.test")
    ehlo = smtp.read_reply(io.BytesIO(POSTFIX_EHLO))
    assert ehlo.code == 250
    assert {"STARTTLS", "PIPELINING", "SIZE", "CHUNKING"} <= smtp.ehlo_extensions(ehlo)


@pytest.mark.parametrize("raw", [b"", b"HTTP/1.1 400 Bad Request\r\n", b"250-a\r\n251 b\r\n"])
def test_smtp_rejects_non_smtp(raw: bytes) -> None:
    with pytest.raises(smtp.ProtocolError):
        smtp.read_reply(io.BytesIO(raw))


def test_imap_greeting_and_capabilities() -> None:
    g = imap.parse_greeting(b"* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ "
                            b"STARTTLS LOGINDISABLED] Dovecot (Debian) ready.\r\n")
    assert g.status == "OK" and {"STARTTLS", "LOGINDISABLED", "IMAP4REV1"} <= g.capabilities
    assert imap.parse_capabilities("* CAPABILITY IMAP4rev1 AUTH=PLAIN") == {"IMAP4REV1", "AUTH=PLAIN"}
    with pytest.raises(ValueError):
        imap.parse_greeting(b"220 smtp.example ESMTP")


CAPABILITIES = json.dumps({"convert-to": {"available": True}, "hasMobileSupport": True,
                           "productName": "Collabora Online", "productVersion": "24.04.6.2",
                           "productVersionHash": "abc", "serverId": "x"}).encode()
DISCOVERY = b"""<?xml version="1.0" encoding="utf-8"?>
<wopi-discovery><net-zone name="external-http">
<app name="writer"><action default="true" ext="odt" name="edit" urlsrc="https://office.a.test/browser/x/cool.html?"/></app>
<app name="calc"><action ext="ods" name="edit" urlsrc="https://office.a.test/browser/x/cool.html?"/></app>
</net-zone><proof-key value="AAA"/></wopi-discovery>"""


def test_office_capabilities_and_discovery() -> None:
    assert office.parse_capabilities(CAPABILITIES) == "24.04.6.2"
    assert office.parse_discovery(DISCOVERY) == 2


NO_URLSRC = b"<wopi-discovery><net-zone><app><action name='x'/></app></net-zone></wopi-discovery>"


@pytest.mark.parametrize("body", [b"<html>502 Bad Gateway</html>", b"<wopi-discovery/>", b"not xml <", NO_URLSRC])
def test_office_discovery_rejects_broken_answers(body: bytes) -> None:
    with pytest.raises(ValueError):
        office.parse_discovery(body)


def test_office_capabilities_without_version() -> None:
    with pytest.raises(ValueError):
        office.parse_capabilities(b'{"productName": "x"}')


POSTQUEUE = "\n".join([
    json.dumps({"queue_name": "deferred", "queue_id": "4F2A1", "arrival_time": 1000, "message_size": 900,
                "sender": "alice@vaulx.test", "recipients": [{"address": "x@far.example", "delay_reason": "refused"}]}),
    json.dumps({"queue_name": "deferred", "queue_id": "4F2A2", "arrival_time": 400, "message_size": 900,
                "sender": "bob@alias.vaulx.test", "recipients": [{"address": "y@far.example"}]}),
    json.dumps({"queue_name": "active", "queue_id": "4F2A3", "arrival_time": 1500, "message_size": 10,
                "sender": "", "recipients": [{"address": "carol@bron.test"}]}),
    json.dumps({"queue_name": "hold", "queue_id": "4F2A4", "arrival_time": 1600, "message_size": 10,
                "sender": "spam@elsewhere.example", "recipients": [{"address": "z@far.example"}]}),
    '{"queue_name": "deferred", "arri',
])


def test_postqueue_parse_and_summary_per_tenant() -> None:
    messages, bad = queue.parse_postqueue(POSTQUEUE)
    assert (len(messages), bad) == (4, 1)
    domains = {"vaulx.test": "vaulx", "alias.vaulx.test": "vaulx", "bron.test": "bron"}
    summaries, unattributed = queue.summarize(messages, domains, ["vaulx", "bron", "empty"])
    assert unattributed == 1
    assert summaries["vaulx"].messages["deferred"] == 2
    assert summaries["vaulx"].oldest_age("deferred", now=2000) == 1600
    assert summaries["bron"].messages["active"] == 1  # bounce (empty sender) attributed by recipient
    assert summaries["empty"].messages == dict.fromkeys(queue.QUEUES, 0)
    results = {r.tenant: r for r in queue.queue_results(summaries, now=2000, latency=0.1)}
    assert results["vaulx"].values["messages.deferred"] == 2
    assert results["bron"].values["oldest_age_seconds.active"] == 500
    assert all(r.ok for r in results.values())
    serialized = json.dumps([r.values for r in results.values()]) + "".join(r.detail for r in results.values())
    assert "alice" not in serialized and "@" not in serialized  # never an address


def test_queue_thresholds_flag_problems() -> None:
    messages = [queue.QueuedMessage("deferred", 0, "a.test")] * 60 + [queue.QueuedMessage("active", 0, "a.test")]
    summaries, _ = queue.summarize(messages, {"a.test": "a"}, ["a"])
    (res,) = queue.queue_results(summaries, now=1000, latency=0)
    assert not res.ok and "60 deferred" in res.detail and "stalled" in res.detail
    assert res.severity == "warning"


def test_queue_probe_reports_ssh_failure_for_every_tenant() -> None:
    def boom(host, argv, timeout):
        raise OSError("connection refused")

    res = queue.probe_queue("mail1", ["a", "b"], {}, boom, 1.0, 0.0)
    assert [(r.tenant, r.ok) for r in res] == [("a", False), ("b", False)]


def test_roundtrip_message_and_search() -> None:
    raw = roundtrip.make_message("canary@a.test", "tok123", 0)
    assert b"X-Tnoctl-Probe: tok123" in raw and b"To: canary@a.test" in raw
    assert roundtrip.parse_search([b"1 4 7"]) == [b"1", b"4", b"7"]
    assert roundtrip.parse_search([None]) == []


def test_backup_freshness() -> None:
    ok = BackupStatus("a", "mail", BackupResult("a", "mail", True, 1000), None, 900)
    failed = BackupStatus("b", "mail", BackupResult("b", "mail", True, 1000), BackupResult("b", "mail", False, 2000,
                                                                                            detail="disk full"))
    res = {(r.tenant, r.check): r for r in backup_freshness.backup_results(
        {("a", "mail"): ok, ("b", "mail"): failed}, [("a", "mail"), ("b", "mail"), ("c", "office")], now=5000)}
    assert res[("a", "backup")].ok and res[("a", "backup_verified")].ok
    assert not res[("b", "backup")].ok and "disk full" in res[("b", "backup")].detail
    assert not res[("c", "backup")].ok and res[("c", "backup")].detail == "no successful backup recorded"
    too_old = backup_freshness.backup_results({("a", "mail"): ok}, [("a", "mail")], now=1000 + 27 * 3600)
    assert not too_old[0].ok


@pytest.mark.parametrize(("product", "pinned", "ok"), [
    ("24.04.11.1", "24.04.11.1-1", True),       # real Collabora: capabilities without the Debian revision
    ("24.04.11.1", "24.04.11.1-3", True),       # any revision of that upstream version
    ("24.04.11.1", "24.04.11.1", True),         # a pin without revision
    ("24.04.11.1", "1:24.04.11.1-1", True),     # with an epoch
    ("24.04.11.1", "24.04.11.10-1", False),     # no prefix matching
    ("24.04.11.10", "24.04.11.1-1", False),
    ("24.04.11.1", "24.04.12.1-1", False),
    ("", "24.04.11.1-1", False),
    ("24.04.11.1-1", "24.04.11.1-1", True),     # a server that reports the package version itself
])
def test_version_matches_like_real_collabora_reports_it(product: str, pinned: str, ok: bool) -> None:
    assert office.version_matches(product, pinned) is ok


def test_upstream_version() -> None:
    assert office.upstream_version("24.04.11.1-1") == "24.04.11.1"
    assert office.upstream_version("2:24.04.11.1-1~bpo12+1") == "24.04.11.1"
    assert office.upstream_version("24.04.11.1") == "24.04.11.1"
