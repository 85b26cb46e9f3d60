"""Turn a host's ``tno-backup results`` (its timer-run backups and drills) into state-store records. Pure.

The host files (``/var/lib/tno-backup/state/KEY.json`` and ``KEY.drill.json``) are the one source of
truth of every backup and drill, whoever started it (systemd timer, ``tnoctl backup run``, an
operator on the host). tnoctl pulls them (tnoctl/actions/backup_sync.py) and appends to its store
only what it has not recorded yet: a record newer than the store's latest for that tenant and
component. ``backup run`` records the very result the agent printed (same ``finished_at``), so a
pull after it adds nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from tnoctl.backup import naming
from tnoctl.state.store import BackupResult, BackupStatus, BackupVerification

Record = BackupResult | BackupVerification


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def run_record(slug: str, component: str, run: Mapping[str, Any]) -> BackupResult | None:
    """The store record of one host run state (None when it lacks a finish time)."""
    finished = _float(run.get("finished_at"))
    if finished is None or finished <= 0:
        return None
    ok = bool(run.get("ok"))
    return BackupResult(
        tenant=slug, component=component, ok=ok, finished_at=finished,
        duration_seconds=_float(run.get("duration_seconds")) or 0.0,
        original_bytes=_int(run.get("original_bytes")) if ok else None,
        compressed_bytes=_int(run.get("compressed_bytes")) if ok else None,
        deduplicated_bytes=_int(run.get("deduplicated_bytes")) if ok else None,
        detail=str(run.get("detail", ""))[:300],
    )


def drill_record(slug: str, component: str, drill: Mapping[str, Any]) -> BackupVerification | None:
    """The store record of one host drill state (None when it lacks a finish time)."""
    finished = _float(drill.get("finished_at"))
    if finished is None or finished <= 0:
        return None
    return BackupVerification(slug, component, bool(drill.get("ok")), finished,
                              ("scheduled drill: " + str(drill.get("detail", "")))[:300])


def _last_run(status: BackupStatus | None) -> float:
    if status is None:
        return 0.0
    return max([r.finished_at for r in (status.last_success, status.last_failure) if r is not None] or [0.0])


def _last_check(status: BackupStatus | None) -> float:
    if status is None:
        return 0.0
    return max([t for t in (status.last_verified_at, status.last_verification_failed_at) if t] or [0.0])


def new_records(units: Mapping[str, Any], expected: Iterable[tuple[str, str]],
                statuses: Mapping[tuple[str, str], BackupStatus]) -> list[Record]:
    """Records of ``units`` (``{KEY: {"run": ..., "drill": ...}}``) newer than the store's, for ``expected``.

    ``expected`` lists the (slug, component) this host backs up now; units of other tenants (a
    config left behind, another tenant's key) are ignored.
    """
    out: list[Record] = []
    for slug, component in expected:
        unit = units.get(naming.unit_key(slug, component))
        if not isinstance(unit, Mapping):
            continue
        status = statuses.get((slug, component))
        run = run_record(slug, component, unit["run"]) if isinstance(unit.get("run"), Mapping) else None
        if run is not None and run.finished_at > _last_run(status):
            out.append(run)
        drill = drill_record(slug, component, unit["drill"]) if isinstance(unit.get("drill"), Mapping) else None
        if drill is not None and drill.verified_at > _last_check(status):
            out.append(drill)
    return out
