"""The exporter: fresh families per scrape, hostile store, real HTTP scrape checked by promtool,
web config (TLS + bcrypt basic auth), and scrapes that never wait for probes."""

from __future__ import annotations

import base64
import shutil
import ssl
import subprocess
import threading
import urllib.error
import urllib.request
from pathlib import Path

import bcrypt
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tnoctl.errors import InvalidInput
from tnoctl.exporter import app as exporter_app
from tnoctl.exporter.server import ExporterServer, parse_listen
from tnoctl.exporter.textfile import backup_families, write_textfile
from tnoctl.exporter.webconfig import load_web_config
from tnoctl.probes.base import Probe, ProbeResult
from tnoctl.state.store import (
    BackupResult,
    BackupVerification,
    DnsRecordCheck,
    DriftRecord,
    OperationRecord,
    Store,
    UpgradeRecord,
    VersionRecord,
)

NOW = 1_800_000_000.0
KNOWN = {"alpha": ("mail", "office"), "beta": ("mail",)}


def fill(state: Path) -> Store:
    store = Store(state)
    store.record_backup(BackupResult("alpha", "mail", True, NOW - 100, 12.5, 1000, 500, 200))
    store.record_backup(BackupResult("alpha", "mail", False, NOW - 50, 1, detail="borg: lock"))
    store.record_verification(BackupVerification("alpha", "mail", True, NOW - 3600))
    store.record_version(VersionRecord("alpha", "office", "24.04.5", "24.04.6", NOW))
    store.record_upgrade(UpgradeRecord("alpha", "office", "failed", NOW - 500, NOW - 400))
    store.record_drift(DriftRecord("alpha", "mail", True, 3, NOW))
    store.record_operation(OperationRecord("alpha", "deploy", True, NOW, 30))
    store.record_dns([DnsRecordCheck("alpha", "mx alpha.test. MX", True, "published", NOW)])
    return store


