"""Benchmark of `tnoctl exporter`: scrape time and RSS for synthetic stores, and probe-latency independence.

Run: .venv/bin/python bench/exporter.py [--tenants 1000 10000] [--scrapes 5] [--scale 35000 [--inventory DIR]]
     .venv/bin/python bench/exporter.py --smoke     (20 tenants, one scrape each, a 0.5 s probe: seconds)

Scale section (issue 18; `--scale N`, default 35,000, 0 skips it): an inventory of N tenants written by
bench/gen_inventory.py with a canary mailbox per tenant and a vault naming every secret (the first
`--vault-tenants` tenants' values really encrypted), or an existing one (`--inventory DIR`, made with
`gen_inventory.py --canary --vault-tenants ...`). A child process loads it like `tnoctl exporter`
(inventory, vault reader told the canary names, state store with 2 components per tenant, probe cache
holding one full round run by the real worker over instant stand-ins of the round's probes), serves
it, and the parent prints each figure next to its goal:
  round build     building one probe round's targets (canary passwords are read when a probe runs)
  canary lookup   first lookup (one streaming read of vault.yml + one decrypt), then cached ones
  scrape steady / after a probe round / after a backup record   (HTTP, Accept-Encoding: gzip)
  memory          the exporter's RSS at the end
No network probe runs: the round's results are synthesised into the cache.

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
sys.path.insert(0, str(ROOT / "bench"))  # gen_inventory

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
    write_store(state_dir, [f"commune-{i:05d}" for i in range(tenants)], now)


def _records(t: str, now: float) -> list:
    """One tenant's records as batch runs leave them: one operation, 5 kinds x 2 components."""
    recs: list = [OperationRecord(t, "deploy", True, now - 60, 30.0)]
    for c in ("mail", "office"):
        recs += [BackupResult(t, c, True, now - 3600, 120.0, 10**9, 6 * 10**8, 10**8),
                 BackupVerification(t, c, True, now - 86400), VersionRecord(t, c, "24.04.6", "24.04.6", now),
                 UpgradeRecord(t, c, "succeeded", now - 7200, now - 7000, now - 7000),
                 DriftRecord(t, c, False, 0, now - 600)]
    return recs


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


SCALE = r"""
import sys, time, json, os
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from tnoctl.config.load import load_inventory
from tnoctl.exporter import app
from tnoctl.exporter.app import known_from_inventory
from tnoctl.exporter.server import ExporterServer
from tnoctl.exporter.vaultlookup import VaultLookup
from tnoctl.probes import wiring
from tnoctl.exporter.worker import ProbeWorker
from tnoctl.probes.base import Probe, ProbeResult
from tnoctl.probes.targets import ProbeOptions, canary
inv_dir, state = Path(sys.argv[2]), Path(sys.argv[3])
from tnoctl.errors import InvalidInput
t0 = time.perf_counter()
note = ""
password = inv_dir / "vault-password"
cache = state / "cache"  # the exporter loads through its Env: the cached loader of every verb
try:
    inv = load_inventory(inv_dir, password if password.exists() else None, cache_dir=cache)
except InvalidInput as exc:  # the loader caps vault.yml (config/vault.py MAX_BYTES): say so, load without it
    note = exc.message
    shadow = state / "inventory-without-vault"
    for src in [inv_dir / "hosts.yml", inv_dir / "tenants.tno.yml", inv_dir / "group_vars/all/platform.yml",
                *sorted((inv_dir / "tenants").glob("*.yml"))]:
        dest = shadow / src.relative_to(inv_dir)
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.link(src, dest)
    inv = load_inventory(shadow, None, cache_dir=cache)
load_s = time.perf_counter() - t0
t = time.perf_counter()
inv = load_inventory(inv.path, password if password.exists() and not note else None, cache_dir=cache)
warm_load_s = time.perf_counter() - t
rss_load = int(next(l.split()[1] for l in open("/proc/self/status") if l.startswith("VmRSS:")))
inv = app.probe_view(inv)  # what tnoctl exporter keeps: the index rows (canary included), no tenant model
known = known_from_inventory(inv)
secrets = VaultLookup(inv_dir, password)
names = [found[1] for t in inv.tenants if (found := canary(t)) is not None]
secrets.want(names)
opts = ProbeOptions(None, 10.0, False, inv.platform.tno_office_version)
def factory():
    return wiring.all_probes(inv, opts, None, secrets, None)
builds = []
for _ in range(3):
    t = time.perf_counter(); probes = factory(); builds.append(time.perf_counter() - t)
t = time.perf_counter(); secrets(names[0]); first = time.perf_counter() - t
t = time.perf_counter(); found = sum(secrets(name) is not None for name in names); all_cold = time.perf_counter() - t
t = time.perf_counter(); found += sum(secrets(name) is not None for name in names); all_warm = time.perf_counter() - t
exp = app.build(state, lambda: known, factory, interval=3600)
def instant(p):  # the round's real probe identities, answering at once (no network traffic)
    def body(timeout, p=p):
        values = {"not_after_timestamp_seconds": time.time() + 86400 * 60} if p.check != "office" else {}
        return ProbeResult(p.tenant, p.component, p.check, True, 0.05, "", 1.0, values)
    return Probe(p.tenant, p.component, p.check, body, p.timeout)
synthetic = [instant(p) for p in probes]
worker = ProbeWorker(lambda: synthetic, exp.cache, 3600, 16, on_results=exp.collector.prerender)
def round_():
    t = time.perf_counter(); worker.run_once(); return time.perf_counter() - t
round_s = round_()
t = time.perf_counter(); exp.collector.render_gzip(); warm_up = time.perf_counter() - t
server = ExporterServer(exp.registry, "127.0.0.1", 0, None, exp.collector.render, exp.collector.render_gzip).start()
print(json.dumps({"port": server.port, "load_s": load_s, "warm_load_s": warm_load_s, "note": note,
                  "rss_load_mib": rss_load / 1024,
                  "tenants": len(inv.tenants), "probes": len(probes),
                  "canaries": len(names), "build_s": sorted(builds)[1], "first_lookup_s": first,
                  "all_cold_s": all_cold, "all_warm_s": all_warm, "found": found,
                  "scans": secrets.scans, "decrypts": secrets.decrypts, "warmup_s": warm_up,
                  "round_s": round_s}), flush=True)
for line in sys.stdin:
    if line.strip() == "round":
        print(json.dumps({"round_s": round_()}), flush=True)
"""


