"""The DNS records a commune must publish: the one record builder of `dns plan|check|publish` and `tenant dns`.

Per domain (:func:`records_for`, pure): MX, SPF, DKIM (every active selector), DMARC, MTA-STS TXT,
TLS-RPT (``_smtp._tls``), the SRV records of RFC 6186 (offered: submission 587, IMAP 143, IMAPS 993;
``_submissions``/``_pop3``/``_pop3s`` published as "not offered", target ``.``) and the addresses (A, or
AAAA for an IPv6 inventory address) of the service names: ``mail./smtp./imap./autoconfig./mta-sts.`` →
the mail host (its nginx serves the MTA-STS policy and the autoconfig document), ``office.`` → the office
host, which runs the proxy (tnoctl.config.maildocs: MAIL_NAMES, OFFICE_NAMES). An office-only commune
gets only its office names: its mail, and so its MX, is not ours. The MTA-STS mode is the platform's
``tno_mail_mta_sts_mode``.

The DKIM public keys are read over SSH (``env.ssh``) from the mail hosts, where the role generated them
(`/etc/opendkim/keys/<domain>/<selector>.txt`), one command per mail host for all its selected
tenants (:func:`tenant_records`): private keys never leave the host. Read-only: no lock, no audit.

The addresses are the hosts' inventory addresses (``ansible_host``, when it is an IP address): after
`restore --to-host` they are what makes the commune's mail follow it to the new host. A site whose
controller reaches the hosts on addresses other than their public ones must not publish them
(`dns check` then reports them as different).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from tnoctl.actions.env import Env
from tnoctl.actions.operation import Outcome
from tnoctl.config import maildocs
from tnoctl.config.maildocs import MAIL_NAMES, MTA_STS_DEFAULT_MODE, OFFICE_NAMES, mta_sts_record
from tnoctl.errors import OperationFailed

DKIM_SELECTOR = "tno2026"  # roles/tno_mail/defaults/main.yml: tno_mail_dkim_selector
_TXT_CHUNK = re.compile(r'"([^"]*)"')


def dkim_txt_value(opendkim_txt: str) -> str:
    """Join the quoted chunks of an opendkim-genkey `.txt` record into one TXT value (pure)."""
    inside = opendkim_txt.split("(", 1)[-1].rsplit(")", 1)[0] if "(" in opendkim_txt else opendkim_txt
    value = "".join(_TXT_CHUNK.findall(inside))
    if "p=" not in value:
        raise OperationFailed("the DKIM key file on the mail host has no public key (p=)")
    return value


SRV_RECORDS = (("_submission", maildocs.SUBMISSION_PORT), ("_imap", 143), ("_imaps", maildocs.IMAPS_PORT))
"""RFC 6186 services the mail host offers (submission with STARTTLS, IMAP with STARTTLS, IMAPS)."""
SRV_NOT_OFFERED = ("_submissions", "_pop3", "_pop3s")
"""RFC 6186/8314 services it does not offer: target "." tells clients not to try them."""


def records_for(domain: str, mail_fqdn: str | None, office_fqdn: str | None, dkim: Mapping[str, str] | None,
                mail_address: str | None = None, office_address: str | None = None,
                mta_sts_mode: str = MTA_STS_DEFAULT_MODE) -> list[dict]:
    """The records of one domain (pure; tested): each a dict ``kind``, ``name``, ``type``, ``value``.

    Mail records (MX, SPF, DKIM, DMARC, MTA-STS, TLS-RPT, SRV, the mail names' addresses) only when the
    tenant has mail (``mail_fqdn``): an office-only commune's mail is elsewhere and its MX is not ours.
    ``dkim``: selector → TXT value of every active DKIM key of the domain. Addresses of the service names
    (A, or AAAA for an IPv6 address) only when ``mail_address``/``office_address`` is given; the office
    names only when the tenant has office (``office_fqdn``). The ``_mta-sts`` id is the digest of the
    policy the mail host serves (tnoctl.config.maildocs, the one source of both); ``mail_fqdn`` is
    :func:`tnoctl.config.maildocs.mail_fqdn` of the domain (the policy's ``mx:``), as tenant_records passes it.
    """
    dmarc = f"v=DMARC1; p=quarantine; rua=mailto:postmaster@{domain}"

    def row(kind: str, name: str, rtype: str, value: str) -> dict:
        return {"kind": kind, "name": name, "type": rtype, "value": value}

    records: list[dict] = []
    if office_fqdn and office_address:
        records += [row("a", f"{name}.{domain}.", address_type(office_address), office_address)
                    for name in OFFICE_NAMES]
    if not mail_fqdn:
        return records
    records[:0] = [
        row("mx", f"{domain}.", "MX", f"10 {mail_fqdn}."),
        row("spf", f"{domain}.", "TXT", "v=spf1 mx -all"),
        *(row("dkim", f"{selector}._domainkey.{domain}.", "TXT", value)
          for selector, value in sorted((dkim or {}).items())),
        row("dmarc", f"_dmarc.{domain}.", "TXT", dmarc),
        row("mta-sts", f"_mta-sts.{domain}.", "TXT", mta_sts_record(domain, mta_sts_mode)),
        row("tls-rpt", f"_smtp._tls.{domain}.", "TXT", f"v=TLSRPTv1; rua=mailto:postmaster@{domain}"),
        *(row("srv", f"{service}._tcp.{domain}.", "SRV", f"0 1 {port} {mail_fqdn}.") for service, port in SRV_RECORDS),
        *(row("srv", f"{service}._tcp.{domain}.", "SRV", "0 0 0 .") for service in SRV_NOT_OFFERED),
    ]
    if mail_address:
        records += [row("a", f"{name}.{domain}.", address_type(mail_address), mail_address) for name in MAIL_NAMES]
    return records


def address_type(address: str) -> str:
    """A for an IPv4 address, AAAA for an IPv6 one (pure)."""
    return "AAAA" if ipaddress.ip_address(address).version == 6 else "A"


KEY_DIR = "/etc/opendkim/keys"
"""Where the mail role keeps each domain's keys: ``<KEY_DIR>/<domain>/<selector>.private`` and ``.txt``."""
SELECTOR_RE = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")


def dkim_path(domain: str, selector: str = DKIM_SELECTOR) -> str:
    """Where the mail role leaves a domain's DKIM public key record."""
    return f"{KEY_DIR}/{domain}/{selector}.txt"


def dkim_argv(domains: Sequence[str]) -> list[str]:
    """One command printing every ``<selector>.txt`` of these domains' key directories (pure).

    ``grep -Z`` ends each file name with a NUL byte (no name can be confused with the content); ``-s``:
    a domain without a key directory yet is just absent from the output.
    """
    return ["grep", "-r", "-s", "-H", "-Z", "--include=*.txt", "-e", "", "--", *(f"{KEY_DIR}/{d}" for d in domains)]


def parse_dkim(output: str, domains: Sequence[str]) -> dict[str, dict[str, str]]:
    """domain → selector → TXT value from the output of :func:`dkim_argv` (pure).

    Every ``<selector>.txt`` directly in a domain's directory is an active selector (a rotation keeps the
    old key next to the new one until the operator removes it, docs/roles.md). Other files are ignored.
    """
    chunks: dict[tuple[str, str], list[str]] = {}
    prefixes = {f"{KEY_DIR}/{d}/": d for d in domains}
    for line in output.splitlines():
        path, sep, content = line.partition("\0")
        if not sep or not path.endswith(".txt"):
            continue
        head, _, leaf = path.rpartition("/")
        domain = prefixes.get(head + "/")
        selector = leaf[: -len(".txt")]
        if domain is not None and SELECTOR_RE.fullmatch(selector):
            chunks.setdefault((domain, selector), []).append(content)
    out: dict[str, dict[str, str]] = {d: {} for d in domains}
    for (domain, selector), lines in sorted(chunks.items()):
        out[domain][selector] = dkim_txt_value("\n".join(lines))
    return out


def read_dkim(env: Env, host: str, domains: Sequence[str]) -> dict[str, dict[str, str]]:
    """Every active DKIM key of ``domains`` on mail host ``host``, in one SSH command (``env.ssh``)."""
    if not domains:
        return {}
    result = env.ssh.run(host, dkim_argv(domains))
    if result.rc not in (0, 1, 2) or (result.rc == 2 and not result.stdout and result.stderr.strip()):
        first = (result.stderr.strip().splitlines() or [f"exit status {result.rc}"])[0]
        raise OperationFailed(f"{host}: cannot read the DKIM keys: {first[:200]}")
    return parse_dkim(result.stdout, domains)


@dataclass(frozen=True)
class TenantRecords:
    """The records one tenant must publish, or why they cannot be computed (``error``)."""

    slug: str
    domains: tuple[str, ...]
    records: list[dict]
    error: str = ""
    zone: str = "platform"
    """The tenant's ``dns.zone``: ``platform`` (tno_dns_server serves it) or ``external`` (the commune publishes)."""


def tenant_records(env: Env, slugs: Sequence[str]) -> list[TenantRecords]:
    """The records of each tenant (in ``slugs`` order); DKIM keys read with one SSH command per mail host.

    A mail host that cannot be read, or a domain without a DKIM key yet (not deployed), makes an
    ``error`` for its tenants only; the others are computed.
    """
    tenants = [env.inventory.row(slug) for slug in slugs]  # index rows: no tenant file parsed
    by_host: dict[str, list[str]] = {}
    for tenant in tenants:
        if "mail" in tenant.services and tenant.placement.mail:
            by_host.setdefault(tenant.placement.mail, []).extend(tenant.domains)
    keys: dict[str, dict[str, str]] = {}
    host_errors: dict[str, str] = {}
    for host, domains in sorted(by_host.items()):
        try:
            keys.update(read_dkim(env, host, sorted(set(domains))))
        except OperationFailed as exc:
            host_errors[host] = exc.message
    out = []
    for tenant in tenants:
        has_mail = "mail" in tenant.services and bool(tenant.placement.mail)
        has_office = "office" in tenant.services and bool(tenant.placement.office)
        mail_host = tenant.placement.mail if has_mail else None
        if mail_host in host_errors:
            out.append(TenantRecords(tenant.slug, tuple(tenant.domains), [], host_errors[mail_host], tenant.dns_zone))
            continue
        missing = [d for d in tenant.domains if has_mail and not keys.get(d)]
        if missing:
            error = f"{mail_host}: no DKIM key for {', '.join(missing)} yet; run 'tnoctl deploy' first"
            out.append(TenantRecords(tenant.slug, tuple(tenant.domains), [], error, tenant.dns_zone))
            continue
        mail_ip = host_address(env, mail_host) if has_mail else None
        office_ip = host_address(env, tenant.placement.office) if has_office else None
        rows: list[dict] = []
        for domain in tenant.domains:
            rows += records_for(domain, maildocs.mail_fqdn(domain) if has_mail else None,
                                f"office.{domain}" if has_office else None, keys.get(domain), mail_ip, office_ip,
                                env.inventory.platform.tno_mail_mta_sts_mode)
        out.append(TenantRecords(tenant.slug, tuple(tenant.domains), rows, zone=tenant.dns_zone))
    return out


@dataclass(frozen=True)
class TenantDnsRequest:
    """Which tenant's records to list."""

    slug: str


def run(env: Env, request: TenantDnsRequest) -> Outcome:
    """The records of every domain of the tenant; ``data`` (``zone``, ``records``) for --json, zone lines for humans."""
    (found,) = tenant_records(env, [request.slug])
    if found.error:
        raise OperationFailed(found.error)
    return Outcome(data={"zone": found.zone, "records": found.records}, lines=[zone_line(row) for row in found.records])


def zone_line(row: dict) -> str:
    """One record as a zone-file line (names padded for reading)."""
    return f"{row['name']:<40} IN {row['type']:<5} {_zone_value(row)}"


def host_address(env: Env, host: str | None) -> str | None:
    """The inventory address of ``host`` when it is an IP address (else no A/AAAA record)."""
    known = env.inventory.hosts.get(host or "")
    if known is None:
        return None
    try:
        return str(ipaddress.ip_address(known.address))
    except ValueError:
        return None


def zone_value(row: dict) -> str:
    """A record's value in zone-file/presentation syntax (TXT split into quoted 250-byte chunks)."""
    return _zone_value(row)


def _zone_value(row: dict) -> str:
    if row["type"] != "TXT":
        return row["value"]
    value = row["value"]
    return " ".join(f'"{value[i:i + 250]}"' for i in range(0, len(value), 250))
