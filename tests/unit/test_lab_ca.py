"""The lab CA: creation once, name constraints, idempotent host certs, real TLS handshakes with `ssl`."""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import stat
import threading
from pathlib import Path

import pytest
from cryptography import x509

from tnoctl.lab import ca as lab_ca


def _tree_state(path: Path) -> dict[str, tuple[int, bytes]]:
    return {str(p): (p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.fixture()
def pki(tmp_path: Path) -> tuple[Path, Path]:
    ca_dir, certs_dir = tmp_path / "ca", tmp_path / "certs"
    lab_ca.ensure_host_certs(
        ca_dir,
        certs_dir,
        {
            "office1": ["office1", "office.vaulx-en-velin.test", "office.bron.test"],
            "mail1": ["mail1", "mail.vaulx-en-velin.test", "198.18.0.11"],
            "rogue": ["www.example.org"],
            "loop": ["127.0.0.1"],
        },
    )
    return ca_dir, certs_dir


def test_ca_created_once_with_expected_fields(tmp_path: Path) -> None:
    crt = lab_ca.ensure_ca(tmp_path)
    assert crt == tmp_path / "ca.crt"
    assert stat.S_IMODE((tmp_path / "ca.key").stat().st_mode) == 0o600
    cert = x509.load_pem_x509_certificate(crt.read_bytes())
    assert cert.subject.rfc4514_string() == "CN=tnoctl lab CA (throw-away)"
    bc = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.key_cert_sign and ku.crl_sign
    nc = cert.extensions.get_extension_for_class(x509.NameConstraints).value
    assert x509.DNSName(".test") in nc.permitted_subtrees
    validity = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert dt.timedelta(days=5 * 365) <= validity <= dt.timedelta(days=5 * 366)
    before = _tree_state(tmp_path)
    assert lab_ca.ensure_ca(tmp_path) == crt
    assert _tree_state(tmp_path) == before


def test_host_certs_fields_and_modes(pki: tuple[Path, Path]) -> None:
    ca_dir, certs_dir = pki
    assert (certs_dir / "ca.crt").read_bytes() == (ca_dir / "ca.crt").read_bytes()
    assert stat.S_IMODE((certs_dir / "office1.key").stat().st_mode) == 0o600
    cert = x509.load_pem_x509_certificate((certs_dir / "office1.crt").read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sorted(san.get_values_for_type(x509.DNSName)) == [
        "office.bron.test", "office.vaulx-en-velin.test", "office1",
    ]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == dt.timedelta(days=825)
    mail = x509.load_pem_x509_certificate((certs_dir / "mail1.crt").read_bytes())
    ips = mail.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(i) for i in ips.get_values_for_type(x509.IPAddress)] == ["198.18.0.11"]


def test_second_call_changes_no_file(pki: tuple[Path, Path]) -> None:
    ca_dir, certs_dir = pki
    hosts = {
        "office1": ["office.bron.test", "office1", "office.vaulx-en-velin.test"],  # same set, other order
        "mail1": ["mail1", "mail.vaulx-en-velin.test", "198.18.0.11"],
        "rogue": ["www.example.org"],
        "loop": ["127.0.0.1"],
    }
    before = _tree_state(ca_dir.parent)
    lab_ca.ensure_host_certs(ca_dir, certs_dir, hosts)
    assert _tree_state(ca_dir.parent) == before


def test_reissue_on_san_change_only_for_that_host(pki: tuple[Path, Path]) -> None:
    ca_dir, certs_dir = pki
    mail_before = (certs_dir / "mail1.crt").read_bytes()
    office_before = (certs_dir / "office1.crt").read_bytes()
    lab_ca.ensure_host_certs(
        ca_dir,
        certs_dir,
        {
            "office1": ["office1", "office.vaulx-en-velin.test", "office.bron.test", "office.new.test"],
            "mail1": ["mail1", "mail.vaulx-en-velin.test", "198.18.0.11"],
        },
    )
    assert (certs_dir / "mail1.crt").read_bytes() == mail_before
    new = x509.load_pem_x509_certificate((certs_dir / "office1.crt").read_bytes())
    assert (certs_dir / "office1.crt").read_bytes() != office_before
    assert "office.new.test" in new.extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    ).value.get_values_for_type(x509.DNSName)


def test_reissue_when_expiring(pki: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    ca_dir, certs_dir = pki
    before = (certs_dir / "office1.crt").read_bytes()
    real_now = lab_ca._now()
    monkeypatch.setattr(lab_ca, "_now", lambda: real_now + dt.timedelta(days=800))
    lab_ca.ensure_host_certs(ca_dir, certs_dir, {"office1": ["office1"]})
    assert (certs_dir / "office1.crt").read_bytes() != before
    # not expiring any more: a further call keeps it
    after = (certs_dir / "office1.crt").read_bytes()
    lab_ca.ensure_host_certs(ca_dir, certs_dir, {"office1": ["office1"]})
    assert (certs_dir / "office1.crt").read_bytes() == after


def _handshake(certs_dir: Path, host: str, server_hostname: str) -> None:
    """Serve one TLS handshake on 127.0.0.1 with host's leaf; connect trusting only ca.crt."""
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(certs_dir / f"{host}.crt", certs_dir / f"{host}.key")
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        conn, _ = listener.accept()
        try:
            with server_ctx.wrap_socket(conn, server_side=True) as tls:
                tls.sendall(b"hello")
        except (ssl.SSLError, OSError):
            pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    client_ctx = ssl.create_default_context(cafile=str(certs_dir / "ca.crt"))  # only the lab CA
    try:
        with (
            socket.create_connection(("127.0.0.1", port)) as raw,
            client_ctx.wrap_socket(raw, server_hostname=server_hostname) as tls,
        ):
            assert tls.recv(5) == b"hello"
    finally:
        thread.join()
        listener.close()


def test_tls_handshake_ok_for_san(pki: tuple[Path, Path]) -> None:
    _handshake(pki[1], "office1", "office.bron.test")
    _handshake(pki[1], "office1", "office1")
    _handshake(pki[1], "mail1", "198.18.0.11")


def test_tls_handshake_fails_for_name_not_in_sans(pki: tuple[Path, Path]) -> None:
    with pytest.raises(ssl.SSLCertVerificationError, match=r"mismatch|match"):
        _handshake(pki[1], "office1", "office.other.test")


def test_name_constraints_reject_names_outside_lab(pki: tuple[Path, Path]) -> None:
    """Even a correctly issued cert for a non-lab name is refused by the CA's name constraints."""
    with pytest.raises(ssl.SSLCertVerificationError, match=r"name constraint|permitted"):
        _handshake(pki[1], "rogue", "www.example.org")
    with pytest.raises(ssl.SSLCertVerificationError, match=r"name constraint|permitted"):
        _handshake(pki[1], "loop", "127.0.0.1")


def test_loose_ca_key_mode_is_tightened_without_new_key(tmp_path: Path) -> None:
    lab_ca.ensure_ca(tmp_path)
    key_before = (tmp_path / "ca.key").read_bytes()
    (tmp_path / "ca.key").chmod(0o644)
    lab_ca.ensure_ca(tmp_path)
    assert stat.S_IMODE((tmp_path / "ca.key").stat().st_mode) == 0o600
    assert (tmp_path / "ca.key").read_bytes() == key_before
