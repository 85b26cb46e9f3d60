"""`dns plan | check | publish`: the DNS records of the selected communes as code (issue 15).

One path for every caller: `tnoctl dns ...`, its shorthand `tnoctl tenant dns SLUG [--check|--publish]`
and the runbook steps (actions/registry.py) all run these three functions.

- :func:`plan`: the records each tenant must have (tnoctl.actions.tenant_dns, the one record builder);
  DKIM keys read with one SSH command per mail host. Read-only, not audited.
- :func:`check`: asks the platform's DNS server (``tno_dns_server``, directly, no recursion) for each
  record and classifies it (tnoctl.actions.tenant_dns_sync); every tenant's result goes to the state
  store (exporter: ``tnoctl_dns_record_ok``, ``tnoctl_dns_check_timestamp_seconds``). Not audited, no lock:
  it changes no zone (like `drift`'s record, the store write is bookkeeping).
- :func:`publish`: checks, hands the difference to the verb's ``confirm`` (which shows it and asks), then
  in ONE ``dns publish`` operation (audit record, the tenants' locks) sends it by RFC 2136 and checks
  again (recorded).

Exit 1 when a record is still missing or different, or a tenant's records cannot be computed (its mail
host unreadable, no DKIM key yet): one stderr line per problem naming the tenant and the record.

A tenant whose ``dns.zone`` is ``external`` (zone at a registrar): `plan` heads its block with
:data:`EXTERNAL_HEADER`; `check` asks the zone's own name servers (the platform's server is not needed
when no selected tenant uses it); `publish` sends it nothing and does not fail because of it (one line,
``data["external"]``). Every ``--json`` output carries each tenant's ``zone``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from tnoctl.actions import tenant_dns_sync as sync
from tnoctl.actions.env import Env
from tnoctl.actions.operation import Outcome, operation, outcome_of
from tnoctl.actions.tenant_dns import TenantRecords, tenant_records, zone_line
from tnoctl.errors import ExitCode, InvalidInput, OperationFailed

CHECK_COLUMNS = ["tenant", "kind", "name", "type", "state"]
Confirm = Callable[[Outcome], bool]


@dataclass(frozen=True)
class DnsRequest:
    """Which tenants (none: every tenant of the inventory)."""

    tenants: tuple[str, ...] = ()


@dataclass(frozen=True)
class PublishRequest(DnsRequest):
    """`dns publish`: ``confirm`` gets the preview (what is missing or different) and says go or not."""

    confirm: Confirm | None = None


def selected(env: Env, tenants: Sequence[str]) -> list[str]:
    """The slugs to work on, in order, once each; InvalidInput naming every unknown one (names escaped)."""
    if not tenants:
        return [row.slug for row in env.inventory.rows]
    problems = []
    for slug in dict.fromkeys(tenants):
        try:
            env.inventory.row(slug)
        except InvalidInput as exc:
            problems.append(exc.message)
    if problems:
        raise InvalidInput(problems[0] if len(problems) == 1 else f"{len(problems)} unknown tenants",
                           details=problems if len(problems) > 1 else None)
    return list(dict.fromkeys(tenants))


EXTERNAL_HEADER = "external zone: to be published by the commune at its registrar or DNS host"


def _header(found: TenantRecords) -> str:
    """The comment line above a tenant's records in `dns plan` (external zones say who publishes them)."""
    return f"; {found.slug}" + (f" ({EXTERNAL_HEADER})" if found.zone == "external" else "")


def plan(env: Env, request: DnsRequest) -> Outcome:
    """The records every selected tenant must have; exit 1 naming the tenants whose records are unknown."""
    found = tenant_records(env, selected(env, request.tenants))
    lines = [line for t in found if not t.error for line in [_header(t), *map(zone_line, t.records)]]
    errors = [f"{t.slug}: {t.error}" for t in found if t.error]
    data = {"tenants": [{"tenant": t.slug, "zone": t.zone, "records": t.records, "error": t.error or None}
                        for t in found]}
    code = ExitCode.FAILED if errors else ExitCode.OK
    return Outcome(exit_code=code, result="failed" if errors else "ok", lines=lines, data=data, errors=errors)


def _expected(found: TenantRecords) -> list[sync.Expected]:
    return sync.expected_records(found.records, found.domains)


def _report(results: list[tuple[TenantRecords, list[sync.Status]]], checked_at: float) -> Outcome:
    """Rows, --json data and error lines of checked tenants (exit 1 on any problem)."""
    rows: list[list[object]] = []
    records: list[dict] = []
    errors: list[str] = []
    tenants = []
    for found, statuses in results:
        if found.error:
            errors.append(f"{found.slug}: {found.error}")
        errors += sync.errors_of(found.slug, statuses)
        tenants.append({"tenant": found.slug, "zone": found.zone,
                        "ok": not found.error and all(s.state == "published" for s in statuses),
                        "error": found.error or None})
        for s in statuses:
            rows.append([found.slug, s.record.kind, s.record.name, s.record.rtype, s.state])
            records.append({"tenant": found.slug, "zone": found.zone, "record": s.record.label, "kind": s.record.kind,
                            "name": s.record.name, "type": s.record.rtype, "state": s.state,
                            "expected": s.record.value, "found": list(s.found)})
    code = ExitCode.FAILED if errors else ExitCode.OK
    return Outcome(exit_code=code, result="failed" if errors else "ok", rows=rows, columns=CHECK_COLUMNS,
                   data={"checked_at": checked_at, "tenants": tenants, "records": records}, errors=errors)


