"""Backup benchmark (issue 5): full vs incremental, raw borg vs tnoctl, extract vs drill.

Usage (root, against a deployed inventory whose backup machinery is set up):
    python bench/backup.py --inventory inventories/lab --tenant givors --mb 200
    python bench/backup.py --smoke     (lab inventory, its first mail tenant, 2 MiB: tests/e2e/test_bench_lab_smoke.py)

Steps: fill the tenant's first mailbox to --mb MiB of mail (random attachments, incompressible),
start from an empty repository (removed on the backup host, re-initialised by the agent's borgmatic),
time a full `tnoctl backup run --component mail`, an incremental one with no change, a raw
`borg create` of the same staging tree with the same options, a raw `borg extract` of the latest
archive and a `backup drill` (extract + manifest check). The agent's own figures split a run into
staging (doveadm backup + manifest) and borg create. Prints the figures and the ratios against the
issue's goals, then removes the bench messages and takes a normal backup (the tenant's earlier
archives are gone: the repository was re-created — never run this against production).
"""

from __future__ import annotations

import argparse
import io
import json
import time
from pathlib import Path

from tnoctl.backup import naming
from tnoctl.cli import main
from tnoctl.cli.context import AppContext

FILL = r"""
import base64, os, subprocess, sys
user, total = sys.argv[1], int(sys.argv[2]) << 20
done = i = 0
while done < total:
    att = base64.encodebytes(os.urandom(256 * 1024)).decode()
    msg = (f"From: bench@example.test\nTo: {user}\nSubject: bench {i}\nMIME-Version: 1.0\n"
           "Content-Type: multipart/mixed; boundary=B\n\n--B\nContent-Type: text/plain\n\nbench\n--B\n"
           "Content-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n" + att + "--B--\n")
    msg = "X-Tno-Bench: 1\n" + msg
    subprocess.run(["/usr/lib/dovecot/dovecot-lda", "-d", user, "-f", "bench@example.test"],
                   input=msg.encode(), check=True)
    done += len(msg); i += 1
print(i)
"""


def tnoctl(inventory: Path, *argv: str) -> tuple[int, float]:
    """Run a verb in-process; (rc, seconds)."""
    app = AppContext(inventory=inventory, stdout=io.StringIO(), stderr=io.StringIO())
    start = time.perf_counter()
    rc = main(["--inventory", str(inventory), *argv], app=app)
    return rc, time.perf_counter() - start


def timed(ssh, host: str, argv: list[str], data: bytes | None = None) -> float:
    """Seconds for one remote command (fails loudly on rc != 0)."""
    start = time.perf_counter()
    result = ssh.run_input(host, argv, data) if data is not None else ssh.run(host, argv, timeout=6 * 3600)
    if not result.ok:
        raise SystemExit(f"{host}: {argv[:3]} failed: {result.stderr[-400:]}")
    return time.perf_counter() - start


