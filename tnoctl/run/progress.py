"""Live progress of a playbook run on stderr: per host the current task, overall hosts done/failed.

On a terminal a rich live table is redrawn; otherwise (CI, logs) one line per notable
event (task changed or failed, host unreachable, host finished) keeps output greppable.
"""

from __future__ import annotations

import threading
import time
from typing import IO, Any

from rich.console import Console
from rich.live import Live
from rich.table import Table


class RunProgress:
    """Event sink for :func:`tnoctl.run.ansible.run_playbook`; use as a context manager."""

    def __init__(self, stream: IO[str], hosts: list[str], title: str, live: bool | None = None) -> None:
        self.stream = stream
        self.title = title
        self.hosts = {h: {"task": "waiting", "changed": 0, "state": "pending"} for h in sorted(hosts)}
        self.live_mode = stream.isatty() if live is None else live
        self._lock = threading.Lock()
        self._live: Live | None = None
        self._started = time.monotonic()

    def __enter__(self) -> RunProgress:
        if self.live_mode:
            console = Console(file=self.stream)
            self._live = Live(self._render(), console=console, refresh_per_second=4, transient=True)
            self._live.__enter__()
        else:
            self._line(f"{self.title}: {len(self.hosts)} host(s)")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(None, None, None)

    def __call__(self, event: dict[str, Any]) -> None:
        data = event.get("event_data") or {}
        host = data.get("host")
        kind = event.get("event", "")
        with self._lock:
            if host and host not in self.hosts:
                self.hosts[host] = {"task": "", "changed": 0, "state": "running"}
            if kind == "runner_on_start" and host:
                self.hosts[host].update(task=data.get("task", ""), state="running")
            elif kind == "runner_on_ok" and host and (data.get("res") or {}).get("changed"):
                self.hosts[host]["changed"] += 1
                if not self.live_mode:
                    self._line(f"  {host}: changed: {data.get('task', '')}")
            elif kind == "runner_on_failed" and host and not data.get("ignore_errors"):
                self.hosts[host]["state"] = "failed"
                self._line(f"  {host}: FAILED: {data.get('task', '')}")
            elif kind == "runner_on_unreachable" and host:
                self.hosts[host]["state"] = "unreachable"
                self._line(f"  {host}: UNREACHABLE")
            elif kind == "playbook_on_stats":
                for info in self.hosts.values():
                    if info["state"] in ("running", "pending"):
                        info["state"] = "done"
            if self._live is not None:
                self._live.update(self._render())

    def _line(self, text: str) -> None:
        if self._live is not None:
            self._live.console.print(text, highlight=False)
        else:
            elapsed = time.monotonic() - self._started
            self.stream.write(f"[{elapsed:6.1f}s] {text}\n")
            self.stream.flush()

    def _render(self) -> Table:
        done = sum(1 for h in self.hosts.values() if h["state"] == "done")
        failed = sum(1 for h in self.hosts.values() if h["state"] in ("failed", "unreachable"))
        table = Table(
            title=f"{self.title} - {done}/{len(self.hosts)} done, {failed} failed", show_edge=False
        )
        for col in ("host", "state", "changed", "current task"):
            table.add_column(col)
        for name, info in self.hosts.items():
            table.add_row(name, info["state"], str(info["changed"]), str(info["task"])[:70])
        return table
