"""Operation journal: what a multi-step rollout did, step by step and host by host, so it can resume.

Layout: ``<state_dir>/operations/<id>/plan.json`` (the plan and options, written once) and
``<state_dir>/operations/<id>/journal.jsonl`` (append-only JSON lines, one ``write()`` each under
``O_APPEND`` + fsync, like the audit log). Each line is an event::

    {"time": 1764440000.1, "host": "office1", "step": "apply", "status": "done", "data": {...}}

``host`` is empty for operation-level events (``run`` started/finished, with the pid). A host's
state is folded from its events: the last completed step tells ``--resume`` where to go on, and a
terminal step (``finish``) says the host is over and must never be redone. A truncated last line
(crash mid-write) is ignored. Secrets never go in here: only host names, versions, paths, reasons.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tnoctl.errors import InvalidInput
from tnoctl.state import durable

OPERATIONS_DIR = "operations"
STEPS = ("window", "lock", "snapshot", "apply", "gate", "rollback", "regate", "finish")
"""Steps of one host, in order (rollback/regate only after a failed apply or gate)."""
FINISHED = ("done", "failed", "rolled_back")
"""Host states --resume never touches again. ``deferred`` (window closed) and ``skipped`` (rollout
halted) hosts end a run too, but a resume looks at them again."""


@dataclass
class HostProgress:
    """A host's progress folded from the journal."""

    host: str
    state: str = "pending"  # pending|running|interrupted|done|failed|rolled_back|deferred|skipped
    done_steps: list[str] = field(default_factory=list)
    current: str = ""  # step started but not finished (an interruption leaves it here)
    detail: str = ""
    data: dict[str, Any] = field(default_factory=dict)  # merged data of done steps (from_version, ...)

    @property
    def finished(self) -> bool:
        """True when the host reached a terminal state and must not be touched by --resume."""
        return self.state in FINISHED

    def has(self, step: str) -> bool:
        """Did ``step`` complete on this host?"""
        return step in self.done_steps


def operations_dir(state_dir: Path) -> Path:
    """Where every operation journal lives."""
    return state_dir / OPERATIONS_DIR


