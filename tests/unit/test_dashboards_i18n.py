"""Dashboards in French and English: every visible text translated, queries untouched, CLI writes files."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from tnoctl.cli import main
from tnoctl.cli.context import AppContext
from tnoctl.exporter import dashboards


def _queries(doc: dict) -> list[str]:
    return [t.get("expr", "") for p in doc["panels"] for t in p.get("targets", [])]


@pytest.mark.parametrize("path", dashboards.sources(), ids=lambda p: p.name)
def test_every_visible_text_has_a_french_translation(path: Path) -> None:
    doc = json.loads(path.read_text())
    missing = dashboards.texts(doc) - set(dashboards.table("fr"))
    assert not missing, sorted(missing)
    fr = dashboards.translate(doc, "fr")
    assert _queries(fr) == _queries(doc) and fr["uid"] == doc["uid"]
    assert fr["title"] != doc["title"] or doc["title"] == "TNO - commune"
    assert [p["title"] for p in fr["panels"]] != [p["title"] for p in doc["panels"]]
    assert dashboards.translate(doc, "en") == doc


def test_a_new_untranslated_panel_is_an_error() -> None:
    doc = json.loads(dashboards.sources()[0].read_text())
    doc["panels"].append({"title": "Brand new panel", "targets": []})
    with pytest.raises(ValueError, match="no translation for \\['Brand new panel'\\]"):
        dashboards.translate(doc, "fr")
    with pytest.raises(ValueError, match="--lang"):
        dashboards.table("de")


def test_cli_writes_french_dashboards(tmp_path: Path) -> None:
    err = io.StringIO()
    assert main(["monitoring", "dashboards", "--lang", "fr", "--out", str(tmp_path)], AppContext(stderr=err)) == 0
    names = sorted(p.name for p in tmp_path.glob("*.json"))
    assert names == [p.name for p in dashboards.sources()]
    titles = {json.loads((tmp_path / n).read_text())["title"] for n in names}
    assert "TNO - vue d'ensemble de la plateforme" in titles
    out = io.StringIO()
    assert main(["monitoring", "dashboards"], AppContext(stdout=out)) == 0
    assert json.loads(out.getvalue())["tno-fleet.json"]["title"] == "TNO - fleet overview"
