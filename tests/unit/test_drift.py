"""Drift attribution and recording with a fake RunResult: per tenant and component, host-wide changes."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from tnoctl.actions import deploy, drift
from tnoctl.plan.calls import PlaybookCall
from tnoctl.plan.deploy import DeployPlan
from tnoctl.run.ansible import ChangedTask, HostStats, RunResult
from tnoctl.state.store import Store


def _tenant(slug: str, mail: str, office: str, services=("mail", "office")) -> SimpleNamespace:
    return SimpleNamespace(slug=slug, domains=[f"{slug}.test"], services=list(services),
                           placement=SimpleNamespace(mail=mail, office=office),
                           mailboxes=[SimpleNamespace(local="alice", domain=None)])


TENANTS = [_tenant("corbas", "mail1", "office1"), _tenant("givors", "mail2", "office2"),
           _tenant("venissieux", "mail1", "office2"), _tenant("mailonly", "mail1", "", services=("mail",))]
PLAN = DeployPlan(
    hosts=("backup1", "mail1", "mail2", "office1", "office2"),
    tenants=("corbas", "givors", "mailonly", "venissieux"),
    tenants_by_host={"backup1": (), "mail1": ("corbas", "mailonly", "venissieux"), "mail2": ("givors",),
                     "office1": ("corbas",), "office2": ("givors", "venissieux")},
)


def _result(changes: list[ChangedTask], failed: tuple[str, ...] = ()) -> RunResult:
    hosts = {h: HostStats(h, failed=1 if h in failed else 0) for h in PLAN.hosts}
    call = PlaybookCall("site.yml", check=True)
    return RunResult(call, "successful", 0, hosts, changes, [], Path("/x"), 1.0)


def _analyse(changes: list[ChangedTask], failed: tuple[str, ...] = ()) -> drift.DriftReport:
    keys, placed = deploy.tenant_keys(TENANTS), drift.placements(TENANTS)
    return drift.analyse(PLAN, _result(changes, failed), keys, placed)


def _drifted(report: drift.DriftReport) -> dict[tuple[str, str], int]:
    return {(t.tenant, t.component): t.changed_tasks for t in report.tenants if t.drift}


def test_no_change_no_drift_and_every_tenant_component_is_reported() -> None:
    report = _analyse([])
    assert not report.drifted and _drifted(report) == {}
    assert [(t.tenant, t.component, t.host) for t in report.tenants] == [
        ("corbas", "mail", "mail1"), ("corbas", "office", "office1"), ("givors", "mail", "mail2"),
        ("givors", "office", "office2"), ("mailonly", "mail", "mail1"), ("venissieux", "mail", "mail1"),
        ("venissieux", "office", "office2")]


def test_hand_edited_main_cf_on_mail1_drifts_the_mail_of_every_tenant_on_mail1_only() -> None:
    change = ChangedTask("mail1", "tno_mail", "Configure Postfix", None, "-x\n+y\n")
    report = _analyse([change])
    assert _drifted(report) == {("corbas", "mail"): 1, ("mailonly", "mail"): 1, ("venissieux", "mail"): 1}
    assert report.drifted and report.host_changes["mail1"] == 1 and report.host_changes["mail2"] == 0


def test_item_changes_go_to_their_tenant_and_roles_pick_the_component() -> None:
    report = _analyse([
        ChangedTask("mail1", "tno_mail", "Mailbox", "alice@venissieux.test", ""),
        ChangedTask("office2", "tno_proxy", "Site", "givors", ""),
        ChangedTask("office2", "tno_common", "Locale", None, ""),
    ])
    expected = {("venissieux", "mail"): 1, ("givors", "office"): 2, ("venissieux", "office"): 1}
    assert _drifted(report) == expected


def test_host_without_tenants_still_counts_as_drift() -> None:
    report = _analyse([ChangedTask("backup1", "tno_common", "sshd", None, "")])
    assert _drifted(report) == {} and report.drifted and report.host_changes["backup1"] == 1


def test_failed_host_is_not_recorded_so_its_previous_state_stays(tmp_path: Path) -> None:
    store = Store(tmp_path)
    report = _analyse([ChangedTask("mail1", "tno_mail", "Configure Postfix", None, "")], failed=("mail2",))
    assert report.failed_hosts == ["mail2"]
    for record in drift.records(report, 1000.0):
        store.record_drift(record)
    latest = store.latest_drift()
    assert ("givors", "mail") not in latest
    assert latest[("corbas", "mail")].drift is True and latest[("corbas", "mail")].changed_tasks == 1
    assert latest[("corbas", "office")].drift is False and latest[("corbas", "office")].checked_at == 1000.0
    cleared = _analyse([])
    for record in drift.records(cleared, 2000.0):
        store.record_drift(record)
    assert Store(tmp_path).latest_drift()[("corbas", "mail")].drift is False


def test_json_document() -> None:
    doc = _analyse([ChangedTask("mail2", "tno_mail", "Configure Postfix", None, "")]).as_json(5.0)
    assert doc["drift"] is True and doc["checked_at"] == 5.0
    assert [t["tenant"] for t in doc["tenants"] if t["drift"]] == ["givors"]
    assert doc["changes"] == [{"host": "mail2", "owner": "(host)", "role": "tno_mail",
                               "task": "Configure Postfix", "item": None}]
