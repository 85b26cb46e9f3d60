"""The connection variables of each host, layered the way Ansible layers inventory variables.

tnoctl's direct SSH (``tnoctl.run.ssh``) must reach a host exactly as Ansible does, so it needs
the same ``ansible_*`` connection variables Ansible sees. They may be set in hosts.yml (group
``vars:`` and host entries) and in ``group_vars/`` / ``host_vars/`` files (such as
``group_vars/all/connection.yml``). Precedence, lowest first, as in Ansible's VariableManager:

1. hosts.yml ``vars:`` of group ``all``
2. ``group_vars/all`` files
3. hosts.yml ``vars:`` of the host's other groups (parents before children, then by name)
4. ``group_vars/<group>`` files (same order)
5. the host's entries in hosts.yml
6. ``host_vars/<host>`` files

Only :data:`CONNECTION_VARS` are kept (platform and tenant data have their own loaders). The
vault file is skipped (it holds ``tno_vault_*`` secrets only); a connection variable that is
vault-encrypted or a Jinja template is reported as an error: tnoctl does not template.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from tnoctl.config import yamlio
from tnoctl.config.messages import kind, short

CONNECTION_VARS: dict[str, type | tuple[type, ...]] = {
    "ansible_host": str,
    "ansible_port": int,
    "ansible_user": str,
    "ansible_ssh_private_key_file": str,
    "ansible_ssh_common_args": str,
    "ansible_ssh_extra_args": str,
    "ansible_become": (bool, str),
    "ansible_become_user": str,
    "ansible_become_method": str,
    "ansible_timeout": int,
}
"""The variables the SSH adapter reads, with the YAML types they may have."""

ALIASES = {
    "ansible_ssh_host": "ansible_host",
    "ansible_ssh_port": "ansible_port",
    "ansible_ssh_user": "ansible_user",
    "ansible_private_key_file": "ansible_ssh_private_key_file",
    "ansible_ssh_timeout": "ansible_timeout",
}
"""Older spellings Ansible still accepts; stored under the main name."""

SKIPPED = ("group_vars/all/vault.yml",)
"""Files never read here: the vault holds secrets only (tnoctl.config.vault reads it)."""

QUIET = ("group_vars/all/platform.yml",)
"""Files whose YAML errors another validator already reports (tnoctl.config.validate)."""

EXTENSIONS = ("", ".yml", ".yaml", ".json")


class _Opaque(str):
    """An ``!vault`` value: kept only so that using it as a connection variable is reported."""


class _Loader(yamlio.SafeLoader):  # type: ignore[misc, valid-type]
    """Safe loader that tolerates inline ``!vault`` values (Ansible allows them in any vars file)."""


_Loader.add_constructor("!vault", lambda loader, node: _Opaque(loader.construct_scalar(node)))


def _files(base: Path, name: str) -> list[Path]:
    """``base/name{,.yml,.yaml,.json}`` and every such file under ``base/name/`` (sorted), like Ansible."""
    out = [base / f"{name}{ext}" for ext in EXTENSIONS if (base / f"{name}{ext}").is_file()]
    folder = base / name
    if folder.is_dir():
        for root, dirs, names in os.walk(folder):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            out += [Path(root) / n for n in sorted(names)
                    if not n.startswith(".") and os.path.splitext(n)[1] in EXTENSIONS]
    return out


def _read(path: Path, rel: str, errors: list[str]) -> dict[str, Any]:
    """The mapping in one vars file (empty when unreadable; the problem goes to ``errors``)."""
    quiet = rel in QUIET
    try:
        if path.stat().st_size > yamlio.MAX_BYTES:
            raise yamlio.YamlProblem("(file)", f"larger than {yamlio.MAX_BYTES} bytes")
        data = path.read_bytes()
        if data.startswith(b"$ANSIBLE_VAULT"):
            return {}  # a whole-file vault: secrets, never connection settings tnoctl could use
        doc = yaml.load(data, Loader=_Loader)  # safe loader + !vault only
    except yamlio.YamlProblem as exc:
        if not quiet:
            errors.append(f"{rel}: {exc}")
        return {}
    except OSError as exc:
        if not quiet:
            errors.append(f"{rel}: cannot read: {exc.strerror or exc}")
        return {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        if not quiet:
            where = f"line {mark.line + 1}" if mark is not None else "(file)"
            errors.append(f"{rel}: {where}: invalid YAML: {short(getattr(exc, 'problem', None) or exc, 80)}")
        return {}
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        if not quiet:
            errors.append(f"{rel}: (document): must be a mapping of variables, got {kind(doc)}")
        return {}
    return doc


def pick(values: Mapping[Any, Any], source: str, path: str, errors: list[str]) -> dict[str, tuple[Any, str]]:
    """The connection variables of one vars mapping, checked, as ``{name: (value, source)}``.

    ``source`` is the file (``hosts.yml``, ``group_vars/all/connection.yml``); ``path`` the
    mapping's place in it (``all.children.mail.hosts.mail1.``, empty for a vars file).
    """
    out: dict[str, tuple[Any, str]] = {}
    for key, value in values.items():
        name = ALIASES.get(key, key) if isinstance(key, str) else key
        if name not in CONNECTION_VARS:
            continue
        field = f"{source}: {path}{key}"
        if isinstance(value, _Opaque):
            errors.append(f"{field}: a vault-encrypted connection variable cannot be used by tnoctl's SSH")
            continue
        if isinstance(value, str) and "{{" in value:
            errors.append(f"{field}: templated connection variables are not supported (write the value)")
            continue
        want = CONNECTION_VARS[name]
        if name in ("ansible_port", "ansible_timeout") and isinstance(value, str) and value.isdigit():
            value = int(value)
        if not isinstance(value, want) or (want is int and isinstance(value, bool)):
            wanted = {int: "a number", str: "a string"}.get(want, "a boolean")  # type: ignore[call-overload]
            errors.append(f"{field}: expected {wanted}, got {kind(value)}")
            continue
        if name == "ansible_port" and not 0 < value < 65536:
            errors.append(f"{field}: {value} is not a TCP port")
            continue
        if name == "ansible_become" and isinstance(value, str):
            if value.lower() not in ("yes", "no", "true", "false", "on", "off", "1", "0"):
                errors.append(f"{field}: {short(value)} is not a boolean")
                continue
            value = value.lower() in ("yes", "true", "on", "1")
        out[name] = (value, source)
    return out


def layered(inventory_dir: Path, host: str, groups_in_order: Iterable[str],
            file_group_vars: Mapping[str, Mapping[str, Any]], file_host_vars: Mapping[str, Any],
            cache: dict[str, dict[str, Any]], errors: list[str]) -> dict[str, tuple[Any, str]]:
    """The host's connection variables as ``{name: (value, source file)}`` after Ansible's layering.

    ``groups_in_order`` lists the host's groups with ``all`` first, then by depth and name;
    ``cache`` holds already read vars files (each file is read once per inventory load).
    """

    def from_files(kind_dir: str, name: str) -> dict[str, tuple[Any, str]]:
        merged: dict[str, tuple[Any, str]] = {}
        for path in _files(inventory_dir / kind_dir, name):
            rel = path.relative_to(inventory_dir).as_posix()
            if rel in SKIPPED:
                continue
            if rel not in cache:
                cache[rel] = pick(_read(path, rel, errors), rel, "", errors)
            merged.update(cache[rel])
        return merged

    groups = list(groups_in_order)
    result: dict[str, tuple[Any, str]] = {}
    result.update(file_group_vars.get("all", {}))
    result.update(from_files("group_vars", "all"))
    for group in groups:
        if group != "all":
            result.update(file_group_vars.get(group, {}))
    for group in groups:
        if group != "all":
            result.update(from_files("group_vars", group))
    result.update(file_host_vars)
    result.update(from_files("host_vars", host))
    return result
