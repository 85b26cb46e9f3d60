"""Orchestration without hosts (kayobe style): the exact ordered playbook calls and SSH commands of
`restore` (mailbox and --to-host), `backup setup`, `tenant remove` and `upgrade` (two-host office
rollout: window, lock, snapshot, apply, gate, and the rollback sequence when the gate fails).

Each test runs the real action against a copy of the lab inventory with tests/unit/fakes.py in
place of ansible-runner and SSH, then asserts what would have run, in order, and what was recorded.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from tests.unit.fakes import FakePlaybookRunner, FakeSsh, Played, failed_result, make_env, ok_result
from tnoctl import paths
from tnoctl.actions import backup_setup, restore, restore_host, tenant_remove, upgrade, upgrade_gate
from tnoctl.actions.env import Env
from tnoctl.backup import borg, naming
from tnoctl.errors import ExitCode, OperationFailed
from tnoctl.plan.calls import PlaybookCall
from tnoctl.state import audit, locks

NOW = datetime(2026, 11, 29, 11, 0, tzinfo=UTC)  # Sunday noon in Paris: the lab windows are open
ARCHIVE = "givors-2026-11-29T03:00:00"
OLDER = "givors-2026-11-28T03:00:00"
PASSPHRASE_VAR = naming.passphrase_var("givors")


@pytest.fixture()
def inventory(tmp_path: Path) -> Path:
    """A private copy of the lab inventory (restore and tenant remove rewrite tenant files)."""
    copy = tmp_path / "inventory"
    shutil.copytree(paths.LAB_INVENTORY, copy, ignore=shutil.ignore_patterns(".tno"))
    return copy


def _env(inventory: Path, tmp_path: Path, ssh: FakeSsh, playbooks: FakePlaybookRunner | None = None) -> Env:
    return make_env(inventory, tmp_path / "state", ssh=ssh, playbooks=playbooks or FakePlaybookRunner(),
                    clock=NOW.timestamp, vault_password_file=inventory / "vault-password")


def _borg(args: list[str]) -> tuple[str, ...]:
    return tuple(borg.borg_command("x", args)[0])


INFO = _borg(["info", "--json", "--glob-archives", "givors*", naming.repo_path("givors")])
INFO_JSON = json.dumps({"archives": [{"name": OLDER, "start": "2026-11-28T03:00:00", "stats": {}},
                                     {"name": ARCHIVE, "start": "2026-11-29T03:00:00", "stats": {}}]})


def _records(env: Env, verb: str) -> list[dict]:
    return [r for r in audit.read(env.state_dir) if r["verb"] == verb]


def test_restore_mailbox_lists_archives_then_imports_into_a_dated_folder(inventory: Path, tmp_path: Path) -> None:
    ssh = FakeSsh({("backup1", "runuser"): (0, INFO_JSON),
                   ("mail2", naming.AGENT): (0, '{"ok": true, "checked": 12, "missing": 0}')})
    env = _env(inventory, tmp_path, ssh)
    outcome = restore.run(env, restore.RestoreRequest("givors", mailbox="DGS@givors.test"))

    assert outcome.exit_code == ExitCode.OK, outcome
    assert ssh.commands == [
        ("backup1", INFO),
        ("mail2", (naming.AGENT, "restore-mailbox", "givors", "dgs@givors.test", ARCHIVE,
                   "Restored-20261129-110000")),
    ]
    assert env.playbooks.calls == []  # type: ignore[attr-defined]
    secret = ssh.inputs[0]
    assert secret and secret.endswith(b"\n")  # the passphrase goes on stdin, never in argv
    (record,) = _records(env, "restore")
    assert record["args"] == ["tenant=givors", "mailbox=DGS@givors.test"] and record["result"] == "ok"
    assert secret.strip().decode() not in json.dumps(record)
    assert locks.list_locks(env.state_dir) == []  # the tenant lock was held, then released


def test_restore_to_host_moves_placement_deploys_then_restores_the_tenant(inventory: Path, tmp_path: Path) -> None:
    from tests.unit.dnsfakes import GENKEY_TXT as GENKEY
    from tests.unit.dnsfakes import FakeDns, dkim_reply

    ssh = FakeSsh({("backup1", "runuser"): (0, INFO_JSON), ("mail1", "grep"): dkim_reply(GENKEY),
                   ("mail1", naming.AGENT): (0, '{"ok": true, "mailboxes": 5, "checked": 30, "missing": 0, '
                                               '"userdb_missing": 0}'),
                   ("mail1", (naming.AGENT, "fetch-tenant", "givors", OLDER)): (0, '{"seconds": 1.0}')})
    runner = FakePlaybookRunner()
    env = _env(inventory, tmp_path, ssh, runner)
    outcome = restore.run(env, restore.RestoreRequest("givors", to_host="mail1", archive=OLDER),
                          dns_client=lambda e, key: FakeDns())

    assert outcome.exit_code == ExitCode.OK, outcome
    assert runner.played == [  # mail2 answers: it is redeployed too (routes givors.test to mail1)
        Played("backup.yml", ("backup1", "mail1", "mail2"), ("tno_action",), False),
        Played("site.yml", ("mail1", "mail2"), ("tno_action",), False),
    ]
    assert [c.extra_vars for c in runner.calls] == [{"tno_action": "deploy"}] * 2
    assert ssh.commands[:6] == [
        ("backup1", INFO),
        ("mail2", ("true",)),
        ("mail1", (naming.AGENT, "fetch-tenant", "givors", OLDER)),  # while site.yml runs
        ("mail1", (naming.AGENT, "restore-tenant", "givors", OLDER)),
        ("mail1", ("systemctl", "restart", "rspamd")),
        ("mail1", ("python3", "-c", restore_host.WAIT_FOR_PORT, "11332", "60")),  # the milter answers again
    ]
    assert yaml.safe_load((inventory / "tenants" / "givors.yml").read_text())["placement"]["mail"] == "mail1"
    (record,) = _records(env, "restore")
    assert record["details"]["placement"] == {"mail": {"from": "mail2", "to": "mail1"}}


def test_restore_to_host_stops_when_the_deploy_fails(inventory: Path, tmp_path: Path) -> None:
    ssh = FakeSsh({("backup1", "runuser"): (0, INFO_JSON)})
    runner = FakePlaybookRunner(lambda call: failed_result(call, "mail1", "Install postfix", "no route")
                                if call.playbook == "site.yml" else ok_result(call, call.limit))
    env = _env(inventory, tmp_path, ssh, runner)
    outcome = restore.run(env, restore.RestoreRequest("givors", to_host="mail1"))

    assert outcome.exit_code == ExitCode.FAILED
    assert [p.playbook for p in runner.played] == ["backup.yml", "site.yml"]
    # the fetch ran beside site.yml; the import (restore-tenant) never runs
    assert ssh.commands == [("backup1", INFO), ("mail2", ("true",)),
                            ("mail1", (naming.AGENT, "fetch-tenant", "givors", ARCHIVE))]
    assert "site.yml failed on mail1, mail2: mail1: Install postfix: no route" in outcome.rows[0][3]


def test_backup_setup_runs_backup_yml_once(inventory: Path, tmp_path: Path) -> None:
    runner = FakePlaybookRunner()
    env = _env(inventory, tmp_path, FakeSsh(), runner)
    assert backup_setup.setup(env, backup_setup.SetupRequest()).exit_code == ExitCode.OK
    assert backup_setup.setup(env, backup_setup.SetupRequest(("mail2", "backup1"))).exit_code == ExitCode.OK
    assert runner.played == [Played("backup.yml", (), ("tno_action",), False),
                             Played("backup.yml", ("backup1", "mail2"), ("tno_action",), False)]
    records = _records(env, "backup setup")
    assert [r["args"] for r in records] == [[], ["hosts=mail2,backup1"]]
    assert env.ssh.commands == []  # type: ignore[attr-defined]


def test_backup_setup_failure_exits_1_and_names_the_task(inventory: Path, tmp_path: Path) -> None:
    runner = FakePlaybookRunner(lambda call: failed_result(call, "backup1", "Create the repository owner"))
    env = _env(inventory, tmp_path, FakeSsh(), runner)
    outcome = backup_setup.setup(env, backup_setup.SetupRequest())
    assert outcome.exit_code == ExitCode.FAILED
    assert outcome.errors == ["backup1: Create the repository owner: boom"]
    assert _records(env, "backup setup")[0]["result"] == "failed"


def test_tenant_remove_backs_up_exports_removes_redeploys_and_shreds(inventory: Path, tmp_path: Path) -> None:
    """Issue 13: before, the office host kept its caches, shared configuration kept the tenant, the key stayed."""
    repo_id = "ab" * 32
    ssh = FakeSsh({("mail2", naming.AGENT): (0, '{"ok": true, "archive": "givors-x"}'),
                   ("office2", naming.AGENT): (0, '{"ok": true, "archive": "givors.office-x"}'),
                   ("backup1", "runuser"): (0, repo_id + "\n")})
    runner = FakePlaybookRunner()
    env = _env(inventory, tmp_path, ssh, runner)
    outcome = tenant_remove.run(env, tenant_remove.TenantRemoveRequest("givors", tmp_path / "exports"))

    assert outcome.exit_code == ExitCode.OK, outcome
    state = "/var/lib/tno-backup/state"
    assert ssh.commands == [
        ("mail2", (naming.AGENT, "run", "givors")),
        ("office2", (naming.AGENT, "run", "givors.office")),
        ("mail2", ("tar", "-C", "/srv/vmail", "-czf", "-", "givors.test")),
        ("mail2", ("systemctl", "disable", "--now", "tno-backup@givors.timer", "tno-backup-drill-givors.timer")),
        ("mail2", ("systemctl", "reset-failed", "tno-backup@givors.service", "tno-backup-drill@givors.service")),
        ("mail2", ("rm", "-rf", "--one-file-system", "/srv/vmail/givors.test", "/etc/opendkim/keys/givors.test",
                   naming.borgmatic_config("givors"), "/etc/tno-backup/tenants/givors.json",
                   "/etc/tno-backup/givors.passphrase", "/etc/tno-backup/keys/givors",
                   "/etc/tno-backup/keys/givors.pub", f"{state}/givors.json", f"{state}/givors.initialised",
                   f"{state}/givors.stage.json", f"{state}/givors.manifest-cache.json",
                   "/run/lock/tno-backup-givors.lock",
                   "/var/lib/prometheus/node-exporter/tno_backup_givors.prom",
                   "/var/lib/systemd/timers/stamp-tno-backup@givors.timer",
                   "/var/lib/systemd/timers/stamp-tno-backup-drill-givors.timer",
                   "/etc/systemd/system/tno-backup-drill-givors.timer", f"{naming.STAGING_ROOT}/givors")),
        ("mail2", ("systemctl", "daemon-reload")),
        ("office2", ("systemctl", "disable", "--now", "tno-backup@givors.office.timer",  # its office backup unit
                     "tno-backup-drill-givors.office.timer")),
        ("office2", ("systemctl", "reset-failed", "tno-backup@givors.office.service",
                     "tno-backup-drill@givors.office.service")),
        ("office2", ("rm", "-rf", "--one-file-system", naming.borgmatic_config("givors", "office"),
                     "/etc/tno-backup/tenants/givors.office.json", "/etc/tno-backup/givors.office.passphrase",
                     "/etc/tno-backup/keys/givors.office", "/etc/tno-backup/keys/givors.office.pub",
                     f"{state}/givors.office.json", f"{state}/givors.office.initialised",
                     f"{state}/givors.office.stage.json", f"{state}/givors.office.manifest-cache.json",
                     "/run/lock/tno-backup-givors.office.lock",
                     "/var/lib/prometheus/node-exporter/tno_backup_givors.office.prom",
                     "/var/lib/systemd/timers/stamp-tno-backup@givors.office.timer",
                     "/var/lib/systemd/timers/stamp-tno-backup-drill-givors.office.timer",
                     "/etc/systemd/system/tno-backup-drill-givors.office.timer",
                     f"{naming.STAGING_ROOT}/givors.office")),
        ("office2", ("systemctl", "daemon-reload")),
        ("backup1", ("runuser", "-u", "tnobackup", "--", "sed", "-n", "s/^id = //p", "/srv/tno-backup/givors/config")),
        ("backup1", ("shred", "-u", "-n", "3", "-z", "/srv/tno-backup/givors/config")),  # the key first
        ("backup1", ("rm", "-rf", "--one-file-system", "/srv/tno-backup/givors",
                     "/srv/tno-backup/.rolled-back/givors")),
        ("backup1", ("rm", "-rf", "--one-file-system", f"/var/lib/tnobackup/.config/borg/security/{repo_id}",
                     f"/var/lib/tnobackup/.cache/borg/{repo_id}")),
        ("mail2", ("rm", "-rf", "--one-file-system", f"/root/.config/borg/security/{repo_id}",
                   f"/root/.cache/borg/{repo_id}")),
        ("office2", ("rm", "-rf", "--one-file-system", f"/root/.config/borg/security/{repo_id}",
                     f"/root/.cache/borg/{repo_id}")),
    ]
    # shared configuration regenerated without the tenant: its hosts, then the backup side (authorized_keys)
    assert runner.played == [Played("site.yml", ("mail1", "mail2", "office2"), ("tno_action",), False),
                             Played("backup.yml", ("backup1", "mail2", "office2"), ("tno_action",), False)]
    tarball = tmp_path / "exports" / "givors-maildir-20261129T110000Z.tar.gz"
    assert tarball.read_bytes() == b"fake tarball"
    assert not (inventory / "tenants" / "givors.yml").exists()
    assert (env.state_dir / "offboarded" / "givors.yml").exists()
    (record,) = _records(env, "tenant remove")
    assert record["result"] == "ok" and record["details"]["repository"] == "shredded"
    assert "givors" in record["tenants"] and "saint-fons" in record["tenants"]  # office2 neighbours locked


def test_tenant_remove_redeploy_failure_is_reported_and_keeps_the_repository(inventory: Path, tmp_path: Path) -> None:
    ssh = FakeSsh({("mail2", naming.AGENT): (0, '{"ok": true, "archive": "givors-x"}'),
                   ("office2", naming.AGENT): (0, '{"ok": true, "archive": "givors.office-x"}')})
    runner = FakePlaybookRunner(lambda call: failed_result(call, "mail2"))
    env = _env(inventory, tmp_path, ssh, runner)
    with pytest.raises(Exception, match=r"site\.yml on mail1, mail2, office2 failed after the tenant was removed"):
        tenant_remove.run(env, tenant_remove.TenantRemoveRequest("givors", tmp_path / "exports"))
    assert not any(argv[0] == "shred" for _h, argv in ssh.commands)


def test_tenant_remove_keeps_everything_when_the_final_backup_fails(inventory: Path, tmp_path: Path) -> None:
    ssh = FakeSsh({("mail2", naming.AGENT): (1, '{"ok": false, "detail": "borg: repository locked"}')})
    env = _env(inventory, tmp_path, ssh)
    with pytest.raises(Exception, match="final backup failed, nothing removed"):
        tenant_remove.run(env, tenant_remove.TenantRemoveRequest("givors", tmp_path / "exports"))
    assert [argv[0] for _host, argv in ssh.commands] == [naming.AGENT, naming.AGENT]  # no tar, no rm
    assert (inventory / "tenants" / "givors.yml").exists()
    assert _records(env, "tenant remove")[0]["result"] == "failed"


class Office:
    """Two office hosts on the lab inventory: installed versions that the apply playbook moves."""

    def __init__(self, env_holder: list[Env], broken: str = "") -> None:
        self.installed = {"office1": "24.04.10.1", "office2": "24.04.10.1"}
        self.broken = broken
        self.locked_during_apply: list[list[str]] = []
        self.env_holder = env_holder

    def ssh(self, host: str, argv: tuple[str, ...]) -> tuple[int, str]:
        if argv[0] == "dpkg-query":
            return 0, self.installed[host]
        if argv[0] == naming.AGENT:
            return 0, json.dumps({"ok": True, "archive": f"{argv[2]}.tag-x"})
        if argv[:2] == ("apt-cache", "madison"):  # pre-flight: what the repository offers
            return 0, "".join(f"{p} | {v} | http://repo tno-lab/main all Packages\n"
                              for p in argv[2:] for v in ("24.04.10.1", "24.04.11.1", "24.04.12.1"))
        return 0, ""

    def play(self, call: PlaybookCall):
        (host,) = call.limit
        self.installed[host] = call.extra_vars["tno_office_version"]
        self.locked_during_apply.append(sorted(s.tenant for s in locks.list_locks(self.env_holder[0].state_dir)))
        return ok_result(call)

    def probes(self, env: Env, component: str, tenants: list[str], version: str) -> list[str]:
        return [f"{t}/office_discovery: HTTP 500" for t in tenants] if version == self.broken else []


def _upgrade(inventory: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, version: str, broken: str = ""):
    holder: list[Env] = []
    office = Office(holder, broken)
    ssh = FakeSsh({"office1": office.ssh, "office2": office.ssh})
    env = _env(inventory, tmp_path, ssh, FakePlaybookRunner(office.play))
    holder.append(env)
    # the gate's network probes are tnoctl/probes (tested on their own): here they pass unless the version is broken
    monkeypatch.setattr(upgrade_gate, "_gate_probes", office.probes)
    monkeypatch.setattr(upgrade_gate, "_probe_failures", lambda failures: failures)
    request = upgrade.UpgradeRequest("office", version, waves="canary,100%", gate_timeout=0)
    return env, ssh, office, upgrade.run(env, request)


def _snapshot(op: str, host: str) -> list[tuple[str, tuple[str, ...]]]:
    snap = f"/var/backups/tno-upgrade/{op}"
    return [(host, tuple(upgrade_gate.VERSION_COMMAND["office"])),
            (host, ("sh", "-c", f"set -e; mkdir -p -m 0700 {snap}; "
                                f"tar -C / --ignore-failed-read -czf {snap}/config.tar.gz etc/coolwsd"))]


def _preflight() -> list[tuple[str, tuple[str, ...]]]:
    return sorted((h, argv) for h in ("office1", "office2") for argv in (
        ("apt-get", "update", "-q"), ("apt-cache", "madison", "coolwsd", "coolwsd-kit")))


def test_upgrade_to_a_version_the_repository_lacks_fails_before_anything_stops(
        inventory: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(OperationFailed, match=r"pre-flight: version 24\.04\.99\.1 is not available.*"
                                              r"office1: coolwsd=24\.04\.99\.1, coolwsd-kit=24\.04\.99\.1"):
        _upgrade(inventory, tmp_path, monkeypatch, "24.04.99.1")


def test_tenants_unhealthy_before_the_rollout_are_excluded_from_the_gate(
        inventory: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """bron's document probe already fails before the rollout: reported, not gating, no rollback."""
    def probes(env: Env, component: str, tenants: list[str], version: str | None) -> list[str]:
        return ["bron/office_document: kind=faileddocloading"] if "bron" in tenants else []

    monkeypatch.setattr(Office, "probes", lambda self, *a: probes(*a))
    env, _ssh, _office, outcome = _upgrade(inventory, tmp_path, monkeypatch, "24.04.11.1")
    assert outcome.exit_code == ExitCode.OK, outcome
    (record,) = _records(env, "upgrade")
    assert record["details"]["unhealthy_before"] == ["bron/office_document"]
    gates = [r["details"]["detail"] for r in _records(env, "upgrade step") if r["details"]["step"] == "gate"]
    assert "excluded (unhealthy before the rollout): bron/office_document" in gates[0]


