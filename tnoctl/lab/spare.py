"""A sixth lab host for disaster-recovery exercises: ``mail3`` (198.18.0.16), added and booted on demand.

Why not a permanent host of the lab inventory: every `lab up`, every fleet deploy and every e2e session
would boot, deploy and monitor it for the one exercise that needs it. Instead the exercise does what an
operator does after losing a server: put a freshly provisioned machine into ``hosts.yml`` (group
``mail``), create its secrets (`tnoctl inventory secrets`), boot it (``Lab.up_hosts``: `tnoctl lab up
--host mail3`), then `tnoctl restore --tenant T --to-host mail3`. :func:`spare_host` undoes it all at the
end: hosts.yml and vault.yml back to their exact text, the machine powered off and its disk discarded.
Used by tests/e2e/test_dr_new_host.py, tests/e2e/test_zxa_acme_mode.py and ``bench/backup.py --rto``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

from tnoctl.config import hostsecrets
from tnoctl.config.vault import VAULT_REL
from tnoctl.errors import InvalidInput
from tnoctl.lab.lab import Lab

SPARE_NAME = "mail3"
SPARE_ADDRESS = "198.18.0.16"  # after backup1 (.15); bench/upgrade.py's own lab uses .21 and up


def with_host(hosts_yml: str, name: str, address: str, group: str = "mail") -> str:
    """hosts.yml text with ``name`` (``ansible_host: address``) added to ``group`` (pure; comments dropped).

    InvalidInput when the name or the address is already used: the spare must be a machine that never
    served anything.
    """
    doc = yaml.safe_load(hosts_yml) or {}
    children = doc.setdefault("all", {}).setdefault("children", {})
    for body in children.values():
        for host, hvars in ((body or {}).get("hosts") or {}).items():
            if host == name or (hvars or {}).get("ansible_host") == address:
                raise InvalidInput(f"hosts.yml: {host} already uses the name {name} or the address {address}")
    target = children.get(group) or {}
    target["hosts"] = {**(target.get("hosts") or {}), name: {"ansible_host": address}}
    children[group] = target
    return "# a spare host was added by tnoctl.lab.spare for a recovery exercise; restored at its end\n" + \
        yaml.safe_dump(doc, sort_keys=False)


@contextmanager
def spare_host(inventory: Path, name: str = SPARE_NAME, address: str = SPARE_ADDRESS,
               group: str = "mail") -> Iterator[Lab]:
    """``name`` in ``inventory``'s hosts.yml and booted, for the body of the ``with``; then removed.

    Yields the Lab over the inventory that includes it (its ssh_config and known_hosts name it). A mail
    host gets its per-host secrets in the vault (config.hostsecrets: the Rspamd controller password),
    as `tnoctl inventory secrets` makes them; vault.yml is put back byte for byte at the end.
    """
    path = inventory / "hosts.yml"
    vault_path = inventory / VAULT_REL
    original, original_vault = path.read_text(), vault_path.read_bytes()
    path.write_text(with_host(original, name, address, group))
    try:
        if group == "mail":  # what the operator runs after adding a mail host: `tnoctl inventory secrets`
            hostsecrets.create(inventory, inventory / "vault-password", [name])
        lab = Lab(inventory)
        lab.up_hosts([name])
        yield lab
    finally:
        path.write_text(original)
        vault_path.write_bytes(original_vault)
        Lab(inventory).remove_host(name)
