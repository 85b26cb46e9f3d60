"""`backup setup`: deploy the backup machinery (role tno_backup: keys, append-only access, timers).

One playbook call (plan.backup.setup_call) through the environment's playbook runner, audited as
``backup setup``. :func:`play` is the small shared step "run one planned call inside an operation,
keep its artifacts, say what failed", also used by ``restore --to-host``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tnoctl.actions.env import Env
from tnoctl.actions.operation import Outcome, operation, outcome_of
from tnoctl.plan.backup import setup_call
from tnoctl.plan.calls import PlaybookCall
from tnoctl.state.audit import Operation


@dataclass(frozen=True)
class SetupRequest:
    """``backup setup``: only these hosts (default: every mail and backup host)."""

    hosts: tuple[str, ...] = ()


def play(env: Env, op: Operation, call: PlaybookCall, *, suffix: str, hosts: Sequence[str],
         title: str) -> list[str]:
    """Run ``call``; record its artifacts on ``op``; return its failures ("host: task: message"), [] if none."""
    result = env.playbooks.run(call, run_id=f"{op.id}-{suffix}", hosts=hosts, title=title)
    op.artifacts = str(result.artifacts_dir)
    env.output.info(f"artifacts: {result.artifacts_dir}")
    if result.success:
        return []
    return [f"{f.host}: {f.task}: {f.message}" for f in result.failed_tasks] or [f"status {result.status}"]


def setup(env: Env, request: SetupRequest) -> Outcome:
    """Run playbooks/backup.yml (limited to ``request.hosts`` when given)."""
    hosts = list(request.hosts) or sorted(n for n, h in env.inventory.hosts.items()
                                          if {"mail", "backup"} & set(h.groups))
    with operation(env, "backup setup", {"hosts": request.hosts}, hosts=list(request.hosts), lock=False) as op:
        failures = play(env, op, setup_call(request.hosts), suffix="setup", hosts=hosts, title="backup setup")
        if failures:
            op.fail(reason="; ".join(failures)[:400])
        return outcome_of(op, errors=failures)
