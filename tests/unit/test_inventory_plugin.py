"""The tno_tenants inventory plugin in-process (issue 18, structural properties, no timing).

Ansible's InventoryManager runs the plugin on a split-vault copy of the lab inventory, as
ansible-playbook does. Proven here: its variables skip Ansible's per-value visitor (no copy and
tagging walk over tno_tenants) yet arrive as plain values, never trusted as templates; a warm start
parses no tenant file; a limited run decrypts its hosts' tenants' vault files only, each once; the
mail host gets all of a tenant's variables and its office host only the borg passphrase.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
from ansible import constants as C
from ansible._internal._datatag._tags import TrustedAsTemplate
from ansible.inventory import manager
from ansible.inventory.manager import InventoryManager
from ansible.parsing.dataloader import DataLoader
from ansible.parsing.vault import VaultSecret
from ansible.plugins.loader import inventory_loader

from tnoctl.config import validate, vault, vaultmigrate, vaultsplit
from tnoctl.config.ansible_view import host_vars
from tnoctl.config.load import load_inventory
from tnoctl.errors import InvalidInput

ROOT = Path(__file__).resolve().parents[2]
LAB = ROOT / "inventories" / "lab"


@pytest.fixture
def inv(tmp_path: Path, monkeypatch) -> Path:
    dest = tmp_path / "inv"
    shutil.copytree(LAB, dest, ignore=shutil.ignore_patterns(".tno"))
    vaultmigrate.split(dest, dest / "vault-password", workers=1)
    old = time.time() - 60
    for path in [*(dest / "tenants").glob("*.yml"), *(dest / "vault").glob("*.yml")]:
        os.utime(path, (old, old))
    monkeypatch.setattr(vault, "_MEMO", {})
    monkeypatch.setattr(vaultsplit, "_MEMO", {})
    monkeypatch.setattr(vaultsplit, "DECRYPTED", [])
    monkeypatch.setenv("TNO_INVENTORY_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("TNO_LIMIT_HOSTS", raising=False)
    monkeypatch.setattr(C, "INVENTORY_ENABLED", ["tno_tenants", "ansible.builtin.yaml"])
    inventory_loader.add_directory(str(ROOT / "plugins" / "inventory"))
    return dest


@pytest.fixture
def walked(monkeypatch) -> list[str]:
    """Names of the variables that went through Ansible's visitor (InventoryManager's set_variable wrapper)."""
    names: list[str] = []
    real = manager._InventoryDataWrapper.set_variable

    def set_variable(self, entity, varname, value):
        names.append(varname)
        return real(self, entity, varname, value)

    monkeypatch.setattr(manager._InventoryDataWrapper, "set_variable", set_variable)
    return names


def _run(inv: Path) -> InventoryManager:
    loader = DataLoader()
    loader.set_vault_secrets([("default", VaultSecret((inv / "vault-password").read_bytes().strip()))])
    return InventoryManager(loader=loader, sources=[str(inv / "hosts.yml"), str(inv / "tenants.tno.yml")])


def _plain(value) -> bool:
    """True when ``value`` and everything in it are untagged builtins (nothing trusted as a template)."""
    if type(value) is dict:
        return all(type(k) is str and _plain(v) for k, v in value.items())
    if type(value) is list:
        return all(_plain(v) for v in value)
    return type(value) in (str, int, float, bool, type(None)) and not TrustedAsTemplate.is_tagged_on(value)


def test_the_plugins_variables_skip_the_visitor_and_stay_plain(inv, walked):
    run = _run(inv)
    hosts = run.hosts
    ours = [n for n in walked if n.startswith("tno_")]
    assert ours == []  # hosts.yml's variables still go through it
    mail2 = hosts["mail2"].vars
    assert _plain(mail2["tno_tenants"]) and mail2["tno_tenants"]
    assert mail2["tno_tenants"] == host_vars(load_inventory(inv), {"mail2"})["mail2"]["tno_tenants"]
    assert _plain(run.groups["all"].vars["tno_all_tenants"]) and run.groups["all"].vars["tno_all_tenants"]
    secrets = {k: v for k, v in mail2.items() if k.startswith("tno_vault_")}
    assert secrets and _plain(list(secrets.values()))


def test_a_warm_start_parses_no_tenant_file(inv, monkeypatch):
    _run(inv)
    monkeypatch.setattr(validate, "check_tenant_file", lambda *a, **k: pytest.fail("a tenant file was parsed"))
    warm = _run(inv)
    assert warm.hosts["mail1"].vars["tno_tenants"]


def test_a_limited_run_decrypts_its_hosts_tenants_once_each(inv, monkeypatch):
    monkeypatch.setenv("TNO_LIMIT_HOSTS", "mail2")
    hosts = _run(inv).hosts
    served = load_inventory(inv).slugs_on_host("mail2")
    assert sorted(s for s in served if s in vaultsplit.present(inv)) == vaultsplit.DECRYPTED
    assert not [k for k in hosts["mail1"].vars if k.startswith("tno_vault_")]
    for slug in served:
        doc = vault.tenant_doc(inv, inv / "vault-password", slug)
        assert {k: hosts["mail2"].vars[k] for k in doc} == doc


def test_the_office_host_gets_only_the_borg_passphrase(inv):
    hosts = _run(inv).hosts
    loaded = load_inventory(inv)
    for slug in loaded.slugs_on_host("office1"):
        _space, borg = vaultsplit.namespace(slug)
        mine = [k for k in hosts["office1"].vars if k.startswith("tno_vault_")]
        assert borg in mine and all(k.startswith(vaultsplit.BORG_PREFIX) for k in mine)


def test_decrypt_many_keeps_order_and_stops_at_the_first_failure(inv):
    slugs = sorted(vaultsplit.present(inv))
    seen: list[str] = []

    def decrypt(data: bytes, rel: str) -> bytes:
        seen.append(rel)
        if rel == vaultsplit.rel(slugs[1]):
            raise InvalidInput(f"{rel}: cannot load: AnsibleVaultError")
        return b"x: 1\n"

    out = []
    with pytest.raises(InvalidInput, match=rf"^vault/{slugs[1]}\.yml: cannot load"):
        for slug, plain in vaultsplit.decrypt_many(inv, slugs, decrypt, 2):
            out.append((slug, plain))
    assert out == [(slugs[0], b"x: 1\n")]
    assert [slugs[0]] == vaultsplit.DECRYPTED


def test_parse_doc_keeps_yaml_types_and_parse_plain_gives_text():
    assert vaultsplit.parse_doc("a", b"tno_vault_a_x: 1234\ntno_vault_a_y:\n") == {"tno_vault_a_x": 1234,
                                                                                  "tno_vault_a_y": None}
    assert vaultsplit.parse_plain("a", b"tno_vault_a_x: 1234\ntno_vault_a_y:\n") == {"tno_vault_a_x": "1234"}
    with pytest.raises(InvalidInput, match=r"^vault/a\.yml: tno_vault_a_x: must be a name with a text value$"):
        vaultsplit.parse_doc("a", b"tno_vault_a_x: [1]\n")


def test_a_foreign_name_in_a_tenant_vault_file_is_one_line_naming_file_and_name(inv):
    from ansible.errors import AnsibleParserError
    from ansible.inventory.data import InventoryData

    lib = vault._vaultlib(inv / "vault-password")
    vault.write_tenant(inv, lib, "givors", {"tno_vault_givors_dgs": "x", "tno_vault_feyzin_x\nforged": "y"})
    loader = DataLoader()
    loader.set_vault_secrets([("default", VaultSecret((inv / "vault-password").read_bytes().strip()))])
    plugin = inventory_loader.get("tno_tenants")
    data = InventoryData()
    for host in load_inventory(inv).hosts:
        data.add_host(host)
    with pytest.raises(AnsibleParserError) as caught:
        plugin.parse(data, loader, str(inv / "tenants.tno.yml"))
    assert caught.value.message == ("vault/givors.yml: tno_vault_feyzin_x?forged: outside the tenant's vault "
                                    "namespace (tno_vault_givors_* or tno_vault_borg_givors)")
