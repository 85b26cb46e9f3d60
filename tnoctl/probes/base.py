"""The one result type every probe returns, and the probe description the runner executes.

Why: the exporter, ``tnoctl status`` and the benchmark all consume the same typed result,
so each probe module only has to produce it. Labels are tenant/component/check only: a
probe never reports a mailbox, user or document name.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

Severity = Literal["warning", "critical"]


@dataclass(frozen=True)
class ProbeResult:
    """Outcome of one check of one tenant's component.

    ``value`` is the check's main figure (days of certificate left, queued messages, backup
    age...); ``values`` holds extra named figures (documented per check) the exporter maps to
    metrics; ``severity`` says how bad a failure is (``tnoctl status`` exits 1 on critical).
    """

    tenant: str
    component: str
    check: str
    ok: bool
    latency_seconds: float
    detail: str = ""
    value: float | None = None
    values: Mapping[str, float] = field(default_factory=dict)
    severity: Severity = "critical"


ProbeFn = Callable[[float], "ProbeResult | list[ProbeResult]"]
"""A probe body: receives its timeout in seconds, returns its result(s) (never raises on purpose)."""


@dataclass(frozen=True)
class Probe:
    """One check to run: identity (for timeout results) and the body.

    A host-level probe (the mail queue: one SSH command for every tenant of a host) lists
    all the tenants it reports for in ``tenants`` so that a timeout fails each of them.
    """

    tenant: str
    component: str
    check: str
    run: ProbeFn
    timeout: float = 10.0
    severity: Severity = "critical"
    tenants: tuple[str, ...] = ()

    def failed(self, detail: str, latency: float) -> list[ProbeResult]:
        """The results reported when the body raised or did not finish in time."""
        return [ProbeResult(t, self.component, self.check, False, latency, detail, severity=self.severity)
                for t in (self.tenants or (self.tenant,))]


class Stopwatch:
    """Monotonic elapsed time since creation (latencies are never wall-clock differences)."""

    def __init__(self) -> None:
        self.start = time.monotonic()

    def __call__(self) -> float:
        return time.monotonic() - self.start


def short_error(exc: BaseException) -> str:
    """One-line reason for a failure, without secrets (exception text only, truncated)."""
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:200]
