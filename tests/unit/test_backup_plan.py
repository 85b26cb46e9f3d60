"""Backup planner, borg JSON parsing, naming, placement rewrite — exact, without hosts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tnoctl.actions.restore import set_mail_placement
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
    assert [t.slug for t in targets] == sorted(t.slug for t in inventory.tenants if "mail" in t.services)
    givors = plan.plan_targets(inventory, ["givors"])[0]
    assert (givors.mail_host, givors.backup_host, givors.repo) == ("mail2", "backup1", "/srv/tno-backup/givors")
    assert givors.office_host == inventory.tenant("givors").placement.office
    assert givors.retention == {"keep_daily": 7, "keep_weekly": 4, "keep_monthly": 6}
    with pytest.raises(InvalidInput):
        plan.plan_targets(inventory, ["nope"])


def test_prune_and_disaster_calls(inventory) -> None:
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
    site, setup = plan.disaster_calls("mail1", "backup1")
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
