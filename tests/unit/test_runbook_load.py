"""Runbook files: schema errors as file:field (all at once), references checked, docs up to date."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tnoctl import paths
from tnoctl.errors import InvalidInput
from tnoctl.runbook import render
from tnoctl.runbook.load import load_all
from tnoctl.runbook.refs import Catalog, check_tnoctl_argv, discover_tags, project_catalog

RULES_DIR = paths.PROJECT_ROOT / "exporters" / "rules"

GOOD = """\
name: {name}
title: {{fr: Titre, en: Title}}
meaning: {{fr: Sens, en: Meaning}}
impact: {{fr: Impact, en: Impact}}
diagnosis:
  - id: probe_mail
    kind: probe
    checks: [imap]
    expect: any
    title: {{fr: Sonder, en: Probe}}
mitigation:
  - id: deploy
    kind: tnoctl
    argv: [deploy, --tenant, "{{tenant}}", --yes]
    title: {{fr: Déployer, en: Deploy}}
"""


def _catalog() -> Catalog:
    return Catalog(frozenset({"imap", "smtp"}), frozenset({"deploy", "check"}), frozenset({"mail", "always"}))


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / f"{name}.yml"
    path.write_text(text)
    return path


def _errors(tmp_path: Path) -> list[str]:
    with pytest.raises(InvalidInput) as info:
        load_all(tmp_path, _catalog())
    return info.value.details


def test_a_good_runbook_loads(tmp_path: Path) -> None:
    _write(tmp_path, "Good", GOOD.format(name="Good"))
    books = load_all(tmp_path, _catalog())
    assert [s.id for s in books["Good"].diagnosis] == ["probe_mail"]
    assert books["Good"].mitigation[0].changes is True


def test_bad_kind_and_unknown_verb_are_reported_with_file_and_field_all_at_once(tmp_path: Path) -> None:
    bad_kind = GOOD.format(name="BadKind").replace("kind: probe", "kind: shell")
    unknown_verb = GOOD.format(name="BadVerb").replace("argv: [deploy,", "argv: [deploi,")
    _write(tmp_path, "BadKind", bad_kind)
    _write(tmp_path, "BadVerb", unknown_verb)
    errors = _errors(tmp_path)
    assert errors[0] == f"{tmp_path.name}/BadKind.yml: diagnosis[0].kind: 'shell' is not one of: " \
                        "probe, ssh, local, playbook, tnoctl, confirm"
    where = f"{tmp_path.name}/BadVerb.yml: mitigation[0].argv"
    assert errors[1].startswith(f"{where}: unknown verb 'deploi' (known:")
    assert len(errors) == 2


def test_unknown_probe_tag_action_key_and_condition(tmp_path: Path) -> None:
    text = GOOD.format(name="Many").replace("checks: [imap]", "checks: [imap, telnet]") + """\
  - id: play
    kind: playbook
    action: explode
    tags: [mail, nosuchtag]
    when: nowhere.failed
    colour: blue
    title: {fr: Jouer, en: Play}
"""
    _write(tmp_path, "Many", text)
    errors = [e.removeprefix(f"{tmp_path.name}/Many.yml: ") for e in _errors(tmp_path)]
    assert errors == ["mitigation[1].colour: unknown key (allowed: action, attempts, check, component, "
                      "expect, id, interval, kind, tags, title, when)"]
    _write(tmp_path, "Many", text.replace("    colour: blue\n", ""))
    errors = [e.removeprefix(f"{tmp_path.name}/Many.yml: ") for e in _errors(tmp_path)]
    assert errors == [
        "diagnosis[0].checks[1]: unknown probe 'telnet' (known: imap, smtp)",
        "mitigation[1].when: no earlier step has id 'nowhere'",
        "mitigation[1].action: unknown role action 'explode' (known: check, deploy)",
        "mitigation[1].tags[1]: unknown tag 'nosuchtag' (known: always, mail)",
    ]


def test_missing_texts_name_mismatch_ssh_target_and_placeholders(tmp_path: Path) -> None:
    text = GOOD.format(name="Other").replace("impact: {fr: Impact, en: Impact}\n", "") \
        .replace("meaning: {fr: Sens, en: Meaning}", "meaning: {fr: Sens}")
    _write(tmp_path, "Named", text)
    errors = [e.removeprefix(f"{tmp_path.name}/Named.yml: ") for e in _errors(tmp_path)]
    assert errors == ["meaning.en: required key is missing", "impact: required key is missing"]
    ssh = GOOD.format(name="Ssh") + """\
  - id: look
    kind: ssh
    argv: [cat, "{nothing}"]
    title: {fr: Lire, en: Read}
