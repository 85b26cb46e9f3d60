"""Benchmark of the probe runner on the lab: probes per second, bounded concurrency vs serial.

Run (lab up and deployed, under the lab lock):
  flock /run/tnoctl-e2e.lock .venv/bin/python bench/probes.py [--rounds 3] [--parallelism 16] [--no-queue]
  --smoke: one round per mode (tests/e2e/test_bench_lab_smoke.py runs it on the session's fleet)

The same probe set as `tnoctl status` (SMTP, submission, IMAP/IMAPS, canary login, HTTPS, office
capabilities/discovery, mail queue over SSH, backup freshness) over the lab inventory is run
``--rounds`` times with parallelism 1 (serial) and ``--parallelism`` (default: the runner's), the
two modes alternating so that both see the same lab. Printed side by side: wall time per round,
probes per second, the slowest single probe (the floor of a parallel round), failed results (both
modes must agree, else the comparison is meaningless; backup freshness fails by design against the
empty state store of the run), and the ratio parallel/serial.
"""

from __future__ import annotations

import argparse
import collections
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tnoctl import paths  # noqa: E402 - after the sys.path tweak (bench runs from a checkout)
from tnoctl.config.load import load_inventory  # noqa: E402
from tnoctl.probes import wiring  # noqa: E402
from tnoctl.probes.runner import DEFAULT_PARALLELISM, run_probes  # noqa: E402
from tnoctl.probes.targets import ProbeOptions  # noqa: E402
from tnoctl.state.store import Store  # noqa: E402


def probe_set(inventory_dir: Path, state_dir: Path, timeout: float, queues: bool) -> list:
    """The probes `tnoctl status` would run over the whole inventory (no round trip: it sends mail)."""
    vault = inventory_dir / "vault-password"
    inv = load_inventory(inventory_dir, vault)
    opts = ProbeOptions(wiring.default_ca_file(inventory_dir), timeout, False, inv.platform.tno_office_version)
    return wiring.all_probes(inv, opts, None, wiring.secret_lookup(inventory_dir, vault),
                             wiring.ssh_runner(inv) if queues else None, Store(state_dir))


def one_round(probes: list, parallelism: int) -> tuple[float, int, float, collections.Counter]:
    """Run the set once; (wall seconds, failed results, slowest single result s, failed checks by name)."""
    t = time.perf_counter()
    results = run_probes(probes, parallelism)
    failed = collections.Counter(r.check for r in results if not r.ok)
    return (time.perf_counter() - t, sum(failed.values()), max(r.latency_seconds for r in results), failed)


def main() -> None:
    """Alternate serial and parallel rounds, print the medians side by side and the ratio."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--parallelism", type=int, default=DEFAULT_PARALLELISM)
    ap.add_argument("--timeout", type=float, default=10.0, help="per-probe timeout, seconds")
    ap.add_argument("--no-queue", action="store_true", help="skip the queue probes (SSH)")
    ap.add_argument("--inventory", type=Path, default=paths.LAB_INVENTORY)
    ap.add_argument("--smoke", action="store_true", help="one round per mode")
    args = ap.parse_args()
    if args.smoke:
        args.rounds = 1
    with tempfile.TemporaryDirectory() as state:
        probes = probe_set(args.inventory, Path(state), args.timeout, not args.no_queue)
        modes = {"serial": 1, f"parallel ({args.parallelism})": args.parallelism}
        runs: dict[str, list[tuple[float, int, float, collections.Counter]]] = {m: [] for m in modes}
        one_round(probes, args.parallelism)  # warm-up: SSH control masters, TLS session setup, page cache
        for _ in range(args.rounds):
            for mode, par in modes.items():
                runs[mode].append(one_round(probes, par))
    print(f"{len(probes)} probes per round, {args.rounds} rounds per mode (median)")
    print(f"{'mode':<16} {'round s':>8} {'probes/s':>9} {'slowest probe s':>16} {'failed results':>15}")
    rate: dict[str, float] = {}
    for mode, rows in runs.items():
        wall = statistics.median(row[0] for row in rows)
        rate[mode] = len(probes) / wall
        slowest = statistics.median(row[2] for row in rows)
        print(f"{mode:<16} {wall:>8.2f} {rate[mode]:>9.1f} {slowest:>16.2f} {max(row[1] for row in rows):>15}")
    failed = sum((row[3] for rows in runs.values() for row in rows), collections.Counter())
    if failed:  # e.g. backup freshness against this run's empty state store
        print("failed checks (all rounds):", ", ".join(f"{k}×{v}" for k, v in sorted(failed.items())))
    serial, parallel = rate.values()
    print(f"ratio parallel/serial: {parallel / serial:.1f}x (a round cannot be shorter than its slowest probe)")


if __name__ == "__main__":
    main()