def samples(text: str) -> dict[tuple[str, tuple], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def test_store_metrics(tmp_path: Path) -> None:
    fill(tmp_path)
    exp = exporter_app.build(tmp_path, lambda: KNOWN)
    got = samples(exp.collector.render())
    tc = (("component", "mail"), ("tenant", "alpha"))
    assert got[("tnoctl_backup_last_success_timestamp_seconds", tc)] == NOW - 100
    assert got[("tnoctl_backup_last_failed", tc)] == 1
    assert got[("tnoctl_backup_last_verified_timestamp_seconds", tc)] == NOW - 3600
    assert got[("tnoctl_backup_size_bytes", (*tc[:1], ("kind", "deduplicated"), tc[1]))] == 200
    # expected but never backed up: 0, so that TnoBackupTooOld fires
    assert got[("tnoctl_backup_last_success_timestamp_seconds", (("component", "mail"), ("tenant", "beta")))] == 0
    assert got[("tnoctl_component_version_info", (("component", "office"), ("pinned", "24.04.6"),
                                                  ("tenant", "alpha"), ("version", "24.04.5")))] == 1
    assert got[("tnoctl_component_version_matches_pin", (("component", "office"), ("tenant", "alpha")))] == 0
    assert got[("tnoctl_upgrade_state", (("component", "office"), ("state", "failed"), ("tenant", "alpha")))] == 1
    assert got[("tnoctl_config_drift", tc)] == 1
    assert got[("tnoctl_operation_last_success", (("tenant", "alpha"), ("verb", "deploy")))] == 1
    assert got[("tnoctl_up", ())] == 1
    assert got[("tnoctl_build_info", (("version", "0.1.0"),))] == 1 or any(k[0] == "tnoctl_build_info" for k in got)


def test_fast_render_matches_prometheus_client(tmp_path: Path) -> None:
    fill(tmp_path)
    exp = exporter_app.build(tmp_path, lambda: KNOWN, probes=lambda: [])
    exp.cache.put(ProbeResult("alpha", "mail", "queue", True, 0.1, "", 3,
                              {"messages.deferred": 3.0, "oldest_age_seconds.deferred": 60.0}), NOW)
    slow = {k: v for k, v in samples(generate_latest(exp.registry).decode()).items() if "duration" not in k[0]}
    fast = {k: v for k, v in samples(exp.collector.render()).items() if "duration" not in k[0]}
    assert slow == fast


def test_hostile_store_does_not_crash_and_says_what_failed(tmp_path: Path) -> None:
    store = fill(tmp_path)
    with open(store.path("drift"), "ab") as fh:
        fh.write(b'{"tenant": "alpha", "component": "ma')  # truncated
    store.record_drift(DriftRecord("ghost", "mail", True, 1, NOW))  # a tenant the inventory does not know
    store.record_operation(OperationRecord("ghost", "deploy", True, NOW, 1))
    exp = exporter_app.build(tmp_path, lambda: KNOWN)
    got = samples(exp.collector.render())
    assert got[("tnoctl_collector_success", (("collector", "drift"),))] == 0
    assert got[("tnoctl_collector_success", (("collector", "backups"),))] == 1
    assert got[("tnoctl_store_invalid_lines", (("kind", "drift"),))] == 1
    assert got[("tnoctl_store_unknown_tenant_records", (("kind", "operations"),))] == 1
    assert got[("tnoctl_up", ())] == 0
    assert not any(dict(k[1]).get("tenant") == "ghost" for k in got)
    assert got[("tnoctl_config_drift", (("component", "mail"), ("tenant", "alpha")))] == 1  # others still come


def test_collector_exception_is_isolated(tmp_path: Path, monkeypatch) -> None:
    fill(tmp_path)
    exp = exporter_app.build(tmp_path, lambda: KNOWN)
    real = exp.store.latest_records
    monkeypatch.setattr(exp.store, "latest_records", lambda kind: 1 / 0 if kind == "versions" else real(kind))
    got = samples(exp.collector.render())
    assert got[("tnoctl_collector_success", (("collector", "versions"),))] == 0
    assert ("tnoctl_config_drift", (("component", "mail"), ("tenant", "alpha"))) in got
    assert got[("tnoctl_up", ())] == 0


def test_inventory_failure_exports_unfiltered(tmp_path: Path) -> None:
    fill(tmp_path)

    def broken():
        raise RuntimeError("inventory mid-edit")

    got = samples(exporter_app.build(tmp_path, broken).collector.render())
    assert got[("tnoctl_collector_success", (("collector", "inventory"),))] == 0
    assert ("tnoctl_config_drift", (("component", "mail"), ("tenant", "alpha"))) in got


def test_removed_tenant_label_set_disappears(tmp_path: Path) -> None:
    fill(tmp_path)
    known = dict(KNOWN)
    holder = {"known": known}
    exp = exporter_app.build(tmp_path, lambda: holder["known"])
    assert any(dict(k[1]).get("tenant") == "alpha" for k in samples(exp.collector.render()))
    holder["known"] = {"beta": ("mail",)}  # alpha offboarded
    assert not any(dict(k[1]).get("tenant") == "alpha" for k in samples(exp.collector.render()))


def test_scrape_uses_cache_until_the_store_changes(tmp_path: Path) -> None:
    store = fill(tmp_path)
    exp = exporter_app.build(tmp_path, lambda: KNOWN)
    first = exp.collector.render()
    table = exp.collector.tables["drift"]
    rendered = table.rendered
    exp.collector.render()
    assert exp.collector.tables["drift"] is table and table.rendered == rendered  # unchanged store: nothing redone
    store.record_drift(DriftRecord("alpha", "mail", False, 0, NOW + 1))
    second = exp.collector.render()
    assert table.rendered == rendered + 1  # only alpha re-rendered
    assert samples(first)[("tnoctl_config_drift", (("component", "mail"), ("tenant", "alpha")))] == 1
    assert samples(second)[("tnoctl_config_drift", (("component", "mail"), ("tenant", "alpha")))] == 0


def _get(url: str, ctx: ssl.SSLContext | None = None, auth: tuple[str, str] | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url)
    if auth:
        req.add_header("Authorization", "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=30, context=ctx) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian package prometheus) not installed")
def test_http_scrape_passes_promtool_check_metrics(tmp_path: Path) -> None:
    fill(tmp_path)
    exp = exporter_app.build(tmp_path, lambda: KNOWN, probes=lambda: [])
    exp.cache.put(ProbeResult("alpha", "mail", "imaps_certificate", True, 0.1, "", 30.0,
                              {"not_after_timestamp_seconds": NOW + 86400}), NOW)
    server = ExporterServer(exp.registry, "127.0.0.1", 0, None, exp.collector.render).start()
    try:
        status, body = _get(f"http://127.0.0.1:{server.port}/metrics")
        assert status == 200 and b"tnoctl_up 1.0" in body
        check = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True, check=False)
        assert check.returncode == 0 and check.stdout == b"" and check.stderr == b"", check.stderr
        assert _get(f"http://127.0.0.1:{server.port}/nope")[0] == 404
    finally:
        server.stop()


