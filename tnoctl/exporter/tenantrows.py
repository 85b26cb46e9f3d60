"""What each per-tenant source exports: its families and one tenant's rows of each.

Why per tenant: at 35,000 communes a scrape must not rebuild every series when one backup record
or one probe result arrives (issue 18). Each source here turns *one tenant's* latest records into
that tenant's samples of each of its families, so :mod:`tnoctl.exporter.incremental` re-renders
only the tenants whose records changed. The metric names, help texts and label sets are the ones
the rules and dashboards use (docs/monitoring.md); only the row order inside a family changed (by
tenant first), which Prometheus ignores.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from tnoctl.probes.base import is_host_key_mismatch
from tnoctl.state.store import backup_statuses

TC = ["tenant", "component"]
TCC = ["tenant", "component", "check"]
TV = ["tenant", "verb"]
CACHED = " Cached: measured by the background probe worker, see tnoctl_probe_last_run_timestamp_seconds."

Row = tuple[tuple[str, ...], float]
Spec = tuple[str, str, list[str]]
"""(family name, help text, label names)."""
Records = Mapping[str, Mapping[tuple, Any]]
"""One tenant's latest records: kind → {key: record} (probes: kind "probes", values CachedResult)."""
Services = tuple[str, ...] | None
"""The tenant's services from the inventory; None when no inventory is available (nothing filtered)."""


@dataclass(frozen=True)
class TenantSource:
    """A collector whose series are all per tenant: its families, its store kinds, its row builder."""

    name: str
    kinds: tuple[str, ...]
    specs: list[Spec]
    rows: Callable[[str, Records, Services], list[list[Row]]]
    unknown: Callable[[Records], int]
    """How many latest records of an unknown tenant this source ignores (tnoctl_store_unknown_tenant_records)."""


def _count(records: Records) -> int:
    return sum(len(v) for v in records.values())


def _empty(specs: list[Spec]) -> list[list[Row]]:
    return [[] for _ in specs]


# ---------------------------------------------------------------------------------------------- backups
BACKUP_SPECS: list[Spec] = [
    ("tnoctl_backup_last_success_timestamp_seconds", "End time of the last successful backup (0: none recorded).",
     TC),
    ("tnoctl_backup_last_failure_timestamp_seconds", "End time of the last failed backup.", TC),
    ("tnoctl_backup_last_failed", "1 if the most recent backup attempt failed.", TC),
    ("tnoctl_backup_last_verified_timestamp_seconds",
     "Time of the last successful verification of the backup (0: never).", TC),
    ("tnoctl_backup_last_verification_failed", "1 if the most recent verification (drill, verify) failed.", TC),
    ("tnoctl_backup_duration_seconds", "Duration of the last successful backup.", TC),
    ("tnoctl_backup_size_bytes",
     "Size of the last successful backup archive (original, compressed, deduplicated).", [*TC, "kind"]),
]


def _backup_rows(tenant: str, records: Records, services: Services) -> list[list[Row]]:
    last_ok, last_fail, failed, verified, check_failed, dur, size = out = _empty(BACKUP_SPECS)
    statuses = backup_statuses(records.get("backups", {}).values(), records.get("verifications", {}).values())
    seen = set()
    for (_, component), st in sorted(statuses.items()):
        if services is not None and component not in services:
            continue  # a stale record of a service the tenant no longer has must not alert
        seen.add(component)
        lbl = (tenant, component)
        last_ok.append((lbl, st.last_success.finished_at if st.last_success else 0.0))
        failed.append((lbl, 1.0 if st.last_failed else 0.0))
        verified.append((lbl, st.last_verified_at or 0.0))
        check_failed.append((lbl, 1.0 if st.last_verification_failed else 0.0))
        if st.last_failure is not None:
            last_fail.append((lbl, st.last_failure.finished_at))
        if st.last_success is not None:
            dur.append((lbl, st.last_success.duration_seconds))
            for kind in ("original", "compressed", "deduplicated"):
                value = getattr(st.last_success, f"{kind}_bytes")
                if value is not None:
                    size.append(((*lbl, kind), float(value)))
    for component in services or ():
        if component not in seen:  # expected but never backed up: make the alert fire
            last_ok.append(((tenant, component), 0.0))
            failed.append(((tenant, component), 0.0))
            verified.append(((tenant, component), 0.0))
            check_failed.append(((tenant, component), 0.0))
    return out


