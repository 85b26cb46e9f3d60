"""`tenant onboard SLUG`: bring a commune added by `tenant add` into service in one step, rerunnable.

Steps, in order (plan.deploy.onboard_hosts chooses the hosts):

1. ``validate``  the inventory loads and validates with the tenant; every secret it needs is in the
                 vault (mailbox passwords, ``tno_vault_borg_<slug>``);
2. ``deploy``    every host that must learn the tenant: its own mail and office hosts, and every
                 other mail host (TLS policy map, postscreen allowlist), then the backup
                 machinery (playbooks/backup.yml with the backup host): the same path as `deploy`
                 (:func:`tnoctl.actions.deploy.converge`), window guard included (exit 4).
                 Certificates are part of it: with ``tno_tls_mode: acme`` role tno_acme issues the
                 tenant's lineage by DNS-01 (the commune's zone must already exist on tno_dns_server);
                 with ``files`` the host certificates of tno_tls_cert_dir must cover its names;
3. ``dns``       after the deploy, because the DKIM key is generated on the mail host: when the
                 platform names a DNS server (``tno_dns_server``), the tenant's records are published
                 and checked as `tenant dns --publish` does (:func:`tenant_dns_sync.publish_tenant`,
                 the one path); otherwise the records to publish are printed (as `tenant dns SLUG`);
4. ``backup``    the first backup of each component (``tno-backup run``, as `backup run`);
5. ``drill``     its restore test (cheap: a new tenant's mailboxes are nearly empty);
6. ``probes``    the tenant's health probes (as `status --tenant SLUG`): exit 1 when one is critical.

One audited operation holding the locks of every tenant on the deployed hosts. Each step's start
and end go to a journal ``<state>/onboarding/operations/onboard-<slug>-<n>/`` (tnoctl/state/journal.py,
like `upgrade`): a rerun after an interruption or a failure resumes the latest unfinished journal of
the slug and skips the steps already done; a finished onboarding is started afresh by a rerun.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from tnoctl.actions import backup, backup_checks, deploy, tenant_dns, tenant_dns_sync
from tnoctl.actions.env import Env
from tnoctl.actions.operation import Outcome, operation, outcome_of
from tnoctl.actions.reports import StatusRequest, gather
from tnoctl.backup import naming
from tnoctl.config import vault
from tnoctl.errors import ExitCode, InvalidInput, OperationFailed
from tnoctl.plan.backup import plan_targets
from tnoctl.plan.deploy import onboard_hosts, plan_deploy
from tnoctl.state.audit import Operation
from tnoctl.state.journal import Journal, list_journals

STEPS = ("validate", "deploy", "dns", "backup", "drill", "probes")
COLUMNS = ["step", "result", "duration", "detail"]
JOURNAL_ROOT = "onboarding"  # under the state dir: kept apart from the upgrade journals


@dataclass(frozen=True)
class OnboardRequest:
    """``tenant onboard SLUG``: the tenant; ``ignore_windows`` as for `deploy`; ``drill`` False skips step 4."""

    slug: str
    ignore_windows: bool = False
    drill: bool = True


@dataclass
class StepResult:
    """One row of the summary: a step, ok/failed/skipped (done by an earlier run), how long, why."""

    step: str
    result: str
    duration_seconds: float = 0.0
    detail: str = ""
    exit_code: ExitCode = ExitCode.FAILED  # of the onboarding, when this step failed
    data: dict = field(default_factory=dict)


def journal_for(env: Env, slug: str) -> tuple[Journal, list[str]]:
    """The latest unfinished onboarding journal of ``slug`` and its done steps, or a new journal."""
    root = env.state_dir / JOURNAL_ROOT
    mine = [j for j in list_journals(root) if j.id.startswith(f"onboard-{slug}-")]
    mine.sort(key=lambda j: int(j.id.rsplit("-", 1)[1]))
    if mine:
        progress = mine[-1].progress([slug])[slug]
        if progress.state != "done":
            return mine[-1], list(progress.done_steps)
    number = int(mine[-1].id.rsplit("-", 1)[1]) + 1 if mine else 1
    return Journal.create(root, f"onboard-{slug}-{number}", {"verb": "tenant onboard", "slug": slug}), []


def run(env: Env, request: OnboardRequest, dns_client: tenant_dns_sync.ClientFactory | None = None) -> Outcome:
    """Onboard the tenant (see the module docstring); exit 1 on a failed step, 4 on a window refusal.

    ``dns_client`` builds the DNS client of step 3 (default: the platform's server with its TSIG key;
    tests fake it).
    """
    tenant = env.inventory.tenant(request.slug)  # InvalidInput (exit 2) for an unknown slug
    hosts = onboard_hosts(env.inventory, tenant.slug)
    deploy_plan = plan_deploy(env.inventory, hosts=hosts, action="deploy")
    params = {"slug": tenant.slug, **({"ignore_windows": True} if request.ignore_windows else {})}
    with operation(env, "tenant onboard", params, tenants=deploy_plan.tenants, hosts=deploy_plan.hosts) as op:
        journal, done = journal_for(env, tenant.slug)
        op.details["journal"] = journal.id
        if done:
            env.output.info(f"resuming {journal.id}: already done: {', '.join(done)}")
        journal.record("", "run", "started")
        steps: dict[str, Callable[[], StepResult]] = {
            "validate": lambda: _validate(env, tenant.slug),
            "deploy": lambda: _deploy(env, op, deploy_plan, request.ignore_windows),
            "dns": lambda: _dns(env, op, tenant.slug, dns_client),
            "backup": lambda: _backup(env, tenant.slug),
            "drill": lambda: _drill(env, tenant.slug) if request.drill else StepResult("drill", "skipped", 0,
                                                                                       "--no-drill"),
            "probes": lambda: _probes(env, tenant.slug),
        }
        rows: list[StepResult] = []
        for name in STEPS:
            if name in done:
                rows.append(StepResult(name, "done before", 0.0, f"journal {journal.id}"))
                continue
            env.output.info(f"tenant onboard {tenant.slug}: {name} ...")
            journal.record(tenant.slug, name, "started")
            started = time.monotonic()
            result = steps[name]()
            result.duration_seconds = time.monotonic() - started
            rows.append(result)
            if result.result == "FAILED":
                journal.record(tenant.slug, name, "failed", result.detail)
                journal.record("", "run", "finished")
                op.details["failed_step"] = name
                op.fail(int(result.exit_code), f"{name}: {result.detail}"[:400])
                rerun = f"fix the cause, then rerun: tnoctl tenant onboard {tenant.slug}"
                return outcome_of(op, rows=_rows(rows), columns=COLUMNS, errors=[f"{name}: {result.detail}", rerun],
                                  data=_data(journal, rows))
            journal.record(tenant.slug, name, "done")
        journal.record(tenant.slug, "finish", "done")
        journal.record("", "run", "finished")
        return outcome_of(op, rows=_rows(rows), columns=COLUMNS, data=_data(journal, rows),
                          message=f"tenant {tenant.slug} onboarded: deployed, DNS {_dns_word(rows)}, backed up, "
                                  "probes pass")


def _dns_word(rows: list[StepResult]) -> str:
    """How the summary names the DNS step: published, printed (no DNS server) or done by an earlier run."""
    result = next((r.result for r in rows if r.step == "dns"), "")
    return {"ok": "published", "printed": "records printed (publish them)"}.get(result, "done before")


def _rows(rows: list[StepResult]) -> list[list[object]]:
    return [[r.step, r.result, f"{r.duration_seconds:.1f}s", r.detail] for r in rows]


def _data(journal: Journal, rows: list[StepResult]) -> dict:
    return {"journal": journal.id, "steps": [{"step": r.step, "result": r.result, "detail": r.detail,
                                              "duration_seconds": round(r.duration_seconds, 3), **r.data}
                                             for r in rows]}


def _validate(env: Env, slug: str) -> StepResult:
    """The inventory is valid (it loaded) and the vault holds every secret of the tenant."""
    tenant = env.inventory.tenant(slug)
    names = vault.vault_names(env.inventory_path, env.vault_password_file, [slug])
    if names is None:
        raise InvalidInput("tenant onboard needs the vault password (--vault-password-file or "
                           "$TNO_VAULT_PASSWORD_FILE) to check and deploy the tenant's secrets")
    needed = {box.password_vault for box in tenant.mailboxes} | {naming.passphrase_var(slug)}
    missing = sorted(needed - names)
    if missing:
        return StepResult("validate", "FAILED", detail="missing from the vault: " + ", ".join(missing),
                          exit_code=ExitCode.INVALID)
    return StepResult("validate", "ok", detail=f"inventory valid, {len(needed)} secret(s) in the vault")


def _deploy(env: Env, op: Operation, deploy_plan: deploy.DeployPlan, ignore_windows: bool) -> StepResult:
    outcome = deploy.converge(env, op, deploy_plan, None, ignore_windows=ignore_windows)
    if not outcome.ok:
        return StepResult("deploy", "FAILED", detail="; ".join(outcome.errors)[:300] or outcome.message,
                          exit_code=outcome.exit_code)
    return StepResult("deploy", "ok", detail=f"{len(deploy_plan.hosts)} host(s) and the backup machinery: "
                      + ", ".join(deploy_plan.hosts))


def _dns(env: Env, op: Operation, slug: str, dns_client: tenant_dns_sync.ClientFactory | None) -> StepResult:
    """Publish and check the tenant's records on tno_dns_server, or print them when the platform has none or
    the tenant's zone is external (``dns.zone: external``: the commune publishes them)."""
    try:
        if not tenant_dns_sync.platform_publishes(env, slug):
            printed = tenant_dns.run(env, tenant_dns.TenantDnsRequest(slug))
            lines = printed.lines
            env.output.warn(tenant_dns_sync.external_line(slug) if env.inventory.row(slug).dns_zone == "external"
                            else f"{slug}: no tno_dns_server in platform.yml: publish these records at the commune's "
                            f"DNS provider (again: tnoctl tenant dns {slug})")
            for line in lines:
                env.output.info(line)
            return StepResult("dns", "printed", detail=f"{len(lines)} record(s) to publish by hand",
                              data={"records": printed.data["records"]})
        statuses = tenant_dns_sync.publish_tenant(env, op, slug, dns_client)
    except InvalidInput as exc:  # e.g. no TSIG key in platform.yml: the operator fixes the inventory
        return StepResult("dns", "FAILED", detail=str(exc), exit_code=ExitCode.INVALID)
    except OperationFailed as exc:  # e.g. the server does not serve the commune's zone (NOTAUTH)
        return StepResult("dns", "FAILED", detail=str(exc))
    errors = tenant_dns_sync.errors_of(slug, statuses)
    if errors:
        return StepResult("dns", "FAILED", detail="; ".join(errors))
    return StepResult("dns", "ok", detail=f"{len(statuses)} record(s) published and checked on "
                      f"{env.inventory.platform.tno_dns_server}")


def _backup(env: Env, slug: str) -> StepResult:
    (target,) = plan_targets(env.inventory, (slug,))
    result = backup.run_one(env, target)
    return StepResult("backup", "ok" if result.ok else "FAILED", detail=result.detail)


def _drill(env: Env, slug: str) -> StepResult:
    (target,) = plan_targets(env.inventory, (slug,))
    result = backup_checks.drill_one(env, target)
    return StepResult("drill", "ok" if result.ok else "FAILED", detail=result.detail)


def _probes(env: Env, slug: str) -> StepResult:
    from tnoctl.probes import report

    rows = report.fold(gather(env, StatusRequest(tenants=(slug,))))
    bad = [f"{r.component}: {'; '.join(r.reasons) or r.state}" for r in rows if r.state == "critical"]
    if bad:
        return StepResult("probes", "FAILED", detail="; ".join(bad))
    return StepResult("probes", "ok", detail=", ".join(f"{r.component} {r.state}" for r in rows))
