"""Issue 13 on the lab: a compromised host's deletes are never compacted; offboarding leaves nothing behind.

Named `test_zx_...` so it runs after every other test of the session fleet (test files run in
alphabetical order; test_zy/test_zz only restart and recover the lab, they use no tenant): test 2
removes the office-only commune `bron` (the cheapest: one office host, no Maildir export) from the
hosts for good. Its tenant file is put back into inventories/lab afterwards (the checked-in lab
stays whole); the lab hosts keep it removed until the next session's deploy.
"""

from __future__ import annotations

import json
import shutil

import pytest

from tnoctl import paths
from tnoctl.backup import naming

pytestmark = [pytest.mark.root, pytest.mark.lab]
REMOVED = "bron"
# Searched on every lab host. Not searched: /var/log (logs keep their own retention) and /etc/hosts
# (the lab's stand-in for DNS, written by `lab up`, like the operator's DNS zone in production).
SEARCHED = ["/etc", "/srv", "/var/lib", "/var/spool", "/var/tmp", "/run", "/root", "/home", "/usr/local", "/opt",
            "/tmp"]


def _names(fleet, slug: str) -> list[str]:
    return [a["name"] for a in json.loads(fleet.ok("backup", "list", "--tenant", slug, "--json"))]


def test_1_prune_refuses_a_compromised_hosts_delete_and_recover_brings_it_back(fleet, backups) -> None:
    slug = next(t for t in fleet.tenants_with("mail") if t != REMOVED)
    host, backup = fleet.mail_host(slug), fleet.inventory.platform.tno_backup_host
    fleet.ok("backup", "run", "--tenant", slug, "--component", "mail")  # recorded in the archive ledger
    last_good = max(r["transaction"] for r in json.loads(fleet.ok("backup", "recover-deleted", "--tenant", slug,
                                                              "--json")))
    victim = [n for n in _names(fleet, slug) if naming.parse_archive(slug, n) == ("mail", None)][-1]
    # the intruder on the mail host: its own append-only key and passphrase file
    url = f"ssh://{naming.BACKUP_USER}@{fleet.address(backup)}{naming.repo_path(slug)}::{victim}"
    fleet.ssh(host, "env", *naming.client_borg_env(slug), "borg", "delete", url)
    assert victim not in _names(fleet, slug)
    rc, out, err = fleet.tnoctl("backup", "prune", "--tenant", slug, "--yes")
    assert rc == 4, f"prune after a client delete -> {rc}\n{out}\n{err[-3000:]}"
    named = [line for line in err.splitlines() if victim in line]
    assert named == [f"{slug}: archive {victim} was deleted from the repository by a client, not by tnoctl: "
                     f"repository not compacted; recover with `tnoctl backup recover-deleted --tenant {slug}`"], err
    fleet.ok("backup", "recover-deleted", "--tenant", slug, "--transaction", str(last_good), "--yes")
    assert victim in _names(fleet, slug)
    fleet.ok("backup", "prune", "--tenant", slug, "--yes")  # nothing missing any more: pruned and compacted
    assert victim in _names(fleet, slug)  # today's newest archive: kept by the daily retention


def test_1b_a_timer_archive_deleted_before_tnoctl_saw_it_is_named_from_the_manifest_history(fleet, backups) -> None:
    """The host's timer makes an archive tnoctl never recorded; the intruder deletes it at once. The ledger
    cannot know it: prune reads the older manifest versions still in the segments (history.py), refuses,
    names it, and `recover-deleted` brings it back."""
    slug = next(t for t in fleet.tenants_with("mail") if t != REMOVED)
    host, backup = fleet.mail_host(slug), fleet.inventory.platform.tno_backup_host
    before = set(_names(fleet, slug))
    fleet.ssh(host, "systemctl", "start", f"tno-backup@{slug}.service")  # what the nightly timer starts
    made = sorted(set(_names(fleet, slug)) - before)
    assert len(made) == 1, f"the timer's run made {made}"
    victim = made[0]
    last_good = max(r["transaction"] for r in json.loads(fleet.ok("backup", "recover-deleted", "--tenant", slug,
                                                              "--json")))
    url = f"ssh://{naming.BACKUP_USER}@{fleet.address(backup)}{naming.repo_path(slug)}::{victim}"
    fleet.ssh(host, "env", *naming.client_borg_env(slug), "borg", "delete", url)
    rc, out, err = fleet.tnoctl("backup", "prune", "--tenant", slug, "--yes")
    assert rc == 4, f"prune after a client deleted an archive tnoctl never saw -> {rc}\n{out}\n{err[-3000:]}"
    assert [line for line in err.splitlines() if victim in line] == [
        f"{slug}: archive {victim} was deleted from the repository by a client, not by tnoctl: "
        f"repository not compacted; recover with `tnoctl backup recover-deleted --tenant {slug}`"], err
    fleet.ok("backup", "recover-deleted", "--tenant", slug, "--transaction", str(last_good), "--yes")
    assert victim in _names(fleet, slug)
    fleet.ok("backup", "prune", "--tenant", slug, "--yes")
    assert victim in _names(fleet, slug)


def test_2_tenant_remove_leaves_no_trace_on_any_host_and_the_repository_cannot_be_opened(fleet, backups,
                                                                                         tmp_path) -> None:
    tenant = fleet.inventory.tenant(REMOVED)
    passphrase = fleet.secrets[naming.passphrase_var(REMOVED)]
    backup = fleet.inventory.platform.tno_backup_host
    kept = tmp_path / f"{REMOVED}.yml"
    shutil.copy2(paths.LAB_INVENTORY / "tenants" / f"{REMOVED}.yml", kept)
    try:
        fleet.ok("tenant", "remove", REMOVED, "--export-dir", str(tmp_path), "--yes")
    finally:
        shutil.copy2(kept, paths.LAB_INVENTORY / "tenants" / f"{REMOVED}.yml")
    words = [REMOVED, *tenant.domains]
    found = {}
    for host in sorted(fleet.inventory.hosts):
        grep = ["grep", "-rlsIw", "--exclude=hosts", *[a for w in words for a in ("-e", w)], *SEARCHED]
        names = ["find", *SEARCHED, "-xdev", "(", *[a for w in words for a in ("-name", f"*{w}*", "-o")][:-1], ")"]
        units = ["sh", "-c", "systemctl list-units --all --no-legend; systemctl list-timers --all --no-legend; "
                 "systemctl list-unit-files --no-legend"]
        hits = fleet.ssh(host, *grep, check=False).stdout.split()
        hits += fleet.ssh(host, *names, check=False).stdout.split()
        hits += [line for line in fleet.ssh(host, *units).stdout.splitlines() if REMOVED in line]
        # the passphrase: file names only, the value never printed (not even in an assertion message)
        if fleet.ssh(host, "grep", "-rlsF", "-e", passphrase, *SEARCHED, check=False).stdout.strip():
            hits.append("(a file holding the tenant's borg passphrase)")
        if hits:
            found[host] = hits
    assert found == {}, f"traces of {REMOVED} left on the lab hosts: {found}"
    opened = fleet.ssh(backup, "runuser", "-u", naming.BACKUP_USER, "--", "env", f"BORG_PASSPHRASE={passphrase}",
                       "BORG_RELOCATED_REPO_ACCESS_IS_OK=yes", "borg", "list", naming.repo_path(REMOVED), check=False)
    assert opened.returncode != 0  # the key is shredded and the repository gone: the passphrase opens nothing
