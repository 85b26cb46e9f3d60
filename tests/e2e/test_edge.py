"""End-to-end: the edge a town hall puts on the internet (issue 14), on the lab's session fleet.

Mail: DKIM signing moved to Rspamd and bound to the sender's own commune; postmaster@/abuse@ of every
domain (RFC 2142) and the tenant file's aliases reach the designated mailboxes; a vacation script set over
ManageSieve answers a sender once. Office: the admin console and
metrics are off the tenant vhosts, on the management listener only.

Why: on a shared mail host a user of commune A must not obtain a DKIM signature of commune B. These
tests speak real SMTP submission (587, STARTTLS, AUTH) to the lab hosts of the session fleet and check
what leaves: a From: in another commune's domain (same host and another host) is refused with a 5xx
at the end of DATA; a From: in another domain of the sender's own commune is accepted, signed with
that domain's key, and the signature verifies (dkimpy, the published key read from the signing host)
on the copy delivered at another lab host. Helpers are the mail and office acceptance tests' own.

Rspamd's controller (127.0.0.1:11334) refuses the loopback without the mail host's vault-held password and
answers with it; the metrics timer, which sends the root-only copy, keeps tno_rspamd_up at 1.

Inbound policy and the send limit: an office host (a client "from the internet" for the MX) delivers on
port 25 GTUBE (rejected 5xx at the end of DATA) and a message From a domain publishing DMARC p=reject
whose SPF excludes it, unsigned (rejected; its twin without DMARC is delivered). The lab mailbox with its
own low send_limit (venissieux's bernard.durand) submits past it and gets a 4xx, counted in Rspamd's
rspamd_actions_total{type="soft reject"} as the textfile unit of role tno_monitoring writes it.
"""

from __future__ import annotations

import base64
import email
import email.policy
import http.client
import json
import smtplib
import socket
import ssl
import time
import uuid
from typing import Any

import dkim
import dns.name
import dns.query
import dns.rcode
import dns.tsigkeyring
import dns.update
import pytest
from test_deploy_mail import (
    _dkim_dnsfunc,
    _domain_of,
    _find,
    _imap,
    _message,
    _PinnedSMTP,
    _submission,
    _tls_context,
    _wait_for,
)
from test_deploy_office import _get

from tnoctl import paths
from tnoctl.config.hostsecrets import rspamd_password_var
from tnoctl.lab import dns as labdns
from tnoctl.plan.calls import PlaybookCall
from tnoctl.run.ansible import run_playbook

pytestmark = [pytest.mark.root, pytest.mark.lab]


def _tenants_by_host(fleet: Any) -> dict[str, list[str]]:
    hosts: dict[str, list[str]] = {}
    for slug in fleet.tenants_with("mail"):
        hosts.setdefault(fleet.mail_host(slug), []).append(slug)
    return hosts


def _multi_domain_tenant(fleet: Any) -> Any:
    tenant = next((t for t in fleet.inventory.tenants if "mail" in t.services and len(t.domains) >= 2), None)
    assert tenant is not None, "the lab must have a mail tenant with several domains"
    return tenant


def test_from_outside_the_senders_commune_is_refused_5xx(fleet: Any) -> None:
    """A user of A submits with envelope = own login and From: in B's domain, B on the same host, then on another."""
    hosts = _tenants_by_host(fleet)
    shared = next((slugs for slugs in hosts.values() if len(slugs) >= 2), None)
    assert shared, "the lab must have two mail tenants on one host"
    slug_a, same_host_b = shared[0], shared[1]
    other_host_b = next(s for h, slugs in hosts.items() if h != fleet.mail_host(slug_a) for s in slugs)
    login = fleet.mailboxes(slug_a)[0]
    rcpt = fleet.mailboxes(slug_a)[1][0]
    for victim in (same_host_b, other_host_b):
        forged = f"maire@{fleet.domain(victim)}"
        msg = _message(forged, [rcpt], uuid.uuid4().hex)
        with _submission(fleet, slug_a, login) as smtp, pytest.raises(smtplib.SMTPDataError) as refused:
            smtp.sendmail(login[0], [rcpt], msg.as_bytes())
        code, text = refused.value.smtp_code, refused.value.smtp_error.decode(errors="replace")
        assert 500 <= code < 600, f"{slug_a} as {forged}: {code} {text}"
        assert fleet.domain(victim) in text and "not a domain of your commune" in text, text


