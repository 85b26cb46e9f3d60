"""The office admin console and metrics are off the tenant vhosts (issue 14, item 4).

Why: Collabora's admin console (/browser/dist/admin/, /cool/adminws) and /cool/getMetrics were proxied on
every commune's public vhost. The generated nginx configuration must refuse them on every tenant vhost and
serve them only on the management listener, to the platform's allow-list; asserted on the rendered file,
and the allow-list on the platform schema.
"""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError
from role_render import render

from tnoctl.config.schema import Platform

TENANTS = [
    {"slug": "alpha", "domains": ["alpha.test", "annex.test"], "services": ["office"], "placement": {"office": "o1"}},
    {"slug": "beta", "domains": ["beta.test"], "services": ["office"], "placement": {"office": "o1"}},
]


def conf(allow: list[str]) -> str:
    return render("tno_proxy", "tno-office.conf.j2",
                  {"tno_tenants": TENANTS, "inventory_hostname": "o1", "tno_office_admin_allow": allow})


def servers(text: str) -> list[str]:
    """The server blocks of the rendered file (top-level `server {` ... matching `}`)."""
    blocks, depth, current = [], 0, []
    for line in text.splitlines():
        if depth == 0 and line.startswith("server {"):
            current = []
        if depth or line.startswith("server {"):
            current.append(line)
            depth += line.count("{") - line.count("}")
            if depth == 0:
                blocks.append("\n".join(current))
    return blocks


def test_every_tenant_vhost_refuses_the_admin_surfaces():
    vhosts = [s for s in servers(conf(["192.0.2.10"])) if "server_name office." in s and "443 ssl" in s]
    assert len(vhosts) == 3  # alpha.test, annex.test, beta.test
    for vhost in vhosts:
        assert "location ~* ^/browser/[^/]+/admin/ {\n            return 403;" in vhost
        assert "location ~* ^/(c|l)ool/(adminws|getMetrics) {\n        return 403;" in vhost
        # the refusal is the first regex location, so no proxying regex is checked before it
        regexes = re.findall(r"^    location ~\*? (\S+)", vhost, flags=re.M)
        assert regexes[0] == "^/(c|l)ool/(adminws|getMetrics)"
        assert "location ^~ /cool/adminws" not in vhost and "getMetrics {\n        proxy_pass" not in vhost


def test_management_listener_serves_them_to_the_allow_list_only():
    management = [s for s in servers(conf(["192.0.2.10", "198.51.100.0/24"])) if "listen 9443 ssl" in s]
    assert len(management) == 1
    block = management[0]
    assert "allow 192.0.2.10;\n    allow 198.51.100.0/24;\n    deny all;" in block
    for location in ("location ^~ /browser", "location ^~ /cool/adminws", "location = /cool/getMetrics"):
        assert location in block


def test_no_management_listener_without_an_allow_list():
    text = conf([])
    assert "9443" not in text.replace("(port 9443)", "")
    assert "return 403;" in text


PLATFORM = {"tno_platform_name": "p", "tno_office_version": "24.04.10.1", "tno_office_apt_repo_url": "http://r",
            "tno_office_apt_suite": "s", "tno_office_apt_components": ["main"], "tno_office_apt_keyring_src": "/k",
            "tno_tls_cert_dir": "/c", "tno_backup_host": "backup1"}


def test_allow_list_takes_addresses_and_networks_only():
    assert Platform(**PLATFORM, tno_office_admin_allow=["192.0.2.10", "2001:db8::/32"]).tno_office_admin_allow
    assert Platform(**PLATFORM).tno_office_admin_allow == []
    with pytest.raises(ValidationError, match="not an IP address or network"):
        Platform(**PLATFORM, tno_office_admin_allow=["all; allow 0.0.0.0/0"])
