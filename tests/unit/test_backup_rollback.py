"""Append-only rollback on a fake repository tree: what moves, what stays, the lock, the log."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tnoctl.hostagent import rollback

LOG = """transaction 3, UTC time 2026-11-29T10:00:00.000001
transaction 7, UTC time 2026-11-29T11:00:00.000001
transaction 9, UTC time 2026-11-29T12:00:00.000001
garbage line
"""


def _repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    (repo / "data" / "0").mkdir(parents=True)
    for n in range(10):
        (repo / "data" / "0" / str(n)).write_bytes(f"segment {n}".encode())
    for name in ("index.9", "hints.9", "integrity.9", "README"):
        (repo / name).write_text(name)
    (repo / "config").write_text("[repository]\nversion = 1\nid = abc123\n")
    (repo / "transactions").write_text(LOG)
    return repo


def test_parse_transactions_skips_other_lines() -> None:
    assert rollback.parse_transactions(LOG) == [
        (3, "2026-11-29T10:00:00.000001"), (7, "2026-11-29T11:00:00.000001"), (9, "2026-11-29T12:00:00.000001")]


def test_rollback_moves_later_segments_and_aux_files(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    quarantine = tmp_path / "q" / "1"
    done = rollback.rollback(repo, 7, quarantine)
    assert sorted(p.name for p in (repo / "data" / "0").iterdir()) == [str(n) for n in range(8)]
    assert sorted(p.name for p in repo.iterdir()) == ["README", "config", "data", "transactions"]
    assert (quarantine / "data" / "0" / "9").read_bytes() == b"segment 9"  # moved, not deleted
    assert (quarantine / "index.9").exists() and (quarantine / "transactions").read_text() == LOG
    assert rollback.parse_transactions((repo / "transactions").read_text())[-1][0] == 7
    assert done["repo_id"] == "abc123" and done["dropped_transactions"] == [9]
    assert done["moved"] == ["data/0/8", "data/0/9", "hints.9", "index.9", "integrity.9"]
    assert not (repo / "lock.exclusive").exists()


def test_rollback_refuses_unknown_transaction_and_a_locked_repository(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    with pytest.raises(ValueError):
        rollback.rollback(repo, 8, tmp_path / "q")
    (repo / "lock.exclusive").mkdir()
    with pytest.raises(RuntimeError, match="locked"):
        rollback.rollback(repo, 7, tmp_path / "q")
    (repo / "lock.exclusive").rmdir()
    (repo / "lock.roster").write_text(json.dumps({"shared": [["host@1", 5, 0]], "exclusive": []}))
    with pytest.raises(RuntimeError, match="in use"):
        rollback.rollback(repo, 7, tmp_path / "q")
    assert not (repo / "lock.exclusive").exists() and (repo / "data" / "0" / "9").exists()


def test_main_prints_one_json_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = _repo(tmp_path)
    assert rollback.main(["transactions", str(repo)]) == 0
    assert json.loads(capsys.readouterr().out)["transactions"][0] == [3, "2026-11-29T10:00:00.000001"]
    assert rollback.main(["rollback", str(repo), "1", str(tmp_path / "q")]) == 1
    assert rollback.main(["nope"]) == 2
