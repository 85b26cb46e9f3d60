"""Wire the exporter from the CLI's context: store, inventory view, probe worker, registry.

Kept out of ``tnoctl/cli/exporter.py`` so the bench and tests build the same thing in-process.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
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
    """The inventory as the exporter keeps it: every tenant with its canary mailbox only.

    The probes need each tenant's slug, services, placement, domains and canary; at 35,000 communes
    the other 1.8 M mailboxes are most of a loaded inventory's memory (issue 18: exporter <= 1 GB).
    """
    from dataclasses import replace

    from tnoctl.probes.targets import CANARY_LOCAL

    tenants = [t.model_copy(update={"mailboxes": [m for m in t.mailboxes if m.local == CANARY_LOCAL]})
               for t in inventory.tenants]
    view = replace(inventory, _models={})
    view.__dict__["tenants"] = tenants  # replaced models are the truth for Inventory.tenant()/.tenants
    return view


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
