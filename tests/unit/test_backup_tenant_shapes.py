"""Office-only and mail-only tenants in every backup path (issue 20), with fake SSH: no host needed.

The lab inventory holds one of each shape: bron (office only, office1), feyzin (mail only, mail2),
givors (both). Covered here: the upgrade's safety archive, the drill and its per-component
verifications, the exporter's backup series and the status probe's expectations.
"""

from __future__ import annotations

import io
import json
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.unit.fakes import FakePlaybookRunner
from tests.unit.test_upgrade_executor import Result  # the fake SSH command result
from tnoctl import paths
from tnoctl.actions import backup as backup_action
from tnoctl.actions import backup_checks
from tnoctl.actions import upgrade_host as up
from tnoctl.actions.env import Env, Output
from tnoctl.actions.upgrade_gate import GateResult
from tnoctl.backup import office
from tnoctl.config.load import load_inventory
from tnoctl.plan.backup import plan_targets
from tnoctl.plan.upgrade import plan_upgrade
from tnoctl.state import store as state_store
from tnoctl.state.journal import Journal

NOW = datetime(2026, 11, 29, 11, 0, tzinfo=UTC)
XML = '<?xml version="1.0"?>\n<!-- managed -->\n<config><ssl><enable>false</enable></ssl></config>\n'


@pytest.fixture(scope="module")
def inventory():
    return load_inventory(paths.LAB_INVENTORY)


@dataclass
class FakeSsh:
    """Answers the agent, dpkg-query and borg the way the lab hosts do; records every command."""

    xml: str = XML
    archives: dict[str, list[str]] = field(default_factory=dict)  # slug -> archive names
    ran: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)

    def run(self, host: str, argv: list[str], timeout: float = 60, input: bytes | None = None) -> Result:
        if "borg" in argv:  # actions.backup.run_borg: runuser ... env ... borg ARGS, passphrase on stdin
            return self.borg_on_backup_host(host, None, list(argv[argv.index("borg") + 1:]))
        self.ran.append((host, tuple(argv)))
        if argv[0] == "dpkg-query":
            return Result(stdout="24.04.10.1")
        if argv[:2] == ["/usr/local/sbin/tno-backup", "run"]:
            key, tag = argv[2], (argv[4] if len(argv) > 4 else "")
            name = f"{key}.tag-{tag}-2026-11-29T11:00:00.000000" if tag else f"{key}-2026-11-29T11:00:00.000000"
            state = {"ok": True, "finished_at": 1.0, "duration_seconds": 0.5, "archive": name,
                     "original_bytes": 10, "compressed_bytes": 5, "deduplicated_bytes": 1}
            return Result(stdout=json.dumps(state) + "\n")
        if argv[0] == "mktemp":
            return Result(stdout="/var/tmp/tno-drill.abcdefgh\n")
        if argv[:2] == ["python3", "/usr/local/lib/tno-backup/manifest.py"]:
            return Result(stdout='{"ok": true, "checked": 12, "missing": 0}\n')
        return Result()

    def borg_on_backup_host(self, host, passphrase, args, timeout=3600, cwd=None) -> Result:
        self.ran.append((host, ("borg", *args)))
        repo_slug = next(a for a in args if a.startswith("/srv/tno-backup/")).split("/")[3].split("::")[0]
        if args[0] == "info":
            names = self.archives.get(repo_slug, [])
            docs = [{"name": n, "start": f"2026-11-29T1{i}:00:00.000000", "stats": {}} for i, n in enumerate(names)]
            return Result(stdout=json.dumps({"archives": docs}))
        if args[0] == "list":
            files = [f"var/lib/tno-backup/staging/{repo_slug}.office/{n}" for n in ("coolwsd.xml", "tno-office.conf")]
            return Result(stdout="".join(json.dumps({"type": "-", "path": f}) + "\n" for f in files))
        if args[:2] == ["extract", "--stdout"]:
            return Result(stdout=self.xml) if self.xml is not None else Result(rc=2, stderr="not in archive")
        return Result()

    def fetch_to_file(self, host: str, argv: list[str], dest: str, timeout: float = 0) -> int:
        self.ran.append(("export", tuple(argv)))
        Path(dest).write_bytes(b"tarball")
        return 0

    def close(self) -> None:
        pass

    def __enter__(self) -> FakeSsh:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _env(tmp_path: Path, inventory, ssh: FakeSsh, inventory_path: Path = paths.LAB_INVENTORY) -> Env:
    pw = tmp_path / "pw"
    pw.write_text("x")
    return Env(inventory_path, tmp_path / "state", pw, Output(io.StringIO(), io.StringIO()),
               ssh_factory=lambda _inventory: ssh, inventory=inventory, redact=lambda text: text,
               playbooks=FakePlaybookRunner())  # tenant remove redeploys: never a real ansible run here


@pytest.fixture(autouse=True)
def no_vault(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backup_action, "passphrase", lambda env, slug: "not-a-secret")