def _backup_unknown(records: Records) -> int:
    """Statuses, as before: one per (tenant, component) whatever the number of records behind it."""
    return len({key[:2] for kind in ("backups", "verifications") for key in records.get(kind, {})})


# ---------------------------------------------------------------------------------------------- store kinds
VERSION_SPECS: list[Spec] = [
    ("tnoctl_component_version_info", "Version deployed on a tenant's component and the pinned one.",
     [*TC, "version", "pinned"]),
    ("tnoctl_component_version_matches_pin", "1 if the deployed version equals the pinned one.", TC),
]


def _version_rows(tenant: str, records: Records, _services: Services) -> list[list[Row]]:
    info, match = out = _empty(VERSION_SPECS)
    for _, rec in sorted(records.get("versions", {}).items()):
        info.append(((tenant, rec.component, rec.deployed, rec.pinned), 1.0))
        match.append(((tenant, rec.component), 1.0 if rec.deployed == rec.pinned else 0.0))
    return out


UPGRADE_SPECS: list[Spec] = [
    ("tnoctl_upgrade_in_progress", "1 while an upgrade of the tenant's component is running.", TC),
    ("tnoctl_upgrade_state", "Current upgrade state (the series with value 1 names it).", [*TC, "state"]),
    ("tnoctl_upgrade_started_timestamp_seconds", "Start time of the latest upgrade.", TC),
    ("tnoctl_upgrade_last_success_timestamp_seconds", "End time of the last successful upgrade.", TC),
]


def _upgrade_rows(tenant: str, records: Records, _services: Services) -> list[list[Row]]:
    running, state, started, success = out = _empty(UPGRADE_SPECS)
    for _, rec in sorted(records.get("upgrades", {}).items()):
        lbl = (tenant, rec.component)
        running.append((lbl, 1.0 if rec.state == "running" else 0.0))
        state.append(((*lbl, rec.state), 1.0))
        started.append((lbl, rec.started_at))
        if rec.last_success_at is not None:
            success.append((lbl, rec.last_success_at))
    return out


DRIFT_SPECS: list[Spec] = [
    ("tnoctl_config_drift", "1 if the last check-mode run found changes (configuration drift).", TC),
    ("tnoctl_config_drift_changed_tasks", "Tasks that would change, at the last drift check.", TC),
    ("tnoctl_config_drift_last_check_timestamp_seconds", "Time of the last drift check.", TC),
]


def _drift_rows(tenant: str, records: Records, _services: Services) -> list[list[Row]]:
    drift, changed, checked = out = _empty(DRIFT_SPECS)
    for _, rec in sorted(records.get("drift", {}).items()):
        lbl = (tenant, rec.component)
        drift.append((lbl, 1.0 if rec.drift else 0.0))
        changed.append((lbl, float(rec.changed_tasks)))
        checked.append((lbl, rec.checked_at))
    return out


OPERATION_SPECS: list[Spec] = [
    ("tnoctl_operation_last_success", "1 if the last run of the verb on the tenant succeeded.", TV),
    ("tnoctl_operation_last_timestamp_seconds", "End time of the last run of the verb on the tenant.", TV),
    ("tnoctl_operation_last_duration_seconds", "Duration of the last run of the verb on the tenant.", TV),
]


def _operation_rows(tenant: str, records: Records, _services: Services) -> list[list[Row]]:
    ok, when, dur = out = _empty(OPERATION_SPECS)
    for _, rec in sorted(records.get("operations", {}).items()):
        lbl = (tenant, rec.verb)
        ok.append((lbl, 1.0 if rec.ok else 0.0))
        when.append((lbl, rec.finished_at))
        dur.append((lbl, rec.duration_seconds))
    return out


