"""End-to-end office acceptance of the deployed suite (issue 4, acceptance 4), against the lab.

Why: tenants reach the office service only through https://office.<domain>/ on the proxy, so the checks
go through nginx with TLS verified against the lab trust bundle (lab CA + pebble root), and read the
generated coolwsd.xml to prove
that every tenant got exactly its own WOPI alias group. The admin password in that file is never printed.
"""

from __future__ import annotations

import json
import re
import ssl
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from pinned import PinnedHTTPS

pytestmark = [pytest.mark.root, pytest.mark.lab]

SOCKET_TIMEOUT = 60.0
"""Guards against a hung server only; no test asserts on durations."""


def _office_tenants(fleet: Any) -> list[Any]:
    """Tenants of the inventory that have the office service."""
    return [t for t in fleet.inventory.tenants if "office" in t.services]


def _get(fleet: Any, slug: str, path: str, domain: str | None = None) -> tuple[int, dict[str, str], bytes]:
    name = f"office.{domain or fleet.domain(slug)}"
    context = ssl.create_default_context(cafile=str(fleet.ca_cert))
    conn = PinnedHTTPS(fleet.address(fleet.office_host(slug)), name, context, SOCKET_TIMEOUT)
    try:
        conn.request("GET", path, headers={"Host": name})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def _version_matches(product_version: str, pinned: str) -> bool:
    """productVersion is the upstream version; the pin may carry a Debian revision (24.04.9.2-1)."""
    return product_version in (pinned, pinned.rsplit("-", 1)[0])


def test_capabilities_through_the_proxy_report_the_pinned_version(fleet: Any) -> None:
    tenants = _office_tenants(fleet)
    assert tenants, "no lab tenant has the office service"
    for tenant in tenants:
        for domain in tenant.domains:
            status, headers, body = _get(fleet, tenant.slug, "/hosting/capabilities", domain)
            assert status == 200, f"office.{domain}: /hosting/capabilities answered {status}"
            version = json.loads(body)["productVersion"]
            assert _version_matches(version, fleet.office_version), (
                f"office.{domain}: productVersion {version}, pinned {fleet.office_version}"
            )
            assert "max-age=" in headers.get("strict-transport-security", ""), f"office.{domain}: no HSTS"


def test_discovery_through_the_proxy_is_valid_xml(fleet: Any) -> None:
    for tenant in _office_tenants(fleet):
        status, _, body = _get(fleet, tenant.slug, "/hosting/discovery")
        assert status == 200
        root = ET.fromstring(body)
        assert root.tag == "wopi-discovery"
        urls = [action.get("urlsrc", "") for action in root.iter("action")]
        assert urls and all(url.startswith(f"https://office.{fleet.domain(tenant.slug)}/") for url in urls), (
            f"{tenant.slug}: discovery URLs do not use the tenant's https name"
        )


def test_status_page_names_the_tenant(fleet: Any) -> None:
    for tenant in _office_tenants(fleet):
        status, _, body = _get(fleet, tenant.slug, "/tno-status")
        assert status == 200
        assert f"tenant={tenant.slug}" in body.decode()


def test_unknown_name_is_refused(fleet: Any) -> None:
    """The default server refuses the TLS handshake for names the platform does not serve."""
    tenant = _office_tenants(fleet)[0]
    context = ssl.create_default_context(cafile=str(fleet.ca_cert))
    context.check_hostname = False
    conn = PinnedHTTPS(fleet.address(fleet.office_host(tenant.slug)), "office.unknown.example", context, SOCKET_TIMEOUT)
    with pytest.raises((ssl.SSLError, ConnectionError)):
        conn.request("GET", "/hosting/capabilities", headers={"Host": "office.unknown.example"})
        conn.getresponse()
    conn.close()


def test_coolwsd_xml_has_one_alias_group_per_tenant(fleet: Any) -> None:
    """Each office host's coolwsd.xml: mode=groups, exactly one group per tenant it serves, with its WOPI hosts."""
    by_host: dict[str, list[Any]] = {}
    for tenant in _office_tenants(fleet):
        by_host.setdefault(fleet.office_host(tenant.slug), []).append(tenant)
    for host, tenants in sorted(by_host.items()):
        text = fleet.ssh(host, "cat", "/etc/coolwsd/coolwsd.xml").stdout
        root = ET.fromstring(text)
        del text  # holds the admin password: keep it out of any failure report
        assert root.findtext("ssl/enable") == "false" and root.findtext("ssl/termination") == "true"
        alias_groups = root.find("storage/wopi/alias_groups")
        assert alias_groups is not None and alias_groups.get("mode") == "groups", f"{host}: not mode=groups"
        groups = [
            [el.text.strip() for el in group if el.tag in ("host", "alias") and el.text]
            for group in alias_groups.findall("group")
        ]
        # every group also lets the document-open probe's one-shot WOPI endpoint in (regex-escaped)
        probe = fleet.inventory.platform.tno_office_probe_wopi_host
        expected = [[*t.office.wopi_hosts, *([re.escape(probe)] if probe else [])] for t in tenants]
        assert sorted(groups) == sorted(expected), f"{host}: alias groups do not match the tenants' WOPI hosts"
        assert len(groups) == len(tenants), f"{host}: {len(groups)} alias groups for {len(tenants)} tenants"
