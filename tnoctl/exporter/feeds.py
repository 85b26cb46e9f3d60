"""Which tenants changed since the previous scrape, and each tenant's current records.

Why: the collector re-renders only changed tenants (:mod:`tnoctl.exporter.incremental`). The state
store gives a cheap change token per kind (bytes parsed); when it moved, :class:`StoreFeed` copies the
kind's latest records and compares them *by identity* with the previous copy (an unchanged record is
the same object), which costs a dict walk, not a re-render. :class:`ProbeFeed` asks the probe cache,
which remembers when each tenant last changed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tnoctl.exporter.cache import ProbeCache
from tnoctl.exporter.tenantrows import Records
from tnoctl.state.store import Store


class StoreFeed:
    """Changes of some store kinds (``backups`` + ``verifications`` for the backup families, ...)."""

    def __init__(self, store: Store, kinds: tuple[str, ...]) -> None:
        self.store, self.kinds = store, kinds
        self._token: Any = None
        self._prev: dict[str, dict[tuple, Any]] = {kind: {} for kind in kinds}
        self._by_tenant: dict[str, dict[str, dict[tuple, Any]]] = {}

    def changes(self) -> set[str]:
        """Tenants with a new, changed or vanished record since the last call (all of them the first time)."""
        token = self.store.generation(*self.kinds)
        if token == self._token:
            return set()
        changed: set[str] = set()
        for kind in self.kinds:
            current = self.store.latest_records(kind)
            previous = self._prev[kind]
            for key, record in current.items():
                if previous.get(key) is not record:
                    changed.add(key[0])
                    self._by_tenant.setdefault(key[0], {}).setdefault(kind, {})[key] = record
            for key in previous.keys() - current.keys():  # compaction keeps latest records; a reset drops all
                changed.add(key[0])
                mine = self._by_tenant.get(key[0], {})
                mine.get(kind, {}).pop(key, None)
                if not any(mine.values()):
                    self._by_tenant.pop(key[0], None)
            self._prev[kind] = current
        self._token = token
        return changed

    def records(self, tenant: str) -> Records:
        """The tenant's latest records per kind (empty when it has none)."""
        return self._by_tenant.get(tenant, {})

    def tenants(self) -> Iterable[str]:
        """Every tenant with at least one record."""
        return list(self._by_tenant)


class ProbeFeed:
    """Changes of the probe cache since the previous call."""

    def __init__(self, cache: ProbeCache) -> None:
        self.cache = cache
        self._generation = 0

    def changes(self) -> set[str]:
        """Tenants whose probe results changed since the last call."""
        self._generation, changed = self.cache.changed_since(self._generation)
        return changed

    def records(self, tenant: str) -> Records:
        """The tenant's cached results, as the ``probes`` kind."""
        return {"probes": self.cache.tenant_results(tenant)}

    def tenants(self) -> Iterable[str]:
        """Every tenant with a cached result."""
        return self.cache.tenants()
