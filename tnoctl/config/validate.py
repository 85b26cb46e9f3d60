"""Check one tenant file end to end: YAML, schema, per-tenant logical rules.

The result is self-contained (messages already prefixed with the file's relative path and a
small summary for the cross-tenant pass), so it can be computed in a worker process and cached.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from tnoctl.config import logical, yamlio
from tnoctl.config.messages import humanize
from tnoctl.config.schema import Platform, Tenant


@dataclass
class FileCheck:
    """Outcome of checking one tenant file."""

    rel: str
    errors: list[str]
    summary: dict[str, Any] | None = None
    tenant: Tenant | None = None


MAX_FILE_ERRORS = 20
"""Errors reported per file; a hostile 1 MB file would otherwise print tens of thousands of lines."""


def cap(errors: list[str], limit: int, prefix: str, where: str) -> list[str]:
    """The first ``limit`` errors, then one `... and K more errors` line (count kept, output bounded)."""
    if len(errors) <= limit:
        return errors
    more = len(errors) - limit
    return [*errors[:limit], f"{prefix}{where}: ... and {more} more error{'s' if more != 1 else ''}"]


def printable(text: str) -> str:
    """File names come from the file system: never let one forge an output line."""
    return "".join(ch if ch.isprintable() else "?" for ch in text)


def check_doc(model: type, doc: dict[str, Any], rel: str) -> tuple[Any, list[str]]:
    """Validate a parsed mapping against ``model``; return (instance or None, prefixed errors)."""
    try:
        return model.model_validate(doc), []
    except ValidationError as exc:
        lines = [f"{rel}: {line}" for line in humanize(model, exc)]
        return None, cap(lines, MAX_FILE_ERRORS, f"{rel}: ", "(file)")
    except RecursionError:
        return None, [f"{rel}: (document): nesting too deep"]


def check_tenant_file(
    path: Path, rel: str, vault_names: frozenset[str] | None, *, keep: bool = False
) -> FileCheck:
    """Every problem of one tenant file; ``keep`` also returns the Tenant model (not for the bench)."""
    rel = printable(rel)
    try:
        doc = yamlio.load_mapping(path, what="tenant file", root=path.parent.parent)
    except yamlio.YamlProblem as exc:
        return FileCheck(rel, [f"{rel}: {exc.where}: {exc.message}"])
    tenant, errors = check_doc(Tenant, doc, rel)
    if tenant is None:
        return FileCheck(rel, errors)
    stem = printable(path.name.removesuffix(".yml"))
    errors = cap([f"{rel}: {line}" for line in logical.tenant_rules(tenant, stem, vault_names)],
                 MAX_FILE_ERRORS, f"{rel}: ", "(file)")
    return FileCheck(rel, errors, logical.summary(tenant), tenant if keep else None)


def check_tenant_files(
    root: Path, rels: list[str], vault_names: frozenset[str] | None
) -> list[tuple[str, list[str], dict[str, Any] | None]]:
    """Batch form for worker processes: plain tuples pickle cheaply."""
    out = []
    for rel in rels:
        res = check_tenant_file(root / rel, rel, vault_names)
        out.append((res.rel, res.errors, res.summary))
    return out


def check_platform(path: Path, rel: str) -> tuple[Platform | None, list[str]]:
    """Validate group_vars/all/platform.yml."""
    try:
        doc = yamlio.load_mapping(path, what="platform file", root=path.parents[2])
    except yamlio.YamlProblem as exc:
        return None, [f"{rel}: {exc.where}: {exc.message}"]
    return check_doc(Platform, doc, rel)
