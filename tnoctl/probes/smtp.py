"""SMTP and submission: banner, EHLO, STARTTLS, certificate chain and expiry.

Pure part: :func:`parse_reply` and :func:`ehlo_extensions` work on raw server bytes and
are tested on recorded Postfix transcripts. I/O part: :func:`probe_smtp` talks the
protocol itself (a dozen lines) so the TLS server name can be the tenant's ``mail.<domain>``
while the TCP connection goes to the host address.
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from tnoctl.probes.base import ProbeResult, Stopwatch, short_error
from tnoctl.probes.tls import client_context, expiry_result, peer_info

MAX_REPLY_LINES = 100


@dataclass(frozen=True)
class Reply:
    """One SMTP reply: its code and the text of each line."""

    code: int
    lines: tuple[str, ...]


class ProtocolError(Exception):
    """The server said something that is not SMTP (or not what the probe expected)."""


def parse_reply(raw_lines: list[bytes]) -> Reply:
    """Parse the lines of one (possibly multi-line) reply: ``250-a``, ``250-b``, ``250 c``."""
    if not raw_lines:
        raise ProtocolError("empty reply")
    codes, texts = set(), []
    for raw in raw_lines:
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        if len(line) < 3 or not line[:3].isdigit() or (len(line) > 3 and line[3] not in " -"):
            raise ProtocolError(f"not an SMTP reply line: {line[:60]!r}")
        codes.add(int(line[:3]))
        texts.append(line[4:])
    if len(codes) != 1:
        raise ProtocolError("mixed reply codes")
    return Reply(codes.pop(), tuple(texts))


def read_reply(fh: BinaryIO) -> Reply:
    """Read lines until the last line of a reply (``NNN `` or a bare ``NNN``)."""
    lines: list[bytes] = []
    while len(lines) < MAX_REPLY_LINES:
        line = fh.readline(1024)
        if not line:
            raise ProtocolError("connection closed")
        lines.append(line)
        if len(line) < 4 or line[3:4] != b"-":
            return parse_reply(lines)
    raise ProtocolError("reply too long")


def ehlo_extensions(reply: Reply) -> set[str]:
    """Keywords advertised after EHLO, upper-case (``STARTTLS``, ``AUTH``, ``PIPELINING``...)."""
    return {line.split()[0].upper() for line in reply.lines[1:] if line.strip()}


def _command(sock_file: BinaryIO, sock: socket.socket, line: str) -> Reply:
    sock.sendall(line.encode() + b"\r\n")
    return read_reply(sock_file)


def probe_smtp(tenant: str, address: str, port: int, server_name: str, ca_file: Path | None,
               timeout: float, now: float, check: str = "smtp") -> list[ProbeResult]:
    """Banner, EHLO, STARTTLS, EHLO again, certificate; returns the protocol and the TLS result."""
    watch = Stopwatch()
    try:
        with socket.create_connection((address, port), timeout=timeout) as sock:
            fh = sock.makefile("rb")
            banner = read_reply(fh)
            if banner.code != 220:
                raise ProtocolError(f"banner {banner.code}")
            ehlo = _command(fh, sock, "EHLO probe.tnoctl.invalid")
            if ehlo.code != 250 or "STARTTLS" not in ehlo_extensions(ehlo):
                raise ProtocolError("STARTTLS not offered")
            if _command(fh, sock, "STARTTLS").code != 220:
                raise ProtocolError("STARTTLS refused")
            with client_context(ca_file).wrap_socket(sock, server_hostname=server_name) as tls:
                info = peer_info(tls)
                tfh = tls.makefile("rb")
                ehlo2 = _command(tfh, tls, "EHLO probe.tnoctl.invalid")
                if ehlo2.code != 250:
                    raise ProtocolError(f"EHLO after STARTTLS: {ehlo2.code}")
                _command(tfh, tls, "QUIT")
    except (OSError, ssl.SSLError, ProtocolError, ValueError) as exc:
        return [ProbeResult(tenant, "mail", check, False, watch(), short_error(exc))]
    latency = watch()
    banner_text = banner.lines[0][:80] if banner.lines else ""
    return [ProbeResult(tenant, "mail", check, True, latency, f"banner: {banner_text}"),
            expiry_result(tenant, "mail", f"{check}_certificate", info, now, latency)]
