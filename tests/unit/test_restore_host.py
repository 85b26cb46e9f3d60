"""Disaster recovery onto a host that never served the tenant (issue 16 item 6), without hosts.

A copy of the lab inventory gets a sixth host, ``mail3`` (198.18.0.16) in group ``mail``, as an
operator would add a freshly provisioned machine; ``restore --tenant feyzin --to-host mail3`` then runs
against tests/unit/fakes.py. Asserted: the exact ordered playbook calls (routing follows: every other
mail host that answers is redeployed; a dead old host is left out and named), the SSH commands, the
placement rewrite, the DNS records replaced (A records of the mail names now carry mail3's address)
and what reaches the audit log.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from tests.unit.dnsfakes import DKIM_VALUE, FakeDns, dkim_reply
from tests.unit.dnsfakes import GENKEY_TXT as GENKEY
from tests.unit.fakes import (
    FakePlaybookRunner,
    FakeSsh,
    Played,
    failed_result,
    files_tls_mode,
    make_env,
    ok_result,
    without_dns_server,
)
from tnoctl import paths
from tnoctl.actions import restore, restore_host
from tnoctl.actions.env import Env
from tnoctl.actions.tenant_dns import dkim_argv, records_for
from tnoctl.actions.tenant_dns_sync import Expected, classify, plan_update
from tnoctl.backup import borg, naming
from tnoctl.errors import ExitCode, Locked, OperationFailed
from tnoctl.plan.backup import DisasterPhases, disaster_hosts, disaster_phases, setup_call, site_call
from tnoctl.state import audit, locks

NOW = datetime(2026, 11, 29, 11, 0, tzinfo=UTC)
SLUG, OLD, NEW, NEW_ADDRESS, OLD_ADDRESS = "feyzin", "mail2", "mail3", "198.18.0.16", "198.18.0.12"
ARCHIVE = "feyzin-2026-11-29T03:00:00"
AGENT_OK = '{"ok": true, "mailboxes": 5, "checked": 42, "missing": 0, "userdb_missing": 0}'
FETCH = (naming.AGENT, "fetch-tenant", SLUG, ARCHIVE)
FETCH_OK = json.dumps({"tenant": SLUG, "archive": ARCHIVE, "seconds": 12.5})
INFO = tuple(borg.borg_command("x", ["info", "--json", "--glob-archives", "feyzin*", naming.repo_path(SLUG)])[0])
INFO_JSON = json.dumps({"archives": [{"name": ARCHIVE, "start": "2026-11-29T03:00:00", "stats": {}}]})


def _lab_zone() -> dict[tuple[str, str], list[str]]:
    """What the DNS serves for feyzin.test before the disaster: every record published, its mail names on mail2."""
    zone: dict[tuple[str, str], list[str]] = {}
    for row in records_for("feyzin.test", "mail.feyzin.test", None, {"tno2026": DKIM_VALUE}, OLD_ADDRESS):
        zone.setdefault((row["name"], row["type"]), []).append(row["value"])
    return zone


@pytest.fixture()
def inventory(tmp_path: Path) -> Path:
    """The lab inventory with mail3 added to group mail (a new machine, never deployed)."""
    copy = tmp_path / "inventory"
    shutil.copytree(paths.LAB_INVENTORY, copy, ignore=shutil.ignore_patterns(".tno"))
    hosts = yaml.safe_load((copy / "hosts.yml").read_text())
    hosts["all"]["children"]["mail"]["hosts"][NEW] = {"ansible_host": NEW_ADDRESS}
    (copy / "hosts.yml").write_text(yaml.safe_dump(hosts, sort_keys=False))
    return copy


def _ssh(old_answers: bool = True) -> FakeSsh:
    def reach(host: str, argv: tuple[str, ...]) -> tuple[int, str]:
        if not old_answers:
            raise OperationFailed(f"{host}: cannot connect to {OLD_ADDRESS}:22: no route to host")
        return 0, ""

    return FakeSsh({("backup1", "runuser"): (0, INFO_JSON), (OLD, "true"): reach,
                    (NEW, naming.AGENT): (0, AGENT_OK), (NEW, FETCH): (0, FETCH_OK), (NEW, "grep"): dkim_reply(GENKEY)})


def _env(inventory: Path, tmp_path: Path, ssh: FakeSsh, runner: FakePlaybookRunner | None = None) -> Env:
    return make_env(inventory, tmp_path / "state", ssh=ssh, playbooks=runner or FakePlaybookRunner(),
                    clock=NOW.timestamp, vault_password_file=inventory / "vault-password")


def _restore(env: Env, dns: FakeDns) -> restore.Outcome:
    return restore.run(env, restore.RestoreRequest(SLUG, to_host=NEW), dns_client=lambda e, key: dns)


def _record(env: Env) -> dict:
    (record,) = [r for r in audit.read(env.state_dir) if r["verb"] == "restore"]
    return record


def test_new_host_gets_the_tenant_routing_backups_and_dns_follow(inventory: Path, tmp_path: Path) -> None:
    ssh, runner, dns = _ssh(), FakePlaybookRunner(), FakeDns(_lab_zone())
    env = _env(inventory, tmp_path, ssh, runner)
    outcome = _restore(env, dns)

    assert outcome.exit_code == ExitCode.OK, (outcome.rows, outcome.errors)
    assert runner.played == [
        # mail3's key authorized on backup1 (the fetch needs it); mail2 stops backing up feyzin
        Played("backup.yml", ("backup1", "mail2", "mail3"), ("tno_action",), False),
        # the new host, and mail2 (it answers: it drops feyzin.test in the same run), while mail3 fetches
        Played("site.yml", ("mail2", "mail3"), ("tno_action",), False),
        # after the DNS moved (the tenant is served): mail1's allowlist learns mail3
        Played("site.yml", ("mail1",), ("tno_action",), False),
    ]
    assert ssh.commands == [
        ("backup1", INFO),
        (OLD, ("true",)),
        (NEW, FETCH),  # beside site.yml: the archive extracted on mail3 while it is deployed
        (NEW, (naming.AGENT, "restore-tenant", SLUG, ARCHIVE)),  # then imported from the fetched tree
        (NEW, ("systemctl", "restart", "rspamd")),
        (NEW, ("python3", "-c", restore_host.WAIT_FOR_PORT, "11332", "60")),  # the milter answers again
        (NEW, tuple(dkim_argv(["feyzin.test"]))),  # DKIM read where it now lives
    ]
    tenant = yaml.safe_load((inventory / "tenants" / f"{SLUG}.yml").read_text())
    assert tenant["placement"] == {"mail": NEW}
    for name in ("mail", "smtp", "imap", "autoconfig", "mta-sts"):
        assert dns.records[(f"{name}.feyzin.test.", "A")] == [NEW_ADDRESS]
    ((zone, deletes, adds),) = dns.updates
    assert zone == "feyzin.test"
    assert ("mail.feyzin.test.", "A", None) in deletes and ("mail.feyzin.test.", "A", NEW_ADDRESS) in adds
    assert dns.records[("feyzin.test.", "MX")] == ["10 mail.feyzin.test."]
    record = _record(env)
    assert record["result"] == "ok" and record["args"] == [f"tenant={SLUG}", f"to_host={NEW}"]
    assert record["details"]["placement"] == {"mail": {"from": OLD, "to": NEW}}
    assert record["details"]["deployed"] == ["mail1", "mail2", "mail3"]
    assert 0 <= record["details"]["serving_after_seconds"] < 60
    assert record["details"]["fetch_seconds"] == 12.5
    assert record["details"]["dns"]["mail.feyzin.test. A"] == "published"
    assert locks.list_locks(env.state_dir) == []


def test_a_dead_old_host_is_left_out_and_named(inventory: Path, tmp_path: Path) -> None:
    ssh, runner = _ssh(old_answers=False), FakePlaybookRunner()
    env = _env(inventory, tmp_path, ssh, runner)
    outcome = _restore(env, FakeDns(_lab_zone()))

    assert outcome.exit_code == ExitCode.OK, outcome.rows
    assert runner.played == [
        Played("backup.yml", ("backup1", "mail3"), ("tno_action",), False),
        Played("site.yml", ("mail3",), ("tno_action",), False),
        Played("site.yml", ("mail1",), ("tno_action",), False),  # mail1 learns the new route
    ]
    warning = env.output.stderr.getvalue()  # type: ignore[attr-defined]
    assert "mail2 does not answer" in warning and "tnoctl deploy --host mail2" in warning


def test_a_failed_deploy_of_the_new_host_stops_before_the_data(inventory: Path, tmp_path: Path) -> None:
    runner = FakePlaybookRunner(lambda call: failed_result(call, "mail3", "Render the transport map")
                                if call.playbook == "site.yml" else ok_result(call, call.limit))
    ssh = _ssh()
    env = _env(inventory, tmp_path, ssh, runner)
    outcome = _restore(env, FakeDns(_lab_zone()))

    assert outcome.exit_code == ExitCode.FAILED
    assert [p.playbook for p in runner.played] == ["backup.yml", "site.yml"]
    assert [argv[1] for _h, argv in ssh.commands if argv[0] == naming.AGENT] == ["fetch-tenant"]  # no import
    assert "site.yml failed on mail2, mail3: mail3: Render the transport map: boom" in outcome.rows[0][3]


def test_a_failed_backup_side_stops_before_the_deploy_and_the_fetch(inventory: Path, tmp_path: Path) -> None:
    runner = FakePlaybookRunner(lambda call: failed_result(call, "backup1", "Authorize the keys"))
    ssh = _ssh()
    env = _env(inventory, tmp_path, ssh, runner)
    outcome = _restore(env, FakeDns(_lab_zone()))

    assert outcome.exit_code == ExitCode.FAILED
    assert [p.playbook for p in runner.played] == ["backup.yml"]
    assert not any(argv[0] == naming.AGENT for _h, argv in ssh.commands)
    assert "backup.yml failed on backup1, mail2, mail3: backup1: Authorize the keys: boom" in outcome.rows[0][3]


def test_a_failed_fetch_fails_the_restore_naming_it_after_the_deploy(inventory: Path, tmp_path: Path) -> None:
    ssh = _ssh()
    ssh.results[(NEW, FETCH)] = (1, "tno-backup: fetch-tenant feyzin: borgmatic extract failed (rc 2): no space")
    runner = FakePlaybookRunner()
    env = _env(inventory, tmp_path, ssh, runner)
    outcome = _restore(env, FakeDns(_lab_zone()))

    assert outcome.exit_code == ExitCode.FAILED
    assert [p.playbook for p in runner.played] == ["backup.yml", "site.yml"]  # the deploy ran to its end
    assert (NEW, (naming.AGENT, "restore-tenant", SLUG, ARCHIVE)) not in ssh.commands
    detail = outcome.rows[0][3]
    assert f"fetch of {ARCHIVE} on mail3 failed: tno-backup: fetch-tenant feyzin: borgmatic extract failed" in detail


def test_a_failed_follow_up_fails_the_restore_after_the_tenant_is_served(inventory: Path, tmp_path: Path) -> None:
    """The other mail hosts follow after the DNS moved: their failure names them; the data and DNS are done."""
    runner = FakePlaybookRunner(lambda call: failed_result(call, "mail1", "Render the postscreen allowlist")
                                if call.limit == ("mail1",) else ok_result(call, call.limit))
    ssh, dns = _ssh(), FakeDns(_lab_zone())
    env = _env(inventory, tmp_path, ssh, runner)
    outcome = _restore(env, dns)

    assert outcome.exit_code == ExitCode.FAILED
    detail = outcome.rows[0][3]
    assert "served on mail3, but site.yml failed on mail1: mail1: Render the postscreen allowlist: boom" in detail
    assert "(then: tnoctl deploy --host mail1)" in detail
    assert (NEW, (naming.AGENT, "restore-tenant", SLUG, ARCHIVE)) in ssh.commands
    assert dns.records[(f"mail.{SLUG}.test.", "A")] == [NEW_ADDRESS]
    assert "serving_after_seconds" in _record(env)["details"]


def test_dns_that_does_not_follow_fails_the_restore_naming_the_record(inventory: Path, tmp_path: Path) -> None:
    env = _env(inventory, tmp_path, _ssh())
    outcome = _restore(env, FakeDns(_lab_zone(), frozen=True))

    assert outcome.exit_code == ExitCode.FAILED
    detail = outcome.rows[0][3]
    assert "42 messages" in detail  # the data is back; the DNS is what is wrong
    assert "feyzin: a mail.feyzin.test. A is different" in detail
    assert _record(env)["result"] == "failed"


def test_without_a_dns_server_the_records_to_change_are_printed(inventory: Path, tmp_path: Path) -> None:
    without_dns_server(inventory)
    env = _env(inventory, tmp_path, _ssh())

    def no_client(e: Env, key: bool) -> FakeDns:
        raise AssertionError("no DNS server: no client")

    outcome = restore.run(env, restore.RestoreRequest(SLUG, to_host=NEW), dns_client=no_client)
    assert outcome.exit_code == ExitCode.OK, outcome.rows
    assert f"mail.feyzin.test. A {NEW_ADDRESS}" in env.output.stderr.getvalue()  # type: ignore[attr-defined]


def test_restore_onto_the_same_host_redeploys_it_alone(inventory: Path, tmp_path: Path) -> None:
    """A host rebuilt in place (tests/e2e/test_backup.py::test_2): no route changes, no reach check."""
    ssh = FakeSsh({("backup1", "runuser"): (0, INFO_JSON), (OLD, naming.AGENT): (0, AGENT_OK),
                   (OLD, (naming.AGENT, "fetch-tenant", SLUG, ARCHIVE)): (0, FETCH_OK),
                   (OLD, "grep"): dkim_reply(GENKEY)})
    runner = FakePlaybookRunner()
    env = _env(inventory, tmp_path, ssh, runner)
    dns = FakeDns(_lab_zone())
    outcome = restore.run(env, restore.RestoreRequest(SLUG, to_host=OLD), dns_client=lambda e, key: dns)

    assert outcome.exit_code == ExitCode.OK, outcome.rows
    assert runner.played == [Played("backup.yml", ("backup1", "mail2"), ("tno_action",), False),
                             Played("site.yml", ("mail2",), ("tno_action",), False)]
    assert (OLD, ("true",)) not in ssh.commands
    assert dns.records[("mail.feyzin.test.", "A")] == [OLD_ADDRESS]


def test_disaster_plan_is_pure() -> None:
    mail = ["mail1", "mail2", "mail3"]
    assert disaster_hosts("mail3", "mail2", mail, True) == ("mail1", "mail2", "mail3")
    assert disaster_hosts("mail3", "mail2", mail, False) == ("mail1", "mail3")
    assert disaster_hosts("mail2", "mail2", mail, False) == ("mail2",)
    assert disaster_hosts("mail3", None, mail, False) == ("mail3",)
    setup, site, (follow,) = disaster_phases("mail3", "backup1", ("mail1", "mail3"), "mail2")  # mail2 is dead
    assert (setup.limit, site.limit, follow.limit) == (("backup1", "mail3"), ("mail3",), ("mail1",))
    setup, site, (follow,) = disaster_phases("mail3", "backup1", ("mail1", "mail2", "mail3"), "mail2")
    assert (setup.limit, site.limit, follow.limit) == (("backup1", "mail2", "mail3"), ("mail2", "mail3"), ("mail1",))
    assert disaster_phases("mail2", "backup1", ("mail2",), "mail2") == DisasterPhases(
        setup_call(("backup1", "mail2")), site_call(("mail2",)), ())  # rebuilt in place: nothing follows


def test_a_records_of_the_mail_names_carry_the_mail_host_address() -> None:
    rows = records_for("feyzin.test", "mail.feyzin.test", None, None, NEW_ADDRESS)
    assert [(r["name"], r["value"]) for r in rows if r["type"] == "A"] == [
        ("mail.feyzin.test.", NEW_ADDRESS), ("smtp.feyzin.test.", NEW_ADDRESS), ("imap.feyzin.test.", NEW_ADDRESS),
        ("autoconfig.feyzin.test.", NEW_ADDRESS), ("mta-sts.feyzin.test.", NEW_ADDRESS)]
    assert not [r for r in records_for("feyzin.test", "mail.feyzin.test", None, None) if r["type"] == "A"]
    expected = Expected("feyzin.test", "a", "mail.feyzin.test.", "A", NEW_ADDRESS)
    status = classify(expected, [OLD_ADDRESS])
    assert status.state == "different"
    assert plan_update([status]) == {"feyzin.test": ([("mail.feyzin.test.", "A", None)],
                                                     [("mail.feyzin.test.", "A", NEW_ADDRESS)])}
    assert classify(expected, [NEW_ADDRESS]).state == "published"


def test_cli_restore_json_gives_archive_and_duration(inventory: Path, tmp_path: Path) -> None:
    """`restore --to-host ... --json` (what bench/backup.py --rto reads); no DNS server: nothing sent."""
    import io

    from tnoctl.cli import main
    from tnoctl.cli.context import AppContext

    without_dns_server(inventory)
    out, err = io.StringIO(), io.StringIO()
    app = AppContext(inventory=inventory, state_dir_override=tmp_path / "state", stdout=out, stderr=err,
                     vault_password_file=inventory / "vault-password")
    app._env = _env(inventory, tmp_path, _ssh())  # the fakes in place of ansible-runner and SSH
    rc = main(["--inventory", str(inventory), "--state-dir", str(tmp_path / "state"), "--json",
               "restore", "--tenant", SLUG, "--to-host", NEW, "--yes"], app=app)
    assert rc == 0, err.getvalue()
    data = json.loads(out.getvalue())
    assert data["archive"] == ARCHIVE and data["ok"] is True and data["duration_seconds"] >= 0


def test_the_recovery_holds_the_locks_of_every_tenant_on_the_mail_hosts(inventory: Path, tmp_path: Path) -> None:
    """It may redeploy every mail host (routing), so it takes their tenants' locks as `deploy` does (exit 3)."""
    env = _env(inventory, tmp_path, _ssh())
    with locks.hold(env.state_dir, ["saint-fons"], "backup", "nightly-backup-op"), \
            pytest.raises(Locked, match="saint-fons is locked by backup") as raised:  # a tenant of mail1
        _restore(env, FakeDns(_lab_zone()))
    assert raised.value.exit_code == ExitCode.LOCKED
    assert env.playbooks.calls == []  # type: ignore[attr-defined]
    assert yaml.safe_load((inventory / "tenants" / f"{SLUG}.yml").read_text())["placement"]["mail"] == OLD


