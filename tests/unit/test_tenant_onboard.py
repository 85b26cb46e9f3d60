"""`tenant onboard` (issue 16 item 3): steps in order, hosts that must learn the tenant, DNS, interrupted then rerun."""

from __future__ import annotations

import io
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.unit.dnsfakes import FakeDns, dkim_reply
from tests.unit.fakes import FakePlaybookRunner, FakeSsh, files_tls_mode, make_env, without_dns_server
from tnoctl import paths
from tnoctl.actions import tenant_onboard
from tnoctl.backup import naming
from tnoctl.cli import main
from tnoctl.cli.context import AppContext
from tnoctl.errors import ExitCode
from tnoctl.probes.base import ProbeResult
from tnoctl.state import audit, locks


@pytest.fixture()
def inv(tmp_path) -> Path:
    """The lab inventory plus a fifth-style commune `mions` on mail2/office2, added by `tenant add`."""
    dest = tmp_path / "inv"
    shutil.copytree(paths.LAB_INVENTORY, dest, ignore=shutil.ignore_patterns(".tno"))
    app = AppContext(inventory=dest, state_dir_override=tmp_path / "add-state", stdout=io.StringIO(),
                     stderr=io.StringIO())
    rc = main(["--inventory", str(dest), "tenant", "add", "mions", "--name", "Mions", "--insee", "69283",
               "--domain", "mions.test", "--mailbox", "mairie", "--mail-host", "mail2", "--office-host", "office2"],
              app=app)
    assert rc == 0, app.stderr.getvalue()
    return dest


SUNDAY_3AM = datetime(2026, 12, 6, 2, 0, tzinfo=UTC).timestamp()  # 03:00 Europe/Paris
MAIL2 = "198.18.0.12"


def _hosts_ok() -> FakeSsh:
    """mail2 and office2 whose backup agent succeeds; mail2 holds the DKIM key the deploy generated."""
    agent = (0, json.dumps({"ok": True, "finished_at": 1000.0, "duration_seconds": 1.0, "archive": "mions-x"}))
    return FakeSsh(results={("mail2", "grep"): dkim_reply(), ("mail2", naming.AGENT): agent,
                            ("office2", naming.AGENT): agent})


def _onboard(env, dns: FakeDns | None = None, **request):
    """tenant_onboard.run with a DNS server in memory (never the lab's)."""
    fake = dns if dns is not None else FakeDns()
    return tenant_onboard.run(env, tenant_onboard.OnboardRequest("mions", **request), dns_client=lambda e, key: fake)


