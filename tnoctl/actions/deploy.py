"""`plan` and `deploy`: plan -> guard (locks) -> preview (check+diff) -> confirm -> apply -> record.

A deploy is one audited operation (:func:`tnoctl.actions.operation.operation`); its ansible-runner
artifacts are kept under the state dir and referenced from the audit record. Exit 1 when any host
failed or was unreachable, even though the others were deployed (never exit 0 after a partial failure).
The verb confirms, not the action: ``DeployRequest.confirm`` receives the preview (the CLI renders it
and asks on stderr); None means --yes (apply without preview).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tnoctl.actions import tenant_dns_sync
from tnoctl.actions.env import Env
from tnoctl.actions.operation import Outcome, operation, outcome_of
from tnoctl.actions.tenant_dns_sync import ClientFactory
from tnoctl.config import hostsecrets
from tnoctl.errors import ExitCode, InvalidInput, OperationFailed
from tnoctl.plan import deploy_windows
from tnoctl.plan.calls import PlaybookCall
from tnoctl.plan.deploy import DeployPlan, plan_deploy
from tnoctl.run.ansible import ChangedTask, RunResult
from tnoctl.state import audit


@dataclass(frozen=True)
class Preview:
    """What a check+diff run found, ready to show: per host, changes grouped by owner (tenant or "(host)")."""

    hosts: tuple[str, ...]
    changes: tuple[dict[str, Any], ...]  # {host, owner, task, item, diff}, in host then owner order
    success: bool

    @property
    def pending(self) -> int:
        """How many tasks would change something."""
        return len(self.changes)

    def lines(self, diffs: bool = True) -> list[str]:
        """The human listing (`plan`, and `deploy` before it asks)."""
        out: list[str] = []
        for host in self.hosts:
            mine = [c for c in self.changes if c["host"] == host]
            if not mine:
                out.append(f"{host}: no changes")
                continue
            for owner in sorted({c["owner"] for c in mine}):
                theirs = [c for c in mine if c["owner"] == owner]
                out.append(f"{host} / {owner}: {len(theirs)} change(s)")
                for change in theirs:
                    label = f" [{change['item']}]" if change["item"] else ""
                    out.append(f"  ~ {change['task']}{label}")
                    if diffs and change["diff"]:
                        out.extend(f"      {line}" for line in change["diff"].rstrip().splitlines())
        return out


Confirm = Callable[[Preview], bool]


@dataclass(frozen=True)
class PlanRequest:
    """`tnoctl plan`: the selection; ``exit_zero`` makes pending changes exit 0."""

    tenants: tuple[str, ...] = ()
    hosts: tuple[str, ...] = ()
    exit_zero: bool = False


@dataclass(frozen=True)
class DeployRequest:
    """`tnoctl deploy`: the selection; ``confirm`` (None with --yes) sees the preview and says go or not."""

    tenants: tuple[str, ...] = ()
    hosts: tuple[str, ...] = ()
    confirm: Confirm | None = None
    ignore_windows: bool = False  # restart tenant-facing services even outside the tenants' windows


def run_calls(env: Env, plan: DeployPlan, run_id: str, *, check: bool, title: str) -> RunResult:
    """Run the plan's playbook call(s) (check+diff when ``check``) through ``env.playbooks``."""
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
        result = env.playbooks.run(call, run_id=f"{run_id}-{suffix}{index}", hosts=plan.hosts, title=title)
        if not result.success:
            break
    if result is None:
        raise OperationFailed("nothing to run: the plan selected no host")
    return result