def test_web_config_tls_and_basic_auth(tmp_path: Path) -> None:
    pki = _make_pki(tmp_path)
    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode()
    cfg = tmp_path / "web.yml"
    cfg.write_text(f"tls_server_config:\n  cert_file: {pki['cert']}\n  key_file: {pki['key']}\n"
                   f"basic_auth_users:\n  prometheus: '{hashed}'\n")
    web = load_web_config(cfg)
    fill(tmp_path / "state")
    exp = exporter_app.build(tmp_path / "state", lambda: KNOWN)
    server = ExporterServer(exp.registry, "127.0.0.1", 0, web, exp.collector.render).start()
    ctx = ssl.create_default_context(cafile=str(pki["ca"]))
    ctx.check_hostname = False  # the test certificate names mail.a.test, we connect to 127.0.0.1
    url = f"https://127.0.0.1:{server.port}/metrics"
    try:
        assert _get(url, ctx)[0] == 401
        assert _get(url, ctx, ("prometheus", "wrong"))[0] == 401
        assert _get(url, ctx, ("nobody", "s3cret"))[0] == 401
        status, body = _get(url, ctx, ("prometheus", "s3cret"))
        assert status == 200 and b"tnoctl_up" in body
        assert _get(url, ctx, ("prometheus", "s3cret"))[0] == 200  # cached check
        with pytest.raises((urllib.error.URLError, ConnectionError)):
            _get(f"http://127.0.0.1:{server.port}/metrics")  # plain HTTP on a TLS port fails
    finally:
        server.stop()


