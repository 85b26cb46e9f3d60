"""End-to-end mail acceptance of the deployed suite (issue 4, acceptance 1-3), against the lab.

Why: the roles are only worth something if real clients can use the result. Every check speaks the
real protocols from the controller (smtplib, imaplib, ssl) to the lab addresses, with certificates
verified against the lab trust bundle (lab CA + pebble root) and the tenant service names (mail.<domain>)
as TLS server names.
Passwords come from the lab vault through the ``fleet`` fixture and never appear in messages.
"""

from __future__ import annotations

import email
import email.policy
import imaplib
import re
import smtplib
import socket
import ssl
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from email.message import EmailMessage
from typing import Any

import dkim
import pytest

from tnoctl.run.dnsclient import DnspythonClient

pytestmark = [pytest.mark.root, pytest.mark.lab]

SOCKET_TIMEOUT = 60.0
"""Guards against a hung server only; no test asserts on durations."""
DELIVERY_DEADLINE = 120.0
"""How long a message may take to show up over IMAP before the test gives up."""
OUTSIDE = "outside.example"
"""A domain the platform does not host (RFC 2606), used for relay attempts."""


# ---------------------------------------------------------------- protocol helpers


def _tls_context(fleet: Any) -> ssl.SSLContext:
    """Client TLS context trusting only the lab (its CA and pebble's root), with host name checking on."""
    context = ssl.create_default_context(cafile=str(fleet.ca_cert))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


class _PinnedSMTP(smtplib.SMTP):
    """SMTP to a lab address while TLS verifies a service name (the lab has no DNS)."""

    def __init__(self, address: str, server_name: str, port: int) -> None:
        self._address = address
        super().__init__(server_name, port, local_hostname="e2e.lab.test", timeout=SOCKET_TIMEOUT)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        return socket.create_connection((self._address, port), timeout, self.source_address)


class _PinnedIMAP(imaplib.IMAP4_SSL):
    """IMAPS to a lab address while TLS verifies a service name."""

    def __init__(self, address: str, server_name: str, context: ssl.SSLContext) -> None:
        self._address = address
        super().__init__(server_name, 993, ssl_context=context, timeout=SOCKET_TIMEOUT)

    def _create_socket(self, timeout: float | None) -> socket.socket:
        sock = socket.create_connection((self._address, self.port), timeout)
        return self.ssl_context.wrap_socket(sock, server_hostname=self.host)


def _domain_of(address: str) -> str:
    return address.rsplit("@", 1)[1]


def _mail_endpoint(fleet: Any, slug: str) -> tuple[str, str]:
    """(address, TLS server name) of a tenant's mail host."""
    return fleet.address(fleet.mail_host(slug)), f"mail.{fleet.domain(slug)}"


@contextmanager
def _submission(fleet: Any, slug: str, login: tuple[str, str] | None) -> Iterator[_PinnedSMTP]:
    """An SMTP session on port 587 of the tenant's mail host, after STARTTLS (and AUTH if ``login``)."""
    address, name = _mail_endpoint(fleet, slug)
    client = _PinnedSMTP(address, name, 587)
    try:
        client.ehlo()
        client.starttls(context=_tls_context(fleet))
        client.ehlo()
        if login is not None:
            client.login(*login)
        yield client
    finally:
        try:
            client.quit()
        except smtplib.SMTPException:
            client.close()


@contextmanager
def _imap(fleet: Any, slug: str, login: tuple[str, str]) -> Iterator[_PinnedIMAP]:
    """An authenticated IMAPS session on the mail host of ``slug``."""
    address, name = _mail_endpoint(fleet, slug)
    client = _PinnedIMAP(address, name, _tls_context(fleet))
    try:
        client.login(*login)
        yield client
    finally:
        with suppress(imaplib.IMAP4.error, OSError):
            client.logout()


def _message(sender: str, recipients: list[str], token: str, body: str = "") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["Subject"] = f"tnoctl e2e {token}"
    msg["Message-ID"] = f"<{token}@{_domain_of(sender)}>"
    msg.set_content(body or f"test message {token}\n")
    return msg


def _find(client: _PinnedIMAP, token: str) -> list[bytes]:
    client.select("INBOX")
    status, data = client.search(None, "SUBJECT", f'"{token}"')
    assert status == "OK"
    return data[0].split()