def test_own_commune_domain_is_signed_with_that_domain_and_verifies_at_the_receiving_host(fleet: Any) -> None:
    """A mailbox of the multi-domain commune sends From: its commune's next domain to a mailbox on another host."""
    tenant = _multi_domain_tenant(fleet)
    login = fleet.mailboxes(tenant.slug)[0]
    header_from = f"{login[0].split('@')[0]}@{next(d for d in tenant.domains if d != _domain_of(login[0]))}"
    receiver = next(s for s in fleet.tenants_with("mail") if fleet.mail_host(s) != fleet.mail_host(tenant.slug))
    rcpt = fleet.mailboxes(receiver)[0]
    token = uuid.uuid4().hex
    msg = _message(header_from, [rcpt[0]], token)
    with _submission(fleet, tenant.slug, login) as smtp:
        refused = smtp.sendmail(login[0], [rcpt[0]], msg.as_bytes())
    assert refused == {}

    raw = _wait_for(fleet, receiver, rcpt, token)
    signatures = email.message_from_bytes(raw, policy=email.policy.default).get_all("DKIM-Signature") or []
    assert len(signatures) == 1, f"expected one DKIM signature, got {len(signatures)}"
    tags = dict(part.strip().split("=", 1) for part in str(signatures[0]).replace("\n", "").split(";") if "=" in part)
    assert tags["d"].strip() == _domain_of(header_from)
    assert tags["s"].strip() == "tno2026"
    assert dkim.verify(raw, dnsfunc=_dkim_dnsfunc(fleet, fleet.mail_host(tenant.slug)))


ADMIN_PATHS = ("/browser/dist/admin/admin.html", "/cool/adminws", "/cool/getMetrics", "/cool/../cool/getMetrics")


def _management_get(fleet: Any, host: str, server_name: str, path: str, password: str | None) -> int:
    """Status of GET ``path`` on the management listener (9443) of ``host``, TLS verified as ``server_name``."""
    context = ssl.create_default_context(cafile=str(fleet.ca_cert))
    sock = socket.create_connection((fleet.address(host), 9443), 30)
    conn = http.client.HTTPSConnection(server_name, 9443, context=context, timeout=30)
    conn.sock = context.wrap_socket(sock, server_hostname=server_name)
    headers = {"Host": server_name}
    if password is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(f"admin:{password}".encode()).decode()
    try:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def test_office_admin_surfaces_are_refused_on_every_tenant_vhost(fleet: Any) -> None:
    for slug in fleet.tenants_with("office"):
        for domain in fleet.inventory.tenant(slug).domains:
            for path in ADMIN_PATHS:
                status = _get(fleet, slug, path, domain)[0]
                assert status in (403, 404), f"office.{domain}{path}: {status}"


def test_office_management_listener_answers_the_controller_with_the_admin_credentials(fleet: Any) -> None:
    password = fleet.secrets["tno_vault_office_admin_password"]
    for host in sorted({fleet.office_host(slug) for slug in fleet.tenants_with("office")}):
        name = f"office.{fleet.domain(next(s for s in fleet.tenants_with('office') if fleet.office_host(s) == host))}"
        assert _management_get(fleet, host, name, "/cool/getMetrics", password) == 200, host
        assert _management_get(fleet, host, name, "/cool/getMetrics", "wrong") == 401, host
        assert _management_get(fleet, host, name, "/cool/getMetrics", None) == 401, host


# ---------------------------------------------------------------- addresses: RFC 2142 and aliases


def _alias_tenant(fleet: Any) -> Any:
    """The lab commune with a cross-domain alias (saint-fons: three domains, mail.aliases, mail.postmaster)."""
    tenant = next((t for t in fleet.inventory.tenants if "mail" in t.services and t.mail.aliases
                   and any((a.domain or t.primary_domain) != t.primary_domain for a in t.mail.aliases)), None)
    assert tenant is not None, "the lab must have a commune with a cross-domain alias"
    assert tenant.mail.postmaster is not None, f"{tenant.slug}: the lab names its postmaster mailbox"
    return tenant


def _login(fleet: Any, slug: str, address: str) -> tuple[str, str]:
    return next(box for box in fleet.mailboxes(slug) if box[0] == address)