def _safety(op: str, host: str, slugs: list[str]) -> list[tuple[str, tuple[str, ...]]]:
    return [(host, (naming.AGENT, "run", f"{s}.office", "--tag", f"pre-upgrade-{op}")) for s in slugs]


def _apply(host: str, version: str, op: str, rollback: bool = False) -> dict:
    return {"tno_action": "upgrade", "tno_upgrade_component": "office", "tno_upgrade_id": op,
            "tno_upgrade_rollback": rollback, "tno_office_version": version,
            "tno_upgrade_snapshot_dir": f"/var/backups/tno-upgrade/{op}"}


def test_upgrade_two_office_hosts_canary_first_then_pin(inventory: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    env, ssh, office, outcome = _upgrade(inventory, tmp_path, monkeypatch, "24.04.11.1")

    assert outcome.exit_code == ExitCode.OK, outcome
    op = outcome.data["operation"]
    # office1 carries the pilot and the office-only bron (whose office configuration is archived too)
    canary, rest = ["bron", "vaulx-en-velin", "venissieux"], ["corbas", "givors", "saint-fons"]
    gate = tuple(upgrade_gate.VERSION_COMMAND["office"])
    assert sorted(ssh.commands[2:6]) == _preflight()  # pre-flight, both hosts in parallel, before anything stops
    assert ssh.commands[:2] + ssh.commands[6:] == [
        ("office1", gate), ("office2", gate),  # installed versions, for the plan shown before confirming
        *_snapshot(op, "office1"), *_safety(op, "office1", canary), ("office1", gate),  # gate
        *_snapshot(op, "office2"), *_safety(op, "office2", rest), ("office2", gate),
    ]
    assert [c.extra_vars for c in env.playbooks.calls] == [  # type: ignore[attr-defined]
        _apply("office1", "24.04.11.1", op), _apply("office2", "24.04.11.1", op)]
    assert [c.limit for c in env.playbooks.calls] == [("office1",), ("office2",)]  # type: ignore[attr-defined]
    assert office.locked_during_apply == [canary, rest]  # each host's tenants locked while it upgrades
    assert locks.list_locks(env.state_dir) == []
    steps = [(r["hosts"][0], r["details"]["step"], r["result"]) for r in _records(env, "upgrade step")]
    assert steps == [(h, s, "ok") for h in ("office1", "office2") for s in ("snapshot", "apply", "gate")]
    (record,) = _records(env, "upgrade")
    assert record["result"] == "ok" and "component=office" in record["args"]
    platform = yaml.safe_load((inventory / "group_vars" / "all" / "platform.yml").read_text())
    assert platform["tno_office_version"] == "24.04.11.1"


def test_upgrade_gate_failure_rolls_the_canary_back_and_halts(inventory: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    env, ssh, office, outcome = _upgrade(inventory, tmp_path, monkeypatch, "24.04.12.1", broken="24.04.12.1")

    assert outcome.exit_code == ExitCode.FAILED
    op = outcome.data["operation"]
    assert outcome.data["hosts"] == {"office1": "rolled_back", "office2": "skipped"}
    assert [c.extra_vars for c in env.playbooks.calls] == [  # type: ignore[attr-defined]
        _apply("office1", "24.04.12.1", op), _apply("office1", "24.04.10.1", op, rollback=True)]
    gate = tuple(upgrade_gate.VERSION_COMMAND["office"])
    on_office1 = ["bron", "vaulx-en-velin", "venissieux"]
    assert ssh.commands[6:] == [*_snapshot(op, "office1"), *_safety(op, "office1", on_office1),
                                ("office1", gate),  # gate: 24.04.12.1 installed, probes fail
                                ("office1", gate)]  # regate after the rollback: healthy on 24.04.10.1
    assert office.installed == {"office1": "24.04.10.1", "office2": "24.04.10.1"}
    steps = [(r["details"]["step"], r["result"]) for r in _records(env, "upgrade step")]
    assert steps == [("snapshot", "ok"), ("apply", "ok"), ("gate", "failed"), ("rollback", "ok"), ("regate", "ok")]
    assert _records(env, "upgrade")[0]["result"] == "failed"
    platform = yaml.safe_load((inventory / "group_vars" / "all" / "platform.yml").read_text())
    assert platform["tno_office_version"] == "24.04.10.1-1"  # the lab pin, never moved by a failed rollout


def test_backup_shred_destroys_the_key_before_the_data(inventory: Path, tmp_path: Path) -> None:
    from tnoctl.actions import backup_repo

    ssh = FakeSsh()
    env = _env(inventory, tmp_path, ssh)
    assert backup_repo.shred(env, backup_repo.ShredRequest("oldcommune")).exit_code == ExitCode.OK
    repo = naming.repo_path("oldcommune")
    assert ssh.commands == [("backup1", ("shred", "-u", "-n", "3", "-z", f"{repo}/config")),
                            ("backup1", ("rm", "-rf", "--one-file-system", repo,
                                         f"{naming.QUARANTINE_ROOT}/oldcommune"))]
    failing = FakeSsh({("backup1", "shred"): (1, "shred: Permission denied")})
    outcome = backup_repo.shred(_env(inventory, tmp_path, failing), backup_repo.ShredRequest("oldcommune"))
    assert outcome.exit_code == ExitCode.FAILED and failing.commands[-1][1][0] == "shred"  # no rm after a failure
    assert [r["result"] for r in _records(env, "backup shred")] == ["ok", "failed"]
