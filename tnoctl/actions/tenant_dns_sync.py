"""`tenant dns SLUG --check | --publish`: compare a commune's mail records with its DNS, publish the difference.

Checked records are the ones mail delivery and reputation depend on: MX, SPF, DKIM, DMARC, the MTA-STS
TXT and the A records of the mail service names (``KINDS``). Each is *published* (the expected value is
served), *missing* (no record of that kind at that name) or *different* (a record of that kind is there
with another value, e.g. an old DKIM key, a stricter SPF, or the address of the host the commune's mail
left after `restore --to-host`). ``--check`` exits 1 when any is missing or different, naming tenant and
record. ``--publish`` sends one RFC 2136 update per zone, signed with the platform's TSIG key, that
replaces the different values of that kind (other TXT records at the same name are left alone) and adds
the missing ones; it runs in an operation context (audit record, tenant lock). The zone of a domain is
the domain itself (the platform manages each commune's zone at its apex).

The pure part (`classify`, `plan_update`) is tested against a fake DNS client; the TSIG secret is read
from the vault only for `--publish` and is never printed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tnoctl.actions.env import Env
from tnoctl.actions.operation import Outcome, operation, outcome_of
from tnoctl.actions.tenant_dns import TenantDnsRequest, zone_value
from tnoctl.actions.tenant_dns import run as records_run
from tnoctl.errors import ExitCode, InvalidInput
from tnoctl.run.dnsclient import DnsClient
from tnoctl.state.audit import Operation

PREFIXES = {"spf": "v=spf1", "dkim": "v=DKIM1", "dmarc": "v=DMARC1", "mta-sts": "v=STSv1"}
KINDS = ("mx", "spf", "dkim", "dmarc", "mta-sts", "a")
WHOLE_RRSET = ("MX", "A")
"""Types whose served values are all of our kind: a difference replaces the whole RRset."""


@dataclass(frozen=True)
class Expected:
    """One record the commune must publish."""

    domain: str
    kind: str  # one of KINDS
    name: str  # absolute, trailing dot
    rtype: str  # MX | TXT | A
    value: str  # MX: "10 mail.x."; TXT: the joined string


@dataclass(frozen=True)
class Status:
    """Check result of one expected record."""

    record: Expected
    state: str  # published | missing | different
    found: tuple[str, ...] = ()  # the values of that kind the server returned (public data)


def kind_of(name: str, rtype: str, value: str) -> str | None:
    """Which checked kind a tenant_dns row is (None: not checked here, e.g. SRV/CNAME) (pure)."""
    if rtype in WHOLE_RRSET:
        return rtype.lower()
    if rtype != "TXT":
        return None
    return next((kind for kind, prefix in PREFIXES.items() if value.startswith(prefix)), None)


def expected_records(rows: list[dict], domains: tuple[str, ...]) -> list[Expected]:
    """The checked subset of `tenant dns` rows, each tied to the tenant domain whose zone holds it (pure)."""
    result = []
    for row in rows:
        kind = kind_of(row["name"], row["type"], row["value"])
        if kind is None:
            continue
        owner = row["name"].rstrip(".")
        domain = max((d for d in domains if owner == d or owner.endswith("." + d)), key=len)
        result.append(Expected(domain, kind, row["name"], row["type"], row["value"]))
    return result


def _norm(rtype: str, value: str) -> str:
    """Comparable form: MX lower-cased with one space; TXT as served (exact)."""
    return " ".join(value.lower().split()) if rtype == "MX" else value


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


@dataclass(frozen=True)
class DnsSyncRequest:
    """Which tenant, and whether to publish the difference (else only check)."""

    slug: str
    publish: bool = False


ClientFactory = Callable[[Env, bool], DnsClient]


def platform_client(env: Env, with_key: bool) -> DnsClient:
    """The DNS client of the platform's tno_dns_server (with the TSIG key from the vault for updates)."""
    from tnoctl.config.vault import decrypt_value
    from tnoctl.run.dnsclient import DnspythonClient, TsigKey

    platform = env.inventory.platform
    if platform.tno_dns_server is None:
        raise InvalidInput("group_vars/all/platform.yml: tno_dns_server: not set (needed by tenant dns "
                           "--check/--publish)")
    key = None
    if with_key:
        if platform.tno_dns_tsig_key_name is None or platform.tno_dns_tsig_secret_vault is None:
            raise InvalidInput("group_vars/all/platform.yml: tno_dns_tsig_key_name: not set (needed by "
                               "tenant dns --publish)")
        if env.vault_password_file is None:
            raise InvalidInput("tenant dns --publish needs the vault password (--vault-password-file or "
                               "$TNO_VAULT_PASSWORD_FILE)")
        secret = decrypt_value(env.inventory_path, env.vault_password_file, platform.tno_dns_tsig_secret_vault)
        key = TsigKey(platform.tno_dns_tsig_key_name, platform.tno_dns_tsig_algorithm, secret)
    return DnspythonClient(platform.tno_dns_server, key)


