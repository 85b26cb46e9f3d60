"""State store: last record per key wins, tolerant reading, incremental refresh, compaction, concurrency."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from tnoctl.state.store import (
    BackupResult,
    BackupVerification,
    DriftRecord,
    OperationRecord,
    Store,
    UpgradeRecord,
    VersionRecord,
)


def test_latest_record_per_key_wins(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.record_version(VersionRecord("a", "office", "1.0", "1.0", 10))
    store.record_version(VersionRecord("a", "office", "1.1", "1.1", 20))
    store.record_version(VersionRecord("b", "office", "1.0", "1.1", 20))
    got = store.latest_versions()
    assert got[("a", "office")].deployed == "1.1"
    assert got[("b", "office")].pinned == "1.1"
    assert len(got) == 2


def test_backup_failure_does_not_hide_last_success(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.record_backup(BackupResult("a", "mail", True, 100, 5, 1000, 600, 100))
    store.record_backup(BackupResult("a", "mail", False, 200, 1, detail="borg lock"))
    store.record_verification(BackupVerification("a", "mail", True, 150))
    store.record_verification(BackupVerification("a", "mail", False, 250))
    status = store.latest_backups()[("a", "mail")]
    assert status.last_success is not None and status.last_success.finished_at == 100
    assert status.last_failure is not None and status.last_failure.finished_at == 200
    assert status.last_failed is True
    assert status.last_verified_at == 150
    assert status.last_verification_failed_at == 250
    store.record_backup(BackupResult("a", "mail", True, 300))
    assert store.latest_backups()[("a", "mail")].last_failed is False


def test_upgrade_keeps_last_success_across_later_runs(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.record_upgrade(UpgradeRecord("a", "office", "running", 100))
    store.record_upgrade(UpgradeRecord("a", "office", "succeeded", 100, 160))
    store.record_upgrade(UpgradeRecord("a", "office", "running", 500))
    store.record_upgrade(UpgradeRecord("a", "office", "failed", 500, 560))
    rec = store.latest_upgrades()[("a", "office")]
    assert (rec.state, rec.last_success_at) == ("failed", 160)
    store.compact("upgrades")  # the merged value survives compaction
    assert Store(tmp_path).latest_upgrades()[("a", "office")].last_success_at == 160


def test_garbage_and_truncated_lines_are_skipped_and_counted(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.record_drift(DriftRecord("a", "mail", True, 3, 10))
    with open(store.path("drift"), "ab") as fh:
        fh.write(b'{"tenant": "b", "compo\n')  # truncated line
        fh.write(b"\x00\xffnot json\n")
        fh.write(b'["a list"]\n')
        fh.write(b'{"tenant": "c", "component": "mail"}\n')  # missing fields
    store.record_drift(DriftRecord("d", "mail", False, 0, 11))
    got = store.latest_drift()
    assert set(got) == {("a", "mail"), ("d", "mail")}
    stats = store.read_stats()["drift"]
    assert stats.invalid_lines == 4
    assert stats.records == 2


def test_crashed_writer_half_line_does_not_swallow_next_record(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.path("operations").parent.mkdir(parents=True)
    store.path("operations").write_bytes(b'{"tenant": "a", "verb": "dep')  # no newline: writer died
    store.record_operation(OperationRecord("b", "deploy", True, 5, 1))
    assert set(store.latest_operations()) == {("b", "deploy")}
    assert store.read_stats()["operations"].invalid_lines == 1


def test_incremental_refresh_and_pending_tail(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.record_operation(OperationRecord("a", "deploy", True, 1, 1))
    assert len(store.latest_operations()) == 1
    line = json.dumps({"tenant": "b", "verb": "backup", "ok": True, "finished_at": 2}).encode()
    with open(store.path("operations"), "ab") as fh:
        fh.write(line[:10])  # a writer in the middle of its write
        fh.flush()
        assert set(store.latest_operations()) == {("a", "deploy")}
        assert store.read_stats()["operations"].invalid_lines == 0
        fh.write(line[10:] + b"\n")
    assert set(store.latest_operations()) == {("a", "deploy"), ("b", "backup")}


def test_unknown_fields_from_newer_writers_are_ignored(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.path("drift").parent.mkdir(parents=True)
    store.path("drift").write_text(json.dumps({"tenant": "a", "component": "mail", "drift": True,
                                               "changed_tasks": 1, "checked_at": 3, "future": 1}) + "\n")
    assert store.latest_drift()[("a", "mail")].drift is True


def test_compaction_keeps_latest_and_readers_follow(tmp_path: Path) -> None:
    store = Store(tmp_path)
    reader = Store(tmp_path)
    for i in range(50):
        store.record_version(VersionRecord("a", "mail", f"1.{i}", "1.49", i))
    assert reader.latest_versions()[("a", "mail")].deployed == "1.49"
    assert store.compact() == {"versions": 1}
    assert len(store.path("versions").read_bytes().splitlines()) == 1
    store.record_version(VersionRecord("b", "mail", "2.0", "2.0", 99))
    assert set(reader.latest_versions()) == {("a", "mail"), ("b", "mail")}  # reader noticed the new inode


def test_generation_changes_only_on_append(tmp_path: Path) -> None:
    store = Store(tmp_path)
    g0 = store.generation("drift")
    assert store.generation("drift") == g0
    store.record_drift(DriftRecord("a", "mail", False, 0, 1))
    assert store.generation("drift") != g0


def _append_many(state_dir: str, worker: int, count: int) -> None:
    store = Store(Path(state_dir))
    for i in range(count):
        store.record_operation(OperationRecord(f"t{worker}-{i}", "backup", True, float(i), 1.0))


def test_concurrent_appenders_lose_nothing(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_append_many, args=(str(tmp_path), w, 200)) for w in range(4)]
    for p in procs:
        p.start()
    compactor = Store(tmp_path)
    compactor.compact("operations")  # compaction racing with appenders must not drop lines
    for p in procs:
        p.join()
        assert p.exitcode == 0
    store = Store(tmp_path)
    assert len(store.latest_operations()) == 800
    assert store.read_stats()["operations"].invalid_lines == 0


records = st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.sampled_from(["mail", "office"]),
                             st.text("0123456789.", min_size=1, max_size=5)), max_size=30)


@settings(max_examples=40, deadline=None)
@given(records)
def test_latest_equals_dict_fold(tmp_path_factory, recs) -> None:
    store = Store(tmp_path_factory.mktemp("s"))
    expected = {}
    for i, (tenant, component, version) in enumerate(recs):
        store.record_version(VersionRecord(tenant, component, version, "x", float(i)))
        expected[(tenant, component)] = version
    assert {k: v.deployed for k, v in store.latest_versions().items()} == expected
