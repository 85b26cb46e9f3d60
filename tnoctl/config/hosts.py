"""Read hosts.yml, a plain Ansible YAML inventory, into hosts with addresses, (transitive) groups and
the connection variables Ansible would use for them (layered with group_vars/host_vars: hostvars.py)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tnoctl.config import hostvars, yamlio
from tnoctl.config.messages import kind, short
from tnoctl.config.schema import HOST_RE

REQUIRED_GROUPS = ("mail", "office", "proxy", "backup")


@dataclass
class Host:
    """One inventory host: its name, the address Ansible connects to, and every group it belongs to."""

    name: str
    address: str
    groups: set[str] = field(default_factory=set)
    vars: dict[str, Any] = field(default_factory=dict)
    """Connection variables (``ansible_user``, ``ansible_become``...) after Ansible's precedence."""
    var_sources: dict[str, str] = field(default_factory=dict)
    """Which file set each of ``vars`` (for error messages)."""


@dataclass
class _Found:
    """What the walk over hosts.yml collects besides the hosts."""

    parents: dict[str, set[str]] = field(default_factory=dict)
    group_vars: dict[str, dict[str, tuple[Any, str]]] = field(default_factory=dict)
    host_vars: dict[str, dict[str, tuple[Any, str]]] = field(default_factory=dict)


def _walk(group: str, body: Any, where: str, hosts: dict[str, Host], found: _Found, errors: list[str]) -> None:
    """Collect hosts and child groups of one group mapping (recursion is bounded by the 1 MiB cap)."""
    if body is None:
        return
    if not isinstance(body, dict):
        errors.append(f"hosts.yml: {where}: expected a mapping, got {kind(body)}")
        return
    for key in body:
        if key not in ("hosts", "children", "vars"):
            errors.append(f"hosts.yml: {where}.{short(key, 40)}: unknown key (allowed: children, hosts, vars)")
    group_vars = body.get("vars") or {}
    if not isinstance(group_vars, dict):
        errors.append(f"hosts.yml: {where}.vars: expected a mapping, got {kind(group_vars)}")
    else:
        found.group_vars.setdefault(group, {}).update(hostvars.pick(group_vars, "hosts.yml", f"{where}.vars.", errors))
    members = body.get("hosts") or {}
    if not isinstance(members, dict):
        errors.append(f"hosts.yml: {where}.hosts: expected a mapping of host names, got {kind(members)}")
        members = {}
    for name, hvars in members.items():
        if not isinstance(name, str) or not HOST_RE.fullmatch(name):
            errors.append(f"hosts.yml: {where}.hosts: {short(name)} is not a host name")
            continue
        hvars = hvars or {}
        if not isinstance(hvars, dict):
            errors.append(f"hosts.yml: {where}.hosts.{name}: expected a mapping, got {kind(hvars)}")
            hvars = {}
        host = hosts.setdefault(name, Host(name, name))
        found.host_vars.setdefault(name, {}).update(hostvars.pick(hvars, "hosts.yml", f"{where}.hosts.{name}.", errors))
        address = hvars.get("ansible_host")
        if address is not None:
            try:
                host.address = str(ipaddress.ip_address(str(address)))
            except ValueError:
                if isinstance(address, str) and HOST_RE.fullmatch(address):
                    host.address = address
                else:
                    errors.append(f"hosts.yml: {where}.hosts.{name}.ansible_host: {short(address)} "
                                  "is not an address")
        host.groups.add(group)
    children = body.get("children") or {}
    if not isinstance(children, dict):
        errors.append(f"hosts.yml: {where}.children: expected a mapping, got {kind(children)}")
        return
    for child, child_body in children.items():
        if not isinstance(child, str) or not HOST_RE.fullmatch(child):
            errors.append(f"hosts.yml: {where}.children: {short(child)} is not a group name")
            continue
        found.parents.setdefault(child, set()).add(group)
        _walk(child, child_body, f"{where}.children.{child}", hosts, found, errors)


def _depths(parents: dict[str, set[str]]) -> dict[str, int]:
    """Group depth as Ansible counts it: ``all`` is 0, a child is one deeper than its deepest parent."""
    depth: dict[str, int] = {"all": 0}

    def of(group: str, seen: frozenset[str]) -> int:
        if group not in depth:
            ups = [p for p in parents.get(group, ()) if p not in seen]
            depth[group] = 1 + max((of(p, seen | {group}) for p in ups), default=0)
        return depth[group]

    for group in parents:
        of(group, frozenset())
    return depth


def load_hosts(path: Path) -> tuple[dict[str, Host], list[str]]:
    """Hosts by name (groups include ancestors and 'all'), and `hosts.yml: field: message` errors."""
    errors: list[str] = []
    try:
        doc = yamlio.load_mapping(path, what="hosts.yml", root=path.parent)
    except yamlio.YamlProblem as exc:
        return {}, [f"hosts.yml: {exc.where}: {exc.message}"]
    hosts: dict[str, Host] = {}
    found = _Found()
    for top, body in doc.items():
        if not isinstance(top, str) or not HOST_RE.fullmatch(top):
            errors.append(f"hosts.yml: {short(top)}: is not a group name")
            continue
        if top != "all":
            found.parents.setdefault(top, set()).add("all")
        _walk(top, body, top, hosts, found, errors)
    parents = found.parents
    for host in hosts.values():
        todo = list(host.groups)
        while todo:
            for parent in parents.get(todo.pop(), ()):
                if parent not in host.groups:
                    host.groups.add(parent)
                    todo.append(parent)
        host.groups.add("all")
    depth = _depths(parents)
    files_cache: dict[str, dict[str, Any]] = {}
    for host in hosts.values():
        order = sorted(host.groups, key=lambda g: (depth.get(g, 1), g))
        merged = hostvars.layered(path.parent, host.name, order, found.group_vars, found.host_vars.get(host.name, {}),
                                  files_cache, errors)
        host.vars = {k: v for k, (v, _) in merged.items()}
        host.var_sources = {k: src for k, (_, src) in merged.items()}
    present = {g for h in hosts.values() for g in h.groups}
    for group in REQUIRED_GROUPS:
        if group not in present:
            errors.append(f"hosts.yml: {group}: required group {group!r} has no host")
    return dict(sorted(hosts.items())), errors
