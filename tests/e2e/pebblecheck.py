"""What a lab client sees on a TLS endpoint, verified against pebble's root alone (issue 15).

Shared by tests/e2e/test_acme_dns.py (the session fleet, in the lab's default `acme` mode) and
tests/e2e/test_zxa_acme_mode.py (the spare host mail3): ``openssl s_client -verify_return_error
-verify_hostname NAME -CAfile <pebble root> -no-CApath -no-CAstore`` proves the certificate served for
``NAME`` (SNI) chains to pebble and is valid for that name; the lab CA is not trusted.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

STARTTLS_PORTS = (25, 587)
_PEM = re.compile(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----\n", re.S)


def served(address: str, name: str, port: int, pebble_root: Path) -> dict[str, str]:
    """Serial, issuer and subject of the certificate ``address:port`` presents for ``name``.

    Fails (AssertionError naming endpoint and openssl's verdict) unless the chain verifies against
    pebble's root only and the certificate is valid for ``name``.
    """
    argv = ["openssl", "s_client", "-connect", f"{address}:{port}", "-servername", name,
            "-verify_return_error", "-verify_hostname", name, "-CAfile", str(pebble_root),
            "-no-CApath", "-no-CAstore"]
    if port in STARTTLS_PORTS:
        argv += ["-starttls", "smtp"]
    proc = subprocess.run(argv, input="", capture_output=True, text=True, timeout=30)
    verdict = [line.strip() for line in (proc.stdout + proc.stderr).splitlines()
               if "verify" in line.lower() or "error" in line.lower()]
    assert proc.returncode == 0, (
        f"{name} on {address}:{port}: openssl s_client -verify_return_error against pebble's root failed "
        f"(exit {proc.returncode}); the certificate served for this name is not a pebble certificate for it: "
        f"{verdict[-6:]}")
    pem = _PEM.search(proc.stdout)
    assert pem, f"{name} on {address}:{port}: no certificate in openssl s_client's output"
    return fields(pem.group(0))


def fields(pem: str) -> dict[str, str]:
    """serial/issuer/subject/notAfter of one PEM certificate (openssl x509)."""
    out = subprocess.run(["openssl", "x509", "-noout", "-serial", "-issuer", "-subject", "-enddate", "-nameopt",
                          "oneline"], input=pem, capture_output=True, text=True, check=True, timeout=30).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def subject(cert: Path) -> str:
    """The one-line subject of the (first) certificate in ``cert``."""
    out = subprocess.run(["openssl", "x509", "-noout", "-subject", "-nameopt", "oneline", "-in", str(cert)],
                         capture_output=True, text=True, check=True, timeout=30).stdout
    return out.split("=", 1)[1].strip()


MAIL_PORTS = (25, 587, 993)
MAIL_NAMES = ("mail", "smtp", "imap", "autoconfig", "mta-sts")  # role tno_acme's tno_acme_mail_names
MAIL_WEB_NAMES = ("autoconfig", "mta-sts")  # the mail host's nginx serves these on 443 (role tno_mail)


def fleet_endpoints(fleet: Any) -> dict[str, list[tuple[str, str, int]]]:
    """Per tenant: (address, server name, port) of every TLS endpoint of its service names."""
    out: dict[str, list[tuple[str, str, int]]] = {}
    for slug in fleet.tenants:
        tenant, endpoints = fleet.inventory.tenant(slug), []
        for domain in tenant.domains:
            if "mail" in tenant.services:
                address = fleet.address(fleet.mail_host(slug))
                endpoints += [(address, f"{n}.{domain}", p) for n in MAIL_NAMES for p in MAIL_PORTS]
                endpoints += [(address, f"{n}.{domain}", 443) for n in MAIL_WEB_NAMES]
            if "office" in tenant.services:
                endpoints.append((fleet.address(fleet.office_host(slug)), f"office.{domain}", 443))
        out[slug] = endpoints
    return out


def served_serials(fleet: Any, pebble_root: Path, lab_ca_subject: str) -> dict[str, dict[str, str]]:
    """Per tenant: ``name:port`` -> serial of the pebble certificate served there (each one verified)."""
    serials: dict[str, dict[str, str]] = {}
    for slug, endpoints in fleet_endpoints(fleet).items():
        for address, name, port in endpoints:
            cert = served(address, name, port, pebble_root)
            assert "Pebble" in cert["issuer"] and cert["issuer"].strip() != lab_ca_subject, (
                f"{slug}: {name} on {address}:{port} is issued by {cert['issuer']!r}, not pebble's intermediate")
            serials.setdefault(slug, {})[f"{name}:{port}"] = cert["serial"]
    return serials
