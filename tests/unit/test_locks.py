"""Per-tenant locks: real processes contend, dead and recycled pids are recovered, other hosts never."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import textwrap

import pytest

from tnoctl.errors import InvalidInput, Locked
from tnoctl.state import current_host, locks

HOLDER = textwrap.dedent(
    """
    import sys
    from tnoctl.state import locks
    with locks.hold(sys.argv[1], ["givors"], "deploy", "op-holder"):
        print("held", flush=True)
        sys.stdin.readline()  # hold until the parent says so (or closes our stdin)
    print("released", flush=True)
    """
)


def _dead_pid() -> int:
    """The pid of a child that has exited and been reaped."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _plant(state_dir, tenant: str, **fields) -> None:
    """Write a lock file as another (possibly dead) operation would have."""
    data = {"owner": "bob", "pid": 1, "host": current_host(), "verb": "upgrade",
            "operation_id": "op-old", "started": "2026-11-29T15:30:00Z", "pid_start_time": None} | fields
    path = locks.lock_path(state_dir, tenant)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def test_two_processes_contend_for_a_tenant(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline() == "held\n"
        with pytest.raises(Locked) as err, locks.hold(tmp_path, ["givors"], "upgrade", "op-second"):
            pass
        msg = err.value.message
        holder_desc = f"(pid {holder.pid} on {current_host()}, operator "
        assert msg.startswith(f"tenant givors is locked by deploy {holder_desc}")
        assert "'tnoctl lock release givors --yes' if that operation is dead" in msg
        assert "operation op-holder" in err.value.details
        holder.stdin.write("go\n")
        holder.stdin.flush()
        assert holder.stdout.readline() == "released\n"
    finally:
        holder.stdin.close()
        holder.wait()
    assert holder.returncode == 0
    with locks.hold(tmp_path, ["givors"], "upgrade", "op-second") as held:
        assert [i.operation_id for i in held] == ["op-second"]
        assert [s.info.pid for s in locks.list_locks(tmp_path)] == [os.getpid()]
    assert locks.list_locks(tmp_path) == []


def test_dead_pid_lock_is_recovered_with_a_warning(tmp_path):
    _plant(tmp_path, "givors", pid=_dead_pid())
    assert [s.state for s in locks.list_locks(tmp_path)] == ["stale"]
    warnings: list[str] = []
    with locks.hold(tmp_path, ["givors"], "deploy", "op-new", warn=warnings.append):
        assert locks.list_locks(tmp_path)[0].info.operation_id == "op-new"
    assert len(warnings) == 1 and "\n" not in warnings[0]
    assert warnings[0].startswith("recovered stale lock of tenant givors: upgrade (pid ")
    assert not any(p.name.startswith("givors.lock.") for p in (tmp_path / "locks").iterdir())


def test_recovery_warns_on_the_log_by_default(tmp_path, caplog):
    _plant(tmp_path, "givors", pid=_dead_pid())
    with caplog.at_level("WARNING"), locks.hold(tmp_path, ["givors"], "deploy", "op-new"):
        pass
    assert "recovered stale lock of tenant givors" in caplog.text


def test_recycled_pid_with_other_start_time_is_stale(tmp_path):
    me = os.getpid()
    real = locks.process_start_time(me)
    assert real is not None
    _plant(tmp_path, "givors", pid=me, pid_start_time=real + 1)
    warnings: list[str] = []
    with locks.hold(tmp_path, ["givors"], "deploy", "op-new", warn=warnings.append):
        pass
    assert len(warnings) == 1


def test_live_pid_with_matching_start_time_is_held(tmp_path):
    me = os.getpid()
    _plant(tmp_path, "givors", pid=me, pid_start_time=locks.process_start_time(me))
    with pytest.raises(Locked, match=f"pid {me} on"), locks.hold(tmp_path, ["givors"], "deploy", "op-new"):
        pass
    assert locks.list_locks(tmp_path)[0].info.operation_id == "op-old"


def test_lock_from_another_host_is_never_recovered(tmp_path):
    _plant(tmp_path, "givors", pid=_dead_pid(), host="bastion1")
    assert [s.state for s in locks.list_locks(tmp_path)] == ["held"]
    expected = "on bastion1, operator bob, since 2026-11-29T15:30:00Z"
    with pytest.raises(Locked, match=expected), locks.hold(tmp_path, ["givors"], "deploy", "op-new"):
        pass


def test_unreadable_lock_is_not_recovered(tmp_path):
    path = locks.lock_path(tmp_path, "givors")
    path.parent.mkdir(parents=True)
    path.write_text("{trunc")
    with pytest.raises(Locked, match="unreadable"), locks.hold(tmp_path, ["givors"], "deploy", "op"):
        pass
    assert [s.state for s in locks.list_locks(tmp_path)] == ["unreadable"]


def test_all_or_nothing_in_sorted_order(tmp_path):
    _plant(tmp_path, "givors", pid=os.getpid(), pid_start_time=locks.process_start_time(os.getpid()))
    wanted = ["venissieux", "corbas", "givors"]
    with pytest.raises(Locked, match="tenant givors"), locks.hold(tmp_path, wanted, "d", "op"):
        pass
    assert [s.tenant for s in locks.list_locks(tmp_path)] == ["givors"]  # corbas was given back
    with locks.hold(tmp_path, ["venissieux", "corbas"], "d", "op") as held:
        assert [i.tenant for i in held] == ["corbas", "venissieux"]


def test_exit_only_removes_a_lock_still_ours(tmp_path):
    with locks.hold(tmp_path, ["givors"], "deploy", "op-mine"):
        locks.release(tmp_path, "givors")  # an operator broke our lock...
        _plant(tmp_path, "givors", operation_id="op-other", pid=os.getpid())  # ...and someone took it
    assert locks.list_locks(tmp_path)[0].info.operation_id == "op-other"


def test_release_and_slug_validation(tmp_path):
    assert locks.release(tmp_path, "givors") is None
    _plant(tmp_path, "givors", host="bastion1")
    status = locks.release(tmp_path, "givors")
    assert status is not None and status.info.host == "bastion1"
    assert locks.list_locks(tmp_path) == []
    for bad in ("../etc", "Givors", "", "a" * 41):
        with pytest.raises(InvalidInput):
            locks.lock_path(tmp_path, bad)


RACERS = 6


def _racer(state_dir: str, start, done, results) -> None:
    start.wait()
    try:
        with locks.hold(state_dir, ["givors"], "deploy", f"op-{os.getpid()}", warn=lambda _m: None):
            results.put("won")
            done.wait()  # keep holding until every racer has tried
            return
    except Locked:
        results.put("locked")
    done.wait()


def test_racing_recoverers_only_one_wins(tmp_path):
    _plant(tmp_path, "givors", pid=_dead_pid())
    ctx = multiprocessing.get_context("fork")
    start, done, results = ctx.Barrier(RACERS), ctx.Barrier(RACERS + 1), ctx.Queue()
    procs = [ctx.Process(target=_racer, args=(str(tmp_path), start, done, results)) for _ in range(RACERS)]
    for proc in procs:
        proc.start()
    outcomes = sorted(results.get() for _ in range(RACERS))
    done.wait()
    for proc in procs:
        proc.join()
    assert outcomes == ["locked"] * (RACERS - 1) + ["won"]
    assert [p.exitcode for p in procs] == [0] * RACERS
    assert locks.list_locks(tmp_path) == []


def test_a_sibling_thread_of_the_same_operation_waits_its_turn(tmp_path, monkeypatch):
    """An OS upgrade batch runs a commune's mail and office hosts at once: the second waits, never fails."""
    import threading

    monkeypatch.setattr(locks, "_SAME_OPERATION_POLL", 0.01)
    order: list[str] = []
    first_holds, second_asked = threading.Event(), threading.Event()

    def first() -> None:
        with locks.hold(tmp_path, ["vaulx"], "upgrade", "op-1"):
            order.append("first in")
            first_holds.set()
            assert second_asked.wait(5)
            order.append("first out")

    def second() -> None:
        assert first_holds.wait(5)
        second_asked.set()
        with locks.hold(tmp_path, ["vaulx"], "upgrade", "op-1"):
            order.append("second in")

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert order == ["first in", "first out", "second in"]
    assert not locks.lock_path(tmp_path, "vaulx").exists()


def test_the_same_thread_or_another_operation_is_still_refused(tmp_path):
    with locks.hold(tmp_path, ["vaulx"], "upgrade", "op-1"):
        with pytest.raises(Locked, match="vaulx is locked by upgrade"):
            locks.acquire(tmp_path, "vaulx", "upgrade", "op-1")  # same thread: waiting would never end
        with pytest.raises(Locked, match="vaulx is locked by upgrade"):
            locks.acquire(tmp_path, "vaulx", "deploy", "op-2")
