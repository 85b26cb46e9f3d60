"""Compare a commune's DNS records with what its zone serves, publish the difference, record the result.

Every record of the builder (tnoctl.actions.tenant_dns) is checked: MX, SPF, DKIM, DMARC, MTA-STS,
TLS-RPT, SRV and the addresses of the service names (``KINDS``). Each is *published* (the expected value
is served), *missing* (no record of that kind at that name) or *different* (a record of that kind is
there with another value, e.g. an old DKIM key, a stricter SPF, or the address of the host the commune's
mail left after `restore --to-host`). Publishing sends one RFC 2136 update per zone, signed with the
platform's TSIG key, that replaces the different values of that kind (other TXT records at the same name
are left alone) and adds the missing ones. The zone of a domain is the domain itself (the platform
manages each commune's zone at its apex).

Every check, including the one after a publish, is recorded in the state store, one
:class:`~tnoctl.state.store.DnsRecordCheck` per record, all with the check's time (the exporter's
``tnoctl_dns_record_ok`` reads the latest check of each tenant). The verbs are in tnoctl.actions.dns.

The pure part (`classify`, `plan_update`) is tested against a fake DNS client; the TSIG secret is read
from the vault only to publish and is never printed.

One publishing path (DESIGN.md): :func:`publish_many` publishes several tenants with one DKIM read per
mail host; `deploy` (:func:`publish_deployed`: mail between communes is routed by MX, so a fleet brought
up by `deploy` alone must have its records), `tenant onboard` and `restore --to-host`
(:func:`publish_tenant`) call it and write their own audit shape (``details.dns``: per tenant for
deploy, flat for the one-tenant callers). `dns publish` calls :func:`publish` per tenant after its
preview. A tenant whose ``dns.zone`` is ``external`` (its zone is hosted at a registrar) is set aside by
every one of them: nothing is sent, :func:`external_line` says so; `dns check` asks its zone's own name
servers (:func:`external_client`) and records the result like any other.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tnoctl.actions.env import Env
from tnoctl.actions.tenant_dns import tenant_records, zone_value
from tnoctl.errors import InvalidInput, OperationFailed
from tnoctl.run.dnsclient import DnsClient
from tnoctl.state.audit import Operation
from tnoctl.state.store import DnsRecordCheck

PREFIXES = {"spf": "v=spf1", "dkim": "v=DKIM1", "dmarc": "v=DMARC1", "mta-sts": "v=STSv1", "tls-rpt": "v=TLSRPTv1"}
"""TXT kinds: a served TXT value is of the kind when it starts with the prefix (RFC 7208, 6376, 7489, 8461, 8460)."""
KINDS = ("mx", "spf", "dkim", "dmarc", "mta-sts", "tls-rpt", "srv", "a")
WHOLE_RRSET = ("MX", "A", "AAAA", "SRV", "CNAME")
"""Types whose served values are all of our kind: a difference replaces the whole RRset."""


@dataclass(frozen=True)
class Expected:
    """One record the commune must publish."""

    domain: str
    kind: str  # one of KINDS
    name: str  # absolute, trailing dot
    rtype: str  # MX | TXT | SRV | A | AAAA
    value: str  # MX: "10 mail.x."; TXT: the joined string

    @property
    def label(self) -> str:
        """How errors, the state store and the ``record`` label of the metrics name it: ``kind name type``."""
        return f"{self.kind} {self.name} {self.rtype}"


@dataclass(frozen=True)
class Status:
    """Check result of one expected record."""

    record: Expected
    state: str  # published | missing | different
    found: tuple[str, ...] = ()  # the values of that kind the server returned (public data)


def expected_records(rows: list[dict], domains: tuple[str, ...]) -> list[Expected]:
    """The builder's rows as Expected records, each tied to the tenant domain whose zone holds it (pure)."""
    result = []
    for row in rows:
        owner = row["name"].rstrip(".")
        domain = max((d for d in domains if owner == d or owner.endswith("." + d)), key=len)
        result.append(Expected(domain, row["kind"], row["name"], row["type"], row["value"]))
    return result


def _norm(rtype: str, value: str) -> str:
    """Comparable form: MX/SRV/CNAME lower-cased with one space; addresses canonical; TXT as served (exact)."""
    if rtype in ("A", "AAAA"):
        try:
            return str(ipaddress.ip_address(value.strip()))
        except ValueError:
            return value
    return value if rtype == "TXT" else " ".join(value.lower().split())


def same_kind(expected: Expected, value: str) -> bool:
    """True when a served value is of the expected record's kind (any MX or A; TXT with the kind's prefix)."""
    return expected.rtype in WHOLE_RRSET or value.startswith(PREFIXES[expected.kind])