def _sender_on_another_host(fleet: Any, slug: str) -> tuple[str, tuple[str, str]]:
    other = next(s for s in fleet.tenants_with("mail") if fleet.mail_host(s) != fleet.mail_host(slug))
    return other, fleet.mailboxes(other)[0]


def test_postmaster_and_abuse_of_every_domain_reach_the_postmaster_mailbox(fleet: Any) -> None:
    """From a commune on the other mail host (587, then host to host on 25) and from outside (25, postscreen)."""
    tenant = _alias_tenant(fleet)
    postmaster = _login(fleet, tenant.slug, tenant.mail.postmaster)
    sender_slug, sender = _sender_on_another_host(fleet, tenant.slug)
    tokens = {}
    with _submission(fleet, sender_slug, sender) as smtp:
        for domain in tenant.domains:
            for local in ("postmaster", "abuse"):
                token = uuid.uuid4().hex
                rcpt = f"{local}@{domain}"
                assert smtp.sendmail(sender[0], [rcpt], _message(sender[0], [rcpt], token).as_bytes()) == {}
                tokens[rcpt] = token
    outside = uuid.uuid4().hex
    address = fleet.address(fleet.mail_host(tenant.slug))
    with _PinnedSMTP(address, f"mail.{tenant.primary_domain}", 25) as smtp:  # a reporter on the internet
        smtp.starttls(context=_tls_context(fleet))
        rcpt = f"abuse@{tenant.primary_domain}"
        assert smtp.send_message(_message("reporter@example.test", [rcpt], outside)) == {}
    for rcpt, token in {**tokens, "outside": outside}.items():
        raw = _wait_for(fleet, tenant.slug, postmaster, token)
        assert token in raw.decode(errors="replace"), rcpt


def test_cross_domain_alias_reaches_every_target_mailbox_once(fleet: Any) -> None:
    """An alias of one domain of the commune delivers to its mailboxes in the commune's other domains."""
    tenant = _alias_tenant(fleet)
    alias = next(a for a in tenant.mail.aliases if (a.domain or tenant.primary_domain) != tenant.primary_domain)
    address = f"{alias.local}@{alias.domain}"
    targets = [_login(fleet, tenant.slug, t) for t in alias.to]
    assert {_domain_of(t[0]) for t in targets} - {alias.domain}, "the alias must cross domains"
    sender_slug, sender = _sender_on_another_host(fleet, tenant.slug)
    token = uuid.uuid4().hex
    with _submission(fleet, sender_slug, sender) as smtp:
        assert smtp.sendmail(sender[0], [address], _message(sender[0], [address], token).as_bytes()) == {}
    for login in targets:
        _wait_for(fleet, tenant.slug, login, token)
        with _imap(fleet, tenant.slug, login) as client:
            assert len(_find(client, token)) == 1, f"{login[0]}: expected one copy of {token}"


def test_an_alias_address_of_another_commune_does_not_exist(fleet: Any) -> None:
    """The alias's local part in another commune's domain is an unknown recipient (no capture across communes)."""
    tenant = _alias_tenant(fleet)
    alias = tenant.mail.aliases[0]
    other = next(s for s in fleet.tenants_with("mail")
                 if s != tenant.slug and fleet.mail_host(s) == fleet.mail_host(tenant.slug))
    rcpt = f"{alias.local}@{fleet.domain(other)}"
    assert rcpt not in {box[0] for box in fleet.mailboxes(other)}, f"{rcpt} is a real mailbox of {other}"
    address = fleet.address(fleet.mail_host(tenant.slug))
    with _PinnedSMTP(address, f"mail.{fleet.domain(other)}", 25) as smtp:
        smtp.starttls(context=_tls_context(fleet))
        smtp.ehlo()
        smtp.mail("reporter@example.test")
        code, text = smtp.rcpt(rcpt)
    assert 500 <= code < 600, f"{rcpt}: {code} {text!r}"


# ---------------------------------------------------------------- Sieve: a vacation script set over ManageSieve