def test_bench_rto_rows_print_the_ratio_against_raw_extract_and_start() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_backup", paths.PROJECT_ROOT / "bench" / "backup.py")
    assert spec and spec.loader
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    rows = bench.rto_rows(rto=30.0, agent=6.0, extract=8.0, start=2.0, warm=True, total=45.0)
    assert rows[0] == ("tnoctl restore --to-host, standby mail3 (deployed, no tenant): served", 30.0,
                       "RTO = 3.00x raw (goal <= 2x)")
    assert rows[1] == ("  whole command (other mail hosts follow)", 45.0, "4.50x raw")
    assert rows[-1] == ("raw extract + service start", 10.0, "")
    assert rows[2][2] == "0.60x raw"
    assert bench.rto_rows(12.0, 6.0, 8.0, 2.0, warm=False)[0][2] == "RTO = 1.20x raw (goal <= 2x)"


def test_the_milter_port_waited_for_is_the_roles(tmp_path: Path) -> None:
    """restore waits for the port the role binds Rspamd's milter to (a drift would make every wait fail)."""
    role_vars = yaml.safe_load((paths.ROLES_DIR / "tno_mail" / "vars" / "main.yml").read_text())
    assert role_vars["__tno_mail_rspamd_milter_port"] == restore_host.RSPAMD_MILTER_PORT


