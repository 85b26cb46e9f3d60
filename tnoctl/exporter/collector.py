"""The custom collector: fresh metric families at every scrape from the state store and the probe cache.

Why a custom collector (client_python "custom collectors", DESIGN point 11): no global gauge
keeps a label set after a tenant is removed; each scrape reflects exactly the store and the
inventory. Each sub-collector is timed and isolated: if one fails, the others still come and
``tnoctl_collector_success{collector}`` says which failed.

Per-tenant families (backups, versions, upgrades, drift, operations, dns, probes; their rows are in
:mod:`tnoctl.exporter.tenantrows`) are rendered incrementally (:mod:`tnoctl.exporter.incremental`):
at each scrape only the tenants whose records or probe results changed since the previous one are
re-rendered, and a gzip scrape recompresses only their blocks (35,000 tenants: issue 18).

Naming: ``tnoctl_`` prefix, base units, ``_timestamp_seconds`` for times, ``_info`` for
labels-only series. Labels are tenant, component and check, plus a few bounded enums (queue,
kind, state, verb, version) — never a mailbox, user or document name.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from tnoctl.exporter.cache import ProbeCache
from tnoctl.exporter.feeds import ProbeFeed, StoreFeed
from tnoctl.exporter.incremental import Known, TenantTable, gzip_member, header, render_rows
from tnoctl.exporter.tenantrows import PROBE_SOURCE, STORE_SOURCES, TenantSource
from tnoctl.state import journal
from tnoctl.state.store import Store

__all__ = ["Known", "TnoCollector"]


@dataclass
class Fam:
    """A gauge family as plain rows: the small, non-tenant families and the registry path."""

    name: str
    doc: str
    labels: list[str]
    rows: list[tuple[tuple[str, ...], float]] = field(default_factory=list)

    def add(self, values: list[str], value: float) -> None:
        """Add one sample."""
        self.rows.append((tuple(values), float(value)))

    def to_metric(self) -> Metric:
        """As a prometheus_client family (for the registry, textfiles and tests)."""
        fam = GaugeMetricFamily(self.name, self.doc, labels=self.labels)
        for values, value in self.rows:
            fam.add_metric(list(values), value)
        return fam

    def to_text(self) -> str:
        """As text exposition format 0.0.4."""
        return header(self.name, self.doc) + render_rows(self.name, self.labels, self.rows)


def _g(name: str, doc: str, labels: list[str]) -> Fam:
    return Fam(name, doc, labels)


class TnoCollector(Collector):
    """Builds every ``tnoctl_*`` family at scrape time; per-tenant series incrementally."""

    def __init__(self, store: Store, known_tenants: Callable[[], Known] | None = None,
                 cache: ProbeCache | None = None, version: str = "0", clock: Callable[[], float] = time.time,
                 worker_interval: float | None = None) -> None:
        self.store, self.cache, self.version, self.clock = store, cache, version, clock
        self.known_tenants = known_tenants or (lambda: None)
        self.worker_interval = worker_interval
        sources: list[TenantSource] = list(STORE_SOURCES)
        feeds: dict[str, StoreFeed | ProbeFeed] = {s.name: StoreFeed(store, s.kinds) for s in STORE_SOURCES}
        if cache is not None:
            sources.append(PROBE_SOURCE)
            feeds["probes"] = ProbeFeed(cache)
        self.sources = {s.name: s for s in sources}
        self._feeds = feeds
        self.tables: dict[str, TenantTable] = {}
        self.order = [*(s.name for s in STORE_SOURCES), "rollouts", *(["probes"] if cache is not None else [])]
        self._lock = threading.RLock()  # concurrent scrapes: tables are updated and read under it

    def describe(self) -> Iterator[Metric]:
        """Nothing to pre-describe: families are built at scrape time (avoids a collect at registration)."""
        return iter(())

    # ------------------------------------------------------------------ scrape
    def _table(self, name: str, known: Known) -> TenantTable:
        """The source's table, with the tenants changed since the last scrape re-rendered.

        A new inventory view (another object) or a failure at the previous scrape: rebuilt whole.
        """
        feed = self._feeds[name]
        changed = feed.changes()
        table = self.tables.get(name)
        if table is None or table.known_ref is not known:
            table = TenantTable(self.sources[name])
            tenants = set(feed.tenants())
            if name == "backups" and known is not None:
                tenants |= set(known)  # expected but never backed up: rendered as zeros
            table.rebuild(tenants, feed.records, known)
            self.tables[name] = table
        elif changed:
            table.update(sorted(changed), feed.records, known)
        return table

    def prerender(self) -> None:
        """Render and compress the probe results that arrived since the last call (the worker calls it)."""
        if self.cache is None:
            return
        with self._lock:
            self._table("probes", self.known_tenants()).gzip_parts()

    def _clean(self, name: str) -> bool:
        kinds = self.sources[name].kinds if name in self.sources else ()
        return all(st.invalid_lines == 0 for kind, st in self.store.read_stats().items() if kind in kinds)

    def _scrape(self) -> tuple[list[TenantTable | list[Fam]], list[Fam]]:
        """Every source's table (or small families), isolated: one failure does not hide the others."""
        success = _g("tnoctl_collector_success",
                     "1 if the collector read its source without error at this scrape (0: failed, or invalid "
                     "records were skipped: see tnoctl_store_invalid_lines).", ["collector"])
        duration = _g("tnoctl_collector_duration_seconds", "Time spent in the collector at this scrape.",
                      ["collector"])
        try:
            known = self.known_tenants()
            inventory_ok = True
        except Exception:  # the inventory may be mid-edit: export unfiltered rather than nothing
            known, inventory_ok = None, False
        parts: list[TenantTable | list[Fam]] = []
        unknown: dict[str, int] = {}
        all_ok = inventory_ok
        with self._lock:
            for name in self.order:
                started = time.perf_counter()
                try:
                    if name == "rollouts":
                        parts.append(self._rollouts())
                        ok = True
                    else:
                        table = self._table(name, known)
                        parts.append(table)
                        if name == "probes":
                            parts.append(self._probe_worker())
                        unknown[name] = table.unknown_count()
                        ok = self._clean(name)
                except Exception:  # one broken source must not hide the others: rebuilt at the next scrape
                    self.tables.pop(name, None)
                    if name in self._feeds:
                        self._feeds[name] = self._new_feed(name)
                    ok = False
                all_ok = all_ok and ok
                success.add([name], 1.0 if ok else 0.0)
                duration.add([name], time.perf_counter() - started)
        success.add(["inventory"], 1.0 if inventory_ok else 0.0)
        up = _g("tnoctl_up", "1 if the state store is readable and every collector succeeded at this scrape.", [])
        up.add([], 1.0 if all_ok and self._store_readable() else 0.0)
        info = _g("tnoctl_build_info", "Version of tnoctl serving these metrics (value is always 1).", ["version"])
        info.add([self.version], 1.0)
        return parts, [success, duration, *self._store_health(unknown), up, info]

    def _new_feed(self, name: str) -> StoreFeed | ProbeFeed:
        if name == "probes":
            assert self.cache is not None
            return ProbeFeed(self.cache)
        return StoreFeed(self.store, self.sources[name].kinds)

    def collect(self) -> Iterator[Metric]:
        """prometheus_client entry point: every family as a Metric (used by the registry and textfiles)."""
        with self._lock:
            parts, own = self._scrape()
            families = [fam for part in parts for fam in (self._families(part) if isinstance(part, TenantTable)
                                                           else part)]
        for fam in [*families, *own]:
            yield fam.to_metric()

    def _families(self, table: TenantTable) -> list[Fam]:
        """A table's families as rows again (the registry path; the text path never builds them)."""
        known = table.known_ref if isinstance(table.known_ref, Mapping) else None
        fams = [Fam(name, doc, labels) for name, doc, labels in table.source.specs]
        feed = self._feeds[table.source.name]
        for tenant in table.tenants():
            rows = table.source.rows(tenant, feed.records(tenant), None if known is None else known.get(tenant))
            for fam, fam_rows in zip(fams, rows, strict=True):
                fam.rows.extend(fam_rows)
        return fams

    def render(self) -> str:
        """The same exposition as ``generate_latest`` on this collector; per-tenant lines cached."""
        with self._lock:
            parts, own = self._scrape()
            return "".join(p.text() if isinstance(p, TenantTable) else "".join(f.to_text() for f in p)
                           for p in [*parts, own])

    def render_gzip(self) -> bytes:
        """:meth:`render` as a gzip stream of members: unchanged (family, block) members are reused."""
        with self._lock:
            parts, own = self._scrape()
            out: list[bytes] = []
            for part in [*parts, own]:
                if isinstance(part, TenantTable):
                    out.extend(part.gzip_parts())
                else:
                    out.append(gzip_member("".join(f.to_text() for f in part)))
        return b"".join(out)

    def _store_readable(self) -> bool:
        d = self.store.dir
        return not d.exists() or os.access(d, os.R_OK | os.X_OK)

    def _store_health(self, unknown_counts: dict[str, int]) -> list[Fam]:
        records = _g("tnoctl_store_records", "Distinct keys (latest records) per kind in the state store.", ["kind"])
        invalid = _g("tnoctl_store_invalid_lines",
                     "Unreadable lines (truncated, garbage, wrong fields) skipped in the state store file.", ["kind"])
        unknown = _g("tnoctl_store_unknown_tenant_records",
                     "Latest records ignored because their tenant is not in the inventory.", ["kind"])
        for kind, st in sorted(self.store.read_stats().items()):
            records.add([kind], float(st.records))
            invalid.add([kind], float(st.invalid_lines))
            unknown.add([kind], float(unknown_counts.get(kind, 0)))
        return [records, invalid, unknown]

    def _rollouts(self) -> list[Fam]:
        """Host counts by state of the latest rollout of each component (tnoctl upgrade's journals)."""
        hosts = _g("tnoctl_upgrade_rollout_hosts", "Hosts of the latest rollout of the component, by state.",
                   ["component", "state"])
        started = _g("tnoctl_upgrade_rollout_started_timestamp_seconds", "Start of the latest rollout.",
                     ["component"])
        info = _g("tnoctl_upgrade_rollout_info", "Latest rollout of the component: target version and state.",
                  ["component", "to_version", "state"])
        invalid = _g("tnoctl_upgrade_rollout_journal_invalid_lines",
                     "Unreadable lines (torn, bad UTF-8, wrong fields) skipped in the latest rollout's journal.",
                     ["component"])
        for component, summary in sorted(journal.latest_rollouts(self.store.dir.parent).items()):
            for state, count in summary.hosts_by_state.items():
                hosts.add([component, state], float(count))
            started.add([component], summary.started_at)
            info.add([component, summary.to_version, summary.state], 1.0)
            invalid.add([component], float(summary.skipped_lines))
        return [hosts, started, info, invalid]

    def _probe_worker(self) -> list[Fam]:
        """The worker's own families (not per tenant)."""
        assert self.cache is not None
        worker = _g("tnoctl_probe_worker_last_round_timestamp_seconds",
                    "End time of the background worker's last complete round of probes.", [])
        if self.cache.last_round_at is not None:
            worker.add([], self.cache.last_round_at)
        families = [worker]
        if self.worker_interval is not None:
            interval = _g("tnoctl_probe_worker_interval_seconds", "Configured interval between probe rounds.", [])
            interval.add([], self.worker_interval)
            families.append(interval)
        return families
