"""Benchmark of `tnoctl exporter`: scrape time and RSS for synthetic stores, and probe-latency independence.

Run: .venv/bin/python bench/exporter.py [--tenants 1000 10000] [--scrapes 5]
     .venv/bin/python bench/exporter.py --smoke     (20 tenants, one scrape each, a 0.5 s probe: seconds)

For each size it starts the exporter in a child process (so RSS is the exporter's own), over a
synthetic state store (2 components per tenant: backups, verifications, versions, upgrades,
drift; one operation per tenant) and scrapes it over HTTP on 127.0.0.1:
  cold    first scrape after start-up (store parsed before serving; measures the warm-up too)
  steady  median scrape with an unchanged store (cached per source)
  changed median scrape right after a batch run appended one record (that source re-rendered)
Then a background probe that takes 5 s: scrapes during the probe round return cached results.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tnoctl.state.store import (  # noqa: E402 - after the sys.path tweak (bench runs from a checkout)
    BackupResult,
    BackupVerification,
    DriftRecord,
    OperationRecord,
    Store,
    UpgradeRecord,
    VersionRecord,
)


def synth_store(state_dir: Path, tenants: int, now: float) -> None:
    """Write a store with ``tenants`` tenants directly as JSON lines (fast), as batch runs would."""
    lines: dict[str, list[str]] = {}
    for i in range(tenants):
        t = f"commune-{i:05d}"
        recs: list = [OperationRecord(t, "deploy", True, now - 60, 30.0)]
        for c in ("mail", "office"):
            recs += [BackupResult(t, c, True, now - 3600, 120.0, 10**9, 6 * 10**8, 10**8),
                     BackupVerification(t, c, True, now - 86400), VersionRecord(t, c, "24.04.6", "24.04.6", now),
                     UpgradeRecord(t, c, "succeeded", now - 7200, now - 7000, now - 7000),
                     DriftRecord(t, c, False, 0, now - 600)]
        for r in recs:
            lines.setdefault(r.KIND, []).append(json.dumps(asdict(r)))
    (state_dir / "store").mkdir(parents=True, exist_ok=True)
    for kind, body in lines.items():
        (state_dir / "store" / f"{kind}.jsonl").write_text("\n".join(body) + "\n")


SERVE = r"""
import sys, time, json, threading
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from tnoctl.exporter import app
from tnoctl.exporter.server import ExporterServer
from tnoctl.probes.base import Probe, ProbeResult
state, tenants, slow = Path(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
known = {f"commune-{i:05d}": ("mail", "office") for i in range(tenants)}
def slow_probe(timeout):
    time.sleep(slow)
    return ProbeResult("commune-00000", "office", "office_discovery", True, slow, "slow target")
probes = (lambda: [Probe("commune-00000", "office", "office_discovery", slow_probe, slow + 5)]) if slow else None
t0 = time.perf_counter()
exp = app.build(state, lambda: known, probes, interval=3600)
exp.collector.render()
warm = time.perf_counter() - t0
server = ExporterServer(exp.registry, "127.0.0.1", 0, None, exp.collector.render).start()
if exp.worker: exp.worker.start()
print(json.dumps({"port": server.port, "warmup": warm}), flush=True)
threading.Event().wait()
"""


def rss_kib(pid: int) -> int:
    """Resident set size of a process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def scrape(port: int) -> tuple[float, int]:
    """One full scrape over HTTP; (seconds, bytes)."""
    t = time.perf_counter()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=60) as resp:
        body = resp.read()
    return time.perf_counter() - t, len(body)


def start(state: Path, tenants: int, slow: float) -> tuple[subprocess.Popen, dict]:
    proc = subprocess.Popen([sys.executable, "-c", SERVE, str(ROOT), str(state), str(tenants), str(slow)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, json.loads(proc.stdout.readline())


def bench_size(tenants: int, scrapes: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp)
        now = time.time()
        synth_store(state, tenants, now)
        proc, info = start(state, tenants, 0)
        try:
            cold, size = scrape(info["port"])
            steady = statistics.median(scrape(info["port"])[0] for _ in range(scrapes))
            store = Store(state)
            changed = []
            for i in range(scrapes):
                store.record_backup(BackupResult(f"commune-{i:05d}", "mail", True, time.time(), 1.0, 1, 1, 1))
                changed.append(scrape(info["port"])[0])
            return {"tenants": tenants, "warmup_s": info["warmup"], "cold_s": cold, "steady_s": steady,
                    "changed_s": statistics.median(changed), "bytes": size, "rss_mib": rss_kib(proc.pid) / 1024}
        finally:
            proc.terminate()
            proc.wait()


def bench_slow_probe(slow: float) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp)
        synth_store(state, 100, time.time())
        proc, info = start(state, 100, slow)
        try:
            times = []
            end = time.monotonic() + slow
            while time.monotonic() < end:  # the worker's first round is running the 5 s probe now
                times.append(scrape(info["port"])[0])
            time.sleep(1.0)
            after, _ = scrape(info["port"])
            return {"probe_s": slow, "scrapes_during_probe": len(times), "max_scrape_during_s": max(times),
                    "scrape_after_s": after}
        finally:
            proc.terminate()
            proc.wait()


def main() -> None:
    """Print the figures side by side."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tenants", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--scrapes", type=int, default=5)
    ap.add_argument("--slow", type=float, default=5.0)
    ap.add_argument("--smoke", action="store_true", help="20 tenants, 1 scrape, a 0.5 s probe (seconds)")
    args = ap.parse_args()
    if args.smoke:
        args.tenants, args.scrapes, args.slow = [20], 1, 0.5
    rows = [bench_size(n, args.scrapes) for n in args.tenants]
    print(f"{'tenants':>8} {'warm-up s':>10} {'cold s':>8} {'steady s':>9} {'changed s':>10} {'MiB out':>8} "
          f"{'RSS MiB':>8}")
    for r in rows:
        print(f"{r['tenants']:>8} {r['warmup_s']:>10.2f} {r['cold_s']:>8.3f} {r['steady_s']:>9.3f} "
              f"{r['changed_s']:>10.3f} {r['bytes'] / 2**20:>8.1f} {r['rss_mib']:>8.0f}")
    s = bench_slow_probe(args.slow)
    print(f"\nprobe taking {s['probe_s']:.1f} s in the background: {s['scrapes_during_probe']} scrapes during it, "
          f"slowest {s['max_scrape_during_s'] * 1000:.1f} ms; after it {s['scrape_after_s'] * 1000:.1f} ms")
    print(f"(ratio slowest scrape / probe latency: {s['max_scrape_during_s'] / s['probe_s']:.4f})")
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
