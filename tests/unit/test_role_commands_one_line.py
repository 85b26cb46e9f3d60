"""Commands of role tasks are one line once YAML is parsed (outside their Jinja expressions).

Why: a folded scalar (``>-``) keeps the newline after a more-indented line, so a `script`/`command`
line split for readability became two shell commands (``/bin/sh: 2: --reload-if-stale: not found``,
tno_backup's timer step, seen only on a lab host). Newlines inside ``{{ }}`` are Jinja's and harmless.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from tnoctl import paths

KEYS = ("cmd", "_raw_params", "shell", "command", "ansible.builtin.command", "ansible.builtin.shell")
JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.S)


def _commands(node: Any) -> list[str]:
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in KEYS and isinstance(value, str):
                found.append(value)
            found += _commands(value)
    elif isinstance(node, list):
        for item in node:
            found += _commands(item)
    return found


def _files() -> list[Path]:
    roots = [paths.ROLES_DIR, paths.PLAYBOOKS_DIR]
    return sorted(p for root in roots for p in root.rglob("*.yml") if "/tasks/" in str(p) or "/handlers/" in str(p)
                  or p.parent == paths.PLAYBOOKS_DIR)


def test_no_role_command_spans_lines_outside_jinja():
    files = _files()
    assert len(files) > 20
    split = [f"{path.relative_to(paths.PROJECT_ROOT)}: {cmd[:80]!r}" for path in files
             for cmd in _commands(yaml.safe_load(path.read_text())) if "\n" in JINJA.sub("", cmd).strip()]
    assert split == []


def test_the_check_finds_a_folded_command_split_by_a_more_indented_line():
    text = "- name: t\n  ansible.builtin.script:\n    cmd: >-\n      a.py {{ x\n         | y }}\n      --flag\n"
    (cmd,) = _commands(yaml.safe_load(text))
    assert "\n" in JINJA.sub("", cmd).strip()
