"""`upgrade os` without hosts: the apt parsing and selection (pure), then the whole rollout on the lab
inventory with tests/unit/fakes.py (kayobe style: the exact ordered SSH argv and playbook calls), the
rollback of a canary whose service does not come back (other hosts untouched), and --resume.

The fake fleet (:class:`Debian`) answers like Debian hosts: ``apt-get -s upgrade`` lists what differs
from the mirror's candidates, the upgrade playbook installs the ``pkg=version`` list it is given (and,
like apt, the dependency libssl3 along with openssl), ``systemctl is-active`` reports a service that
fails with the new libssl3 on a "broken" host.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from tests.unit.fakes import FakePlaybookRunner, FakeSsh, make_env, ok_result
from tests.unit.test_ops_flows import NOW
from tnoctl import paths
from tnoctl.actions import upgrade, upgrade_gate, upgrade_os, upgrade_os_gate
from tnoctl.actions.env import Env
from tnoctl.errors import ExitCode, InvalidInput
from tnoctl.plan import upgrade_os as planner
from tnoctl.plan.calls import PlaybookCall
from tnoctl.state import audit, locks
from tnoctl.state.journal import Journal

SIMULATION = """Reading package lists...
Building dependency tree...
Calculating upgrade...
The following packages will be upgraded:
  libc6 libssl3 openssl tzdata
