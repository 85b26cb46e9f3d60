"""Alert rules: promtool check + test, a firing and a silent case per alert, annotations, runbooks."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tnoctl import paths
from tnoctl.cli import main
from tnoctl.cli.context import AppContext
from tnoctl.exporter import rules

RULES_DIR = paths.PROJECT_ROOT / "exporters" / "rules"
REQUIRED = {"TnoTenantEndpointDown", "TnoTenantEndpointSlow", "TnoctlMetricsStale", "TnoTLSCertificateExpiring",
            "TnoMailQueueDeferredHigh", "TnoMailQueueStalled", "TnoMailAuthFailuresHigh", "TnoBackupTooOld",
            "TnoBackupFailed", "TnoBackupUnverified", "TnoBackupSizeDrop", "TnoUpgradeStuck", "TnoUpgradeFailed",
            "TnoConfigDrift", "TnoOfficeDegraded"}
needs_promtool = pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian prometheus) absent")


def alerts() -> list[dict]:
    doc = yaml.safe_load((RULES_DIR / "tno.yml").read_text())
    return [r for g in doc["groups"] for r in g["rules"] if "alert" in r]


def test_committed_rules_are_the_rendered_template() -> None:
    assert (RULES_DIR / "tno.yml").read_text() == rules.render()


def test_required_alerts_with_severity_and_annotations() -> None:
    names = [a["alert"] for a in alerts()]
    assert len(names) == len(set(names))
    assert set(names) >= REQUIRED
    for a in alerts():
        assert re.fullmatch(r"Tno[A-Za-z]+", a["alert"]), a["alert"]
        assert a["labels"]["severity"] in {"warning", "critical"}
        assert {"summary", "description", "runbook_url"} <= set(a["annotations"])
        assert a["annotations"]["runbook_url"] == f"docs/runbooks/{a['alert']}.md"


def test_every_alert_has_its_runbook() -> None:
    for a in alerts():
        doc = paths.PROJECT_ROOT / a["annotations"]["runbook_url"]
        text = doc.read_text()
        for heading in ("Meaning", "Impact", "Diagnosis", "Mitigation", "Signification", "Diagnostic", "Remédiation"):
            assert heading in text, f"{doc}: missing {heading}"


def test_runbook_base_is_configurable(capsys) -> None:
    text = rules.render("https://git.example.org/tnoctl/-/blob/main/docs/runbooks/")
    urls = re.findall(r'runbook_url: "([^"]+)"', text)
    assert len(urls) == len(alerts())
    assert all(u.startswith("https://git.example.org/tnoctl/-/blob/main/docs/runbooks/Tno") for u in urls)
    with pytest.raises(ValueError):
        rules.render('https://x" injected')
    out, err = io.StringIO(), io.StringIO()
    assert main(["monitoring", "rules", "--runbook-base", "https://w.example/rb"], AppContext(stdout=out)) == 0
    assert 'runbook_url: "https://w.example/rb/TnoBackupFailed.md"' in out.getvalue()
    assert main(["monitoring", "rules", "--runbook-base", "bad base"], AppContext(stdout=out, stderr=err)) == 2
    assert "runbook base" in err.getvalue()


def _test_cases() -> dict[str, dict[str, int]]:
    cases: dict[str, dict[str, int]] = {}
    for path in sorted((RULES_DIR / "tests").glob("*.yml")):
        for test in yaml.safe_load(path.read_text())["tests"]:
            for art in test.get("alert_rule_test", []):
                kind = "firing" if art.get("exp_alerts") else "silent"
                counts = cases.setdefault(art["alertname"], {"firing": 0, "silent": 0})
                counts[kind] += 1
    return cases


def test_every_alert_has_a_firing_and_a_silent_case() -> None:
    cases = _test_cases()
    for a in alerts():
        assert cases.get(a["alert"], {}).get("firing", 0) >= 1, f"{a['alert']}: no firing case"
        assert cases.get(a["alert"], {}).get("silent", 0) >= 1, f"{a['alert']}: no silent case"


@needs_promtool
def test_promtool_check_rules() -> None:
    res = subprocess.run(["promtool", "check", "rules", str(RULES_DIR / "tno.yml")], capture_output=True, text=True,
                         check=False)
    assert res.returncode == 0, res.stdout + res.stderr


@needs_promtool
def test_promtool_test_rules() -> None:
    files = sorted(str(p) for p in (RULES_DIR / "tests").glob("*.yml"))
    res = subprocess.run(["promtool", "test", "rules", *files], capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stdout + res.stderr


@needs_promtool
def test_promtool_test_catches_a_broken_rule(tmp_path: Path) -> None:
    """The rule tests are not vacuous: weakening a threshold makes them fail."""
    broken = rules.render().replace("> 26 * 3600", "> 260 * 3600")
    (tmp_path / "tno.yml").write_text(broken)
    (tmp_path / "tests").mkdir()
    shutil.copy(RULES_DIR / "tests" / "tno_test.yml", tmp_path / "tests" / "tno_test.yml")
    res = subprocess.run(["promtool", "test", "rules", str(tmp_path / "tests" / "tno_test.yml")],
                         capture_output=True, text=True, check=False)
    assert res.returncode != 0 and "TnoBackupTooOld" in res.stdout + res.stderr
