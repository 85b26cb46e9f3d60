"""Tenant data cannot reach another commune (#13): vault namespaces, `tenant add` never shares a
password, WOPI hosts unique and inside the tenant's own domains unless the platform allows them."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest

from tnoctl.cli import main
from tnoctl.cli.context import AppContext
from tnoctl.config import vault
from tnoctl.config.load import load_inventory
from tnoctl.config.newtenant import vault_name
from tnoctl.errors import InvalidInput

EXAMPLE = Path(__file__).resolve().parents[2] / "inventories" / "example"


@pytest.fixture
def inv(tmp_path: Path) -> Path:
    dest = tmp_path / "inv"
    shutil.copytree(EXAMPLE, dest, ignore=shutil.ignore_patterns(".tno"))
    return dest


def run(inv: Path, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    app = AppContext(inventory=inv, state_dir_override=inv.parent / "state", stdout=out, stderr=err,
                     assume_yes=True)
    rc = main(["--inventory", str(inv), *argv], app=app)
    return rc, out.getvalue(), err.getvalue()


def edit(inv: Path, slug: str, old: str, new: str) -> None:
    path = inv / "tenants" / f"{slug}.yml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def errors_of(inv: Path) -> list[str]:
    with pytest.raises(InvalidInput) as err:
        load_inventory(inv, inv / "vault-password")
    return err.value.details


def test_vault_names_of_ambiguous_pairs_differ():
    assert vault_name("saint", "priest.mairie", "saint.test") != vault_name("saint-priest", "mairie", "saint.test")
    assert vault_name("a", "jean.dupont", "a.fr") != vault_name("a", "jean-dupont", "a.fr")
    assert vault_name("a", "jean", "a.fr") != vault_name("a", "jean", "b.fr")
    assert vault_name("saint-priest", "mairie", "x.fr").startswith("tno_vault_saint_priest__mairie_")


def test_tenant_add_collision_pair_gets_two_passwords(inv):
    (inv / "tenants" / "saint-priest.yml").unlink()
    rc, _, err = run(inv, "tenant", "add", "saint", "--name", "Saint", "--insee", "69001",
                     "--domain", "saint.test", "--mailbox", "priest.mairie")
    assert rc == 0, err
    rc, _, err = run(inv, "tenant", "add", "saint-priest", "--name", "Saint-Priest", "--insee", "69290",
                     "--domain", "saint-priest.test", "--mailbox", "mairie")
    assert rc == 0, err
    loaded = load_inventory(inv, inv / "vault-password")
    one = loaded.tenant("saint").mailboxes[0].password_vault
    two = loaded.tenant("saint-priest").mailboxes[0].password_vault
    assert one != two
    pw = inv / "vault-password"
    assert vault.decrypt_value(inv, pw, one) != vault.decrypt_value(inv, pw, two)


def test_tenant_add_refuses_to_reuse_an_existing_vault_name(inv):
    name = vault_name("new", "mairie", "new.test")
    vault.add_secrets(inv, inv / "vault-password", {name: "leftover-of-a-removed-tenant"})
    before = (inv / vault.VAULT_REL).read_bytes()
    rc, _, err = run(inv, "tenant", "add", "new", "--name", "N", "--insee", "69001", "--domain", "new.test",
                     "--mailbox", "mairie")
    assert rc == 2 and f"vault variable {name} already exists" in err
    assert not (inv / "tenants" / "new.yml").exists()
    assert (inv / vault.VAULT_REL).read_bytes() == before


@pytest.mark.parametrize("name,message", [
    ("tno_vault_bron_dgs", "is outside the tenant's vault namespace (tno_vault_meyzieu_*)"),
    ("tno_vault_borg_bron", "is outside the tenant's vault namespace"),
    ("tno_vault_office_admin_password", "is outside the tenant's vault namespace"),
])
def test_a_tenant_file_may_reference_only_its_own_namespace(inv, name, message):
    edit(inv, "meyzieu", "password_vault: tno_vault_meyzieu_dgs", f"password_vault: {name}")
    details = errors_of(inv)
    assert any(line.startswith("tenants/meyzieu.yml: mailboxes[1].password_vault:") and message in line
               for line in details), details


def test_a_nested_namespace_belongs_to_the_longer_slug(inv):
    """`saint` may not take saint-priest's variables even though the prefix matches."""
    shutil.copy(inv / "tenants" / "bron.yml", inv / "tenants" / "saint.yml")
    text = (inv / "tenants" / "saint.yml").read_text().replace("bron", "saint").replace("69029", "69001")
    text = text.replace("password_vault: tno_vault_saint_dgs", "password_vault: tno_vault_saint_priest_dgs")
    (inv / "tenants" / "saint.yml").write_text(text)
    details = errors_of(inv)
    assert any("tenants/saint.yml: mailboxes: password_vault names starting with tno_vault_saint_priest_ belong "
               "to tenant 'saint-priest'" in line for line in details), details


@pytest.mark.parametrize("slug", ["borg", "office", "office-x"])
def test_platform_namespaces_are_reserved_slugs(inv, slug):
    text = (inv / "tenants" / "bron.yml").read_text().replace("slug: bron", f"slug: {slug}")
    (inv / "tenants" / "bron.yml").unlink()
    (inv / "tenants" / f"{slug}.yml").write_text(text)
    assert any(f"tenants/{slug}.yml: slug: {slug!r} is reserved" in line for line in errors_of(inv))


def test_wopi_host_of_another_tenant_is_refused(inv):
    edit(inv, "meyzieu", "- https://cloud.meyzieu.example", "- https://cloud.bron.example")
    details = errors_of(inv)
    assert any("office.wopi_hosts: 'cloud.bron.example' is also used by" in line for line in details), details
    assert any(line.startswith("tenants/meyzieu.yml: office.wopi_hosts[0]: 'cloud.bron.example' is outside")
               for line in details), details


def test_wopi_host_outside_the_domains_needs_a_platform_exception(inv):
    edit(inv, "meyzieu", "- https://cloud.meyzieu.example", "- https://nextcloud.provider.example")
    assert any("is outside the tenant's domains" in line for line in errors_of(inv))
    platform = inv / "group_vars" / "all" / "platform.yml"
    platform.write_text(platform.read_text() + "tno_office_extra_wopi_hosts:\n  meyzieu:\n"
                        "  - https://nextcloud.provider.example\n")
    assert load_inventory(inv, inv / "vault-password").tenant("meyzieu")
