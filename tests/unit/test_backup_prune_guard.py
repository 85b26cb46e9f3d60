"""`backup prune` after a client deleted archives (issue 13): refuse to compact, name each archive, exit 4.

A fake backup host keeps one repository per tenant as a set of archive names; a "client" (the
compromised mail host) deletes from it behind tnoctl's back. Like an append-only borg repository, it
keeps every manifest version (the archive names after each transaction) until ``borg compact``, and
answers history.py with them. No host needed.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.unit.test_upgrade_executor import Result
from tnoctl import paths
from tnoctl.actions import backup as backup_action
from tnoctl.actions import backup_repo
from tnoctl.actions.env import Env, Output
from tnoctl.backup import ledger
from tnoctl.cli import main
from tnoctl.cli.context import AppContext
from tnoctl.config.load import load_inventory
from tnoctl.errors import ExitCode
from tnoctl.state import store as state_store

SLUG = "feyzin"  # mail only in the lab inventory: one mail prune pass + its tagged pass


@pytest.fixture(scope="module")
def inventory():
    return load_inventory(paths.LAB_INVENTORY)


@dataclass
class FakeBackupHost:
    """Archives per repository; ``tno-backup run`` adds one, ``borg prune`` drops ``retire``, compact counts."""

    archives: list[str] = field(default_factory=list)
    retire: list[str] = field(default_factory=list)  # what the retention prunes on the next borg prune
    compacted: int = 0
    runs: int = 0
    ran: list[tuple[str, ...]] = field(default_factory=list)
    versions: list[tuple[int, str, list[str]]] = field(default_factory=list)  # manifest history until compact
    history_fails: bool = False

    def commit(self) -> None:
        """A transaction: a new manifest version when the archive list changed."""
        if not self.versions or self.versions[-1][2] != sorted(self.archives):
            tx = (self.versions[-1][0] if self.versions else 0) + 4
            self.versions.append((tx, f"2026-11-29T10:{tx:02d}:00", sorted(self.archives)))

    def run(self, host: str, argv: list[str], timeout: float = 60, input: bytes | None = None) -> Result:
        self.ran.append(tuple(argv))
        self.commit()
        if argv[-2:-1] == ["/usr/local/lib/tno-backup/history.py"]:
            if self.history_fails:
                return Result(rc=2, stderr="history.py: ModuleNotFoundError: No module named 'borg'")
            return Result(stdout=json.dumps({"repo_id": "ab", "versions": self.versions}) + "\n")
        if "borg" in argv:
            args = list(argv[argv.index("borg") + 1:])
            if args[0] == "list":
                docs = [{"name": n, "start": f"2026-11-29T10:00:{i:02d}.000000"} for i, n in enumerate(self.archives)]
                return Result(stdout=json.dumps({"archives": docs}))
            if args[0] == "prune":
                glob = args[args.index("--glob-archives") + 1].rstrip("*")
                gone = [n for n in self.retire if n.startswith(glob) and n in self.archives]
                self.archives = [n for n in self.archives if n not in gone]
                lines = [f"{f'Pruning archive ({i + 1}/{len(gone)}):':<40} {n:<36} Sun, 2026-11-29 [ab]"
                         for i, n in enumerate(gone)]
                return Result(stderr="\n".join(["Keeping archive (rule: daily #1):  x", *lines]))
            if args[0] == "compact":
                self.compacted += 1
                self.commit()
                self.versions = self.versions[-1:]
            return Result()
        if argv[:2] == ["/usr/local/sbin/tno-backup", "run"]:
            self.runs += 1
            name = f"{argv[2]}-2026-11-29T10:00:{self.runs:02d}.000000"
            self.archives.append(name)
            return Result(stdout=json.dumps({"ok": True, "finished_at": 1.0, "archive": name}) + "\n")
        return Result()

    def client_delete(self, name: str) -> None:
        """What `borg delete REPO::NAME` from the mail host's append-only key looks like from the server."""
        self.commit()
        self.archives.remove(name)
        self.commit()

    def timer_backup(self, name: str) -> None:
        """An archive the host's systemd timer makes: tnoctl is not told."""
        self.commit()
        self.archives.append(name)
        self.commit()

    def close(self) -> None:
        pass

    def __enter__(self) -> FakeBackupHost:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def _env(tmp_path: Path, inventory, host: FakeBackupHost) -> Env:
    pw = tmp_path / "pw"
    pw.write_text("x")
    return Env(paths.LAB_INVENTORY, tmp_path / "state", pw, Output(io.StringIO(), io.StringIO()),
               ssh_factory=lambda _inventory: host, inventory=inventory, redact=lambda text: text)


@pytest.fixture(autouse=True)
def no_vault(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backup_action, "passphrase", lambda env, slug: "not-a-secret")


