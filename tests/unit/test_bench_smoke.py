"""Benchmarks cannot rot (issue 20): every script under bench/ runs in its `--smoke` mode.

The offline ones run here, each in a subprocess (as `make bench` runs them), and must exit 0 and
print their figure lines. The lab ones run in tests/e2e/test_bench_lab_smoke.py against the session's
fleet; here they must at least import and offer `--smoke`. A new script under bench/ must be listed
in one of the two tables, so none can be forgotten.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"
NUM = r"\d+(?:\.\d+)?"

OFFLINE: dict[str, list[str]] = {
    "gen_inventory.py": [
        r"wrote 6 tenants \(\d+ mailboxes\) and 50 hosts into ",
        r"wrote vault: \d+ secrets \(\d+ encrypted one by one, 3 tenants\)",
        r"smoke: 6 tenants load and validate \(inline vault\); vault value decrypts: True",
        r"wrote split vault: \d+ secrets in 6 whole-file encrypted vault/<slug>\.yml",
        r"smoke: 6 tenants load and validate \(split vault\); vault value decrypts: True",
    ],
    "validate.py": [
        r"inventory .*: 20 tenant files, .*vault",
        *(rf"{label}\s+{NUM} s\s+peak RSS\s+{NUM} MiB\s+exit 0"
          for label in (r"cold \(no cache\)", r"warm \(cache hit\)", "one tenant changed",
                        r"copied cache \(clone\)")),
        r"goal: <= 2 s and <= 500 MiB; warm run (meets|MISSES) it",
    ],
    "scale.py": [
        r"inventory .*: 20 tenant files, vault",
        *(rf"{label}\s+{NUM}\s+{NUM}\s+{NUM}\s+.*exit 0"
          for label in ("cold validate", "warm validate", "tenant list", "tenant show", "monitoring targets",
                        r"plan start \(1 host\)")),
        r"warm validate .*<= 2 s, <= 500 MiB: (meets|MISSES)",
        r"plan start \(1 host\) .*<= 15 s, <= 1024 MiB: (meets|MISSES)",
        r"inventory .*: 20 tenant files, split vault: 20 vault/<slug>\.yml",
        *(rf"{label}\s+{NUM}\s+{NUM}\s+{NUM}\s+<= 15 s, <= 1024 MiB: (meets|MISSES).*exit 0"
          for label in ("ansible 1st task cold", "ansible 1st task")),
    ],
    "exporter.py": [
        r"tenants\s+warm-up s\s+cold s\s+steady s\s+changed s",
        rf"(?m)^\s+20\s+{NUM}\s+{NUM}\s+{NUM}\s+{NUM}\s+{NUM}\s+\d+$",
        rf"probe taking {NUM} s in the background: \d+ scrapes during it, slowest {NUM} ms",
        rf"ratio slowest scrape / probe latency: {NUM}",
        r"scale: 30 tenants, \d+ probes per round, 30 canaries",
        *(rf"{label}[^\n]*?\s{NUM} s\s+goal <= 1 s\s+(meets|MISSES)"
          for label in ("round build", "scrape steady", "scrape after a probe round", "scrape after a backup record")),
        r"vault reads for all lookups\s+1\s+goal 1\s+meets",
        rf"exporter memory \(RSS\)\s+{NUM} MiB\s+goal <= 1024 MiB",
    ],
}
# Run against the lab by tests/e2e/test_bench_lab_smoke.py (root, the session's fleet).
LAB = ("deploy_overhead.py", "probes.py", "backup.py", "upgrade.py")


def run(script: str, *argv: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(BENCH / script), *argv], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def test_every_bench_script_is_smoke_tested():
    scripts = {p.name for p in BENCH.glob("*.py")}
    assert scripts == set(OFFLINE) | set(LAB), "list the new bench script in OFFLINE or LAB (and give it --smoke)"


@pytest.mark.parametrize("script", sorted(OFFLINE))
def test_offline_bench_smoke(script):
    proc = run(script, "--smoke")
    assert proc.returncode == 0, (f"bench/{script} --smoke exited {proc.returncode}:\n{proc.stdout}\n"
                                  f"{proc.stderr[-3000:]}")
    for pattern in OFFLINE[script]:
        assert re.search(pattern, proc.stdout), f"bench/{script}: no line matching {pattern!r} in:\n{proc.stdout}"


@pytest.mark.parametrize("script", LAB)
def test_lab_bench_imports_and_has_smoke(script):
    proc = run(script, "--help", timeout=60)
    assert proc.returncode == 0, f"bench/{script} --help exited {proc.returncode}:\n{proc.stderr[-3000:]}"
    assert "--smoke" in proc.stdout
