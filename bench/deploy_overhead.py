#!/usr/bin/env python3
"""Benchmark: no-op converge of the deployed lab fleet, three ways, alternated in one run.

  A  `tnoctl deploy --yes`                       (the product: tuned Ansible + locks, audit, summary)
  B  raw `ansible-playbook` with tnoctl's tuned ansible.cfg (pipelining, ControlPersist, fact cache)
  C  raw `ansible-playbook` with Ansible's defaults (no pipelining, no fact cache, implicit gathering)

B and C run the same two playbooks `tnoctl deploy` runs: site.yml, then backup.yml (the backup setup).
AM and BM are A and B under the opt-in Mitogen strategy (TNO_ANSIBLE_STRATEGY=mitogen, tnoctl/run/strategy.py;
installed by `make install`): the ratios are printed for both strategies, and Ansible's linear one stays the
default. Each round also times `tnoctl plan` (P: the same selection in check + diff mode, what `plan` and `drift`
pay), which no ratio uses: issue 19 asks that it get faster in proportion with the converge.
`--fresh` first takes the lab down, brings it up with fresh disks and times the fresh deploy of the
fleet (packages installed, every file written), which then serves as the warm-up run.

Prints each run, the medians and the ratios A/B (tnoctl's own overhead; goal <= 1.05) and
C/B (tuning gain; goal >= 3, issue 19), then the remote module executions per host of the last A run, counted
from its job events (issue 19; goal <= 25 per host): one per task result or loop item that runs on the
host (controller-only actions such as set_fact, assert, meta, include_* are not counted), two for
`template`/`copy` (their action runs `stat`, then `copy` or `file`), one for `tno_files`.
Needs root and the lab up with the fleet deployed
(`make demo`). Usage: bench/deploy_overhead.py [--rounds 3] [--limit HOST] [--fresh]

`--smoke`: one round limited to the first office host (a light converge that still has both passes: the
smoke proves that the variants and the counting run, not their figures), without the warm-up run
(tests/e2e/test_bench_lab_smoke.py runs it on the session's fleet; its ratios are not the benchmark's).
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
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tnoctl import paths  # noqa: E402
from tnoctl.config.load import load_inventory  # noqa: E402
from tnoctl.errors import InvalidInput  # noqa: E402
from tnoctl.plan.deploy import backup_setup_calls  # noqa: E402
from tnoctl.run.ansible import write_ansible_cfg  # noqa: E402
from tnoctl.run.strategy import ENV as STRATEGY_ENV  # noqa: E402

VENV_BIN = Path(sys.executable).parent
INVENTORY = paths.LAB_INVENTORY
VAULT = INVENTORY / "vault-password"

DEFAULTS_CFG = """\
# Ansible defaults, plus only what is needed to find the roles, the tenant inventory plugin and the lab
[defaults]
roles_path = {roles}
inventory_plugins = {plugins}/inventory
action_plugins = {plugins}/action
library = {plugins}/modules
[inventory]
enable_plugins = tno_tenants, ansible.builtin.host_list, ansible.builtin.yaml, ansible.builtin.ini, ansible.builtin.auto
ignore_patterns = ^tenants$, ^vault$, ^vault-password$, ^README, ^\\.tno$
"""


CONTROLLER_ONLY = frozenset({
    "set_fact", "debug", "assert", "fail", "meta", "include_tasks", "import_tasks", "include_role",
    "import_role", "include_vars", "add_host", "group_by", "set_stats", "pause", "validate_argument_spec",
})
"""Actions that run on the controller only: no remote module execution."""
TWO_MODULES = frozenset({"template", "copy"})
"""Actions whose plugin runs two modules on the host (stat, then copy or file)."""
GOAL_EXECUTIONS = 25


def _short(action: str) -> str:
    for prefix in ("ansible.builtin.", "ansible.legacy.", "syndicat.tnoctl."):
        if action.startswith(prefix):
            return action[len(prefix):]
    return action


def module_executions(events_dir: Path) -> dict[str, int]:
    """Remote module executions per host in one run's job_events directory (see the module docstring)."""
    counts: dict[str, int] = {}
    for path in events_dir.glob("*.json"):
        event = json.loads(path.read_text())
        kind = event.get("event", "")
        data = event.get("event_data") or {}
        if kind not in ("runner_on_ok", "runner_on_failed", "runner_item_on_ok", "runner_item_on_failed"):
            continue
        if kind.startswith("runner_on_") and (data.get("res") or {}).get("results") is not None:
            continue  # a loop's summary: its items were counted
        action = _short(data.get("task_action") or "")
        if not action or action in CONTROLLER_ONLY:
            continue
        host = data.get("host", "?")
        counts[host] = counts.get(host, 0) + (2 if action in TWO_MODULES else 1)
    return dict(sorted(counts.items()))