class Interrupt:
    """An agent reply that interrupts the first backup (Ctrl-C mid-run), then succeeds."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, host: str, argv: tuple[str, ...]) -> tuple[int, str]:
        if argv[1] == "results":
            return 0, json.dumps({"units": {}})
        self.calls += 1
        if self.calls == 1:
            raise KeyboardInterrupt
        return 0, json.dumps({"ok": True, "finished_at": 1000.0 + self.calls, "duration_seconds": 1.0,
                              "archive": f"{argv[2]}-2026-12-01T16:00:00.000000"})


@pytest.fixture()
def probes_ok(monkeypatch):
    monkeypatch.setattr(tenant_onboard, "gather", lambda env, request: [
        ProbeResult(request.tenants[0], c, "x", True, 0.1) for c in ("mail", "office")])


@pytest.fixture()
def drill_ok(monkeypatch):
    monkeypatch.setattr(tenant_onboard, "_drill",
                        lambda env, slug: tenant_onboard.StepResult("drill", "ok", detail="3 messages checked"))


def test_onboard_interrupted_then_rerun_finishes_without_redoing_steps(inv, tmp_path, probes_ok, drill_ok):
    runner = FakePlaybookRunner()
    agent = Interrupt()
    ssh = FakeSsh(results={("mail2", naming.AGENT): agent, ("office2", naming.AGENT): agent,
                           ("mail2", "grep"): dkim_reply()})
    env = make_env(inv, tmp_path / "state", playbooks=runner, ssh=ssh, vault_password_file=inv / "vault-password",
                   clock=lambda: SUNDAY_3AM)  # inside mions' default window: no check pass for the window guard
    mail_hosts = sorted(n for n, h in env.inventory.hosts.items() if "mail" in h.groups)
    expected_hosts = tuple(sorted({*mail_hosts, "office2"}))
    dns = FakeDns()
    with pytest.raises(KeyboardInterrupt):
        _onboard(env, dns)
    # deployed every mail host (routing/TLS maps of mail1 learn mions.test) and its office host, then backups
    assert [(c.playbook, tuple(c.limit), c.check) for c in runner.calls] == [
        ("site.yml", expected_hosts, False),
        ("backup.yml", tuple(sorted({*expected_hosts, env.inventory.platform.tno_backup_host})), False)]
    assert locks.list_locks(env.state_dir) == []  # released on Ctrl-C
    assert audit.read(env.state_dir)[-1]["result"] == "interrupted"
    assert [zone for zone, _d, _a in dns.updates] == ["mions.test"]  # published before the backup began

    runner.calls.clear()
    outcome = _onboard(env, dns)
    assert outcome.exit_code == ExitCode.OK, outcome.errors
    assert runner.calls == []  # validate and deploy were done by the interrupted run
    assert [(r[0], r[1]) for r in outcome.rows] == [("validate", "done before"), ("deploy", "done before"),
                                                   ("dns", "done before"), ("backup", "ok"), ("drill", "ok"),
                                                   ("probes", "ok")]
    assert len(dns.updates) == 1  # not published twice
    assert "resuming onboard-mions-1: already done: validate, deploy, dns" in env.output.stderr.getvalue()
    assert outcome.data["journal"] == "onboard-mions-1"
    backups = env.store.latest_backups()
    assert backups[("mions", "mail")].last_success and backups[("mions", "office")].last_success

    again = _onboard(env, dns)  # a finished onboarding starts afresh
    assert again.exit_code == ExitCode.OK and again.data["journal"] == "onboard-mions-2"
    assert [c.playbook for c in runner.calls] == ["site.yml", "backup.yml"]


def test_onboard_stops_at_a_failed_step_and_says_how_to_resume(inv, tmp_path, probes_ok, drill_ok):
    ssh = FakeSsh(results={("mail2", naming.AGENT): (1, json.dumps({"ok": False, "detail": "borgmatic rc 2"})),
                           ("mail2", "grep"): dkim_reply()})
    env = make_env(inv, tmp_path / "state", ssh=ssh, vault_password_file=inv / "vault-password")
    outcome = _onboard(env)
    assert outcome.exit_code == ExitCode.FAILED
    assert outcome.errors[-1] == "fix the cause, then rerun: tnoctl tenant onboard mions"
    assert [r[1] for r in outcome.rows] == ["ok", "ok", "ok", "FAILED"]
    assert audit.read(env.state_dir)[-1]["details"]["failed_step"] == "backup"


def test_onboard_validate_names_a_missing_secret(inv, tmp_path, probes_ok):
    from tnoctl.config import vault

    runner = FakePlaybookRunner()
    env = make_env(inv, tmp_path / "state", playbooks=runner, vault_password_file=inv / "vault-password")
    path = inv / vault.VAULT_REL
    lines = path.read_text().split("\n")
    start = next(i for i, ln in enumerate(lines) if ln.startswith("tno_vault_borg_mions:"))
    end = next(i for i in range(start + 1, len(lines)) if lines[i] and not lines[i].startswith(" "))
    path.write_text("\n".join(lines[:start] + lines[end:]))
    outcome = _onboard(env)
    assert outcome.exit_code == ExitCode.INVALID and runner.calls == []
    assert "missing from the vault: tno_vault_borg_mions" in outcome.errors[0]


def test_onboard_unknown_tenant_is_exit_2(inv, tmp_path):
    app = AppContext(inventory=inv, state_dir_override=tmp_path / "s", stdout=io.StringIO(), stderr=io.StringIO())
    rc = main(["--inventory", str(inv), "tenant", "onboard", "nope", "--yes"], app=app)
    assert rc == 2 and "unknown tenant 'nope'" in app.stderr.getvalue()


def test_onboard_publishes_and_checks_dns_after_the_deploy_through_tenant_dns_publish(inv, tmp_path, probes_ok,
                                                                                      drill_ok):
    """Step 3 is `tenant dns --publish`'s path: MX, SPF, DKIM (read from mail2 after the deploy), DMARC, A."""
    ssh = _hosts_ok()
    env = make_env(inv, tmp_path / "state", ssh=ssh, vault_password_file=inv / "vault-password")
    dns = FakeDns()
    outcome = _onboard(env, dns)
    assert outcome.exit_code == ExitCode.OK, outcome.errors
    assert [r[0] for r in outcome.rows] == ["validate", "deploy", "dns", "backup", "drill", "probes"]
    assert any(host == "mail2" and argv[0] == "grep" and "/etc/opendkim/keys/mions.test" in argv
               for host, argv in ssh.commands)  # the DKIM key the deploy generated, read after it
    assert dns.records[("mions.test.", "MX")] == ["10 mail.mions.test."]
    assert dns.records[("tno2026._domainkey.mions.test.", "TXT")][0].startswith("v=DKIM1;")
    assert dns.records[("mail.mions.test.", "A")] == [MAIL2]
    record = audit.read(env.state_dir)[-1]
    assert record["verb"] == "tenant onboard" and record["details"]["dns"]["mions.test. MX"] == "published"
    assert "DNS published" in outcome.message


