"""Disaster recovery onto a sixth lab host that never served the tenant (issue 16, item 6). Needs root + lab.

A mail-only commune on mail2 receives mail and is backed up; mail2 is then powered off (the disaster).
A new machine, ``mail3`` (198.18.0.16), is added to hosts.yml and booted alone (tnoctl.lab.spare: the
session fleet is neither re-deployed nor re-booted), and `tnoctl restore --tenant T --to-host mail3`
brings the commune back there. Proved from outside, as its users and the other communes see it:

* every message delivered before the disaster reads back bit-exact over IMAPS from mail3, whose
  certificate (verified against the lab trust bundle as ``mail.<domain>``: pebble issued it) now covers
  the commune's names;
* a user of a mail1 commune submits a message to it: mail1 has no transport-map entry for the domain and
  follows its MX, ``mail.<domain>``, whose A record the restore moved to mail3;
* the lab DNS answers mail3's address for ``mail.<domain>`` (the restore published it).

Then the fleet is put back as it was (placement, mail2 powered on, mail1/mail2 redeployed, DNS), so the
tests after this one see the session fleet unchanged. Reuses the session `fleet`/`backups` fixtures.
"""

from __future__ import annotations

import hashlib
import imaplib
import smtplib
import ssl
import time
import uuid
from email.message import EmailMessage

import pytest

from tests.e2e.test_deploy_mail import _submission
from tnoctl import paths
from tnoctl.lab.spare import SPARE_ADDRESS, SPARE_NAME, spare_host
from tnoctl.run.dnsclient import DnspythonClient

pytestmark = [pytest.mark.root, pytest.mark.lab]
PER_MAILBOX = 4
DELIVERY_WAIT = 60.0


class _Imaps(imaplib.IMAP4_SSL):
    """IMAPS to an address, verifying the certificate for a service name (``mail.<domain>``)."""

    def __init__(self, address: str, server_name: str, context: ssl.SSLContext) -> None:
        self._server_name = server_name
        super().__init__(address, 993, ssl_context=context, timeout=30)

    def _create_socket(self, timeout):
        sock = imaplib.IMAP4._create_socket(self, timeout)
        return self.ssl_context.wrap_socket(sock, server_hostname=self._server_name)


def _context(fleet) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(fleet.ca_cert))


def _inbox(fleet, address: str, name: str, user: str, password: str) -> list[tuple[str, str]]:
    """(Subject, sha256 of the whole message) of every message in INBOX, sorted."""
    with _Imaps(address, name, _context(fleet)) as imap:
        imap.login(user, password)
        imap.select("INBOX", readonly=True)
        _typ, data = imap.search(None, "ALL")
        out = []
        for num in data[0].split():
            _typ, parts = imap.fetch(num, "(BODY.PEEK[])")
            raw = parts[0][1]
            subject = next((line.split(b":", 1)[1].strip().decode(errors="replace") for line in raw.splitlines()
                            if line.lower().startswith(b"subject:")), "")
            out.append((subject, hashlib.sha256(raw).hexdigest()))
    return sorted(out)


def _deliver(fleet, slug: str, tag: str) -> None:
    """PER_MAILBOX messages (text and binary attachments) to each regular mailbox, over SMTP on port 25."""
    with smtplib.SMTP(fleet.address(fleet.mail_host(slug)), 25, timeout=30) as smtp:
        for address, _pw in fleet.mailboxes(slug):
            for i in range(PER_MAILBOX):
                msg = EmailMessage()
                msg["From"], msg["To"], msg["Subject"] = "dr@example.test", address, f"{tag} {i}"
                msg.set_content(f"ligne {i} é\n" * (1 + 50 * i))
                msg.add_attachment(bytes(range(256)) * (4 * (i + 1)), maintype="application",
                                   subtype="octet-stream", filename=f"piece-{i}.bin")
                smtp.send_message(msg)


def _wait_for(fetch, condition, what: str) -> list[tuple[str, str]]:
    """Poll ``fetch()`` until ``condition(result)`` (asynchronous delivery), at most DELIVERY_WAIT seconds."""
    deadline = time.monotonic() + DELIVERY_WAIT
    while True:
        result = fetch()
        if condition(result):
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} after {DELIVERY_WAIT:.0f}s: {result}")
        time.sleep(1)


