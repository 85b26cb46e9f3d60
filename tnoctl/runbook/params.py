"""From the alert labels (``--tenant``, ``--component``, ``--param``) to the run's :class:`Params`.

Why separate: the placeholder values come from the inventory (the tenant's domain and hosts),
and checking them up front gives one clear exit-2 error instead of a failure mid-run.
"""

from __future__ import annotations

from typing import Any

from tnoctl.errors import InvalidInput
from tnoctl.runbook.engine import Params
from tnoctl.runbook.load import Runbook
from tnoctl.runbook.schema import COMPONENTS


def parse_pairs(pairs: tuple[str, ...] | list[str]) -> dict[str, str]:
    """``["mailbox=alice@x.test"]`` -> ``{"mailbox": "alice@x.test"}``; InvalidInput on a bad pair."""
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise InvalidInput(f"--param {pair!r}: expected NAME=VALUE")
        out[name] = value
    return out


def build_params(runbook: Runbook, inventory: Any, tenant: str | None, component: str | None,
                 extra: dict[str, str]) -> Params:
    """Check the parameters against the runbook and the inventory; the placeholder values."""
    doc = runbook.doc
    unknown = sorted(set(extra) - set(doc.params))
    if unknown:
        known = ", ".join(sorted(doc.params)) or "none"
        raise InvalidInput(f"runbook {doc.name} has no parameter {unknown[0]!r} (known: {known})")
    missing = [name for name, spec in doc.params.items() if spec.required and name not in extra]
    if missing:
        raise InvalidInput(f"runbook {doc.name} needs --param {missing[0]}=VALUE")
    if doc.tenant and not tenant:
        raise InvalidInput(f"runbook {doc.name} needs --tenant (the alert's tenant label)")
    if component is not None and component not in COMPONENTS:
        raise InvalidInput(f"--component {component!r} is not one of: {', '.join(COMPONENTS)}")
    values = {name: extra.get(name, "") for name in doc.params}
    backup_host = str(getattr(inventory.platform, "tno_backup_host", "") or "")
    values.update(tenant=tenant or "", component=component or "", backup_host=backup_host,
                  domain="", mail_host="", office_host="")
    components: set[str] = {component} if component else set(COMPONENTS)
    if tenant:
        t = inventory.tenant(tenant)  # InvalidInput (exit 2) for an unknown tenant
        services = set(t.services)
        if component and component not in services:
            have = ", ".join(t.services)
            raise InvalidInput(f"tenant {tenant} has no {component} service (services: {have})")
        components &= services
        values.update(domain=t.domains[0], mail_host=t.placement.mail or "",
                      office_host=t.placement.office or "")
    return Params(tenant=tenant, components=frozenset(components), values=values)
