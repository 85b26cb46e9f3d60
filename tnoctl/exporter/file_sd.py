"""Prometheus ``file_sd`` target groups for blackbox_exporter, one file per blackbox module.

Each tenant endpoint becomes one group with labels ``tenant``, ``component``, ``service``,
``module``, ``host`` (the inventory host serving it), ``server_name`` (the name its certificate is
checked for) and ``__param_module`` (the multi-target pattern: Prometheus scrapes blackbox with
``?module=...&target=...``; see exporters/prometheus/prometheus.yml). ``host`` lets Alertmanager
group a host's alerts and silence them while the host is down; ``server_name`` gives one
certificate alert per name instead of one per probed service.

:func:`host_groups` adds ``node.json`` and ``dovecot.json``: node_exporter on every host and
Dovecot's OpenMetrics listener on mail hosts, each target labelled with its ``host``.

Two addressing modes: by name (default, production: ``mail.<domain>:25`` resolved by DNS, so
the probe also checks DNS) and ``by_address`` (lab, no DNS: ``198.18.0.11:25``; HTTPS passes
``office.<domain>`` as blackbox's ``hostname`` parameter for Host and SNI; TCP/TLS modules then
verify the certificate against the IP, which the lab certificates carry as IP SAN).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from json.encoder import encode_basestring_ascii as _esc  # type: ignore[attr-defined]
from typing import Any

from tnoctl.probes.endpoints import Endpoint

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
                  "module": module, "host": ep.host, "server_name": ep.server_name,
                  "__param_module": module, **extra}
        out.setdefault(f"blackbox-{module}.json", []).append({"targets": [target], "labels": labels})
    for module in sorted(set(MODULES.values())):  # an empty file keeps Prometheus from erroring on a missing one
        out.setdefault(f"blackbox-{module}.json", [])
    return dict(sorted(out.items()))


def render_groups(endpoints: Sequence[Endpoint], by_address: bool = False, depth: int = 0) -> dict[str, str]:
    """:func:`groups` as JSON text: each file's list exactly as ``json.dumps(indent=2)`` writes it at ``depth``.

    The text equals the encoding of :func:`groups` (tests/unit/test_file_sd_text.py).
    """
    return {name: "".join(chunks) for name, chunks in render_chunks(endpoints, by_address, depth)}


def render_chunks(endpoints: Sequence[Endpoint], by_address: bool = False,
                  depth: int = 0) -> Iterator[tuple[str, Iterator[str]]]:
    """(file name, the pieces of its :func:`render_groups` text) per file, sorted by name, rendered as read.

    At 35,000 communes there are 175,000 groups: rendering each with one template instead of building
    and encoding dicts, and writing the pieces as they come instead of joining 66 MB of text, is what
    keeps `monitoring targets` within seconds and a few hundred MB (issue 18). Each file's pieces are
    read in turn (one pass over ``endpoints`` per file).
    """
    files = {module: f"blackbox-{module}.json" for module in MODULES.values()}
    for name in sorted(files.values()):
        services = {service for service, module in MODULES.items() if files[module] == name}
        yield name, _file_chunks(endpoints, services, by_address, depth)


BATCH = 512
"""Groups joined into one piece of :func:`render_chunks` (one write of ~190 kB instead of 512)."""


def _file_chunks(endpoints: Sequence[Endpoint], services: set[str], by_address: bool,
                 depth: int) -> Iterator[str]:
    """The pieces of one file's list: :data:`BATCH` groups per piece.

    Per endpoint two strings are escaped (tenant, server name); the target is spliced from the escaped
    server name (or address: escaped once per host, as the host name): ``_esc`` escapes character by
    character and ``:``, digits, ``https://`` and the path need no escaping, so the splice equals
    ``_esc(target)``. The labels fixed by (component, service) are one precomputed string.
    """
    i1, i2, i3 = ("\n" + "  " * (depth + n) for n in (1, 2, 3))
    head = "{" + i2 + '"targets": [' + i3
    mid = i2 + "]," + i2 + '"labels": {' + i3 + '"tenant": '
    sep = "," + i3
    tail = i2 + "}" + i1 + "}"
    fixed: dict[tuple[str, str], tuple[str, str]] = {}  # (component, service) -> (labels after tenant, module)
    escaped: dict[str, str] = {}  # host names and addresses, escaped once
    pieces: list[str] = []
    before = "[" + i1
    for tenant, component, service, host, address, port, server_name in endpoints:
        if service not in services:
            continue
        labels = fixed.get((component, service))
        if labels is None:
            mod = _esc(MODULES[service])
            labels = fixed[component, service] = (
                f'{sep}"component": {_esc(component)}{sep}"service": {_esc(service)}{sep}"module": {mod}{sep}"host": ',
                f'{sep}"__param_module": {mod}')
        sn = _esc(server_name)
        name = (escaped.get(address) or escaped.setdefault(address, _esc(address))) if by_address else sn
        if service == "https":
            target = f'"https://{name[1:-1]}{"" if port == 443 else f":{port}"}{HTTPS_PATH}"'
            extra = f'{sep}"__param_hostname": {sn}' if by_address else ""
        else:
            target, extra = f'{name[:-1]}:{port}"', ""
        eh = escaped.get(host) or escaped.setdefault(host, _esc(host))
        pieces.append(f'{before}{head}{target}{mid}{_esc(tenant)}{labels[0]}{eh}{sep}"server_name": {sn}'
                      f'{labels[1]}{extra}{tail}')
        before = "," + i1
        if len(pieces) == BATCH:
            yield "".join(pieces)
            pieces.clear()
    if pieces:
        yield "".join(pieces)
    yield "[]" if before.startswith("[") else "\n" + "  " * depth + "]"


NODE_PORT = 9100  # role tno_monitoring: tno_monitoring_node_exporter_port
DOVECOT_PORT = 9900  # role tno_monitoring: tno_monitoring_dovecot_metrics_port


def host_groups(inventory: Any, node_port: int = NODE_PORT, dovecot_port: int = DOVECOT_PORT) -> dict[str, list[dict]]:
    """``node.json`` (every host) and ``dovecot.json`` (mail hosts): one group per host, labelled ``host``."""
    node: list[dict] = []
    dovecot: list[dict] = []
    for name, host in sorted(inventory.hosts.items()):
        node.append({"targets": [f"{host.address}:{node_port}"], "labels": {"host": name}})
        if "mail" in getattr(host, "groups", ()):
            dovecot.append({"targets": [f"{host.address}:{dovecot_port}"], "labels": {"host": name}})
    return {"dovecot.json": dovecot, "node.json": node}
