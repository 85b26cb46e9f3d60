"""Backup planner, borg JSON parsing, naming, placement rewrite — exact, without hosts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tnoctl.actions.restore_host import set_mail_placement
from tnoctl.backup import borg, naming
from tnoctl.config.load import load_inventory
from tnoctl.errors import InvalidInput
from tnoctl.plan import backup as plan

LAB = Path(__file__).resolve().parents[2] / "inventories" / "lab"


@pytest.fixture(scope="module")
def inventory():
    return load_inventory(LAB)


def test_targets_per_tenant_with_backup_host(inventory) -> None:
    targets = plan.plan_targets(inventory)
    assert [t.slug for t in targets] == sorted(t.slug for t in inventory.tenants)  # every shape has a backup
    givors = plan.plan_targets(inventory, ["givors"])[0]
    assert (givors.mail_host, givors.backup_host, givors.repo) == ("mail2", "backup1", "/srv/tno-backup/givors")
    assert givors.office_host == inventory.tenant("givors").placement.office
    assert givors.retention == {"keep_daily": 7, "keep_weekly": 4, "keep_monthly": 6}
    with pytest.raises(InvalidInput):
        plan.plan_targets(inventory, ["nope"])


def test_office_only_and_mail_only_tenants_are_first_class(inventory) -> None:
    """Issue 20: an office-only commune is backed up (its office configuration), never refused."""
    bron, feyzin, both = plan.plan_targets(inventory, ["bron", "feyzin", "givors"])
    assert (bron.slug, bron.mail_host, bron.office_host, bron.components) == ("bron", None, "office1", ("office",))
    assert bron.hosts == ("office1",) and bron.repo == "/srv/tno-backup/bron"
    assert (feyzin.mail_host, feyzin.office_host, feyzin.components, feyzin.hosts) == ("mail2", None, ("mail",),
                                                                                       ("mail2",))
    assert both.components == ("mail", "office") and both.hosts == ("mail2", "office2")
    with pytest.raises(InvalidInput, match="tenant bron has no mail service"):
        bron.host_of("mail")
    with pytest.raises(InvalidInput, match="tenant bron has no mail service: no mailbox to restore"):
        plan.require_mail(bron)
    assert plan.require_mail(feyzin) == "mail2"
    # an office-only tenant's retention applies to its office archives only
    assert [a[:3] for a in plan.prune_args(bron)[:-1]] == [["prune", "--glob-archives", "bron.office-*"],
                                                           ["prune", "--glob-archives", "bron.office.tag-*"]]
    assert [a[2] for a in plan.prune_args(feyzin)[:-1]] == ["feyzin-*", "feyzin.tag-*"]
    assert plan.extract_stdout_args(bron, "bron.office-1", "etc/coolwsd/coolwsd.xml") == [
        "extract", "--stdout", "/srv/tno-backup/bron::bron.office-1", "etc/coolwsd/coolwsd.xml"]


def test_a_tenant_without_any_placed_service_is_refused_by_name(inventory) -> None:
    empty = inventory.tenant("bron").model_copy(update={"services": []})

    class Inv:
        platform, hosts, tenants = inventory.platform, inventory.hosts, [empty]

        def tenant(self, slug):
            return empty

    assert plan.plan_targets(Inv()) == []
    with pytest.raises(InvalidInput, match="tenant bron has no placed service: nothing to back up"):
        plan.plan_targets(Inv(), ["bron"])


def test_removal_steps_per_component(inventory) -> None:
    bron, feyzin, givors = plan.plan_targets(inventory, ["bron", "feyzin", "givors"])
    (office,) = plan.removal_steps(bron, ["bron.test"])
    assert (office.host, office.component, office.timer) == ("office1", "office", "tno-backup@bron.office.timer")
    assert office.paths == ("/etc/borgmatic.d/bron.office.yaml", "/etc/tno-backup/tenants/bron.office.json",
                            "/etc/tno-backup/bron.office.passphrase", "/etc/tno-backup/keys/bron.office",
                            "/etc/tno-backup/keys/bron.office.pub", "/var/lib/tno-backup/state/bron.office.json",
                            "/var/lib/tno-backup/state/bron.office.initialised",
                            "/var/lib/tno-backup/state/bron.office.stage.json",
                            "/var/lib/tno-backup/state/bron.office.manifest-cache.json",
                            "/run/lock/tno-backup-bron.office.lock",
                            "/var/lib/prometheus/node-exporter/tno_backup_bron.office.prom",
                            "/var/lib/systemd/timers/stamp-tno-backup@bron.office.timer",
                            "/var/lib/systemd/timers/stamp-tno-backup-drill-bron.office.timer",
                            "/etc/systemd/system/tno-backup-drill-bron.office.timer",
                            "/var/lib/tno-backup/staging/bron.office")
    assert (office.drill_timer, office.drill_service) == ("tno-backup-drill-bron.office.timer",
                                                          "tno-backup-drill@bron.office.service")
    assert not any("vmail" in p or "opendkim" in p for p in office.paths)  # no mail to remove
    (mail,) = plan.removal_steps(feyzin, ["feyzin.test"])
    assert (mail.host, mail.timer) == ("mail2", "tno-backup@feyzin.timer")
    assert mail.paths[:2] == ("/srv/vmail/feyzin.test", "/etc/opendkim/keys/feyzin.test")
    assert mail.paths[-1] == "/var/lib/tno-backup/staging/feyzin"
    assert "/var/lib/prometheus/node-exporter/tno_backup_feyzin.prom" in mail.paths
    assert [(s.host, s.component) for s in plan.removal_steps(givors, ["givors.test"])] == [("mail2", "mail"),
                                                                                             ("office2", "office")]


def test_prune_and_disaster_phases(inventory) -> None:
    target = plan.BackupTarget("givors", "mail2", "backup1", {"keep_daily": 3, "keep_weekly": 0, "keep_monthly": 1})
    keep = ["--keep-daily=3", "--keep-monthly=1", "--keep-weekly=0"]
    repo = "/srv/tno-backup/givors"
    assert plan.prune_args(target) == [
        ["prune", "--glob-archives", "givors-*", *keep, "--stats", repo],
        ["prune", "--glob-archives", "givors.tag-*", "--keep-within=3d", "--stats", repo],
        ["compact", repo],
    ]
    office = plan.BackupTarget("givors", "mail2", "backup1", {"keep_daily": 0}, office_host="office2")
    assert office.components == ("mail", "office") and office.host_of("office") == "office2"
    assert [a[2] for a in plan.prune_args(office)[:-1]] == ["givors-*", "givors.tag-*", "givors.office-*",
                                                            "givors.office.tag-*"]
    assert plan.prune_args(office)[1][3] == "--keep-within=1d"  # never 0d: a snapshot lives at least a day
    with pytest.raises(InvalidInput):
        target.host_of("office")
    setup, site, follow = plan.disaster_phases("mail1", "backup1")
    assert follow == ()
    assert (site.playbook, site.limit, site.extra_vars) == ("site.yml", ("mail1",), {"tno_action": "deploy"})
    assert (setup.playbook, setup.limit) == ("backup.yml", ("backup1", "mail1"))


def test_naming() -> None:
    assert naming.passphrase_var("vaulx-en-velin") == "tno_vault_borg_vaulx_en_velin"
    assert naming.archive_path("g", "mail", "g.test", "bob") == "var/lib/tno-backup/staging/g/mail/g.test/bob"
    assert "." not in naming.restore_folder()  # Maildir++ separator


def test_borg_info_parsing() -> None:
    doc = {"archives": [
        {"name": "g-2", "start": "2026-11-29T10:00:00.000000", "duration": 1.5,
         "stats": {"original_size": 9, "compressed_size": 5, "deduplicated_size": 1, "nfiles": 3}},
        {"name": "g-1", "start": "2026-11-28T10:00:00.000000", "stats": {}}]}
    archives = borg.parse_info(json.dumps(doc))
    assert [a.name for a in archives] == ["g-1", "g-2"] and borg.latest(archives).name == "g-2"
    assert archives[1].as_dict()["deduplicated_bytes"] == 1
    assert borg.latest([]) is None


def test_set_mail_placement_keeps_layout() -> None:
    text = "# c\nslug: g\nplacement:\n  mail: mail2\n  office: office2\nmailboxes: []\n"
    assert set_mail_placement(text, "mail1") == text.replace("mail: mail2", "mail: mail1")
    flow = "slug: g\nplacement: {mail: mail2, office: office2}\n"
    assert set_mail_placement(flow, "mail1") == "slug: g\nplacement: {mail: mail1, office: office2}\n"
    with pytest.raises(InvalidInput):
        set_mail_placement("slug: g\n", "mail1")
