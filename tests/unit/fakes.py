"""Shared fakes for orchestration tests without hosts (kayobe style: assert the ordered calls).

* :class:`FakePlaybookRunner` records every playbook call as a :class:`Played`
  (playbook, limit, sorted extra_vars keys, check) and answers with scripted results;
* :class:`FakeSsh` records every command as ``(host, argv)`` and answers with scripted results;
* :class:`FakeDns` is a DNS server in memory (queries and RFC 2136 updates);
* :func:`make_env` builds a :class:`tnoctl.actions.env.Env` wired to them, with captured streams.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tnoctl.actions.env import Env, Output
from tnoctl.plan.calls import PlaybookCall
from tnoctl.run.ansible import ChangedTask, FailedTask, HostStats, RunResult
from tnoctl.run.ssh import CommandResult


@dataclass(frozen=True)
class Played:
    """One recorded playbook call."""

    playbook: str
    limit: tuple[str, ...]
    extra_vars: tuple[str, ...]  # sorted keys only: values may hold secrets and make asserts brittle
    check: bool


def ok_result(call: PlaybookCall, hosts: Sequence[str] = (), changed: Sequence[ChangedTask] = (),
              artifacts: Path = Path("/nonexistent/artifacts")) -> RunResult:
    """A successful run on ``hosts`` (default: the call's limit)."""
    names = list(hosts or call.limit)
    per_host = {h: HostStats(h, ok=3, changed=sum(1 for c in changed if c.host == h)) for h in names}
    return RunResult(call, "successful", 0, per_host, list(changed), [], artifacts, 0.1)


def failed_result(call: PlaybookCall, host: str, task: str = "a task", message: str = "boom",
                  unreachable: bool = False) -> RunResult:
    """A run that failed (or was unreachable) on ``host``."""
    stats = HostStats(host, ok=1, failed=0 if unreachable else 1, unreachable=1 if unreachable else 0)
    return RunResult(call, "failed", 2, {host: stats}, [], [FailedTask(host, task, message, unreachable)],
                     Path("/nonexistent/artifacts"), 0.1)


Script = Callable[[PlaybookCall], RunResult]


class FakePlaybookRunner:
    """A PlaybookRunner that records calls (thread-safe, in order); ``script(call)`` decides the result.

    Default: success on the call's limit. ``on_run(call)`` runs first (e.g. to flip a fake fleet's
    installed version when the upgrade playbook "runs").
    """

    def __init__(self, script: Script | None = None, on_run: Callable[[PlaybookCall], None] | None = None) -> None:
        self.script = script or (lambda call: ok_result(call))
        self.on_run = on_run
        self.calls: list[PlaybookCall] = []
        self.run_ids: list[str] = []
        self._lock = threading.Lock()

    def run(self, call: PlaybookCall, *, run_id: str, hosts: Sequence[str], title: str,
            cancel: Callable[[], bool] | None = None) -> RunResult:
        with self._lock:
            self.calls.append(call)
            self.run_ids.append(run_id)
        if self.on_run is not None:
            self.on_run(call)
        return self.script(call)

    @property
    def played(self) -> list[Played]:
        """The ordered calls, reduced to what tests assert."""
        return [Played(c.playbook, tuple(c.limit), tuple(sorted(c.extra_vars)), c.check) for c in self.calls]


@dataclass
class FakeSsh:
    """An SshRunner stand-in: records ``(host, argv)``; ``results`` maps (host, argv[0]) or host to a reply.

    A reply is a CommandResult-like ``(rc, stdout)`` tuple or a callable ``(host, argv) -> (rc, stdout)``.
    Unscripted commands succeed with empty output.
    """

    results: dict[Any, Any] = field(default_factory=dict)
    commands: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    inputs: list[bytes | None] = field(default_factory=list)
    closed: bool = False
    fetched: bytes = b"fake tarball"  # what fetch_to_file writes (the Maildir export of `tenant remove`)
    fetch_rc: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def run(self, host: str, argv: Sequence[str], timeout: float = 60, input: bytes | None = None) -> CommandResult:
        argv = tuple(argv)
        with self._lock:
            self.commands.append((host, argv))
            self.inputs.append(input)
        reply = self.results.get((host, argv), self.results.get((host, argv[0] if argv else ""),
                                                                 self.results.get(host, (0, ""))))
        if callable(reply):
            reply = reply(host, argv)
        rc, out = reply
        return CommandResult(host=host, argv=argv, rc=rc, stdout=out, stderr="" if rc == 0 else out)

    def run_input(self, host: str, argv: list[str], data: bytes, timeout: float = 3600) -> CommandResult:
        return self.run(host, argv, timeout=timeout, input=data)

    def fetch_to_file(self, host: str, argv: Sequence[str], dest: str, timeout: float = 6 * 3600) -> int:
        """Record the command like ``run``; write :attr:`fetched` to ``dest``; return :attr:`fetch_rc`."""
        with self._lock:
            self.commands.append((host, tuple(argv)))
            self.inputs.append(None)
        Path(dest).write_bytes(self.fetched)
        return self.fetch_rc

    def close(self) -> None:
        self.closed = True

    def __enter__(self) -> FakeSsh:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def make_env(inventory_path: Path, state_dir: Path, *, playbooks: FakePlaybookRunner | None = None,
             ssh: FakeSsh | None = None, clock: Callable[[], float] | None = None,
             vault_password_file: Path | None = None) -> Env:
    """An Env over a real inventory directory with fake runner/SSH and StringIO streams (env.output.*)."""
    fake_ssh = ssh or FakeSsh()
    env = Env(
        inventory_path,
        state_dir,
        vault_password_file,
        Output(stdout=io.StringIO(), stderr=io.StringIO()),
        playbooks=playbooks or FakePlaybookRunner(),
        ssh_factory=lambda inventory: fake_ssh,  # type: ignore[arg-type,return-value]
        redact=lambda text: text,
        **({"clock": clock} if clock is not None else {}),
    )
    return env


def files_tls_mode(inventory: Path) -> Path:
    """Put a copied inventory's platform.yml in `tno_tls_mode: files` (the lab's is `acme`); return it.

    For tests of what `acme` refuses or changes (e.g. a tenant zone outside the platform DNS).
    """
    platform = inventory / "group_vars" / "all" / "platform.yml"
    lines = platform.read_text().splitlines(keepends=True)
    assert any(line.startswith("tno_tls_mode:") for line in lines), f"{platform}: no tno_tls_mode line"
    platform.write_text("".join("tno_tls_mode: files\n" if line.startswith("tno_tls_mode:") else line
                                for line in lines))
    return inventory


def without_dns_server(inventory: Path) -> Path:
    """Drop every DNS setting (server, TSIG key) from a copied inventory's platform.yml; return the inventory.

    The platform then neither publishes nor checks: commands print the records to publish by hand. ACME's
    DNS-01 needs that server, so the copy's `tno_tls_mode: acme` (the lab's) becomes `files`.
    """
    platform = files_tls_mode(inventory) / "group_vars" / "all" / "platform.yml"
    kept = [line for line in platform.read_text().splitlines(keepends=True) if not line.startswith("tno_dns_")]
    platform.write_text("".join(kept))
    return inventory


def without_dns_updates(inventory: Path) -> Path:
    """Drop the TSIG key from a copied inventory's platform.yml and return the inventory.

    Its DNS server is then one the platform only checks, so `deploy` publishes nothing after the site run
    (tnoctl.actions.tenant_dns_sync.publish_deployed): the tests of other deploy behaviour need no DNS fake.
    Without a TSIG key there is no DNS-01 either: the copy's `tno_tls_mode: acme` (the lab's) becomes `files`.
    """
    platform = files_tls_mode(inventory) / "group_vars" / "all" / "platform.yml"
    kept = [line for line in platform.read_text().splitlines(keepends=True)
            if not line.startswith(("tno_dns_tsig_key_name:", "tno_dns_tsig_secret_vault:"))]
    platform.write_text("".join(kept))
    return inventory
