"""Latest result of every background probe, with the time it ran.

Why: a scrape must never wait for a probe (DESIGN point 11). The background worker
writes here as each result arrives; the collector reads a snapshot. Keys that the last
round no longer produced (tenant removed) are dropped, so no stale label set survives.
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
    """Thread-safe map (tenant, component, check) → :class:`CachedResult`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[Key, CachedResult] = {}
        self.last_round_at: float | None = None
        self.last_round_seconds: float | None = None
        self.generation = 0  # bumped on every change: the collector re-renders only then

    def put(self, result: ProbeResult, ran_at: float) -> None:
        """Store one result as it arrives."""
        with self._lock:
            self._items[(result.tenant, result.component, result.check)] = CachedResult(result, ran_at)
            self.generation += 1

    def retain(self, keys: set[Key]) -> None:
        """Drop every entry not produced by the last complete round."""
        with self._lock:
            self._items = {k: v for k, v in self._items.items() if k in keys}
            self.generation += 1

    def finish_round(self, at: float, seconds: float) -> None:
        """Remember when the last full round ended and how long it took."""
        with self._lock:
            self.last_round_at, self.last_round_seconds = at, seconds
            self.generation += 1

    def snapshot(self) -> list[CachedResult]:
        """A copy of every cached result, sorted by key."""
        with self._lock:
            return [self._items[k] for k in sorted(self._items)]
