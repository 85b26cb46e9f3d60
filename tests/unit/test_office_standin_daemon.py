"""The coolwsd lab stand-in daemon, run from the source tree (as built) on 127.0.0.1 with test configs."""

from __future__ import annotations

import base64
import http.client
import json
import signal
import socket
import ssl
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest

from tnoctl.lab import ca as lab_ca
from tnoctl.lab.office_standin.build import render_daemon

PYTHON = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable
"""The interpreter the package runs under on Debian (the stand-in must work with the system python3)."""
ADMIN_PASSWORD = "s3cret-admin-pw"
TOKEN = "tok-SECRET-4242"

CONFIG = """<config>
    <server_name type="string" default=""></server_name>
    <net><proto>all</proto><listen type="string" default="any">{listen}</listen></net>
    <ssl>
        <enable type="bool" default="true">{ssl}</enable>
        <termination type="bool" default="true">{termination}</termination>
        <cert_file_path relative="false">{cert}</cert_file_path>
        <key_file_path relative="false">{key}</key_file_path>
    </ssl>
    <storage><wopi allow="true">
        <alias_groups mode="{mode}">
            <group>
                <host desc="hostname to allow or deny." allow="true">https://cloud.vaulx.test</host>
                <alias desc="regex pattern of aliasname">https://nc[0-9]+\\.vaulx\\.test:443</alias>
                <alias desc="tnoctl document-open probe">http://127\\.0\\.0\\.1</alias>
            </group>
            <group>
                <host allow="true">https://cloud.bron.test:8443</host>
            </group>
            <group>
                <host allow="false">https://evil.bron.test</host>
            </group>
        </alias_groups>
    </wopi></storage>
    <admin_console>
        <enable type="bool" default="true">true</enable>
        <username>admin</username>
        <password>{password}</password>
    </admin_console>
</config>
"""