def latest_events(state: Path, suffix: str) -> Path | None:
    """job_events of the newest run under ``state``/runs whose id ends with ``suffix`` (e.g. -apply0)."""
    runs = sorted(state.glob(f"runs/*{suffix}"), key=lambda p: p.stat().st_mtime)
    return runs[-1] / "artifacts" / "artifacts" / "job_events" if runs else None


def print_executions(state: Path) -> None:
    """The per-host module executions of the last `tnoctl deploy` (site.yml, then the backup setup)."""
    passes: dict[str, dict[str, int]] = {}
    for label, suffix in (("site.yml", "-apply0"), ("backup setup", "-backup0")):
        events = latest_events(state, suffix)
        if events is None or not events.is_dir():
            print(f"module executions ({label}): no job events found")
            continue
        passes[label] = module_executions(events)
    hosts = sorted({host for counts in passes.values() for host in counts})
    labels = list(passes)
    print(f"\nremote module executions per host, no-op converge (goal <= {GOAL_EXECUTIONS} per host, both passes):")
    print(f"  {'host':<12} " + " ".join(f"{label:>13}" for label in labels) + f" {'total':>6}")
    for host in hosts:
        per_pass = [passes[label].get(host, 0) for label in labels]
        verdict = "meets" if sum(per_pass) <= GOAL_EXECUTIONS else "MISSES"
        print(f"  {host:<12} " + " ".join(f"{n:13d}" for n in per_pass) + f" {sum(per_pass):6d}   {verdict}")
    print(f"  {'all hosts':<12} " + " ".join(f"{sum(passes[label].values()):13d}" for label in labels)
          + f" {sum(sum(c.values()) for c in passes.values()):6d}")


def first_host_of(group: str) -> str:
    """The first host of ``group`` in the lab inventory (the product's loader)."""
    return next(h.name for h in load_inventory(INVENTORY).hosts.values() if group in h.groups)


def playbook_passes(limit: str) -> list[list[str]]:
    """The ``ansible-playbook`` commands of the passes `tnoctl deploy` runs, with the same limits.

    site.yml, then the backup setup: its call (playbook, limit) is the product's own
    (tnoctl.plan.deploy.backup_setup_calls), so B and C run exactly the work A runs.
    """
    def command(playbook: str, hosts: tuple[str, ...]) -> list[str]:
        argv = [str(VENV_BIN / "ansible-playbook"), "-i", str(INVENTORY), str(paths.PLAYBOOKS_DIR / playbook),
                "-e", "tno_action=deploy", "--vault-password-file", str(VAULT)]
        return argv + (["--limit", ",".join(hosts)] if hosts else [])

    inventory = load_inventory(INVENTORY)
    hosts = [limit] if limit else list(inventory.hosts)
    passes = [command("site.yml", (limit,) if limit else ())]
    passes += [command(call.playbook, call.limit) for call in backup_setup_calls(inventory, hosts, bool(limit))]
    return passes


