"""Generate the roles' `tno_tenants` argument_spec options from the schema (one schema, issue 12).

    python -m tnoctl.config.argspec [--check]        (or `make generate`)

What a role receives in `tno_tenants` is `tnoctl.config.ansible_view.tenant_view`: the pydantic
`Tenant` with defaults applied, a few keys left out (contacts, maintenance window: controller-only)
and a few derived ones added (primary domain, mailbox address and quota in bytes, the effective
retention). This module walks the schema models with that small, explicit difference (`_VIEW`) and
renders the Ansible `options:` tree: types, `choices` from Literals, nested options for every
sub-model, descriptions from the schema's field descriptions. A key is `required` when the view
always gives it a value (the role may rely on it); a nullable key (e.g. `placement.office` of a
mail-only commune) is optional.

In each role's meta/argument_specs.yml the generated block sits between the `BEGIN`/`END` marker
comments below `tno_tenants:`; everything else in the file stays hand-written (what the variable
means for that role). tests/unit/test_config_docgen.py fails when a committed block is stale or
when the view and the spec disagree.
"""

from __future__ import annotations

import json
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from tnoctl import paths
from tnoctl.config.schema import Alias, Mailbox, Retention, Tenant

ROLES = ("tno_common", "tno_acme", "tno_mail", "tno_office", "tno_proxy")
BEGIN = "# BEGIN tno_tenants options, generated from tnoctl/config/schema.py by `make generate`; do not edit"
END = "# END tno_tenants options"

# Keys whose name says "password" but whose value is only the *name* of a vault variable.
_NOT_SECRET = {"password_vault"}


@dataclass(frozen=True)
class Extra:
    """A key the view adds (or redefines) on top of the schema model."""

    type: str
    description: str
    model: type[BaseModel] | None = None


@dataclass(frozen=True)
class ViewOf:
    """How the view of one schema model differs from the model itself."""

    drop: frozenset[str] = frozenset()
    extra: dict[str, Extra] = field(default_factory=dict)
    filled: frozenset[str] = frozenset()  # nullable in the schema, always set in the view


_VIEW: dict[type[BaseModel], ViewOf] = {
    Tenant: ViewOf(
        drop=frozenset({"maintenance_window", "contacts", "dns"}),
        extra={
            "primary_domain": Extra("str", (Tenant.primary_domain.__doc__ or "").strip()),
            "backup": Extra("dict", "Effective retention: the platform's tno_backup_retention with the tenant's "
                            "overrides applied.", Retention),
            "drill_on_calendar": Extra("str", "OnCalendar of the weekly backup drill, in the tenant's window."),
        },
    ),
    Mailbox: ViewOf(
        extra={
            "address": Extra("str", "The mailbox address, local@domain."),
            "quota_bytes": Extra("int", "The quota in bytes (binary units)."),
        },
        filled=frozenset({"domain"}),
    ),
    Alias: ViewOf(
        extra={"address": Extra("str", "The alias address, local@domain.")},
        filled=frozenset({"domain"}),
    ),
}
_ORDER = {Tenant: ("slug", "name", "insee", "domains", "primary_domain", "services", "pilot", "placement",
                   "mailboxes", "mail", "office", "backup", "drill_on_calendar"),
          Mailbox: ("local", "domain", "address", "name", "quota", "quota_bytes", "password_vault"),
          Alias: ("local", "domain", "address", "to", "forward")}
_SCALARS = {str: "str", int: "int", bool: "bool", float: "float"}


def _strip(annotation: Any) -> tuple[Any, bool]:
    """(the annotation without Annotated metadata and None, whether None is allowed)."""
    if typing.get_origin(annotation) is typing.Annotated:
        return _strip(typing.get_args(annotation)[0])
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        inner, _ = _strip(args[0]) if len(args) == 1 else (annotation, False)
        return inner, True
    return annotation, False