class _ManageSieve:
    """The few ManageSieve (RFC 5804) commands the test needs, over STARTTLS on 4190, TLS verified."""

    def __init__(self, address: str, server_name: str, context: ssl.SSLContext) -> None:
        self._sock: Any = socket.create_connection((address, 4190), 60)
        self._file = self._sock.makefile("rb")
        self._expect_ok("greeting")
        self._command("STARTTLS")
        self._sock = context.wrap_socket(self._sock, server_hostname=server_name)
        self._file = self._sock.makefile("rb")
        self._expect_ok("capabilities after STARTTLS")

    def _expect_ok(self, what: str) -> None:
        while True:
            line = self._file.readline().decode(errors="replace").rstrip("\r\n")
            if line.startswith(("OK", "NO", "BYE")) or not line:
                assert line.startswith("OK"), f"ManageSieve {what}: {line!r}"
                return

    def _command(self, line: str, literal: str | None = None) -> None:
        data = line.encode() + b"\r\n" + (literal.encode() + b"\r\n" if literal is not None else b"")
        self._sock.sendall(data)
        self._expect_ok(line.split(" ", 1)[0])

    def login(self, user: str, password: str) -> None:
        token = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
        self._command(f'AUTHENTICATE "PLAIN" "{token}"')

    def put_active(self, name: str, script: str) -> None:
        self._command(f'PUTSCRIPT "{name}" {{{len(script.encode())}+}}', script)
        self._command(f'SETACTIVE "{name}"')

    def remove(self, name: str) -> None:
        self._command('SETACTIVE ""')
        self._command(f'DELETESCRIPT "{name}"')

    def close(self) -> None:
        try:
            self._command("LOGOUT")
        finally:
            self._sock.close()


def _wait_queues_empty(fleet: Any, hosts: set[str]) -> None:
    """Until no message waits in the Postfix queue of ``hosts`` (replies already handed over are delivered)."""
    deadline = time.monotonic() + 120
    while any(fleet.ssh(h, "postqueue", "-j").stdout.strip() for h in sorted(hosts)):
        assert time.monotonic() < deadline, f"mail still queued on {sorted(hosts)}"
        time.sleep(1)


def test_vacation_set_over_managesieve_answers_a_sender_once(fleet: Any) -> None:
    """A mailbox activates a vacation script over ManageSieve; two messages from one sender get one reply."""
    tenant = _alias_tenant(fleet)
    busy = {a for alias in tenant.mail.aliases for a in alias.to} | {tenant.mail.postmaster}
    box = next(b for b in fleet.mailboxes(tenant.slug) if b[0] not in busy)  # outside the other tests' traffic
    sender_slug, sender = _sender_on_another_host(fleet, tenant.slug)
    token = uuid.uuid4().hex
    script = f'require ["vacation"];\nvacation :days 1 :subject "Absent {token}" "Absent until Monday.";\n'
    address = fleet.address(fleet.mail_host(tenant.slug))
    sieve = _ManageSieve(address, f"mail.{_domain_of(box[0])}", _tls_context(fleet))
    try:
        sieve.login(*box)
        sieve.put_active(f"vacation-{token[:8]}", script)
        for attempt in ("first", "second"):
            sent = f"{token}-{attempt}"
            with _submission(fleet, sender_slug, sender) as smtp:
                assert smtp.sendmail(sender[0], [box[0]], _message(sender[0], [box[0]], sent).as_bytes()) == {}
            _wait_for(fleet, tenant.slug, box, sent)  # delivered: any reply is in a Postfix queue by now
        _wait_queues_empty(fleet, {fleet.mail_host(tenant.slug), fleet.mail_host(sender_slug)})
        reply = _wait_for(fleet, sender_slug, sender, f"Absent {token}")
        assert email.message_from_bytes(reply)["Auto-Submitted"].startswith("auto-replied")
        with _imap(fleet, sender_slug, sender) as client:
            assert len(_find(client, f"Absent {token}")) == 1, "vacation must answer a sender once"
        with _imap(fleet, tenant.slug, box) as client:  # the scripts live in the Dovecot home (<maildir>/home)
            status, folders = client.list()
            assert status == "OK" and not [f for f in folders if b"sieve" in f.lower()], folders
    finally:
        sieve.remove(f"vacation-{token[:8]}")
        sieve.close()


# ---------------------------------------------------------------- inbound policy and the send limit (Rspamd)

GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
"""The Generic Test for Unsolicited Bulk Email: every spam filter must reject a message carrying it."""
_REMOTE_SMTP = r"""
import base64, json, smtplib, sys
address, helo, sender, rcpt, data = sys.argv[1:6]
client = smtplib.SMTP(address, 25, local_hostname=helo, timeout=60)
out = []
try:
    client.ehlo()
    for stage, step in (("mail", lambda: client.mail(sender)), ("rcpt", lambda: client.rcpt(rcpt)),
                        ("data", lambda: client.data(base64.b64decode(data)))):
        code, text = step()
        out.append([stage, code, text.decode(errors="replace")])
        if code >= 400:
            break
finally:
    try:
        client.quit()
    except smtplib.SMTPException:
        pass
print(json.dumps(out))
"""


def _outside_host(fleet: Any) -> str:
    """A lab host that is not a mail host (an office host): its mail comes from "the internet" for the MX."""
    mail_hosts = {fleet.mail_host(s) for s in fleet.tenants_with("mail")}
    host = next((fleet.office_host(s) for s in fleet.tenants_with("office") if fleet.office_host(s) not in mail_hosts),
                None)
    assert host is not None, "the lab must have an office host that is not a mail host"
    return host


def _smtp_from_host(fleet: Any, host: str, slug: str, sender: str, rcpt: str, msg: Any) -> dict[str, tuple[int, str]]:
    """One SMTP transaction on port 25 of ``slug``'s mail host, run ON lab host ``host`` (its own address).

    Plain SMTP (STARTTLS is optional on 25): the point is where the client sits, not the channel.
    Returns {stage: (code, text)} for mail, rcpt and data (up to the first 4xx/5xx).
    """
    data = base64.b64encode(msg.as_bytes(policy=email.policy.SMTP)).decode()
    res = fleet.ssh(host, "python3", "-c", _REMOTE_SMTP, fleet.address(fleet.mail_host(slug)), f"{host}.lab.test",
                    sender, rcpt, data)
    return {stage: (code, text) for stage, code, text in json.loads(res.stdout)}


def test_gtube_from_another_lab_host_is_rejected_at_smtp_time(fleet: Any) -> None:
    """An office host delivers GTUBE to a mailbox on port 25: Rspamd rejects it at the end of DATA (5xx)."""
    slug = fleet.tenants_with("mail")[0]
    rcpt = fleet.mailboxes(slug)[1][0]
    token = uuid.uuid4().hex
    msg = _message("newsletter@outside.example", [rcpt], token, body=f"Offre exceptionnelle\n\n{GTUBE}\n")
    replies = _smtp_from_host(fleet, _outside_host(fleet), slug, "newsletter@outside.example", rcpt, msg)
    assert replies["mail"][0] == 250 and replies["rcpt"][0] == 250, replies
    code, text = replies["data"]
    assert 500 <= code < 600, f"GTUBE to {rcpt}: {code} {text}"
    queued = fleet.ssh(fleet.mail_host(slug), "postqueue", "-j").stdout
    assert token not in queued


def _lab_dns_update(fleet: Any, records: dict[str, str], delete: bool = False) -> None:
    """Add (or delete) TXT records in the lab's own zone (lab.test) by RFC 2136 with the lab's TSIG key."""
    keyring = dns.tsigkeyring.from_text(
        {labdns.TSIG_KEY_NAME: (labdns.TSIG_ALGORITHM, fleet.secrets[labdns.TSIG_VAULT_NAME])})
    update = dns.update.UpdateMessage(labdns.LAB_DOMAIN, keyring=keyring,
                                      keyname=dns.name.from_text(labdns.TSIG_KEY_NAME),
                                      keyalgorithm=labdns.TSIG_ALGORITHM)
    for name, value in records.items():
        if delete:
            update.delete(name, "TXT")
        else:
            update.replace(name, 60, "TXT", f'"{value}"')
    response = dns.query.tcp(update, labdns.GATEWAY, timeout=10)
    assert response.rcode() == dns.rcode.NOERROR, dns.rcode.to_text(response.rcode())