@dataclass
class Daemon:
    proc: subprocess.Popen[str]
    port: int
    first_log: str
    https_ctx: ssl.SSLContext | None = None

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], str]:
        if self.https_ctx is not None:
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                "127.0.0.1", self.port, context=self.https_ctx
            )
        else:
            conn = http.client.HTTPConnection("127.0.0.1", self.port)
        try:
            conn.request("GET", path, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, dict(resp.getheaders()), resp.read().decode()
        finally:
            conn.close()

    def stop(self) -> str:
        """SIGTERM by PID; return the rest of stderr."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        _, err = self.proc.communicate()
        return err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_daemon(
    tmp_path: Path,
    *,
    version: str = "24.04.10.1-1",
    broken: str = "",
    listen: str = "loopback",
    ssl_enable: bool = False,
    termination: bool = False,
    mode: str = "groups",
    password: str = ADMIN_PASSWORD,
    extra_args: tuple[str, ...] = (),
    cert: Path | None = None,
    key: Path | None = None,
    kit_version: str | None = None,
) -> Daemon:
    exe = tmp_path / f"coolwsd-{version}-{broken}"
    exe.write_text(render_daemon(version, broken))
    conf = tmp_path / f"coolwsd-{listen}-{ssl_enable}-{termination}-{mode}.xml"
    conf.write_text(
        CONFIG.format(
            listen=listen, ssl=str(ssl_enable).lower(), termination=str(termination).lower(), mode=mode,
            cert=cert or "/nonexistent/cert.pem", key=key or "/nonexistent/key.pem", password=password,
        )
    )
    port = _free_port()
    kit = tmp_path / f"kit-version-{version}"
    kit.write_text(f"{kit_version or version}\n")
    proc = subprocess.Popen(
        [PYTHON, str(exe), f"--config-file={conf}", f"--port={port}", *extra_args],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env={"PATH": "/usr/bin:/bin", "COOLWSD_KIT_VERSION_FILE": str(kit)},
    )
    assert proc.stderr is not None
    first = proc.stderr.readline()  # "... listening on ..." once bound, or the error before exiting
    assert "listening on" in first, first + proc.stderr.read()
    return Daemon(proc, port, first)


@pytest.fixture()
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    d = start_daemon(tmp_path)
    yield d
    d.stop()


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def _listen_addresses(port: int) -> set[str]:
    """Local addresses of LISTEN sockets on ``port`` from /proc/net/tcp (hex IPv4, little-endian)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        addr, port_hex = local.split(":")
        if state == "0A" and int(port_hex, 16) == port:
            found.add(socket.inet_ntoa(bytes.fromhex(addr)[::-1]))
    return found


def test_root_and_loopback_binding(daemon: Daemon) -> None:
    assert daemon.get("/")[0::2] == (200, "OK")
    assert _listen_addresses(daemon.port) == {"127.0.0.1"}


def test_listen_any_binds_all_addresses(tmp_path: Path) -> None:
    d = start_daemon(tmp_path, listen="any")
    try:
        assert _listen_addresses(d.port) == {"0.0.0.0"}
    finally:
        d.stop()


def test_capabilities(daemon: Daemon) -> None:
    status, headers, body = daemon.get("/hosting/capabilities")
    assert status == 200 and headers["Content-Type"] == "application/json"
    caps = json.loads(body)
    assert caps["productVersion"] == "24.04.10.1"
    assert "stand-in" in caps["productName"] and "not Collabora Online" in caps["productName"]
    assert caps["hasMobileSupport"] is True
    assert "convert-to" in caps and caps["productVersionHash"]


def test_discovery_uses_host_header(daemon: Daemon) -> None:
    status, _, body = daemon.get("/hosting/discovery", {"Host": "office.vaulx.test"})
    assert status == 200
    root = ET.fromstring(body)
    assert root.tag == "wopi-discovery"
    zone = root.find("net-zone")
    assert zone is not None and zone.get("name") == "external-http"
    odt = root.find(".//app[@name='writer']/action[@ext='odt']")
    assert odt is not None and odt.get("name") == "edit"
    assert odt.get("urlsrc", "").startswith("http://office.vaulx.test/browser/")
    assert odt.get("urlsrc", "").endswith("/cool.html?")


def test_metrics_require_admin_basic_auth(daemon: Daemon) -> None:
    status, headers, _ = daemon.get("/cool/getMetrics")
    assert status == 401 and headers["WWW-Authenticate"].startswith("Basic")
    assert daemon.get("/cool/getMetrics", _basic("admin", "wrong"))[0] == 401
    assert daemon.get("/cool/getMetrics", _basic("root", ADMIN_PASSWORD))[0] == 401
    status, _, body = daemon.get("/cool/getMetrics", _basic("admin", ADMIN_PASSWORD))
    assert status == 200
    metrics = dict(line.split() for line in body.splitlines() if line and not line.startswith("#"))
    for name in ("kit_segfault_count", "global_memory_used_bytes", "document_all_views_all_count_total"):
        assert name in metrics
    assert metrics["kit_count"] == "1"


def test_admin_password_from_command_line(tmp_path: Path) -> None:
    d = start_daemon(tmp_path, password="", extra_args=("--o:admin_console.password=from-cli",))
    try:
        assert d.get("/cool/getMetrics", _basic("admin", "from-cli"))[0] == 200
        assert d.get("/cool/getMetrics", _basic("admin", ""))[0] == 401
    finally:
        d.stop()


def test_no_password_configured_means_no_metrics(tmp_path: Path) -> None:
    d = start_daemon(tmp_path, password="")
    try:
        assert d.get("/cool/getMetrics", _basic("admin", ""))[0] == 401
    finally:
        d.stop()


@pytest.mark.parametrize(
    ("wopi_src", "expected"),
    [
        ("https://cloud.vaulx.test/index.php/apps/richdocuments/wopi/files/12", 200),
        ("https://cloud.vaulx.test:443/wopi/files/12", 200),
        ("https://nc7.vaulx.test/wopi/files/12", 200),  # alias regex
        ("https://cloud.bron.test:8443/wopi/files/1", 200),
        ("https://cloud.bron.test/wopi/files/1", 403),  # wrong port
        ("http://cloud.vaulx.test/wopi/files/12", 403),  # wrong scheme
        ("https://evil.bron.test/wopi/files/1", 403),  # allow="false"
        ("https://cloud.other.test/wopi/files/1", 403),  # in no group
        ("not a url", 403),
    ],
)
def test_alias_groups(daemon: Daemon, wopi_src: str, expected: int) -> None:
    enc = quote(wopi_src, safe="")
    assert daemon.get(f"/cool/{enc}/ws?WOPISrc={enc}&access_token={TOKEN}")[0] == expected
    assert daemon.get(f"/browser/abc/cool.html?WOPISrc={enc}")[0] == expected
    in_path = expected if wopi_src.startswith("http") else 400  # a non-URL segment is no WOPISrc
    assert daemon.get(f"/cool/{enc}/ws")[0] == in_path  # WOPISrc only in the path


def test_alias_groups_mode_first_pins_first_host(tmp_path: Path) -> None:
    d = start_daemon(tmp_path, mode="first")
    try:
        first = quote("https://cloud.any.test/wopi/files/1", safe="")
        other = quote("https://cloud.other.test/wopi/files/1", safe="")
        assert d.get(f"/cool/x/ws?WOPISrc={first}")[0] == 200
        assert d.get(f"/cool/x/ws?WOPISrc={first}")[0] == 200
        assert d.get(f"/cool/x/ws?WOPISrc={other}")[0] == 403
    finally:
        d.stop()


def test_unknown_and_missing_wopisrc(daemon: Daemon) -> None:
    assert daemon.get("/nope")[0] == 404
    assert daemon.get("/cool/foo/ws")[0] == 400


def test_logs_never_carry_query_strings_or_passwords(tmp_path: Path) -> None:
    d = start_daemon(tmp_path)
    enc = quote("https://cloud.other.test/wopi/files/1", safe="")
    assert d.get(f"/cool/x/ws?WOPISrc={enc}&access_token={TOKEN}")[0] == 403
    assert d.get("/cool/getMetrics", _basic("admin", ADMIN_PASSWORD))[0] == 200
    log = d.first_log + d.stop()
    assert "/cool/x/ws 403" in log and "/cool/getMetrics 200" in log
    assert TOKEN not in log and ADMIN_PASSWORD not in log


def test_broken_build_fails_health_but_keeps_running(tmp_path: Path) -> None:
    d = start_daemon(tmp_path, version="24.04.12.1-1", broken="health")
    try:
        assert d.get("/")[0] == 503
        status, _, body = d.get("/hosting/capabilities")
        assert status == 500 and "kit process failed to start" in body
        assert d.get("/hosting/discovery")[0] == 500
        status, _, body = d.get("/cool/getMetrics", _basic("admin", ADMIN_PASSWORD))
        assert status == 200 and "kit_count 0" in body
        assert d.proc.poll() is None  # a health failure, not a crash
    finally:
        assert d.stop().count("kit process failed to start") >= 1


def test_ssl_enable_serves_tls_with_lab_cert(tmp_path: Path) -> None:
    lab_ca.ensure_host_certs(tmp_path / "ca", tmp_path / "certs", {"office1": ["office.vaulx.test"]})
    d = start_daemon(
        tmp_path, ssl_enable=True, cert=tmp_path / "certs/office1.crt", key=tmp_path / "certs/office1.key"
    )
    try:
        ctx = ssl.create_default_context(cafile=str(tmp_path / "certs/ca.crt"))
        ctx.check_hostname = False  # we connect to 127.0.0.1; the name check is done just below
        d.https_ctx = ctx
        status, _, body = d.get("/hosting/discovery", {"Host": "office.vaulx.test"})
        assert status == 200 and 'urlsrc="https://office.vaulx.test/browser/' in body
        with (
            socket.create_connection(("127.0.0.1", d.port)) as raw,
            ssl.create_default_context(cafile=str(tmp_path / "certs/ca.crt")).wrap_socket(
                raw, server_hostname="office.vaulx.test"
            ) as tls,
        ):
            assert tls.version() is not None
        d.https_ctx = None
        with pytest.raises((http.client.HTTPException, ConnectionError)):  # plain HTTP gets no answer
            d.get("/")
    finally:
        d.stop()


def test_ssl_enable_without_cert_fails_to_start(tmp_path: Path) -> None:
    exe = tmp_path / "coolwsd"
    exe.write_text(render_daemon("24.04.10.1-1", ""))
    conf = tmp_path / "c.xml"
    conf.write_text(CONFIG.format(listen="loopback", ssl="true", termination="false", mode="groups",
                                  cert="/nonexistent/c.pem", key="/nonexistent/k.pem", password="x"))
    proc = subprocess.run([PYTHON, str(exe), f"--config-file={conf}", f"--port={_free_port()}"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 1 and "cert_file_path" in proc.stderr


def test_ssl_termination_advertises_https(tmp_path: Path) -> None:
    d = start_daemon(tmp_path, termination=True)
    try:
        status, _, body = d.get("/hosting/discovery", {"Host": "office.vaulx.test"})
        assert status == 200 and 'name="external-https"' in body
        assert 'urlsrc="https://office.vaulx.test/browser/' in body
    finally:
        d.stop()


def test_version_and_bad_option(tmp_path: Path) -> None:
    exe = tmp_path / "coolwsd"
    exe.write_text(render_daemon("24.04.11.1-1", ""))
    out = subprocess.run([PYTHON, str(exe), "--version"], capture_output=True, text=True, check=True)
    assert "24.04.11.1" in out.stdout and "stand-in" in out.stdout
    bad = subprocess.run([PYTHON, str(exe), "--bogus"], capture_output=True, text=True, check=False)
    assert bad.returncode == 64 and "unknown option" in bad.stderr
    port = subprocess.run([PYTHON, str(exe), "--port=99999"], capture_output=True, text=True, check=False)
    assert port.returncode == 64 and "invalid --port" in port.stderr


@pytest.fixture()
def tls_daemon_factory(tmp_path: Path) -> Iterator[object]:
    """Start TLS daemons (lab CA certificate for office.vaulx.test) like the proxy-facing one; stop them after."""
    lab_ca.ensure_host_certs(tmp_path / "ca", tmp_path / "certs", {"office1": ["office.vaulx.test"]})
    started: list[Daemon] = []

    def start(**kwargs: object) -> Daemon:
        d = start_daemon(tmp_path, ssl_enable=True, cert=tmp_path / "certs/office1.crt",
                         key=tmp_path / "certs/office1.key", **kwargs)  # type: ignore[arg-type]
        started.append(d)
        return d

    yield start
    for d in started:
        if d.proc.returncode is None:  # not yet stopped (and read) by the test
            d.stop()


def _open(d: Daemon, tmp_path: Path, wopi_host: str = "http://127.0.0.1"):  # type: ignore[no-untyped-def]
    from tnoctl.probes.office_document import probe_document

    return probe_document("vaulx", "127.0.0.1", d.port, "office.vaulx.test", tmp_path / "certs/ca.crt", 10.0,
                          wopi_host)


def test_document_opens_end_to_end_through_wopi(tls_daemon_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    d = tls_daemon_factory()
    result = _open(d, tmp_path)
    assert result.ok, result.detail
    assert result.check == "office_document" and "CheckFileInfo, GetFile" in result.detail
    log = d.stop()
    assert "document loaded:" in log and "1 paragraph(s)" in log
    assert "access_token" not in log  # the token never reaches the journal


def test_document_open_fails_for_the_documents_broken_build(tls_daemon_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    d = tls_daemon_factory(version="24.04.13.1-1", broken="documents")
    result = _open(d, tmp_path)
    assert not result.ok and "kind=faileddocloading" in result.detail


def test_document_open_fails_when_the_kit_is_out_of_step(tls_daemon_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    d = tls_daemon_factory(version="24.04.11.1-1", kit_version="24.04.10.1-1")
    result = _open(d, tmp_path)
    assert not result.ok and "kind=faileddocloading" in result.detail
    assert "kit version 24.04.10.1-1 does not match coolwsd 24.04.11.1-1" in d.stop()


def test_document_open_refuses_a_wopi_host_outside_the_alias_groups(tls_daemon_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """127.0.0.2 is in no group: the WebSocket upgrade itself is refused (403), nothing is fetched."""
    d = tls_daemon_factory()
    result = _open(d, tmp_path, wopi_host="http://127.0.0.2")
    assert not result.ok and "403" in result.detail
