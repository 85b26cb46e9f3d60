"""Online office (coolwsd): ``/hosting/capabilities`` (product version) and ``/hosting/discovery``.

Pure part: :func:`parse_capabilities`, :func:`parse_discovery` and :func:`version_matches`, tested on
recorded answers. I/O goes through :func:`tnoctl.probes.https.fetch` (through the proxy, with SNI).

Versions: the pin is a Debian package version (``24.04.11.1-1``, maybe with an epoch ``1:``), while
coolwsd's capabilities report the product version without the Debian revision (``24.04.11.1``), as
the real Collabora Online packages do. :func:`version_matches` compares the product version with the
upstream part of the pin, exactly (``24.04.11.10`` is not ``24.04.11.1``).
"""

from __future__ import annotations

import http.client
import json
import ssl
import xml.etree.ElementTree as ET
from pathlib import Path

from tnoctl.probes.base import ProbeResult, Stopwatch, short_error
from tnoctl.probes.https import fetch


def parse_capabilities(body: bytes) -> str:
    """Return ``productVersion`` from the capabilities JSON; raise ValueError if absent."""
    data = json.loads(body)
    if not isinstance(data, dict) or not isinstance(data.get("productVersion"), str):
        raise ValueError("capabilities without productVersion")
    return data["productVersion"]


def upstream_version(package_version: str) -> str:
    """The upstream part of a Debian version: no epoch (``1:``), no Debian revision (after the last ``-``)."""
    text = package_version.strip()
    if ":" in text.split("-", 1)[0]:
        text = text.split(":", 1)[1]
    return text.rsplit("-", 1)[0] if "-" in text else text


def version_matches(product_version: str, pinned: str) -> bool:
    """True when capabilities' ``productVersion`` is the pinned package version (compared without revision)."""
    product = product_version.strip()
    return bool(product) and product in (pinned.strip(), upstream_version(pinned))


def parse_discovery(body: bytes) -> int:
    """Number of WOPI actions in the discovery XML; raise ValueError if invalid or empty."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise ValueError(f"invalid discovery XML: {exc}") from exc
    if root.tag != "wopi-discovery":
        raise ValueError(f"unexpected root element {root.tag!r}")
    actions = root.findall("./net-zone/app/action")
    if not actions:
        raise ValueError("discovery lists no action")
    if any(not a.get("urlsrc") for a in actions):
        raise ValueError("discovery action without urlsrc")
    return len(actions)


def probe_office(tenant: str, address: str, port: int, server_name: str, ca_file: Path | None,
                 timeout: float, pinned: str | None = None) -> list[ProbeResult]:
    """Capabilities (version, compared to the pinned one if given) and discovery (valid XML)."""
    results: list[ProbeResult] = []
    for check, path in (("office_capabilities", "/hosting/capabilities"), ("office_discovery", "/hosting/discovery")):
        watch = Stopwatch()
        try:
            resp = fetch(address, port, server_name, path, ca_file, timeout)
            if resp.status != 200:
                raise ValueError(f"HTTP {resp.status}")
            if check == "office_capabilities":
                version = parse_capabilities(resp.body)
                ok = pinned is None or version_matches(version, pinned)
                detail = f"productVersion {version}" + ("" if ok else f" (pinned {pinned})")
                results.append(ProbeResult(tenant, "office", check, ok, watch(), detail,
                                           severity="critical" if ok else "warning"))
            else:
                count = parse_discovery(resp.body)
                results.append(ProbeResult(tenant, "office", check, True, watch(), f"{count} actions",
                                           value=float(count)))
        except (OSError, ssl.SSLError, http.client.HTTPException, ValueError) as exc:
            results.append(ProbeResult(tenant, "office", check, False, watch(), short_error(exc)))
    return results
