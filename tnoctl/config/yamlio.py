"""Safe, fast YAML reading for inventory files: libyaml when present, size cap, no alias bombs.

Every failure becomes a :class:`YamlProblem` carrying a `line N: message` text, so callers can
report `tenants/x.yml: line 3: ...` and never leak a traceback on hostile input.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

MAX_BYTES = 1024 * 1024
"""Inventory files larger than this are refused (a tenant file is a few KiB)."""

SafeLoader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
SafeDumper: type = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class YamlProblem(Exception):
    """A file that cannot be read as one YAML mapping; ``where`` is 'line N' or '(file)'."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")
        self.where = where
        self.message = message


def _clean(text: str, limit: int = 160) -> str:
    """One printable line: hostile bytes must not forge extra output lines."""
    text = " ".join(str(text).split())
    text = "".join(ch if ch.isprintable() else "?" for ch in text)
    return text if len(text) <= limit else text[:limit] + "..."


def _has_alias(data: bytes) -> bool:
    """True when the document uses `*alias` (refused: the billion-laughs bomb uses them)."""
    if b"*" not in data:
        return False
    return any(isinstance(event, yaml.AliasEvent) for event in yaml.parse(data, Loader=SafeLoader))


def loads(data: bytes, *, what: str = "file") -> Any:
    """Parse bytes as one YAML document; raise YamlProblem on anything unusual."""
    if len(data) > MAX_BYTES:
        raise YamlProblem("(file)", f"{what} is {len(data)} bytes, more than the {MAX_BYTES} allowed")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise YamlProblem("(file)", f"not UTF-8 text (byte {exc.start})") from None
    if "\x00" in text:
        raise YamlProblem("(file)", "contains NUL bytes (binary file?)")
    try:
        if _has_alias(data):
            raise YamlProblem("(file)", "YAML aliases (*name) are not allowed in inventory files")
        return yaml.load(text, Loader=SafeLoader)  # SafeLoader/CSafeLoader only
    except YamlProblem:
        raise
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}" if mark is not None else "(file)"
        raise YamlProblem(where, _clean(f"invalid YAML: {exc.problem or exc.context}")) from None
    except RecursionError:
        raise YamlProblem("(file)", "YAML nesting too deep") from None
    except Exception as exc:  # yaml constructors raise ValueError, OverflowError...
        raise YamlProblem("(file)", _clean(f"invalid YAML: {type(exc).__name__}: {exc}")) from None


def load_mapping(path: Path, *, what: str = "file") -> dict[str, Any]:
    """Read ``path`` as a YAML mapping (an empty file is an empty mapping)."""
    try:
        if os.path.getsize(path) > MAX_BYTES:
            raise YamlProblem("(file)", f"{what} is larger than {MAX_BYTES} bytes")
        data = path.read_bytes()
    except OSError as exc:
        raise YamlProblem("(file)", f"cannot read: {exc.strerror or exc}") from None
    doc = loads(data, what=what)
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise YamlProblem("(document)", f"must be a mapping of keys, got a {_kind(doc)}")
    return doc


def _kind(value: Any) -> str:
    return {list: "list", str: "string", int: "number", float: "number", bool: "boolean"}.get(
        type(value), type(value).__name__
    )


def dump(data: Any) -> str:
    """Block-style YAML, keys in the given order, unicode kept (tenant and inventory files)."""
    return yaml.dump(data, Dumper=SafeDumper, sort_keys=False, allow_unicode=True, default_flow_style=False)
