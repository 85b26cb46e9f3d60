"""Rewrite one pinned version in ``group_vars/all/platform.yml`` after a completed rollout.

Why: the platform file is the truth a later ``deploy`` converges to; once every host runs the new
version, the pin must say so or the next deploy would downgrade the fleet. Only the one line
``<var>: <value>`` changes (comments, order and quoting style are kept), written atomically.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from tnoctl.config import yamlio
from tnoctl.config.vault import atomic_write
from tnoctl.errors import InvalidInput

PLATFORM_FILE = Path("group_vars") / "all" / "platform.yml"


def _render(value: str, old: str) -> str:
    quote = old[0] if old[:1] in ("'", '"') else ""
    if not quote and not isinstance(yaml.safe_load(value), str):
        quote = "'"  # 2 or 24.04 would be read back as a number
    return f"{quote}{value}{quote}"


def read_pin(inventory: Path, var: str) -> str | None:
    """The pinned value of ``var`` (None when the platform file does not set it)."""
    try:
        data = yamlio.load_mapping(inventory / PLATFORM_FILE, what="platform file", root=inventory)
    except yamlio.YamlProblem as exc:
        raise InvalidInput(f"{PLATFORM_FILE}: {exc.where}: {exc.message}") from None
    value = data.get(var)
    return None if value is None else str(value)


def write_pin(inventory: Path, var: str, value: str) -> bool:
    """Set ``var: value`` in the platform file; return False when it already said so."""
    path = inventory / PLATFORM_FILE
    text = path.read_text(encoding="utf-8")
    pattern = re.compile(rf"^{re.escape(var)}:[ \t]*(?P<old>[^\n#]*?)[ \t]*(?P<comment>#.*)?$", re.MULTILINE)
    match = pattern.search(text)
    if match is None:
        raise InvalidInput(f"{path}: {var}: not set; add '{var}: {value}' yourself")
    if read_pin(inventory, var) == value:
        return False
    line = f"{var}: {_render(value, match['old'])}" + (f"  {match['comment']}" if match["comment"] else "")
    new = text[: match.start()] + line + text[match.end():]
    atomic_write(path, new.encode("utf-8"), path.stat().st_mode & 0o777)
    return True
