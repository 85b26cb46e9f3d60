"""`tenant add`: write tenants/SLUG.yml and the tenant's generated secrets (mailbox passwords, borg
passphrase) into the vault; the next step is `tenant onboard SLUG` (tenant_onboard.py).

One audited operation holding the new slug's lock (two operators adding the same commune cannot
interleave). The whole inventory is validated with the new tenant before anything is written;
passwords are generated and encrypted by :mod:`tnoctl.config.newtenant`, never shown.
"""

from __future__ import annotations

from dataclasses import dataclass

from tnoctl.actions.env import Env
from tnoctl.actions.operation import Outcome, operation
from tnoctl.config import newtenant


@dataclass(frozen=True)
class TenantAddRequest:
    """The new tenant's parameters (mailboxes as ``local[:quota]``; hosts None: least loaded)."""

    slug: str
    name: str
    insee: str
    domains: tuple[str, ...]
    mailboxes: tuple[str, ...] = ()
    mail_host: str | None = None
    office_host: str | None = None
    window: str | None = None


def run(env: Env, request: TenantAddRequest) -> Outcome:
    """Validate and write the tenant; the Outcome message says where it went."""
    newtenant.check_slug(request.slug)
    params = {"slug": request.slug, "name": request.name, "insee": request.insee, "domains": request.domains,
              "mailboxes": request.mailboxes, "mail_host": request.mail_host,
              "office_host": request.office_host, "window": request.window}
    with operation(env, "tenant add", params, tenants=[request.slug]) as op:
        inv = env.inventory
        doc = newtenant.build(inv, request.slug, request.name, request.insee, list(request.domains),
                              list(request.mailboxes), request.mail_host, request.office_host, request.window)
        path = newtenant.write(inv, doc, env.vault_password_file)
        env.reload_inventory()  # the next reader (a later runbook step) sees the new tenant
        op.details["file"] = str(path)
        text = (f"tenant {request.slug} added: {path} ({len(doc['mailboxes'])} mailboxes on "
                f"{doc['placement']['mail']}, office on {doc['placement']['office']}; passwords and borg passphrase "
                f"stored in the vault)")
        step = f"next step: tnoctl tenant onboard {request.slug}"
        return Outcome(lines=[text, step], data={"slug": request.slug, "file": str(path), "next": step})
