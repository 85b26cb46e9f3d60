"""Backup benchmark (issue 5): full vs incremental, raw borg vs tnoctl, extract vs drill.

Usage (root, against a deployed inventory whose backup machinery is set up):
    python bench/backup.py --inventory inventories/lab --tenant givors --mb 200
    python bench/backup.py --smoke     (lab inventory, its first mail tenant, 2 MiB: tests/e2e/test_bench_lab_smoke.py)
    python bench/backup.py --rto [--tenant feyzin] [--warm] [--mb N]   (lab: disaster recovery time, below)

Steps: fill the tenant's first mailbox to --mb MiB of mail (random attachments, incompressible),
start from an empty repository (removed on the backup host, re-initialised by the agent's borgmatic),
time a full `tnoctl backup run --component mail`, an incremental one with no change, a raw
`borg create` of the same staging tree with the same options, a raw `borg extract` of the latest
archive and a `backup drill` (extract + manifest check). The agent's own figures split a run into
staging (doveadm backup + manifest) and borg create. Prints the figures and the ratios against the
issue's goals, then removes the bench messages and takes a normal backup (the tenant's earlier
archives are gone: the repository was re-created — never run this against production).

`--rto` (lab only, the deployed lab fleet): the recovery time objective of `restore --to-host`. A
sixth host, mail3, is added and booted (tnoctl.lab.spare; with `--warm` it is first deployed as an
empty standby mail host), the tenant (default: the first mail-only one) gets --mb MiB of mail (default 0:
its lab mailboxes only, a few KiB; a commune's real mail is gigabytes, and the fixed costs of a recovery
weigh less against it), is backed up, then `tnoctl restore --tenant T --to-host mail3 --yes` is timed
until the tenant is served there (placement, deploy of mail3 and of the old host, backup keys, agent
restore + verification, DNS: the command's `serving_after_seconds`), and to its end (the other mail
hosts' allowlists follow). The baseline is what an administrator would do by hand on the same, now
provisioned, host: a raw `borg extract` of the same archive with the tenant's key,
then `systemctl restart postfix dovecot`. The tenant's old host stays up (so the restore redeploys it
too: it stops accepting the tenant's domains). Prints both, the ratio and the goal (<= 2x); then puts the
tenant back on its host (placement, redeploy of the mail hosts, DNS) and removes mail3.
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
    parser.add_argument("--mb", type=int, default=None, help="MiB of mail added first (default 200; --rto: 0)")
    parser.add_argument("--smoke", action="store_true", help="lab inventory, first tenant with mail, 2 MiB")
    parser.add_argument("--rto", action="store_true", help="restore --to-host onto a new lab host vs raw extract")
    parser.add_argument("--warm", action="store_true", help="with --rto: deploy the new host before the disaster")
    args = parser.parse_args()
    if args.rto:
        return rto_bench(args.tenant, args.warm, args.mb or 0)
    args.mb = 200 if args.mb is None else args.mb
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
    borg_create = ["env", *naming.client_borg_env(slug), "borg", "create", "--compression", "zstd,3",
                   "--one-file-system",
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


def tnoctl_json(inventory: Path, *argv: str) -> tuple[int, float, dict]:
    """Run a verb in-process with --json; (rc, seconds, parsed stdout or {})."""
    out = io.StringIO()
    app = AppContext(inventory=inventory, stdout=out, stderr=io.StringIO())
    start = time.perf_counter()
    rc = main(["--inventory", str(inventory), "--json", *argv], app=app)
    elapsed = time.perf_counter() - start
    try:
        return rc, elapsed, json.loads(out.getvalue())
    except ValueError:
        return rc, elapsed, {}


def rto_rows(rto: float, agent: float, extract: float, start: float, warm: bool,
             total: float | None = None) -> list[tuple[str, float, str]]:
    """The RTO table: tnoctl until the tenant is served, its restore step, the raw baseline, the ratio (pure).

    ``rto``: seconds from the start of `restore --to-host` until the tenant is served on the new host
    (data back, DNS moved: its ``serving_after_seconds``); ``total``: the whole command, which then
    redeploys the other mail hosts (their allowlists) off the critical path.
    """
    raw = extract + start
    host = "standby mail3 (deployed, no tenant)" if warm else "fresh mail3 (never deployed)"
    rows = [(f"tnoctl restore --to-host, {host}: served", rto, f"RTO = {rto / raw:.2f}x raw (goal <= 2x)")]
    if total is not None:
        rows.append(("  whole command (other mail hosts follow)", total, f"{total / raw:.2f}x raw"))
    return [
        *rows,
        ("  of which agent restore + verify", agent, f"{agent / raw:.2f}x raw"),
        ("raw borg extract, same archive, on mail3", extract, ""),
        ("raw service start (postfix, dovecot)", start, ""),
        ("raw extract + service start", raw, ""),
    ]


def rto_bench(slug: str | None, warm: bool, mb: int = 0) -> int:
    """`--rto`: see the module docstring. Needs root and the deployed lab fleet."""
    from tnoctl import paths
    from tnoctl.actions.env import Env
    from tnoctl.config.load import load_inventory
    from tnoctl.lab.spare import spare_host

    inv = paths.LAB_INVENTORY
    inventory = load_inventory(inv)
    slug = slug or next(t.slug for t in inventory.tenants if set(t.services) == {"mail"})
    old = inventory.tenant(slug).placement.mail
    mail_hosts = sorted(n for n, h in inventory.hosts.items() if "mail" in h.groups)
    tenant_file = inv / "tenants" / f"{slug}.yml"
    saved = tenant_file.read_text()
    tenant = inventory.tenant(slug)
    user = f"{tenant.mailboxes[0].local}@{tenant.mailboxes[0].domain or tenant.primary_domain}"
    try:
        with spare_host(inv):
            try:
                measure_rto(inv, slug, old, user, tenant.primary_domain, warm, mb)
            finally:  # before the spare leaves the inventory: no tenant may still be placed on it
                tenant_file.write_text(saved)
    finally:
        tenant_file.write_text(saved)
        rc1, _ = tnoctl(inv, "deploy", *[a for h in mail_hosts for a in ("--host", h)], "--yes")
        rc2, _ = tnoctl(inv, "tenant", "dns", slug, "--publish", "--yes")
        print(f"cleanup: {slug} back on {old} (deploy rc {rc1}, dns rc {rc2}); mail3 removed")
        if mb:  # the bench mail stayed in the old host's mailbox, which serves the tenant again
            env = Env.build(inv, AppContext(inventory=inv).state_dir, inv / "vault-password")
            timed(env.ssh, old, ["doveadm", "expunge", "-u", user, "mailbox", "*", "header", "X-Tno-Bench", "1"])
            env.close()
    return 0


def measure_rto(inv: Path, slug: str, old: str, user: str, domain: str, warm: bool, mb: int) -> None:
    """With the spare host in the inventory: (standby deploy,) fill, backup, timed restore, raw baseline."""
    from tnoctl.actions.env import Env
    from tnoctl.lab.spare import SPARE_NAME

    if warm:
        rc, seconds = tnoctl(inv, "deploy", "--host", SPARE_NAME, "--yes")
        assert rc == 0, "deploy of the standby host failed"
        print(f"{'standby deploy of mail3 (before the disaster)':44s} {seconds:8.2f}s")
    env = Env.build(inv, AppContext(inventory=inv).state_dir, inv / "vault-password")
    try:
        if mb:
            timed(env.ssh, old, ["python3", "-c", FILL, user, str(mb)])
        rc, _ = tnoctl(inv, "backup", "run", "--tenant", slug, "--component", "mail")
        assert rc == 0, "backup run failed"
        rc, total, data = tnoctl_json(inv, "restore", "--tenant", slug, "--to-host", SPARE_NAME, "--yes")
        assert rc == 0, f"restore --to-host failed (rc {rc}): {data}"
        archive, agent, rto = data["archive"], float(data["duration_seconds"]), float(data["serving_after_seconds"])
        backup = env.inventory.platform.tno_backup_host
        url = f"ssh://{naming.BACKUP_USER}@{env.inventory.hosts[backup].address}{naming.repo_path(slug)}"
        scratch = "/var/tmp/tno-rto"
        timed(env.ssh, SPARE_NAME, ["rm", "-rf", scratch])
        timed(env.ssh, SPARE_NAME, ["install", "-d", scratch])
        extract_argv = ["env", *naming.client_borg_env(slug), "sh", "-c", f'cd {scratch} && exec borg extract "$0"',
                        f"{url}::{archive}"]
        extract = timed(env.ssh, SPARE_NAME, extract_argv)
        start = timed(env.ssh, SPARE_NAME, ["systemctl", "restart", "postfix", "dovecot"])
        timed(env.ssh, SPARE_NAME, ["rm", "-rf", scratch])
        size = env.ssh.run(SPARE_NAME, ["du", "-sm", f"/srv/vmail/{domain}"]).stdout.split()[:1]
        print(f"tenant {slug}: {old} -> {SPARE_NAME} (archive {archive}; {mb} MiB of bench mail added; "
              f"restored mail directory {''.join(size) or '?'} MiB)")
        for name, seconds, note in rto_rows(rto, agent, extract, start, warm, total):
            print(f"{name:44s} {seconds:8.2f}s  {note}")
    finally:
        env.close()


def agent_figures(ssh, host: str, slug: str) -> dict[str, float]:
    """The agent's last-run record on the mail host: total (borgmatic incl. staging hook) and staging."""
    state = json.loads(ssh.run(host, ["cat", f"/var/lib/tno-backup/state/{slug}.json"]).stdout)
    return {"duration_seconds": float(state["duration_seconds"]), "stage_seconds": float(state.get("stage_seconds", 0))}


if __name__ == "__main__":
    raise SystemExit(main_bench())
