"""Issue 16 items 2 and 4 on the lab, on the session fleet (no second deploy).

1. A backup and a drill started by hand through their systemd units on the mail host (exactly
   what the timers start) reach `backup list --json`, `status --json` and a *fresh* exporter whose
   own state store is empty: it can only know them by pulling the host's results (one source of truth).
2. A deploy whose change would restart coolwsd (a WOPI alias added to coolwsd.xml) while a tenant
   of that office host is outside its maintenance window exits 4 naming the tenant and the
   service, and applies nothing.
"""

from __future__ import annotations

import json
import re
import sys
from datetime import UTC, datetime
from pathlib import Path

import promlab

from tnoctl import paths
from tnoctl.config.window import DAYS, TIMEZONE

TNOCTL = str(Path(sys.executable).parent / "tnoctl")
DEADLINE = 60.0  # two Prometheus scrape intervals (30 s) at most


def _metric(text: str, name: str, slug: str, component: str) -> float | None:
    match = re.search(rf'^{name}{{tenant="{re.escape(slug)}",component="{component}"}} (\S+)$', text, re.M)
    return float(match.group(1)) if match else None


def test_1_timer_run_backup_and_drill_reach_list_status_and_exporter(fleet, backups, tmp_path) -> None:
    slug = fleet.tenants_with("mail")[0]
    host = fleet.mail_host(slug)
    enabled = fleet.ssh(host, "systemctl", "is-enabled", f"tno-backup@{slug}.timer", f"tno-backup-drill-{slug}.timer")
    assert enabled.stdout.split() == ["enabled", "enabled"]
    stack = promlab.Stack(tmp_path)
    port = promlab.free_port()
    exporter = stack.start("exporter", [
        TNOCTL, "--inventory", str(paths.LAB_INVENTORY), "--state-dir", str(tmp_path / "exporter-state"),
        "exporter", "--listen", f"127.0.0.1:{port}", "--no-probes", "--backup-sync-interval", "5"])
    try:
        # what the timers start, by hand: oneshot units, `systemctl start` returns when they are done
        fleet.ssh(host, "systemctl", "start", f"tno-backup@{slug}.service")
        fleet.ssh(host, "systemctl", "start", f"tno-backup-drill@{slug}.service")
        run = json.loads(fleet.ssh(host, "cat", f"/var/lib/tno-backup/state/{slug}.json").stdout)
        drill = json.loads(fleet.ssh(host, "cat", f"/var/lib/tno-backup/state/{slug}.drill.json").stdout)
        assert run["ok"] and drill["ok"], (run, drill)

        url = f"http://127.0.0.1:{port}/metrics"
        scraped = promlab.wait_for(f"exporter pulled the timer-run backup (log: {exporter.tail(500)})", lambda: (
            (text := promlab.http_get(url))
            and _metric(text, "tnoctl_backup_last_success_timestamp_seconds", slug, "mail") == run["finished_at"]
            and _metric(text, "tnoctl_backup_last_verified_timestamp_seconds", slug, "mail") == drill["finished_at"]
            and text), DEADLINE)
        assert _metric(scraped, "tnoctl_backup_last_verification_failed", slug, "mail") == 0.0
    finally:
        stack.stop()

    rc, out, err = fleet.tnoctl("backup", "list", "--tenant", slug, "--json")
    assert rc == 0, err
    assert run["archive"] in [a["name"] for a in json.loads(out)]
    rc, out, err = fleet.tnoctl("backup", "list", "--tenant", slug)
    assert rc == 0 and f"mail: last run {_iso(run['finished_at'])} ok" in out, out[-1500:]
    assert f"last verified {_iso(drill['finished_at'])}" in out

    rc, out, err = fleet.tnoctl("status", "--tenant", slug, "--json")
    checks = {(c["component"], c["check"]): c for c in json.loads(out)["checks"] if c["tenant"] == slug}
    for check in ("backup", "backup_verified"):
        assert checks[("mail", check)]["ok"] and checks[("mail", check)]["value"] < 600, checks[("mail", check)]


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _closed_window_now() -> str:
    """A one-hour window two days from now (Europe/Paris): closed at the time of the test."""
    return f"{DAYS[(datetime.now(TIMEZONE).weekday() + 2) % 7]} 02:00-03:00"


def test_2_deploy_restarting_coolwsd_outside_a_window_exits_4(fleet) -> None:
    slug = fleet.tenants_with("office")[0]
    office = fleet.office_host(slug)
    path = paths.LAB_INVENTORY / "tenants" / f"{slug}.yml"
    saved = path.read_text()
    alias = f"https://docs.{slug}.test"
    wopi = f"  - https://cloud.{slug}.test\n"
    assert wopi in saved and "maintenance_window: Mon-Sun 00:00-24:00" in saved
    window = _closed_window_now()
    try:
        path.write_text(saved.replace(wopi, wopi + f"  - {alias}\n")
                        .replace("maintenance_window: Mon-Sun 00:00-24:00", f"maintenance_window: {window}"))
        rc, out, err = fleet.tnoctl("deploy", "--tenant", slug, "--yes")
    finally:
        path.write_text(saved)
    assert rc == 4, f"{out[-2000:]}\n{err[-2000:]}"
    assert f"{office}: would restart coolwsd outside the window of {slug} ({window})" in err
    assert alias not in fleet.ssh(office, "cat", "/etc/coolwsd/coolwsd.xml").stdout  # nothing applied
