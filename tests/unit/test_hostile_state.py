"""State readers skip and count one bad line and never lose the lines after it (#13)."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from tnoctl.cli import main
from tnoctl.cli.context import AppContext
from tnoctl.exporter import app as exporter_app
from tnoctl.state import audit, durable, locks
from tnoctl.state.journal import Journal, latest_rollouts
from tnoctl.state.store import BackupResult, OperationRecord, Store

NOW = 1_764_000_000.0


def test_store_rejects_ill_typed_lines_and_keeps_the_next_ones(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.record_operation(OperationRecord("alpha", "deploy", True, NOW))
    with open(store.path("operations"), "ab") as fh:
        fh.write(b'{"tenant": "beta", "verb": {"a": 1}, "ok": true, "finished_at": 1}\n')  # unhashable key
        fh.write(b'{"tenant": "beta", "verb": "deploy", "ok": "yes", "finished_at": 1}\n')
        fh.write(b'[' * 100_000 + b"\n")  # deep JSON
    store.record_operation(OperationRecord("gamma", "deploy", True, NOW))
    got = store.latest_operations()
    assert set(got) == {("alpha", "deploy"), ("gamma", "deploy")}
    assert store.read_stats()["operations"].invalid_lines == 3


def test_a_string_finished_at_does_not_hide_the_backup_series(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.record_backup(BackupResult("alpha", "mail", True, NOW))
    with open(store.path("backups"), "ab") as fh:
        fh.write(b'{"tenant": "alpha", "component": "mail", "ok": false, "finished_at": "yesterday"}\n')
        fh.write(b'{"tenant": "alpha", "component": {"x": 1}, "ok": true, "finished_at": 1}\n')
    store.record_backup(BackupResult("beta", "mail", False, NOW))
    backups = store.latest_backups()
    assert backups[("alpha", "mail")].last_success.finished_at == NOW
    assert not backups[("alpha", "mail")].last_failed
    assert backups[("beta", "mail")].last_failed
    assert store.read_stats()["backups"].invalid_lines == 2
    exp = exporter_app.build(tmp_path, lambda: None)
    assert "tnoctl_store_invalid_lines{kind=\"backups\"} 2" in exp.collector.render()


def test_history_tenant_survives_a_bad_tenants_field(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    good = {"time": "2026-01-01T00:00:00Z", "id": "op1", "operator": "me", "verb": "deploy", "tenants": ["bron"],
            "result": "ok", "duration_seconds": 1}
    lines = [json.dumps({**good, "tenants": 5}), json.dumps({**good, "verb": ["x"]}), "[" * 50_000,
             json.dumps(good)]
    audit.audit_path(state).parent.mkdir(parents=True, exist_ok=True)
    audit.audit_path(state).write_text("\n".join(lines) + "\n")
    log = audit.read_log(state, tenant="bron")
    assert [r["id"] for r in log.records] == ["op1"] and log.skipped == 3
    out, err = io.StringIO(), io.StringIO()
    app = AppContext(state_dir_override=state, stdout=out, stderr=err)
    rc = main(["--state-dir", str(state), "history", "--tenant", "bron"], app=app)
    assert rc == 0, err.getvalue()
    assert "op1" in out.getvalue()


def _journal(tmp_path: Path) -> Journal:
    plan = {"component": "office", "to_version": "2", "waves": [{"hosts": [{"host": "office1"}]}]}
    return Journal.create(tmp_path, "20260101T000000Z-abcd", plan)


def test_journal_invalid_byte_is_skipped_and_counted(tmp_path: Path) -> None:
    journal = _journal(tmp_path)
    journal.record("office1", "apply", "started")
    with open(journal.path, "ab") as fh:
        fh.write(b'{"time": 1, "host": "office1", "step": "x\xff", "status": "done"}\n')
        fh.write(b'{"time": 1, "host": "office1", "step": "gate", "status": "done", "data": [1]}\n')
        fh.write(b'{"time": 1, "host": 5, "step": "gate", "status": "done"}\n')
    journal.record("office1", "apply", "done", from_version="1")
    progress = journal.progress(["office1"])
    assert progress["office1"].done_steps == ["apply"]
    assert journal.skipped_lines == 3
    assert latest_rollouts(tmp_path)["office"].skipped_lines == 3
    exp = exporter_app.build(tmp_path, lambda: None)
    assert 'tnoctl_upgrade_rollout_journal_invalid_lines{component="office"} 3' in exp.collector.render()


def test_deep_json_in_a_lock_file_is_unreadable_not_a_crash(tmp_path: Path) -> None:
    path = locks.lock_path(tmp_path, "bron")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"[" * 100_000)
    statuses = locks.list_locks(tmp_path)
    assert [(s.tenant, s.state) for s in statuses] == [("bron", "unreadable")]
    path.write_text('{"owner": "x", "pid": Infinity, "host": "h", "verb": "v", "operation_id": "o", "started": "s"}')
    assert [s.state for s in locks.list_locks(tmp_path)] == ["unreadable"]


def test_crash_safe_writes_fsync_file_and_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """plan.json, store appends and vault.atomic_write fsync their data and then their directory."""
    from tnoctl.config import vault

    synced: list[str] = []
    real = os.fsync

    def spy(fd: int) -> None:
        synced.append("dir" if os.path.isdir(f"/proc/self/fd/{fd}") else "file")
        real(fd)

    monkeypatch.setattr(os, "fsync", spy)
    _journal(tmp_path)
    assert synced[:2] == ["file", "dir"]
    synced.clear()
    Store(tmp_path).record_operation(OperationRecord("alpha", "deploy", True, NOW))
    assert synced == ["file", "dir"]  # a new store file: its directory entry too
    synced.clear()
    vault.atomic_write(tmp_path / "x.yml", b"a: 1\n")
    assert synced == ["file", "dir"]
    synced.clear()
    durable.replace(tmp_path / "x.yml", tmp_path / "y.yml")
    assert synced == ["dir"]


def test_special_files_in_the_state_dir_never_hang_a_reader(tmp_path: Path) -> None:
    import signal

    store = Store(tmp_path)
    store.dir.mkdir(parents=True)
    os.mkfifo(store.path("operations"))
    path = locks.lock_path(tmp_path, "bron")
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)
    (path.parent / "givors.lock").symlink_to("/dev/zero")

    def boom(signum, frame):
        raise TimeoutError("a reader blocked on a special file")

    old = signal.signal(signal.SIGALRM, boom)
    signal.alarm(5)
    try:
        assert store.latest_operations() == {}
        assert store.read_stats()["operations"].last_error == "not a regular file"
        assert [(s.tenant, s.state) for s in locks.list_locks(tmp_path)] == [("bron", "unreadable"),
                                                                            ("givors", "unreadable")]
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