def run_setup(env: Env, plan: DeployPlan, run_id: str, site: RunResult) -> RunResult:
    """The backup machinery after a successful site.yml (plan.setup_calls); its result if it failed, else ``site``'s.

    The summary table stays the site run's (what the operator deployed); a failed backup setup
    makes the deploy fail with its own failed tasks, and says how to retry just that part.
    """
    for index, call in enumerate(plan.setup_calls):
        hosts = call.limit or plan.hosts
        result = env.playbooks.run(call, run_id=f"{run_id}-backup{index}", hosts=hosts, title="deploy (backups)")
        if not result.success:
            env.output.warn("the backup machinery was not set up; retry with: tnoctl backup setup --yes"
                            + "".join(f" --host {h}" for h in call.limit))
            return result
    return site


def preview_of(env: Env, plan: DeployPlan, result: RunResult) -> Preview:
    """Attribute a check run's changes to hosts and tenants (pure apart from the loaded inventory)."""
    grouped = attribute_changes(plan, result.changed_tasks, tenant_keys(planned_tenants(env, plan)))
    changes = [
        {"host": host, "owner": owner, "task": c.task, "item": c.item, "diff": c.diff}
        for host in plan.hosts
        for owner, items in sorted(grouped.get(host, {}).items())
        for c in items
    ]
    return Preview(plan.hosts, tuple(changes), result.success)


def require_host_secrets(env: Env, hosts: Iterable[str]) -> None:
    """Refuse (exit 2, before any lock or run) when a targeted mail host has no secret in the vault.

    Today the Rspamd controller password (config/hostsecrets.py); the message names the variable and
    `tnoctl inventory secrets`, which creates it.
    """
    mail = [h for h in hosts if h in env.inventory.hosts and "mail" in env.inventory.hosts[h].groups]
    errors = hostsecrets.missing(env.inventory_path, env.vault_password_file, mail)
    if errors:
        raise InvalidInput(errors[0] if len(errors) == 1 else f"{len(errors)} mail host secrets are missing",
                           details=errors if len(errors) > 1 else [])


def plan(env: Env, request: PlanRequest) -> Outcome:
    """Check+diff the selection; exit 1 when changes are pending (unless exit_zero) or a host failed."""
    deploy_plan = plan_deploy(env.inventory, tenants=request.tenants, hosts=request.hosts, action="deploy",
                              check=True)
    require_host_secrets(env, deploy_plan.hosts)
    env.scope_secrets(planned_slugs(deploy_plan))
    params = {"tenants": request.tenants, "hosts": request.hosts, "exit_zero": request.exit_zero}
    with operation(env, "plan", params, tenants=deploy_plan.tenants, hosts=deploy_plan.hosts, lock=False) as op:
        result = run_calls(env, deploy_plan, op.id, check=True, title="plan (check+diff)")
        preview = preview_of(env, deploy_plan, result)
        op.artifacts = str(result.artifacts_dir)
        op.details["changes_pending"] = preview.pending
        data = {"hosts": list(deploy_plan.hosts), "pending": preview.pending, "changes": list(preview.changes),
                "artifacts": str(result.artifacts_dir)}
        if not result.success:
            op.fail(int(ExitCode.FAILED))
            return _summary(op, deploy_plan, result, preview.lines(), data)
        message = f"{preview.pending} change(s) pending on {len(deploy_plan.hosts)} host(s)"
        if preview.pending and not request.exit_zero:
            op.details["exit"] = "changes pending"
            return Outcome(ExitCode.FAILED, "changes-pending", data=data, message=message, lines=preview.lines())
        return Outcome(data=data, message=message, lines=preview.lines())