def _append_line(path: Path, record: dict[str, Any]) -> None:
    data = (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        size = os.fstat(fd).st_size
        if size:
            with open(path, "rb") as existing:
                existing.seek(size - 1)
                if existing.read(1) != b"\n":
                    data = b"\n" + data  # a writer died mid-line: start on a fresh line
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def _event(line: bytes) -> dict[str, Any] | None:
    """One journal line as an event, or None when it is not one (bad UTF-8, JSON, nesting or types)."""
    try:
        event = json.loads(line.decode("utf-8"))
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None
    if not isinstance(event, dict) or not all(isinstance(event.get(k), str) for k in ("host", "step", "status")):
        return None
    if not isinstance(event.get("data", {}), dict) or not isinstance(event.get("detail", ""), str):
        return None
    if not isinstance(event.get("time"), int | float) or isinstance(event.get("time"), bool):
        return None
    return event


class Journal:
    """One operation's journal (create it with :meth:`create`, reopen it with :meth:`open`)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.id = directory.name
        self.skipped_lines = 0  # unreadable lines of journal.jsonl at the last events()

    @classmethod
    def create(cls, state_dir: Path, operation_id: str, plan: dict[str, Any]) -> Journal:
        """Start a journal for ``operation_id`` with its plan (written atomically, once)."""
        directory = operations_dir(state_dir) / operation_id
        directory.mkdir(parents=True, exist_ok=False)
        tmp = directory / "plan.json.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        with os.fdopen(fd, "wb") as fh:
            fh.write((json.dumps(plan, indent=1, ensure_ascii=False) + "\n").encode("utf-8"))
            fh.flush()
            os.fsync(fh.fileno())
        durable.replace(tmp, directory / "plan.json")  # fsyncs the operation directory too
        durable.fsync_dir(directory.parent)  # ... and the new directory's own entry
        return cls(directory)

    @classmethod
    def open(cls, state_dir: Path, operation_id: str) -> Journal:
        """Reopen an existing journal, or InvalidInput naming the id."""
        if not operation_id or "/" in operation_id or operation_id.startswith("."):
            raise InvalidInput(f"operation id {operation_id!r} is not valid")
        directory = operations_dir(state_dir) / operation_id
        if not (directory / "plan.json").is_file():
            known = ", ".join(j.id for j in list_journals(state_dir)[-5:]) or "none"
            raise InvalidInput(f"no operation {operation_id} in {operations_dir(state_dir)} (latest: {known})")
        return cls(directory)

    @property
    def path(self) -> Path:
        """The append-only event file."""
        return self.directory / "journal.jsonl"

    def plan(self) -> dict[str, Any]:
        """The plan and options the operation was started with."""
        return json.loads((self.directory / "plan.json").read_text(encoding="utf-8"))

    def record(self, host: str, step: str, status: str, detail: str = "", **data: Any) -> None:
        """Append one event (status: started | done | failed, or a terminal state for ``finish``)."""
        event = {"time": round(time.time(), 3), "host": host, "step": step, "status": status}
        if detail:
            event["detail"] = detail[:500]
        if data:
            event["data"] = data
        _append_line(self.path, event)

    def events(self) -> list[dict[str, Any]]:
        """Every readable event, in order; a torn, undecodable or ill-typed line is skipped and counted
        in :attr:`skipped_lines` (the lines after it are kept)."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            self.skipped_lines = 0
            return []
        events = []
        skipped = 0
        for line in raw.split(b"\n"):
            if not line.strip():
                continue
            event = _event(line)
            if event is None:
                skipped += 1
            else:
                events.append(event)
        self.skipped_lines = skipped
        return events

    def runner_alive(self) -> bool:
        """Is the process that last ran this operation still running (same pid and start time)?"""
        from tnoctl.state.locks import process_start_time

        runs = [e for e in self.events() if e["host"] == "" and e["step"] == "run"]
        if not runs or runs[-1]["status"] != "started":
            return False
        data = runs[-1].get("data", {})
        pid, start = data.get("pid"), data.get("pid_start")
        return isinstance(pid, int) and start is not None and process_start_time(pid) == start

    def progress(self, hosts: Iterable[str]) -> dict[str, HostProgress]:
        """Fold the events into each host's progress (hosts absent from the journal are pending)."""
        result = {h: HostProgress(h) for h in hosts}
        for event in self.events():
            host = event["host"]
            if not host:
                continue
            prog = result.setdefault(host, HostProgress(host))
            step, status = event["step"], event["status"]
            if step == "finish":
                prog.state, prog.current = status, ""
                prog.detail = event.get("detail", prog.detail)
                continue
            if status == "started":
                prog.current, prog.state = step, "running"
            elif status == "done":
                prog.current = ""
                if step not in prog.done_steps:
                    prog.done_steps.append(step)
                prog.data.update(event.get("data", {}))
            elif status == "failed":
                prog.current = ""
                prog.detail = event.get("detail", "")
                prog.data.update(event.get("data", {}))
        alive = self.runner_alive()
        for prog in result.values():
            if prog.state == "running" and not alive:
                prog.state = "interrupted"
                if not prog.detail:
                    prog.detail = f"stopped during {prog.current or 'between steps'}"
        return result

    def state(self) -> str:
        """Operation state: planned | running | interrupted | crashed | finished (of its latest run)."""
        runs = [e for e in self.events() if e["host"] == "" and e["step"] == "run"]
        if not runs:
            return "planned"
        last = runs[-1]["status"]
        if last == "started":
            return "running" if self.runner_alive() else "interrupted"
        return last


def list_journals(state_dir: Path) -> list[Journal]:
    """Every operation journal, oldest first (ids sort by time)."""
    root = operations_dir(state_dir)
    if not root.is_dir():
        return []
    return [Journal(d) for d in sorted(root.iterdir()) if (d / "plan.json").is_file()]


ROLLOUT_STATES = ("pending", "running", "interrupted", "done", "failed", "rolled_back", "deferred", "skipped")
"""Every host state a rollout can report (the exporter exports each, 0 included)."""


@dataclass(frozen=True)
class RolloutSummary:
    """Host counts by state for the latest rollout of one component (what the exporter shows)."""

    operation: str
    component: str
    to_version: str
    state: str
    started_at: float
    hosts_by_state: dict[str, int]
    skipped_lines: int = 0


def latest_rollouts(state_dir: Path) -> dict[str, RolloutSummary]:
    """The latest rollout per component, newest journals first (reads only what it needs)."""
    found: dict[str, RolloutSummary] = {}
    for journal in reversed(list_journals(state_dir)):
        try:
            plan = journal.plan()
            component = str(plan["component"])
            hosts = [h["host"] for wave in plan["waves"] for h in wave["hosts"]]
        except (OSError, ValueError, KeyError, TypeError, RecursionError):
            continue
        if component in found:
            continue
        events = journal.events()
        counts = dict.fromkeys(ROLLOUT_STATES, 0)
        for progress in journal.progress(hosts).values():
            counts[progress.state] = counts.get(progress.state, 0) + 1
        started = events[0]["time"] if events else journal.path.parent.stat().st_mtime
        found[component] = RolloutSummary(journal.id, component, str(plan.get("to_version", "")),
                                          journal.state(), float(started), counts, journal.skipped_lines)
        if len(found) == 2:
            break
    return found


def generation(state_dir: Path) -> tuple[int, int]:
    """Changes whenever a rollout starts or records a step, resumed old ones included (exporter cache key)."""
    newest = 0
    journals = list_journals(state_dir)
    for journal in journals:
        try:
            newest = max(newest, journal.path.stat().st_mtime_ns)
        except FileNotFoundError:
            continue
    return (len(journals), newest)
