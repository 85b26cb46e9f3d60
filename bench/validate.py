#!/usr/bin/env python3
"""Time `tnoctl inventory validate` on a large synthetic inventory; print seconds and peak memory.

    bench/validate.py --tenants 35000            # generates bench/out/inv-35000 once, then measures
    bench/validate.py --tenants 3000 --vault-tenants 3000   # with a real vault (bench/out/inv-3000-v3000)
    bench/validate.py --smoke                    # 20 tenants (2 with a vault) in a temp dir, seconds

Each run is a fresh child process (`python -m tnoctl ... inventory validate`), so the figures are
what an operator sees: wall seconds and peak RSS (ru_maxrss of the children, worker processes
included as the max of any one of them). Runs: cold (no cache), warm (cache, nothing changed),
one-file-changed (cache, one tenant touched), copied cache (what a fresh clone with the state dir's
check cache copied in pays: read + hash of every file, no check). Goal: <= 2 s and <= 500 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tnoctl.config.index import NAME as INDEX_NAME  # noqa: E402
from tnoctl.config.scan import CACHE_NAME  # noqa: E402


def run(inv: Path, state: Path, workers: str) -> tuple[float, float, int]:
    """(seconds, peak MiB of the largest process, exit status) of one validate run.

    A wrapper process runs tnoctl so that its RUSAGE_CHILDREN covers exactly this run.
    """
    env = dict(os.environ, TNO_VALIDATE_WORKERS=workers)
    argv = [sys.executable, "-m", "tnoctl", "--inventory", str(inv), "--state-dir", str(state), "inventory",
            "validate"]
    wrapper = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
               "rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode; "
               "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, rc)")
    proc = subprocess.run([sys.executable, "-c", wrapper, *argv], cwd=ROOT, env=env, capture_output=True,
                          text=True, check=True)
    seconds, peak_kib, rc = proc.stdout.split()
    return float(seconds), int(peak_kib) / 1024, int(rc)


def main() -> int:
    """Generate if needed, then measure cold / warm / one-changed / copied-cache runs."""
    parser = argparse.ArgumentParser(description="time tnoctl inventory validate at scale")
    parser.add_argument("--tenants", type=int, default=35000)
    parser.add_argument("--vault-tenants", type=int, default=0, metavar="N",
                        help="generate a vault too (see bench/gen_inventory.py); default: no vault")
    parser.add_argument("--out", type=Path, default=None, help="inventory dir (default bench/out/inv-N[-vM])")
    parser.add_argument("--workers", default="", help="worker processes (default: every core)")
    parser.add_argument("--smoke", action="store_true", help="20 tenants, 2 with a vault, in a temp dir")
    args = parser.parse_args()
    if args.smoke:
        with tempfile.TemporaryDirectory(prefix="tno-bench-validate-") as tmp:
            return measure(Path(tmp) / "inv", 20, 2, args.workers)
    suffix = f"-v{args.vault_tenants}" if args.vault_tenants else ""
    return measure(args.out or ROOT / "bench" / "out" / f"inv-{args.tenants}{suffix}", args.tenants,
                   args.vault_tenants, args.workers)


def forget_stat_index(cache_dir: Path) -> None:
    """Make the state dir's cache what a fresh clone with a copied cache sees: check results kept, nothing
    keyed by the files' stat.

    A clone's files have other inodes and mtimes: the validated inventory index (index.py, keyed by the
    listing's stat) and the check cache's stat index match nothing there, so every file is read and hashed,
    and no file is checked again (the check results are keyed by path + content).
    """
    (cache_dir / INDEX_NAME).unlink(missing_ok=True)
    checks = cache_dir / CACHE_NAME
    doc = json.loads(checks.read_bytes())
    doc["index"] = {}
    checks.write_text(json.dumps(doc, separators=(",", ":")))


def measure(inv: Path, tenants: int, vault_tenants: int, workers: str) -> int:
    """Generate ``inv`` unless it exists, then print the four runs and the goal line; 1 if a run failed."""
    if not (inv / "hosts.yml").exists():
        subprocess.run([sys.executable, str(ROOT / "bench" / "gen_inventory.py"), "--tenants", str(tenants),
                        "--vault-tenants", str(vault_tenants), "--out", str(inv)], check=True)
    state = inv.parent / f"{inv.name}-state"
    shutil.rmtree(state, ignore_errors=True)
    files = sorted((inv / "tenants").glob("*.yml"))
    size = sum(f.stat().st_size for f in files) / 2**20
    vault = inv / "group_vars" / "all" / "vault.yml"
    vault_note = f", vault {vault.stat().st_size / 2**20:.0f} MiB" if vault.exists() else ", no vault"
    print(f"inventory {inv}: {len(files)} tenant files, {size:.0f} MiB of YAML{vault_note}, {os.cpu_count()} cores")
    results = []
    for label in ("cold (no cache)", "warm (cache hit)", "one tenant changed", "copied cache (clone)"):
        if label == "one tenant changed":
            os.utime(files[len(files) // 2])
        if label == "copied cache (clone)":
            forget_stat_index(state / "cache")
        seconds, peak, rc = run(inv, state, workers)
        results.append((label, seconds, peak, rc))
        print(f"{label:22} {seconds:7.2f} s   peak RSS {peak:7.0f} MiB   exit {rc}", flush=True)
    print("goal: <= 2 s and <= 500 MiB;", "warm run", "meets it" if results[1][1] <= 2 and results[1][2] <= 500
          else "MISSES it")
    return 0 if all(r[3] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
