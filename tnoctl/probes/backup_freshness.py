"""Backup freshness and verification age, from the state store (no network).

Pure: :func:`backup_results` turns the store's :class:`BackupStatus` per tenant/component
into probe results for ``tnoctl status``; the exporter exposes the raw timestamps instead
and lets the alert rules decide.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from tnoctl.probes.base import ProbeResult
from tnoctl.state.store import BackupStatus

MAX_AGE_SECONDS = 26 * 3600.0
MAX_VERIFY_AGE_SECONDS = 8 * 86400.0


def backup_results(statuses: Mapping[tuple[str, str], BackupStatus], expected: Iterable[tuple[str, str]],
                   now: float, max_age: float = MAX_AGE_SECONDS,
                   max_verify_age: float = MAX_VERIFY_AGE_SECONDS) -> list[ProbeResult]:
    """One ``backup`` and one ``backup_verified`` result per expected (tenant, component)."""
    results = []
    for tenant, component in sorted(set(expected)):
        st = statuses.get((tenant, component)) or BackupStatus(tenant, component)
        if st.last_success is None:
            ok, detail, age = False, "no successful backup recorded", None
        else:
            age = now - st.last_success.finished_at
            ok = age <= max_age and not st.last_failed
            detail = f"last success {age / 3600:.1f} h ago"
            if st.last_failed and st.last_failure is not None:
                detail += f"; last attempt failed: {st.last_failure.detail[:80]}"
        results.append(ProbeResult(tenant, component, "backup", ok, 0.0, detail, value=age, severity="warning"))
        if st.last_verified_at is None:
            vok, vdetail, vage = False, "never verified", None
        else:
            vage = now - st.last_verified_at
            vok = vage <= max_verify_age and not st.last_verification_failed
            vdetail = f"verified {vage / 86400:.1f} days ago"
            if st.last_verification_failed:
                vdetail += "; the latest drill failed"
        results.append(ProbeResult(tenant, component, "backup_verified", vok, 0.0, vdetail, value=vage,
                                   severity="warning"))
    return results
