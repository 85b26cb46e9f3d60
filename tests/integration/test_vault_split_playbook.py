"""The split vault layout seen by a real ansible-playbook run (issue 18): the tno_tenants inventory plugin
loads `vault/<slug>.yml` of the targeted hosts' tenants with Ansible's DataLoader and the run's vault
password, and sets each variable on the hosts serving that tenant.

A copy of the lab inventory is split with `tnoctl inventory split-vault`'s code. The playbook only runs
`assert` tasks (controller-side actions: no host is contacted). It reads the mailbox passwords as role
tno_mail's users template does (`lookup('ansible.builtin.vars', box.password_vault)`), compares their
SHA-256 with the files' (no value is passed or printed), and checks which tenant variables each host
has: its mail host gets all of a tenant's, its other hosts only the borg passphrase, other hosts none;
and with a limit (tnoctl passes TNO_LIMIT_HOSTS) the other hosts' tenants are not even decrypted (their
files are re-encrypted with another password: decrypting one would fail the run).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import textwrap
from pathlib import Path

import pytest
from ansible.constants import DEFAULT_VAULT_ID_MATCH
from ansible.parsing.vault import VaultLib, VaultSecret

from tnoctl import paths
from tnoctl.config import vault, vaultmigrate, vaultsplit
from tnoctl.config.load import load_inventory
from tnoctl.plan.calls import PlaybookCall
from tnoctl.run.ansible import run_playbook

pytestmark = pytest.mark.integration

PLATFORM = r"^tno_vault_(office|rspamd|dns|acme)_"
PLAYBOOK = """\
- name: Tenant secrets of the split vault layout
  hosts: all
  gather_facts: false
  tasks:
    - name: The mail host reads its tenants' mailbox passwords as role tno_mail does
      ansible.builtin.assert:
        that: lookup('ansible.builtin.vars', item.password_vault) | hash('sha256') == hashes[item.password_vault]
        quiet: true
      loop: "{{ tno_tenants | selectattr('placement.mail', 'equalto', inventory_hostname)
                | map(attribute='mailboxes') | flatten }}"
      loop_control:
        label: "{{ item.password_vault }}"
    - name: Each host holds exactly the tenant variables it needs
      ansible.builtin.assert:
        that: >-
          (query('ansible.builtin.varnames', '^tno_vault_') | reject('match', platform) | sort)
          == expected[inventory_hostname]
        fail_msg: "{{ inventory_hostname }}: {{ query('ansible.builtin.varnames', '^tno_vault_')
                   | reject('match', platform) | sort }}"
    - name: vault/ is no inventory source (ignore_patterns), so its names made no group
      ansible.builtin.assert:
        that: groups.keys() | select('match', '^tno_vault_') | list | length == 0
    - name: Hosts outside the limit carry no tenant secret
      ansible.builtin.assert:
        that: hostvars[item] | dict2items | map(attribute='key') | select('match', '^tno_vault_')
              | reject('match', platform) | list | length == 0
      loop: "{{ outside }}"
"""


@pytest.fixture()
def inv(tmp_path: Path) -> Path:
    dest = tmp_path / "inv"
    shutil.copytree(paths.LAB_INVENTORY, dest, ignore=shutil.ignore_patterns(".tno"))
    vaultmigrate.split(dest, dest / "vault-password", workers=1)
    (dest / "group_vars" / "all" / "python.yml").write_text(f"ansible_python_interpreter: {sys.executable}\n")
    (tmp_path / "pb.yml").write_text(textwrap.dedent(PLAYBOOK))
    return dest


def _expected(inv: Path) -> tuple[dict[str, list[str]], dict[str, str]]:
    """({host: tenant variable names it must hold}, {name: sha256 of its value})."""
    loaded = load_inventory(inv)
    password = inv / "vault-password"
    docs = {slug: vault.tenant_doc(inv, password, slug) for slug in vaultsplit.present(inv)}
    expected: dict[str, list[str]] = {}
    for host in loaded.hosts:
        names: list[str] = []
        for slug in loaded.slugs_on_host(host):
            mine = loaded.row(slug).placement.mail == host
            names += [n for n in docs[slug] if mine or n.startswith("tno_vault_borg_")]
        expected[host] = sorted(names)
    hashes = {n: hashlib.sha256(v.encode()).hexdigest() for doc in docs.values() for n, v in doc.items()}
    return expected, hashes


def _run(inv: Path, limit: tuple[str, ...], extra: dict, run_id: str):
    call = PlaybookCall(str(inv.parent / "pb.yml"), extra_vars=extra, limit=limit)
    return run_playbook(call, inventory=inv, state_dir=inv.parent / "state", run_id=run_id,
                        vault_password_file=inv / "vault-password")


def _values(inv: Path) -> list[str]:
    password = inv / "vault-password"
    return [v for slug in vaultsplit.present(inv) for v in vault.tenant_doc(inv, password, slug).values()]


def _no_value_in_artifacts(inv: Path, values: list[str]) -> None:
    """No secret in the run's artifacts, and vault/ was never read as an inventory source (ignore_patterns):
    Ansible would decrypt every tenant file for that (or warn that it cannot)."""
    for path in (inv.parent / "state" / "runs").rglob("*"):
        if path.is_file():
            text = path.read_text(errors="replace")
            assert not any(v in text for v in values), path
            assert f"{inv}/vault/" not in text and "Skipping 'tno_vault_" not in text, path


def test_a_limited_run_gets_its_hosts_tenant_secrets_only(inv: Path) -> None:
    expected, hashes = _expected(inv)
    assert any(not n.startswith("tno_vault_borg_") for n in expected["mail2"])
    outside = sorted(h for h in expected if h != "mail2")
    values = _values(inv)
    # the other tenants' files become undecryptable with the run's password: any decrypt of one fails the run
    other = VaultLib([(DEFAULT_VAULT_ID_MATCH, VaultSecret(b"another-password"))])
    served = set(load_inventory(inv).slugs_on_host("mail2"))
    for slug in sorted(vaultsplit.present(inv) - served):
        (inv / vaultsplit.rel(slug)).write_bytes(other.encrypt(b"tno_vault_borg_x: y\n"))
    result = _run(inv, ("mail2",), {"expected": expected, "hashes": hashes, "platform": PLATFORM,
                                    "outside": outside}, "limited")
    assert result.success, json.dumps(result.hosts, default=str)[:2000]
    assert sorted(result.hosts) == ["mail2"]
    _no_value_in_artifacts(inv, values)


def test_a_plain_run_gives_every_host_its_tenants_secrets_and_no_other(inv: Path) -> None:
    expected, hashes = _expected(inv)
    assert expected["office1"] and all(n.startswith("tno_vault_borg_") for n in expected["office1"])
    assert expected["backup1"] == [] and set(expected["mail1"]).isdisjoint(expected["mail2"])
    result = _run(inv, (), {"expected": expected, "hashes": hashes, "platform": PLATFORM, "outside": []}, "plain")
    assert result.success, json.dumps(result.hosts, default=str)[:2000]
    assert sorted(result.hosts) == sorted(expected)
    _no_value_in_artifacts(inv, _values(inv))