def _backups(env: Env, n: int) -> list[str]:
    for _ in range(n):
        assert backup_action.run(env, backup_action.BackupRunRequest((SLUG,))).ok
    return [r.archive for r in sorted(env.store.archive_ledger(SLUG).values(), key=lambda r: r.archive)]


def test_prune_refuses_to_compact_after_a_client_delete_and_names_the_archive(tmp_path: Path, inventory) -> None:
    host = FakeBackupHost()
    env = _env(tmp_path, inventory, host)
    _first, second, _third = _backups(env, 3)
    host.client_delete(second)
    outcome = backup_repo.prune(env, backup_repo.PruneRequest((SLUG,)))
    assert outcome.exit_code == ExitCode.REFUSED and outcome.result == "refused"
    assert host.compacted == 0 and not any("prune" in a for a in host.ran if "borg" in a)
    assert outcome.errors == [ledger.deleted_line(SLUG, second)]
    assert second in outcome.errors[0] and "recover-deleted --tenant feyzin" in outcome.errors[0]
    assert outcome.data["tenants"][0]["data"]["deleted_archives"] == [second]
    audit = [json.loads(line) for line in (tmp_path / "state" / "audit.jsonl").read_text().splitlines()]
    assert audit[-1]["result"] == "refused"
    # refused again on the next run: nothing was recorded as gone
    assert backup_repo.prune(env, backup_repo.PruneRequest((SLUG,))).exit_code == ExitCode.REFUSED


def test_own_retention_and_timer_archives_do_not_trip_the_guard(tmp_path: Path, inventory) -> None:
    host = FakeBackupHost()
    env = _env(tmp_path, inventory, host)
    first, second = _backups(env, 2)
    timer = f"{SLUG}-2026-11-29T09:00:00.000000"  # made by the systemd timer: tnoctl never saw it
    host.archives.insert(0, timer)
    host.retire = [timer, first]
    outcome = backup_repo.prune(env, backup_repo.PruneRequest((SLUG,)))
    assert outcome.ok, outcome.errors
    assert host.compacted == 1 and host.archives == [second]
    known = env.store.archive_ledger(SLUG)
    assert {n: r.state for n, r in known.items()} == {timer: "pruned", first: "pruned", second: "created"}
    host.retire = []
    assert backup_repo.prune(env, backup_repo.PruneRequest((SLUG,))).ok and host.compacted == 2


def test_a_seen_timer_archive_deleted_later_is_caught(tmp_path: Path, inventory) -> None:
    host = FakeBackupHost(archives=[f"{SLUG}-2026-11-29T09:00:00.000000"])
    env = _env(tmp_path, inventory, host)
    assert backup_repo.prune(env, backup_repo.PruneRequest((SLUG,))).ok  # first prune: recorded as seen
    host.client_delete(f"{SLUG}-2026-11-29T09:00:00.000000")
    assert backup_repo.prune(env, backup_repo.PruneRequest((SLUG,))).exit_code == ExitCode.REFUSED


def test_a_timer_archive_deleted_before_tnoctl_saw_it_is_caught_by_the_manifest_history(tmp_path: Path,
                                                                                       inventory) -> None:
    """The ledger never knew it; an older manifest version still lists it: refused, named, not compacted."""
    host = FakeBackupHost()
    env = _env(tmp_path, inventory, host)
    _backups(env, 1)
    timer = f"{SLUG}-2026-11-29T23:00:00.000000"
    host.timer_backup(timer)
    host.client_delete(timer)
    outcome = backup_repo.prune(env, backup_repo.PruneRequest((SLUG,)))
    assert outcome.exit_code == ExitCode.REFUSED and host.compacted == 0
    assert outcome.errors == [ledger.deleted_line(SLUG, timer)]
    accepted = backup_repo.prune(env, backup_repo.PruneRequest((SLUG,), accept_deleted=True))
    assert accepted.ok and host.compacted == 1 and env.store.archive_ledger(SLUG)[timer].state == "accepted"
    assert backup_repo.prune(env, backup_repo.PruneRequest((SLUG,))).ok


def test_an_unreadable_manifest_history_fails_closed(tmp_path: Path, inventory) -> None:
    host = FakeBackupHost(history_fails=True)
    env = _env(tmp_path, inventory, host)
    _backups(env, 1)
    outcome = backup_repo.prune(env, backup_repo.PruneRequest((SLUG,)))
    assert not outcome.ok and host.compacted == 0
    assert "manifest history could not be read" in outcome.data["tenants"][0]["detail"]
    assert "No module named 'borg'" in outcome.data["tenants"][0]["detail"]


