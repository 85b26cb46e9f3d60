"""Backups end to end on the product lab (issue 5, acceptance 1-7). Needs root and the lab (`fleet`).

Order matters inside this module (one fleet per session): mailbox restore, append-only (and the
recovery of deleted archives), keys and crypto-shredding, locks, failure and recovery, corruption,
office config and tagged snapshots under retention, then the disaster recovery of mail1 last.
"""

from __future__ import annotations

import hashlib
import imaplib
import json
import os
import re
import smtplib
import ssl
import time
from email.message import EmailMessage

import pytest

from tnoctl import paths
from tnoctl.backup import naming
from tnoctl.hostagent import manifest
from tnoctl.state import locks
from tnoctl.state.store import Store

pytestmark = [pytest.mark.root, pytest.mark.lab]
N_MESSAGES = 60


def _send(fleet, slug: str, count: int, tag: str) -> None:
    """Deliver ``count`` messages of varied sizes (every third with a binary attachment) over SMTP."""
    boxes = [addr for addr, _pw in fleet.mailboxes(slug)]
    host = fleet.address(fleet.mail_host(slug))
    with smtplib.SMTP(host, 25) as smtp:
        for i in range(count):
            msg = EmailMessage()
            msg["From"], msg["To"], msg["Subject"] = "e2e@example.test", boxes[i % len(boxes)], f"{tag} {i}"
            msg.set_content(f"ligne {i}\n" * (1 + 37 * (i % 9)))
            if i % 3 == 0:
                msg.add_attachment(os.urandom(1000 * (1 + i % 50)), maintype="application", subtype="octet-stream",
                                   filename=f"piece-{i}.bin")
            smtp.send_message(msg)


def _count(fleet, slug: str, address: str, query: list[str]) -> int:
    host = fleet.mail_host(slug)
    out = fleet.ssh(host, "doveadm", "search", "-u", address, *query).stdout
    return len(out.splitlines())


def _wait_delivered(fleet, slug: str, address: str, at_least: int) -> None:
    for _ in range(120):
        if _count(fleet, slug, address, ["all"]) >= at_least:
            return
        time.sleep(0.5)
    raise AssertionError(f"{address}: fewer than {at_least} messages delivered")


def _manifest_of(fleet, slug: str) -> list[manifest.Entry]:
    text = fleet.ssh(fleet.mail_host(slug), "cat", f"{naming.STAGING_ROOT}/{slug}/manifest.json").stdout
    return manifest.loads(text)


def _live(fleet, slug: str) -> list[manifest.Entry]:
    out = fleet.ssh(fleet.mail_host(slug), "python3", naming.MANIFEST_SCRIPT, "compute", "/srv/vmail").stdout
    return manifest.loads(out)


