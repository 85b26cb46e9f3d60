"""PID-tracked detached processes: start, record, recognise, stop.

Why: the lab outlives the `tnoctl` process that started it (and CI sessions that get killed),
so every long-running lab process is started detached (own session, reparented away from us)
and recorded as (PID, /proc start time, expected command). Before any signal we check that the
PID still runs the same program *and* started at the same clock tick, so a reused PID is never hit.
A zombie counts as gone.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from tnoctl.errors import OperationFailed

PROC = Path("/proc")


@dataclass(frozen=True)
class ProcRecord:
    """What we remember about one started process."""

    pid: int
    starttime: int
    """Field 22 of /proc/PID/stat (clock ticks since boot): unchanged by exec, unique per PID use."""
    marker: str
    """An argument that must appear as such in /proc/PID/cmdline (e.g. the host name); "" = no check."""
    program: str
    """Basename that argv[0] of the running process must have (after any exec chain)."""

    def save(self, path: Path) -> None:
        """Write the record as JSON (atomic)."""
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self)) + "\n")
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> ProcRecord | None:
        """Read a record; None when missing or unreadable (treated as 'no process')."""
        try:
            data = json.loads(path.read_text())
            return cls(int(data["pid"]), int(data["starttime"]), str(data["marker"]), str(data["program"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None


def parse_stat(stat: str) -> tuple[str, int, int]:
    """(state, ppid, starttime) from the text of /proc/PID/stat (comm may contain spaces/parens)."""
    rest = stat[stat.rindex(")") + 2 :].split()
    # rest[0] = field 3 (state), rest[1] = field 4 (ppid), field 22 = rest[19]
    return rest[0], int(rest[1]), int(rest[19])


def read_stat(pid: int, proc: Path = PROC) -> tuple[str, int, int] | None:
    """parse_stat of a live PID, or None when it does not exist."""
    try:
        return parse_stat((proc / str(pid) / "stat").read_text())
    except (OSError, ValueError, IndexError):
        return None


def read_cmdline(pid: int, proc: Path = PROC) -> list[str]:
    """argv of PID ([] when gone or a kernel thread)."""
    try:
        raw = (proc / str(pid) / "cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def alive(record: ProcRecord, proc: Path = PROC) -> bool:
    """True when record.pid exists, is not a zombie and has the recorded start time (any program)."""
    stat = read_stat(record.pid, proc)
    return stat is not None and stat[0] not in ("Z", "X") and stat[2] == record.starttime


def matches(record: ProcRecord, proc: Path = PROC) -> bool:
    """True when record.pid is alive (not a zombie), started at record.starttime and runs the program."""
    stat = read_stat(record.pid, proc)
    if stat is None:
        return False
    state, _ppid, starttime = stat
    if state in ("Z", "X") or starttime != record.starttime:
        return False
    argv = read_cmdline(record.pid, proc)
    if not argv or Path(argv[0]).name != record.program:
        return False
    return not record.marker or record.marker in argv[1:]


def children(pid: int, proc: Path = PROC) -> list[int]:
    """Direct children of PID (from /proc/PID/task/*/children)."""
    found: list[int] = []
    for task in (proc / str(pid) / "task").glob("*"):
        try:
            found.extend(int(x) for x in (task / "children").read_text().split())
        except (OSError, ValueError):
            continue
    return found


def record_for(pid: int, marker: str, program: str, proc: Path = PROC) -> ProcRecord:
    """Build the record of a live PID (reads its start time now)."""
    stat = read_stat(pid, proc)
    if stat is None:
        raise OperationFailed(f"process {pid} ({program}) exited right after start")
    return ProcRecord(pid=pid, starttime=stat[2], marker=marker, program=program)


def spawn_detached(argv: Sequence[str], log_path: Path, env: dict[str, str] | None = None) -> int:
    """Start argv in its own session, reparented away from us (setsid -f); return its PID.

    The PID is that of the process that execs argv (so it is argv's PID once exec'ed). Output
    goes to `log_path`; stdin is /dev/null. We do not keep it as a child, so a long-lived caller
    (a pytest session) collects no zombies.
    """
    read_fd, write_fd = os.pipe()
    script = f'echo $$ >&{write_fd}; exec {write_fd}>&-; exec "$@"'
    with open(log_path, "ab") as log_file:
        setsid = subprocess.Popen(
            ["setsid", "-f", "bash", "-c", script, "lab-spawn", *argv],
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=log_file,
            pass_fds=(write_fd,),
            env=env,
        )
    os.close(write_fd)
    with os.fdopen(read_fd) as reader:
        text = reader.read().strip()
    setsid.wait()
    if not text.isdigit():
        raise OperationFailed(f"could not start {argv[0]} (see {log_path})")
    pid = int(text)
    _wait_exec(pid, list(argv))
    return pid


def _wait_exec(pid: int, argv: list[str], timeout: float = 10.0) -> None:
    """Wait until `pid` no longer runs our bash wrapper (it exec'ed argv), so callers record the real program.

    argv may itself exec again (``setpriv ... program``): the PID stays, its cmdline becomes the
    program's, so "the wrapper is gone" is the test, not "cmdline equals argv".
    """
    wanted = "\0".join(argv).encode()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            cmdline = (PROC / str(pid) / "cmdline").read_bytes().rstrip(b"\0")
        except OSError:
            return  # already gone: the caller's record_for reports it
        if cmdline == wanted or not cmdline.startswith(b"bash\0-c\0"):
            return
        time.sleep(0.01)


def wait_gone(record: ProcRecord, timeout: float, proc: Path = PROC) -> bool:
    """Poll until the recorded process is gone; True if it went within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while matches(record, proc):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def signal_if_ours(record: ProcRecord, sig: int) -> bool:
    """Send `sig` only if the PID is still the recorded process. True when sent."""
    if not matches(record):
        return False
    try:
        os.kill(record.pid, sig)
    except ProcessLookupError:
        return False
    return True


def stop(record: ProcRecord, timeout: float = 20.0, sig: int = signal.SIGTERM) -> str:
    """Stop a recorded process: `sig`, then SIGKILL after `timeout`. Returns what happened."""
    if not signal_if_ours(record, sig):
        return "gone"
    if wait_gone(record, timeout):
        return "stopped"
    signal_if_ours(record, signal.SIGKILL)
    wait_gone(record, 5.0)
    return "killed"
