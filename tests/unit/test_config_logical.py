"""Logical pass: one test per rule, on a copy of the lab inventory."""

import shutil
from pathlib import Path

import pytest

from tnoctl.config.load import load_inventory
from tnoctl.errors import InvalidInput

LAB = Path(__file__).resolve().parents[2] / "inventories" / "lab"


@pytest.fixture
def inv(tmp_path: Path) -> Path:
    dest = tmp_path / "inv"
    shutil.copytree(LAB, dest, ignore=shutil.ignore_patterns(".tno"))
    return dest


def edit(inv: Path, slug: str, old: str, new: str) -> None:
    path = inv / "tenants" / f"{slug}.yml"
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


def errors_of(inv: Path, password: bool = False) -> list[str]:
    with pytest.raises(InvalidInput) as err:
        load_inventory(inv, inv / "vault-password" if password else None)
    return err.value.details


def test_duplicate_domain_names_both_files(inv):
    edit(inv, "givors", "- givors.test", "- givors.test\n- corbas.test")
    assert errors_of(inv) == ["tenants/givors.yml: domains: 'corbas.test' is also used by tenants/corbas.yml"]


def test_duplicate_insee_names_both_files(inv):
    edit(inv, "givors", "insee: '69091'", "insee: '69273'")
    assert errors_of(inv) == ["tenants/givors.yml: insee: '69273' is also used by tenants/corbas.yml"]


def test_duplicate_slug_and_slug_not_file_name(inv):
    shutil.copy(inv / "tenants" / "givors.yml", inv / "tenants" / "givors2.yml")
    edit(inv, "givors2", "insee: '69091'", "insee: '69999'")
    edit(inv, "givors2", "- givors.test", "- givors2.test")
    edit(inv, "givors2", "https://cloud.givors.test", "https://cloud.givors2.test")
    assert errors_of(inv) == [
        "tenants/givors2.yml: slug: 'givors' must equal the file name ('givors2')",
        "tenants/givors2.yml: slug: 'givors' is also used by tenants/givors.yml",
    ]


def test_placement_on_host_of_the_wrong_group_or_unknown(inv):
    edit(inv, "givors", "mail: mail2", "mail: office2")
    edit(inv, "corbas", "office: office2", "office: nowhere")
    assert errors_of(inv) == [
        "tenants/corbas.yml: placement.office: host 'nowhere' is not in hosts.yml",
        "tenants/givors.yml: placement.mail: host 'office2' is not in group 'mail'",
    ]


def test_service_enabled_without_placement(inv):
    edit(inv, "givors", "  office: office2\n", "")
    assert errors_of(inv) == ["tenants/givors.yml: placement.office: service 'office' is enabled but has no placement"]


def test_mailbox_domain_outside_tenant_domains_and_duplicates(inv):
    edit(inv, "givors", "- local: dgs\n", "- local: dgs\n  domain: corbas.test\n")
    edit(inv, "givors", "- local: canary\n", "- local: mairie\n")
    assert errors_of(inv) == [
        "tenants/givors.yml: mailboxes[1].domain: 'corbas.test' is not one of the tenant's domains",
        "tenants/givors.yml: mailboxes[4]: duplicate address mairie@givors.test (also mailboxes[0])",
    ]


def test_vault_variable_must_exist(inv):
    edit(inv, "givors", "password_vault: tno_vault_givors_dgs", "password_vault: tno_vault_givors_nope")
    expected = ["tenants/givors.yml: mailboxes[1].password_vault: tno_vault_givors_nope is not defined in the vault"]
    assert errors_of(inv, password=True) == expected
    assert errors_of(inv, password=False) == expected  # inline vault: names are readable without the password


def test_vault_check_skipped_when_names_are_unknowable(inv):
    edit(inv, "givors", "password_vault: tno_vault_givors_dgs", "password_vault: tno_vault_givors_nope")
    (inv / "group_vars" / "all" / "vault.yml").unlink()
    load_inventory(inv)  # no vault file: nothing to check against


def test_wrong_vault_password_is_invalid_input(inv, tmp_path):
    bad = tmp_path / "bad-password"
    bad.write_text("wrong\n")
    with pytest.raises(InvalidInput, match="cannot decrypt"):
        load_inventory(inv, bad)


def test_hosts_yml_problems(inv):
    (inv / "hosts.yml").write_text("all:\n  children:\n    mail:\n      hosts: [mail1]\n    office: {}\n")
    errs = errors_of(inv)
    assert "hosts.yml: all.children.mail.hosts: expected a mapping of host names, got a list" in errs
    assert "hosts.yml: backup: required group 'backup' has no host" in errs


def test_tenant_lookup_and_placement_helpers():
    inv = load_inventory(LAB)
    assert [t.slug for t in inv.tenants_on_host("mail1")] == ["saint-fons", "vaulx-en-velin", "venissieux"]
    assert [t.slug for t in inv.tenants_on_host("office2")] == ["corbas", "givors", "saint-fons"]
    assert inv.tenants_on_host("backup1") == [] and inv.tenants_on_host("nope") == []
    assert inv.tenant("givors").primary_domain == "givors.test"
    with pytest.raises(InvalidInput, match=r"unknown tenant 'x' \(known: bron, corbas, feyzin, givors"):
        inv.tenant("x")
    assert inv.hosts["office1"].groups == {"all", "office", "proxy"}
    assert inv.hosts["mail2"].address == "198.18.0.12"
