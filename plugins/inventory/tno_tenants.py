"""Ansible inventory plugin: attach tnoctl tenants to the hosts that serve them.

Source file: `inventories/<name>/tenants.tno.yml` containing `plugin: tno_tenants`. It runs after
hosts.yml (file names sort), loads the inventory directory with tnoctl.config, and sets
`tno_tenants` on every host and `tno_all_tenants` on group all (docs/architecture.md).

At scale (issue 18) a run costs what its targets cost: tnoctl passes `TNO_INVENTORY_CACHE` (its
validation cache, so a warm start parses no tenant file) and, for a run limited to some hosts,
`TNO_LIMIT_HOSTS` (comma-separated host names): only those hosts then get `tno_tenants` (the
others are outside `--limit` and never run), so only their tenants' files are parsed and Ansible's
data tagging walks their tenants, not the fleet's. Without these variables (plain
`ansible-playbook`), every host gets its tenants, as before.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ansible.errors import AnsibleParserError
from ansible.plugins.inventory import BaseInventoryPlugin

DOCUMENTATION = r"""
name: tno_tenants
short_description: tnoctl tenants attached to their hosts
description:
  - Reads tenants/*.yml, group_vars/all/platform.yml and hosts.yml of the inventory directory
    holding the source file, validates them, and sets C(tno_tenants) per host and
    C(tno_all_tenants) on group all.
options:
  plugin:
    description: Token that marks this file as a source for this plugin.
    required: true
    choices: ['tno_tenants', 'syndicat.tnoctl.tno_tenants']
"""

EXAMPLES = r"""
# inventories/lab/tenants.tno.yml (from the repository, ansible.cfg enables the plugin by its short name)
plugin: tno_tenants
# from the collection (AWX / AAP execution environment): enable_plugins = syndicat.tnoctl.tno_tenants
plugin: syndicat.tnoctl.tno_tenants
"""

_ROOT = Path(__file__).resolve().parents[2]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))


class InventoryModule(BaseInventoryPlugin):
    """Adds tno_tenants / tno_all_tenants from the tnoctl tenant files."""

    NAME = "tno_tenants"

    def verify_file(self, path):
        """Only `*.tno.yml` files are ours."""
        return super().verify_file(path) and str(path).endswith(".tno.yml")

    def parse(self, inventory, loader, path, cache=True):
        """Load the inventory directory with tnoctl and attach tenants to hosts."""
        super().parse(inventory, loader, path, cache)
        self._read_config_data(path)
        from tnoctl.config.ansible_view import all_tenants, host_vars
        from tnoctl.config.load import load_inventory
        from tnoctl.errors import TnoError

        cache = os.environ.get("TNO_INVENTORY_CACHE")
        try:
            inv = load_inventory(Path(path).parent, cache_dir=Path(cache) if cache else None)
        except TnoError as exc:
            raise AnsibleParserError("\n  ".join([exc.message, *exc.details])) from None
        limit = {h for h in os.environ.get("TNO_LIMIT_HOSTS", "").split(",") if h}
        only = limit if limit and limit <= set(inv.hosts) else None  # a pattern or unknown name: everyone
        for name in inv.hosts:
            self.inventory.add_host(name)
        for name, hvars in host_vars(inv, only).items():
            self.inventory.add_host(name)
            for key, value in hvars.items():
                self.inventory.set_variable(name, key, value)
        self.inventory.set_variable("all", "tno_all_tenants", all_tenants(inv))
