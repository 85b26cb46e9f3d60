"""HTTPS through the proxy: one GET to a host address with the tenant's name as SNI and Host.

Pure part: :func:`classify_status`. I/O part: :func:`fetch`, a small wrapper around
``http.client`` that connects to the address but verifies the certificate against
``office.<domain>`` (the lab has no DNS), and :func:`probe_https`.
"""

from __future__ import annotations

import http.client
import ssl
from dataclasses import dataclass
from pathlib import Path

from tnoctl.probes.base import ProbeResult, Stopwatch, short_error
from tnoctl.probes.tls import CertInfo, client_context, expiry_result, peer_info

MAX_BODY = 4 * 1024 * 1024


@dataclass(frozen=True)
class HttpResponse:
    """What a probe needs from an HTTP answer."""

    status: int
    content_type: str
    body: bytes
    cert: CertInfo


class _SniHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, address: str, port: int, server_name: str, ctx: ssl.SSLContext, timeout: float) -> None:
        super().__init__(address, port, timeout=timeout, context=ctx)
        self.server_name = server_name

    def connect(self) -> None:
        http.client.HTTPConnection.connect(self)
        self.sock = self._context.wrap_socket(self.sock, server_hostname=self.server_name)


def fetch(address: str, port: int, server_name: str, path: str, ca_file: Path | None,
          timeout: float) -> HttpResponse:
    """GET ``https://<server_name><path>`` from ``address:port``; raise OSError/SSLError on failure."""
    conn = _SniHTTPSConnection(address, port, server_name, client_context(ca_file), timeout)
    try:
        conn.connect()
        assert isinstance(conn.sock, ssl.SSLSocket)
        cert = peer_info(conn.sock)
        conn.request("GET", path, headers={"Host": server_name, "User-Agent": "tnoctl-probe"})
        resp = conn.getresponse()
        body = resp.read(MAX_BODY)
        return HttpResponse(resp.status, resp.getheader("Content-Type", ""), body, cert)
    finally:
        conn.close()


def classify_status(status: int) -> tuple[bool, str]:
    """Through the proxy, anything but a 5xx means the chain proxy → service answers."""
    if status >= 500:
        return False, f"HTTP {status} from the proxy or the service"
    return True, f"HTTP {status}"


def probe_https(tenant: str, address: str, port: int, server_name: str, ca_file: Path | None,
                timeout: float, now: float, path: str = "/") -> list[ProbeResult]:
    """GET one path through the proxy; report the HTTP outcome and the certificate lifetime."""
    watch = Stopwatch()
    try:
        resp = fetch(address, port, server_name, path, ca_file, timeout)
    except (OSError, ssl.SSLError, http.client.HTTPException) as exc:
        return [ProbeResult(tenant, "office", "https", False, watch(), short_error(exc))]
    latency = watch()
    ok, detail = classify_status(resp.status)
    return [ProbeResult(tenant, "office", "https", ok, latency, detail, value=float(resp.status)),
            expiry_result(tenant, "office", "https_certificate", resp.cert, now, latency)]
