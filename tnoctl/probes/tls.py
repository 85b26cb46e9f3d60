"""TLS: client contexts (lab CA file or system trust) and certificate facts (expiry, names).

Pure part: :func:`cert_info` parses a DER certificate (tested on certificates made in the
test). I/O part: :func:`probe_tls` opens a direct TLS connection (IMAPS, HTTPS, port 465)
to a host *address* with the tenant's service name as SNI, since the lab has no DNS.
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from tnoctl.probes.base import ProbeResult, Stopwatch, short_error

EXPIRY_WARNING_DAYS = 21
EXPIRY_CRITICAL_DAYS = 7


@dataclass(frozen=True)
class CertInfo:
    """What the probes report about a server certificate."""

    subject: str
    issuer: str
    not_after: float
    dns_names: tuple[str, ...]

    def days_left(self, now: float) -> float:
        """Days until expiry (negative when expired)."""
        return (self.not_after - now) / 86400.0


def cert_info(der: bytes) -> CertInfo:
    """Parse a DER certificate into :class:`CertInfo`."""
    cert = x509.load_der_x509_certificate(der)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = tuple(san.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        names = ()
    return CertInfo(cert.subject.rfc4514_string(), cert.issuer.rfc4514_string(),
                    cert.not_valid_after_utc.timestamp(), names)


def client_context(ca_file: Path | None) -> ssl.SSLContext:
    """Verifying client context: the given CA file (lab) or the system trust store (production)."""
    ctx = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def expiry_result(tenant: str, component: str, check: str, info: CertInfo, now: float,
                  latency: float) -> ProbeResult:
    """Classify a certificate's remaining lifetime: ok, warning (< 21 days) or critical (< 7 days)."""
    days = info.days_left(now)
    ok = days >= EXPIRY_WARNING_DAYS
    severity = "critical" if days < EXPIRY_CRITICAL_DAYS else "warning"
    if days >= 0:
        detail = f"certificate expires in {days:.1f} days"
    else:
        detail = f"certificate expired {-days:.1f} days ago"
    return ProbeResult(tenant, component, check, ok, latency, detail, value=days,
                       values={"not_after_timestamp_seconds": info.not_after}, severity=severity)


def peer_info(sock: ssl.SSLSocket) -> CertInfo:
    """Certificate facts of an established TLS connection."""
    der = sock.getpeercert(binary_form=True)
    if der is None:
        raise ssl.SSLError("no peer certificate")
    return cert_info(der)


def probe_tls(tenant: str, component: str, address: str, port: int, server_name: str,
              ca_file: Path | None, timeout: float, now: float) -> ProbeResult:
    """Connect with TLS, verify the chain and name, report the certificate's remaining days."""
    watch = Stopwatch()
    check = f"tls_{port}"
    try:
        with socket.create_connection((address, port), timeout=timeout) as raw, \
                client_context(ca_file).wrap_socket(raw, server_hostname=server_name) as tls:
            info = peer_info(tls)
    except (OSError, ssl.SSLError, ValueError) as exc:
        return ProbeResult(tenant, component, check, False, watch(), short_error(exc))
    return expiry_result(tenant, component, check, info, now, watch())
