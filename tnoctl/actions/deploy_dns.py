"""`deploy`'s last step: publish the deployed tenants' DNS records where the platform manages the zones.

Why (issue 15, item 5): mail between communes is routed by their MX records, so a fleet brought up by
`deploy` alone (`make demo`, the e2e session fleet, a production site's first run) must have them. When the
platform names a DNS server it may update (``tno_dns_server`` with a TSIG key: what `dns publish` uses),
after a successful site run every tenant the run touched has its records computed, published and checked
by the one publishing path (:func:`tnoctl.actions.tenant_dns.tenant_records`, then
:func:`tnoctl.actions.tenant_dns_sync.publish`: what `tnoctl dns publish` runs, one SSH command per mail
host for the DKIM keys, one RFC 2136 update per zone with a difference). Each record's state goes to the
deploy's audit record (``details["dns"]``: names and states, never the TSIG secret).

A problem (a record still missing, a zone the server does not serve, a mail host unreadable) is
returned, one line per problem naming the tenant; the deploy warns, names `tnoctl dns publish --yes
--tenant ...` and exits 1, as a failed backup setup does. Without a DNS server or without its TSIG key
(a server the platform only checks), nothing is sent and nothing is said: the records are the
operator's (`tnoctl dns plan`). `tnoctl plan` (check mode) is left untouched: it never publishes.
"""

from __future__ import annotations

from collections.abc import Sequence

from tnoctl.actions import tenant_dns_sync as sync
from tnoctl.actions.env import Env
from tnoctl.actions.tenant_dns import tenant_records
from tnoctl.errors import InvalidInput, OperationFailed
from tnoctl.state.audit import Operation


def manages_zones(env: Env) -> bool:
    """True when the platform names a DNS server and the TSIG key that may update it."""
    platform = env.inventory.platform
    return platform.tno_dns_server is not None and platform.tno_dns_tsig_secret_vault is not None


def publish_deployed(env: Env, op: Operation, slugs: Sequence[str],
                     client_factory: sync.ClientFactory | None = None) -> list[str]:
    """Publish and check the records of ``slugs`` inside the deploy's operation; the problems left ([] if none)."""
    if not slugs or not manages_zones(env):
        return []
    try:
        client = (client_factory or sync.platform_client)(env, True)
    except (InvalidInput, OperationFailed) as exc:  # e.g. the TSIG secret missing from the vault
        return [f"DNS records not published: {exc}"]
    problems: list[str] = []
    states: dict[str, dict[str, str]] = {}
    for found in tenant_records(env, list(slugs)):
        if found.error:
            problems.append(f"{found.slug}: {found.error}")
            continue
        try:
            statuses = sync.publish(env, found.slug, sync.expected_records(found.records, found.domains), client)
        except (InvalidInput, OperationFailed) as exc:  # e.g. the server does not serve the commune's zone
            problems.append(f"{found.slug}: {exc}")
            continue
        states[found.slug] = {f"{s.record.name} {s.record.rtype}": s.state for s in statuses}
        problems += sync.errors_of(found.slug, statuses)
    op.details["dns"] = states
    return problems
