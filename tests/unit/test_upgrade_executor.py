"""The upgrade executor with fake SSH, playbooks and gate: waves, halting, rollback, journal, resume.

The real thing runs on the lab (tests/e2e/test_upgrade_office.py); here every path is driven
deterministically: which host is upgraded, in which order, what the journal and the state store say.
"""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.unit.test_plan_upgrade import _fleet  # the same fake inventory as the planner tests
from tnoctl.actions import upgrade_host as up
from tnoctl.actions.env import Env, Output
from tnoctl.actions.upgrade import exit_code as _exit_code
from tnoctl.actions.upgrade_gate import GateResult
from tnoctl.plan.upgrade import plan_upgrade
from tnoctl.state.journal import Journal
from tnoctl.state.store import Store

NOW = datetime(2026, 11, 29, 11, 0, tzinfo=UTC)


@dataclass
class Result:
    rc: int = 0
    stdout: str = ""
    stderr: str = ""

    @property
    def ok(self) -> bool:
        return self.rc == 0


@dataclass
class FakeFleet:
    """Installed versions per host; playbook runs and gates act on them."""

    installed: dict[str, str]
    broken: set[str] = field(default_factory=set)  # versions whose gate fails
    calls: list[tuple[str, str, bool]] = field(default_factory=list)  # (host, version, rollback)
    interrupt_on: tuple[str, str] | None = None  # (host, version): set stop during that apply

    def run(self, host: str, argv: list[str], timeout: float = 60) -> Result:
        if argv[0] == "dpkg-query":
            return Result(stdout=self.installed[host])
        return Result()  # the snapshot's tar

    def close(self) -> None:
        pass

    def playbook(self, run: up.HostRun, version: str, rollback: bool, label: str) -> tuple[bool, str]:
        host = run.step.host
        self.calls.append((host, version, rollback))
        if self.interrupt_on == (host, version):
            self.interrupt_on = None
            run.rollout.stop.set()
            raise up.Interrupted(label)
        self.installed[host] = version
        return True, "1 change(s)"

    def gate(self, env, component, host, tenants, version, *, timeout, stop=None, excluded=frozenset()) -> GateResult:
        ok = self.installed[host] == version and version not in self.broken
        return GateResult(ok, self.installed[host], 1, [] if ok else [f"{tenants[0]}/office_discovery: HTTP 500"])


@pytest.fixture()
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeFleet:
    fleet = FakeFleet({f"office{i}": "24.04.10.1" for i in range(1, 5)}, broken={"24.04.12.1"})
    monkeypatch.setattr(up.HostRun, "_playbook", lambda self, v, rb, label: fleet.playbook(self, v, rb, label))
    monkeypatch.setattr(up.upgrade_gate, "check", fleet.gate)
    return fleet


def _rollout(tmp_path: Path, fleet: FakeFleet, inventory, plan, journal: Journal) -> up.Rollout:
    env = Env(tmp_path / "inv", tmp_path / "state", None, Output(io.StringIO(), io.StringIO()),
              ssh_factory=lambda _inventory: fleet, inventory=inventory, redact=lambda text: text,
              clock=NOW.timestamp)
    return up.Rollout(env, plan, journal, safety_backup=False, stop=threading.Event())


def _run(tmp_path: Path, fleet: FakeFleet, version: str, waves: str = "canary,100%", **kw):
    inventory = _fleet(offices=4, pilot_on="office1")
    plan = plan_upgrade(inventory, "office", version, now=NOW, waves=waves, **kw)
    journal = Journal.create(tmp_path / "state", f"op-{version}", {})
    outcomes = up.execute(_rollout(tmp_path, fleet, inventory, plan, journal))
    return plan, journal, outcomes


def test_good_rollout_upgrades_every_host_in_wave_order(tmp_path: Path, fake: FakeFleet) -> None:
    _plan, journal, outcomes = _run(tmp_path, fake, "24.04.11.1", batch=2)
    assert [(o.host, o.state, o.from_version) for o in outcomes] == [
        (f"office{i}", "done", "24.04.10.1") for i in range(1, 5)]
    assert next(c[0] for c in fake.calls) == "office1"  # the canary first
    assert _exit_code(outcomes) == 0
    steps = [(e["step"], e["status"]) for e in journal.events() if e["host"] == "office1"]
    assert steps == [("snapshot", "started"), ("snapshot", "done"), ("apply", "started"), ("apply", "done"),
                     ("gate", "started"), ("gate", "done"), ("finish", "done")]
    records = Store(tmp_path / "state").latest_upgrades()
    assert {(t, r.state, r.to_version) for (t, _c), r in records.items()} == {
        (f"t{i}", "succeeded", "24.04.11.1") for i in range(1, 5)}
    assert all(r.last_success_at for r in records.values())


