"""Ansible inventory plugin: attach tnoctl tenants to the hosts that serve them.

Source file: `inventories/<name>/tenants.tno.yml` containing `plugin: tno_tenants`. It runs after
hosts.yml (file names sort), loads the inventory directory with tnoctl.config, and sets
`tno_tenants` on every host and `tno_all_tenants` on group all (docs/architecture.md).

At scale (issue 18) a run costs what its targets cost: tnoctl passes `TNO_INVENTORY_CACHE` (its
validation cache, so a warm start parses no tenant file: the hosts' `tno_tenants` entries come from
its content-addressed per-host cache, tnoctl/config/viewcache.py) and, for a run limited to some
hosts, `TNO_LIMIT_HOSTS` (comma-separated host names): only those hosts then get `tno_tenants` (the
others are outside `--limit` and never run), so only their tenants' files are read. Variables are
set on the Host/Group objects directly, not through Ansible's per-value copy-and-tag walk (see
`_set`). Without these variables (plain `ansible-playbook`), every host gets its tenants, as before.

Split vault layout (`vault/<slug>.yml`, tnoctl/config/vaultsplit.py): the files of exactly those
hosts' tenants are decrypted with the run's vault secrets (the loader's VaultLib; one PBKDF2 per
file, in threads: vaultsplit.decrypt_many), parsed with tnoctl's safe YAML reader, and each variable
is set on the hosts serving that tenant: its mail host gets them all (mailbox passwords: role
tno_mail's users files), its other hosts whose `tno_tenants` lists it (office, proxy) only
`tno_vault_borg_<slug_>` (role tno_backup's client). Roles keep reading them with
`lookup('ansible.builtin.vars', ...)`. Plaintext never leaves the process and is never logged.
Without any vault secret (`ansible-inventory --graph` with no password) they are not loaded.
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
        cache_dir = Path(cache) if cache else None
        try:
            inv = load_inventory(Path(path).parent, cache_dir=cache_dir)
            limit = {h for h in os.environ.get("TNO_LIMIT_HOSTS", "").split(",") if h}
            only = limit if limit and limit <= set(inv.hosts) else None  # a pattern or unknown name: everyone
            for name in inv.hosts:
                self.inventory.add_host(name)
            served: dict[str, dict[str, bool]] = {}  # slug -> {host: is its mail host}
            for name, hvars in host_vars(inv, only, cache_dir).items():
                for key, value in hvars.items():
                    self._set(name, key, value)
                for tenant in hvars["tno_tenants"]:
                    served.setdefault(tenant["slug"], {})[name] = tenant["placement"]["mail"] == name
            self._tenant_secrets(Path(path).parent, served)
            self._set("all", "tno_all_tenants", all_tenants(inv))
        except TnoError as exc:
            raise AnsibleParserError("\n  ".join([exc.message, *exc.details])) from None

    def _set(self, entity: str, key: str, value) -> None:
        """Set a variable on a host or group without Ansible's per-value walk (issue 18).

        ``inventory.set_variable`` passes every value through a visitor that copies the whole structure
        and tags each scalar with its origin: for the ~400,000 scalars of a 700-tenant host's
        `tno_tenants` (and 35,000 entries of `tno_all_tenants`) that walk was a third of
        ansible-playbook's start. ``Host.set_variable`` (and Group's) is what the visitor hands its copy
        to; what we give it is already what the visitor would keep: plain dicts, lists, strings,
        numbers, booleans and None, in containers built for this call and shared with nothing, and,
        as the visitor does for this plugin (``trusted_by_default`` False), not trusted as templates
        (a tenant name holding `{{ ... }}` stays text). Only the origin tags are missing (diagnostics).
        """
        target = self.inventory.groups[entity] if entity in self.inventory.groups else self.inventory.get_host(entity)
        target.set_variable(key, value)

    def _tenant_secrets(self, root: Path, served: dict[str, dict[str, bool]]) -> None:
        """Set each served tenant's `vault/<slug>.yml` variables on the hosts that serve it (split layout).

        Its mail host gets every variable (mailbox passwords for the users files, the borg passphrase);
        its other hosts (office, proxy) only the borg passphrase, which their backup client needs.
        The files are read and decrypted with the run's vault secrets in threads (vaultsplit.decrypt_many:
        the key derivation runs without the GIL), parsed with tnoctl's safe YAML reader (scalars only,
        as a vault variable is; no aliases, no duplicate key); plaintext stays in this process.
        """
        from ansible.errors import AnsibleError
        from ansible.utils.display import Display

        from tnoctl.config import vaultsplit
        from tnoctl.config.validate import printable
        from tnoctl.errors import InvalidInput

        wanted = sorted(slug for slug in served if slug in vaultsplit.present(root))
        if not wanted:
            return
        lib = getattr(self.loader, "_vault", None)
        if not getattr(lib, "secrets", None):
            Display().warning(f"{root / vaultsplit.VAULT_DIR}: tenant secrets not loaded (no vault password given)")
            return

        def decrypt(data: bytes, rel: str) -> bytes:
            try:
                return lib.decrypt(data)
            except AnsibleError as exc:
                raise InvalidInput(f"{rel}: cannot load: {type(exc).__name__}") from None

        for slug, plain in vaultsplit.decrypt_many(root, wanted, decrypt, os.cpu_count() or 1):
            doc = vaultsplit.parse_doc(slug, plain)
            space, borg = vaultsplit.namespace(slug)
            for key in doc:
                if not (key.startswith(space) or key == borg):
                    raise InvalidInput(f"{vaultsplit.rel(slug)}: {printable(key)[:160]}: outside the tenant's vault "
                                       f"namespace ({space}* or {borg})")
            for host, mail in served[slug].items():
                for key, value in doc.items():
                    if mail or key == borg:
                        self._set(host, key, value)