"""
    (tmp_path / "Named.yml").unlink()
    _write(tmp_path, "Ssh", ssh)
    errors = [e.removeprefix(f"{tmp_path.name}/Ssh.yml: ") for e in _errors(tmp_path)]
    assert errors[0] == "mitigation[1]: an ssh step needs `component` (mail or office) or `host`"
    assert errors[1].startswith("mitigation[1].argv[1]: unknown placeholder {nothing} (known: backup_host,")


def test_yaml_errors_and_retried_changing_steps(tmp_path: Path) -> None:
    _write(tmp_path, "Broken", "name: [unclosed\n")
    retried = GOOD.format(name="Retry").replace("    argv: [deploy,", "    attempts: 3\n    argv: [deploy,")
    _write(tmp_path, "Retry", retried)
    errors = _errors(tmp_path)
    assert errors[0].startswith(f"{tmp_path.name}/Broken.yml: line 2: invalid YAML")
    assert errors[1] == (f"{tmp_path.name}/Retry.yml: mitigation[0].attempts: only read-only steps are "
                         "retried (this step changes something)")


def test_tnoctl_argv_is_parsed_against_the_real_click_tree() -> None:
    assert check_tnoctl_argv(["deploy", "--tenant", "{tenant}", "--yes"]) is None
    assert check_tnoctl_argv(["lock", "release", "{tenant}", "--yes"]) is None
    assert "No such option '--bogus'" in (check_tnoctl_argv(["deploy", "--bogus"]) or "")
    assert "needs a sub-command" in (check_tnoctl_argv(["lock"]) or "")
    assert "Missing argument" in (check_tnoctl_argv(["lock", "release"]) or "")


def test_tags_are_discovered_from_plays_and_tasks(tmp_path: Path) -> None:
    (tmp_path / "playbooks").mkdir()
    (tmp_path / "roles" / "r" / "tasks").mkdir(parents=True)
    (tmp_path / "playbooks" / "site.yml").write_text("- hosts: mail\n  tags: [mail]\n  roles: [r]\n")
    (tmp_path / "roles" / "r" / "tasks" / "deploy.yml").write_text("- name: x\n  debug: {}\n  tags: dkim\n")
    assert discover_tags(tmp_path) == {"mail", "dkim"}


# ---------------------------------------------------------------- the project's own runbooks


def _alert_names() -> set[str]:
    names: set[str] = set()
    for path in sorted(RULES_DIR.glob("*.yml")):
        doc = yaml.safe_load(path.read_text()) or {}
        for group in doc.get("groups", []):
            names.update(rule["alert"] for rule in group.get("rules", []) if "alert" in rule)
    return names


def test_every_alert_has_a_runbook() -> None:
    alerts = _alert_names()
    assert alerts, "no alert found in exporters/rules/*.yml"
    books = load_all(catalog=project_catalog())
    assert sorted(alerts - set(books)) == []
    assert {"MailboxRestoreRequest", "TenantOnboarding"} <= set(books)


def test_every_runbook_references_existing_probes_verbs_actions_and_tags() -> None:
    books = load_all(catalog=project_catalog())  # raises InvalidInput listing every bad reference
    kinds = {step.kind for book in books.values() for _, steps in book.sections() for step in steps}
    assert kinds == {"probe", "ssh", "local", "playbook", "tnoctl", "confirm"}


def test_generated_docs_are_up_to_date() -> None:
    pages = render.render_all(load_all())
    stale = [name for name, text in pages.items()
             if not (render.DOCS_DIR / name).is_file() or (render.DOCS_DIR / name).read_text() != text]
    assert stale == [], "run `tnoctl runbook render` and commit docs/runbooks"


def test_alert_runbook_urls_point_at_the_generated_pages() -> None:
    for path in sorted(RULES_DIR.glob("*.yml")):
        doc = yaml.safe_load(path.read_text()) or {}
        for group in doc.get("groups", []):
            for rule in group.get("rules", []):
                if "alert" in rule:
                    url = rule["annotations"]["runbook_url"]
                    assert url.endswith(f"/{rule['alert']}.md")
                    assert (render.DOCS_DIR / f"{rule['alert']}.md").is_file()
