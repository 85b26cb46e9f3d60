"""Mail round trip: submit a message from the tenant's canary to itself, find it over IMAP, delete it.

Measures the end-to-end latency a user sees (submission → delivery → visible in INBOX).
Pure part: :func:`make_message` and :func:`parse_search`. I/O: submission on 587 with
STARTTLS and AUTH (smtplib, server name forced to ``mail.<domain>``), then IMAPS polling.
The canary password is passed in by the caller and never logged or returned.
"""

from __future__ import annotations

import contextlib
import imaplib
import secrets
import smtplib
import ssl
import time
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

from tnoctl.probes.base import ProbeResult, Stopwatch, short_error
from tnoctl.probes.imap import SniIMAP4SSL
from tnoctl.probes.tls import client_context

HEADER = "X-Tnoctl-Probe"
POLL_INTERVAL = 0.25


def make_message(address: str, token: str, now: float) -> bytes:
    """The probe message: from and to the canary, tagged with a unique token header."""
    msg = EmailMessage()
    msg["From"] = address
    msg["To"] = address
    msg["Subject"] = f"tnoctl round-trip probe {token}"
    msg["Date"] = formatdate(now, localtime=False)
    msg["Message-ID"] = make_msgid(domain=address.rsplit("@", 1)[-1])
    msg[HEADER] = token
    msg.set_content("Automatic probe message from tnoctl; it deletes itself.\n")
    return msg.as_bytes()


def parse_search(data: list[bytes | None]) -> list[bytes]:
    """Message numbers from an imaplib SEARCH answer (``[b'1 4 7']``)."""
    ids: list[bytes] = []
    for chunk in data:
        if chunk:
            ids.extend(chunk.split())
    return ids


class _SniSMTP(smtplib.SMTP):
    """smtplib with STARTTLS verifying ``server_name`` instead of the connected address."""

    def __init__(self, server_name: str, timeout: float) -> None:
        super().__init__(timeout=timeout)
        self.server_name = server_name

    def connect(self, host: str = "localhost", port: int = 0, source_address: object = None) -> tuple[int, bytes]:
        reply = super().connect(host, port, source_address)  # type: ignore[arg-type]
        self._host = self.server_name  # smtplib uses _host as the TLS server name
        return reply


def probe_roundtrip(tenant: str, address: str, server_name: str, mailbox: str, password: str,
                    ca_file: Path | None, timeout: float, submission_port: int = 587,
                    imaps_port: int = 993) -> ProbeResult:
    """Send, poll INBOX until the token shows up (or ``timeout``), delete it; value = latency."""
    token = secrets.token_hex(8)
    watch = Stopwatch()
    deadline = time.monotonic() + timeout
    ctx: ssl.SSLContext = client_context(ca_file)
    try:
        with _SniSMTP(server_name, timeout) as smtp:
            smtp.connect(address, submission_port)
            smtp.starttls(context=ctx)
            smtp.login(mailbox, password)
            smtp.sendmail(mailbox, [mailbox], make_message(mailbox, token, time.time()))
        imap = SniIMAP4SSL(address, imaps_port, server_name, ctx, timeout)
        try:
            imap.login(mailbox, password)
            imap.select("INBOX")
            while True:
                typ, data = imap.search(None, "HEADER", HEADER, token)
                ids = parse_search(data) if typ == "OK" else []
                if ids:
                    latency = watch()
                    for num in ids:
                        imap.store(num.decode(), "+FLAGS", "\\Deleted")
                    imap.expunge()
                    return ProbeResult(tenant, "mail", "roundtrip", True, latency,
                                       f"delivered in {latency:.2f}s", value=latency)
                if time.monotonic() >= deadline:
                    return ProbeResult(tenant, "mail", "roundtrip", False, watch(),
                                       f"not delivered within {timeout:g}s")
                time.sleep(POLL_INTERVAL)
                imap.noop()
        finally:
            with contextlib.suppress(OSError, imaplib.IMAP4.error):
                imap.logout()
    except (OSError, ssl.SSLError, smtplib.SMTPException, imaplib.IMAP4.error, ValueError) as exc:
        return ProbeResult(tenant, "mail", "roundtrip", False, watch(), short_error(exc))
