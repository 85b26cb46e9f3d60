"""Ansible view: the inventory plugin (real `ansible-inventory --list`) and `tnoctl inventory export`."""

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tnoctl.cli import main
from tnoctl.cli.context import AppContext
from tnoctl.config.ansible_view import all_tenants, host_vars
from tnoctl.config.load import load_inventory

ROOT = Path(__file__).resolve().parents[2]
LAB = ROOT / "inventories" / "lab"
ANSIBLE_INVENTORY = Path(sys.executable).parent / "ansible-inventory"
EXPECTED = {"mail1": ["saint-fons", "vaulx-en-velin", "venissieux"],
            "office1": ["bron", "vaulx-en-velin", "venissieux"],
            "mail2": ["corbas", "feyzin", "givors"], "office2": ["corbas", "givors", "saint-fons"], "backup1": []}


def plain(value):
    """Drop ansible-core 2.19's `{"__ansible_unsafe": ...}` wrappers of plugin-provided strings."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return value["__ansible_unsafe"]
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def ansible_inventory(source: Path, tmp_path: Path) -> dict:
    env = dict(os.environ, ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"), ANSIBLE_HOME=str(tmp_path / "ah"),
               ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"))
    proc = subprocess.run([str(ANSIBLE_INVENTORY), "-i", str(source), "--list"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return plain(json.loads(proc.stdout))


def test_view_matches_the_contract():
    inv = load_inventory(LAB)
    hv = host_vars(inv)
    assert {h: [t["slug"] for t in v["tno_tenants"]] for h, v in hv.items()} == EXPECTED
    givors = hv["mail2"]["tno_tenants"][2]
    assert set(givors) == {"slug", "name", "insee", "domains", "primary_domain", "services", "pilot", "placement",
                           "mailboxes", "mail", "office", "backup", "drill_on_calendar"}
    assert givors["mailboxes"][0] == {"local": "mairie", "domain": "givors.test", "address": "mairie@givors.test",
                                      "name": "Accueil de la mairie", "quota": "2G", "quota_bytes": 2 * 1024**3,
                                      "password_vault": "tno_vault_givors_mairie", "send_limit": None}
    assert givors["backup"] == {"keep_daily": 7, "keep_weekly": 4, "keep_monthly": 6}
    assert all_tenants(inv)[3] == {"slug": "givors", "domains": ["givors.test"], "mail_host": "mail2",
                                   "mail_host_address": "198.18.0.12", "office_host": "office2"}


def test_ansible_inventory_list_shows_tenants_on_their_hosts(tmp_path):
    data = ansible_inventory(LAB, tmp_path)
    hostvars = data["_meta"]["hostvars"]
    assert {h: [t["slug"] for t in v["tno_tenants"]] for h, v in hostvars.items()} == EXPECTED
    assert hostvars["mail1"]["ansible_host"] == "198.18.0.11"
    assert hostvars["mail1"]["tno_office_version"] == "24.04.10.1-1"
    every = sorted({slug for slugs in EXPECTED.values() for slug in slugs})
    assert [t["slug"] for t in hostvars["mail1"]["tno_all_tenants"]] == every
    assert sorted(data["mail"]["hosts"]) == ["mail1", "mail2"]
    assert "vault-password" not in json.dumps(data) and "ungrouped" not in data  # no stray inventory sources


def test_export_is_a_static_inventory_ansible_reads(tmp_path):
    out = tmp_path / "static.yml"
    app = AppContext(inventory=LAB, state_dir_override=tmp_path / "state", stdout=io.StringIO(),
                     stderr=io.StringIO())
    assert main(["inventory", "export", "--out", str(out)], app=app) == 0
    data = ansible_inventory(out, tmp_path)
    hostvars = data["_meta"]["hostvars"]
    assert {h: [t["slug"] for t in v["tno_tenants"]] for h, v in hostvars.items()} == EXPECTED
    assert hostvars["office2"]["ansible_user"] == "tnoops"
    assert hostvars["office2"]["tno_backup_host"] == "backup1"
    assert "$ANSIBLE_VAULT" not in out.read_text()


def test_plugin_reports_invalid_inventory(tmp_path):
    inv = tmp_path / "inv"
    shutil.copytree(LAB, inv, ignore=shutil.ignore_patterns(".tno"))
    (inv / "tenants" / "givors.yml").write_text("slug: givors\n")
    env = dict(os.environ, ANSIBLE_LOCAL_TEMP=str(tmp_path / "t"), ANSIBLE_HOME=str(tmp_path / "ah"),
               ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"))
    proc = subprocess.run([str(ANSIBLE_INVENTORY), "-i", str(inv), "--list"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert "tenants/givors.yml: name: required key is missing" in proc.stderr
