"""Alertmanager configuration: generated = shipped, amtool accepts it, routing and inhibition as designed."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tnoctl.cli import main
from tnoctl.cli.context import AppContext
from tnoctl.exporter import alertmanager

needs_amtool = pytest.mark.skipif(shutil.which("amtool") is None,
                                  reason="amtool (Debian prometheus-alertmanager) absent")


def _rule_names() -> set[str]:
    doc = yaml.safe_load((alertmanager.RENDERED.parents[1] / "rules" / "tno.yml").read_text())
    return {r["alert"] for g in doc["groups"] for r in g["rules"] if "alert" in r}


def test_shipped_file_is_the_generated_one() -> None:
    assert alertmanager.RENDERED.read_text() == alertmanager.render()
    out = io.StringIO()
    assert main(["monitoring", "alertmanager"], AppContext(stdout=out)) == 0
    assert out.getvalue() == alertmanager.render()
    assert alertmanager.PLACEHOLDER_WEBHOOK in out.getvalue() and "placeholder" in out.getvalue()


def test_grouping_and_inhibitions_name_real_alerts() -> None:
    conf = alertmanager.config()
    assert conf["route"]["group_by"] == ["tenant"]
    assert conf["route"]["routes"] == [{"matchers": ['host=~".+"'], "group_by": ["host"]}]
    names = _rule_names()
    assert set(alertmanager.ENDPOINT_SHADOWED) | {"TnoHostDown", "TnoTenantEndpointDown"} <= names
    host_down, endpoint, cert, renewal = conf["inhibit_rules"]
    assert host_down["equal"] == ["host"] and endpoint["equal"] == ["tenant", "component"]
    assert cert["equal"] == ["server_name"]
    assert {"TnoAcmeRenewalFailed", "TnoSystemdUnitFailed"} <= names
    assert renewal == {"source_matchers": ['alertname="TnoAcmeRenewalFailed"'],
                       "target_matchers": ['alertname="TnoSystemdUnitFailed"', 'name="certbot.service"'],
                       "equal": ["host"]}


@needs_amtool
@pytest.mark.parametrize("argv", [
    [],
    ["--webhook-url", "http://127.0.0.1:9999/hook", "--email-to", "oncall@example.org",
     "--email-from", "am@example.org", "--smarthost", "smtp.example.org:25"],
])
def test_amtool_check_config(tmp_path: Path, argv: list[str]) -> None:
    out = tmp_path / "alertmanager.yml"
    err = io.StringIO()
    assert main(["monitoring", "alertmanager", *argv, "--out", str(out)], AppContext(stderr=err)) == 0, err.getvalue()
    for path in (out, alertmanager.RENDERED):
        res = subprocess.run(["amtool", "check-config", str(path)], capture_output=True, text=True, check=False)
        assert res.returncode == 0, res.stdout + res.stderr
        assert "4 inhibit rules" in res.stdout and "1 receivers" in res.stdout


@needs_amtool
def test_amtool_routes_a_host_alert_by_host_and_a_backup_alert_by_tenant() -> None:
    def route(*labels: str) -> str:
        res = subprocess.run(["amtool", "config", "routes", "test", "--verify.receivers=tno-oncall",
                              f"--config.file={alertmanager.RENDERED}", *labels],
                             capture_output=True, text=True, check=False)
        assert res.returncode == 0, res.stdout + res.stderr
        return res.stdout.strip()

    assert route("alertname=TnoTenantEndpointDown", "tenant=alpha", "host=mail1") == "tno-oncall"
    assert route("alertname=TnoBackupFailed", "tenant=alpha") == "tno-oncall"


@pytest.mark.parametrize(("argv", "message"), [
    (["--webhook-url", "notaurl"], "--webhook-url must be an absolute http(s) URL"),
    (["--email-to", "a@b.org"], "go together"),
    (["--email-to", "nobody", "--email-from", "a@b.org", "--smarthost", "h:25"], "--email-to must be"),
    (["--email-to", "x@b.org", "--email-from", "a@b.org", "--smarthost", "h"], "--smarthost must be"),
])
def test_bad_receiver_is_one_line_exit_2(argv: list[str], message: str) -> None:
    err = io.StringIO()
    assert main(["monitoring", "alertmanager", *argv], AppContext(stdout=io.StringIO(), stderr=err)) == 2
    assert message in err.getvalue() and err.getvalue().count("\n") == 1


@pytest.mark.skipif(not Path("/usr/bin/prometheus-alertmanager").exists(), reason="prometheus-alertmanager absent")
def test_real_alertmanager_groups_by_host_and_inhibits(tmp_path: Path) -> None:
    """The generated configuration in Debian's Alertmanager (loopback, clustering off): a host outage is one
    notification; its certificate warning is inhibited; a backup alert goes out grouped by tenant; a failed
    renewal pages once (its certbot.service unit alert is inhibited, another failed unit of that host is not)."""
    import json
    import time
    import urllib.request

    from tests.e2e import promlab

    hook = promlab.WebhookReceiver()
    conf = promlab.fast_alertmanager(alertmanager.config(alertmanager.Receiver.build(hook.url)), group_wait="2s")
    (tmp_path / "am.yml").write_text(yaml.safe_dump(conf))
    port = promlab.free_port()
    stack = promlab.Stack(tmp_path)
    stack.start("alertmanager", promlab.alertmanager_argv(tmp_path / "am.yml", tmp_path / "data", port))
    try:
        promlab.wait_for("alertmanager ready", lambda: promlab.http_get(f"http://127.0.0.1:{port}/-/ready"), 30,
                         interval=0.2)

        def alert(**labels: str) -> dict:
            return {"labels": labels, "annotations": {"summary": labels["alertname"]}}

        down = [alert(alertname="TnoTenantEndpointDown", tenant=t, component="mail", service=s, host="mail1",
                      severity="critical") for t in ("venissieux", "vaulx") for s in ("imap", "imaps")]
        shadowed = [alert(alertname="TnoTLSCertificateExpiring", tenant="venissieux", component="mail", host="mail1",
                          server_name="mail.venissieux.test", severity="warning"),
                    alert(alertname="TnoTenantEndpointSlow", tenant="vaulx", component="mail", service="smtp",
                          host="mail1", severity="warning")]
        backup = [alert(alertname="TnoBackupFailed", tenant="givors", component="mail", severity="warning")]
        renewal = [alert(alertname="TnoAcmeRenewalFailed", host="mail2", severity="warning"),
                   alert(alertname="TnoSystemdUnitFailed", host="mail2", name="certbot.service", severity="warning"),
                   alert(alertname="TnoSystemdUnitFailed", host="mail2", name="tno-backup@givors.service",
                         severity="warning")]
        body = json.dumps(down + shadowed + backup + renewal).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{port}/api/v2/alerts", body,
                                     {"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as resp:
            assert resp.status == 200
        promlab.wait_for("three notifications", lambda: len(hook.since(0)) >= 3, 30, interval=0.2)
        time.sleep(3)  # a fourth one (per tenant or per service) would have come by now
        groups = {json.dumps(n.body["groupLabels"], sort_keys=True): n for n in hook.since(0)}
        assert set(groups) == {'{"host": "mail1"}', '{"host": "mail2"}', '{"tenant": "givors"}'}
        assert len(hook.since(0)) == 3
        assert sorted((a["alertname"], a.get("name", "")) for a in groups['{"host": "mail2"}'].firing()) == [
            ("TnoAcmeRenewalFailed", ""), ("TnoSystemdUnitFailed", "tno-backup@givors.service")]
        host_note = groups['{"host": "mail1"}']
        assert sorted((a["tenant"], a["service"]) for a in host_note.firing()) == sorted(
            (t, s) for t in ("venissieux", "vaulx") for s in ("imap", "imaps"))
    finally:
        stack.stop()
        hook.stop()