@pytest.fixture(scope="module")
def backed_up(fleet, backups):
    """Two tenants (one per mail host) with >= 50 messages each, backup machinery deployed, one backup."""
    with_mail = fleet.tenants_with("mail")
    first = with_mail[0]
    other = next(t for t in with_mail if fleet.mail_host(t) != fleet.mail_host(first))
    slugs = sorted([first, other])
    for slug in slugs:
        _send(fleet, slug, N_MESSAGES, "avant")
        first = fleet.mailboxes(slug)[0][0]
        _wait_delivered(fleet, slug, first, N_MESSAGES // len(fleet.mailboxes(slug)))
    fleet.ok("backup", "run", *[a for s in slugs for a in ("--tenant", s)])
    return slugs


def test_1_mailbox_restore_is_bit_exact_and_keeps_new_mail(fleet, backed_up) -> None:
    slug = backed_up[0]
    address = fleet.mailboxes(slug)[0][0]
    expected = [e for e in _manifest_of(fleet, slug) if e.mailbox == address]
    assert len(expected) >= 5
    local, domain = address.split("@")
    fleet.ssh(fleet.mail_host(slug), "rm", "-rf", f"/srv/vmail/{domain}/{local}")
    _send(fleet, slug, 3 * len(fleet.mailboxes(slug)), "apres")  # arrives after the backup
    _wait_delivered(fleet, slug, address, 3)
    before = [e for e in _live(fleet, slug) if e.mailbox == address]
    out = fleet.ok("restore", "--tenant", slug, "--mailbox", address, "--yes")
    assert "0 missing" in out
    after = [e for e in _live(fleet, slug) if e.mailbox == address]
    restored = sorted({e.folder.split("/")[0] for e in after if e.folder.startswith("Restored-")})
    assert len(restored) == 1
    folders = sorted({e.folder for e in expected})
    assert manifest.compare(expected, after, manifest.prefixed(restored[0], folders), {address}).ok
    assert manifest.compare(before, after, None, {address}).ok  # mail delivered since: still there


def _client_borg(slug: str) -> list[str]:
    """borg on the mail host with the tenant's own key and passphrase file (what an intruder holds)."""
    return ["env", *naming.client_borg_env(slug), "BORG_DELETE_I_KNOW_WHAT_I_AM_DOING=YES", "borg"]


def _last_verification(fleet, slug: str, component: str = "mail") -> dict:
    lines = (fleet.state_dir / "store" / "verifications.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r.get("tenant") == slug and r.get("component") == component][-1]


def _archive_names(fleet, slug: str) -> list[str]:
    return [a["name"] for a in json.loads(fleet.ok("backup", "list", "--tenant", slug, "--json"))]


def test_3_mail_host_key_cannot_delete_history(fleet, backed_up) -> None:
    slug = backed_up[0]
    host, backup = fleet.mail_host(slug), fleet.inventory.platform.tno_backup_host
    repo = naming.repo_path(slug)
    listing = ["sh", "-c", f"cd {repo}/data && find . -type f | sort | xargs sha256sum"]
    before = fleet.ssh(backup, *listing).stdout
    borg = _client_borg(slug)
    url = f"ssh://{naming.BACKUP_USER}@{fleet.address(backup)}{repo}"
    log = json.loads(fleet.ok("backup", "recover-deleted", "--tenant", slug, "--json"))
    last_good = max(row["transaction"] for row in log)
    # the newest scheduled mail archive: the fixture's backup, with every message sent
    victim = [n for n in _archive_names(fleet, slug) if naming.parse_archive(slug, n) == ("mail", None)][-1]
    # (a) the whole repository: refused by the server, nothing appended
    whole = fleet.ssh(host, *borg, "delete", url, check=False)
    assert whole.returncode != 0 and "append-only mode" in whole.stderr, whole.stderr[-500:]
    # (b) an archive delete and a prune "succeed" in borg 1.2 (they only append transactions) ...
    fleet.ssh(host, *borg, "delete", f"{url}::{victim}")
    fleet.ssh(host, *borg, "prune", "--keep-last", "1", url)
    fleet.ssh(host, *borg, "compact", url, check=False)  # the real deletion: refused/no-op in append-only
    assert victim not in _archive_names(fleet, slug)
    other = next(t for t in fleet.tenants if t != slug)
    denied = fleet.ssh(host, *borg, "list", f"ssh://{naming.BACKUP_USER}@{fleet.address(backup)}"
                       f"{naming.repo_path(other)}", check=False)
    assert denied.returncode != 0 and "not allowed" in denied.stderr
    after = fleet.ssh(backup, *listing).stdout
    assert before.strip(), "no segment listed on the backup host: the check below would prove nothing"
    assert set(before.splitlines()) <= set(after.splitlines())  # every segment still there, unchanged
    # ... and the operator rolls them back from the backup host: the archive is back, bit-exact
    fleet.ok("backup", "recover-deleted", "--tenant", slug, "--transaction", str(last_good), "--yes")
    assert victim in _archive_names(fleet, slug)
    fleet.ok("backup", "drill", "--tenant", slug, "--archive", victim)
    detail = _last_verification(fleet, slug)["detail"]
    assert re.match(rf"{re.escape(victim)}: [1-9][0-9]* messages checked, 0 missing", detail), detail
    fleet.ok("backup", "run", "--tenant", slug)  # the mail host backs up again after the rollback


def test_4_passphrases_are_per_tenant_and_shredding_makes_a_repo_unreadable(fleet, backed_up) -> None:
    backup = fleet.inventory.platform.tno_backup_host
    a, b = backed_up
    pass_b = fleet.secrets[naming.passphrase_var(b)]

    def borg_list(repo: str, passphrase: str) -> int:
        argv = ["runuser", "-u", naming.BACKUP_USER, "--", "env", f"BORG_PASSPHRASE={passphrase}",
                "BORG_RELOCATED_REPO_ACCESS_IS_OK=yes", "borg", "list", repo]
        return fleet.ssh(backup, *argv, check=False).returncode

    assert borg_list(naming.repo_path(a), pass_b) != 0
    copy = "/srv/tno-backup/shred-test"
    fleet.ssh(backup, "cp", "-a", naming.repo_path(b), copy)
    assert borg_list(copy, pass_b) == 0
    fleet.ssh(backup, "shred", "-u", "-n", "1", "-z", f"{copy}/config")  # the shred step of `backup shred`
    assert borg_list(copy, pass_b) != 0
    fleet.ssh(backup, "rm", "-rf", copy)


def test_5_backup_waits_for_a_restore_holding_the_lock(fleet, backed_up) -> None:
    slug = backed_up[0]
    with locks.hold(fleet.state_dir, [slug], "restore", "e2e-restore-op"):
        rc, _out, err = fleet.tnoctl("backup", "run", "--tenant", slug)
    assert rc == 3 and "restore" in err and "e2e-restore-op" in err


def test_6_failure_is_recorded_and_cleared(fleet, lab, backed_up) -> None:
    slug = backed_up[1]
    backup, host = fleet.inventory.platform.tno_backup_host, fleet.mail_host(slug)
    lab.stop_host(backup)  # the backup host is down (powered off, disk kept)
    try:
        rc, _out, _err = fleet.tnoctl("backup", "run", "--tenant", slug)
    finally:
        lab.restart_host(backup)
    assert rc == 1
    status = Store(fleet.state_dir).latest_backups()[(slug, "mail")]
    assert status.last_failed
    prom = f"/var/lib/prometheus/node-exporter/tno_backup_{slug}.prom"
    success = f'tnoctl_backup_last_run_success{{tenant="{slug}",component="mail"}}'
    assert f"{success} 0.0" in fleet.ssh(host, "cat", prom).stdout
    fleet.ok("backup", "run", "--tenant", slug)
    assert not Store(fleet.state_dir).latest_backups()[(slug, "mail")].last_failed
    assert f"{success} 1.0" in fleet.ssh(host, "cat", prom).stdout


def test_7_drill_passes_then_detects_a_corrupted_segment(fleet, backed_up) -> None:
    slug = backed_up[1]
    fleet.ok("backup", "drill", "--tenant", slug)
    assert Store(fleet.state_dir).latest_backups()[(slug, "mail")].last_verified_at
    backup = fleet.inventory.platform.tno_backup_host
    data = f"{naming.repo_path(slug)}/data"
    segment = fleet.ssh(backup, "sh", "-c", f"ls -S $(find {data} -type f) | head -n 1").stdout.strip()
    flip = ("import sys;p=sys.argv[1];b=bytearray(open(p,'rb').read());i=len(b)//2\n"
            "for k in range(i, i + 64): b[k] ^= 0xff\nopen(p,'wb').write(b)")
    fleet.ssh(backup, "cp", "-a", segment, segment + ".orig")
    fleet.ssh(backup, "python3", "-c", flip, segment)
    try:
        rc, _out, _err = fleet.tnoctl("backup", "drill", "--tenant", slug)
        assert rc == 1
        assert Store(fleet.state_dir).latest_backups()[(slug, "mail")].last_verification_failed_at
    finally:
        fleet.ssh(backup, "mv", segment + ".orig", segment)


def test_8_office_config_and_tagged_snapshot_survive_retention(fleet, backed_up) -> None:
    slug = next(s for s in backed_up if fleet.office_host(s))
    tag = f"pre-upgrade-e2e-{os.getpid()}"  # unique: a kept lab may hold an earlier session's snapshot
    fleet.ok("backup", "run", "--tenant", slug, "--tag", tag)  # what upgrade's run_one(tag=) does
    names = _archive_names(fleet, slug)
    tagged = [n for n in names if naming.parse_archive(slug, n) == ("mail", tag)]
    assert len(tagged) == 1
    assert any(naming.parse_archive(slug, n) == ("office", None) for n in names)
    fleet.ok("backup", "drill", "--tenant", slug)  # restores coolwsd.xml, lists the office archive's files
    office = _last_verification(fleet, slug, "office")  # one verification per component
    assert office["ok"] and "coolwsd.xml restored" in office["detail"], office
    assert "tno-office.conf" in office["detail"], office
    assert "messages checked" in _last_verification(fleet, slug)["detail"]
    scheduled = [n for n in names if naming.parse_archive(slug, n) == ("mail", None)]
    # borg 1.2 keeps the newest archive of the day (daily) and, while keep_weekly is not reached, the
    # oldest one too ("weekly[oldest]"): three scheduled archives of one day let prune remove one
    while len(scheduled) < 3:
        fleet.ok("backup", "run", "--tenant", slug, "--component", "mail")
        scheduled = [n for n in _archive_names(fleet, slug) if naming.parse_archive(slug, n) == ("mail", None)]
    fleet.ok("backup", "prune", "--tenant", slug, "--yes")
    after = _archive_names(fleet, slug)
    kept = [n for n in after if naming.parse_archive(slug, n) == ("mail", None)]
    assert len(kept) < len(scheduled) and scheduled[-1] in kept, (scheduled, kept)
    assert tagged[0] in after  # the snapshot does not take a daily slot and is kept keep_daily days


def test_9_office_only_commune_backup_and_restore_drill(fleet, backed_up) -> None:
    """Issue 20: an office-only commune is backed up (its office configuration) and its drill passes."""
    slug = next(t.slug for t in fleet.inventory.tenants if t.services == ["office"])
    fleet.ok("backup", "run", "--tenant", slug)
    names = _archive_names(fleet, slug)
    assert names and all(naming.parse_archive(slug, n)[0] == "office" for n in names), names
    latest = [n for n in names if naming.parse_archive(slug, n) == ("office", None)][-1]
    fleet.ok("backup", "drill", "--tenant", slug)
    status = Store(fleet.state_dir).latest_backups()
    assert status[(slug, "office")].last_success and status[(slug, "office")].last_verified_at
    assert (slug, "mail") not in status  # nothing recorded, nothing expected for a service it does not have
    record = [r for r in map(json.loads, (fleet.state_dir / "store" / "verifications.jsonl").read_text().splitlines())
              if r.get("tenant") == slug][-1]
    assert record["component"] == "office" and record["ok"], record
    assert record["detail"].startswith(f"office {latest}: coolwsd.xml restored ("), record
    assert "tno-office.conf" in record["detail"], record
    # a mailbox restore is refused by name (exit 2), nothing locked or touched
    rc, _out, err = fleet.tnoctl("restore", "--tenant", slug, "--mailbox", f"x@{fleet.domain(slug)}", "--yes")
    assert rc == 2 and f"tenant {slug} has no mail service" in err, err


def _imap_login(fleet, host: str, address: str, password: str) -> None:
    context = ssl.create_default_context(cafile=str(fleet.ca_cert))
    context.check_hostname = False
    with imaplib.IMAP4_SSL(fleet.address(host), 993, ssl_context=context) as imap:
        imap.login(address, password)


def test_2_disaster_recovery_of_mail1(fleet, backed_up, lab) -> None:
    victim = "mail1"
    slugs = [t for t in fleet.tenants if fleet.mail_host(t) == victim]
    assert slugs, "no tenant on mail1"
    fleet.ok("backup", "run", *[a for s in slugs for a in ("--tenant", s)])
    expected = {s: _manifest_of(fleet, s) for s in slugs}
    keys = {}
    for s in slugs:
        for d in fleet.inventory.tenant(s).domains:
            keys[d] = fleet.ssh(victim, "sha256sum", f"/etc/opendkim/keys/{d}/tno2026.private").stdout.split()[0]
    files = {s: paths.LAB_INVENTORY / "tenants" / f"{s}.yml" for s in slugs}
    saved = {s: f.read_text() for s, f in files.items()}
    lab.restart_host(victim, wipe=True)
    try:
        for s in slugs:
            fleet.ok("restore", "--tenant", s, "--to-host", victim, "--yes")
        for s in slugs:
            boxes = {e.mailbox for e in expected[s]}
            assert manifest.compare(expected[s], _live(fleet, s), None, boxes).ok
            address, password = fleet.mailboxes(s)[0]
            _imap_login(fleet, victim, address, password)
            for d in fleet.inventory.tenant(s).domains:
                now = fleet.ssh(victim, "sha256sum", f"/etc/opendkim/keys/{d}/tno2026.private").stdout.split()[0]
                assert now == keys[d]
                assert hashlib.sha256(b"").hexdigest() != now
    finally:
        for s, f in files.items():
            f.write_text(saved[s])
