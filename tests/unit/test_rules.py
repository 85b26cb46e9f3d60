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
            "TnoConfigDrift", "TnoOfficeDegraded", "TnoHostDown", "TnoDiskFull", "TnoDiskFillingUp",
            "TnoSystemdUnitFailed", "TnoMailboxNearQuota", "TnoTenantMailQuotaHigh", "TnoMailOutboundRateLimited",
            "TnoMailRejectRateJump", "TnoAcmeRenewalFailed", "TnoAcmeDeployHookFailed",
            "TnoAcmeCertificateNotRenewed"}
needs_promtool = pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian prometheus) absent")


def alerts() -> list[dict]:
    doc = yaml.safe_load((RULES_DIR / "tno.yml").read_text())
    return [r for g in doc["groups"] for r in g["rules"] if "alert" in r]


def test_committed_rules_are_the_rendered_template() -> None:
    assert (RULES_DIR / "tno.yml").read_text() == rules.render()


def test_required_alerts_with_severity_and_annotations() -> None:
    keys = [(a["alert"], a["labels"]["severity"]) for a in alerts()]
    assert len(keys) == len(set(keys))  # a name appears twice only as two severity tiers
    names = {a["alert"] for a in alerts()}
    assert names >= REQUIRED
    assert [s for n, s in keys if n == "TnoTLSCertificateExpiring"] == ["warning", "critical"]
    for a in alerts():
        assert re.fullmatch(r"Tno[A-Za-z]+", a["alert"]), a["alert"]
        assert a["labels"]["severity"] in {"warning", "critical"}
        assert {"summary", "description", "runbook_url"} <= set(a["annotations"])
        assert a["annotations"]["runbook_url"] == f"{rules.DEFAULT_RUNBOOK_BASE}/{a['alert']}.md"


def test_every_alert_has_its_runbook() -> None:
    for a in alerts():
        doc = paths.PROJECT_ROOT / "docs" / "runbooks" / a["annotations"]["runbook_url"].rsplit("/", 1)[1]
        text = doc.read_text()
        for heading in ("Meaning", "Impact", "Diagnosis", "Mitigation", "Signification", "Diagnostic", "Remédiation"):
            assert heading in text, f"{doc}: missing {heading}"


def test_runbook_base_is_configurable(capsys) -> None:
    text = rules.render("https://git.example.org/tnoctl/-/blob/main/docs/runbooks/")
    urls = re.findall(r'runbook_url: "([^"]+)"', text)
    assert len(urls) == len(alerts())
    assert all(u.startswith("https://git.example.org/tnoctl/-/blob/main/docs/runbooks/Tno") for u in urls)
    for bad in ('https://x" injected', "notaurl", "docs/runbooks", "ftp://x.example/rb", "https://", "bad base"):
        with pytest.raises(ValueError):
            rules.render(bad)
    out, err = io.StringIO(), io.StringIO()
    assert main(["monitoring", "rules", "--runbook-base", "https://w.example/rb"], AppContext(stdout=out)) == 0
    assert 'runbook_url: "https://w.example/rb/TnoBackupFailed.md"' in out.getvalue()
    assert main(["monitoring", "rules", "--runbook-base", "notaurl"], AppContext(stdout=out, stderr=err)) == 2
    assert err.getvalue().count("\n") == 1 and "--runbook-base must be an absolute http(s) URL" in err.getvalue()


def _annotations(text: str) -> list[dict[str, str]]:
    doc = yaml.safe_load(text)
    return [r["annotations"] for g in doc["groups"] for r in g["rules"] if "alert" in r]


def test_rules_in_french_and_english(tmp_path: Path) -> None:
    """Every alert has both languages; --lang picks one; the structure is identical."""
    template = rules.TEMPLATE.read_text()
    for key in ("summary", "description"):
        assert template.count(f" {key}@en:") == template.count(f" {key}@fr:") == len(alerts())
        assert f" {key}:" not in template  # no untranslated annotation
    en, fr = rules.render(lang="en"), rules.render(lang="fr")
    assert "@en:" not in en + fr and "@fr:" not in en + fr
    pairs = list(zip(_annotations(en), _annotations(fr), strict=True))
    for a_en, a_fr in pairs:
        assert set(a_en) == set(a_fr) == {"summary", "description", "runbook_url"}
        assert a_en["summary"] != a_fr["summary"] and a_en["description"] != a_fr["description"]
        assert a_en["runbook_url"] == a_fr["runbook_url"]
    assert "hors service" in fr and "ne répond plus" in fr
    with pytest.raises(ValueError):
        rules.render(lang="de")
    out = io.StringIO()
    assert main(["monitoring", "rules", "--lang", "fr"], AppContext(stdout=out)) == 0
    assert out.getvalue() == fr
    if shutil.which("promtool"):
        (tmp_path / "fr.yml").write_text(fr)
        res = subprocess.run(["promtool", "check", "rules", str(tmp_path / "fr.yml")], capture_output=True,
                             text=True, check=False)
        assert res.returncode == 0, res.stdout + res.stderr


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
    assert len(files) >= 2
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
