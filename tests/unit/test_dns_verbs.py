"""`dns plan | check | publish` and `tenant dns --check/--publish` (#15): one action path, exit codes,
check results in the state store, the exporter's tnoctl_dns_* families, bad input."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.unit.dnsfakes import FakeDns, dkim_reply, serving
from tests.unit.fakes import FakeSsh, make_env
from tnoctl import paths
from tnoctl.actions import dns as action
from tnoctl.actions import tenant_dns_sync
from tnoctl.errors import ExitCode, InvalidInput
from tnoctl.state.store import DnsRecordCheck, DriftRecord, Store

NOW = 1_800_000_000.0


def _ssh() -> FakeSsh:
    return FakeSsh(results={("mail1", "grep"): dkim_reply(), ("mail2", "grep"): dkim_reply()})


def _env(state: Path, ssh: FakeSsh | None = None, clock=lambda: NOW):
    return make_env(paths.LAB_INVENTORY, state, ssh=ssh or _ssh(), clock=clock)


# ------------------------------------------------------------------------------------------------ actions
def test_plan_lists_every_tenant_and_reads_each_mail_host_once(tmp_path):
    ssh = _ssh()
    outcome = action.plan(_env(tmp_path, ssh), action.DnsRequest())
    assert outcome.exit_code == ExitCode.OK
    assert [t["tenant"] for t in outcome.data["tenants"]] == sorted(t["tenant"] for t in outcome.data["tenants"])
    assert len(outcome.data["tenants"]) == 7 and len(ssh.commands) == 2
    assert "; givors" in outcome.lines
    assert any(line.startswith("_smtp._tls.givors.test.") for line in outcome.lines)


def test_plan_exit_1_names_a_tenant_without_dkim_key(tmp_path):
    ssh = FakeSsh(results={("mail2", "grep"): dkim_reply(without=("feyzin.test",))})
    outcome = action.plan(_env(tmp_path, ssh), action.DnsRequest(("feyzin", "givors")))
    assert outcome.exit_code == ExitCode.FAILED
    assert outcome.errors == ["feyzin: mail2: no DKIM key for feyzin.test yet; run 'tnoctl deploy' first"]
    assert [t["tenant"] for t in outcome.data["tenants"] if t["records"]] == ["givors"]


def test_unknown_tenants_are_invalid_input_all_named_and_escaped(tmp_path):
    env = _env(tmp_path)
    with pytest.raises(InvalidInput, match="did you mean 'givors'"):
        action.check(env, action.DnsRequest(("givor",)), client_factory=lambda e, key: FakeDns())
    with pytest.raises(InvalidInput) as exc:
        action.plan(env, action.DnsRequest(("x\x1b[2J", "givors", "nope")))
    assert exc.value.message == "2 unknown tenants" and "\x1b" not in "".join(exc.value.details)


def test_check_names_tenant_and_record_and_records_every_result(tmp_path):
    env = _env(tmp_path)
    fake = serving(env, ["givors"])
    dkim = ("tno2026._domainkey.givors.test.", "TXT")
    del fake.records[dkim]
    fake.records[("givors.test.", "MX")] = ["10 mx.elsewhere.fr."]
    outcome = action.check(env, action.DnsRequest(("givors",)), client_factory=lambda e, key: fake)
    assert outcome.exit_code == ExitCode.FAILED and fake.updates == []
    assert outcome.errors == ["givors: mx givors.test. MX is different",
                              "givors: dkim tno2026._domainkey.givors.test. TXT is missing"]
    stored = Store(tmp_path).latest_dns()
    assert stored[("givors", "dkim tno2026._domainkey.givors.test. TXT")] == DnsRecordCheck(
        "givors", "dkim tno2026._domainkey.givors.test. TXT", False, "missing", NOW)
    assert len(stored) == len(outcome.data["records"]) and {r.checked_at for r in stored.values()} == {NOW}
    assert sum(1 for r in stored.values() if r.ok) == len(stored) - 2
    assert outcome.data["tenants"] == [{"tenant": "givors", "zone": "platform", "ok": False, "error": None}]


def test_check_of_a_clean_zone_exits_0_without_audit(tmp_path):
    env = _env(tmp_path)
    fake = serving(env, ["givors", "bron"])
    outcome = action.check(env, action.DnsRequest(("givors", "bron")), client_factory=lambda e, key: fake)
    assert outcome.exit_code == ExitCode.OK, outcome.errors
    assert {r["state"] for r in outcome.data["records"]} == {"published"}
    assert not list(tmp_path.rglob("audit.jsonl"))


def test_publish_shows_asks_publishes_rechecks_audits_and_records(tmp_path):
    env = _env(tmp_path)
    fake = FakeDns()
    keys_asked: list[bool] = []
    shown = []

    def factory(e, with_key):
        keys_asked.append(with_key)
        return fake

    def confirm(pending):
        shown.append(pending)
        return True

    outcome = action.publish(env, action.PublishRequest(("givors",), confirm=confirm), client_factory=factory)
    assert outcome.exit_code == ExitCode.OK, outcome.errors
    assert keys_asked == [True]
    assert {row[4] for row in shown[0].rows} == {"missing"} and "givors" in shown[0].message
    assert [zone for zone, _d, _a in fake.updates] == ["givors.test"]
    assert {r["state"] for r in outcome.data["records"]} == {"published"}
    assert all(r.ok for r in Store(tmp_path).latest_dns().values())
    audit_lines = [json.loads(line) for p in tmp_path.rglob("audit.jsonl") for line in p.read_text().splitlines()]
    assert [rec["verb"] for rec in audit_lines if rec.get("verb") == "dns publish"]
    again = action.check(env, action.DnsRequest(("givors",)), client_factory=lambda e, key: fake)
    assert again.exit_code == ExitCode.OK


def test_publish_refused_sends_nothing_and_nothing_to_do_asks_nothing(tmp_path):
    env = _env(tmp_path)
    fake = FakeDns()
    outcome = action.publish(env, action.PublishRequest(("givors",), confirm=lambda p: False),
                             client_factory=lambda e, key: fake)
    assert outcome.exit_code == ExitCode.REFUSED and fake.updates == []
    clean = serving(env, ["givors"])
    outcome = action.publish(env, action.PublishRequest(("givors",), confirm=lambda p: pytest.fail("asked")),
                             client_factory=lambda e, key: clean)
    assert outcome.exit_code == ExitCode.OK and clean.updates == [] and "nothing to publish" in outcome.message


def test_publish_holds_the_tenant_lock(tmp_path):
    from tnoctl.errors import Locked
    from tnoctl.state import locks

    env = _env(tmp_path)
    with locks.hold(tmp_path, ["givors"], "deploy", "op-other"), pytest.raises(Locked):
        action.publish(env, action.PublishRequest(("givors",)), client_factory=lambda e, key: FakeDns())


def test_registry_runs_the_same_actions(tmp_path, monkeypatch):
    from tnoctl.actions import registry

    env = _env(tmp_path)
    fake = FakeDns()
    monkeypatch.setattr(tenant_dns_sync, "platform_client", lambda e, key: fake)
    assert registry.check(["dns", "publish", "--tenant", "{tenant}"]) is not None  # needs --yes in a step
    assert registry.call(env, ["dns", "check", "--tenant", "givors"]).exit_code == ExitCode.FAILED
    assert registry.call(env, ["dns", "publish", "--tenant", "givors", "--yes"]).exit_code == ExitCode.OK
    assert registry.call(env, ["dns", "check", "--tenant", "givors"]).exit_code == ExitCode.OK
    assert not registry.ACTIONS["dns check"].changes and registry.ACTIONS["dns publish"].changes


# ------------------------------------------------------------------------------------------------ exporter
def _samples(text: str) -> dict[tuple[str, tuple], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def test_exporter_renders_the_latest_check_of_each_tenant_only(tmp_path):
    from tnoctl.exporter import app as exporter_app

    store = Store(tmp_path)
    store.record_dns([DnsRecordCheck("alpha", "dkim old._domainkey.a.test. TXT", False, "missing", NOW - 600)])
    store.record_dns([DnsRecordCheck("alpha", "mx a.test. MX", False, "different", NOW - 600)])
    store.record_dns([DnsRecordCheck("alpha", "mx a.test. MX", True, "published", NOW)])
    store.record_dns([DnsRecordCheck("alpha", "spf a.test. TXT", False, "missing", NOW)])
    store.record_dns([DnsRecordCheck("ghost", "mx g.test. MX", False, "missing", NOW)])
    exp = exporter_app.build(tmp_path, lambda: {"alpha": ("mail",)})
    text = exp.collector.render()
    got = _samples(text)
    assert got[("tnoctl_dns_record_ok", (("record", "mx a.test. MX"), ("tenant", "alpha")))] == 1.0
    assert got[("tnoctl_dns_record_ok", (("record", "spf a.test. TXT"), ("tenant", "alpha")))] == 0.0
    assert got[("tnoctl_dns_check_timestamp_seconds", (("tenant", "alpha"),))] == NOW
    assert not [k for k in got if "old._domainkey" in str(k)]  # a record of an older check: not exported
    assert not [k for k in got if "ghost" in str(k)]  # not in the inventory
    assert got[("tnoctl_store_unknown_tenant_records", (("kind", "dns"),))] == 1
    assert got[("tnoctl_collector_success", (("collector", "dns"),))] == 1.0
    store.record_dns([DnsRecordCheck("alpha", "spf a.test. TXT", True, "published", NOW + 60)])
    store.record_dns([DnsRecordCheck("alpha", "mx a.test. MX", True, "published", NOW + 60)])
    got = _samples(exp.collector.render())  # incremental: the changed tenant is re-rendered
    assert got[("tnoctl_dns_record_ok", (("record", "spf a.test. TXT"), ("tenant", "alpha")))] == 1.0
    assert got[("tnoctl_dns_check_timestamp_seconds", (("tenant", "alpha"),))] == NOW + 60


def test_store_skips_a_dns_line_with_a_bad_state(tmp_path):
    store = Store(tmp_path)
    store.record_dns([DnsRecordCheck("alpha", "mx a.test. MX", True, "published", NOW)])
    with open(store.path("dns"), "ab") as fh:
        fh.write(b'{"tenant":"alpha","record":"x","ok":true,"state":"pwned","checked_at":1}\n')
        fh.write(b'{"tenant":"alpha","record":"","ok":true,"state":"missing","checked_at":1}\n')
    assert list(store.latest_dns()) == [("alpha", "mx a.test. MX")]
    assert store.read_stats()["dns"].invalid_lines == 2


def test_one_check_is_one_write_and_one_fsync(tmp_path, monkeypatch):
    import os

    store = Store(tmp_path)
    store.record_dns([DnsRecordCheck("beta", "mx b.test. MX", True, "published", NOW)])  # the file exists
    calls = {"write": 0, "fsync": 0}
    real_write, real_fsync = os.write, os.fsync

    def write(fd, data):
        calls["write"] += 1
        return real_write(fd, data)

    def fsync(fd):
        calls["fsync"] += 1
        return real_fsync(fd)

    monkeypatch.setattr(os, "write", write)
    monkeypatch.setattr(os, "fsync", fsync)
    store.record_dns([DnsRecordCheck("alpha", f"a {n}.a.test. A", True, "published", NOW) for n in range(20)])
    monkeypatch.undo()
    assert calls == {"write": 1, "fsync": 1}
    assert len(store.latest_dns()) == 21
    with pytest.raises(ValueError):
        store.append_many([DnsRecordCheck("a", "r", True, "published", NOW), DriftRecord("a", "mail", False, 0, 1)])


# ------------------------------------------------------------------------------------------------ CLI
def _cli(tmp_path: Path, monkeypatch, *argv: str, fake: FakeDns | None = None,
         ssh: FakeSsh | None = None) -> tuple[int, str, str]:
    from tnoctl.cli import main
    from tnoctl.cli.context import AppContext

    monkeypatch.setattr(tenant_dns_sync, "platform_client", lambda env, with_key: fake if fake is not None
                        else FakeDns())
    state = tmp_path / "state"
    out, err = io.StringIO(), io.StringIO()
    app = AppContext(inventory=paths.LAB_INVENTORY, state_dir_override=state, stdout=out, stderr=err)
    app._env = make_env(paths.LAB_INVENTORY, state, ssh=ssh or _ssh())
    code = main(["--inventory", str(paths.LAB_INVENTORY), "--state-dir", str(state), *argv], app=app)
    return code, out.getvalue(), err.getvalue()


def test_cli_dns_check_exit_1_table_and_named_records(tmp_path, monkeypatch):
    code, out, err = _cli(tmp_path, monkeypatch, "dns", "check", "--tenant", "givors")
    assert code == 1
    assert "missing" in out and "givors: mx givors.test. MX is missing" in err
    assert "Traceback" not in err


def test_cli_dns_check_json_and_tenant_dns_shorthand_agree(tmp_path, monkeypatch):
    code, out, _err = _cli(tmp_path, monkeypatch, "dns", "check", "--tenant", "givors", "--json")
    code2, out2, _err2 = _cli(tmp_path, monkeypatch, "tenant", "dns", "givors", "--check", "--json")
    first, second = json.loads(out), json.loads(out2)
    assert code == code2 == 1
    assert first["records"] == second["records"] and first["tenants"] == second["tenants"]


def test_cli_publish_yes_json_then_check_is_clean(tmp_path, monkeypatch):
    fake = FakeDns()
    code, out, _err = _cli(tmp_path, monkeypatch, "dns", "publish", "--tenant", "givors", "--yes", "--json", fake=fake)
    assert code == 0 and {r["state"] for r in json.loads(out)["records"]} == {"published"}
    code, _out, _err = _cli(tmp_path, monkeypatch, "tenant", "dns", "givors", "--check", fake=fake)
    assert code == 0
    code, _out, err = _cli(tmp_path, monkeypatch, "tenant", "dns", "givors", "--publish", "--yes", fake=fake)
    assert code == 0 and "nothing to publish" in err


@pytest.mark.parametrize("argv,message", [
    (["dns", "check", "--tenant", "givor"], "unknown tenant 'givor'; did you mean 'givors'?"),
    (["dns", "plan", "--tenant", "x\x1b]52;c;cm0=\x07"], "unknown tenant 'x\\x1b]52;c;cm0=\\x07'"),
    (["dns", "publish", "--tenant", "givors"], "dns publish needs --yes when not run from a terminal"),
    (["dns", "publish", "--json"], "dns publish --json needs --yes"),
    (["tenant", "dns", "givors", "--check", "--publish", "--yes"], "not both"),
    (["dns", "check", "--bogus"], "No such option"),
])
def test_cli_bad_input_is_one_line_exit_2(tmp_path, monkeypatch, argv, message):
    code, _out, err = _cli(tmp_path, monkeypatch, *argv)
    assert code == 2, err
    assert message in err and "Traceback" not in err and "\x1b" not in err and "\x07" not in err
    assert err.splitlines()[0].startswith("tnoctl: error: ")


def test_cli_without_dns_server_is_one_line_exit_2(tmp_path, monkeypatch):
    from tnoctl.cli import main
    from tnoctl.cli.context import AppContext

    state = tmp_path / "state"
    err = io.StringIO()
    app = AppContext(inventory=paths.LAB_INVENTORY, state_dir_override=state, stdout=io.StringIO(), stderr=err)
    app._env = make_env(paths.LAB_INVENTORY, state, ssh=_ssh())
    platform = app._env.inventory.platform.model_copy(update={"tno_dns_server": None})
    object.__setattr__(app._env.inventory, "platform", platform)
    code = main(["--state-dir", str(state), "dns", "check"], app=app)
    assert code == 2
    assert err.getvalue() == ("tnoctl: error: group_vars/all/platform.yml: tno_dns_server: not set "
                              "(needed by dns check/publish)\n")


def test_cli_plan_prints_zone_lines_escaping_host_data(tmp_path, monkeypatch):
    hostile = '( "v=DKIM1; k=rsa; p=AB\x1b[2JCD" )'
    ssh = FakeSsh(results={("mail2", "grep"): dkim_reply(hostile)})
    code, out, _err = _cli(tmp_path, monkeypatch, "dns", "plan", "--tenant", "givors", ssh=ssh)
    assert code == 0
    assert "\x1b" not in out and "p=AB\\x1b[2JCD" in out
    assert out.splitlines()[0] == "; givors"
    code, out, _err = _cli(tmp_path, monkeypatch, "tenant", "dns", "givors", ssh=ssh)
    assert code == 0 and "\x1b" not in out
    code, out, _err = _cli(tmp_path, monkeypatch, "dns", "plan", "--tenant", "bron", "--json", ssh=ssh)
    assert code == 0 and [r["name"] for r in json.loads(out)["tenants"][0]["records"]] == ["office.bron.test."]


def test_publish_with_an_uncomputable_tenant_exits_1_and_publishes_the_others(tmp_path):
    ssh = FakeSsh(results={("mail2", "grep"): dkim_reply(without=("feyzin.test",))})
    env = _env(tmp_path, ssh)
    clean = serving(env, ["givors"])
    outcome = action.publish(env, action.PublishRequest(("feyzin", "givors")), client_factory=lambda e, key: clean)
    assert outcome.exit_code == ExitCode.FAILED and clean.updates == []
    assert outcome.errors == ["feyzin: mail2: no DKIM key for feyzin.test yet; run 'tnoctl deploy' first"]
    assert "not known" in outcome.message
    fake = FakeDns()
    outcome = action.publish(env, action.PublishRequest(("feyzin", "givors")), client_factory=lambda e, key: fake)
    assert outcome.exit_code == ExitCode.FAILED and [zone for zone, _d, _a in fake.updates] == ["givors.test"]
    assert {r["state"] for r in outcome.data["records"] if r["tenant"] == "givors"} == {"published"}
    assert outcome.errors == ["feyzin: mail2: no DKIM key for feyzin.test yet; run 'tnoctl deploy' first"]
