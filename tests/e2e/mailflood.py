"""Mail flood for the "no mail lost" test (issue 7, acceptance 5): send while mail hosts restart, then count.

Why: an upgrade that restarts Postfix and Dovecot must not lose or duplicate mail that the platform
acknowledged. The contract of SMTP is the ``250`` after DATA: once a client got it, the message is the
platform's responsibility; before it, the client keeps the message and retries. So the sender records
exactly the messages that got ``250`` and the checker demands each of them exactly once over IMAP.

Every delivery attempt carries its own token (``<run>.<seq>.<attempt>``) in the ``X-Tno-Flood`` header
and the Message-ID. A retry is a new attempt with a new token, so a message delivered although its
client saw an error (``250`` lost with the connection) shows up as an *unacknowledged* token instead of
masking a real duplicate. Pure parts (tokens, tally) are unit-tested in tests/unit/test_mailflood.py;
the network parts reuse the probes' TLS helpers (server name ``mail.<domain>``, the lab has no DNS).
Passwords live in :class:`Route` fields hidden from ``repr`` and are never printed.
"""

from __future__ import annotations

import contextlib
import imaplib
import re
import secrets
import smtplib
import ssl
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from email.message import EmailMessage

from tnoctl.probes.imap import SniIMAP4SSL
from tnoctl.probes.roundtrip import _SniSMTP as SniSMTP  # STARTTLS verifying mail.<domain>, not the IP

HEADER = "X-Tno-Flood"
SOCKET_TIMEOUT = 30.0
"""Guards against a hung server only; nothing asserts on durations."""
_TOKEN_RE = re.compile(r"^([0-9a-f]{12})\.(\d{5})\.(\d+)$")


# ---------------------------------------------------------------- pure part


def new_run_id() -> str:
    """A random run identifier: every token of one flood starts with it (IMAP searches by it)."""
    return secrets.token_hex(6)


def make_token(run_id: str, seq: int, attempt: int) -> str:
    """The token of one delivery attempt: ``<run>.<seq:05d>.<attempt>``."""
    return f"{run_id}.{seq:05d}.{attempt}"


def parse_token(token: str) -> tuple[str, int, int]:
    """(run, seq, attempt) of a token; ValueError for anything else (e.g. a foreign header)."""
    match = _TOKEN_RE.match(token.strip())
    if not match:
        raise ValueError(f"not a flood token: {token!r}")
    return match.group(1), int(match.group(2)), int(match.group(3))


@dataclass(frozen=True)
class Tally:
    """What IMAP shows compared with what the sender was told."""

    accepted: int
    found: int
    missing: tuple[str, ...]
    """Accepted (250) but never delivered: mail lost."""
    duplicated: tuple[str, ...]
    """Delivered more than once."""
    unacknowledged: tuple[str, ...]
    """Delivered although the client never saw the 250 (it retried under a new token): not a loss."""

    @property
    def exactly_once(self) -> bool:
        return not self.missing and not self.duplicated


def tally(accepted: Iterable[str], found: Iterable[str]) -> Tally:
    """Compare accepted tokens with the tokens found in the mailboxes (one entry per message found)."""
    accepted_set = set(accepted)
    counts = Counter(found)
    return Tally(
        accepted=len(accepted_set),
        found=sum(counts.values()),
        missing=tuple(sorted(t for t in accepted_set if counts[t] == 0)),
        duplicated=tuple(sorted(t for t, n in counts.items() if n > 1)),
        unacknowledged=tuple(sorted(t for t in counts if t not in accepted_set)),
    )


def retryable(exc: BaseException) -> bool:
    """True for what a well-behaved client retries: connection trouble and 4xx; False for 5xx and the rest."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(400 <= code < 500 for code, _ in exc.recipients.values())
    if isinstance(exc, smtplib.SMTPResponseException):
        return 400 <= exc.smtp_code < 500
    return isinstance(exc, smtplib.SMTPServerDisconnected | OSError)


def error_kind(exc: BaseException) -> str:
    """A short, secret-free label for the retry statistics (``ConnectionRefusedError``, ``smtp 451``)."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return "smtp " + ",".join(sorted({str(code) for code, _ in exc.recipients.values()}))
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"smtp {exc.smtp_code}"
    return type(exc).__name__


