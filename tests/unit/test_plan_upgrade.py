"""The upgrade planner is pure: assert waves, hosts, tenants and maintenance-window verdicts exactly."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from tnoctl.errors import InvalidInput
from tnoctl.plan.upgrade import (
    apply_call,
    parse_waves,
    plan_from_dict,
    plan_to_dict,
    plan_upgrade,
)

SUNDAY_NOON = datetime(2026, 11, 29, 11, 0, tzinfo=UTC)  # 12:00 in Paris


@dataclass
class Host:
    groups: set[str]


@dataclass
class Placement:
    mail: str
    office: str


@dataclass
class Tenant:
    slug: str
    placement: Placement
    pilot: bool = False
    maintenance_window: str = "Mon-Sun 00:00-24:00"
    services: list[str] = field(default_factory=lambda: ["mail", "office"])


@dataclass
class Inventory:
    hosts: dict[str, Host]
    tenants: list[Tenant]

    def tenant(self, slug: str) -> Tenant:
        for t in self.tenants:
            if t.slug == slug:
                return t
        raise InvalidInput(f"unknown tenant {slug!r}")


def _fleet(offices: int = 6, pilot_on: str = "office3") -> Inventory:
    hosts = {f"office{i}": Host({"office", "proxy"}) for i in range(1, offices + 1)}
    hosts |= {"mail1": Host({"mail"}), "backup1": Host({"backup"})}
    tenants = [Tenant(f"t{i}", Placement("mail1", f"office{i}"), pilot=f"office{i}" == pilot_on)
               for i in range(1, offices + 1)]
    return Inventory(hosts, tenants)


def _waves(plan) -> list[tuple[str, list[str]]]:
    return [(w.name, [s.host for s in w.hosts]) for w in plan.waves]


def test_canary_takes_the_pilot_host_then_shares_are_cumulative() -> None:
    plan = plan_upgrade(_fleet(), "office", "24.04.11.1", now=SUNDAY_NOON, waves="canary,50%,100%")
    assert _waves(plan) == [
        ("canary", ["office3"]),
        ("50%", ["office1", "office2"]),  # ceil(50% of 6) = 3 done after this wave, the canary counts
        ("100%", ["office4", "office5", "office6"]),
    ]
    assert plan.waves[0].hosts[0].tenants == ("t3",)
    assert plan.tenants == ["t1", "t2", "t3", "t4", "t5", "t6"]


def test_canary_without_pilot_is_the_first_host_and_counts_are_absolute() -> None:
    plan = plan_upgrade(_fleet(pilot_on=""), "office", "24.04.11.1", now=SUNDAY_NOON, waves="canary,2,100%")
    assert _waves(plan) == [("canary", ["office1"]), ("2", ["office2", "office3"]),
                            ("100%", ["office4", "office5", "office6"])]


def test_empty_waves_are_dropped_and_the_last_wave_takes_the_rest() -> None:
    plan = plan_upgrade(_fleet(offices=2), "office", "1.2", now=SUNDAY_NOON, waves="canary,10%,25%")
    assert _waves(plan) == [("canary", ["office1"]), ("25%", ["office2"])]


def test_selection_by_host_and_tenant() -> None:
    inv = _fleet()
    plan = plan_upgrade(inv, "office", "9", now=SUNDAY_NOON, hosts=("office2", "office5"), waves="100%")
    assert _waves(plan) == [("100%", ["office2", "office5"])]
    plan = plan_upgrade(inv, "office", "9", now=SUNDAY_NOON, tenants=("t4",), waves="canary,100%")
    assert _waves(plan) == [("canary", ["office4"])]
    plan = plan_upgrade(inv, "mail", "2", now=SUNDAY_NOON, waves="canary,100%")
    assert _waves(plan) == [("canary", ["mail1"])] and plan.hosts[0].tenants == ("t1", "t2", "t3", "t4", "t5", "t6")


def test_a_closed_window_defers_the_host_and_names_the_tenant() -> None:
    inv = _fleet(offices=2)
    inv.tenants[1].maintenance_window = "Sat 02:00-05:00"
    plan = plan_upgrade(inv, "office", "9", now=SUNDAY_NOON, waves="100%")
    first, second = plan.hosts
    assert first.window_ok and not second.window_ok
    assert second.window_note == "outside maintenance window: t2 (Sat 02:00-05:00)"


@pytest.mark.parametrize("waves, message", [
    ("", "--waves: empty"),
    ("canary,canary", "'canary' may appear once"),
    ("50%,canary", "'canary' may appear once"),
    ("0%", "is not 'canary'"),
    ("abc", "is not 'canary'"),
    ("101%", "is not 'canary'"),
])
def test_bad_waves_name_the_option(waves: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse_waves(waves)


@pytest.mark.parametrize("kwargs, message", [
    ({"component": "web"}, "COMPONENT"),
    ({"to_version": "latest"}, "--to"),
    ({"hosts": ("mail1",)}, "--hosts: 'mail1' is not a host of group 'office'"),
    ({"tenants": ("nope",)}, "unknown tenant"),
    ({"batch": 0}, "--batch"),
    ({"max_failures": -1}, "--max-failures"),
])
def test_bad_selection_is_invalid_input(kwargs: dict, message: str) -> None:
    args = {"component": "office", "to_version": "24.04.11.1"} | kwargs
    with pytest.raises(InvalidInput, match=message):
        plan_upgrade(_fleet(), args.pop("component"), args.pop("to_version"), now=SUNDAY_NOON, **args)


def test_plan_round_trips_through_the_journal_form() -> None:
    plan = plan_upgrade(_fleet(), "office", "24.04.11.1", now=SUNDAY_NOON, batch=2, max_failures=1)
    again = plan_from_dict(plan_to_dict(plan))
    assert _waves(again) == _waves(plan)
    assert (again.component, again.to_version, again.batch, again.max_failures) == ("office", "24.04.11.1", 2, 1)
    assert [s.tenants for s in again.hosts] == [s.tenants for s in plan.hosts]


def test_apply_call_targets_one_host_with_the_version_variable() -> None:
    plan = plan_upgrade(_fleet(), "mail", "2", now=SUNDAY_NOON)
    call = apply_call(plan, "mail1", "1", "op-1", rollback=True, snapshot_dir="/var/backups/tno-upgrade/op-1")
    assert call.playbook == "upgrade.yml" and call.limit == ("mail1",)
    assert call.extra_vars == {
        "tno_action": "upgrade", "tno_upgrade_component": "mail", "tno_upgrade_id": "op-1",
        "tno_upgrade_rollback": True, "tno_mail_release": "1",
        "tno_upgrade_snapshot_dir": "/var/backups/tno-upgrade/op-1",
    }