def classify(expected: Expected, served: list[str]) -> Status:
    """published / missing / different for one expected record given the served values (pure)."""
    ours = [v for v in served if same_kind(expected, v)]
    if _norm(expected.rtype, expected.value) in {_norm(expected.rtype, v) for v in ours}:
        return Status(expected, "published", tuple(ours))
    return Status(expected, "different" if ours else "missing", tuple(ours))


def check(records: list[Expected], client: DnsClient) -> list[Status]:
    """Query each expected record (one query per name and type) and classify it."""
    cache: dict[tuple[str, str], list[str]] = {}
    statuses = []
    for rec in records:
        key = (rec.name, rec.rtype)
        if key not in cache:
            cache[key] = client.query(rec.name, rec.rtype)
        statuses.append(classify(rec, cache[key]))
    return statuses


def _txt(value: str) -> str:
    return zone_value({"type": "TXT", "value": value})


def plan_update(statuses: list[Status]) -> dict[str, tuple[list, list]]:
    """zone → (deletes, adds) for the records not published; different values of the same kind are removed.

    An MX or A that differs is replaced as a whole RRset (the commune's mail must go to its mail host); a TXT
    that differs loses only the values of its kind (an SPF replaces an SPF, never a site-verification TXT).
    """
    plan: dict[str, tuple[list, list]] = {}
    for status in statuses:
        if status.state == "published":
            continue
        rec = status.record
        deletes, adds = plan.setdefault(rec.domain, ([], []))
        if status.state == "different":
            if rec.rtype in WHOLE_RRSET:
                deletes.append((rec.name, rec.rtype, None))
            else:
                deletes += [(rec.name, "TXT", _txt(v)) for v in status.found]
        adds.append((rec.name, rec.rtype, _txt(rec.value) if rec.rtype == "TXT" else rec.value))
    return plan


ClientFactory = Callable[[Env, bool], DnsClient]


def platform_client(env: Env, with_key: bool) -> DnsClient:
    """The DNS client of the platform's tno_dns_server (with the TSIG key from the vault for updates)."""
    from tnoctl.config.vault import decrypt_value
    from tnoctl.run.dnsclient import DnspythonClient, TsigKey

    platform = env.inventory.platform
    if platform.tno_dns_server is None:
        raise InvalidInput("group_vars/all/platform.yml: tno_dns_server: not set (needed by dns check/publish)")
    key = None
    if with_key:
        if platform.tno_dns_tsig_key_name is None or platform.tno_dns_tsig_secret_vault is None:
            raise InvalidInput("group_vars/all/platform.yml: tno_dns_tsig_key_name: not set (needed by "
                               "dns publish)")
        if env.vault_password_file is None:
            raise InvalidInput("dns publish needs the vault password (--vault-password-file or "
                               "$TNO_VAULT_PASSWORD_FILE)")
        secret = decrypt_value(env.inventory_path, env.vault_password_file, platform.tno_dns_tsig_secret_vault)
        key = TsigKey(platform.tno_dns_tsig_key_name, platform.tno_dns_tsig_algorithm, secret)
    return DnspythonClient(platform.tno_dns_server, key)


def errors_of(slug: str, statuses: list[Status]) -> list[str]:
    """One line per record still missing or different, naming tenant, kind, name and type."""
    return [f"{slug}: {s.record.label} is {s.state}" for s in statuses if s.state != "published"]


def record(env: Env, slug: str, statuses: list[Status], checked_at: float) -> None:
    """Write one check of one tenant to the state store: every record with the same ``checked_at``."""
    env.store.record_dns([DnsRecordCheck(slug, s.record.label, s.state == "published", s.state, checked_at)
                          for s in statuses])


def check_tenant(env: Env, slug: str, expected: list[Expected], client: DnsClient) -> list[Status]:
    """Check one tenant's records and record the result (read-only on the DNS side)."""
    statuses = check(expected, client)
    record(env, slug, statuses, env.clock())
    return statuses


def publish(env: Env, slug: str, expected: list[Expected], client: DnsClient) -> list[Status]:
    """Send what is not published (one update per zone), then re-check and record; in the caller's operation."""
    plan = plan_update(check(expected, client))
    for zone, (deletes, adds) in sorted(plan.items()):
        client.update(zone, deletes, adds)
        env.output.info(f"{slug}: {zone}: {len(adds)} record(s) published, {len(deletes)} removed")
    return check_tenant(env, slug, expected, client)


def external_client(env: Env, zones: tuple[str, ...]) -> DnsClient:
    """The DNS client of zones the platform does not serve: each zone's own name servers, read-only."""
    from tnoctl.run.dnsclient import ZoneServersClient

    return ZoneServersClient(zones)


ExternalFactory = Callable[[Env, tuple[str, ...]], DnsClient]


def external_line(slug: str) -> str:
    """The one line every publishing path says of a tenant whose zone is external (no update is sent)."""
    return (f"{slug}: dns.zone is external: its records are the commune's to publish at its DNS host "
            f"(see: tnoctl dns plan --tenant {slug})")


