"""The custom collector: fresh metric families at every scrape from the state store and the probe cache.

Why a custom collector (client_python "custom collectors", DESIGN point 11): no global gauge
keeps a label set after a tenant is removed; each scrape reflects exactly the store and the
inventory. Each sub-collector is timed and isolated: if one fails, the others still come and
``tnoctl_collector_success{collector}`` says which failed.

Naming: ``tnoctl_`` prefix, base units, ``_timestamp_seconds`` for times, ``_info`` for
labels-only series. Labels are tenant, component and check, plus a few bounded enums (queue,
kind, state, verb, version) — never a mailbox, user or document name.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from tnoctl.exporter.cache import ProbeCache
from tnoctl.probes.base import is_host_key_mismatch
from tnoctl.state import journal
from tnoctl.state.store import Store

TC = ["tenant", "component"]
TCC = ["tenant", "component", "check"]
CACHED = " Cached: measured by the background probe worker, see tnoctl_probe_last_run_timestamp_seconds."
Known = Mapping[str, tuple[str, ...]] | None
"""Known tenants → their services (from the inventory), or None when no inventory is available."""
STORE_KINDS: dict[str, tuple[str, ...]] = {
    "backups": ("backups", "verifications"),
    "versions": ("versions",),
    "upgrades": ("upgrades",),
    "drift": ("drift",),
    "operations": ("operations",),
}


def _fmt(value: float) -> str:
    """A sample value in the text format (``repr`` is exact and fast; Go spellings for inf/nan)."""
    if math.isfinite(value):
        return repr(value)
    return "NaN" if math.isnan(value) else ("+Inf" if value > 0 else "-Inf")


def _esc(value: str) -> str:
    if "\\" in value or '"' in value or "\n" in value:
        return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
    return value


@dataclass
class Fam:
    """A gauge family as plain rows: cheap to build, rendered either way (registry or fast text)."""

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

    def to_text(self, memo: dict[tuple[str, ...], dict[tuple[str, ...], str]] | None = None) -> str:
        """As text exposition format 0.0.4, without per-sample objects (the 10,000-tenant path).

        ``memo`` caches the rendered label set per (label names, values): the families of one
        source share their (tenant, component) label sets, so each is formatted once per render.
        """
        doc = self.doc.replace("\\", "\\\\").replace("\n", "\\n")
        head = f"# HELP {self.name} {doc}\n# TYPE {self.name} gauge\n"
        name, labels = self.name, tuple(self.labels)
        if not labels:
            return head + "".join(f"{name} {_fmt(v)}\n" for _, v in self.rows)
        sets = (memo if memo is not None else {}).setdefault(labels, {})
        parts = [head]
        append = parts.append
        for values, v in self.rows:
            inner = sets.get(values)
            if inner is None:
                inner = sets[values] = ",".join([f'{k}="{_esc(x)}"' for k, x in zip(labels, values, strict=True)])
            text = repr(v)
            append(f"{name}{{{inner}}} {_SPECIAL.get(text, text)}\n")
        return "".join(parts)


_SPECIAL = {"inf": "+Inf", "-inf": "-Inf", "nan": "NaN"}


def _g(name: str, doc: str, labels: list[str]) -> Fam:
    return Fam(name, doc, labels)


class _Filter:
    """Drops records of tenants absent from the inventory, counting them per kind."""

    def __init__(self, known: Known) -> None:
        self.known = known
        self.unknown: dict[str, int] = {}

    def keep(self, kind: str, tenant: str) -> bool:
        if self.known is None or tenant in self.known:
            return True
        self.unknown[kind] = self.unknown.get(kind, 0) + 1
        return False

    def has_component(self, tenant: str, component: str) -> bool:
        """False for a component the (known) tenant does not have: a mail-only tenant has no office backup."""
        return self.known is None or component in self.known.get(tenant, ())


@dataclass
class _Part:
    """The output of one sub-collector, kept until its source changes."""

    key: Any
    fams: list[Fam]
    unknown: dict[str, int]
    clean: bool
    text: str | None = None
    known_ref: Any = None  # keeps the keyed object alive so its id() cannot be reused


class TnoCollector(Collector):
    """Builds every ``tnoctl_*`` family at scrape time."""

    def __init__(self, store: Store, known_tenants: Callable[[], Known] | None = None,
                 cache: ProbeCache | None = None, version: str = "0", clock: Callable[[], float] = time.time,
                 worker_interval: float | None = None) -> None:
        self.store, self.cache, self.version, self.clock = store, cache, version, clock
        self.known_tenants = known_tenants or (lambda: None)
        self.worker_interval = worker_interval
        self.subcollectors: dict[str, Callable[[_Filter], list[Fam]]] = {
            "backups": self._backups,
            "versions": self._versions,
            "upgrades": self._upgrades,
            "drift": self._drift,
            "operations": self._operations,
            "rollouts": self._rollouts,
        }
        if cache is not None:
            self.subcollectors["probes"] = self._probes
        self._parts: dict[str, _Part] = {}
        self._lock = threading.Lock()

    def describe(self) -> Iterator[Metric]:
        """Nothing to pre-describe: families are built at scrape time (avoids a collect at registration)."""
        return iter(())

    # ------------------------------------------------------------------ scrape
    def _key(self, name: str) -> Any:
        if name == "probes":
            assert self.cache is not None
            return ("probes", self.cache.generation)
        if name == "rollouts":
            return ("rollouts", journal.generation(self.store.dir.parent))
        return self.store.generation(*STORE_KINDS[name])

    def _part(self, name: str, known: Known, need_text: bool, memo: dict | None = None) -> _Part:
        """The sub-collector's families, rebuilt only when its source or the inventory changed."""
        key = (self._key(name), id(known))
        part = self._parts.get(name)
        if part is None or part.key != key:
            filt = _Filter(known)
            fams = self.subcollectors[name](filt)
            clean = all(st.invalid_lines == 0 for kind, st in self.store.read_stats().items()
                        if kind in STORE_KINDS.get(name, ()))
            part = _Part(key, fams, filt.unknown, clean, known_ref=known)
            self._parts[name] = part
        if need_text and part.text is None:
            part.text = "".join(f.to_text(memo) for f in part.fams)
        return part

    def _scrape(self, need_text: bool) -> tuple[list[_Part], list[Fam]]:
        """Every sub-collector's part (isolated: one failure does not hide the others) + self-metrics."""
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
        parts: list[_Part] = []
        unknown: dict[str, int] = {}
        all_ok = inventory_ok
        memo: dict = {}
        with self._lock:
            for name in self.subcollectors:
                started = time.perf_counter()
                try:
                    part = self._part(name, known, need_text, memo)
                    parts.append(part)
                    ok = part.clean
                    for kind, count in part.unknown.items():
                        unknown[kind] = unknown.get(kind, 0) + count
                except Exception:  # one broken source must not hide the others
                    self._parts.pop(name, None)
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

    def collect(self) -> Iterator[Metric]:
        """prometheus_client entry point: every family as a Metric (used by the registry and textfiles)."""
        parts, own = self._scrape(need_text=False)
        for part in parts:
            for fam in part.fams:
                yield fam.to_metric()
        for fam in own:
            yield fam.to_metric()

    def render(self) -> str:
        """The same exposition as ``generate_latest`` on this collector, fast and cached per source."""
        parts, own = self._scrape(need_text=True)
        return "".join(p.text or "" for p in parts) + "".join(f.to_text() for f in own)

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

    # ------------------------------------------------------------------ store kinds
    def _backups(self, filt: _Filter) -> list[Fam]:
        last_ok = _g("tnoctl_backup_last_success_timestamp_seconds",
                     "End time of the last successful backup (0: none recorded).", TC)
        last_fail = _g("tnoctl_backup_last_failure_timestamp_seconds", "End time of the last failed backup.", TC)
        failed = _g("tnoctl_backup_last_failed", "1 if the most recent backup attempt failed.", TC)
        verified = _g("tnoctl_backup_last_verified_timestamp_seconds",
                      "Time of the last successful verification of the backup (0: never).", TC)
        check_failed = _g("tnoctl_backup_last_verification_failed",
                          "1 if the most recent verification (drill, verify) failed.", TC)
        dur = _g("tnoctl_backup_duration_seconds", "Duration of the last successful backup.", TC)
        size = _g("tnoctl_backup_size_bytes",
                  "Size of the last successful backup archive (original, compressed, deduplicated).", [*TC, "kind"])
        statuses = self.store.latest_backups()
        seen = set()
        for (tenant, component), st in sorted(statuses.items()):
            if not filt.keep("backups", tenant) or not filt.has_component(tenant, component):
                continue  # a stale record of a service the tenant no longer has must not alert
            seen.add((tenant, component))
            lbl = [tenant, component]
            last_ok.add(lbl, st.last_success.finished_at if st.last_success else 0.0)
            failed.add(lbl, 1.0 if st.last_failed else 0.0)
            verified.add(lbl, st.last_verified_at or 0.0)
            check_failed.add(lbl, 1.0 if st.last_verification_failed else 0.0)
            if st.last_failure is not None:
                last_fail.add(lbl, st.last_failure.finished_at)
            if st.last_success is not None:
                dur.add(lbl, st.last_success.duration_seconds)
                for kind in ("original", "compressed", "deduplicated"):
                    value = getattr(st.last_success, f"{kind}_bytes")
                    if value is not None:
                        size.add([*lbl, kind], float(value))
        for tenant, services in sorted((filt.known or {}).items()):
            for component in services:
                if (tenant, component) not in seen:  # expected but never backed up: make the alert fire
                    last_ok.add([tenant, component], 0.0)
                    failed.add([tenant, component], 0.0)
                    verified.add([tenant, component], 0.0)
                    check_failed.add([tenant, component], 0.0)
        return [last_ok, last_fail, failed, verified, check_failed, dur, size]

    def _versions(self, filt: _Filter) -> list[Fam]:
        info = _g("tnoctl_component_version_info", "Version deployed on a tenant's component and the pinned one.",
                  [*TC, "version", "pinned"])
        match = _g("tnoctl_component_version_matches_pin", "1 if the deployed version equals the pinned one.", TC)
        for (tenant, component), rec in sorted(self.store.latest_versions().items()):
            if filt.keep("versions", tenant):
                info.add([tenant, component, rec.deployed, rec.pinned], 1.0)
                match.add([tenant, component], 1.0 if rec.deployed == rec.pinned else 0.0)
        return [info, match]

    def _upgrades(self, filt: _Filter) -> list[Fam]:
        running = _g("tnoctl_upgrade_in_progress", "1 while an upgrade of the tenant's component is running.", TC)
        state = _g("tnoctl_upgrade_state", "Current upgrade state (the series with value 1 names it).",
                   [*TC, "state"])
        started = _g("tnoctl_upgrade_started_timestamp_seconds", "Start time of the latest upgrade.", TC)
        success = _g("tnoctl_upgrade_last_success_timestamp_seconds", "End time of the last successful upgrade.", TC)
        for (tenant, component), rec in sorted(self.store.latest_upgrades().items()):
            if not filt.keep("upgrades", tenant):
                continue
            lbl = [tenant, component]
            running.add(lbl, 1.0 if rec.state == "running" else 0.0)
            state.add([*lbl, rec.state], 1.0)
            started.add(lbl, rec.started_at)
            if rec.last_success_at is not None:
                success.add(lbl, rec.last_success_at)
        return [running, state, started, success]

    def _rollouts(self, _filt: _Filter) -> list[Fam]:
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

    def _drift(self, filt: _Filter) -> list[Fam]:
        drift = _g("tnoctl_config_drift", "1 if the last check-mode run found changes (configuration drift).", TC)
        changed = _g("tnoctl_config_drift_changed_tasks", "Tasks that would change, at the last drift check.", TC)
        checked = _g("tnoctl_config_drift_last_check_timestamp_seconds", "Time of the last drift check.", TC)
        for (tenant, component), rec in sorted(self.store.latest_drift().items()):
            if filt.keep("drift", tenant):
                drift.add([tenant, component], 1.0 if rec.drift else 0.0)
                changed.add([tenant, component], float(rec.changed_tasks))
                checked.add([tenant, component], rec.checked_at)
        return [drift, changed, checked]

    def _operations(self, filt: _Filter) -> list[Fam]:
        ok = _g("tnoctl_operation_last_success", "1 if the last run of the verb on the tenant succeeded.",
                ["tenant", "verb"])
        when = _g("tnoctl_operation_last_timestamp_seconds", "End time of the last run of the verb on the tenant.",
                  ["tenant", "verb"])
        dur = _g("tnoctl_operation_last_duration_seconds", "Duration of the last run of the verb on the tenant.",
                 ["tenant", "verb"])
        for (tenant, verb), rec in sorted(self.store.latest_operations().items()):
            if filt.keep("operations", tenant):
                ok.add([tenant, verb], 1.0 if rec.ok else 0.0)
                when.add([tenant, verb], rec.finished_at)
                dur.add([tenant, verb], rec.duration_seconds)
        return [ok, when, dur]

    # ------------------------------------------------------------------ cached probes
    def _probes(self, filt: _Filter) -> list[Fam]:
        assert self.cache is not None
        success = _g("tnoctl_probe_success", "1 if the app-level check passed." + CACHED, TCC)
        duration = _g("tnoctl_probe_duration_seconds", "Duration of the app-level check." + CACHED, TCC)
        last_run = _g("tnoctl_probe_last_run_timestamp_seconds",
                      "When the background worker last ran this check (the probe values are cached).", TCC)
        cert = _g("tnoctl_tls_certificate_expiry_timestamp_seconds",
                  "notAfter of the certificate served for the tenant's name." + CACHED, TCC)
        queue_msgs = _g("tnoctl_mail_queue_messages", "Messages in the Postfix queue, by sender's tenant." + CACHED,
                        ["tenant", "queue"])
        queue_age = _g("tnoctl_mail_queue_oldest_age_seconds",
                       "Age of the oldest message in the Postfix queue, by sender's tenant." + CACHED,
                       ["tenant", "queue"])
        roundtrip = _g("tnoctl_mail_roundtrip_seconds",
                       "Submission to visible-in-INBOX latency of the canary message." + CACHED, ["tenant"])
        mismatch = _g("tnoctl_probe_host_key_mismatch",
                      "1 if the check's host presented another SSH host key (possible man-in-the-middle)." + CACHED,
                      TCC)
        families: list[Fam] = [success, duration, last_run, cert, queue_msgs, queue_age, roundtrip, mismatch]
        for cached in self.cache.snapshot():
            r = cached.result
            if not filt.keep("probes", r.tenant):
                continue
            lbl = [r.tenant, r.component, r.check]
            success.add(lbl, 1.0 if r.ok else 0.0)
            mismatch.add(lbl, 1.0 if not r.ok and is_host_key_mismatch(r.detail) else 0.0)
            duration.add(lbl, r.latency_seconds)
            last_run.add(lbl, cached.ran_at)
            if "not_after_timestamp_seconds" in r.values:
                cert.add(lbl, r.values["not_after_timestamp_seconds"])
            if r.check == "queue":
                for key, value in sorted(r.values.items()):
                    what, _, queue = key.partition(".")
                    target = queue_msgs if what == "messages" else queue_age if what == "oldest_age_seconds" else None
                    if target is not None:
                        target.add([r.tenant, queue], value)
            if r.check == "roundtrip" and r.ok and r.value is not None:
                roundtrip.add([r.tenant], r.value)
        worker = _g("tnoctl_probe_worker_last_round_timestamp_seconds",
                    "End time of the background worker's last complete round of probes.", [])
        if self.cache.last_round_at is not None:
            worker.add([], self.cache.last_round_at)
        families.append(worker)
        if self.worker_interval is not None:
            interval = _g("tnoctl_probe_worker_interval_seconds", "Configured interval between probe rounds.", [])
            interval.add([], self.worker_interval)
            families.append(interval)
        return families
