"""The lab's throw-away certificate authority and the host certificates it issues.

Why: lab services (Postfix, Dovecot, the office stand-in, the proxy) speak real TLS, and tests verify it
against one CA instead of disabling verification. The CA is name-constrained to the lab's names
(``.test``, the lab host names) and the lab network 198.18.0.0/24, so even if its key leaked it could not
vouch for a real site. Everything is idempotent: a second call with the same input rewrites no file.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_COMMON_NAME = "tnoctl lab CA (throw-away)"
CA_VALIDITY = dt.timedelta(days=5 * 365)
LEAF_VALIDITY = dt.timedelta(days=825)
RENEW_BEFORE = dt.timedelta(days=30)

LAB_HOST_NAMES = ("mail1", "mail2", "office1", "office2", "backup1")
"""Bare lab host names (see docs/architecture.md); permitted by the CA's name constraints."""
PERMITTED_DNS = (".test", "lab.test", "test", *LAB_HOST_NAMES)
"""``test`` lets a cert name the bare TLD-less zone apex; ``.test`` every name under it."""
PERMITTED_NETWORK = ipaddress.ip_network("198.18.0.0/24")

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _write_private(path: Path, data: bytes) -> None:
    """Write a secret atomically, created 0600 from the start (never world-readable, even briefly)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def _write_public(path: Path, data: bytes) -> None:
    """Write a public file atomically (0644), only if its content differs (keeps mtimes stable)."""
    if path.exists() and path.read_bytes() == data:
        return
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.chmod(0o644)
    os.replace(tmp, path)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _load_key(path: Path) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{path}: expected an EC private key")
    return key


def _ca_certificate(key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    """A self-signed, name-constrained CA certificate for ``key``."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CA_COMMON_NAME)])
    now = _now()
    constraints = x509.NameConstraints(
        permitted_subtrees=[
            *(x509.DNSName(n) for n in PERMITTED_DNS),
            x509.IPAddress(PERMITTED_NETWORK),
        ],
        excluded_subtrees=None,
    )
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now - dt.timedelta(minutes=5) + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(constraints, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def ensure_ca(ca_dir: Path) -> Path:
    """Create the lab CA in ``ca_dir`` once (``ca.key`` 0600, ``ca.crt``) and return the ``ca.crt`` path.

    An existing CA is kept as is, so host trust stores and issued certificates stay valid across
    ``lab up`` runs. If only the key survived, the certificate is re-made from it.
    """
    ca_dir.mkdir(parents=True, exist_ok=True)
    key_path, crt_path = ca_dir / "ca.key", ca_dir / "ca.crt"
    if key_path.exists():
        key = _load_key(key_path)
        if key_path.stat().st_mode & 0o077:
            key_path.chmod(0o600)
    else:
        key = ec.generate_private_key(ec.SECP256R1())
        _write_private(key_path, _key_pem(key))
        crt_path.unlink(missing_ok=True)  # a cert for a previous key is useless
    if crt_path.exists():
        cert = x509.load_pem_x509_certificate(crt_path.read_bytes())
        if cert.public_key() == key.public_key() and cert.not_valid_after_utc - _now() > RENEW_BEFORE:
            return crt_path
    _write_public(crt_path, _ca_certificate(key).public_bytes(serialization.Encoding.PEM))
    return crt_path


def _split_names(names: list[str]) -> tuple[list[str], list[IpAddress]]:
    """Separate DNS names from IP literals (which become IPAddress SANs)."""
    dns: list[str] = []
    ips: list[IpAddress] = []
    for name in names:
        try:
            ips.append(ipaddress.ip_address(name))
        except ValueError:
            dns.append(name.lower())
    return dns, ips


def _san_key(names: list[str]) -> set[str]:
    dns, ips = _split_names(names)
    return {f"dns:{d}" for d in dns} | {f"ip:{i}" for i in ips}


def _cert_san_key(cert: x509.Certificate) -> set[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return {f"dns:{d.lower()}" for d in san.get_values_for_type(x509.DNSName)} | {
        f"ip:{i}" for i in san.get_values_for_type(x509.IPAddress)
    }


def _leaf_is_current(
    crt_path: Path, key_path: Path, names: list[str], ca_cert: x509.Certificate
) -> bool:
    """True if the leaf is for these names, signed by this CA, matches its key, and is not expiring."""
    if not (crt_path.exists() and key_path.exists()):
        return False
    try:
        cert = x509.load_pem_x509_certificate(crt_path.read_bytes())
        key = _load_key(key_path)
        cert.verify_directly_issued_by(ca_cert)
    except Exception:  # any unreadable, foreign or mis-signed file means "re-issue"
        return False
    return (
        cert.public_key() == key.public_key()
        and _cert_san_key(cert) == _san_key(names)
        and cert.not_valid_after_utc - _now() > RENEW_BEFORE
    )


def _issue_leaf(
    host: str, names: list[str], ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate
) -> tuple[bytes, bytes]:
    """Return (cert PEM, key PEM) of a fresh serverAuth leaf for ``names``."""
    key = ec.generate_private_key(ec.SECP256R1())
    dns, ips = _split_names(names)
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, (dns or [host])[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now - dt.timedelta(minutes=5) + LEAF_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.SubjectAlternativeName([*(x509.DNSName(d) for d in dns), *(x509.IPAddress(i) for i in ips)]),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)


def ensure_host_certs(ca_dir: Path, certs_dir: Path, hosts: dict[str, list[str]]) -> None:
    """Write ``certs_dir/<host>.crt`` and ``<host>.key`` (0600) for each host, plus ``certs_dir/ca.crt``.

    ``hosts`` maps a host name to the names its certificate must carry (DNS names; IP literals become
    IP SANs). A certificate is (re-)issued only when it is missing, its SAN set differs, it has less than
    30 days left, or it was not issued by the current CA; otherwise nothing is touched.
    The CA is created if needed.
    """
    if not hosts:
        raise ValueError("ensure_host_certs: no hosts given")
    for host, names in hosts.items():
        if not names:
            raise ValueError(f"ensure_host_certs: host {host!r} has no names")
    ca_crt_path = ensure_ca(ca_dir)
    ca_pem = ca_crt_path.read_bytes()
    ca_cert = x509.load_pem_x509_certificate(ca_pem)
    ca_key = _load_key(ca_dir / "ca.key")
    certs_dir.mkdir(parents=True, exist_ok=True)
    _write_public(certs_dir / "ca.crt", ca_pem)
    for host, names in sorted(hosts.items()):
        crt_path, key_path = certs_dir / f"{host}.crt", certs_dir / f"{host}.key"
        if _leaf_is_current(crt_path, key_path, names, ca_cert):
            continue
        cert_pem, key_pem = _issue_leaf(host, names, ca_key, ca_cert)
        _write_private(key_path, key_pem)
        _write_public(crt_path, cert_pem)