def _wait_for(fleet: Any, slug: str, login: tuple[str, str], token: str) -> bytes:
    """The raw message carrying ``token`` in the INBOX of ``login`` (polls until it arrives)."""
    deadline = time.monotonic() + DELIVERY_DEADLINE
    with _imap(fleet, slug, login) as client:
        while True:
            found = _find(client, token)
            if found:
                status, data = client.fetch(found[-1], "(RFC822)")
                assert status == "OK"
                part = data[0]
                assert isinstance(part, tuple)
                return part[1]
            if time.monotonic() > deadline:
                pytest.fail(f"message {token} never reached the INBOX of {login[0]}")
            time.sleep(0.5)


def _pair(fleet: Any) -> Iterator[tuple[str, str]]:
    """(A, B) for every mail tenant A, B being the next one (cyclic): every mail tenant sends and receives."""
    slugs = fleet.tenants_with("mail")
    assert len(slugs) >= 2, "the lab must have at least two tenants"
    for index, slug in enumerate(slugs):
        yield slug, slugs[(index + 1) % len(slugs)]


def _dkim_dnsfunc(fleet: Any, host: str) -> Callable[..., bytes]:
    """A dkimpy DNS function answering <selector>._domainkey.<domain> from the key file on the mail host."""

    def lookup(name: bytes | str, timeout: int = 5) -> bytes:
        qname = name.decode() if isinstance(name, bytes) else name
        match = re.fullmatch(r"([^.]+)\._domainkey\.(.+?)\.?", qname)
        assert match, f"unexpected DKIM lookup {qname}"
        selector, domain = match.groups()
        text = fleet.ssh(host, "cat", f"/etc/opendkim/keys/{domain}/{selector}.txt").stdout
        return "".join(re.findall(r'"([^"]*)"', text)).encode()

    return lookup


# ---------------------------------------------------------------- acceptance 1


def test_submission_between_tenants_arrives_with_valid_dkim(fleet: Any) -> None:
    """A submits (587, STARTTLS, AUTH) to another mailbox of A and to B; both arrive; B's copy is DKIM-valid."""
    for slug_a, slug_b in _pair(fleet):
        boxes_a, boxes_b = fleet.mailboxes(slug_a), fleet.mailboxes(slug_b)
        sender = boxes_a[0]
        local_rcpt = boxes_a[1] if len(boxes_a) > 1 else boxes_a[0]
        remote_rcpt = boxes_b[0]
        token = uuid.uuid4().hex
        msg = _message(sender[0], [local_rcpt[0], remote_rcpt[0]], token)
        with _submission(fleet, slug_a, sender) as smtp:
            refused = smtp.send_message(msg)
        assert refused == {}, f"{slug_a}: recipients refused: {sorted(refused)}"

        _wait_for(fleet, slug_a, local_rcpt, token)
        raw = _wait_for(fleet, slug_b, remote_rcpt, token)

        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        signatures = parsed.get_all("DKIM-Signature") or []
        assert signatures, f"{slug_a} -> {slug_b}: no DKIM-Signature on the received copy"
        tags = dict(
            part.strip().split("=", 1) for part in str(signatures[0]).replace("\n", "").split(";") if "=" in part
        )
        assert tags["d"].strip() == _domain_of(sender[0]), f"{slug_a}: signed for {tags['d']}"
        dnsfunc = _dkim_dnsfunc(fleet, fleet.mail_host(slug_a))
        assert dkim.verify(raw, dnsfunc=dnsfunc), f"{slug_a} -> {slug_b}: DKIM signature does not verify"


def _transport_entries(fleet: Any, host: str) -> dict[str, str]:
    """/etc/postfix/tno/transport on ``host``: domain -> next hop (comments and blank lines dropped)."""
    text = fleet.ssh(host, "cat", "/etc/postfix/tno/transport").stdout
    return dict(line.split(None, 1) for line in text.splitlines() if line.strip() and not line.startswith("#"))


def _smtp_log_lines(fleet: Any, host: str, since: str, *needles: str) -> list[str]:
    """Lines of ``host``'s postfix/smtp log since ``since`` (an @epoch) holding every needle; waits for them."""
    deadline = time.monotonic() + 30
    while True:
        log = fleet.ssh(host, "journalctl", "-q", "-t", "postfix/smtp", "--since", since, "-o", "cat").stdout
        found = [line for line in log.splitlines() if all(n in line for n in needles)]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(1)


