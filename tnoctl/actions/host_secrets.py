"""`inventory secrets`: create the per-host secrets the vault lacks (today: each mail host's Rspamd
controller password, config/hostsecrets.py).

One audited operation; values are random, encrypted inline by config/vault.py and never shown: the
outcome lists variable *names* only. Existing variables are kept (re-running is a no-op), so adding a
mail host to hosts.yml and running this once is all a deploy of that host needs.
"""

from __future__ import annotations

from tnoctl.actions.env import Env
from tnoctl.actions.operation import Outcome, operation
from tnoctl.config import hostsecrets
from tnoctl.errors import InvalidInput


def run(env: Env) -> Outcome:
    """Add the missing host secrets; the outcome names those added (or says none was missing)."""
    inv = env.inventory
    mail = sorted(name for name, host in inv.hosts.items() if "mail" in host.groups)
    with operation(env, "inventory secrets", {}, hosts=mail, lock=False) as op:
        if env.vault_password_file is None:
            raise InvalidInput("inventory secrets needs the vault password to read and store secrets "
                               "(--vault-password-file or $TNO_VAULT_PASSWORD_FILE)")
        added = hostsecrets.create(inv.path, env.vault_password_file, mail)
        op.details["added"] = added
        if not added:
            return Outcome(message="every host secret is already in the vault", data={"added": []})
        return Outcome(message=f"{len(added)} host secret(s) added to the vault (values not shown)",
                       lines=[f"+ {name}" for name in added], data={"added": added})
