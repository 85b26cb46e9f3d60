"""`plan` and `deploy`: plan -> guard (locks) -> preview (check+diff) -> confirm -> apply -> record.

A deploy is audited as one operation; its ansible-runner artifacts are kept under the
state dir and referenced from the audit record. Exit 1 when any host failed or was
unreachable, even though the others were deployed (never exit 0 after a partial failure).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tnoctl.errors import OperationFailed
from tnoctl.plan.calls import PlaybookCall
from tnoctl.plan.deploy import DeployPlan
from tnoctl.run.ansible import ChangedTask, RunResult, run_playbook
from tnoctl.run.progress import RunProgress


@dataclass(frozen=True)
class RunContext:
    """Everything a playbook run needs besides the call itself."""

    inventory: Path
    state_dir: Path
    run_id: str
    vault_password_file: Path | None
    progress_stream: object
    redact: Callable[[str], str]


def run_calls(ctx: RunContext, plan: DeployPlan, *, check: bool, title: str) -> RunResult:
    """Run the plan's playbook call(s) (check+diff when ``check``) with live progress."""
    result: RunResult | None = None
    for index, call in enumerate(plan.calls):
        call = PlaybookCall(
            playbook=call.playbook,
            extra_vars=call.extra_vars,
            limit=call.limit,
            tags=call.tags,
            check=check,
            diff=check or call.diff,
            force_handlers=call.force_handlers,
        )
        suffix = "check" if check else "apply"
        with RunProgress(ctx.progress_stream, list(plan.hosts), title) as progress:  # type: ignore[arg-type]
            result = run_playbook(
                call,
                inventory=ctx.inventory,
                state_dir=ctx.state_dir,
                run_id=f"{ctx.run_id}-{suffix}{index}",
                vault_password_file=ctx.vault_password_file,
                on_event=progress,
                redact=ctx.redact,
            )
        if not result.success:
            break
    if result is None:
        raise OperationFailed("nothing to run: the plan selected no host")
    return result


def tenant_keys(tenants: Iterable[Any]) -> dict[str, set[str]]:
    """Strings that name a tenant in a task item: slug, domains, mailbox addresses."""
    keys: dict[str, set[str]] = {}
    for tenant in tenants:
        names = {tenant.slug, *tenant.domains}
        names.update(f"{m.local}@{m.domain or tenant.domains[0]}" for m in tenant.mailboxes)
        keys[tenant.slug] = names
    return keys


def attribute_changes(plan: DeployPlan, changes: list[ChangedTask], tenant_keys: dict[str, set[str]]) -> dict:
    """Group changed tasks by host, then by tenant (or "(host)" for host-wide tasks).

    ``tenant_keys`` maps a tenant slug to the strings that identify it in a task item
    (slug, domains, mailbox addresses).
    """
    grouped: dict[str, dict[str, list[ChangedTask]]] = {}
    for change in changes:
        owner = "(host)"
        if change.item:
            for slug in plan.tenants_by_host.get(change.host, ()):
                keys = tenant_keys.get(slug, {slug})
                if change.item in keys or any(change.item.endswith("@" + k) for k in keys):
                    owner = slug
                    break
        grouped.setdefault(change.host, {}).setdefault(owner, []).append(change)
    return grouped


def summary_rows(plan: DeployPlan, result: RunResult) -> list[list[object]]:
    """The final summary table: host, tenants, ok, changed, failed, unreachable, duration."""
    rows: list[list[object]] = []
    for host in plan.hosts:
        stats = result.hosts.get(host)
        tenants = ", ".join(plan.tenants_by_host.get(host, ())) or "-"
        if stats is None:
            rows.append([host, tenants, "-", "-", "-", "-", "not run"])
            continue
        state = "ok" if stats.success else ("UNREACHABLE" if stats.unreachable else "FAILED")
        if state == "ok" and result.status not in ("successful", "failed"):
            state = f"incomplete ({result.status})"  # interrupted or timed out before this host finished
        rows.append(
            [
                host,
                tenants,
                stats.ok,
                stats.changed,
                stats.failed,
                stats.unreachable,
                f"{stats.duration_seconds:.1f}s",
                state,
            ]
        )
    return rows


SUMMARY_COLUMNS = ["host", "tenants", "ok", "changed", "failed", "unreachable", "duration", "result"]
