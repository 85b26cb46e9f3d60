"""``tnoctl status`` logic, pure: fold probe results into a tenant × component table and an exit code.

State per (tenant, component): ``ok`` when every check passed, otherwise the worst severity
among failed checks (``warning`` or ``critical``), with the reasons of the failed checks.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

from tnoctl.probes.base import ProbeResult

RANK = {"ok": 0, "warning": 1, "critical": 2}


@dataclass
class ComponentStatus:
    """One row of the status table."""

    tenant: str
    component: str
    state: str = "ok"
    checks: int = 0
    reasons: list[str] = field(default_factory=list)


def fold(results: Iterable[ProbeResult]) -> list[ComponentStatus]:
    """Rows sorted by tenant then component."""
    rows: dict[tuple[str, str], ComponentStatus] = {}
    for r in results:
        row = rows.setdefault((r.tenant, r.component), ComponentStatus(r.tenant, r.component))
        row.checks += 1
        if r.ok:
            continue
        row.reasons.append(f"{r.check}: {r.detail}" if r.detail else r.check)
        if RANK[r.severity] > RANK[row.state]:
            row.state = r.severity
    return [rows[k] for k in sorted(rows)]


def exit_code(rows: Iterable[ComponentStatus]) -> int:
    """1 when anything is critical, else 0 (warnings are shown but do not fail the command)."""
    return 1 if any(r.state == "critical" for r in rows) else 0


def table(rows: Iterable[ComponentStatus]) -> tuple[list[str], list[list[str]]]:
    """Columns and rows for :meth:`AppContext.print_table`."""
    return ["tenant", "component", "state", "reason"], [
        [r.tenant, r.component, r.state.upper(), "; ".join(r.reasons)] for r in rows
    ]


def as_json(rows: list[ComponentStatus], results: Iterable[ProbeResult]) -> dict:
    """The ``--json`` document: rows, every check, and the overall state."""
    worst = max((RANK[r.state] for r in rows), default=0)
    return {
        "state": next(k for k, v in RANK.items() if v == worst),
        "components": [asdict(r) for r in rows],
        "checks": [{**asdict(r), "values": dict(r.values)}
                   for r in sorted(results, key=lambda r: (r.tenant, r.component, r.check))],
    }
