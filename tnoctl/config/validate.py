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


def printable(text: str) -> str:
    """File names come from the file system: never let one forge an output line."""
    return "".join(ch if ch.isprintable() else "?" for ch in text)


def check_doc(model: type, doc: dict[str, Any], rel: str) -> tuple[Any, list[str]]:
    """Validate a parsed mapping against ``model``; return (instance or None, prefixed errors)."""
    try:
        return model.model_validate(doc), []
    except ValidationError as exc:
        return None, [f"{rel}: {line}" for line in humanize(model, exc)]
    except RecursionError:
        return None, [f"{rel}: (document): nesting too deep"]


def check_tenant_file(
    path: Path, rel: str, vault_names: frozenset[str] | None, *, keep: bool = False
) -> FileCheck:
    """Every problem of one tenant file; ``keep`` also returns the Tenant model (not for the bench)."""
    rel = printable(rel)
    try:
        doc = yamlio.load_mapping(path, what="tenant file")
    except yamlio.YamlProblem as exc:
        return FileCheck(rel, [f"{rel}: {exc.where}: {exc.message}"])
    tenant, errors = check_doc(Tenant, doc, rel)
    if tenant is None:
        return FileCheck(rel, errors)
    stem = printable(path.name.removesuffix(".yml"))
    errors = [f"{rel}: {line}" for line in logical.tenant_rules(tenant, stem, vault_names)]
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
        doc = yamlio.load_mapping(path, what="platform file")
    except yamlio.YamlProblem as exc:
        return None, [f"{rel}: {exc.where}: {exc.message}"]
    return check_doc(Platform, doc, rel)
