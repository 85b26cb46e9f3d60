"""IMAP (STARTTLS on 143) and IMAPS (993): greeting, capabilities, TLS, canary login.

Pure part: :func:`parse_greeting` and :func:`parse_capabilities` on recorded Dovecot
lines. I/O part: :class:`SniIMAP4` / :class:`SniIMAP4SSL` connect to the host address
while using ``mail.<domain>`` as TLS server name (the lab has no DNS). The canary
password is passed in by the caller (read from the vault) and never logged.
"""

from __future__ import annotations

import contextlib
import imaplib
import re
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

from tnoctl.probes.base import ProbeResult, Stopwatch, short_error
from tnoctl.probes.tls import client_context, expiry_result, peer_info

_CAPA_RE = re.compile(r"\[CAPABILITY ([^\]]*)\]", re.IGNORECASE)


@dataclass(frozen=True)
class Greeting:
    """The server greeting: status (OK/PREAUTH/BYE) and capabilities if it announced them."""

    status: str
    capabilities: frozenset[str]


def parse_capabilities(text: str) -> frozenset[str]:
    """Capabilities from ``[CAPABILITY ...]`` or from an untagged ``* CAPABILITY ...`` line."""
    match = _CAPA_RE.search(text)
    if match:
        words = match.group(1).split()
    elif text.upper().startswith("* CAPABILITY "):
        words = text.split()[2:]
    else:
        return frozenset()
    return frozenset(w.upper() for w in words)


def parse_greeting(line: bytes | str) -> Greeting:
    """Parse ``* OK [CAPABILITY IMAP4rev1 STARTTLS ...] Dovecot ready.``; raise ValueError otherwise."""
    text = line.decode("utf-8", "replace") if isinstance(line, bytes) else line
    text = text.strip()
    parts = text.split(None, 2)
    if len(parts) < 2 or parts[0] != "*" or parts[1].upper() not in {"OK", "PREAUTH", "BYE"}:
        raise ValueError(f"not an IMAP greeting: {text[:60]!r}")
    return Greeting(parts[1].upper(), parse_capabilities(text))


class SniIMAP4(imaplib.IMAP4):
    """IMAP4 to an address, with STARTTLS using a chosen server name."""

    def __init__(self, address: str, port: int, server_name: str, timeout: float) -> None:
        self.server_name = server_name
        super().__init__(address, port, timeout=timeout)

    def starttls_sni(self, ctx: ssl.SSLContext) -> None:
        """STARTTLS with SNI/verification against :attr:`server_name` rather than the address."""
        typ, _ = self._simple_command("STARTTLS")
        if typ != "OK":
            raise imaplib.IMAP4.error("STARTTLS refused")
        self.sock = ctx.wrap_socket(self.sock, server_hostname=self.server_name)
        self.file = self.sock.makefile("rb")
        self._get_capabilities()


class SniIMAP4SSL(imaplib.IMAP4):
    """IMAP over implicit TLS (993) to an address, verifying against a chosen server name."""

    def __init__(self, address: str, port: int, server_name: str, ctx: ssl.SSLContext,
                 timeout: float) -> None:
        self.server_name, self.ctx = server_name, ctx
        super().__init__(address, port, timeout=timeout)

    def _create_socket(self, timeout: float | None) -> socket.socket:
        sock = socket.create_connection((self.host, self.port), timeout)
        return self.ctx.wrap_socket(sock, server_hostname=self.server_name)


def probe_imap(tenant: str, address: str, port: int, server_name: str, ca_file: Path | None,
               timeout: float, now: float, implicit_tls: bool,
               login: tuple[str, str] | None) -> list[ProbeResult]:
    """Connect (STARTTLS or implicit TLS), check the certificate and optionally log the canary in."""
    check = "imaps" if implicit_tls else "imap"
    watch = Stopwatch()
    ctx = client_context(ca_file)
    results: list[ProbeResult] = []
    try:
        if implicit_tls:
            conn: imaplib.IMAP4 = SniIMAP4SSL(address, port, server_name, ctx, timeout)
        else:
            conn = SniIMAP4(address, port, server_name, timeout)
            parse_greeting(conn.welcome)
            if "STARTTLS" not in conn.capabilities:
                raise imaplib.IMAP4.error("STARTTLS not offered")
            conn.starttls_sni(ctx)
        info = peer_info(conn.sock)  # type: ignore[arg-type]
        latency = watch()
        results.append(ProbeResult(tenant, "mail", check, True, latency, "greeting and TLS ok"))
        results.append(expiry_result(tenant, "mail", f"{check}_certificate", info, now, latency))
        if login is not None:
            login_watch = Stopwatch()
            try:
                conn.login(login[0], login[1])
                conn.select("INBOX", readonly=True)
                results.append(ProbeResult(tenant, "mail", f"{check}_login", True, login_watch(),
                                           "canary login ok"))
            except imaplib.IMAP4.error:
                results.append(ProbeResult(tenant, "mail", f"{check}_login", False, login_watch(),
                                           "canary login refused"))
        with contextlib.suppress(OSError, imaplib.IMAP4.error):
            conn.logout()
    except (OSError, ssl.SSLError, imaplib.IMAP4.error, ValueError) as exc:
        results = [ProbeResult(tenant, "mail", check, False, watch(), short_error(exc))]
    return results
