"""Issue 16 items 5 and 7 without hosts: flat/component sources, the pinned package set, pre-flight, the
document-open probe's protocol pieces and the gate's exclusion of checks already failing before a rollout."""

from __future__ import annotations

import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import unquote

import jinja2
import pytest

from tests.unit.fakes import FakeSsh
from tnoctl.actions import upgrade_gate, upgrade_preflight
from tnoctl.config.load import load_inventory
from tnoctl.errors import InvalidInput, OperationFailed
from tnoctl.lab.office_standin.coolwsd import odt_paragraphs
from tnoctl.probes import office_document
from tnoctl.probes.office_document import Served, load_message, session_path, verdict

ROOT = Path(__file__).resolve().parents[2]
LAB = ROOT / "inventories" / "lab"
TEMPLATES = ROOT / "roles" / "tno_office" / "templates"


@pytest.fixture
def inv(tmp_path: Path) -> Path:
    dest = tmp_path / "inv"
    shutil.copytree(LAB, dest, ignore=shutil.ignore_patterns(".tno"))
    return dest


def _set(inv: Path, **values: str) -> None:
    path = inv / "group_vars" / "all" / "platform.yml"
    text = path.read_text()
    for key, value in values.items():
        text = re.sub(rf"^{key}: .*$", f"{key}: {value}", text, flags=re.M)
    path.write_text(text)


def _errors(inv: Path) -> list[str]:
    with pytest.raises(InvalidInput) as err:
        load_inventory(inv)
    return err.value.details


# --- schema: flat or component repository -------------------------------------------------------

def test_flat_repository_is_an_empty_component_list_and_a_suite_ending_in_slash(inv: Path) -> None:
    _set(inv, tno_office_apt_suite="./", tno_office_apt_components="[]")
    platform = load_inventory(inv).platform
    assert platform.tno_office_apt_suite == "./" and platform.tno_office_apt_components == []


@pytest.mark.parametrize(("suite", "components", "message"), [
    ("tno-lab", "[]", "tno_office_apt_components is empty (a flat repository) but tno_office_apt_suite does not end"),
    ("./", "[main]", "tno_office_apt_suite ends in / (a flat repository) but tno_office_apt_components is not empty"),
    ("'.\\nTrusted: yes'", "[]", "is not an APT suite"),
])
def test_inconsistent_or_hostile_repository_layouts_are_refused(inv: Path, suite: str, components: str,
                                                                 message: str) -> None:
    _set(inv, tno_office_apt_suite=suite, tno_office_apt_components=components)
    errors = _errors(inv)
    assert len(errors) == 1 and errors[0].startswith("group_vars/all/platform.yml: ") and message in errors[0], errors


@pytest.mark.parametrize(("key", "value", "message"), [
    ("tno_office_companion_packages", "['code brand']", "is not a Debian package name"),
    ("tno_office_probe_wopi_host", "https://198.18.0.1", "is not http://<address"),
    ("tno_office_probe_wopi_host", "http://198.18.0.1:9999/x", "is not http://<address"),
])
def test_package_set_and_probe_host_are_checked(inv: Path, key: str, value: str, message: str) -> None:
    _set(inv, **{key: value})
    errors = _errors(inv)
    assert len(errors) == 1 and key in errors[0] and message in errors[0], errors


# --- role templates -----------------------------------------------------------------------------

def _render(name: str, **variables: object) -> str:
    from ansible.plugins.filter.core import regex_escape

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), trim_blocks=True,
                             keep_trailing_newline=True)  # as Ansible's template module
    env.filters["comment"] = lambda text, style="plain": f"<!-- {text} -->" if style == "xml" else f"# {text}"
    env.filters["regex_escape"] = regex_escape
    return env.get_template(name).render(ansible_managed="managed", **variables)


@pytest.mark.parametrize(("suite", "components", "line"), [
    ("tno-lab", ["main", "contrib"], "Components: main contrib\n"), ("./", [], None)])