def main_bench() -> int:
    """Run the benchmark and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inventory", type=Path)
    parser.add_argument("--tenant")
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--smoke", action="store_true", help="lab inventory, first tenant with mail, 2 MiB")
    args = parser.parse_args()
    if args.smoke:
        from tnoctl import paths
        from tnoctl.config.load import load_inventory

        args.inventory = args.inventory or paths.LAB_INVENTORY
        args.tenant = args.tenant or next(t.slug for t in load_inventory(args.inventory).tenants
                                          if "mail" in t.services)
        args.mb = 2
    if args.inventory is None or args.tenant is None:
        parser.error("--inventory and --tenant are required (or --smoke)")
    from tnoctl.actions.backup import passphrase
    from tnoctl.actions.env import Env
    from tnoctl.backup.borg import borg_command
    from tnoctl.plan.backup import plan_targets

    env = Env.build(args.inventory, AppContext(inventory=args.inventory).state_dir, args.inventory / "vault-password")
    (target,) = plan_targets(env.inventory, [args.tenant])
    tenant = env.inventory.tenant(args.tenant)
    user = f"{tenant.mailboxes[0].local}@{tenant.mailboxes[0].domain or tenant.primary_domain}"
    mail, backup, slug = target.mail_host, target.backup_host, target.slug
    timed(env.ssh, mail, ["python3", "-c", FILL, user, str(args.mb)])
    timed(env.ssh, backup, ["rm", "-rf", target.repo])
    timed(env.ssh, mail, ["rm", "-rf", f"{naming.STAGING_ROOT}/{slug}", "/root/.cache/borg", "/root/.config/borg"])
    timed(env.ssh, mail, ["borgmatic", "--config", naming.borgmatic_config(slug), "init", "-e", "repokey-blake2"])
    mail_only = ["backup", "run", "--tenant", slug, "--component", "mail"]
    rc, full = tnoctl(args.inventory, *mail_only)
    full_agent = agent_figures(env.ssh, mail, slug)
    rc2, incr = tnoctl(args.inventory, *mail_only)
    incr_agent = agent_figures(env.ssh, mail, slug)
    assert rc == rc2 == 0, "backup run failed"
    borg_create = ["env", f"BORG_PASSCOMMAND=cat /etc/tno-backup/{slug}.passphrase",
                   f"BORG_RSH=ssh -i /etc/tno-backup/keys/{slug} -o IdentitiesOnly=yes -o BatchMode=yes "
                   "-o UserKnownHostsFile=/etc/tno-backup/known_hosts -o StrictHostKeyChecking=yes",
                   "borg", "create", "--compression", "zstd,3", "--one-file-system",
                   f"ssh://{naming.BACKUP_USER}@{env.inventory.hosts[backup].address}{target.repo}::raw-{{now}}",
                   f"{naming.STAGING_ROOT}/{slug}"]
    raw = timed(env.ssh, mail, borg_create)
    secret = passphrase(env, slug)
    timed(env.ssh, backup, ["rm", "-rf", "/var/tmp/tno-bench"])
    timed(env.ssh, backup, ["install", "-d", "-o", naming.BACKUP_USER, "/var/tmp/tno-bench"])
    argv, data = borg_command(secret, ["list", "--short", "--glob-archives", f"{slug}-*", target.repo])
    archives = env.ssh.run(backup, argv, timeout=3600, input=data).stdout.split()
    start = time.perf_counter()
    argv, data = borg_command(secret, ["extract", f"{target.repo}::{archives[-1]}"], cwd="/var/tmp/tno-bench")
    env.ssh.run(backup, argv, timeout=6 * 3600, input=data)
    extract = time.perf_counter() - start
    timed(env.ssh, backup, ["rm", "-rf", "/var/tmp/tno-bench"])
    tnoctl(args.inventory, "backup", "run", "--tenant", slug, "--component", "office")  # drill lists it too
    rc3, drill = tnoctl(args.inventory, "backup", "drill", "--tenant", slug)
    incr_create = incr_agent["duration_seconds"] - incr_agent["stage_seconds"]
    rows = [
        ("full backup (tnoctl backup run)", full, ""),
        ("  of which staging (doveadm + manifest)", full_agent["stage_seconds"], ""),
        ("incremental, no change (tnoctl)", incr, f"{incr / full:.1%} of full (goal <= 10%)"),
        ("  of which staging (doveadm + manifest)", incr_agent["stage_seconds"], ""),
        ("  of which borgmatic + borg create", incr_create, f"{incr_create / raw:.2f}x raw borg create"),
        ("raw borg create, same tree", raw, f"tnoctl incremental / raw = {incr / raw:.2f}x (goal <= 1.1x)"),
        ("raw borg extract, latest archive", extract, ""),
        ("backup drill (extract + manifest)", drill, f"{drill / extract:.2f}x raw extract (goal <= 2x); rc {rc3}"),
    ]
    print(f"tenant {slug}: {args.mb} MiB of mail added to {user}")
    for name, seconds, note in rows:
        print(f"{name:40s} {seconds:8.2f}s  {note}")
    version = timed(env.ssh, mail, ["borg", "--version"])
    print(f"{'borg --version (start-up, run by borgmatic)':40s} {version:8.2f}s")
    timed(env.ssh, mail, ["doveadm", "expunge", "-u", user, "mailbox", "*", "header", "X-Tno-Bench", "1"])
    rc4, _ = tnoctl(args.inventory, "backup", "run", "--tenant", slug)
    print(f"cleanup: bench messages expunged, fresh backup rc {rc4}")
    return 0


def agent_figures(ssh, host: str, slug: str) -> dict[str, float]:
    """The agent's last-run record on the mail host: total (borgmatic incl. staging hook) and staging."""
    state = json.loads(ssh.run(host, ["cat", f"/var/lib/tno-backup/state/{slug}.json"]).stdout)
    return {"duration_seconds": float(state["duration_seconds"]), "stage_seconds": float(state.get("stage_seconds", 0))}


if __name__ == "__main__":
    raise SystemExit(main_bench())
