"""Latest result of every background probe, with the time it ran.

Why: a scrape must never wait for a probe (DESIGN point 11). The background worker
writes here as each result arrives; the collector reads a snapshot. Keys that the last
round no longer produced (tenant removed) are dropped, so no stale label set survives.

Results are kept per tenant, and each tenant remembers the generation of its last change:
the collector asks :meth:`ProbeCache.changed_since` which tenants changed since its previous
scrape and re-renders only those (35,000 tenants: issue 18).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from tnoctl.probes.base import ProbeResult

Key = tuple[str, str, str]


@dataclass(frozen=True)
class CachedResult:
    """A probe result and the epoch time it was obtained."""

    result: ProbeResult
    ran_at: float


class ProbeCache:
    """Thread-safe map (tenant, component, check) → :class:`CachedResult`, indexed by tenant."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tenants: dict[str, dict[Key, CachedResult]] = {}
        self._changed_at: dict[str, int] = {}  # tenant → generation of its last change (removed ones too)
        self.last_round_at: float | None = None
        self.last_round_seconds: float | None = None
        self.generation = 0  # bumped on every change: the collector re-renders only then

    def put(self, result: ProbeResult, ran_at: float) -> None:
        """Store one result as it arrives."""
        with self._lock:
            self.generation += 1
            key = (result.tenant, result.component, result.check)
            self._tenants.setdefault(result.tenant, {})[key] = CachedResult(result, ran_at)
            self._changed_at[result.tenant] = self.generation

    def retain(self, keys: set[Key]) -> None:
        """Drop every entry not produced by the last complete round."""
        with self._lock:
            self.generation += 1
            for tenant in list(self._tenants):
                items = self._tenants[tenant]
                kept = {k: v for k, v in items.items() if k in keys}
                if len(kept) == len(items):
                    continue
                if kept:
                    self._tenants[tenant] = kept
                else:
                    del self._tenants[tenant]
                self._changed_at[tenant] = self.generation

    def finish_round(self, at: float, seconds: float) -> None:
        """Remember when the last full round ended and how long it took."""
        with self._lock:
            self.last_round_at, self.last_round_seconds = at, seconds
            self.generation += 1

    def changed_since(self, generation: int) -> tuple[int, set[str]]:
        """(current generation, tenants whose results changed or were dropped after ``generation``)."""
        with self._lock:
            return self.generation, {t for t, g in self._changed_at.items() if g > generation}

    def tenant_results(self, tenant: str) -> dict[Key, CachedResult]:
        """A copy of one tenant's cached results (empty when it has none)."""
        with self._lock:
            return dict(self._tenants.get(tenant, {}))

    def tenants(self) -> list[str]:
        """Every tenant with at least one cached result."""
        with self._lock:
            return list(self._tenants)

    def snapshot(self) -> list[CachedResult]:
        """A copy of every cached result, sorted by key."""
        with self._lock:
            items = {k: v for results in self._tenants.values() for k, v in results.items()}
        return [items[k] for k in sorted(items)]
