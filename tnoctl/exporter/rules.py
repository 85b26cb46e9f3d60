"""Render the alert rules from their template with a configurable runbook base URL.

The template ``exporters/rules/tno.yml.tmpl`` writes every ``runbook_url`` as
``@RUNBOOK_BASE@/<AlertName>.md``. The committed ``exporters/rules/tno.yml`` is rendered with
:data:`DEFAULT_RUNBOOK_BASE` (``docs/runbooks``, a path relative to the repository root that
resolves in any git web UI browsing the repo); deployments render their own with
``tnoctl monitoring rules --runbook-base https://git.example.org/tnoctl/-/blob/main/docs/runbooks``.
"""

from __future__ import annotations

import re
from pathlib import Path

from tnoctl import paths

PLACEHOLDER = "@RUNBOOK_BASE@"
DEFAULT_RUNBOOK_BASE = "docs/runbooks"
TEMPLATE = paths.PROJECT_ROOT / "exporters" / "rules" / "tno.yml.tmpl"
RENDERED = paths.PROJECT_ROOT / "exporters" / "rules" / "tno.yml"
_SAFE = re.compile(r"^[A-Za-z0-9._~:/?#\[\]@!$&'()*+,;=%-]+$")


def render(base: str = DEFAULT_RUNBOOK_BASE, template: Path = TEMPLATE) -> str:
    """The rules file text with ``base`` (no trailing slash) substituted; ValueError on an unsafe base."""
    base = base.rstrip("/")
    if not base or not _SAFE.match(base) or '"' in base:
        raise ValueError(f"runbook base must be a URL or path without spaces or quotes, got {base!r}")
    text = template.read_text()
    header = ("# GENERATED from tno.yml.tmpl by `tnoctl monitoring rules` - edit the template, then run\n"
              f"#   tnoctl monitoring rules --runbook-base {base} --out exporters/rules/tno.yml\n")
    return header + text.replace(PLACEHOLDER, base)
