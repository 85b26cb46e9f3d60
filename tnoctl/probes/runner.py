"""Run probes concurrently with bounded parallelism and a deadline per probe.

Why threads: probes are blocking socket/SSH I/O on a few hundred targets; bounded threads
give concurrency without an event loop in every probe module. A probe
that overruns its timeout is reported as failed at its deadline and its thread is left to
finish on its own (every probe also sets socket timeouts), so one slow host never delays
the results of the others. Results are yielded as they complete.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterable, Iterator

from tnoctl.probes.base import Probe, ProbeResult, short_error

DEFAULT_PARALLELISM = 16


def _safe(probe: Probe) -> list[ProbeResult]:
    started = time.monotonic()
    try:
        out = probe.run(probe.timeout)
        return out if isinstance(out, list) else [out]
    except Exception as exc:  # a probe bug is a failed check, not a crashed runner
        return probe.failed(short_error(exc), time.monotonic() - started)


def iter_probes(probes: Iterable[Probe], parallelism: int = DEFAULT_PARALLELISM,
                grace: float = 1.0) -> Iterator[ProbeResult]:
    """Yield one result per probe, in completion order; timed-out probes yield at their deadline.

    At most ``parallelism`` probes are in flight. A probe that overruns ``timeout + grace`` is
    reported failed and stops counting against the bound (its daemon thread ends when its own
    socket timeout fires), so a stalled host cannot starve the probes queued behind it.
    """
    queued = list(reversed(list(probes)))
    results: queue.Queue[tuple[int, list[ProbeResult]]] = queue.Queue()
    in_flight: dict[int, tuple[Probe, float, float]] = {}  # id -> (probe, started, deadline)
    seq = 0
    while queued or in_flight:
        while queued and len(in_flight) < max(1, parallelism):
            probe = queued.pop()
            seq += 1
            now = time.monotonic()
            in_flight[seq] = (probe, now, now + probe.timeout + grace)
            threading.Thread(target=lambda i=seq, p=probe: results.put((i, _safe(p))),
                             name=f"probe-{probe.check}", daemon=True).start()
        next_deadline = min(d for _, _, d in in_flight.values())
        try:
            ident, batch = results.get(timeout=max(0.0, next_deadline - time.monotonic()))
        except queue.Empty:
            pass
        else:
            if in_flight.pop(ident, None) is not None:  # a late answer after its timeout is dropped
                yield from batch
        now = time.monotonic()
        for ident in [i for i, (_, _, d) in in_flight.items() if d <= now]:
            probe, started, _ = in_flight.pop(ident)
            yield from probe.failed(f"timeout after {probe.timeout:g}s", now - started)


def run_probes(probes: Iterable[Probe], parallelism: int = DEFAULT_PARALLELISM) -> list[ProbeResult]:
    """Run every probe and return the results sorted by tenant, component, check."""
    results = list(iter_probes(probes, parallelism))
    return sorted(results, key=lambda r: (r.tenant, r.component, r.check))
