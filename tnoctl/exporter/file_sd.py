"""Prometheus ``file_sd`` target groups for blackbox_exporter, one file per blackbox module.

Each tenant endpoint becomes one group with labels ``tenant``, ``component``, ``service``,
``module`` and ``__param_module`` (the multi-target pattern: Prometheus scrapes blackbox with
``?module=...&target=...``; see exporters/prometheus/prometheus.yml).

Two addressing modes: by name (default, production: ``mail.<domain>:25`` resolved by DNS, so
the probe also checks DNS) and ``by_address`` (lab, no DNS: ``198.18.0.11:25``; HTTPS passes
``office.<domain>`` as blackbox's ``hostname`` parameter for Host and SNI; TCP/TLS modules then
verify the certificate against the IP, which the lab certificates carry as IP SAN).
"""

from __future__ import annotations

from collections.abc import Iterable

from tnoctl.probes.targets import Endpoint

MODULES: dict[str, str] = {
    "smtp": "smtp_starttls",
    "submission": "smtp_starttls",
    "imap": "imap_starttls",
    "imaps": "imaps_tls",
    "https": "https_office",
}
HTTPS_PATH = "/hosting/discovery"


def _target(ep: Endpoint, by_address: bool) -> tuple[str, dict[str, str]]:
    host = ep.address if by_address else ep.server_name
    extra: dict[str, str] = {}
    if ep.service == "https":
        port = "" if ep.port == 443 else f":{ep.port}"
        if by_address:
            extra["__param_hostname"] = ep.server_name
        return f"https://{host}{port}{HTTPS_PATH}", extra
    return f"{host}:{ep.port}", extra


def groups(endpoints: Iterable[Endpoint], by_address: bool = False) -> dict[str, list[dict]]:
    """``{file name: [target groups]}``; files are named ``blackbox-<module>.json``."""
    out: dict[str, list[dict]] = {}
    for ep in endpoints:
        module = MODULES[ep.service]
        target, extra = _target(ep, by_address)
        labels = {"tenant": ep.tenant, "component": ep.component, "service": ep.service,
                  "module": module, "__param_module": module, **extra}
        out.setdefault(f"blackbox-{module}.json", []).append({"targets": [target], "labels": labels})
    for module in sorted(set(MODULES.values())):  # an empty file keeps Prometheus from erroring on a missing one
        out.setdefault(f"blackbox-{module}.json", [])
    return dict(sorted(out.items()))