def test_mail_between_communes_on_two_hosts_goes_by_mx_over_verified_tls(fleet: Any) -> None:
    """Issue 15 acceptance: a mail1 commune writes to a mail2 commune with no transport-map entry for its domain.

    The deploy published the recipient's MX (mail.<domain>, whose A is mail2); mail1's Postfix looks it up,
    sends SNI mail.<domain> and verifies the certificate for that name (TLS policy ``secure``).
    """
    slug_a = next(s for s in fleet.tenants_with("mail") if fleet.mail_host(s) == "mail1")
    slug_b = next(s for s in fleet.tenants_with("mail") if fleet.mail_host(s) == "mail2")
    domain_b, address_b = fleet.domain(slug_b), fleet.address("mail2")
    assert domain_b not in _transport_entries(fleet, "mail1"), "mail1 still routes it by its transport map"
    dns = DnspythonClient(fleet.inventory.platform.tno_dns_server)
    assert dns.query(f"{domain_b}.", "MX") == [f"10 mail.{domain_b}."], "the deploy did not publish the MX"
    since = "@" + fleet.ssh("mail1", "date", "+%s").stdout.strip()
    sender, rcpt = fleet.mailboxes(slug_a)[0], fleet.mailboxes(slug_b)[0]
    token = uuid.uuid4().hex
    with _submission(fleet, slug_a, sender) as smtp:
        assert smtp.send_message(_message(sender[0], [rcpt[0]], token)) == {}
    _wait_for(fleet, slug_b, rcpt, token)
    relay = f"mail.{domain_b}[{address_b}]:25"
    assert _smtp_log_lines(fleet, "mail1", since, f"to=<{rcpt[0]}>", f"relay={relay}", "status=sent"), (
        f"mail1 did not log a delivery to {rcpt[0]} through relay={relay} (its MX)")
    assert _smtp_log_lines(fleet, "mail1", since, f"Verified TLS connection established to {relay}"), (
        f"mail1 did not verify {relay}'s certificate for mail.{domain_b}")


# ---------------------------------------------------------------- acceptance 2


def _forged_login_accepted(fleet: Any, slug: str, login: tuple[str, str], protocol: str) -> str | None:
    """Try one login that must be refused; None when refused, else what was wrongly accepted."""
    refusal = imaplib.IMAP4.error if protocol == "imap" else smtplib.SMTPAuthenticationError
    client = _imap if protocol == "imap" else _submission
    try:
        with client(fleet, slug, login):
            pass
    except refusal:
        return None
    return f"{slug}: {protocol} login as {login[0]} was accepted"


def test_user_cannot_log_in_with_another_tenants_domain(fleet: Any) -> None:
    """A's credentials with B's domain are refused over IMAPS and over SMTP AUTH, on A's and B's hosts.

    Every refused login waits out Dovecot's authentication penalty (per client address, doubling up
    to 15 s), so the attempts run concurrently: the same checks in about one penalty instead of one
    penalty per attempt (~160 s when serial). Any other error than a refusal fails the test.
    """
    attempts = []
    for slug_a, slug_b in _pair(fleet):
        address, password = fleet.mailboxes(slug_a)[0]
        forged = (f"{address.rsplit('@', 1)[0]}@{fleet.domain(slug_b)}", password)
        attempts += [(slug, forged, protocol) for slug in sorted({slug_a, slug_b}) for protocol in ("imap", "smtp")]
    with ThreadPoolExecutor(max_workers=len(attempts)) as pool:
        accepted = [found for found in pool.map(lambda a: _forged_login_accepted(fleet, *a), attempts) if found]
    assert accepted == []


def _assert_send_refused(smtp: smtplib.SMTP, sender: str, recipients: list[str], token: str) -> int:
    """Send and expect the whole transaction to be refused; returns the SMTP code."""
    try:
        refused = smtp.sendmail(sender, recipients, _message(sender, recipients, token).as_bytes())
    except smtplib.SMTPSenderRefused as exc:
        return exc.smtp_code
    except smtplib.SMTPRecipientsRefused as exc:
        codes = {code for code, _ in exc.recipients.values()}
        assert len(codes) == 1
        return codes.pop()
    pytest.fail(f"sending as {sender} was accepted (refused: {sorted(refused)})")


def test_user_cannot_send_as_another_tenant(fleet: Any) -> None:
    """Authenticated as A, an envelope sender of B's domain (or of another A mailbox) is rejected."""
    for slug_a, slug_b in _pair(fleet):
        login = fleet.mailboxes(slug_a)[0]
        victim_b = fleet.mailboxes(slug_b)[0][0]
        others_a = [address for address, _ in fleet.mailboxes(slug_a)[1:]]
        rcpt = fleet.mailboxes(slug_a)[0][0]
        for forged in [victim_b, *others_a[:1]]:
            with _submission(fleet, slug_a, login) as smtp:
                code = _assert_send_refused(smtp, forged, [rcpt], uuid.uuid4().hex)
            assert 500 <= code < 600, f"{slug_a}: sending as another mailbox got {code}"