def manages_zones(env: Env) -> bool:
    """True when the platform names a DNS server and the TSIG key that may update it."""
    platform = env.inventory.platform
    return platform.tno_dns_server is not None and platform.tno_dns_tsig_secret_vault is not None


def platform_publishes(env: Env, slug: str) -> bool:
    """True when tenant ``slug``'s records go to the platform's DNS server (one is named, its zone is not external)."""
    return env.inventory.platform.tno_dns_server is not None and env.inventory.row(slug).dns_zone != "external"


@dataclass
class Published:
    """What :func:`publish_many` did: each published tenant's statuses, each failed one's error, the external ones."""

    statuses: dict[str, list[Status]]
    errors: dict[str, InvalidInput | OperationFailed]
    external: list[str]

    @property
    def problems(self) -> list[str]:
        """One line per failed tenant and per record still missing or different (tenant named), in tenant order."""
        lines: list[str] = []
        for slug in dict.fromkeys([*self.statuses, *self.errors]):  # insertion order: the records' order
            lines += [f"{slug}: {self.errors[slug]}"] if slug in self.errors else errors_of(slug, self.statuses[slug])
        return lines


def publish_many(env: Env, slugs: list[str], client_factory: ClientFactory | None = None) -> Published:
    """The one publishing path of deploy, `tenant onboard`, `restore --to-host` and `tenant dns --publish`.

    Tenants whose ``dns.zone`` is external are set aside untouched. For the others: the platform client
    (TSIG key from the vault; its InvalidInput/OperationFailed propagate: nothing could be sent), their
    records with one SSH read per mail host (:func:`tenant_records`), then one :func:`publish` per
    tenant; a tenant whose records are unknown or whose zone the server refuses is an error for that
    tenant only. Runs inside the caller's operation; the caller writes its audit shape.
    """
    external = [slug for slug in slugs if env.inventory.row(slug).dns_zone == "external"]
    managed = [slug for slug in slugs if slug not in external]
    result = Published({}, {}, external)
    if not managed:
        return result
    client = (client_factory or platform_client)(env, True)
    for found in tenant_records(env, managed):
        if found.error:
            result.errors[found.slug] = OperationFailed(found.error)
            continue
        try:
            result.statuses[found.slug] = publish(env, found.slug, expected_records(found.records, found.domains),
                                                  client)
        except (InvalidInput, OperationFailed) as exc:  # e.g. the server does not serve the commune's zone
            result.errors[found.slug] = exc
    return result


def states(statuses: list[Status]) -> dict[str, str]:
    """``"name type" → state`` of one tenant's records: what the audit records keep (public data only)."""
    return {f"{s.record.name} {s.record.rtype}": s.state for s in statuses}


def publish_tenant(env: Env, op: Operation, slug: str, client_factory: ClientFactory | None = None) -> list[Status]:
    """Publish then re-check tenant ``slug``'s records inside the caller's operation; the statuses.

    For `tenant dns --publish`, `restore --to-host` and `tenant onboard` (which first ask
    :func:`platform_publishes`): raises the tenant's InvalidInput/OperationFailed. Audit shape:
    ``op.details["dns"] = {"name type": state}`` (public data, never the TSIG secret).
    """
    result = publish_many(env, [slug], client_factory)
    if slug in result.errors:
        raise result.errors[slug]
    statuses = result.statuses.get(slug, [])
    op.details["dns"] = states(statuses)
    return statuses


def publish_deployed(env: Env, op: Operation, slugs: Sequence[str],
                     client_factory: ClientFactory | None = None) -> list[str]:
    """`deploy`'s DNS step: publish and check the records of ``slugs``; the problems left ([] if none).

    Only when the platform manages zones (:func:`manages_zones`; otherwise the records are the operator's,
    nothing is sent or said). External tenants get :func:`external_line` (stdout) and are never sent.
    Audit shape: ``op.details["dns"] = {slug: {"name type": state}}``, plus ``op.details["dns_external"]``
    (slugs) when some were external. A client that cannot be built (no TSIG secret in the vault) is one problem.
    """
    if not slugs or not manages_zones(env):
        return []
    try:
        result = publish_many(env, list(slugs), client_factory)
    except (InvalidInput, OperationFailed) as exc:
        return [f"DNS records not published: {exc}"]
    for slug in result.external:
        env.output.info(external_line(slug))
    op.details["dns"] = {slug: states(statuses) for slug, statuses in result.statuses.items()}
    if result.external:
        op.details["dns_external"] = list(result.external)
    return result.problems


def expected_of(env: Env, slug: str) -> list[Expected]:
    """The records of tenant ``slug`` (DKIM read from its mail host over SSH); OperationFailed if unreadable."""
    (found,) = tenant_records(env, [slug])
    if found.error:
        raise OperationFailed(found.error)
    return expected_records(found.records, found.domains)