def backoff(attempt: int, base: float = 0.2, cap: float = 2.0) -> float:
    """Seconds to wait before retry number ``attempt`` (1-based): doubling from ``base``, at most ``cap``."""
    return min(cap, base * 2 ** max(attempt - 1, 0))


# ---------------------------------------------------------------- endpoints and messages


@dataclass(frozen=True)
class Endpoint:
    """A mail host as a client sees it: the lab address and the TLS server name to verify."""

    address: str
    server_name: str


@dataclass(frozen=True)
class Route:
    """One way a message travels: ``sender`` submits on ``submit_via`` (587, AUTH) to ``recipient``."""

    submit_via: Endpoint
    sender: str
    sender_password: str = field(repr=False)
    recipient: str


def make_message(route: Route, token: str) -> bytes:
    """The flood message of one attempt, tagged with ``token`` (header and Message-ID)."""
    msg = EmailMessage()
    msg["From"] = route.sender
    msg["To"] = route.recipient
    msg["Subject"] = f"tnoctl flood {token}"
    msg["Message-ID"] = f"<{token}@{route.sender.rsplit('@', 1)[1]}>"
    msg[HEADER] = token
    msg.set_content(f"Upgrade no-mail-lost test message {token}; deleted by the test.\n")
    return msg.as_bytes()


# ---------------------------------------------------------------- sender


@dataclass
class SendReport:
    """What the sender saw; read after :meth:`Sender.join`."""

    accepted: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    gave_up: list[str] = field(default_factory=list)
    attempts: int = 0
    retries: int = 0
    errors: Counter[str] = field(default_factory=Counter)

    def summary(self) -> str:
        errors = ", ".join(f"{kind} x{n}" for kind, n in self.errors.most_common()) or "none"
        return (f"accepted={len(self.accepted)} rejected={len(self.rejected)} gave_up={len(self.gave_up)} "
                f"attempts={self.attempts} retries={self.retries} errors: {errors}")