4 upgraded, 0 newly installed, 0 to remove and 0 not upgraded.
Inst libc6 [2.36-9+deb12u9] (2.36-9+deb12u10 Debian:12.11/stable, Debian-Security:12/stable-security [amd64])
Inst libssl3 [3.0.15-1~deb12u1] (3.0.17-1~deb12u2 Debian-Security:12/stable-security [amd64])
Inst openssl [3.0.15-1~deb12u1] (3.0.17-1~deb12u2 Debian-Security:12/stable-security [amd64])
Inst tzdata [2024b-0+deb12u1] (2025b-0+deb12u1 Debian:12.11/stable-updates [all])
Inst newdep (1.0-1 Debian:12.11/stable [amd64])
Conf libssl3 (3.0.17-1~deb12u2 Debian-Security:12/stable-security [amd64])
"""


def test_parse_simulation_reads_versions_and_origins() -> None:
    pending = planner.parse_simulation(SIMULATION)
    assert [(p.package, p.installed, p.candidate, p.security) for p in pending] == [
        ("libc6", "2.36-9+deb12u9", "2.36-9+deb12u10", True),  # offered by both: security counts
        ("libssl3", "3.0.15-1~deb12u1", "3.0.17-1~deb12u2", True),
        ("openssl", "3.0.15-1~deb12u1", "3.0.17-1~deb12u2", True),
        ("tzdata", "2024b-0+deb12u1", "2025b-0+deb12u1", False),
    ]  # "Inst newdep" (a new install, no [installed]) is not an upgrade
    assert pending[0].origins == ("Debian:12.11/stable", "Debian-Security:12/stable-security")


def test_select_security_only_and_named_packages() -> None:
    pending = planner.parse_simulation(SIMULATION)
    assert planner.select(pending, security_only=True) == {
        "libc6": "2.36-9+deb12u10", "libssl3": "3.0.17-1~deb12u2", "openssl": "3.0.17-1~deb12u2"}
    assert planner.select(pending, packages=("tzdata", "absent")) == {"tzdata": "2025b-0+deb12u1"}
    assert planner.select(pending, packages=("tzdata",), security_only=True) == {}
    assert len(planner.select(pending)) == 4
    assert planner.selection_label(("openssl",), True) == "security:openssl"
    assert planner.parse_packages(" openssl, libssl3,openssl") == ("openssl", "libssl3")
    with pytest.raises(InvalidInput, match="--packages: 'Bad Name' is not a Debian package name"):
        planner.parse_packages("Bad Name")


def test_installed_snapshot_and_downgrade_list() -> None:
    text = "ii \topenssl\t3.0.17-1~deb12u2\nrc \told\t1.0\nii \tlibssl3:amd64\t3.0.17-1~deb12u2\nii \tcron\t3.0\n"
    assert planner.parse_installed(text) == {"openssl": "3.0.17-1~deb12u2", "libssl3": "3.0.17-1~deb12u2",
                                             "cron": "3.0"}
    before = {"openssl": "3.0.15-1~deb12u1", "libssl3": "3.0.15-1~deb12u1", "cron": "3.0", "gone": "1"}
    assert planner.downgrades(before, planner.parse_installed(text)) == {
        "libssl3": "3.0.15-1~deb12u1", "openssl": "3.0.15-1~deb12u1"}


def test_running_services_leave_session_units_out() -> None:
    text = ("cron.service loaded active running Regular background program processing daemon\n"
            "user@1000.service loaded active running User Manager for UID 1000\n"
            "run-r1234.service loaded active running /usr/bin/sleep 5\n"
            "dovecot.service loaded active running Dovecot IMAP/POP3 email server\n")
    assert upgrade_os.running_services(text) == ["cron.service", "dovecot.service"]


OLD = {"libc6": "2.36-9+deb12u9", "libssl3": "3.0.15-1~deb12u1", "openssl": "3.0.15-1~deb12u1",
       "tzdata": "2024b-0+deb12u1", "cron": "3.0pl1-162"}
NEW = {"libc6": ("2.36-9+deb12u10", "Debian-Security:12/stable-security"),
       "libssl3": ("3.0.17-1~deb12u2", "Debian-Security:12/stable-security"),
       "openssl": ("3.0.17-1~deb12u2", "Debian-Security:12/stable-security"),
       "tzdata": ("2025b-0+deb12u1", "Debian:12.11/stable-updates")}
HOSTS = ("backup1", "mail1", "mail2", "office1", "office2")
SERVICES = ["cron.service", "dovecot.service", "ssh.service"]
RUNNING_TEXT = "".join(f"{s} loaded active running x\n" for s in SERVICES) + "user@1001.service loaded active running\n"


class Debian:
    """Five Debian hosts: backup1 already up to date, the others on the release versions."""

    def __init__(self, broken: str = "", reboot: tuple[str, ...] = ()) -> None:
        self.installed = {h: dict(OLD) for h in HOSTS}
        self.installed["backup1"].update({p: v for p, (v, _o) in NEW.items()})
        self.broken, self.reboot = broken, set(reboot)
        self.locked_during_apply: list[list[str]] = []
        self.state_dir: Path | None = None
        self.interrupt_on = ""

    def _tsv(self, host: str) -> str:
        return "".join(f"ii \t{p}\t{v}\n" for p, v in sorted(self.installed[host].items()))

    def ssh(self, host: str, argv: tuple[str, ...]) -> tuple[int, str]:
        mine = self.installed[host]
        if argv == tuple(upgrade_os.SIMULATE):
            return 0, "".join(f"Inst {p} [{mine[p]}] ({v} {o} [amd64])\n" for p, (v, o) in NEW.items() if mine[p] != v)
        if argv[:2] == ("apt-cache", "madison"):  # the mirror offers the release and the new versions
            return 0, "".join(f"{p} | {v} | http://deb.debian.org/debian x\n"
                              for p in argv[2:] for v in (OLD[p], NEW[p][0]))
        if argv[:2] == ("sh", "-c") and "dpkg-query" in argv[2]:
            return 0, self._tsv(host)
        if argv == ("dpkg-query", "-W", "-f", upgrade_os.INSTALLED_FORMAT):
            return 0, self._tsv(host)
        if argv[:4] == tuple(upgrade_os_gate.VERSIONS):
            return 0, "".join(f"{p}\t{mine[p]}\n" for p in argv[4:])
        if argv == tuple(upgrade_os.RUNNING):
            return 0, RUNNING_TEXT
        if argv[:2] == ("systemctl", "is-active"):
            down = host == self.broken and mine["libssl3"] == NEW["libssl3"][0]
            states = ["failed" if down and u == "dovecot.service" else "active" for u in argv[2:]]
            return (3 if "failed" in states else 0), "\n".join(states) + "\n"
        if argv == ("test", "-e", upgrade_os.REBOOT_FLAG):
            return (0, "") if host in self.reboot and mine["libc6"] == NEW["libc6"][0] else (1, "")
        return 0, ""

    def play(self, call: PlaybookCall):
        (host,) = call.limit
        assert self.state_dir is not None
        self.locked_during_apply.append(sorted(s.tenant for s in locks.list_locks(self.state_dir)))
        if (host, call.extra_vars["tno_upgrade_rollback"]) == (self.interrupt_on, False):
            self.interrupt_on = ""
            raise KeyboardInterrupt
        for item in call.extra_vars[planner.PACKAGES_VAR]:
            package, version = item.split("=", 1)
            self.installed[host][package] = version
            if package == "openssl" and not call.extra_vars["tno_upgrade_rollback"]:
                self.installed[host]["libssl3"] = version  # apt upgrades the dependency along
        return ok_result(call)


@pytest.fixture()
def inventory(tmp_path: Path) -> Path:
    copy = tmp_path / "inventory"
    shutil.copytree(paths.LAB_INVENTORY, copy, ignore=shutil.ignore_patterns(".tno"))
    return copy


def _env(inventory: Path, tmp_path: Path, fleet: Debian, monkeypatch: pytest.MonkeyPatch) -> Env:
    ssh = FakeSsh({h: fleet.ssh for h in HOSTS})
    env = make_env(inventory, tmp_path / "state", ssh=ssh, playbooks=FakePlaybookRunner(fleet.play),
                   clock=NOW.timestamp, vault_password_file=inventory / "vault-password")
    fleet.state_dir = env.state_dir
    # the tenants' probes are tnoctl/probes (tested on their own): here every tenant answers
    monkeypatch.setattr(upgrade_gate, "_gate_probes", lambda env, component, tenants, version: list(tenants))
    monkeypatch.setattr(upgrade_gate, "_probe_failures", lambda probes: [])
    return env


def _records(env: Env, verb: str) -> list[dict]:
    return [r for r in audit.read(env.state_dir) if r["verb"] == verb]


def _preflight(selected: dict[str, list[str]]) -> list[tuple[str, tuple[str, ...]]]:
    found = []
    for host in HOSTS:
        found += [(host, ("apt-get", "update", "-q")), (host, tuple(upgrade_os.SIMULATE))]
        if selected.get(host):
            found.append((host, ("apt-cache", "madison", *selected[host])))
    return sorted(found)


def _host(op: str, host: str, packages: list[str]) -> list[tuple[str, tuple[str, ...]]]:
    """Snapshot, gate (versions, services; the probes are patched) and the reboot check of one host."""
    snap = f"/var/backups/tno-upgrade/{op}"
    return [(host, ("sh", "-c", f"set -e; mkdir -p -m 0700 {snap}; dpkg-query -W -f "
                                f"'{upgrade_os.INSTALLED_FORMAT}' > {snap}/packages.tsv; cat {snap}/packages.tsv")),
            (host, tuple(upgrade_os.RUNNING)),
            (host, (*upgrade_os_gate.VERSIONS, *packages)),
            (host, ("systemctl", "is-active", *SERVICES)),
            (host, ("test", "-e", upgrade_os.REBOOT_FLAG))]


SECURITY = ["libc6", "libssl3", "openssl"]
SECURITY_TARGET = [f"{p}={NEW[p][0]}" for p in SECURITY]


def _apply(op: str, packages: list[str], rollback: bool = False) -> dict:
    return {"tno_action": "upgrade", "tno_upgrade_component": "os", "tno_upgrade_id": op,
            "tno_upgrade_rollback": rollback, planner.PACKAGES_VAR: packages}


def test_security_only_canary_then_rest_skips_the_up_to_date_host(inventory: Path, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    fleet = Debian(reboot=("office1",))
    env = _env(inventory, tmp_path, fleet, monkeypatch)
    request = upgrade_os.OsUpgradeRequest(security_only=True, waves="canary,100%", gate_timeout=0)
    outcome = upgrade_os.run(env, request)

    assert outcome.exit_code == ExitCode.OK, outcome
    op = outcome.data["operation"]
    ssh = env.ssh.commands  # type: ignore[attr-defined]
    selected = {h: SECURITY for h in HOSTS if h != "backup1"}
    assert sorted(ssh[:14]) == _preflight(selected)  # every host in parallel, before anything changes
    # canary: the hosts of the pilot vaulx-en-velin (mail1, office1), then the rest; backup1 is up to date
    order = ["mail1", "office1", "mail2", "office2"]
    assert ssh[14:] == [c for h in order for c in _host(op, h, SECURITY)]
    assert [c.extra_vars for c in env.playbooks.calls] == [_apply(op, SECURITY_TARGET)] * 4  # type: ignore[attr-defined]
    assert [c.limit for c in env.playbooks.calls] == [(h,) for h in order]  # type: ignore[attr-defined]
    assert all(fleet.installed[h]["openssl"] == NEW["openssl"][0] for h in order)
    assert all(fleet.installed[h]["tzdata"] == OLD["tzdata"] for h in order)  # not a security update
    assert fleet.locked_during_apply == [["saint-fons", "vaulx-en-velin", "venissieux"],  # mail1's tenants
                                         ["bron", "vaulx-en-velin", "venissieux"],
                                         ["corbas", "feyzin", "givors"],
                                         ["corbas", "givors", "saint-fons"]]
    assert locks.list_locks(env.state_dir) == []
    assert outcome.data["hosts"] == dict.fromkeys(order, "done")
    assert outcome.data["reboot_required"] == ["office1"]
    steps = [(r["hosts"][0], r["details"]["step"], r["result"]) for r in _records(env, "upgrade step")]
    assert steps == [(h, s, "ok") for h in order for s in ("snapshot", "apply", "gate")]
    (record,) = _records(env, "upgrade")
    assert record["result"] == "ok" and "component=os" in record["args"] and "security_only=true" in record["args"]


def test_dry_run_shows_packages_per_host_and_the_up_to_date_ones(inventory: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    env = _env(inventory, tmp_path, Debian(), monkeypatch)
    outcome = upgrade_os.run(env, upgrade_os.OsUpgradeRequest(packages=("tzdata",), dry_run=True))
    assert outcome.exit_code == ExitCode.OK
    assert outcome.data["selection"] == "updates:tzdata" and outcome.data["up_to_date"] == ["backup1"]
    assert [(h["host"], h["packages"]) for h in outcome.data["hosts"]] == [
        (h, {"tzdata": "2025b-0+deb12u1"}) for h in ("mail1", "office1", "mail2", "office2")]  # canary,25%,100%
    assert outcome.rows[-1] == ["-", "backup1", "-", "0: up to date", "-", "-"]
    assert env.playbooks.calls == [] and audit.read(env.state_dir) == []  # type: ignore[attr-defined]


def test_nothing_to_do_anywhere_is_a_graceful_no_op(inventory: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    env = _env(inventory, tmp_path, Debian(), monkeypatch)
    outcome = upgrade_os.run(env, upgrade_os.OsUpgradeRequest(packages=("cron", "nginx"), hosts=("mail1",)))
    assert outcome.exit_code == ExitCode.OK
    assert outcome.message == ("nothing to upgrade: every selected host is up to date "
                               "(not upgradable anywhere: cron, nginx)")
    assert [h for h, _argv in env.ssh.commands] == ["mail1", "mail1"]  # type: ignore[attr-defined]
    assert env.playbooks.calls == [] and audit.read(env.state_dir) == []  # type: ignore[attr-defined]


def test_a_service_that_does_not_come_back_rolls_the_canary_back(inventory: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """mail1's dovecot fails with the new libssl3: mail1 goes back to the recorded versions, nothing else moves."""
    fleet = Debian(broken="mail1")
    env = _env(inventory, tmp_path, fleet, monkeypatch)
    request = upgrade_os.OsUpgradeRequest(packages=("openssl",), waves="canary,100%", gate_timeout=0)
    outcome = upgrade_os.run(env, request)

    assert outcome.exit_code == ExitCode.FAILED
    op = outcome.data["operation"]
    assert outcome.data["hosts"] == {"mail1": "rolled_back", "office1": "skipped", "mail2": "skipped",
                                     "office2": "skipped"}
    back = [f"libssl3={OLD['libssl3']}", f"openssl={OLD['openssl']}"]  # the dependency apt pulled goes back too
    assert [c.extra_vars for c in env.playbooks.calls] == [  # type: ignore[attr-defined]
        _apply(op, [f"openssl={NEW['openssl'][0]}"]), _apply(op, back, rollback=True)]
    snap, running, versions, active, _reboot = _host(op, "mail1", ["openssl"])
    assert sorted(env.ssh.commands[:14]) == _preflight({h: ["openssl"] for h in HOSTS if h != "backup1"})
    assert env.ssh.commands[14:] == [  # type: ignore[attr-defined]
        snap, running, versions, active,  # gate: openssl is there, dovecot is not back
        ("mail1", ("dpkg-query", "-W", "-f", upgrade_os.INSTALLED_FORMAT)),  # what changed since the snapshot
        ("mail1", (*upgrade_os_gate.VERSIONS, "libssl3", "openssl")), active,  # regate: recorded versions, healthy
        ("mail1", ("test", "-e", upgrade_os.REBOOT_FLAG))]
    assert fleet.installed["mail1"] == OLD
    assert all(fleet.installed[h] == OLD for h in ("mail2", "office1", "office2"))  # untouched
    steps = [(r["details"]["step"], r["result"]) for r in _records(env, "upgrade step")]
    assert steps == [("snapshot", "ok"), ("apply", "ok"), ("gate", "failed"), ("rollback", "ok"), ("regate", "ok")]
    gate = next(r for r in _records(env, "upgrade step") if r["details"]["step"] == "gate")
    assert "mail1: dovecot.service is failed" in gate["details"]["detail"]
    assert _records(env, "upgrade")[0]["result"] == "failed"