def _env(cfg: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(ANSIBLE_CONFIG=str(cfg), PATH=f"{VENV_BIN}:{env.get('PATH', '')}", LANG="C.UTF-8", LC_ALL="C.UTF-8")
    return env


def _timed(commands: list[list[str]], env: dict[str, str], cwd: Path) -> float:
    """Wall time of running ``commands`` one after the other; exits when one fails."""
    started = time.monotonic()
    for argv in commands:
        proc = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True)
        if proc.returncode != 0:
            sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
            raise SystemExit(f"command failed ({proc.returncode}): {' '.join(argv)}")
    return time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--limit", default="", help="one inventory host only (tnoctl --host / ansible --limit)")
    parser.add_argument("--smoke", action="store_true", help="one round on the first office host")
    parser.add_argument("--fresh", action="store_true",
                        help="lab down + up --fresh first, and time the fresh deploy (the warm-up run)")
    args = parser.parse_args()
    if args.fresh and (args.smoke or args.limit):
        parser.error("--fresh deploys the whole fleet: not with --smoke or --limit")
    if args.smoke:
        args.rounds, args.limit = 1, args.limit or first_host_of("office")
    work = Path(tempfile.mkdtemp(prefix="tno-bench-"))
    state = work / "state"
    (state / "facts").mkdir(parents=True)
    tuned_cfg = write_ansible_cfg(work, state)
    defaults_cfg = work / "defaults.cfg"
    defaults_cfg.write_text(
        DEFAULTS_CFG.format(roles=paths.ROLES_DIR, plugins=paths.PROJECT_ROOT / "plugins")
    )
    selection = ["--host", args.limit] if args.limit else []
    tnoctl = [str(VENV_BIN / "tnoctl"), "--state-dir", str(state), "deploy", "--yes", *selection]
    plan = [str(VENV_BIN / "tnoctl"), "--state-dir", str(state), "plan", "--exit-zero", *selection]
    playbook = playbook_passes(args.limit)
    variants = {
        "A tnoctl deploy": ([tnoctl], _env(tuned_cfg)),
        "B ansible tuned": (playbook, _env(tuned_cfg)),
        "C ansible defaults": (playbook, _env(defaults_cfg)),
    }
    try:
        (work / "mitogen").mkdir()
        mitogen_cfg = write_ansible_cfg(work / "mitogen", state, strategy="mitogen")
    except InvalidInput as exc:
        print(f"AM/BM not measured: {exc}", flush=True)
    else:
        variants["AM tnoctl, mitogen"] = ([tnoctl], {**_env(tuned_cfg), STRATEGY_ENV: "mitogen"})
        variants["BM tuned, mitogen"] = (playbook, _env(mitogen_cfg))
    # warm-up: fills the fact cache the tuned runs rely on (as in real use) and opens no stale masters;
    # the smoke run skips it (it proves the variants run, its figures are not the benchmark's)
    if args.fresh:
        lab = str(VENV_BIN / "tnoctl")
        _timed([[lab, "lab", "down"], [lab, "lab", "up", "--fresh"]], _env(tuned_cfg), ROOT)
        fresh = _timed([tnoctl], _env(tuned_cfg), ROOT)
        print(f"fresh deploy of the fleet ({len(load_inventory(INVENTORY).hosts)} hosts, tnoctl deploy) "
              f"{fresh:7.2f} s", flush=True)
    elif not args.smoke:
        _timed(playbook, _env(tuned_cfg), ROOT)
    times: dict[str, list[float]] = {name: [] for name in variants}
    for round_no in range(1, args.rounds + 1):
        for name, (argv, env) in variants.items():
            elapsed = _timed(argv, env, ROOT)
            times[name].append(elapsed)
            print(f"round {round_no}  {name:<20} {elapsed:7.2f} s", flush=True)
        elapsed = _timed([plan], _env(tuned_cfg), ROOT)
        times.setdefault("P tnoctl plan", []).append(elapsed)
        print(f"round {round_no}  {'P tnoctl plan':<20} {elapsed:7.2f} s  (check + diff; in no ratio)", flush=True)
    med = {name: statistics.median(values) for name, values in times.items()}
    print()
    for name, value in med.items():
        print(f"median  {name:<20} {value:7.2f} s")
    overhead = med["A tnoctl deploy"] / med["B ansible tuned"]
    gain = med["C ansible defaults"] / med["B ansible tuned"]
    print(f"\nratio A/B (tnoctl overhead over the same tuned run) = {overhead:.3f}   goal <= 1.05")
    print(f"ratio C/B (Ansible defaults over tuned)             = {gain:.2f}    goal >= 3")
    if "BM tuned, mitogen" in med:
        overhead_m = med["AM tnoctl, mitogen"] / med["BM tuned, mitogen"]
        gain_m = med["C ansible defaults"] / med["BM tuned, mitogen"]
        print(f"ratio AM/BM (tnoctl overhead, Mitogen strategy)     = {overhead_m:.3f}   goal <= 1.05")
        print(f"ratio C/BM (Ansible defaults over tuned + Mitogen)  = {gain_m:.2f}    goal >= 3")
    print_executions(state)
    return 0


if __name__ == "__main__":
    sys.exit(main())
