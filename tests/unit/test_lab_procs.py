"""PID tracking against a fake /proc: start time and command line must both match (PID reuse)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tnoctl.lab import hosts, procs

STAT = "{pid} ({comm}) {state} 1 {pid} {pid} 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 {start} 1000 200"


def fake_proc(tmp_path: Path, pid: int, argv: list[str], start: int, state: str = "S", comm: str = "x") -> Path:
    d = tmp_path / str(pid)
    d.mkdir(parents=True, exist_ok=True)
    (d / "stat").write_text(STAT.format(pid=pid, comm=comm, state=state, start=start))
    (d / "cmdline").write_bytes(b"\0".join(a.encode() for a in argv) + b"\0")
    return tmp_path


NSPAWN = ["systemd-nspawn", "-q", "-D", "/lab/hosts/mail1/merged", "-M", "mail1", "-b"]
RECORD = procs.ProcRecord(pid=4242, starttime=777, marker="mail1", program="systemd-nspawn")


def test_parse_stat_handles_spaces_and_parens_in_comm() -> None:
    text = STAT.format(pid=9, comm="a) (b c", state="Z", start=31337)
    assert procs.parse_stat(text) == ("Z", 1, 31337)


def test_matching_process(tmp_path: Path) -> None:
    proc = fake_proc(tmp_path, 4242, NSPAWN, 777)
    assert procs.matches(RECORD, proc)
    assert procs.alive(RECORD, proc)


@pytest.mark.parametrize(
    ("argv", "start", "state", "why"),
    [
        (NSPAWN, 778, "S", "PID reused: other start time"),
        (["sleep", "mail1"], 777, "S", "other program"),
        (["systemd-nspawn", "-M", "mail2"], 777, "S", "other host"),
        (["systemd-nspawn", "-M", "mail11"], 777, "S", "marker must be a whole argument"),
        (NSPAWN, 777, "Z", "zombie counts as gone"),
    ],
)
def test_non_matching_process(tmp_path: Path, argv: list[str], start: int, state: str, why: str) -> None:
    proc = fake_proc(tmp_path, 4242, argv, start, state)
    assert not procs.matches(RECORD, proc), why


def test_missing_pid_is_gone(tmp_path: Path) -> None:
    assert not procs.matches(RECORD, tmp_path)
    assert not procs.alive(RECORD, tmp_path)
    assert procs.wait_gone(RECORD, 0.0, tmp_path)


def test_record_roundtrip_and_garbage(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    RECORD.save(path)
    assert procs.ProcRecord.load(path) == RECORD
    path.write_text("{not json")
    assert procs.ProcRecord.load(path) is None
    assert procs.ProcRecord.load(tmp_path / "missing.json") is None


def test_stale_host_dir_is_not_running(tmp_path: Path) -> None:
    hd = hosts.host_dir(tmp_path, "mail1")
    hd.root.mkdir(parents=True)
    assert not hosts.is_running(hd)
    procs.ProcRecord(pid=2**22 + 1, starttime=1, marker="mail1", program="systemd-nspawn").save(hd.nspawn_record)
    assert not hosts.is_running(hd)


def test_spawn_detached_records_the_real_process(tmp_path: Path) -> None:
    pid = procs.spawn_detached(["sleep", "300"], tmp_path / "log")
    record = procs.record_for(pid, marker="300", program="sleep")
    try:
        assert procs.matches(record)
        assert procs.read_stat(pid)[1] != __import__("os").getpid()  # reparented: not our child
    finally:
        assert procs.stop(record, timeout=5) == "stopped"
    assert not procs.matches(record)


def test_nspawn_leftovers_are_removed_only_for_that_host(tmp_path: Path) -> None:
    run = tmp_path / "nspawn"
    for sub in ("propagate/mail1", "propagate/dev1", "locks"):
        (run / sub).mkdir(parents=True)
    (run / "locks" / "inode-1:2").write_text("")
    (run / "locks" / "inode-3:4").write_text("")
    hosts.remove_nspawn_leftovers("mail1", "inode-1:2", run)
    assert sorted(p.name for p in (run / "propagate").iterdir()) == ["dev1"]
    assert sorted(p.name for p in (run / "locks").iterdir()) == ["inode-3:4"]
    hosts.remove_nspawn_leftovers("dev1", "../../etc", run)
    assert not (run / "propagate").exists() and (run / "locks" / "inode-3:4").exists()


def test_wait_exec_accepts_a_program_that_execs_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``setpriv ... apt-cacher-ng`` ends up as apt-cacher-ng's cmdline: the wait must not run into its timeout."""
    (tmp_path / "42").mkdir()
    monkeypatch.setattr(procs, "PROC", tmp_path)

    def no_sleep(_seconds: float) -> None:
        raise AssertionError("_wait_exec kept waiting")

    (tmp_path / "42" / "cmdline").write_bytes(b"/usr/sbin/apt-cacher-ng\0-c\0/conf\0")
    monkeypatch.setattr(procs.time, "sleep", no_sleep)
    procs._wait_exec(42, ["setpriv", "--reuid", "apt-cacher-ng", "/usr/sbin/apt-cacher-ng", "-c", "/conf"])
    (tmp_path / "42" / "cmdline").write_bytes(b"bash\0-c\0exec \"$@\"\0lab-spawn\0sleep\0")
    with pytest.raises(AssertionError, match="kept waiting"):  # still the wrapper: it waits
        procs._wait_exec(42, ["sleep", "300"])