def test_sources_template_writes_components_only_for_a_component_repository(suite: str, components: list[str],
                                                                            line: str | None) -> None:
    text = _render("tno-office.sources.j2", tno_office_apt_repo_url="http://repo/flat/", tno_office_apt_suite=suite,
                   tno_office_apt_components=components, tno_office_apt_keyring="/etc/apt/keyrings/k.gpg")
    assert f"Suites: {suite}\n" in text
    assert ("Components:" in text) == (line is not None) and (line is None or line in text)


def test_preferences_pin_the_whole_package_set_at_the_pinned_version() -> None:
    text = _render("tno-office.pref.j2", __tno_office_packages=["coolwsd", "coolwsd-kit"],
                   tno_office_version="24.04.11.1-1")
    assert "Package: coolwsd coolwsd-kit\nPin: version 24.04.11.1-1\nPin-Priority: 1001\n" in text


def test_every_tenant_group_allows_the_document_probe_as_an_escaped_alias() -> None:
    tenants = [{"slug": s, "office": {"wopi_hosts": [f"https://cloud.{s}.test"]}} for s in ("a", "b")]
    text = _render("coolwsd.xml.j2", __tno_office_tenants=tenants, __tno_office_listen="any",
                   tno_office_admin_user="admin", tno_vault_office_admin_password="pw",
                   tno_office_probe_wopi_host="http://198.18.0.1")
    groups = ET.fromstring(text).findall("./storage/wopi/alias_groups/group")
    assert [[a.text for a in g.findall("alias")] for g in groups] == [["http://198\\.18\\.0\\.1"]] * 2
    assert "tnoctl document-open probe" not in _render(
        "coolwsd.xml.j2", __tno_office_tenants=tenants, __tno_office_listen="any", tno_office_admin_user="admin",
        tno_vault_office_admin_password="pw")


# --- pre-flight ---------------------------------------------------------------------------------

MADISON = """\
   coolwsd | 24.04.11.1-1 | http://198.18.0.1:8081 tno-lab/main all Packages
   coolwsd | 24.04.10.1-1 | http://198.18.0.1:8081 tno-lab/main all Packages
coolwsd-kit | 24.04.10.1-1 | http://198.18.0.1:8081 tno-lab/main all Packages
"""


def test_madison_is_parsed_per_package() -> None:
    offered = upgrade_preflight.parse_madison(MADISON)
    assert offered == {"coolwsd": {"24.04.11.1-1", "24.04.10.1-1"}, "coolwsd-kit": {"24.04.10.1-1"}}
    assert upgrade_preflight.missing_packages(offered, ["coolwsd", "coolwsd-kit"], "24.04.11.1-1") == ["coolwsd-kit"]
    assert upgrade_preflight.missing_packages(offered, ["coolwsd", "coolwsd-kit"], "24.04.10.1-1") == []


def _inventory() -> SimpleNamespace:
    return SimpleNamespace(platform=SimpleNamespace(tno_office_companion_packages=["coolwsd-kit"]))


def test_preflight_names_each_host_and_missing_package() -> None:
    ssh = FakeSsh({("office1", "apt-cache"): (0, MADISON), ("office2", "apt-cache"): (0, MADISON),
                   ("office2", "apt-get"): (100, "E: Failed to fetch http://198.18.0.1:8081 InRelease")})
    with pytest.raises(OperationFailed) as err:
        upgrade_preflight.check_available(ssh.run, _inventory(), "office", ["office1", "office2"], "24.04.11.1-1")
    assert "nothing was stopped" in err.value.message
    assert "office1: coolwsd-kit=24.04.11.1-1" in err.value.message
    assert "office2: apt-get update failed: E: Failed to fetch" in err.value.message
    commands = sorted(ssh.commands)
    assert ("office1", ("apt-cache", "madison", "coolwsd", "coolwsd-kit")) in commands
    assert all(argv[0] in ("apt-get", "apt-cache") for _h, argv in commands)  # read-only besides the index


def test_preflight_passes_when_every_package_is_offered_and_skips_mail() -> None:
    ssh = FakeSsh({("office1", "apt-cache"): (0, MADISON)})
    upgrade_preflight.check_available(ssh.run, _inventory(), "office", ["office1"], "24.04.10.1-1")
    upgrade_preflight.check_available(ssh.run, _inventory(), "mail", ["mail1"], "2")
    assert [h for h, _argv in ssh.commands] == ["office1", "office1"]


