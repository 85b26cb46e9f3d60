"""Probes against local servers on 127.0.0.1: SMTP STARTTLS, HTTPS/office, TLS, with a test CA.

Connections go to the address while the certificate is checked against the tenant's name (SNI),
exactly as on the lab, which has no DNS.
"""

from __future__ import annotations

import datetime as dt
import json
import socket
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tnoctl.probes import https, office, smtp, tls

NOW = dt.datetime.now(dt.UTC)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("pki")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name("test CA")).issuer_name(_name("test CA"))
          .public_key(ca_key.public_key()).serial_number(1).not_valid_before(NOW - dt.timedelta(days=1))
          .not_valid_after(NOW + dt.timedelta(days=365))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(_name("mail1")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(2).not_valid_before(NOW - dt.timedelta(days=1))
            .not_valid_after(NOW + dt.timedelta(days=10))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("mail.a.test"), x509.DNSName("office.a.test")]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    (d / "ca.crt").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (d / "host.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (d / "host.key").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                   serialization.NoEncryption()))
    return {"ca": d / "ca.crt", "cert": d / "host.crt", "key": d / "host.key"}


def _server_ctx(pki: dict[str, Path]) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(pki["cert"], pki["key"])
    return ctx


@pytest.fixture
def smtp_server(pki) -> Iterator[int]:
    """A tiny Postfix look-alike: banner, EHLO with STARTTLS, TLS, EHLO, QUIT."""
    listener = socket.create_server(("127.0.0.1", 0))
    ctx = _server_ctx(pki)

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                f = conn.makefile("rb")
                conn.sendall(b"220 mail1 ESMTP Postfix\r\n")
                f.readline()
                conn.sendall(b"250-mail1\r\n250-PIPELINING\r\n250 STARTTLS\r\n")
                f.readline()
                conn.sendall(b"220 2.0.0 Ready to start TLS\r\n")
                try:
                    with ctx.wrap_socket(conn, server_side=True) as t:
                        tf = t.makefile("rb")
                        tf.readline()
                        t.sendall(b"250-mail1\r\n250 PIPELINING\r\n")
                        tf.readline()
                        t.sendall(b"221 2.0.0 Bye\r\n")
                except (ssl.SSLError, OSError):
                    pass

    threading.Thread(target=serve, daemon=True).start()
    yield listener.getsockname()[1]
    listener.close()


def test_smtp_starttls_probe_checks_name_and_expiry(smtp_server: int, pki) -> None:
    res = smtp.probe_smtp("a", "127.0.0.1", smtp_server, "mail.a.test", pki["ca"], 5.0, NOW.timestamp())
    by_check = {r.check: r for r in res}
    assert by_check["smtp"].ok, by_check["smtp"].detail
    cert = by_check["smtp_certificate"]
    assert not cert.ok and cert.severity == "warning"  # 10 days left: below the 21-day warning
    assert 9 < cert.value < 11
    assert cert.values["not_after_timestamp_seconds"] > NOW.timestamp()


def test_smtp_probe_refuses_wrong_name(smtp_server: int, pki) -> None:
    (res,) = smtp.probe_smtp("a", "127.0.0.1", smtp_server, "mail.other.test", pki["ca"], 5.0, 0)
    assert not res.ok and "certificate" in res.detail.lower()


def test_smtp_probe_refuses_unknown_ca(smtp_server: int) -> None:
    (res,) = smtp.probe_smtp("a", "127.0.0.1", smtp_server, "mail.a.test", None, 5.0, 0)  # system trust
    assert not res.ok and res.check == "smtp"


@pytest.fixture
def office_server(pki) -> Iterator[int]:
    """coolwsd behind a proxy, reduced to the two endpoints the probe reads."""
    answers = {"/hosting/capabilities": json.dumps({"productVersion": "24.04.6.2"}).encode(),
               "/hosting/discovery": b"<wopi-discovery><net-zone><app name='w'><action name='edit' ext='odt' "
                                     b"urlsrc='https://office.a.test/x?'/></app></net-zone></wopi-discovery>"}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = answers.get(self.path)
            self.send_response(200 if body else 404)
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.socket = _server_ctx(pki).wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd.server_port
    httpd.shutdown()
    httpd.server_close()


def test_office_probe_reads_version_and_discovery(office_server: int, pki) -> None:
    res = {r.check: r for r in office.probe_office("a", "127.0.0.1", office_server, "office.a.test", pki["ca"], 5.0,
                                                   pinned="24.04.6.2-1")}  # the package version, revision -1
    assert res["office_capabilities"].ok and "24.04.6.2" in res["office_capabilities"].detail
    assert res["office_discovery"].ok and res["office_discovery"].value == 1
    for pinned in ("25.04", "24.04.6"):  # another version; a prefix is no longer enough
        mismatch = office.probe_office("a", "127.0.0.1", office_server, "office.a.test", pki["ca"], 5.0, pinned=pinned)
        assert not mismatch[0].ok and mismatch[0].severity == "warning"


def test_https_probe_and_tls_probe(office_server: int, pki) -> None:
    res = {r.check: r for r in https.probe_https("a", "127.0.0.1", office_server, "office.a.test", pki["ca"], 5.0,
                                                 NOW.timestamp())}
    assert res["https"].ok and res["https"].value == 404.0  # "/" is not served: still not a 5xx
    direct = tls.probe_tls("a", "office", "127.0.0.1", office_server, "office.a.test", pki["ca"], 5.0,
                           NOW.timestamp())
    assert direct.check == f"tls_{office_server}" and 9 < direct.value < 11


def test_connection_refused_is_a_failed_check() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (res,) = https.probe_https("a", "127.0.0.1", port, "office.a.test", None, 2.0, 0)
    assert not res.ok and "refused" in res.detail.lower()


@pytest.fixture(params=[False, True], ids=["imap", "imaps"])
def imap_server(request, pki) -> Iterator[tuple[int, bool]]:
    """A Dovecot look-alike: greeting, CAPABILITY, STARTTLS, LOGIN (canary/right), SELECT, LOGOUT.

    Parametrized: plain with STARTTLS (143) and implicit TLS (993).
    """
    implicit = request.param
    listener = socket.create_server(("127.0.0.1", 0))
    ctx = _server_ctx(pki)

    def session(conn: socket.socket) -> None:
        sock: socket.socket = ctx.wrap_socket(conn, server_side=True) if implicit else conn
        f = sock.makefile("rb")
        sock.sendall(b"* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] Dovecot ready.\r\n")
        while True:
            line = f.readline()
            if not line:
                return
            tag, _, rest = line.decode().strip().partition(" ")
            cmd = rest.split(" ", 1)[0].upper()
            if cmd == "CAPABILITY":
                caps = "IMAP4rev1 AUTH=PLAIN" if isinstance(sock, ssl.SSLSocket) else "IMAP4rev1 STARTTLS"
                sock.sendall(f"* CAPABILITY {caps}\r\n{tag} OK done\r\n".encode())
            elif cmd == "STARTTLS":
                sock.sendall(f"{tag} OK Begin TLS\r\n".encode())
                sock = ctx.wrap_socket(sock, server_side=True)
                f = sock.makefile("rb")
            elif cmd == "LOGIN":
                ok = rest.split()[1:] == ["canary@a.test", '"right"'] or rest.split()[1:] == ["canary@a.test", "right"]
                sock.sendall(f"{tag} {'OK Logged in' if ok else 'NO [AUTHENTICATIONFAILED] failed'}\r\n".encode())
            elif cmd in ("SELECT", "EXAMINE"):
                sock.sendall(f"* 0 EXISTS\r\n{tag} OK [READ-ONLY] done\r\n".encode())
            elif cmd == "LOGOUT":
                sock.sendall(f"* BYE\r\n{tag} OK bye\r\n".encode())
                return
            else:
                sock.sendall(f"{tag} BAD unknown\r\n".encode())

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=lambda c=conn: _quietly(session, c), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    yield listener.getsockname()[1], implicit
    listener.close()


def _quietly(fn, conn: socket.socket) -> None:
    try:
        fn(conn)
    except (OSError, ssl.SSLError):
        pass
    finally:
        conn.close()


def test_imap_probe_tls_and_canary_login(imap_server: tuple[int, bool], pki) -> None:
    from tnoctl.probes import imap

    port, implicit = imap_server
    check = "imaps" if implicit else "imap"
    res = {r.check: r for r in imap.probe_imap("a", "127.0.0.1", port, "mail.a.test", pki["ca"], 5.0,
                                               NOW.timestamp(), implicit, ("canary@a.test", "right"))}
    assert res[check].ok, res[check].detail
    assert 9 < res[f"{check}_certificate"].value < 11
    assert res[f"{check}_login"].ok  # after STARTTLS too: the server refuses LOGIN in clear (LOGINDISABLED)
    bad = {r.check: r for r in imap.probe_imap("a", "127.0.0.1", port, "mail.a.test", pki["ca"], 5.0, 0,
                                               implicit, ("canary@a.test", "wrong-secret"))}
    assert not bad[f"{check}_login"].ok and bad[f"{check}_login"].detail == "canary login refused"
    assert "wrong-secret" not in repr(bad)


def test_imap_wrong_name_fails(imap_server: tuple[int, bool], pki) -> None:
    from tnoctl.probes import imap

    port, implicit = imap_server
    (res,) = imap.probe_imap("a", "127.0.0.1", port, "mail.b.test", pki["ca"], 5.0, 0, implicit, None)
    assert not res.ok and "certificate" in res.detail.lower()