def test_spoofed_platform_sender_refused_on_port_25(fleet: Any) -> None:
    """Without login, port 25 refuses a local address as envelope sender (no spoofing from outside)."""
    for slug_a, _ in _pair(fleet):
        address, name = _mail_endpoint(fleet, slug_a)
        sender = fleet.mailboxes(slug_a)[0][0]
        rcpt = fleet.mailboxes(slug_a)[-1][0]
        with _PinnedSMTP(address, name, 25) as smtp:
            smtp.starttls(context=_tls_context(fleet))
            code = _assert_send_refused(smtp, sender, [rcpt], uuid.uuid4().hex)
        assert 500 <= code < 600


def test_user_cannot_read_another_tenants_mail(fleet: Any) -> None:
    """A's IMAP session sees only A's own folders; paths that escape into B's maildir are refused."""
    for slug_a, slug_b in _pair(fleet):
        login = fleet.mailboxes(slug_a)[0]
        victim = fleet.mailboxes(slug_b)[0][0]
        victim_local, victim_domain = victim.split("@")
        with _imap(fleet, slug_a, login) as client:
            status, listing = client.list()
            assert status == "OK"
            names = b"\n".join(line for line in listing if isinstance(line, bytes)).decode(errors="replace")
            assert victim_domain not in names and victim_local not in names.split()
            for escape in (
                f"../../{victim_domain}/{victim_local}",
                f"~{victim}",
                f"/srv/vmail/{victim_domain}/{victim_local}",
                f"#shared/{victim}",
            ):
                status, _ = client.select(f'"{escape}"', readonly=True)
                assert status == "NO", f"{slug_a}: SELECT of a foreign path was not refused"


def test_unauthenticated_relay_refused(fleet: Any) -> None:
    """Nobody may relay to an outside domain without logging in, on 25 or on 587."""
    for slug_a, _ in _pair(fleet):
        address, name = _mail_endpoint(fleet, slug_a)
        with _PinnedSMTP(address, name, 25) as smtp:
            smtp.starttls(context=_tls_context(fleet))
            code = _assert_send_refused(smtp, f"someone@{OUTSIDE}", [f"victim@{OUTSIDE}"], uuid.uuid4().hex)
        assert code == 554 or 500 <= code < 600
        with _submission(fleet, slug_a, None) as smtp:
            code = _assert_send_refused(smtp, f"someone@{OUTSIDE}", [f"victim@{OUTSIDE}"], uuid.uuid4().hex)
        assert 500 <= code < 600


# ---------------------------------------------------------------- acceptance 3


def _quota_limit_bytes(client: _PinnedIMAP) -> int:
    """The STORAGE limit of the INBOX quota root (RFC 2087 reports KiB)."""
    status, data = client.getquotaroot("INBOX")
    assert status == "OK"
    text = b" ".join(item for group in data for item in group if isinstance(item, bytes)).decode()
    match = re.search(r"STORAGE \d+ (\d+)", text)
    assert match, "no STORAGE quota on the quota-test mailbox"
    return int(match.group(1)) * 1024


def _empty_inbox(client: _PinnedIMAP) -> None:
    client.select("INBOX")
    status, data = client.search(None, "ALL")
    if status == "OK" and data[0]:
        client.store("1:*", "+FLAGS.SILENT", r"(\Deleted)")
        client.expunge()


def _fill(client: _PinnedIMAP, chunk: int) -> None:
    """APPEND chunks until the server refuses with OVERQUOTA: the mailbox is then (nearly) full."""
    filler = _message("filler@lab.test", ["quota@lab.test"], uuid.uuid4().hex, "x" * chunk).as_bytes()
    for _ in range(256):
        try:
            status, data = client.append("INBOX", "", imaplib.Time2Internaldate(time.time()), filler)
        except imaplib.IMAP4.error as exc:
            assert "OVERQUOTA" in str(exc).upper() or "QUOTA" in str(exc).upper()
            return
        if status != "OK":
            assert b"QUOTA" in b" ".join(x for x in data if isinstance(x, bytes)).upper()
            return
    pytest.fail("the quota-test mailbox never reached its quota")


