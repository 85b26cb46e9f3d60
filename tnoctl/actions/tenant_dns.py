"""`tenant dns SLUG`: the DNS records a commune must publish (MX, SPF, DKIM, DMARC, MTA-STS, autoconfig,
and the addresses of its mail service names).

``--check`` and ``--publish`` (tnoctl.actions.tenant_dns_sync) compare these records with what the
configured DNS server serves and send the difference by RFC 2136.

The DKIM public key is read over SSH (``env.ssh``) from the tenant's mail host, where the role
generated it (`/etc/opendkim/keys/<domain>/<selector>.txt`): private keys never leave the host.
Read-only: no lock, no audit record.

The ``mail.``/``smtp.``/``imap.<domain>`` A records carry the mail host's inventory address
(``ansible_host``, when it is an IP address): after `restore --to-host` they are what makes the
commune's mail follow it to the new host. A site whose controller reaches the hosts on addresses
other than their public ones must not publish them (``--check`` then reports them as different).
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from dataclasses import dataclass

from tnoctl.actions.env import Env
from tnoctl.actions.operation import Outcome
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


MTA_STS_MAX_AGE = 604800


def mta_sts_policy(mail_fqdn: str) -> str:
    """The MTA-STS policy (RFC 8461) served at https://mta-sts.<domain>/.well-known/mta-sts.txt (pure)."""
    return f"version: STSv1\r\nmode: enforce\r\nmx: {mail_fqdn}\r\nmax_age: {MTA_STS_MAX_AGE}\r\n"


def mta_sts_id(policy: str) -> str:
    """The policy id published in ``_mta-sts`` TXT: changes exactly when the policy text changes (pure)."""
    return hashlib.sha256(policy.encode()).hexdigest()[:20]


MAIL_NAMES = ("mail", "smtp", "imap")
"""Service names of a domain that point at its mail host (the names the host's certificate covers)."""


def records_for(domain: str, mail_fqdn: str, office_fqdn: str | None, dkim_value: str | None,
                mail_address: str | None = None) -> list[dict]:
    """The records of one mail domain (pure; tested); A records of MAIL_NAMES when ``mail_address`` is given."""
    dmarc = f"v=DMARC1; p=quarantine; rua=mailto:postmaster@{domain}"
    records = [
        {"name": f"{domain}.", "type": "MX", "value": f"10 {mail_fqdn}."},
        {"name": f"{domain}.", "type": "TXT", "value": "v=spf1 mx -all"},
        {"name": f"_dmarc.{domain}.", "type": "TXT", "value": dmarc},
        {"name": f"_mta-sts.{domain}.", "type": "TXT", "value": f"v=STSv1; id={mta_sts_id(mta_sts_policy(mail_fqdn))}"},
        {"name": f"_submission._tcp.{domain}.", "type": "SRV", "value": f"0 1 587 {mail_fqdn}."},
        {"name": f"_imaps._tcp.{domain}.", "type": "SRV", "value": f"0 1 993 {mail_fqdn}."},
        {"name": f"autoconfig.{domain}.", "type": "CNAME", "value": f"{mail_fqdn}."},
    ]
    if dkim_value:
        records.insert(2, {"name": f"{DKIM_SELECTOR}._domainkey.{domain}.", "type": "TXT", "value": dkim_value})
    if mail_address:
        records += [{"name": f"{name}.{domain}.", "type": "A", "value": mail_address} for name in MAIL_NAMES]
    if office_fqdn:
        records.append({"name": f"{office_fqdn}.", "type": "CNAME", "value": "<the office proxy's public name>."})
    return records


def dkim_path(domain: str) -> str:
    """Where the mail role leaves a domain's DKIM public key record."""
    return f"/etc/opendkim/keys/{domain}/{DKIM_SELECTOR}.txt"


@dataclass(frozen=True)
class TenantDnsRequest:
    """Which tenant's records to list."""

    slug: str


def run(env: Env, request: TenantDnsRequest) -> Outcome:
    """The records of every domain of the tenant; ``data["records"]`` for --json, zone lines for humans."""
    tenant = env.inventory.tenant(request.slug)
    mail_host = tenant.placement.mail
    address = mail_address(env, mail_host) if "mail" in tenant.services else None
    rows: list[dict] = []
    for domain in tenant.domains:
        dkim = None
        if mail_host and "mail" in tenant.services:
            result = env.ssh.run(mail_host, ["cat", dkim_path(domain)])
            if not result.ok:
                raise OperationFailed(f"{mail_host}: no DKIM key for {domain} yet; run 'tnoctl deploy' first")
            dkim = dkim_txt_value(result.stdout)
        office = f"office.{domain}" if "office" in tenant.services else None
        rows.extend(records_for(domain, f"mail.{domain}", office, dkim, address))
    lines = [f"{row['name']:<40} IN {row['type']:<5} {_zone_value(row)}" for row in rows]
    return Outcome(data={"records": rows}, lines=lines)


def mail_address(env: Env, host: str | None) -> str | None:
    """The inventory address of the tenant's mail host when it is an IP address (else no A record)."""
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