def test_tenant_restored_onto_a_new_host_receives_and_serves_its_mail_there(fleet, backups, lab) -> None:
    slug = next(t.slug for t in fleet.inventory.tenants if set(t.services) == {"mail"})  # mail only: no office move
    old = fleet.mail_host(slug)
    sender_slug = next(s for s in fleet.tenants_with("mail") if fleet.mail_host(s) != old)
    domain, name = fleet.domain(slug), f"mail.{fleet.domain(slug)}"
    boxes = fleet.mailboxes(slug)
    tag = f"dr-{uuid.uuid4().hex[:8]}"
    _deliver(fleet, slug, tag)

    def before_of(user: str, password: str) -> list[tuple[str, str]]:
        return _wait_for(lambda: _inbox(fleet, fleet.address(old), name, user, password),
                         lambda got: sum(1 for s, _h in got if s.startswith(tag)) >= PER_MAILBOX,
                         f"{user}: fewer than {PER_MAILBOX} messages delivered")

    before = {user: before_of(user, pw) for user, pw in boxes}
    fleet.ok("backup", "run", "--tenant", slug, "--component", "mail")
    assert before == {user: _inbox(fleet, fleet.address(old), name, user, pw) for user, pw in boxes}  # unchanged

    tenant_file = paths.LAB_INVENTORY / "tenants" / f"{slug}.yml"
    saved = tenant_file.read_text()
    lab.stop_host(old)  # the disaster: the commune's mail host is gone
    try:
        with spare_host(paths.LAB_INVENTORY):
            try:
                started = time.monotonic()
                out = fleet.ok("restore", "--tenant", slug, "--to-host", SPARE_NAME, "--yes")
                print(f"\nrestore --tenant {slug} --to-host {SPARE_NAME}: {time.monotonic() - started:.1f}s\n{out}")
                assert "0 missing" in out

                # served there, bit-exact, under a certificate that names the commune
                for user, pw in boxes:
                    assert _inbox(fleet, SPARE_ADDRESS, name, user, pw) == before[user], user
                # a user of another commune (on mail1) writes to it: routed by MX to mail3
                transport = fleet.ssh(fleet.mail_host(sender_slug), "cat", "/etc/postfix/tno/transport").stdout
                assert not [line for line in transport.splitlines() if line.startswith(domain + " ")], transport
                sender, sender_pw = fleet.mailboxes(sender_slug)[0]
                rcpt, rcpt_pw = boxes[0]
                msg = EmailMessage()
                msg["From"], msg["To"], msg["Subject"] = sender, rcpt, f"{tag} after"
                msg.set_content("écrit après le sinistre\n")
                with _submission(fleet, sender_slug, (sender, sender_pw)) as smtp:  # STARTTLS verifies mail.<domain>
                    smtp.send_message(msg)
                _wait_for(lambda: _inbox(fleet, SPARE_ADDRESS, name, rcpt, rcpt_pw),
                          lambda got: any(s == f"{tag} after" for s, _h in got),
                          f"{rcpt}: the message from {sender} did not reach {SPARE_NAME}")
                # the DNS follows: the commune's mail names resolve to the new host
                dns = DnspythonClient(fleet.inventory.platform.tno_dns_server)
                for svc in ("mail", "smtp", "imap"):
                    assert dns.query(f"{svc}.{domain}.", "A") == [SPARE_ADDRESS], svc
            finally:  # before mail3 leaves hosts.yml: the inventory must stay valid without it
                tenant_file.write_text(saved)
    finally:
        tenant_file.write_text(saved)
        lab.restart_host(old)
        sender_host_name = fleet.mail_host(sender_slug)
        fleet.ok("deploy", "--host", sender_host_name, "--host", old, "--yes")  # mail2 back, its records with it
        fleet.ok("tenant", "dns", slug, "--publish", "--yes")  # mail.<domain> A back to mail2 (checked: exit 0)