def test_over_quota_mailbox_rejects_at_rcpt_others_unaffected(fleet: Any) -> None:
    """A full mailbox is refused at RCPT (5xx); another recipient of the same message still gets it."""
    for slug_a, _ in _pair(fleet):
        quota_box = fleet.quota_mailbox(slug_a)
        sender = fleet.mailboxes(slug_a)[0]
        other = fleet.mailboxes(slug_a)[-1]
        with _imap(fleet, slug_a, quota_box) as client:
            _empty_inbox(client)
            limit = _quota_limit_bytes(client)
            chunk = max(limit // 8, 1024)
            _fill(client, chunk)
        try:
            token = uuid.uuid4().hex
            msg = _message(sender[0], [quota_box[0], other[0]], token, "y" * chunk)
            with _submission(fleet, slug_a, sender) as smtp:
                refused = smtp.send_message(msg)
            assert set(refused) == {quota_box[0]}, f"{slug_a}: refused recipients {sorted(refused)}"
            code, _ = refused[quota_box[0]]
            assert code == 552, f"{slug_a}: over-quota recipient refused with {code}, expected 552"
            _wait_for(fleet, slug_a, other, token)
        finally:
            with _imap(fleet, slug_a, quota_box) as client:
                _empty_inbox(client)


# ---------------------------------------------------------------- issue 20: a commune with three domains


def _three_domain_tenant(fleet: Any) -> Any:
    tenant = next((t for t in fleet.inventory.tenants if "mail" in t.services and len(t.domains) >= 3), None)
    assert tenant is not None, "the lab must have a commune with three mail domains"
    return tenant


def _box_per_domain(fleet: Any, tenant: Any) -> dict[str, tuple[str, str]]:
    boxes = {d: next((b for b in fleet.mailboxes(tenant.slug) if _domain_of(b[0]) == d), None) for d in tenant.domains}
    missing = sorted(d for d, box in boxes.items() if box is None)
    assert not missing, f"{tenant.slug}: no mailbox in {missing}"
    return boxes  # type: ignore[return-value]


def test_three_domain_tenant_receives_and_serves_mail_on_every_domain(fleet: Any) -> None:
    """SMTP delivery on 25 (as from outside) to a mailbox of each domain, then IMAPS read per domain.

    Each session verifies TLS against that domain's own service name (mail.<domain>), so the mail
    host's certificate, Postfix's virtual domains and Dovecot's userdb all cover every domain.
    """
    tenant = _three_domain_tenant(fleet)
    address = fleet.address(fleet.mail_host(tenant.slug))
    for domain, login in _box_per_domain(fleet, tenant).items():
        token = uuid.uuid4().hex
        with _PinnedSMTP(address, f"mail.{domain}", 25) as smtp:
            smtp.starttls(context=_tls_context(fleet))
            refused = smtp.send_message(_message("e2e@example.test", [login[0]], token))
        assert refused == {}, f"{domain}: recipient refused"
        deadline = time.monotonic() + DELIVERY_DEADLINE
        client = _PinnedIMAP(address, f"mail.{domain}", _tls_context(fleet))
        try:
            client.login(*login)
            while not _find(client, token):
                assert time.monotonic() < deadline, f"message {token} never reached {login[0]}"
                time.sleep(0.5)
        finally:
            with suppress(imaplib.IMAP4.error, OSError):
                client.logout()


def test_three_domain_tenant_signs_each_domain_with_its_own_dkim_key(fleet: Any) -> None:
    """A mailbox of each domain submits (587, AUTH) to a mailbox of the next domain: delivered, DKIM d=<its domain>."""
    tenant = _three_domain_tenant(fleet)
    boxes = list(_box_per_domain(fleet, tenant).items())
    dnsfunc = _dkim_dnsfunc(fleet, fleet.mail_host(tenant.slug))
    for index, (domain, sender) in enumerate(boxes):
        rcpt = boxes[(index + 1) % len(boxes)][1]
        token = uuid.uuid4().hex
        with _submission(fleet, tenant.slug, sender) as smtp:
            refused = smtp.send_message(_message(sender[0], [rcpt[0]], token))
        assert refused == {}, f"{domain}: recipient refused"
        raw = _wait_for(fleet, tenant.slug, rcpt, token)
        signature = email.message_from_bytes(raw, policy=email.policy.default).get_all("DKIM-Signature") or []
        assert signature, f"{domain}: no DKIM-Signature"
        header = str(signature[0]).replace("\n", "")
        tags = dict(part.strip().split("=", 1) for part in header.split(";") if "=" in part)
        assert tags["d"].strip() == domain, f"{sender[0]}: signed for {tags['d']}"
        assert dkim.verify(raw, dnsfunc=dnsfunc), f"{domain}: DKIM signature does not verify"
