"""From the inventory to :class:`Probe` lists (for tnoctl), over the endpoints of probes/endpoints.py.

Why here: the same inventory walk (:func:`endpoints`, re-exported) feeds ``tnoctl status``, the
exporter's background worker and ``tnoctl monitoring targets`` (which imports probes/endpoints.py
only). The inventory is duck-typed (``.tenants``, ``.hosts[name].address``) so tests pass fakes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from tnoctl.config import gcpause, logical
from tnoctl.probes import backup_freshness, https, imap, office, office_document, queue, roundtrip, smtp
from tnoctl.probes.base import Probe, ProbeResult
from tnoctl.probes.endpoints import SERVICES as SERVICES  # re-exported: the endpoints live in probes/endpoints.py
from tnoctl.probes.endpoints import Endpoint as Endpoint
from tnoctl.probes.endpoints import _placement, endpoints, primary_domain
from tnoctl.state.store import Store

CANARY_LOCAL = logical.CANARY_LOCAL
SecretLookup = Callable[[str], "str | None"]


def canary(tenant: Any) -> tuple[str, str] | None:
    """(address, vault variable name) of the tenant's canary mailbox, if it has one.

    An inventory row (config.load.TenantRow) carries it as ``canary``; a full model has its mailboxes.
    """
    if isinstance(getattr(tenant, "mailboxes", None), int):  # a row: the index kept the canary
        return tenant.canary
    for mb in getattr(tenant, "mailboxes", []):
        if mb.local == CANARY_LOCAL:
            return f"{mb.local}@{mb.domain or primary_domain(tenant)}", mb.password_vault
    return None


@dataclass(frozen=True)
class ProbeOptions:
    """Knobs shared by every probe of one run."""

    ca_file: Path | None = None
    timeout: float = 10.0
    roundtrip: bool = False
    pinned_office: str | None = None


def _login(tenant: Any, secrets: SecretLookup | None) -> tuple[str, str] | None:
    found = canary(tenant)
    if found is None or secrets is None:
        return None
    password = secrets(found[1])
    return (found[0], password) if password else None


def network_probes(inventory: Any, opts: ProbeOptions, secrets: SecretLookup | None = None,
                   only: Iterable[str] | None = None,
                   now: Callable[[], float] = time.time) -> list[Probe]:
    """SMTP, submission, IMAP, IMAPS (+ canary login), HTTPS and office probes per tenant.

    The document-open probe (check ``office_document``) runs when the platform names the address its
    one-shot WOPI endpoint listens on (``tno_office_probe_wopi_host``).
    """
    with gcpause.paused():  # 210,000 probes and their bodies at 35,000 communes, no cycle among them (issue 18)
        return _network_probes(inventory, opts, secrets, only, now)


def _network_probes(inventory: Any, opts: ProbeOptions, secrets: SecretLookup | None,
                    only: Iterable[str] | None, now: Callable[[], float]) -> list[Probe]:
    tenants = {t.slug: t for t in inventory.tenants}
    wopi_host = getattr(getattr(inventory, "platform", None), "tno_office_probe_wopi_host", None)
    probes: list[Probe] = []
    for ep in endpoints(inventory, only):
        tenant = tenants[ep.tenant]
        args = (ep.tenant, ep.address, ep.port, ep.server_name, opts.ca_file)
        if ep.service in ("smtp", "submission"):
            def body(t: float, a: tuple = args, check: str = ep.service) -> list[ProbeResult]:
                return smtp.probe_smtp(*a, timeout=t, now=now(), check=check)
        elif ep.service in ("imap", "imaps"):
            # The canary password is looked up when the probe runs, not here: building a round's
            # probes for 35,000 tenants must not wait for 35,000 vault decrypts (issue 18).
            def body(t: float, a: tuple = args, tls: bool = ep.service == "imaps",
                     tenant: Any = tenant) -> list[ProbeResult]:
                return imap.probe_imap(*a, timeout=t, now=now(), implicit_tls=tls,
                                       login=_login(tenant, secrets) if tls else None)
        else:
            probes.append(Probe(ep.tenant, "office", "office", partial(_office, args, opts.pinned_office),
                                opts.timeout))
            if wopi_host:
                probes.append(Probe(ep.tenant, "office", office_document.CHECK,
                                    partial(_document, args, wopi_host), opts.timeout * 2))
            def body(t: float, a: tuple = args) -> list[ProbeResult]:
                return https.probe_https(*a, timeout=t, now=now())
        probes.append(Probe(ep.tenant, ep.component, ep.service, body, opts.timeout))
        if ep.service == "imaps" and opts.roundtrip:
            login = _login(tenant, secrets)
            if login is not None:
                probes.append(Probe(ep.tenant, "mail", "roundtrip",
                                    partial(_roundtrip, ep, login, opts.ca_file), opts.timeout * 3))
    return probes


def _office(args: tuple, pinned: str | None, timeout: float) -> list[ProbeResult]:
    return office.probe_office(*args, timeout=timeout, pinned=pinned)


def _document(args: tuple, wopi_host: str, timeout: float) -> ProbeResult:
    return office_document.probe_document(*args, timeout=timeout / 2, wopi_host=wopi_host)


def _roundtrip(ep: Endpoint, login: tuple[str, str], ca_file: Path | None, timeout: float) -> ProbeResult:
    return roundtrip.probe_roundtrip(ep.tenant, ep.address, ep.server_name, login[0], login[1], ca_file, timeout)


def queue_probes(inventory: Any, run: queue.CommandRunner, timeout: float = 20.0,
                 only: Iterable[str] | None = None, now: Callable[[], float] = time.time) -> list[Probe]:
    """One ``postqueue -j`` probe per mail host, reporting each tenant it serves."""
    wanted = set(only) if only else None
    by_host: dict[str, list[Any]] = {}
    for tenant in inventory.tenants:
        host = _placement(tenant, "mail")
        if host and "mail" in set(getattr(tenant, "services", ("mail",))) and (wanted is None or tenant.slug in wanted):
            by_host.setdefault(host, []).append(tenant)
    probes = []
    for host, tenants in sorted(by_host.items()):
        slugs = [t.slug for t in tenants]
        domains = {d.lower(): t.slug for t in tenants for d in t.domains}
        def body(t: float, h: str = host, s: list[str] = slugs, d: dict[str, str] = domains) -> list[ProbeResult]:
            return queue.probe_queue(h, s, d, run, t, now())
        probes.append(Probe(slugs[0], "mail", "queue", body, timeout, "warning", tuple(slugs)))
    return probes


def backup_probe(inventory: Any, store: Store, only: Iterable[str] | None = None,
                 now: Callable[[], float] = time.time) -> Probe:
    """Backup freshness of every (selected) tenant's components, read from the state store."""
    wanted = set(only) if only else None
    expected = [(t.slug, c) for t in inventory.tenants if wanted is None or t.slug in wanted
                for c in getattr(t, "services", ("mail", "office"))]

    def body(_timeout: float) -> list[ProbeResult]:
        return backup_freshness.backup_results(store.latest_backups(), expected, now())

    slugs = tuple(sorted({t for t, _ in expected}))
    return Probe(slugs[0] if slugs else "", "backup", "backup", body, 5.0, "warning", slugs)