class Sender(threading.Thread):
    """Submit messages over the routes in turn until stopped (and at least ``min_messages`` accepted).

    One SMTP session per route is kept open and reused; any error drops it, and the message is retried
    (new token, new session) after :func:`backoff` until ``give_up_after`` seconds have passed.
    """

    def __init__(self, run_id: str, routes: list[Route], tls: ssl.SSLContext, *, min_messages: int,
                 interval: float = 0.1, give_up_after: float = 300.0) -> None:
        super().__init__(name=f"mailflood-{run_id}", daemon=True)
        if not routes:
            raise ValueError("no routes to send over")
        self.run_id, self.routes, self.tls = run_id, routes, tls
        self.min_messages, self.interval, self.give_up_after = min_messages, interval, give_up_after
        self.report = SendReport()
        self.stop_event = threading.Event()
        self.abort_event = threading.Event()
        self._sessions: dict[int, smtplib.SMTP] = {}

    def stop(self) -> None:
        """Ask the sender to finish once ``min_messages`` were accepted (or a message failed for good)."""
        self.stop_event.set()

    def abort(self) -> None:
        """Stop now, even in the middle of retrying a message (test teardown)."""
        self.stop_event.set()
        self.abort_event.set()

    def _done(self) -> bool:
        report = self.report
        failed = bool(report.rejected or report.gave_up)
        return self.abort_event.is_set() or (
            self.stop_event.is_set() and (len(report.accepted) >= self.min_messages or failed))

    def run(self) -> None:
        seq = 0
        try:
            while not self._done():
                self._deliver(seq, seq % len(self.routes))
                seq += 1
                time.sleep(self.interval)
        finally:
            for index in list(self._sessions):
                self._drop(index)

    def _deliver(self, seq: int, index: int) -> None:
        """Send message ``seq`` over route ``index``, retrying until accepted, rejected or given up."""
        route, started, attempt = self.routes[index], time.monotonic(), 0
        while True:
            attempt += 1
            token = make_token(self.run_id, seq, attempt)
            self.report.attempts += 1
            try:
                self._session(index).sendmail(route.sender, [route.recipient], make_message(route, token))
            except (smtplib.SMTPException, OSError) as exc:
                self._drop(index)
                self.report.errors[error_kind(exc)] += 1
                if not retryable(exc):
                    self.report.rejected.append(token)
                    return
                if self.abort_event.is_set() or time.monotonic() - started > self.give_up_after:
                    self.report.gave_up.append(token)
                    return
                self.report.retries += 1
                time.sleep(backoff(attempt))
                continue
            self.report.accepted.append(token)
            return

    def _session(self, index: int) -> smtplib.SMTP:
        """The open, authenticated submission session of route ``index`` (opened on demand)."""
        if index not in self._sessions:
            route = self.routes[index]
            client = SniSMTP(route.submit_via.server_name, SOCKET_TIMEOUT)
            try:
                client.connect(route.submit_via.address, 587)
                client.ehlo("flood.lab.test")
                client.starttls(context=self.tls)
                client.ehlo("flood.lab.test")
                client.login(route.sender, route.sender_password)
            except BaseException:
                client.close()
                raise
            self._sessions[index] = client
        return self._sessions[index]

    def _drop(self, index: int) -> None:
        client = self._sessions.pop(index, None)
        if client is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                client.quit()
            client.close()


# ---------------------------------------------------------------- checker


def _uid_set(uids: list[bytes]) -> str:
    return ",".join(uid.decode() for uid in uids)


def sweep(endpoint: Endpoint, login: tuple[str, str], tls: ssl.SSLContext, run_id: str, *,
          delete: bool, search: str = "HEADER") -> list[str]:
    """Tokens of this run's messages in the INBOX of ``login`` (one per message), deleting them if asked.

    ``search="HEADER"`` finds flood messages by their header; ``search="TEXT"`` also finds bounces
    (a DSN quotes the original headers in its body), returned as ``bounce`` entries.
    """
    client = SniIMAP4SSL(endpoint.address, 993, endpoint.server_name, tls, SOCKET_TIMEOUT)
    try:
        client.login(*login)
        client.select("INBOX")
        criteria = ("HEADER", HEADER, run_id) if search == "HEADER" else ("TEXT", run_id)
        status, data = client.uid("SEARCH", *criteria)
        if status != "OK":
            raise AssertionError(f"IMAP SEARCH failed for {login[0]}: {status}")
        uids = [uid for chunk in data if chunk for uid in chunk.split()]
        if not uids:
            return []
        status, data = client.uid("FETCH", _uid_set(uids), f"(BODY.PEEK[HEADER.FIELDS ({HEADER})])")
        if status != "OK":
            raise AssertionError(f"IMAP FETCH failed for {login[0]}: {status}")
        tokens = [_header_token(part[1]) for part in data if isinstance(part, tuple)]
        if delete:
            client.uid("STORE", _uid_set(uids), "+FLAGS.SILENT", r"(\Deleted)")
            client.uid("EXPUNGE", _uid_set(uids))  # UIDPLUS: only these, never other \Deleted messages
        return tokens
    finally:
        with contextlib.suppress(OSError, imaplib.IMAP4.error):
            client.logout()


def _header_token(raw: bytes) -> str:
    """The token of a fetched ``X-Tno-Flood:`` header block, or ``bounce`` when the message has none."""
    match = re.search(rb"^" + HEADER.encode() + rb":\s*(\S+)", raw, re.IGNORECASE | re.MULTILINE)
    return match.group(1).decode() if match else "bounce"