def test_forged_from_of_a_dmarc_reject_domain_is_rejected(fleet: Any) -> None:
    """A domain publishing DMARC p=reject and SPF -all: a message From it, sent by an office host (not in its
    SPF, no DKIM signature), is rejected at the end of DATA; the same message From a twin domain without a
    DMARC record is delivered (the refusal is the DMARC policy, not the content).

    The sender domains are made for the test under the lab's own zone (lab.test, not a commune's), published
    by RFC 2136 like `tnoctl dns publish` does, with a fresh name per run (no resolver cache), removed after.
    """
    slug = fleet.tenants_with("mail")[0]
    login = fleet.mailboxes(slug)[1]
    tag = uuid.uuid4().hex[:10]
    strict, lax = f"bank-{tag}.lab.test", f"shop-{tag}.lab.test"
    records = {f"{strict}.": "v=spf1 -all", f"_dmarc.{strict}.": "v=DMARC1; p=reject",
               f"{lax}.": "v=spf1 -all"}
    host = _outside_host(fleet)
    _lab_dns_update(fleet, records)
    try:
        tokens = {}
        replies = {}
        for domain in (strict, lax):
            tokens[domain] = uuid.uuid4().hex
            sender = f"direction@{domain}"
            msg = _message(sender, [login[0]], tokens[domain], body="Merci de régler la facture ci-jointe.\n")
            replies[domain] = _smtp_from_host(fleet, host, slug, sender, login[0], msg)
    finally:
        _lab_dns_update(fleet, records, delete=True)
    code, text = replies[strict]["data"]
    assert 500 <= code < 600, f"From {strict} (p=reject, SPF and DKIM failing): {code} {text}"
    assert replies[lax]["data"][0] == 250, f"From {lax} (no DMARC record): {replies[lax]}"
    _wait_for(fleet, slug, login, tokens[lax])
    _wait_queues_empty(fleet, {fleet.mail_host(slug)})


def _own_limit_mailbox(fleet: Any) -> tuple[str, tuple[str, str], int]:
    """(tenant, login, messages per period) of the lab mailbox with its own low send_limit (venissieux)."""
    for tenant in fleet.inventory.tenants:
        for box in tenant.mailboxes:
            if box.send_limit is not None and box.send_limit.messages <= 10:
                address = f"{box.local}@{box.domain or tenant.primary_domain}"
                return tenant.slug, _login(fleet, tenant.slug, address), box.send_limit.messages
    raise AssertionError("the lab must have a mailbox with its own send_limit of at most 10 messages")


def _soft_rejects(fleet: Any, host: str) -> float:
    """Rspamd's soft reject count as Prometheus reads it: run the textfile unit now, read its file."""
    fleet.ssh(host, "systemctl", "start", "tno-rspamd-metrics.service")
    text = fleet.ssh(host, "cat", "/var/lib/prometheus/node-exporter/tno_rspamd.prom").stdout
    assert "tno_rspamd_up 1" in text, text
    line = next(line for line in text.splitlines() if line.startswith('rspamd_actions_total{type="soft reject"}'))
    return float(line.rsplit(" ", 1)[1])


def test_a_user_over_the_send_limit_gets_4xx_and_the_metric_counts_it(fleet: Any) -> None:
    """The mailbox with its own limit of N messages/hour submits N+1: at most N accepted, then 451 (Rspamd's
    soft reject), counted in rspamd_actions_total{type="soft reject"} (TnoMailOutboundRateLimited).

    Rerun within the hour, the bucket is still partly full and the 4xx comes earlier: the test asserts
    "at most N accepted, then a 4xx". Accepted messages go to a mailbox of the same commune and are
    delivered before the test ends (no queued mail left behind).
    """
    slug, login, limit = _own_limit_mailbox(fleet)
    host = fleet.mail_host(slug)
    rcpt = next(box for box in fleet.mailboxes(slug) if box[0] != login[0])
    before = _soft_rejects(fleet, host)
    accepted: list[str] = []
    refusal: tuple[int, str] | None = None
    with _submission(fleet, slug, login) as smtp:
        for _ in range(limit + 1):
            token = uuid.uuid4().hex
            try:
                smtp.sendmail(login[0], [rcpt[0]], _message(login[0], [rcpt[0]], token).as_bytes())
            except smtplib.SMTPDataError as exc:
                refusal = (exc.smtp_code, exc.smtp_error.decode(errors="replace"))
                break
            accepted.append(token)
    assert refusal is not None, f"{limit + 1} messages accepted with a limit of {limit}"
    assert 400 <= refusal[0] < 500, f"over the send limit: {refusal}"
    assert len(accepted) <= limit
    assert _soft_rejects(fleet, host) >= before + 1
    for token in accepted:
        _wait_for(fleet, slug, rcpt, token)
    _wait_queues_empty(fleet, {host})