def run(env: Env, request: DeployRequest, dns_client: ClientFactory | None = None) -> Outcome:
    """Converge the selected hosts: locks, (preview + window guard + confirm), apply, DNS; exit 1 on any failure.

    The check pass runs when the operator wants to see it (no --yes) or when a tenant of the selected
    hosts is outside its maintenance window: then a change that would restart a tenant-facing service
    (plan.deploy_windows) refuses the whole deploy with exit 4 before anything is applied, unless
    ``ignore_windows``. After a successful apply, the touched tenants' DNS records are published where the
    platform manages the zones (:func:`publish_records`; ``dns_client`` builds the DNS client, tests fake it).
    """
    deploy_plan = plan_deploy(env.inventory, tenants=request.tenants, hosts=request.hosts, action="deploy")
    require_host_secrets(env, deploy_plan.hosts)
    env.scope_secrets(planned_slugs(deploy_plan))
    params = {"tenants": request.tenants, "hosts": request.hosts, "yes": request.confirm is None,
              **({"ignore_windows": True} if request.ignore_windows else {})}
    with operation(env, "deploy", params, tenants=deploy_plan.tenants, hosts=deploy_plan.hosts) as op:
        outcome = converge(env, op, deploy_plan, request.confirm, ignore_windows=request.ignore_windows)
        return publish_records(env, op, deploy_plan, outcome, dns_client) if outcome.ok else outcome


def publish_records(env: Env, op: audit.Operation, deploy_plan: DeployPlan, outcome: Outcome,
                    dns_client: ClientFactory | None = None) -> Outcome:
    """After a successful deploy: the touched tenants' DNS records, where the platform manages the zones.

    tnoctl.actions.tenant_dns_sync.publish_deployed (the `dns publish` path); a problem warns, says how to
    retry and makes the deploy exit 1 with one error line per problem (the summary table stays the site run's);
    a tenant whose zone is external gets one line saying its records are the commune's. Not in
    :func:`converge`: `tenant onboard` publishes its tenant in its own ``dns`` step.
    """
    slugs = planned_slugs(deploy_plan)
    problems = tenant_dns_sync.publish_deployed(env, op, slugs, dns_client)
    if not problems:
        return outcome
    env.output.warn("the DNS records were not all published; retry with: tnoctl dns publish --yes"
                    + "".join(f" --tenant {slug}" for slug in slugs))
    op.fail(int(ExitCode.FAILED), f"DNS: {len(problems)} problem(s): {'; '.join(problems)}"[:400])
    return outcome_of(op, rows=outcome.rows, columns=outcome.columns, data=outcome.data, lines=outcome.lines,
                      errors=[*outcome.errors, *(f"dns: {p}" for p in problems)], message=outcome.message)


def converge(env: Env, op: audit.Operation, deploy_plan: DeployPlan, confirm: Confirm | None, *,
             ignore_windows: bool = False) -> Outcome:
    """The body of a deploy inside the caller's operation (``deploy``, ``tenant onboard``).

    Check pass when ``confirm`` is given or a window is closed (window guard, exit 4), apply,
    backup machinery; the outcome carries the summary and ``op``'s exit code. When ``confirm`` is
    given and the preview shows no change, nothing is asked and the apply pass is skipped.
    """
    now = datetime.fromtimestamp(env.clock(), UTC)
    placed = {h: [env.inventory.tenant(s) for s in deploy_plan.tenants_by_host.get(h, ())] for h in deploy_plan.hosts}
    guard = not ignore_windows and any(deploy_windows.any_window_closed(ts, now) for ts in placed.values())
    refresh_lab_certificates(env)
    if confirm is not None or guard:
        checked = run_calls(env, deploy_plan, op.id, check=True, title="plan (check+diff)")
        preview = preview_of(env, deploy_plan, checked)
        if not checked.success:
            op.artifacts = str(checked.artifacts_dir)
            op.fail(int(ExitCode.FAILED))
            return _summary(op, deploy_plan, checked, preview.lines())
        found = deploy_windows.conflicts(checked.changed_tasks, placed, now) if guard else []
        if found:
            return _refuse_restarts(op, found, checked)
        if confirm is not None and preview.pending == 0:
            return _nothing_to_apply(env, op, deploy_plan, checked, preview)
        if confirm is not None and not confirm(preview):
            op.fail(int(ExitCode.REFUSED), "not applied")
            return outcome_of(op, message="not applied")
    result = run_calls(env, deploy_plan, op.id, check=False, title="deploy")
    if result.success and deploy_plan.setup_calls:
        result = run_setup(env, deploy_plan, op.id, result)
    op.artifacts = str(result.artifacts_dir)
    op.details["hosts"] = {
        name: {"changed": s.changed, "failed": s.failed, "unreachable": s.unreachable}
        for name, s in result.hosts.items()
    }
    if not result.success:
        op.details["failed_hosts"] = result.failed_hosts
        op.fail(int(ExitCode.FAILED))
    return _summary(op, deploy_plan, result)