def test_office_upgrade_takes_the_office_only_tenants_safety_archive(tmp_path: Path, inventory,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Before issue 20 this refused: `tenant bron has no mail service: nothing to back up` (exit 2)."""
    ssh = FakeSsh()
    monkeypatch.setattr(up.HostRun, "_playbook", lambda self, v, rb, label: (True, "1 change(s)"))
    monkeypatch.setattr(up.upgrade_gate, "check",
                        lambda env, component, host, tenants, version, **kw: GateResult(True, version, 1, []))
    plan = plan_upgrade(inventory, "office", "24.04.11.1", now=NOW, waves="100%", hosts=["office1"])
    assert "bron" in plan.hosts[0].tenants
    rollout = up.Rollout(_env(tmp_path, inventory, ssh), plan, Journal.create(tmp_path / "state", "op-1", {}),
                         safety_backup=True, stop=threading.Event())
    (outcome,) = up.execute(rollout)
    assert outcome.state == "done", outcome.detail
    runs = [(h, a[2:]) for h, a in ssh.ran if a[:2] == ("/usr/local/sbin/tno-backup", "run")]
    assert runs == [("office1", (f"{slug}.office", "--tag", "pre-upgrade-op-1"))
                    for slug in ("bron", "vaulx-en-velin", "venissieux")]  # office components only, on office1
    latest = state_store.Store(tmp_path / "state").latest_backups()
    assert latest[("bron", "office")].last_success is not None and ("bron", "mail") not in latest


def test_mail_upgrade_safety_archives_skip_nothing_and_add_no_office(tmp_path: Path, inventory,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    ssh = FakeSsh()
    env = _env(tmp_path, inventory, ssh)
    for target in plan_targets(inventory, ["feyzin", "givors"]):
        assert backup_action.run_one(env, target, tag="pre-upgrade-op-2", components=("mail",)).ok
    assert [a[2] for _h, a in ssh.ran] == ["feyzin", "givors"]


def test_backup_run_covers_each_tenants_own_components(tmp_path: Path, inventory) -> None:
    ssh = FakeSsh()
    env = _env(tmp_path, inventory, ssh)
    outcomes = [backup_action.run_one(env, t) for t in plan_targets(inventory, ["bron", "feyzin", "givors"])]
    assert all(o.ok for o in outcomes)
    assert [(h, a[2]) for h, a in ssh.ran] == [("office1", "bron.office"), ("mail2", "feyzin"),
                                              ("mail2", "givors"), ("office2", "givors.office")]
    assert outcomes[0].data["archive"].startswith("bron.office-")
    assert set(state_store.Store(tmp_path / "state").latest_backups()) == {
        ("bron", "office"), ("feyzin", "mail"), ("givors", "mail"), ("givors", "office")}


def test_drill_of_an_office_only_tenant_restores_its_office_configuration(tmp_path: Path, inventory) -> None:
    ssh = FakeSsh(archives={"bron": ["bron.office-2026-11-28T01:00:00.000000", "bron.office.tag-x-2026-11-29T10"]})
    env = _env(tmp_path, inventory, ssh)
    (bron,) = plan_targets(inventory, ["bron"])
    outcome = backup_checks.drill_one(env, bron)
    assert outcome.ok, outcome.detail
    assert outcome.detail.startswith("office bron.office.tag-x-2026-11-29T10: coolwsd.xml restored")
    assert outcome.data["files"][0] == "var/lib/tno-backup/staging/bron.office/coolwsd.xml"
    assert ("extract", "--stdout", "/srv/tno-backup/bron::bron.office.tag-x-2026-11-29T10",
            "var/lib/tno-backup/staging/bron.office/coolwsd.xml") in [a[1:] for _h, a in ssh.ran if a[0] == "borg"]
    borg_calls = [a[1:3] for _h, a in ssh.ran if a[0] == "borg"]
    assert ("extract", "--stdout") in borg_calls and not any(a[0] == "mktemp" for _h, a in ssh.ran)  # no mail part
    status = state_store.Store(tmp_path / "state").latest_backups()
    assert status[("bron", "office")].last_verified_at is not None and ("bron", "mail") not in status


def test_drill_records_one_verification_per_component(tmp_path: Path, inventory) -> None:
    ssh = FakeSsh(xml="<html>not a coolwsd config</html>",
                  archives={"givors": ["givors-2026-11-29T01:00:00.000000", "givors.office-2026-11-29T01:00:01.0"]})
    env = _env(tmp_path, inventory, ssh)
    (givors,) = plan_targets(inventory, ["givors"])
    outcome = backup_checks.drill_one(env, givors)
    assert not outcome.ok and "12 messages checked, 0 missing" in outcome.detail
    assert "has root <html>, expected <config>" in outcome.detail
    status = state_store.Store(tmp_path / "state").latest_backups()
    assert status[("givors", "mail")].last_verified_at is not None  # the mail drill passed on its own
    assert status[("givors", "office")].last_verified_at is None
    assert status[("givors", "office")].last_verification_failed_at is not None


def test_drill_without_an_office_archive_fails_and_says_so(tmp_path: Path, inventory) -> None:
    env = _env(tmp_path, inventory, FakeSsh())
    (bron,) = plan_targets(inventory, ["bron"])
    outcome = backup_checks.drill_one(env, bron)
    assert (outcome.ok, outcome.detail) == (False, "no office archive")


@pytest.mark.parametrize(("text", "ok", "needle"), [
    (XML, True, "coolwsd.xml restored ("),
    ("", False, "is empty"),
    ("<config>", False, "not well-formed XML"),
    ("<config/>", False, "has no settings"),
    ("<wopi><x/></wopi>", False, "has root <wopi>"),
])
def test_office_config_check(text: str, ok: bool, needle: str) -> None:
    got_ok, detail = office.check_config(text)
    assert got_ok is ok and needle in detail


def _samples(text: str) -> dict[tuple[str, tuple], float]:
    from prometheus_client.parser import text_string_to_metric_families

    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def test_exporter_backup_series_follow_each_tenants_services(tmp_path: Path) -> None:
    """No "never backed up" series (value 0: TnoBackupTooOld fires) for a component a tenant lacks."""
    from tnoctl.exporter import app as exporter_app

    store = state_store.Store(tmp_path)
    store.record_backup(state_store.BackupResult("bron", "office", True, 1000.0, 1.0, 10, 5, 1))
    store.record_verification(state_store.BackupVerification("bron", "office", True, 1100.0))
    store.record_verification(state_store.BackupVerification("bron", "mail", False, 900.0, "no archive"))  # stale
    store.record_backup(state_store.BackupResult("feyzin", "mail", True, 1000.0, 1.0, 10, 5, 1))
    known = {"bron": ("office",), "feyzin": ("mail",), "givors": ("mail", "office")}
    got = _samples(exporter_app.build(tmp_path, lambda: known).collector.render())
    series = {(dict(k[1])["tenant"], dict(k[1])["component"]) for k in got
              if k[0] == "tnoctl_backup_last_success_timestamp_seconds"}
    assert series == {("bron", "office"), ("feyzin", "mail"), ("givors", "mail"), ("givors", "office")}
    verified = {(dict(k[1])["tenant"], dict(k[1])["component"]): v for k, v in got.items()
                if k[0] == "tnoctl_backup_last_verified_timestamp_seconds"}
    assert verified[("bron", "office")] == 1100.0 and ("bron", "mail") not in verified
    assert verified[("givors", "office")] == 0.0  # expected and never verified: the alert must fire


def test_status_backup_probe_expects_only_the_tenants_components(tmp_path: Path, inventory) -> None:
    from tnoctl.probes.targets import backup_probe

    store = state_store.Store(tmp_path)
    store.record_backup(state_store.BackupResult("bron", "office", True, 1000.0, 1.0))
    probe = backup_probe(inventory, store, only=["bron", "feyzin"], now=lambda: 2000.0)
    results = probe.run(5.0)
    assert sorted({(r.tenant, r.component) for r in results}) == [("bron", "office"), ("feyzin", "mail")]
    bron = next(r for r in results if (r.tenant, r.check) == ("bron", "backup"))
    assert bron.ok and bron.detail == "last success 0.3 h ago"


def _remove(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, slug: str) -> tuple[int, str, FakeSsh, Path]:
    """actions.tenant_remove on a copy of the lab inventory, SSH faked: (exit code, message, ssh, inventory)."""
    import shutil

    from tnoctl.actions import tenant_remove

    inv = tmp_path / "inv"
    shutil.copytree(paths.LAB_INVENTORY, inv, ignore=shutil.ignore_patterns(".tno"))
    ssh = FakeSsh()
    env = _env(tmp_path, load_inventory(inv), ssh, inv)
    outcome = tenant_remove.run(env, tenant_remove.TenantRemoveRequest(slug))
    return outcome.exit_code, str(outcome.message), ssh, inv


def test_removing_an_office_only_tenant_cleans_its_office_host_and_exports_no_mail(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rc, err, ssh, inv = _remove(tmp_path, monkeypatch, "bron")
    assert rc == 0, err
    assert not any(h == "export" for h, _a in ssh.ran)  # no Maildir to export
    on_office1 = [a for h, a in ssh.ran if h == "office1"]
    assert on_office1[0][2:] == ("bron.office",)  # the final backup of its office configuration
    assert ("systemctl", "disable", "--now", "tno-backup@bron.office.timer") in on_office1
    removed = next(a for a in on_office1 if a[0] == "rm")
    assert "/etc/borgmatic.d/bron.office.yaml" in removed and not any("vmail" in p for p in removed)
    assert not any(h.startswith("mail") for h, _a in ssh.ran)
    assert not (inv / "tenants" / "bron.yml").exists() and (tmp_path / "state" / "offboarded" / "bron.yml").exists()


def test_removing_a_tenant_with_both_services_cleans_both_hosts(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    rc, err, ssh, _inv = _remove(tmp_path, monkeypatch, "givors")
    assert rc == 0, err
    timers = [(h, a[3]) for h, a in ssh.ran if a[:3] == ("systemctl", "disable", "--now")]
    assert timers == [("mail2", "tno-backup@givors.timer"), ("office2", "tno-backup@givors.office.timer")]
    assert [a[:3] for h, a in ssh.ran if h == "export"] == [("tar", "-C", "/srv/vmail")]