DNS_SPECS: list[Spec] = [
    ("tnoctl_dns_record_ok",
     "1 if the record (kind name type) was published as expected at the tenant's last dns check.",
     ["tenant", "record"]),
    ("tnoctl_dns_check_timestamp_seconds", "Time of the tenant's last dns check (dns check, dns publish).", ["tenant"]),
]


def _dns_rows(tenant: str, records: Records, _services: Services) -> list[list[Row]]:
    """Only the records of the tenant's latest check: a record it no longer needs stops being exported."""
    ok, checked = out = _empty(DNS_SPECS)
    latest = records.get("dns", {})
    if not latest:
        return out
    last = max(rec.checked_at for rec in latest.values())
    for _, rec in sorted(latest.items()):
        if rec.checked_at == last:
            ok.append(((tenant, rec.record), 1.0 if rec.ok else 0.0))
    checked.append(((tenant,), last))
    return out


# ---------------------------------------------------------------------------------------------- probes
PROBE_SPECS: list[Spec] = [
    ("tnoctl_probe_success", "1 if the app-level check passed." + CACHED, TCC),
    ("tnoctl_probe_duration_seconds", "Duration of the app-level check." + CACHED, TCC),
    ("tnoctl_probe_last_run_timestamp_seconds",
     "When the background worker last ran this check (the probe values are cached).", TCC),
    ("tnoctl_tls_certificate_expiry_timestamp_seconds",
     "notAfter of the certificate served for the tenant's name." + CACHED, TCC),
    ("tnoctl_mail_queue_messages", "Messages in the Postfix queue, by sender's tenant." + CACHED, ["tenant", "queue"]),
    ("tnoctl_mail_queue_oldest_age_seconds",
     "Age of the oldest message in the Postfix queue, by sender's tenant." + CACHED, ["tenant", "queue"]),
    ("tnoctl_mail_roundtrip_seconds", "Submission to visible-in-INBOX latency of the canary message." + CACHED,
     ["tenant"]),
    ("tnoctl_probe_host_key_mismatch",
     "1 if the check's host presented another SSH host key (possible man-in-the-middle)." + CACHED, TCC),
]


def _probe_rows(tenant: str, records: Records, _services: Services) -> list[list[Row]]:
    success, duration, last_run, cert, queue_msgs, queue_age, roundtrip, mismatch = out = _empty(PROBE_SPECS)
    for _, cached in sorted(records.get("probes", {}).items()):
        r = cached.result
        lbl = (tenant, r.component, r.check)
        success.append((lbl, 1.0 if r.ok else 0.0))
        mismatch.append((lbl, 1.0 if not r.ok and is_host_key_mismatch(r.detail) else 0.0))
        duration.append((lbl, r.latency_seconds))
        last_run.append((lbl, cached.ran_at))
        if "not_after_timestamp_seconds" in r.values:
            cert.append((lbl, r.values["not_after_timestamp_seconds"]))
        if r.check == "queue":
            for key, value in sorted(r.values.items()):
                what, _, queue = key.partition(".")
                target = queue_msgs if what == "messages" else queue_age if what == "oldest_age_seconds" else None
                if target is not None:
                    target.append(((tenant, queue), value))
        if r.check == "roundtrip" and r.ok and r.value is not None:
            roundtrip.append(((tenant,), r.value))
    return out


STORE_SOURCES: tuple[TenantSource, ...] = (
    TenantSource("backups", ("backups", "verifications"), BACKUP_SPECS, _backup_rows, _backup_unknown),
    TenantSource("versions", ("versions",), VERSION_SPECS, _version_rows, _count),
    TenantSource("upgrades", ("upgrades",), UPGRADE_SPECS, _upgrade_rows, _count),
    TenantSource("drift", ("drift",), DRIFT_SPECS, _drift_rows, _count),
    TenantSource("operations", ("operations",), OPERATION_SPECS, _operation_rows, _count),
    TenantSource("dns", ("dns",), DNS_SPECS, _dns_rows, _count),
)
PROBE_SOURCE = TenantSource("probes", ("probes",), PROBE_SPECS, _probe_rows, _count)
