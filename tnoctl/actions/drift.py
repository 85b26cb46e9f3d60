"""`drift`: one check+diff run of site.yml over the fleet, changes attributed to tenants, recorded.

Why one run: Ansible's forks check every host in parallel, and check mode with ``tno_action=deploy``
asks exactly "would a deploy change something?". Changed tasks are attributed to hosts and tenants
by :func:`tnoctl.actions.deploy.attribute_changes` (the same rule `plan` uses), then to components:
the role says which (tno_mail: mail, tno_office/tno_proxy: office; tno_common: every component the
tenant has on that host). A host-wide change (no tenant item) counts for every tenant on the host.
A tenant whose host failed or was unreachable gets no record (its previous one stays) and the
command exits 1.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from tnoctl.actions.deploy import attribute_changes, planned_slugs, planned_tenants, run_calls, tenant_keys
from tnoctl.actions.env import Env
from tnoctl.actions.operation import Outcome, operation, outcome_of
from tnoctl.errors import ExitCode
from tnoctl.plan.deploy import DeployPlan, plan_deploy
from tnoctl.run.ansible import ChangedTask, RunResult
from tnoctl.state.store import DriftRecord

ROLE_COMPONENTS: dict[str, tuple[str, ...]] = {
    "tno_mail": ("mail",),
    "tno_office": ("office",),
    "tno_proxy": ("office",),
}
COMPONENTS = ("mail", "office")


@dataclass
class TenantDrift:
    """Drift of one tenant's component (one state-store record)."""

    tenant: str
    component: str
    host: str
    changed_tasks: int = 0
    checked: bool = True

    @property
    def drift(self) -> bool:
        return self.changed_tasks > 0


@dataclass
class DriftReport:
    """Everything one drift check found."""

    tenants: list[TenantDrift]
    host_changes: dict[str, int] = field(default_factory=dict)  # host -> changed tasks (any owner)
    failed_hosts: list[str] = field(default_factory=list)
    changes: list[dict[str, Any]] = field(default_factory=list)

    @property
    def drifted(self) -> bool:
        """True when anything would change (on a tenant or on a host without tenants)."""
        return any(self.host_changes.values())

    def as_json(self, checked_at: float) -> dict[str, Any]:
        """The `--json` document."""
        return {
            "checked_at": checked_at,
            "drift": self.drifted,
            "tenants": [{**asdict(t), "drift": t.drift} for t in self.tenants],
            "hosts": self.host_changes,
            "failed_hosts": self.failed_hosts,
            "changes": self.changes,
        }


def placements(tenants: Iterable[Any]) -> dict[str, dict[str, str]]:
    """slug -> {component: host} for the components the tenant subscribes to."""
    out: dict[str, dict[str, str]] = {}
    for t in tenants:
        out[t.slug] = {c: h for c in COMPONENTS if c in t.services and (h := getattr(t.placement, c, None))}
    return out


def _components(change: ChangedTask, placed: dict[str, str]) -> list[str]:
    """Components of a tenant that a change on ``change.host`` concerns."""
    here = [c for c, h in placed.items() if h == change.host]
    wanted = ROLE_COMPONENTS.get(change.role)
    return [c for c in here if wanted is None or c in wanted]


def analyse(plan: DeployPlan, result: RunResult, keys: dict[str, set[str]],
            placed: dict[str, dict[str, str]]) -> DriftReport:
    """Pure: the run's changed tasks -> drift per (tenant, component) of the plan's tenants, per host."""
    failed = set(result.failed_hosts) | {h for h in plan.hosts if h not in result.hosts}
    rows: dict[tuple[str, str], TenantDrift] = {}
    for slug in plan.tenants:
        for component, host in sorted(placed.get(slug, {}).items()):
            if host in plan.hosts:
                rows[(slug, component)] = TenantDrift(slug, component, host, checked=host not in failed)
    grouped = attribute_changes(plan, result.changed_tasks, keys)
    host_changes = {h: 0 for h in plan.hosts}
    changes: list[dict[str, Any]] = []
    for host, per_owner in grouped.items():
        for owner, items in per_owner.items():
            host_changes[host] = host_changes.get(host, 0) + len(items)
            owners = list(plan.tenants_by_host.get(host, ())) if owner == "(host)" else [owner]
            for change in items:
                changes.append({"host": host, "owner": owner, "role": change.role, "task": change.task,
                                "item": change.item})
                for slug in owners:
                    for component in _components(change, placed.get(slug, {})):
                        if (slug, component) in rows:
                            rows[(slug, component)].changed_tasks += 1
    return DriftReport([rows[k] for k in sorted(rows)], host_changes, sorted(failed), changes)


