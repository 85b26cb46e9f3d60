"""The Grafana dashboards in the operator's language.

``exporters/dashboards/*.json`` are written in English; ``exporters/dashboards/i18n/<lang>.yml`` maps
each visible text (dashboard title and description, panel titles and descriptions, variable labels,
legend texts with words in them) to its translation. :func:`translate` returns a dashboard with every
such text replaced and fails on a text that the table lacks, so that a new panel cannot ship
half-translated. Queries, uids and links are untouched: the two languages are interchangeable imports.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from tnoctl import paths

DASHBOARDS_DIR = paths.PROJECT_ROOT / "exporters" / "dashboards"
LANGUAGES = ("en", "fr")
_WORDS = re.compile(r"[A-Za-z]{2,}")


def sources() -> list[Path]:
    """The English dashboards, by file name."""
    return sorted(DASHBOARDS_DIR.glob("*.json"))


def table(lang: str) -> dict[str, str]:
    """English text -> ``lang`` text (empty for English); ValueError on an unknown language."""
    if lang not in LANGUAGES:
        raise ValueError(f"--lang must be one of {', '.join(LANGUAGES)}, got {lang!r}")
    if lang == "en":
        return {}
    return dict(yaml.safe_load((DASHBOARDS_DIR / "i18n" / f"{lang}.yml").read_text()))


def _translatable(value: Any) -> bool:
    return isinstance(value, str) and bool(_WORDS.search(re.sub(r"\{\{[^}]*\}\}", "", value)))


def _slots(doc: dict) -> Iterator[tuple[dict, str]]:
    """(mapping, key) of every visible text of a dashboard."""
    yield from ((doc, k) for k in ("title", "description") if _translatable(doc.get(k)))
    for panel in doc.get("panels", []):
        yield from ((panel, k) for k in ("title", "description") if _translatable(panel.get(k)))
        yield from ((t, "legendFormat") for t in panel.get("targets", []) if _translatable(t.get("legendFormat")))
    for var in doc.get("templating", {}).get("list", []):
        if _translatable(var.get("label")):
            yield var, "label"


def texts(doc: dict) -> set[str]:
    """Every visible text of a dashboard (what a translation table must cover)."""
    return {m[k] for m, k in _slots(doc)}


def translate(doc: dict, lang: str) -> dict:
    """A copy of ``doc`` in ``lang``; ValueError naming the first texts the table lacks."""
    words = table(lang)
    out = copy.deepcopy(doc)
    if lang == "en":
        return out
    missing = sorted(texts(doc) - set(words))
    if missing:
        raise ValueError(f"exporters/dashboards/i18n/{lang}.yml: no translation for {missing[:5]}")
    for mapping, key in _slots(out):
        mapping[key] = words[mapping[key]]
    return out


def render(lang: str) -> dict[str, str]:
    """``{file name: JSON text}`` of every dashboard in ``lang``."""
    return {path.name: json.dumps(translate(json.loads(path.read_text()), lang), indent=2, ensure_ascii=False) + "\n"
            for path in sources()}
