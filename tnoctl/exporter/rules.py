"""Render the alert rules from their template: runbook base URL and annotation language.

The template ``exporters/rules/tno.yml.tmpl`` writes every ``runbook_url`` as
``@RUNBOOK_BASE@/<AlertName>.md`` and every summary/description twice, as ``summary@en:`` and
``summary@fr:`` lines. :func:`render` keeps the lines of one language (dropping the suffix) and
substitutes the base, so that on-call staff read alerts in their language and click an absolute
link in Alertmanager. The committed ``exporters/rules/tno.yml`` is rendered in English with
:data:`DEFAULT_RUNBOOK_BASE`, a placeholder URL to replace with your own git web URL:
``tnoctl monitoring rules --lang fr --runbook-base https://git.example.org/tnoctl/-/blob/main/docs/runbooks``.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

from tnoctl import paths

PLACEHOLDER = "@RUNBOOK_BASE@"
DEFAULT_RUNBOOK_BASE = "https://git.example.org/tnoctl/-/blob/main/docs/runbooks"
"""Where the shipped rules point: an example host, to be replaced by the operator's git web URL."""
LANGUAGES = ("en", "fr")
DEFAULT_LANGUAGE = "en"
TEMPLATE = paths.PROJECT_ROOT / "exporters" / "rules" / "tno.yml.tmpl"
RENDERED = paths.PROJECT_ROOT / "exporters" / "rules" / "tno.yml"
_SAFE = re.compile(r"^[A-Za-z0-9._~:/?#\[\]@!$&'()*+,;=%-]+$")
_LANG_LINE = re.compile(r"^(?P<indent>\s*)(?P<key>[a-z_]+)@(?P<lang>[a-z]{2}):(?P<rest>.*)$")


def check_base(base: str) -> str:
    """``base`` without a trailing slash; ValueError unless it is an absolute http(s) URL without quotes/spaces."""
    base = base.rstrip("/")
    parts = urlsplit(base)
    if not base or not _SAFE.match(base) or parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"--runbook-base must be an absolute http(s) URL without spaces or quotes, got {base!r}")
    return base


def select_language(text: str, lang: str) -> str:
    """Keep ``key@<lang>:`` lines as ``key:``, drop the other languages' lines; ValueError on an unknown one."""
    if lang not in LANGUAGES:
        raise ValueError(f"--lang must be one of {', '.join(LANGUAGES)}, got {lang!r}")
    out = []
    for line in text.splitlines(keepends=True):
        m = _LANG_LINE.match(line)
        if m is None:
            out.append(line)
        elif m["lang"] == lang:
            out.append(f"{m['indent']}{m['key']}:{m['rest']}" + ("\n" if line.endswith("\n") else ""))
    return "".join(out)


def render(base: str = DEFAULT_RUNBOOK_BASE, template: Path = TEMPLATE, lang: str = DEFAULT_LANGUAGE) -> str:
    """The rules file text in ``lang`` with ``base`` substituted; ValueError on a bad base or language."""
    base = check_base(base)
    text = select_language(template.read_text(), lang)
    header = ("# GENERATED from tno.yml.tmpl by `tnoctl monitoring rules` - edit the template, then run\n"
              f"#   tnoctl monitoring rules --lang {lang} --runbook-base {base} --out exporters/rules/tno.yml\n")
    if base == DEFAULT_RUNBOOK_BASE:
        header += ("# The runbook base above is an example host: render your own rules with your git web URL\n"
                   "# (see docs/monitoring.md, 'Alert rules').\n")
    return header + text.replace(PLACEHOLDER, base)