def _rows(statuses: list[Status]) -> list[list[object]]:
    return [[s.record.kind, s.record.name, s.record.rtype, s.state] for s in statuses]


def _data(slug: str, statuses: list[Status]) -> dict:
    return {"tenant": slug, "records": [
        {"kind": s.record.kind, "name": s.record.name, "type": s.record.rtype, "state": s.state,
         "expected": s.record.value, "found": list(s.found)} for s in statuses]}


def errors_of(slug: str, statuses: list[Status]) -> list[str]:
    """One line per record still missing or different, naming tenant, kind, name and type."""
    return [f"{slug}: {s.record.kind} {s.record.name} {s.record.rtype} is {s.state}"
            for s in statuses if s.state != "published"]


def publish(env: Env, slug: str, expected: list[Expected], client: DnsClient) -> list[Status]:
    """Send what is not published (one update per zone), then re-check; inside the caller's operation."""
    plan = plan_update(check(expected, client))
    for zone, (deletes, adds) in sorted(plan.items()):
        client.update(zone, deletes, adds)
        env.output.info(f"{slug}: {zone}: {len(adds)} record(s) published, {len(deletes)} removed")
    return check(expected, client)


def publish_tenant(env: Env, op: Operation, slug: str, client_factory: ClientFactory | None = None) -> list[Status]:
    """Publish then re-check tenant ``slug``'s records inside the caller's operation; the statuses.

    The one publishing path: `tenant dns --publish`, `restore --to-host` and `tenant onboard` call it.
    ``op.details["dns"]`` records each record's state (public data, never the TSIG secret).
    """
    expected = expected_of(env, slug)
    statuses = publish(env, slug, expected, (client_factory or platform_client)(env, True))
    op.details["dns"] = {f"{s.record.name} {s.record.rtype}": s.state for s in statuses}
    return statuses


def expected_of(env: Env, slug: str) -> list[Expected]:
    """The checked records of tenant ``slug`` (DKIM read from its mail host over SSH)."""
    rows = records_run(env, TenantDnsRequest(slug)).data["records"]
    return expected_records(rows, tuple(env.inventory.tenant(slug).domains))


def run(env: Env, request: DnsSyncRequest, client_factory: ClientFactory | None = None) -> Outcome:
    """Check (read-only) or publish then re-check; exit 1 when a record is still missing or different."""
    client_factory = client_factory or platform_client
    columns = ["kind", "name", "type", "state"]
    if not request.publish:
        statuses = check(expected_of(env, request.slug), client_factory(env, False))
        errors = errors_of(request.slug, statuses)
        code = ExitCode.FAILED if errors else ExitCode.OK
        return Outcome(exit_code=code, result="ok" if not errors else "failed", rows=_rows(statuses),
                       columns=columns, data=_data(request.slug, statuses), errors=errors)
    params = {"tenant": request.slug, "publish": True}
    with operation(env, "tenant dns publish", params, tenants=[request.slug]) as op:
        statuses = publish_tenant(env, op, request.slug, client_factory)
        errors = errors_of(request.slug, statuses)
        if errors:
            op.fail(ExitCode.FAILED, f"{len(errors)} record(s) still not published")
        return outcome_of(op, rows=_rows(statuses), columns=columns, data=_data(request.slug, statuses),
                          errors=errors)
