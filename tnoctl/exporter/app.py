"""Wire the exporter from the CLI's context: store, inventory view, probe worker, registry.

Kept out of ``tnoctl/cli/exporter.py`` so the bench and tests build the same thing in-process.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from prometheus_client import CollectorRegistry

from tnoctl import __version__
from tnoctl.exporter.cache import ProbeCache
from tnoctl.exporter.collector import Known, TnoCollector
from tnoctl.exporter.worker import ProbeWorker
from tnoctl.probes.base import Probe
from tnoctl.state.store import Store


@dataclass
class Exporter:
    """Everything a running exporter holds."""

    registry: CollectorRegistry
    collector: TnoCollector
    store: Store
    cache: ProbeCache
    worker: ProbeWorker | None


def known_from_inventory(inventory: Any) -> dict[str, tuple[str, ...]]:
    """Tenant slug → services, from a loaded inventory."""
    return {t.slug: tuple(getattr(t, "services", ("mail", "office"))) for t in inventory.tenants}


def probe_view(inventory: Any) -> Any:
    """The inventory as the exporter's probes see it: hosts, platform, and the index rows as tenants.

    The probes need each tenant's slug, services, placement, domains and canary mailbox, all in the
    loader's rows (config.load.TenantRow): no tenant file is parsed and no mailbox list is held, so
    at 35,000 communes the exporter keeps one small row per tenant (issue 18: exporter <= 1 GB).
    """
    return SimpleNamespace(path=inventory.path, hosts=inventory.hosts, platform=inventory.platform,
                           tenants=inventory.rows)


def build(state_dir: Path, known: Callable[[], Known] | None = None,
          probes: Callable[[], list[Probe]] | None = None, interval: float = 60.0,
          parallelism: int = 16, clock: Callable[[], float] = time.time) -> Exporter:
    """Registry with the tnoctl collector; a (not yet started) worker when ``probes`` is given."""
    store = Store(state_dir)
    cache = ProbeCache()
    worker = ProbeWorker(probes, cache, interval, parallelism, clock) if probes is not None else None
    registry = CollectorRegistry(auto_describe=False)
    collector = TnoCollector(store, known, cache if worker else None, __version__, clock,
                             interval if worker else None)
    registry.register(collector)
    if worker is not None:
        worker.on_results = collector.prerender
    return Exporter(registry, collector, store, cache, worker)
