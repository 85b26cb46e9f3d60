"""Background probe worker: runs the app-level probes on an interval, filling :class:`ProbeCache`.

Why a thread and not probe-on-scrape: network probes that Prometheus should run on scrape
belong to blackbox_exporter; what tnoctl probes (canary login, office discovery, queues,
round trip) is slower and must not make a scrape wait (DESIGN point 11).

``on_results`` (the collector's :meth:`~tnoctl.exporter.collector.TnoCollector.prerender`) is called
about every second while results arrive and at the end of a round, so the changed tenants' lines are
rendered and compressed as the round goes, not all at the next scrape (35,000 tenants: issue 18).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from tnoctl.exporter.cache import Key, ProbeCache
from tnoctl.probes.base import Probe
from tnoctl.probes.runner import DEFAULT_PARALLELISM, iter_probes


class IntervalThread(threading.Thread):
    """A daemon thread calling :meth:`run_once` every ``interval`` seconds until :meth:`stop`."""

    def __init__(self, name: str, interval: float) -> None:
        super().__init__(name=name, daemon=True)
        self.interval = interval
        self.stop_event = threading.Event()
        self.rounds = 0
        self.last_error = ""

    def run_once(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def run(self) -> None:
        """Loop until :meth:`stop`; the interval counts from the start of each round."""
        while not self.stop_event.is_set():
            started = time.monotonic()
            self.run_once()
            self.stop_event.wait(max(0.0, self.interval - (time.monotonic() - started)))

    def stop(self) -> None:
        """Ask the loop to end (a round in progress stops at its next step)."""
        self.stop_event.set()


class ProbeWorker(IntervalThread):
    """Daemon thread: every ``interval`` seconds build the probe list and run it into the cache."""

    def __init__(self, factory: Callable[[], list[Probe]], cache: ProbeCache, interval: float = 60.0,
                 parallelism: int = DEFAULT_PARALLELISM, clock: Callable[[], float] = time.time,
                 on_results: Callable[[], None] | None = None, every: float = 1.0) -> None:
        super().__init__("tnoctl-probe-worker", interval)
        self.factory, self.cache = factory, cache
        self.parallelism, self.clock = parallelism, clock
        self.on_results, self.every = on_results, every

    def run_once(self) -> None:
        """One full round: every result goes to the cache as soon as it completes."""
        started = time.monotonic()
        try:
            probes = self.factory()
        except Exception as exc:  # an inventory error must not kill the worker; the round counts as failed
            self.last_error = f"{type(exc).__name__}: {exc}"[:200]
            return
        seen: set[Key] = set()
        notified = time.monotonic()
        for result in iter_probes(probes, self.parallelism):
            seen.add((result.tenant, result.component, result.check))
            self.cache.put(result, self.clock())
            if self.stop_event.is_set():
                return
            if self.on_results is not None and time.monotonic() - notified >= self.every:
                self._notify()
                notified = time.monotonic()
        self.cache.retain(seen)
        self.cache.finish_round(self.clock(), time.monotonic() - started)
        self.rounds += 1
        self._notify()

    def _notify(self) -> None:
        """Let the collector render what arrived (every ``every`` s and at the end of a round)."""
        if self.on_results is None:
            return
        try:
            self.on_results()
        except Exception as exc:  # rendering problems are the scrape's to report, not the worker's end
            self.last_error = f"{type(exc).__name__}: {exc}"[:200]


class PeriodicWorker(IntervalThread):
    """Daemon thread calling ``task()`` every ``interval`` seconds (the backup results pull).

    The task is injected by the CLI (the exporter never imports actions or SSH); an exception ends
    that round only, and is kept in :attr:`last_error` (and passed to ``on_error``).
    """

    def __init__(self, name: str, task: Callable[[], object], interval: float,
                 on_error: Callable[[str], None] | None = None) -> None:
        super().__init__(name, interval)
        self.task, self.on_error = task, on_error

    def run_once(self) -> None:
        """One call of the task; a failure is recorded, never raised."""
        try:
            self.task()
            self.last_error = ""
        except Exception as exc:  # a broken host or inventory must not kill the thread
            self.last_error = f"{type(exc).__name__}: {exc}"[:200]
            if self.on_error is not None:
                self.on_error(self.last_error)
        self.rounds += 1