def gzip_scrape(port: int, text: bool = False) -> tuple[float, int, int]:
    """One scrape as Prometheus does it (gzip accepted); (seconds, bytes on the wire, bytes of text if asked).

    The body is a stream of many gzip members: read it with GzipFile (linear), not gzip.decompress,
    which copies the rest of the stream once per member.
    """
    import gzip
    import io

    t = time.perf_counter()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/metrics", headers={"Accept-Encoding": "gzip"})
    with urllib.request.urlopen(req, timeout=120) as resp:
        body = resp.read()
    seconds = time.perf_counter() - t
    size = len(gzip.GzipFile(fileobj=io.BytesIO(body)).read()) if text else 0
    return seconds, len(body), size


def bench_scale(tenants: int, inventory: Path | None, vault_tenants: int, scrapes: int) -> dict:
    """The scale figures of issue 18 (see the module docstring)."""
    import gen_inventory

    with tempfile.TemporaryDirectory(prefix="tno-bench-exporter-") as tmp:
        if inventory is None:
            inventory = Path(tmp) / "inv"
            gen_inventory.generate(inventory, tenants, 1, vault_tenants, canary=True)
        state = Path(tmp) / "state"
        slugs = sorted(p.stem for p in (inventory / "tenants").glob("*.yml"))
        synth_store(state, 0, time.time())
        write_store(state, slugs, time.time())
        proc = subprocess.Popen([sys.executable, "-c", SCALE, str(ROOT), str(inventory), str(state)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert proc.stdin is not None and proc.stdout is not None
        try:
            info = json.loads(proc.stdout.readline())
            port = info["port"]
            first, wire, text = gzip_scrape(port, text=True)
            steady = statistics.median(gzip_scrape(port)[0] for _ in range(scrapes))
            after_round = []
            for _ in range(max(1, scrapes // 2)):
                proc.stdin.write("round\n")
                proc.stdin.flush()
                info["round_s"] = json.loads(proc.stdout.readline())["round_s"]
                after_round.append(gzip_scrape(port)[0])
            store = Store(state)
            after_backup = []
            for i in range(scrapes):
                store.record_backup(BackupResult(slugs[i % len(slugs)], "mail", True, time.time(), 1.0, 1, 1, 1))
                after_backup.append(gzip_scrape(port)[0])
            return {**info, "first_scrape_s": first, "wire_mib": wire / 2**20, "text_mib": text / 2**20,
                    "steady_s": steady, "after_round_s": max(after_round), "after_backup_s": max(after_backup),
                    "rss_mib": rss_kib(proc.pid) / 1024}
        finally:
            proc.kill()
            proc.wait()


def write_store(state: Path, slugs: list[str], now: float) -> None:
    """The synthetic store of :func:`synth_store`, for the given tenant names."""
    lines: dict[str, list[str]] = {}
    for t in slugs:
        for r in _records(t, now):
            lines.setdefault(r.KIND, []).append(json.dumps(asdict(r)))
    (state / "store").mkdir(parents=True, exist_ok=True)
    for kind, body in lines.items():
        (state / "store" / f"{kind}.jsonl").write_text("\n".join(body) + "\n")


def print_scale(r: dict) -> None:
    """Each figure next to its goal (issue 18)."""
    def row(label: str, value: str, goal: str, ok: bool) -> None:
        print(f"  {label:<34} {value:>12}   goal {goal:<10} {'meets' if ok else 'MISSES'}")

    print(f"\nscale: {r['tenants']} tenants, {r['probes']} probes per round, {r['canaries']} canaries "
          f"(inventory loaded in {r['load_s']:.1f} s cold, {r['warm_load_s']:.1f} s warm (a restart or SIGHUP); "
          f"start-up render + compress {r['warmup_s']:.1f} s)")
    if r["note"]:
        print(f"  note: inventory loaded without vault.yml (the loader says: {r['note']}); the exporter's "
              "vault reader reads the whole file")
    print(f"  exposition: {r['text_mib']:.1f} MiB of text, {r['wire_mib']:.1f} MiB gzip on the wire; "
          f"RSS after loading the inventory {r['rss_load_mib']:.0f} MiB")
    row("round build (one probe round)", f"{r['build_s']:.3f} s", "<= 1 s", r["build_s"] <= 1)
    row("canary lookup, first (read+decrypt)", f"{r['first_lookup_s']:.3f} s", "-", True)
    row("every canary, first time (decrypts)", f"{r['all_cold_s']:.3f} s", "-", True)
    row("every canary again (cached)", f"{r['all_warm_s']:.3f} s", "-", True)
    row("vault reads for all lookups", f"{r['scans']}", "1", r["scans"] == 1)
    row("values decrypted / canaries found", f"{r['decrypts']} / {r['found'] // 2}", "-", True)
    print(f"  a round of {r['probes']} instant probes through the worker took {r['round_s']:.1f} s "
          "(results rendered and compressed as they arrive)")
    row("scrape steady", f"{r['steady_s']:.3f} s", "<= 1 s", r["steady_s"] <= 1)
    row("scrape after a probe round", f"{r['after_round_s']:.3f} s", "<= 1 s", r["after_round_s"] <= 1)
    row("scrape after a backup record", f"{r['after_backup_s']:.3f} s", "<= 1 s", r["after_backup_s"] <= 1)
    row("exporter memory (RSS)", f"{r['rss_mib']:.0f} MiB", "<= 1024 MiB", r["rss_mib"] <= 1024)


def main() -> None:
    """Print the figures side by side."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tenants", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--scrapes", type=int, default=5)
    ap.add_argument("--slow", type=float, default=5.0)
    ap.add_argument("--scale", type=int, default=35000, metavar="N",
                    help="tenants of the scale section (issue 18 goals); 0 skips it")
    ap.add_argument("--inventory", type=Path, help="use this generated inventory (gen_inventory.py --canary)")
    ap.add_argument("--vault-tenants", type=int, default=100, metavar="N",
                    help="tenants whose vault values are really encrypted (see gen_inventory.py)")
    ap.add_argument("--smoke", action="store_true",
                    help="20 tenants, 1 scrape, a 0.5 s probe, a 30-tenant scale section (seconds)")
    args = ap.parse_args()
    if args.smoke:
        args.tenants, args.scrapes, args.slow, args.scale, args.vault_tenants = [20], 1, 0.5, 30, 3
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
    if args.scale or args.inventory:
        print_scale(bench_scale(args.scale, args.inventory, args.vault_tenants, max(args.scrapes, 2)))
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