def test_broken_version_rolls_back_the_canary_and_halts(tmp_path: Path, fake: FakeFleet) -> None:
    _plan, _journal, outcomes = _run(tmp_path, fake, "24.04.12.1")
    states = {o.host: o.state for o in outcomes}
    assert states == {"office1": "rolled_back", "office2": "skipped", "office3": "skipped", "office4": "skipped"}
    assert fake.calls == [("office1", "24.04.12.1", False), ("office1", "24.04.10.1", True)]
    assert fake.installed["office1"] == "24.04.10.1" and fake.installed["office2"] == "24.04.10.1"
    assert _exit_code(outcomes) == 1
    assert Store(tmp_path / "state").latest_upgrades()[("t1", "office")].state == "rolled_back"
    assert ("t2", "office") not in Store(tmp_path / "state").latest_upgrades()  # untouched tenants


def test_max_failures_lets_later_waves_run(tmp_path: Path, fake: FakeFleet) -> None:
    fake.broken = {"9.9"}
    _plan, _journal, outcomes = _run(tmp_path, fake, "9.9", max_failures=5)
    assert {o.state for o in outcomes} == {"rolled_back"}


def test_interrupt_then_resume_never_redoes_a_finished_host(tmp_path: Path, fake: FakeFleet) -> None:
    fake.interrupt_on = ("office2", "24.04.11.1")
    inventory = _fleet(offices=4, pilot_on="office1")
    plan = plan_upgrade(inventory, "office", "24.04.11.1", now=NOW, waves="canary,100%")
    journal = Journal.create(tmp_path / "state", "op-int", {})
    with pytest.raises(KeyboardInterrupt):
        up.execute(_rollout(tmp_path, fake, inventory, plan, journal))
    progress = journal.progress([s.host for s in plan.hosts])
    assert journal.state() == "interrupted"
    assert (progress["office1"].state, progress["office2"].state) == ("done", "interrupted")
    assert progress["office2"].current == "apply" and progress["office2"].done_steps == ["snapshot"]
    assert progress["office3"].state == "pending"

    before = list(fake.calls)
    outcomes = up.execute(_rollout(tmp_path, fake, inventory, plan, Journal.open(tmp_path / "state", "op-int")))
    resumed = fake.calls[len(before):]
    assert [c[0] for c in resumed] == ["office2", "office3", "office4"]  # office1 is not touched again
    assert {o.host: o.state for o in outcomes} == {f"office{i}": "done" for i in range(1, 5)}
    snapshots = [e for e in journal.events() if e["host"] == "office2" and e["step"] == "snapshot"]
    assert len(snapshots) == 2  # started + done, once: the resumed host keeps its first snapshot
    assert journal.progress(["office2"])["office2"].data["from_version"] == "24.04.10.1"


def test_closed_window_defers_and_exits_4(tmp_path: Path, fake: FakeFleet) -> None:
    inventory = _fleet(offices=2, pilot_on="office1")
    inventory.tenants[1].maintenance_window = "Mon 02:00-03:00"
    plan = plan_upgrade(inventory, "office", "24.04.11.1", now=NOW, waves="100%")
    journal = Journal.create(tmp_path / "state", "op-win", {})
    outcomes = up.execute(_rollout(tmp_path, fake, inventory, plan, journal))
    assert {o.host: o.state for o in outcomes} == {"office1": "done", "office2": "deferred"}
    assert "t2 (Mon 02:00-03:00)" in outcomes[1].detail and "--ignore-windows" in outcomes[1].detail
    assert _exit_code(outcomes) == 4
    assert ("office2", "24.04.11.1", False) not in fake.calls


def test_a_locked_tenant_fails_its_host_without_touching_it(tmp_path: Path, fake: FakeFleet) -> None:
    from tnoctl.state import locks

    inventory = _fleet(offices=2, pilot_on="office1")
    plan = plan_upgrade(inventory, "office", "24.04.11.1", now=NOW, waves="100%", max_failures=1)
    journal = Journal.create(tmp_path / "state", "op-lock", {})
    with locks.hold(tmp_path / "state", ["t2"], "restore", "other-op"):
        outcomes = up.execute(_rollout(tmp_path, fake, inventory, plan, journal))
    assert outcomes[1].state == "failed" and "locked by restore" in outcomes[1].detail
    assert all(c[0] != "office2" for c in fake.calls)