# --- the gate: checks already failing before the rollout --------------------------------------

def test_gate_reports_but_does_not_count_checks_failing_before_the_rollout(monkeypatch: pytest.MonkeyPatch) -> None:
    failing = ["a/office_document: refused", "b/office_discovery: HTTP 500"]
    monkeypatch.setattr(upgrade_gate, "_gate_probes", lambda env, c, t, v: failing)
    monkeypatch.setattr(upgrade_gate, "_probe_failures", lambda probes: list(probes))
    env = SimpleNamespace(ssh=FakeSsh({"office1": (0, "24.04.11.1-1")}))
    ok = upgrade_gate.check(env, "office", "office1", ["a", "b"], "24.04.11.1-1", timeout=0,  # type: ignore[arg-type]
                            excluded=frozenset({"a/office_document", "b/office_discovery"}))
    assert ok.ok and "excluded (unhealthy before the rollout): a/office_document: refused" in ok.summary
    bad = upgrade_gate.check(env, "office", "office1", ["a", "b"], "24.04.11.1-1", timeout=0,  # type: ignore[arg-type]
                             excluded=frozenset({"a/office_document"}))
    assert not bad.ok and bad.failures == ["b/office_discovery: HTTP 500"]
    assert upgrade_preflight.unhealthy_now(failing) == ["a/office_document", "b/office_discovery"]


# --- document-open probe: protocol pieces -------------------------------------------------------

def test_session_path_and_load_message_follow_the_browser_client() -> None:
    src = "http://198.18.0.1:40000/wopi/files/abc"
    assert session_path(src) == ("/cool/http%3A%2F%2F198.18.0.1%3A40000%2Fwopi%2Ffiles%2Fabc/ws"
                                 "?WOPISrc=http%3A%2F%2F198.18.0.1%3A40000%2Fwopi%2Ffiles%2Fabc&compat=/ws")
    message = load_message(src, "t+k/n=")
    assert message.startswith("load url=") and " " not in message.split(" ")[1]
    assert unquote(message.split(" ")[1].removeprefix("url=")) == f"{src}?access_token=t%2Bk%2Fn%3D"


@pytest.mark.parametrize(("answer", "served", "ok", "detail"), [
    ("status: type=text parts=1", (True, True), True, "test document opened"),
    ("status: type=text parts=1", (True, False), False, "without fetching it"),
    ("error: cmd=load kind=faileddocloading", (True, True), False, "kind=faileddocloading"),
    ("error: cmd=internal kind=unauthorized", (False, False), False, "refused to open the document"),
    (None, (False, False), False, "closed the session"),
])
def test_verdict_needs_status_and_both_wopi_calls(answer: str | None, served: tuple[bool, bool], ok: bool,
                                                  detail: str) -> None:
    got = verdict(answer, Served(check_file_info=served[0], get_file=served[1]))
    assert got[0] is ok and detail in got[1]


def test_test_document_is_an_opendocument_text() -> None:
    assert odt_paragraphs(office_document.make_odt()) == 1
    assert odt_paragraphs(b"PK not really") is None


def test_one_shot_wopi_serves_each_call_once_and_only_with_the_token() -> None:
    import json
    import urllib.error
    import urllib.request

    with office_document.OneShotWopi("127.0.0.1") as wopi:
        def get(suffix: str, token: str) -> tuple[int, bytes]:
            try:
                with urllib.request.urlopen(f"{wopi.wopi_src}{suffix}?access_token={token}", timeout=5) as resp:
                    return resp.status, resp.read()
            except urllib.error.HTTPError as exc:
                return exc.code, b""

        assert get("", "wrong")[0] == 401
        assert get("/contents", wopi.token)[0] == 404  # GetFile before CheckFileInfo
        status, body = get("", wopi.token)
        assert status == 200 and json.loads(body)["Size"] == len(office_document.make_odt())
        assert get("/contents", wopi.token) == (200, office_document.make_odt())
        assert get("", wopi.token)[0] == 404 and get("/contents", wopi.token)[0] == 404  # one-shot
        assert wopi.served.check_file_info and wopi.served.get_file and wopi.served.refused == 4
