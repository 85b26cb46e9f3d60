"""`inventory split-vault`: move the tenants' secrets from vault.yml to `vault/<slug>.yml` (config/vaultmigrate.py).

One audited operation; the outcome gives counts only (never a name's value). Re-running it is safe:
nothing left to move writes nothing, and an interrupted run finishes where it stopped.
"""

from __future__ import annotations

from tnoctl.actions.env import Env
from tnoctl.actions.operation import Outcome, operation
from tnoctl.config import vaultmigrate


def run(env: Env) -> Outcome:
    """Split the vault per tenant; the outcome says how many tenant files and names moved."""
    with operation(env, "inventory split-vault", {}, lock=False) as op:
        counts = vaultmigrate.split(env.inventory_path, env.vault_password_file)
        op.details.update(counts)
        if not counts["moved"]:
            message = f"no tenant secret left in vault.yml ({counts['kept']} platform secret(s) stay there)"
        else:
            message = (f"{counts['moved']} secret(s) of {counts['tenants']} tenant(s) moved to vault/<slug>.yml; "
                       f"{counts['kept']} stay in group_vars/all/vault.yml (values not shown)")
        return Outcome(message=message, data=counts)