def _type(annotation: Any) -> dict[str, Any]:
    """Ansible `type`/`elements`/`choices`/`options` of one (stripped) annotation."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return {"type": "dict", "options": options(annotation)}
    if typing.get_origin(annotation) is Literal:
        values = list(typing.get_args(annotation))
        return {"type": _SCALARS[type(values[0])], "choices": values}
    if typing.get_origin(annotation) is list:
        element, _ = _strip(typing.get_args(annotation)[0])
        inner = _type(element)
        out: dict[str, Any] = {"type": "list", "elements": inner.pop("type")}
        out.update(inner)
        return out
    if annotation in _SCALARS:
        return {"type": _SCALARS[annotation]}
    raise TypeError(f"no Ansible type for {annotation!r}: extend tnoctl/config/argspec.py")


def _option(name: str, info: FieldInfo, view: ViewOf) -> dict[str, Any]:
    annotation, nullable = _strip(info.annotation)
    spec = _type(annotation)
    out: dict[str, Any] = {"type": spec.pop("type")}
    if not nullable or name in view.filled:
        out["required"] = True
    out.update(spec)
    if name in _NOT_SECRET:
        out["no_log"] = False
    out["description"] = info.description or ""
    return out


def options(model: type[BaseModel]) -> dict[str, dict[str, Any]]:
    """The Ansible `options` describing what the view holds for one schema model."""
    view = _VIEW.get(model, ViewOf())
    out: dict[str, dict[str, Any]] = {}
    for name, info in model.model_fields.items():
        if name not in view.drop:
            out[name] = _option(name, info, view)
    for name, extra in view.extra.items():
        spec: dict[str, Any] = {"type": extra.type, "required": True, "description": extra.description}
        if extra.model is not None:
            spec["options"] = options(extra.model)
        out[name] = spec
    order = _ORDER.get(model, tuple(out))
    return {name: out[name] for name in sorted(out, key=lambda n: order.index(n) if n in order else len(order))}


def tenant_options() -> dict[str, dict[str, Any]]:
    """Options of one `tno_tenants` element."""
    return options(Tenant)


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_scalar(v) for v in value) + "]"
    if isinstance(value, str) and value.replace("_", "").isalnum() and value not in ("true", "false", "null"):
        return value
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a valid double-quoted YAML scalar


def render_options(opts: dict[str, dict[str, Any]], indent: int) -> list[str]:
    """YAML lines of an `options:` mapping (block style, keys in spec order)."""
    pad = " " * indent
    lines = [f"{pad}options:"]
    for name, spec in opts.items():
        lines.append(f"{pad}  {name}:")
        lines.extend(f"{pad}    {key}: {_scalar(value)}" for key, value in spec.items() if key != "options")
        if "options" in spec:  # nested options last, after the key's own description
            lines.extend(render_options(spec["options"], indent + 4))
    return lines


def spec_path(role: str) -> Path:
    return paths.ROLES_DIR / role / "meta" / "argument_specs.yml"


def regenerate(text: str, source: str) -> str:
    """`text` with the block between the markers replaced by the generated options."""
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if line.strip() == BEGIN]
    ends = [i for i, line in enumerate(lines) if line.strip() == END]
    if len(starts) != 1 or len(ends) != 1 or ends[0] < starts[0]:
        raise ValueError(f"{source}: expected one '{BEGIN}' line followed by one '{END}' line")
    indent = len(lines[starts[0]]) - len(lines[starts[0]].lstrip())
    block = render_options(tenant_options(), indent)
    return "\n".join(lines[: starts[0] + 1] + block + lines[ends[0]:]) + "\n"


def main(argv: list[str]) -> int:
    """Rewrite every role's block, or with --check exit 1 naming the stale files."""
    stale = []
    for role in ROLES:
        path = spec_path(role)
        try:
            current = path.read_text()
            wanted = regenerate(current, str(path))
        except (OSError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        if current != wanted:
            stale.append(path)
            if "--check" not in argv:
                path.write_text(wanted)
                print(f"wrote {path}")
    if stale and "--check" in argv:
        print("stale: " + ", ".join(map(str, stale)) + " (run: make generate)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