def records(report: DriftReport, checked_at: float) -> list[DriftRecord]:
    """State-store records for every checked (tenant, component); unchecked ones keep their last record."""
    return [DriftRecord(t.tenant, t.component, t.drift, t.changed_tasks, checked_at)
            for t in report.tenants if t.checked]


@dataclass(frozen=True)
class DriftRequest:
    """`tnoctl drift`: which tenants' hosts to check (none: the fleet); ``diffs`` adds the diff text."""

    tenants: tuple[str, ...] = ()
    diffs: bool = False


DRIFT_COLUMNS = ["tenant", "component", "host", "state", "changed tasks"]


def check(env: Env, plan: DeployPlan, run_id: str) -> tuple[DriftReport, RunResult, float]:
    """Run the check, analyse it and record every checked (tenant, component) in the state store."""
    from tnoctl.state.store import now

    result = run_calls(env, plan, run_id, check=True, title="drift (check+diff)")
    checked_at = now()
    report = analyse(plan, result, tenant_keys(planned_tenants(env, plan)), placements(env.inventory.rows))
    store = env.store
    for record in records(report, checked_at):
        store.record_drift(record)
    return report, result, checked_at


def run(env: Env, request: DriftRequest) -> Outcome:
    """One audited drift check; exit 1 when anything drifted or a host could not be checked."""
    plan = plan_deploy(env.inventory, tenants=request.tenants, action="deploy", check=True)
    env.scope_secrets(planned_slugs(plan))
    with operation(env, "drift", {"tenants": request.tenants}, tenants=plan.tenants, hosts=plan.hosts,
                   lock=False) as op:
        report, result, checked_at = check(env, plan, op.id)
        op.artifacts = str(result.artifacts_dir)
        op.details = {"drifted_tenants": sorted({t.tenant for t in report.tenants if t.drift}),
                      "host_changes": report.host_changes, "failed_hosts": report.failed_hosts}
        if report.drifted or report.failed_hosts:
            op.fail(int(ExitCode.FAILED), "drift found" if report.drifted else "hosts not checked")
        return outcome_of(op, columns=DRIFT_COLUMNS, rows=_rows(report), data=report.as_json(checked_at),
                          lines=_lines(report, result, request.diffs), errors=_errors(result),
                          message=_message(report, result))


def _rows(report: DriftReport) -> list[list[object]]:
    return [[t.tenant, t.component, t.host, "DRIFT" if t.drift else ("ok" if t.checked else "NOT CHECKED"),
             t.changed_tasks] for t in report.tenants]


def _lines(report: DriftReport, result: RunResult, diffs: bool) -> list[str]:
    lines = []
    for change in report.changes:
        item = f" [{change['item']}]" if change["item"] else ""
        lines.append(f"  ~ {change['host']} / {change['owner']}: {change['task']}{item}")
    if diffs:
        lines.extend(f"      {line}" for change in result.changed_tasks for line in change.diff.rstrip().splitlines())
    return lines


def _errors(result: RunResult) -> list[str]:
    return [f"{f.host}: {'unreachable' if f.unreachable else 'failed'}: {f.task}: {f.message}"
            for f in result.failed_tasks]


def _message(report: DriftReport, result: RunResult) -> str:
    drifted = sum(1 for t in report.tenants if t.drift)
    return (f"{drifted} tenant component(s) drifted; {sum(report.host_changes.values())} change(s) pending; "
            f"artifacts: {result.artifacts_dir}")