def test_onboard_stops_when_the_dns_does_not_take_the_records_and_the_rerun_resumes_there(inv, tmp_path, probes_ok,
                                                                                          drill_ok):
    ssh = _hosts_ok()
    runner = FakePlaybookRunner()
    env = make_env(inv, tmp_path / "state", ssh=ssh, playbooks=runner, vault_password_file=inv / "vault-password")
    outcome = _onboard(env, FakeDns(frozen=True))  # accepts updates, serves none of them
    assert outcome.exit_code == ExitCode.FAILED
    assert [r[1] for r in outcome.rows] == ["ok", "ok", "FAILED"]
    assert "mions: mx mions.test. MX is missing" in outcome.errors[0]
    assert not any(argv[:2] == (naming.AGENT, "run") for _h, argv in ssh.commands)  # no backup after it
    runner.calls.clear()
    rerun = _onboard(env, FakeDns())
    assert rerun.exit_code == ExitCode.OK, rerun.errors
    assert runner.calls == [] and [r[1] for r in rerun.rows][:3] == ["done before", "done before", "ok"]


def _onboard_printed(inv: Path, tmp_path: Path, ssh: FakeSsh):
    """Onboard mions where its records are not the platform's to publish: no DNS client, a `printed` dns step."""
    env = make_env(inv, tmp_path / "state", ssh=ssh, vault_password_file=inv / "vault-password")

    def no_client(e, key):
        raise AssertionError("records not published by the platform: no DNS client")

    outcome = tenant_onboard.run(env, tenant_onboard.OnboardRequest("mions"), dns_client=no_client)
    assert outcome.exit_code == ExitCode.OK, outcome.errors
    assert outcome.rows[2][:2] == ["dns", "printed"]
    return env, outcome


def test_onboard_without_a_dns_server_prints_the_records(inv, tmp_path, probes_ok, drill_ok):
    without_dns_server(inv)
    ssh = _hosts_ok()
    env, outcome = _onboard_printed(inv, tmp_path, ssh)
    err = env.output.stderr.getvalue()
    assert "no tno_dns_server in platform.yml" in err and "mions.test." in err and "MX" in err
    assert any(r["type"] == "MX" for r in outcome.data["steps"][2]["records"])


def test_onboard_of_a_commune_with_an_external_zone_prints_its_records_and_sends_nothing(inv, tmp_path, probes_ok,
                                                                                       drill_ok):
    """The DNS server is named, but mions' zone is at its registrar: the dns step prints, never publishes."""
    tenant = inv / "tenants" / "mions.yml"
    tenant.write_text(tenant.read_text() + "dns:\n  zone: external\n")
    files_tls_mode(inv)  # acme refuses an external zone (no DNS-01 there)
    env, outcome = _onboard_printed(inv, tmp_path, _hosts_ok())
    err = env.output.stderr.getvalue()
    assert "mions: dns.zone is external" in err and "tnoctl dns plan --tenant mions" in err
    assert any(r["type"] == "MX" for r in outcome.data["steps"][2]["records"])