def test_the_port_wait_script_exits_0_when_the_port_answers_and_1_when_it_never_does() -> None:
    import socket
    import subprocess
    import sys

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        up = subprocess.run([sys.executable, "-c", restore_host.WAIT_FOR_PORT, str(port), "5"], timeout=30)
    down = subprocess.run([sys.executable, "-c", restore_host.WAIT_FOR_PORT, str(port), "0.5"], timeout=30)
    assert (up.returncode, down.returncode) == (0, 1)


def test_an_external_zone_is_not_updated_and_the_records_to_change_are_printed(inventory: Path,
                                                                               tmp_path: Path) -> None:
    tenant = inventory / "tenants" / f"{SLUG}.yml"
    tenant.write_text(tenant.read_text() + "dns:\n  zone: external\n")
    files_tls_mode(inventory)  # acme refuses an external zone (no DNS-01 there)
    env = _env(inventory, tmp_path, _ssh())

    def no_client(e: Env, key: bool) -> FakeDns:
        raise AssertionError("external zone: no client")

    outcome = restore.run(env, restore.RestoreRequest(SLUG, to_host=NEW), dns_client=no_client)
    assert outcome.exit_code == ExitCode.OK, outcome.rows
    err = env.output.stderr.getvalue()  # type: ignore[attr-defined]
    assert f"{SLUG}: its zone is external (dns.zone): the commune must publish these records:" in err
    assert f"mail.feyzin.test. A {NEW_ADDRESS}" in err
    assert "dns" not in _record(env)["details"]
