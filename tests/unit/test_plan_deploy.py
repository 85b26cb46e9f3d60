"""The deploy planner is pure: assert the exact hosts, tenants and playbook calls per selection."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from tnoctl.errors import InvalidInput
from tnoctl.plan.calls import PlaybookCall
from tnoctl.plan.deploy import plan_deploy


@dataclass
class FakeHost:
    name: str
    groups: tuple[str, ...]


@dataclass
class Placement:
    mail: str | None
    office: str | None


@dataclass
class FakeTenant:
    slug: str
    placement: Placement
    domains: list[str] = field(default_factory=list)


@dataclass
class FakeInventory:
    hosts: dict[str, FakeHost]
    tenants: list[FakeTenant]

    def tenant(self, slug: str) -> FakeTenant:
        for t in self.tenants:
            if t.slug == slug:
                return t
        raise InvalidInput(f"unknown tenant '{slug}'")

    row = tenant  # the planner reads rows (slug, placement): the fake's tenants are enough

    def slugs_on_host(self, name: str) -> list[str]:
        return [t.slug for t in self.tenants if name in (t.placement.mail, t.placement.office)]


@pytest.fixture()
def inventory() -> FakeInventory:
    hosts = {
        "mail1": FakeHost("mail1", ("mail",)),
        "mail2": FakeHost("mail2", ("mail",)),
        "office1": FakeHost("office1", ("office", "proxy")),
        "office2": FakeHost("office2", ("office", "proxy")),
        "backup1": FakeHost("backup1", ("backup",)),
        "bastion": FakeHost("bastion", ()),
    }
    tenants = [
        FakeTenant("corbas", Placement("mail2", "office2")),
        FakeTenant("givors", Placement("mail2", "office2")),
        FakeTenant("venissieux", Placement("mail1", "office1")),
        FakeTenant("mailonly", Placement("mail1", None)),
    ]
    return FakeInventory(hosts, tenants)


def test_whole_fleet_has_no_limit(inventory):
    plan = plan_deploy(inventory)
    assert plan.hosts == ("backup1", "mail1", "mail2", "office1", "office2")
    assert plan.tenants == ("corbas", "givors", "mailonly", "venissieux")
    assert plan.calls == (PlaybookCall("site.yml", extra_vars={"tno_action": "deploy"}),)
    assert plan.tenants_by_host["mail1"] == ("mailonly", "venissieux")
    assert plan.tenants_by_host["backup1"] == ()


def test_tenant_selects_its_hosts(inventory):
    plan = plan_deploy(inventory, tenants=["givors"])
    assert plan.hosts == ("mail2", "office2")
    assert plan.tenants == ("givors",)
    assert plan.calls[0].limit == ("mail2", "office2")


def test_host_and_tenant_union_and_check_mode(inventory):
    plan = plan_deploy(inventory, tenants=["mailonly"], hosts=["office2"], check=True)
    assert plan.hosts == ("mail1", "office2")
    assert plan.calls == (
        PlaybookCall(
            "site.yml", extra_vars={"tno_action": "deploy"}, limit=("mail1", "office2"), check=True, diff=True
        ),
    )


def test_host_selection_lists_its_tenants(inventory):
    plan = plan_deploy(inventory, hosts=["mail1"])
    assert plan.tenants == ("mailonly", "venissieux")


def test_unknown_host_and_tenant_are_invalid_input(inventory):
    with pytest.raises(InvalidInput, match="unknown host 'nope'"):
        plan_deploy(inventory, hosts=["nope"])
    with pytest.raises(InvalidInput, match="unknown tenant 'nope'"):
        plan_deploy(inventory, tenants=["nope"])


def test_other_actions_are_passed_through(inventory):
    plan = plan_deploy(inventory, action="check")
    assert plan.calls[0].extra_vars == {"tno_action": "check"}