def check(env: Env, request: DnsRequest, client_factory: sync.ClientFactory | None = None,
          external_factory: sync.ExternalFactory | None = None) -> Outcome:
    """Check every selected tenant's records and record each tenant's result.

    Platform zones are asked of tno_dns_server (client built only when a selected tenant needs it);
    external zones of their own name servers (:func:`tenant_dns_sync.external_client`). A zone whose
    servers cannot be found or do not answer is an error for that tenant only.
    """
    slugs = selected(env, request.tenants)
    rows = {slug: env.inventory.row(slug) for slug in slugs}
    client = None
    if any(row.dns_zone != "external" for row in rows.values()):
        client = (client_factory or sync.platform_client)(env, False)
    results = []
    for found in tenant_records(env, slugs):
        statuses: list[sync.Status] = []
        if found.zone == "external" and not found.error:
            try:
                zones = (external_factory or sync.external_client)(env, found.domains)
                statuses = sync.check_tenant(env, found.slug, _expected(found), zones)
            except OperationFailed as exc:
                found = replace(found, error=exc.message)
        elif not found.error:
            assert client is not None
            statuses = sync.check_tenant(env, found.slug, _expected(found), client)
        results.append((found, statuses))
    return _report(results, env.clock())


def publish(env: Env, request: PublishRequest, client_factory: sync.ClientFactory | None = None) -> Outcome:
    """Check (recorded), confirm the difference, publish it in one audited, locked operation, check again.

    Tenants whose zone is external are never sent anything nor fail the run: one line each (stdout,
    ``data["external"]``) says the records are the commune's to publish.
    """
    chosen = selected(env, request.tenants)
    external = [slug for slug in chosen if env.inventory.row(slug).dns_zone == "external"]
    slugs = [slug for slug in chosen if slug not in external]
    notes = [sync.external_line(slug) for slug in external]
    if not slugs:
        return Outcome(lines=notes, data={"tenants": [], "records": [], "external": external},
                       message="nothing to publish: the selected tenants' zones are external")
    client = (client_factory or sync.platform_client)(env, True)  # the TSIG key is needed anyway: fail before asking
    found = tenant_records(env, slugs)
    expected = {t.slug: _expected(t) for t in found if not t.error}
    before = {slug: sync.check_tenant(env, slug, records, client) for slug, records in expected.items()}
    todo = [slug for slug, statuses in before.items() if any(s.state != "published" for s in statuses)]
    if not todo:
        preview = _report([(t, before.get(t.slug, [])) for t in found], env.clock())
        preview.message = ("nothing to publish: every record is already published" if preview.ok else
                           "nothing published: the records of the tenants named above are not known")
        return _with_external(preview, external)
    pending = _report([(t, [s for s in before[t.slug] if s.state != "published"]) for t in found if t.slug in todo],
                      env.clock())
    pending.message = f"{len(todo)} tenant(s) with records to publish: {', '.join(todo)}"
    if request.confirm is not None and not request.confirm(pending):
        return Outcome.failed("nothing published", ExitCode.REFUSED)
    with operation(env, "dns publish", {"tenants": tuple(todo)}, tenants=todo) as op:
        after = {slug: sync.publish(env, slug, expected[slug], client) for slug in todo}
        report = _report([(t, after.get(t.slug, before.get(t.slug, []))) for t in found], env.clock())
        op.details["records"] = {slug: len(pending_rows) for slug, pending_rows in _per_tenant(pending).items()}
        if report.errors:
            op.fail(ExitCode.FAILED, f"{len(report.errors)} problem(s) left (see the errors)")
        if external:
            op.details["external"] = external
        return _with_external(outcome_of(op, rows=report.rows, columns=CHECK_COLUMNS, data=report.data,
                                         errors=report.errors), external)


def _with_external(outcome: Outcome, external: list[str]) -> Outcome:
    """The outcome with one line per external tenant (stdout) and their slugs in ``data["external"]``."""
    outcome.lines = [*outcome.lines, *map(sync.external_line, external)]
    outcome.data["external"] = external
    return outcome


def _per_tenant(outcome: Outcome) -> dict[str, list[list[object]]]:
    out: dict[str, list[list[object]]] = {}
    for row in outcome.rows:
        out.setdefault(str(row[0]), []).append(row)
    return out
