"""`tenant dns --check/--publish`: classification, update plan and the action against a fake DNS server (#15)."""

from __future__ import annotations

import pytest

from tests.unit.fakes import FakeDns
from tnoctl.actions.tenant_dns_sync import (
    DnsSyncRequest,
    Expected,
    check,
    classify,
    expected_records,
    plan_update,
    run,
)
from tnoctl.errors import ExitCode

GENKEY_TXT = '( "v=DKIM1; h=sha256; k=rsa; " "p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAxyz123" )'
SPF = Expected("a.test", "spf", "a.test.", "TXT", "v=spf1 mx -all")
MX = Expected("a.test", "mx", "a.test.", "MX", "10 mail.a.test.")


@pytest.mark.parametrize("served,state", [
    (["v=spf1 mx -all", "google-site-verification=x"], "published"),
    (["google-site-verification=x"], "missing"),
    ([], "missing"),
    (["v=spf1 a -all"], "different"),
])
def test_txt_classification_looks_only_at_its_kind(served, state):
    assert classify(SPF, served).state == state


def test_mx_classification_ignores_case_and_spacing():
    assert classify(MX, ["10  MAIL.A.TEST."]).state == "published"
    assert classify(MX, ["10 mx.elsewhere.fr."]).state == "different"
    assert classify(MX, []).state == "missing"


def test_expected_records_are_the_mail_policy_kinds_with_their_zone():
    from tnoctl.actions.tenant_dns import records_for

    rows = records_for("a-bis.test", "mail.a-bis.test", "office.a-bis.test", "v=DKIM1; p=abc")
    expected = expected_records(rows, ("a.test", "a-bis.test"))
    assert sorted(r.kind for r in expected) == ["dkim", "dmarc", "mta-sts", "mx", "spf"]
    assert {r.domain for r in expected} == {"a-bis.test"}


def test_update_plan_replaces_only_same_kind_values():
    statuses = [classify(SPF, ["v=spf1 a -all", "google-site-verification=x"]), classify(MX, ["10 mx.x."])]
    (zone, (deletes, adds)), = plan_update(statuses).items()
    assert zone == "a.test"
    assert ("a.test.", "TXT", '"v=spf1 a -all"') in deletes
    assert not any("google" in str(d) for d in deletes)
    assert ("a.test.", "MX", None) in deletes
    assert ("a.test.", "TXT", '"v=spf1 mx -all"') in adds and ("a.test.", "MX", "10 mail.a.test.") in adds


def test_published_records_need_no_update():
    assert plan_update([classify(SPF, ["v=spf1 mx -all"])]) == {}


def test_check_queries_each_name_and_type_once():
    client = FakeDns()
    check([SPF, Expected("a.test", "mta-sts", "a.test.", "TXT", "v=STSv1; id=1"), MX], client)
    assert client.queries == [("a.test.", "TXT"), ("a.test.", "MX")]


def _env(tmp_path):
    from tests.unit.fakes import FakeSsh, make_env
    from tnoctl import paths

    env = make_env(paths.LAB_INVENTORY, tmp_path, ssh=FakeSsh(results={}))
    env.ssh.results[env.inventory.tenant("givors").placement.mail] = (0, GENKEY_TXT)
    return env


def test_check_exits_1_naming_tenant_and_missing_record(tmp_path):
    env = _env(tmp_path)
    fake = FakeDns()
    outcome = run(env, DnsSyncRequest("givors"), client_factory=lambda e, key: fake)
    assert outcome.exit_code == ExitCode.FAILED
    assert any(line.startswith("givors: dkim tno2026._domainkey.") and line.endswith("is missing")
               for line in outcome.errors)
    assert fake.updates == []
    assert {r["state"] for r in outcome.data["records"]} == {"missing"}


def test_publish_then_check_is_clean_and_audited(tmp_path):
    env = _env(tmp_path)
    fake = FakeDns()
    keys_asked: list[bool] = []

    def factory(e, with_key):
        keys_asked.append(with_key)
        return fake

    outcome = run(env, DnsSyncRequest("givors", publish=True), client_factory=factory)
    assert outcome.exit_code == ExitCode.OK, outcome.errors
    assert keys_asked == [True]
    domains = env.inventory.tenant("givors").domains
    assert sorted(zone for zone, _d, _a in fake.updates) == sorted(domains)
    again = run(env, DnsSyncRequest("givors"), client_factory=lambda e, key: fake)
    assert again.exit_code == ExitCode.OK
    assert {r["state"] for r in again.data["records"]} == {"published"}
    audit_text = "".join(p.read_text() for p in tmp_path.rglob("*.jsonl"))
    assert "tenant dns publish" in audit_text


def test_check_without_a_dns_server_is_one_line_error(tmp_path):
    from tnoctl.actions.tenant_dns_sync import platform_client
    from tnoctl.errors import InvalidInput

    env = _env(tmp_path)
    platform = env.inventory.platform.model_copy(update={"tno_dns_server": None})
    object.__setattr__(env.inventory, "platform", platform)
    with pytest.raises(InvalidInput, match=r"^group_vars/all/platform.yml: tno_dns_server: not set"):
        platform_client(env, False)


def test_publish_without_vault_password_is_refused_before_any_query(tmp_path):
    from tnoctl.actions.tenant_dns_sync import platform_client
    from tnoctl.errors import InvalidInput

    env = _env(tmp_path)
    with pytest.raises(InvalidInput, match="needs the vault password"):
        platform_client(env, True)


def _cli(tmp_path, monkeypatch, *argv: str):
    import io

    from tests.unit.fakes import FakeSsh, make_env
    from tnoctl import paths
    from tnoctl.actions import tenant_dns_sync
    from tnoctl.cli import main
    from tnoctl.cli.context import AppContext

    fake = FakeDns()
    monkeypatch.setattr(tenant_dns_sync, "platform_client", lambda env, with_key: fake)
    state = tmp_path / "state"
    out, err = io.StringIO(), io.StringIO()
    app = AppContext(inventory=paths.LAB_INVENTORY, state_dir_override=state, stdout=out, stderr=err)
    app._env = make_env(paths.LAB_INVENTORY, state, ssh=FakeSsh(results={}))
    app._env.ssh.results[app._env.inventory.tenant("givors").placement.mail] = (0, GENKEY_TXT)
    code = main(["--inventory", str(paths.LAB_INVENTORY), "--state-dir", str(state), "tenant", "dns", *argv],
                app=app)
    return code, out.getvalue(), err.getvalue()


def test_cli_check_prints_a_table_and_names_missing_records(tmp_path, monkeypatch):
    code, out, err = _cli(tmp_path, monkeypatch, "givors", "--check")
    assert code == 1
    assert "missing" in out and "givors: mx givors.test. MX is missing" in err


def test_cli_check_and_publish_together_is_a_usage_error(tmp_path, monkeypatch):
    code, _out, err = _cli(tmp_path, monkeypatch, "givors", "--check", "--publish", "--yes")
    assert code == 2 and "not both" in err


def test_cli_publish_yes_json(tmp_path, monkeypatch):
    import json

    code, out, _err = _cli(tmp_path, monkeypatch, "givors", "--publish", "--yes", "--json")
    assert code == 0
    assert {r["state"] for r in json.loads(out)["records"]} == {"published"}