# Runs on the mail host (python3 is on every host; curl is not): GET the controller's /stat on the loopback,
# with the password read from stdin when one is given, and print the HTTP status (200: and whether the
# answer is Rspamd's statistics). The password never appears in an argv or in the output.
_REMOTE_CONTROLLER = """
import json, sys, urllib.error, urllib.request
password = sys.stdin.readline().strip()
request = urllib.request.Request("http://127.0.0.1:11334/stat", headers={"Password": password} if password else {})
try:
    with urllib.request.urlopen(request, timeout=20) as answer:
        print(answer.status, "scanned" in json.loads(answer.read()))
except urllib.error.HTTPError as exc:
    print(exc.code, False)
"""


def _controller_stat(fleet: Any, host: str, password: str) -> str:
    """``"<status> <is statistics>"`` of GET 127.0.0.1:11334/stat run on ``host`` (``""``: no password)."""
    return fleet.ssh(host, "python3", "-c", _REMOTE_CONTROLLER, stdin=password + "\n").stdout.strip()


def test_rspamd_controller_asks_localhost_for_the_vault_password_and_metrics_stay_up(fleet: Any) -> None:
    """On every mail host: the loopback gets no password-free access to Rspamd's controller (403/401 without
    or with a wrong password), the host's own vault-held password opens it, the root-only copy is there for
    the metrics timer, and the timer's textfile says tno_rspamd_up 1."""
    hosts = sorted({fleet.mail_host(slug) for slug in fleet.tenants_with("mail")})
    assert hosts
    for host in hosts:
        password = fleet.secrets[rspamd_password_var(host)]
        for attempt in ("", "not-the-" + rspamd_password_var(host)):
            status = _controller_stat(fleet, host, attempt)
            assert status.split()[0] in ("401", "403"), f"{host}: /stat without the right password: {status}"
        status = _controller_stat(fleet, host, password)  # a local name: pytest's report then shows no password
        assert status == "200 True", f"{host}: /stat with the vault password: {status}"
        mode = fleet.ssh(host, "stat", "-c", "%a %U", "/etc/tno/rspamd-controller.password").stdout.strip()
        assert mode == "600 root", f"{host}: the password copy must be root-only ({mode})"
        fleet.ssh(host, "systemctl", "start", "tno-rspamd-metrics.service")
        text = fleet.ssh(host, "cat", "/var/lib/prometheus/node-exporter/tno_rspamd.prom").stdout
        assert "\ntno_rspamd_up 1\n" in text, f"{host}: {text[-300:]}"
        leaked = password in text
        assert not leaked, f"{host}: the controller password is in tno_rspamd.prom"


def test_check_playbook_passes_on_the_mail_hosts_with_rspamd_metrics_up(fleet: Any) -> None:
    """playbooks/check.yml (tno_action=check) limited to the mail hosts passes: among its checks, the
    monitoring role's tno_rspamd.prom says tno_rspamd_up 1 and is fresh (the failing cases, up 0, stale
    and missing, are tests/integration/test_monitoring_rspamd_check.py). The password is in no artifact."""
    hosts = tuple(sorted({fleet.mail_host(slug) for slug in fleet.tenants_with("mail")}))
    for host in hosts:
        fleet.ssh(host, "systemctl", "start", "tno-rspamd-metrics.service")
    run_id = f"edge-check-{uuid.uuid4().hex[:8]}"
    call = PlaybookCall(playbook=str(paths.PROJECT_ROOT / "playbooks" / "check.yml"), limit=hosts)
    result = run_playbook(call, inventory=paths.LAB_INVENTORY, state_dir=fleet.state_dir, run_id=run_id,
                          vault_password_file=paths.LAB_INVENTORY / "vault-password")
    assert result.success, [f"{f.host}: {f.task}: {f.message}" for f in result.failed_tasks]
    passwords = [fleet.secrets[rspamd_password_var(host)] for host in hosts]
    leaked = [str(p) for p in (fleet.state_dir / "runs" / run_id).rglob("*")
              if p.is_file() and any(pw in p.read_text(errors="replace") for pw in passwords)]
    assert not leaked, f"the controller password is in {leaked}"
