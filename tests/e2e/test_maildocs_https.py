"""The mail documents over HTTPS from the deployed lab (#15): MTA-STS policy and autoconfig, per domain.

Reuses the session fleet (no deploy of its own): for two communes on two mail hosts (the one with the most
domains, and a mail-only one), every domain's ``https://mta-sts.<domain>/.well-known/mta-sts.txt`` and
``https://autoconfig.<domain>/mail/config-v1.1.xml`` (and its ``/.well-known/autoconfig/`` twin) are fetched
from the mail host with certificate verification against the lab trust bundle, and compared with what `tnoctl dns
plan` publishes: the policy's ``mx:`` is the planned MX, its digest the planned ``_mta-sts`` id. An
unknown name is refused at the handshake; an unknown Host header behind a known name gets 421.
"""

from __future__ import annotations

import json
import ssl
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from pinned import PinnedHTTPS

from tnoctl.config import maildocs

pytestmark = [pytest.mark.root, pytest.mark.lab]

SOCKET_TIMEOUT = 30.0
"""Guards against a hung server only; no test asserts on durations."""


def _get(fleet: Any, host: str, name: str, path: str, host_header: str | None = None) -> tuple[int, str, str]:
    """GET https://<name><path> from lab host ``host``, verified against the lab trust bundle: (status, type, body)."""
    context = ssl.create_default_context(cafile=str(fleet.ca_cert))
    conn = PinnedHTTPS(fleet.address(host), name, context, SOCKET_TIMEOUT)
    try:
        conn.request("GET", path, headers={"Host": host_header or name})
        response = conn.getresponse()
        return response.status, response.getheader("Content-Type", ""), response.read().decode()
    finally:
        conn.close()


def _two_mail_tenants(fleet: Any) -> list[Any]:
    """The mail commune with the most domains, and a mail-only commune on another mail host."""
    mail = [fleet.inventory.tenant(slug) for slug in fleet.tenants_with("mail")]
    first = max(mail, key=lambda t: len(t.domains))
    second = next(t for t in mail if "office" not in t.services and t.placement.mail != first.placement.mail)
    return [first, second]


def _planned(fleet: Any, slug: str) -> list[dict]:
    rc, out, err = fleet.tnoctl("dns", "plan", "--tenant", slug, "--json")
    assert rc == 0, err
    (tenant,) = json.loads(out)["tenants"]
    return tenant["records"]


def test_mta_sts_policy_and_autoconfig_are_served_per_domain_as_dns_plan_announces(fleet: Any) -> None:
    mode = fleet.inventory.platform.tno_mail_mta_sts_mode
    for tenant in _two_mail_tenants(fleet):
        host = tenant.placement.mail
        records = _planned(fleet, tenant.slug)
        for domain in tenant.domains:
            status, ctype, policy = _get(fleet, host, f"mta-sts.{domain}", "/.well-known/mta-sts.txt")
            assert (status, ctype.split(";")[0]) == (200, "text/plain"), f"mta-sts.{domain}: {status} {ctype}"
            assert policy == maildocs.mta_sts_policy(domain, mode)
            mx = [line.removeprefix("mx: ") for line in policy.splitlines() if line.startswith("mx: ")]
            planned_mx = [r["value"].split()[1].rstrip(".") for r in records
                          if r["type"] == "MX" and r["name"] == f"{domain}."]
            assert mx == planned_mx == [f"mail.{domain}"]
            planned_id = [r["value"] for r in records if r["name"] == f"_mta-sts.{domain}."]
            assert planned_id == [f"v=STSv1; id={maildocs.mta_sts_id(policy)}"]
            for name in ("mta-sts", "autoconfig"):  # the names dns plan points at this very host
                assert [r["value"] for r in records if r["name"] == f"{name}.{domain}."] == [fleet.address(host)]

            for path in ("/mail/config-v1.1.xml", "/.well-known/autoconfig/mail/config-v1.1.xml"):
                status, ctype, xml = _get(fleet, host, f"autoconfig.{domain}", path)
                assert (status, ctype) == (200, "application/xml"), f"autoconfig.{domain}{path}: {status} {ctype}"
                assert xml == maildocs.autoconfig_xml(domain, tenant.name)
                provider = ET.fromstring(xml).find("emailProvider")
                imap, smtp = provider.find("incomingServer"), provider.find("outgoingServer")
                assert (imap.findtext("hostname"), imap.findtext("port"), imap.findtext("socketType")) == (
                    f"imap.{domain}", "993", "SSL")
                assert (smtp.findtext("hostname"), smtp.findtext("port"), smtp.findtext("socketType")) == (
                    f"smtp.{domain}", "587", "STARTTLS")
                assert imap.findtext("username") == smtp.findtext("username") == "%EMAILADDRESS%"

            status, _ctype, _body = _get(fleet, host, f"mta-sts.{domain}", "/mail/config-v1.1.xml")
            assert status == 404  # each name serves its own document only


def test_unknown_names_get_no_policy(fleet: Any) -> None:
    tenant = _two_mail_tenants(fleet)[0]
    host, domain = tenant.placement.mail, tenant.domains[0]
    status, _ctype, body = _get(fleet, host, f"mta-sts.{domain}", "/.well-known/mta-sts.txt",
                                host_header="mta-sts.unknown.example")
    assert status == 421 and "STSv1" not in body
    context = ssl.create_default_context(cafile=str(fleet.ca_cert))
    context.check_hostname = False
    conn = PinnedHTTPS(fleet.address(host), "mta-sts.unknown.example", context, SOCKET_TIMEOUT)
    with pytest.raises((ssl.SSLError, ConnectionError)):
        conn.request("GET", "/.well-known/mta-sts.txt", headers={"Host": "mta-sts.unknown.example"})
        conn.getresponse()
    conn.close()
