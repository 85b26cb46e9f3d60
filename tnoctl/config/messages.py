"""Turn pydantic errors into human `field: message` lines (golden-tested in tests/unit).

Pydantic says "Input should be a valid string"; an operator wants
`insee: 69256 must be a string (quote it: "69256")`. Fields are rendered as
`mailboxes[2].quota`; odd keys (spaces, control characters) are quoted and truncated.
"""

from __future__ import annotations

import difflib
import re
from typing import Any

from pydantic import BaseModel, ValidationError

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,40}\Z")
_KINDS = {
    "string_type": "a string",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
}


def short(value: Any, limit: int = 50) -> str:
    """A one-line, bounded repr of a user value (hostile input can be huge or contain newlines)."""
    try:
        text = repr(value)
    except Exception:  # repr of a user object must never fail the report
        text = f"<{type(value).__name__}>"
    text = "".join(ch if ch.isprintable() else "?" for ch in text)
    return text if len(text) <= limit else text[:limit] + "..."


def kind(value: Any) -> str:
    """User-facing type name of a YAML value."""
    if value is None:
        return "nothing (null)"
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list",
             dict: "a mapping"}
    return names.get(type(value), f"a {type(value).__name__}")


def field_path(loc: tuple[Any, ...]) -> str:
    """('mailboxes', 2, 'quota') -> 'mailboxes[2].quota'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and _IDENT.fullmatch(part):
            out += f".{part}" if out else part
        else:
            out += f"[{short(part, 40)}]"
    return out or "(document)"


def _allowed_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Keys allowed at the mapping that holds ``loc[-1]`` (walks the model along ``loc``)."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        fields = getattr(current, "model_fields", None)
        if not fields or part not in fields:
            return []
        current = model_of(fields[part].annotation)
        if current is None:
            return []
    return sorted(getattr(current, "model_fields", {}) or {})


def model_of(annotation: Any) -> type[BaseModel] | None:
    """The BaseModel inside `Model`, `list[Model]` or `Model | None`."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = model_of(arg)
        if found is not None:
            return found
    return None


def _one(model: type[BaseModel], err: dict[str, Any]) -> str:
    etype, value, ctx = err["type"], err.get("input"), err.get("ctx") or {}
    loc = tuple(err["loc"])
    if etype == "missing":
        return "required key is missing"
    if etype == "extra_forbidden":
        allowed = _allowed_keys(model, loc)
        key = str(loc[-1]) if loc else ""
        near = difflib.get_close_matches(key, allowed, n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else f" (allowed: {', '.join(allowed)})" if allowed else ""
        return f"unknown key{hint}"
    if etype == "value_error":
        return str(ctx.get("error") or err["msg"]).removeprefix("Value error, ")
    if etype in _KINDS:
        if etype == "string_type" and isinstance(value, int | float) and not isinstance(value, bool):
            return f"{short(value)} must be a string (quote it: \"{short(value, 30)}\")"
        return f"expected {_KINDS[etype]}, got {kind(value)} {short(value)}".replace(" nothing (null) None", " null")
    if etype == "literal_error":
        expected = str(ctx.get("expected", "")).replace("'", "").replace(" or ", ", ")
        return f"{short(value)} is not one of: {expected}"
    if etype in ("string_too_long", "too_long"):
        limit = ctx.get("max_length")
        what = "characters" if etype == "string_too_long" else "items"
        return f"too long: at most {limit} {what}, got {ctx.get('actual_length') or len(value or '')}"
    if etype in ("string_too_short", "too_short"):
        what = "character" if etype == "string_too_short" else "item"
        return f"must have at least {ctx.get('min_length')} {what}"
    if etype in ("greater_than_equal", "less_than_equal"):
        bound = ctx.get("ge", ctx.get("le"))
        word = "at least" if etype == "greater_than_equal" else "at most"
        return f"{short(value)} must be {word} {bound}"
    return short(str(err.get("msg", etype)), 120)


def humanize(model: type[BaseModel], exc: ValidationError) -> list[str]:
    """Every error of ``exc`` as `field: message`, in document order."""
    lines = []
    for err in exc.errors(include_url=False):
        lines.append(f"{field_path(tuple(err['loc']))}: {_one(model, err)}")
    return lines