def _make_pki(tmp_path: Path) -> dict[str, Path]:
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "exporter")])
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    (tmp_path / "c.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "c.key").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    return {"ca": tmp_path / "c.crt", "cert": tmp_path / "c.crt", "key": tmp_path / "c.key"}


@pytest.mark.parametrize("body,needle", [
    ("tls_server_config: {cert_file: a.crt}\n", "key_file: required"),
    ("basic_auth_users: {bob: plaintext}\n", "not a bcrypt hash"),
    ("basic_auth_user: {}\n", "unknown key"),
])
def test_web_config_rejects_mistakes(tmp_path: Path, body: str, needle: str) -> None:
    cfg = tmp_path / "web.yml"
    cfg.write_text(body)
    with pytest.raises(InvalidInput) as err:
        load_web_config(cfg)
    assert any(needle in d for d in err.value.details)


def test_scrape_never_waits_for_a_slow_probe(tmp_path: Path) -> None:
    fill(tmp_path)
    release = threading.Event()
    started = threading.Event()

    def slow(timeout: float) -> ProbeResult:
        started.set()
        release.wait()
        return ProbeResult("alpha", "office", "office_discovery", True, 5.0)

    def fast(timeout: float) -> ProbeResult:
        return ProbeResult("alpha", "mail", "imaps_login", False, 0.2, "canary login refused")

    exp = exporter_app.build(tmp_path, lambda: KNOWN,
                             probes=lambda: [Probe("alpha", "office", "office_discovery", slow, 60.0),
                                             Probe("alpha", "mail", "imaps_login", fast, 60.0)], interval=3600)
    assert exp.worker is not None
    exp.worker.start()
    try:
        assert started.wait(30)
        key = ("tnoctl_probe_success", (("check", "imaps_login"), ("component", "mail"), ("tenant", "alpha")))
        for _ in range(200):  # the fast result is published while the slow probe still runs
            got = samples(exp.collector.render())
            if key in got:
                break
            threading.Event().wait(0.05)
        assert got[key] == 0
        assert not release.is_set()  # the scrape above answered while the slow probe was still blocked
        assert not any(k[0] == "tnoctl_probe_success" and ("check", "office_discovery") in k[1] for k in got)
    finally:
        release.set()
        exp.worker.stop()


def test_textfile_is_written_atomically(tmp_path: Path) -> None:
    path = tmp_path / "textfile" / "tnoctl_backup_alpha.prom"
    write_textfile(path, backup_families("alpha", "mail", True, NOW, 12.0))
    text = path.read_text()
    assert 'tnoctl_backup_last_run_success{component="mail",tenant="alpha"} 1.0' in text
    assert list(path.parent.iterdir()) == [path]  # no temp file left behind
    assert oct(path.stat().st_mode & 0o777) == "0o644"


@pytest.mark.parametrize("listen,expected", [("127.0.0.1:9520", ("127.0.0.1", 9520)), ("[::1]:1", ("::1", 1)),
                                             (":9520", ("0.0.0.0", 9520))])
def test_parse_listen(listen: str, expected: tuple[str, int]) -> None:
    assert parse_listen(listen) == expected


def test_parse_listen_rejects_garbage() -> None:
    with pytest.raises(ValueError):
        parse_listen("localhost")


def test_exporter_verb_serves_and_stops_on_sigterm(tmp_path: Path) -> None:
    """No probes and no backup sync: a unit test never reaches the lab hosts (with the lab up, an in-flight
    sync round over SSH held the exit until its pool threads joined)."""
    import os
    import re
    import signal
    import sys

    from tnoctl import paths

    fill(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(paths.PROJECT_ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "tnoctl", "--inventory", str(paths.LAB_INVENTORY),
                             "--state-dir", str(tmp_path), "exporter", "--listen", "127.0.0.1:0", "--no-probes",
                             "--no-backup-sync"],
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        while line and "serving" not in line:
            line = proc.stderr.readline()
        port = re.search(r":(\d+)/metrics", line)
        assert port, line
        status, body = _get(f"http://127.0.0.1:{port.group(1)}/metrics")
        assert status == 200 and b"tnoctl_up" in body and b"tnoctl_backup_last_failed" in body
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0


def test_latest_rollout_hosts_by_state(tmp_path: Path) -> None:
    from tnoctl.state.journal import Journal

    plan = {"component": "office", "to_version": "24.04.12.1",
            "waves": [{"hosts": [{"host": "office1"}]}, {"hosts": [{"host": "office2"}]}]}
    journal = Journal.create(tmp_path, "20261129T120000Z-abcdef", plan)
    exp = exporter_app.build(tmp_path, lambda: KNOWN)
    got = samples(exp.collector.render())
    assert got[("tnoctl_upgrade_rollout_hosts", (("component", "office"), ("state", "pending")))] == 2
    journal.record("office1", "finish", "rolled_back", "back on 24.04.11.1")
    journal.record("office2", "finish", "skipped", "halted")
    got = samples(exp.collector.render())  # the journal changed: not served from the cache
    office = {dict(k[1])["state"]: v for k, v in got.items() if k[0] == "tnoctl_upgrade_rollout_hosts"}
    assert (office["rolled_back"], office["skipped"], office["pending"], office["done"]) == (1, 1, 0, 0)
    assert got[("tnoctl_upgrade_rollout_info", (("component", "office"), ("state", "planned"),
                                               ("to_version", "24.04.12.1")))] == 1
    assert got[("tnoctl_collector_success", (("collector", "rollouts"),))] == 1
