"""The operation journal: events fold into host progress; torn lines and dead runners are handled."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tnoctl.errors import InvalidInput
from tnoctl.state.journal import Journal, list_journals
from tnoctl.state.locks import process_start_time


def test_progress_folds_steps_and_finish(tmp_path: Path) -> None:
    journal = Journal.create(tmp_path, "op1", {"component": "office"})
    journal.record("", "run", "started", pid=os.getpid(), pid_start=process_start_time(os.getpid()))
    journal.record("h1", "snapshot", "started")
    journal.record("h1", "snapshot", "done", from_version="1")
    journal.record("h1", "apply", "started")
    journal.record("h1", "apply", "failed", "boom", rollback_needed=True)
    journal.record("h2", "snapshot", "started")
    prog = journal.progress(["h1", "h2", "h3"])
    assert prog["h1"].done_steps == ["snapshot"] and prog["h1"].data == {"from_version": "1", "rollback_needed": True}
    assert prog["h2"].state == "running" and prog["h2"].current == "snapshot"  # our own pid: alive
    assert prog["h3"].state == "pending" and journal.state() == "running"
    journal.record("h1", "finish", "rolled_back", "back on 1")
    assert journal.progress(["h1"])["h1"].finished


def test_dead_runner_means_interrupted_and_torn_lines_are_skipped(tmp_path: Path) -> None:
    journal = Journal.create(tmp_path, "op2", {})
    journal.record("", "run", "started", pid=os.getpid(), pid_start=-1)  # not this process' start time
    journal.record("h1", "apply", "started")
    with open(journal.path, "ab") as f:
        f.write(b'{"host": "h1", "step": "apply", "sta')  # crash mid-write
    journal.record("h2", "snapshot", "started")  # starts on a fresh line
    prog = journal.progress(["h1", "h2"])
    assert journal.state() == "interrupted"
    assert prog["h1"].state == "interrupted" and prog["h1"].detail == "stopped during apply"
    assert prog["h2"].current == "snapshot"


def test_open_names_unknown_ids(tmp_path: Path) -> None:
    Journal.create(tmp_path, "20261129T100000Z-a", {})
    assert [j.id for j in list_journals(tmp_path)] == ["20261129T100000Z-a"]
    with pytest.raises(InvalidInput, match=r"no operation nope .*latest: 20261129T100000Z-a"):
        Journal.open(tmp_path, "nope")
    with pytest.raises(InvalidInput, match="not valid"):
        Journal.open(tmp_path, "../etc")


def test_latest_rollouts_count_hosts_by_state_per_component(tmp_path: Path) -> None:
    from tnoctl.state.journal import generation, latest_rollouts

    plan = {"component": "office", "to_version": "2", "waves": [{"hosts": [{"host": "h1"}, {"host": "h2"}]}]}
    old = Journal.create(tmp_path, "20261129T100000Z-a", plan)
    old.record("h1", "finish", "failed")
    before = generation(tmp_path)
    new = Journal.create(tmp_path, "20261129T110000Z-b", plan)
    new.record("h1", "finish", "rolled_back")
    new.record("h2", "finish", "skipped")
    mail = Journal.create(tmp_path, "20261129T090000Z-c", {**plan, "component": "mail"})
    mail.record("h1", "finish", "done")
    got = latest_rollouts(tmp_path)
    assert got["office"].operation == "20261129T110000Z-b"
    assert {k: v for k, v in got["office"].hosts_by_state.items() if v} == {"rolled_back": 1, "skipped": 1}
    assert {k: v for k, v in got["mail"].hosts_by_state.items() if v} == {"done": 1, "pending": 1}
    assert generation(tmp_path) != before