def test_vanished_skips_present_checkpoint_and_tnoctl_removed_archives() -> None:
    rec = lambda name, state: state_store.ArchiveRecord(SLUG, name, state, 1.0)  # noqa: E731
    versions = [(1, "t1", ["a", "b", "c", "d.checkpoint", "e"]), (5, "t5", ["a", "e"]), (9, "t9", ["a", "f"])]
    known = {"c": rec("c", "pruned"), "e": rec("e", "created")}
    assert ledger.vanished(versions, ["a", "f"], known) == {"b": 5, "e": 9}
    assert ledger.vanished(versions, ["a"], {}) == {"b": 5, "c": 5, "e": 9}  # f: still in the newest version
    assert ledger.vanished([], ["a"], {}) == {}


def test_a_delete_racing_the_prune_is_not_compacted(tmp_path: Path, inventory) -> None:
    host = FakeBackupHost()
    env = _env(tmp_path, inventory, host)
    _first, second = _backups(env, 2)
    original = host.run

    def racing(h: str, argv: list[str], timeout: float = 60, input: bytes | None = None) -> Result:
        if "borg" in argv and "prune" in argv and second in host.archives:
            host.client_delete(second)  # the mail host deletes while borg prune runs
        return original(h, argv, timeout, input)

    host.run = racing  # type: ignore[method-assign]
    outcome = backup_repo.prune(env, backup_repo.PruneRequest((SLUG,)))
    assert outcome.exit_code == ExitCode.REFUSED and host.compacted == 0
    assert outcome.errors == [ledger.deleted_line(SLUG, second)]


def test_accept_deleted_records_the_loss_and_compacts(tmp_path: Path, inventory) -> None:
    host = FakeBackupHost()
    env = _env(tmp_path, inventory, host)
    first, _second = _backups(env, 2)
    host.client_delete(first)
    outcome = backup_repo.prune(env, backup_repo.PruneRequest((SLUG,), accept_deleted=True))
    assert outcome.ok and host.compacted == 1
    assert env.store.archive_ledger(SLUG)[first].state == "accepted"
    assert backup_repo.prune(env, backup_repo.PruneRequest((SLUG,))).ok


def test_recover_deleted_reconciles_the_ledger(tmp_path: Path, inventory) -> None:
    """Archives rolled back on purpose (made after the chosen transaction) do not block the next prune."""
    host = FakeBackupHost()
    env = _env(tmp_path, inventory, host)
    first, second, third = _backups(env, 3)
    host.client_delete(first)
    original = host.run

    def rollback(h: str, argv: list[str], timeout: float = 60, input: bytes | None = None) -> Result:
        if "rollback" in argv:  # back to before the delete, which also drops the later third backup
            host.archives = [first, second]
            return Result(stdout=json.dumps({"repo_id": "ab", "dropped_transactions": [9, 10]}) + "\n")
        return original(h, argv, timeout, input)

    host.run = rollback  # type: ignore[method-assign]
    outcome = backup_repo.recover_deleted(env, backup_repo.RecoverRequest(SLUG, 8))
    assert outcome.ok
    assert outcome.data["tenants"][0]["data"]["rolled_back_archives"] == [third]
    assert env.store.archive_ledger(SLUG)[third].state == "rolled_back"
    assert backup_repo.prune(env, backup_repo.PruneRequest((SLUG,))).ok and host.compacted == 1


def test_pruned_by_borg_reads_borg_1_2_list_lines() -> None:
    out = ("Keeping archive (rule: daily #1):        givors-2026-11-29T10:00:00.000000 Sun, 2026-11-29 [aa]\n"
           "Pruning archive (1/2):                   givors-2026-11-28T10:00:00.000000 Sat, 2026-11-28 [bb]\n"
           "Pruning archive: givors.office-2026-11-27T10:00:00.000000 Fri, 2026-11-27 [cc]\n")
    assert ledger.pruned_by_borg(out) == ["givors-2026-11-28T10:00:00.000000",
                                          "givors.office-2026-11-27T10:00:00.000000"]


def test_a_bad_archive_state_line_is_skipped(tmp_path: Path) -> None:
    store = state_store.Store(tmp_path)
    store.record_archive(state_store.ArchiveRecord("givors", "givors-1", "created", 1.0))
    with open(store.path("archives"), "a") as fh:
        fh.write('{"tenant":"givors","archive":"givors-2","state":"gone","at":2.0}\n')
    assert list(store.archive_ledger("givors")) == ["givors-1"]
    assert store.read_stats()["archives"].invalid_lines == 1


def test_prune_cli_documents_accept_deleted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    app = AppContext(inventory=paths.LAB_INVENTORY, state_dir_override=tmp_path, stdout=io.StringIO(),
                     stderr=io.StringIO())
    assert main(["backup", "prune", "--help"], app=app) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--accept-deleted" in text and "exit 4" in text
