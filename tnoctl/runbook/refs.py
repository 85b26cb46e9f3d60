"""What runbook steps may reference, and how to check each reference.

Why a catalog object: validation must reject an unknown probe, verb, role action or tag, and the
catalog of the real project is discovered from the code (probe targets, the action registry of
tnoctl.actions.registry, the roles' task files, the tags in playbooks and roles). Tests pass a small fake.
"""

from __future__ import annotations

import string
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tnoctl import paths

BUILTIN_PLACEHOLDERS = ("tenant", "component", "domain", "mail_host", "office_host", "backup_host")
EXTRA_PROBES = ("office", "roundtrip", "queue", "backup")
SPECIAL_TAGS = ("always", "never", "all", "tagged", "untagged")


def known_probes() -> tuple[str, ...]:
    """Probe names a `probe` step may use: the checks of tnoctl.probes.targets (what `status` runs)."""
    from tnoctl.probes.endpoints import SERVICES

    return tuple(sorted({service for _, service, _, _ in SERVICES} | set(EXTRA_PROBES)))


def placeholders(text: str) -> list[str]:
    """Names of the ``{name}`` fields of ``text``; ValueError on a malformed format string."""
    names = []
    for _, name, spec, conv in string.Formatter().parse(text):
        if name is None:
            continue
        if not name or spec or conv or not name.isidentifier():
            raise ValueError(f"bad placeholder {{{name}}} (use {{name}} only)")
        names.append(name)
    return names


def _walk_tags(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "tags":
                values = value if isinstance(value, list) else [value]
                found.update(str(v) for v in values if isinstance(v, str | int))
            else:
                _walk_tags(value, found)
    elif isinstance(node, list):
        for item in node:
            _walk_tags(item, found)


def discover_tags(root: Path) -> set[str]:
    """Every tag used in ``playbooks/*.yml`` and ``roles/*/tasks/*.yml`` (play-level tags included)."""
    from tnoctl.config import yamlio

    found: set[str] = set()
    files = sorted((root / "playbooks").glob("*.yml")) + sorted((root / "roles").glob("*/tasks/*.yml"))
    for path in files:
        try:
            _walk_tags(yamlio.loads(path.read_bytes()), found)
        except (OSError, yamlio.YamlProblem):
            continue
    return found


def discover_actions(root: Path) -> set[str]:
    """Role actions (`tno_action` values): task files every role has (each role's main includes one)."""
    per_role = [{p.stem for p in role.glob("tasks/*.yml")} - {"main"}
                for role in sorted((root / "roles").glob("*")) if (role / "tasks" / "main.yml").is_file()]
    return set.intersection(*per_role) if per_role else set()


def check_tnoctl_argv(argv: list[str]) -> str | None:
    """Check a ``tnoctl`` step's argv against the action registry (the verbs runbooks may call); error or None."""
    from tnoctl.actions import registry

    return registry.check(argv)


def tnoctl_verb_read_only(argv: list[str]) -> bool | None:
    """True when the registry's verb of ``argv`` only reads, False when it changes something, None if unknown."""
    from tnoctl.actions import registry
    from tnoctl.errors import InvalidInput

    try:
        return registry.resolve(argv)[1].read_only
    except InvalidInput:
        return None


@dataclass(frozen=True)
class Catalog:
    """What exists: probes, role actions, tags, and a tnoctl argv checker."""

    probes: frozenset[str]
    actions: frozenset[str]
    tags: frozenset[str]
    verb_checker: Callable[[list[str]], str | None] = check_tnoctl_argv
    verb_read_only: Callable[[list[str]], bool | None] = tnoctl_verb_read_only

    def check_verb(self, argv: list[str]) -> str | None:
        """An error message for an invalid tnoctl argv, else None."""
        return self.verb_checker(argv)


def project_catalog(root: Path = paths.PROJECT_ROOT) -> Catalog:
    """The catalog of this checkout, discovered from the code."""
    tags = (discover_tags(root) | set(SPECIAL_TAGS)) - {"never"}
    return Catalog(frozenset(known_probes()), frozenset(discover_actions(root)), frozenset(tags))