def test_interrupted_rollout_resumes_without_touching_finished_hosts(inventory: Path, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    fleet = Debian()
    fleet.interrupt_on = "office1"  # Ctrl-C while office1's apply runs (after mail1 is done)
    env = _env(inventory, tmp_path, fleet, monkeypatch)
    request = upgrade_os.OsUpgradeRequest(security_only=True, waves="canary,100%", gate_timeout=0)
    with pytest.raises(KeyboardInterrupt):
        upgrade_os.run(env, request)
    (op,) = [p.name for p in (env.state_dir / "operations").iterdir()]
    journal = Journal.open(env.state_dir, op)
    progress = journal.progress(["mail1", "office1", "mail2"])
    assert (progress["mail1"].state, progress["office1"].current, progress["mail2"].state) == (
        "done", "apply", "pending")
    with pytest.raises(InvalidInput, match="use 'tnoctl upgrade os --resume"):
        upgrade.run(env, upgrade.UpgradeRequest(resume_id=op))  # the component verb refuses an OS journal

    before = len(env.ssh.commands)  # type: ignore[attr-defined]
    resumed = upgrade_os.run(env, upgrade_os.OsUpgradeRequest(resume_id=op, gate_timeout=0))
    assert resumed.exit_code == ExitCode.OK, resumed
    hosts = [h for h, _argv in env.ssh.commands[before:]]  # type: ignore[attr-defined]
    assert "mail1" not in hosts and hosts[0] == "office1"  # no new pre-flight; mail1 is never touched again
    assert [c.limit for c in env.playbooks.calls] == [  # type: ignore[attr-defined]
        ("mail1",), ("office1",), ("office1",), ("mail2",), ("office2",)]
    assert resumed.data["hosts"] == dict.fromkeys(("mail1", "office1", "mail2", "office2"), "done")
    snapshots = [e for e in journal.events() if e["host"] == "office1" and e["step"] == "snapshot"]
    assert len(snapshots) == 2  # started + done, once: the resumed host keeps its first snapshot


def test_role_and_playbook_wire_the_os_action() -> None:
    """playbooks/upgrade.yml sends tno_upgrade_component=os to tno_common, whose upgrade.yml takes the package list."""
    plays = yaml.safe_load((paths.PROJECT_ROOT / "playbooks" / "upgrade.yml").read_text())
    (play,) = [p for p in plays if p["hosts"] == "all"]
    assert play["tasks"][0]["ansible.builtin.include_role"]["name"] == "tno_common"
    assert play["tasks"][0]["when"] == "tno_upgrade_component == 'os'"
    tasks = yaml.safe_load((paths.PROJECT_ROOT / "roles" / "tno_common" / "tasks" / "upgrade.yml").read_text())
    install = next(t for t in tasks if "tno_common_os_packages" in str(t.get("ansible.builtin.apt", {})))
    assert "allow_downgrade" in install["ansible.builtin.apt"]
    assert any(t.get("ansible.builtin.command", {}).get("argv") == ["needrestart", "-r", "a", "-l"] for t in tasks)
