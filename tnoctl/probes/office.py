"""Online office (coolwsd): ``/hosting/capabilities`` (product version) and ``/hosting/discovery``.

Pure part: :func:`parse_capabilities` and :func:`parse_discovery`, tested on recorded
answers. I/O goes through :func:`tnoctl.probes.https.fetch` (through the proxy, with SNI).
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
                ok = pinned is None or version == pinned or version.startswith(pinned)
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
