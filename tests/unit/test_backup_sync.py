"""One source of truth for backups (issue 16 item 2): timer-run results pulled from the hosts, drill schedule."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.unit.fakes import FakeSsh, make_env
from tnoctl import paths
from tnoctl.actions import backup_sync
from tnoctl.backup import naming
from tnoctl.backup.results import new_records
from tnoctl.config.schedule import drill_on_calendar, offset_minutes
from tnoctl.config.window import Window
from tnoctl.exporter.worker import PeriodicWorker
from tnoctl.hostagent import checks
from tnoctl.hostagent.agent import TenantConfig
from tnoctl.state.store import BackupResult, BackupStatus, BackupVerification


@pytest.fixture()
def inv(tmp_path) -> Path:
    dest = tmp_path / "inv"
    shutil.copytree(paths.LAB_INVENTORY, dest, ignore=shutil.ignore_patterns(".tno"))
    return dest


def _run(at: float, ok: bool = True) -> dict:
    return {"tenant": "givors", "ok": ok, "finished_at": at, "duration_seconds": 4.5, "original_bytes": 100,
            "compressed_bytes": 60, "deduplicated_bytes": 10, "detail": "" if ok else "borgmatic rc 2"}


def test_new_records_only_what_the_store_lacks():
    units = {"givors": {"run": _run(2000.0), "drill": {"ok": True, "finished_at": 1500.0, "detail": "x: 3 checked"}},
             "givors.office": {"run": _run(1000.0, ok=False)},
             "stranger": {"run": _run(9999.0)}}
    expected = [("givors", "mail"), ("givors", "office")]
    records = new_records(units, expected, {})
    assert records == [
        BackupResult("givors", "mail", True, 2000.0, 4.5, 100, 60, 10, ""),
        BackupVerification("givors", "mail", True, 1500.0, "scheduled drill: x: 3 checked"),
        BackupResult("givors", "office", False, 1000.0, 4.5, None, None, None, "borgmatic rc 2"),
    ]
    known = {("givors", "mail"): BackupStatus("givors", "mail", last_success=records[0], last_verified_at=1500.0)}
    assert new_records(units, [("givors", "mail")], known) == []  # already recorded (e.g. by `backup run`)


def test_new_records_ignore_malformed_units():
    units = {"givors": {"run": {"ok": True}}, "givors.office": "nonsense"}
    assert new_records(units, [("givors", "mail"), ("givors", "office")], {}) == []


def test_sync_pulls_each_host_once_and_is_idempotent(inv, tmp_path):
    env = make_env(inv, tmp_path / "state")
    givors = env.inventory.tenant("givors")
    mail, office = givors.placement.mail, givors.placement.office
    replies = {mail: {"givors": {"run": _run(2000.0)}}, office: {"givors.office": {"run": _run(2100.0)}}}
    ssh = FakeSsh(results={(h, naming.AGENT): (0, json.dumps({"units": u})) for h, u in replies.items()})
    env = make_env(inv, tmp_path / "state", ssh=ssh)
    report = backup_sync.sync(env, ("givors",))
    assert report.recorded == 2 and report.errors == () and sorted(report.hosts) == sorted({mail, office})
    assert sorted(h for h, _argv in ssh.commands) == sorted({mail, office})
    assert all(argv == (naming.AGENT, "results") for _h, argv in ssh.commands)
    status = env.store.latest_backups()[("givors", "office")]
    assert status.last_success is not None and status.last_success.finished_at == 2100.0
    assert backup_sync.sync(env, ("givors",)).recorded == 0


def test_sync_reports_an_unreadable_host_and_keeps_the_others(inv, tmp_path):
    env = make_env(inv, tmp_path / "state")
    givors = env.inventory.tenant("givors")
    mail, office = givors.placement.mail, givors.placement.office
    ssh = FakeSsh(results={(mail, naming.AGENT): (127, "tno-backup: not found"),
                           (office, naming.AGENT): (0, json.dumps({"units": {"givors.office": {"run": _run(5.0)}}}))})
    env = make_env(inv, tmp_path / "state", ssh=ssh)
    report = backup_sync.sync_quietly(env, ("givors",))
    assert report.recorded == 1 and len(report.errors) == 1 and report.errors[0].startswith(f"{mail}: ")
    assert "backup results not pulled from" in env.output.stderr.getvalue()


def test_host_results_read_every_configured_unit(tmp_path):
    conf, state = tmp_path / "tenants", tmp_path / "state"
    conf.mkdir(), state.mkdir()
    for key in ("givors", "givors.office", "bron.office"):
        (conf / f"{key}.json").write_text("{}")
    (state / "givors.json").write_text(json.dumps(_run(1.0)))
    (state / "givors.drill.json").write_text(json.dumps({"ok": False, "finished_at": 2.0}))
    (state / "givors.office.json").write_text("{broken")
    out = checks.results(conf, state)
    assert out == {"bron.office": {}, "givors": {"run": _run(1.0), "drill": {"ok": False, "finished_at": 2.0}},
                   "givors.office": {}}


def test_host_drill_picks_the_units_latest_archive_and_checks_office_xml():
    mail = TenantConfig("givors", "/etc/borgmatic.d/givors.yaml", "/tmp")
    office = TenantConfig("givors", "/etc/borgmatic.d/givors.office.yaml", "/tmp", component="office")
    names = [("givors-2026-11-30T01:00:00.000000", "2026-11-30T01:00:00"),
             ("givors.tag-pre-upgrade-x-2026-12-01T09:00:00.000000", "2026-12-01T09:00:00"),
             ("givors.office-2026-12-01T10:00:00.000000", "2026-12-01T10:00:00")]
    assert checks.latest_archive(mail, names) == "givors.tag-pre-upgrade-x-2026-12-01T09:00:00.000000"
    assert checks.latest_archive(office, names) == "givors.office-2026-12-01T10:00:00.000000"
    assert checks.latest_archive(office, names[:2]) is None
    assert checks.office_verdict("<config><a>1</a></config>")[0]
    assert not checks.office_verdict("<html/>")[0] and not checks.office_verdict("<config>")[0]


@pytest.mark.parametrize(("slug", "window", "day", "earliest", "latest"), [
    ("givors", "Sun 02:00-05:00", "Sun", "02:00", "03:30"),
    ("bron", "Sat,Sun 01:00-04:00", "Sat", "01:00", "02:30"),
    ("corbas", "Mon-Sun 00:00-24:00", "Mon", "00:00", "02:00"),
    ("feyzin", None, "Sun", "02:00", "03:30"),  # no window: Sunday night
])
def test_drill_runs_inside_the_window_at_a_stable_offset(slug, window, day, earliest, latest):
    spec = drill_on_calendar(slug, window)
    found_day, dates, clock, zone = spec.split()
    assert (found_day, dates, zone) == (day, "*-*-*", "Europe/Paris")
    assert earliest <= clock[:5] < latest
    assert drill_on_calendar(slug, window) == spec  # deterministic: no timer churn between deploys


def test_drill_offsets_spread_tenants_sharing_a_window():
    window = Window.parse("Sun 02:00-05:00")
    offsets = {offset_minutes(f"commune-{i}", window) for i in range(40)}
    assert len(offsets) > 20 and max(offsets) < 90
    overnight = drill_on_calendar("x", "Sat 23:30-02:00")  # the offset may cross midnight
    assert overnight.split()[0] in ("Sat", "Sun")


def test_periodic_worker_survives_a_failing_round():
    calls, errors = [], []

    def task():
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("host down")

    worker = PeriodicWorker("t", task, 60, on_error=errors.append)
    worker.run_once()
    worker.run_once()
    assert worker.rounds == 2 and errors == ["RuntimeError: host down"] and worker.last_error == ""


def test_backup_list_line_per_component():
    from tnoctl.actions.backup_repo import _last_line

    last = {"last_run_at": 1764604800.0, "last_run_ok": True, "last_success_at": 1764604800.0,
            "last_verified_at": 1764000000.0, "last_verification_failed_at": 1764500000.0}
    assert _last_line("mail", last) == ("mail: last run 2025-12-01 16:00:00 UTC ok, last verified "
                                        "2025-11-24 16:00:00 UTC, latest drill FAILED")
    never = dict.fromkeys(last)
    assert _last_line("office", never) == "office: last run never, last verified never"