def _nothing_to_apply(env: Env, op: audit.Operation, deploy_plan: DeployPlan, checked: RunResult,
                      preview: Preview) -> Outcome:
    """An interactive deploy whose preview shows no change: no question, no apply pass (issue 19).

    The backup machinery (plan.setup_calls, not part of the preview) still runs, as after any deploy.
    The summary is the check pass's (its hosts, 0 changed).
    """
    op.details["applied"] = False
    result = run_setup(env, deploy_plan, op.id, checked) if deploy_plan.setup_calls else checked
    op.artifacts = str(result.artifacts_dir)
    if not result.success:
        op.details["failed_hosts"] = result.failed_hosts
        op.fail(int(ExitCode.FAILED))
    outcome = _summary(op, deploy_plan, result, preview.lines())
    outcome.message = f"nothing to change: no apply pass; {outcome.message}"
    return outcome


def _refuse_restarts(op: audit.Operation, found: list[deploy_windows.RestartConflict],
                     checked: RunResult) -> Outcome:
    """Exit 4: the deploy would restart a tenant-facing service outside these tenants' windows."""
    op.artifacts = str(checked.artifacts_dir)
    op.details["window_conflicts"] = [{"host": c.host, "service": c.service, "tenants": list(c.tenants)}
                                      for c in found]
    errors = [c.message for c in found]
    op.fail(int(ExitCode.REFUSED), "; ".join(errors)[:400])
    return outcome_of(op, errors=[*errors, "nothing applied; deploy inside the window, or pass --ignore-windows"],
                      data={"window_conflicts": op.details["window_conflicts"]},
                      message="refused: a change would restart a tenant-facing service outside a maintenance window")


def _summary(op: audit.Operation, deploy_plan: DeployPlan, result: RunResult, lines: list[str] | None = None,
             data: dict[str, Any] | None = None) -> Outcome:
    """The outcome with the summary table, per-host failures and the artifacts path."""
    errors = [f"{f.host}: {'unreachable' if f.unreachable else 'failed'}: {f.task}: {f.message}"
              for f in result.failed_tasks]
    return outcome_of(op, rows=summary_rows(deploy_plan, result), columns=SUMMARY_COLUMNS, lines=lines,
                      errors=errors, data={**(data or {}), "artifacts": str(result.artifacts_dir)},
                      message=f"artifacts: {result.artifacts_dir}")


def refresh_lab_certificates(env: Env) -> None:
    """In the lab, make sure every host certificate covers the tenants placed on it."""
    from tnoctl import paths

    try:
        is_lab = env.inventory_path.resolve() == paths.LAB_INVENTORY.resolve()
    except OSError:
        return
    if not is_lab or not (paths.lab_dir() / "ca" / "ca.crt").exists():
        return
    from tnoctl.lab.lab import Lab

    Lab(env.inventory_path).refresh_certificates()


def planned_slugs(plan: DeployPlan) -> list[str]:
    """The tenants a run of this plan touches: the selected ones and every tenant of the targeted hosts."""
    return sorted({*plan.tenants, *(s for slugs in plan.tenants_by_host.values() for s in slugs)})


def planned_tenants(env: Env, plan: DeployPlan) -> list[Any]:
    """Full models of the tenants on the plan's hosts (only their files are parsed, not the fleet's)."""
    return [env.inventory.tenant(slug) for slug in planned_slugs(plan)]


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
