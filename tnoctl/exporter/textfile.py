"""Write ``.prom`` files for node_exporter's textfile collector, atomically.

Batch verbs (backup, drift) run on hosts or the controller and leave their result where
node_exporter picks it up. Same contract as ``prometheus_client.write_to_textfile``: write
a temp file in the same directory, then ``rename`` it, so a scrape never sees half a file.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, write_to_textfile
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector


class _Static(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self.families)


def write_textfile(path: Path, families: Iterable[Metric]) -> None:
    """Render ``families`` in the text format and atomically replace ``path`` (mode 0644)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Static(list(families)))
    path.parent.mkdir(parents=True, exist_ok=True)
    write_to_textfile(str(path), registry)
    os.chmod(path, 0o644)


def backup_families(tenant: str, component: str, ok: bool, finished_at: float, duration: float) -> list[Metric]:
    """The families a backup batch run writes for node_exporter (same names as the exporter's)."""
    out = []
    for name, doc, value in (
        ("tnoctl_backup_last_run_timestamp_seconds", "End time of the last backup run.", finished_at),
        ("tnoctl_backup_last_run_success", "1 if the last backup run succeeded.", 1.0 if ok else 0.0),
        ("tnoctl_backup_last_run_duration_seconds", "Duration of the last backup run.", duration),
    ):
        family = GaugeMetricFamily(name, doc, labels=["tenant", "component"])
        family.add_metric([tenant, component], value)
        out.append(family)
    return out
