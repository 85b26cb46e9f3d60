"""Rspamd's counters for the textfile collector (role tno_monitoring): parsing, bounded output, units, task wiring.

The sample is the ``/metrics`` answer shown in Rspamd's own documentation of the controller worker
(Rspamd 3.2, indentation removed): every family it exports, incl. the ones the script must drop
(build and config ids, memory pools, Bayes statfiles, fuzzy storage) and ``process_start_time_seconds``,
which would collide with node_exporter's own series.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
import yaml
from hostscripts import exposition_samples, load_script
from prometheus_client.parser import text_string_to_metric_families
from role_render import render as render_template

from tnoctl import paths

ROLE = paths.ROLES_DIR / "tno_monitoring"
SCRIPT = ROLE / "files" / "tno-rspamd-metrics.py"
rspamd = load_script(SCRIPT, "tno_rspamd_metrics")

RSPAMD_METRICS = """\
# HELP rspamd_build_info A metric with a constant '1' value labeled by version from which rspamd was built.
# TYPE rspamd_build_info gauge
rspamd_build_info{version="3.2"} 1
# HELP rspamd_config A metric with a constant '1' value labeled by id of the current config.
# TYPE rspamd_config gauge
rspamd_config{id="nzpuz9fm3jk1xncp3q136cudb3qycb7sygxjcko89ya69i8zs3879wbifxh9wfoip7ur8or6dx1crry9px"} 1
# HELP rspamd_scan_time_average Average messages scan time.
# TYPE rspamd_scan_time_average gauge
rspamd_scan_time_average 0.15881561463879001
# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.
# TYPE process_start_time_seconds gauge
process_start_time_seconds 1663651459
# HELP rspamd_read_only Whether the rspamd instance is read-only.
# TYPE rspamd_read_only gauge
rspamd_read_only 0
# HELP rspamd_scanned_total Scanned messages.
# TYPE rspamd_scanned_total counter
rspamd_scanned_total 5978
# HELP rspamd_learned_total Learned messages.
# TYPE rspamd_learned_total counter
rspamd_learned_total 5937
# HELP rspamd_spam_total Messages classified as spam.
# TYPE rspamd_spam_total counter
rspamd_spam_total 5978
# HELP rspamd_ham_total Messages classified as spam.
# TYPE rspamd_ham_total counter
rspamd_ham_total 0
# HELP rspamd_connections Active connections.
# TYPE rspamd_connections gauge
rspamd_connections 0
# HELP rspamd_control_connections_total Control connections.
# TYPE rspamd_control_connections_total gauge
rspamd_control_connections_total 45399
# HELP rspamd_pools_allocated Pools allocated.
# TYPE rspamd_pools_allocated gauge
rspamd_pools_allocated 45585
# HELP rspamd_allocated_bytes Bytes allocated.
# TYPE rspamd_allocated_bytes gauge
rspamd_allocated_bytes 60537276
# HELP rspamd_chunks_oversized Memory pools: current chunks oversized (needs extra allocation/fragmentation).
# TYPE rspamd_chunks_oversized gauge
rspamd_chunks_oversized 1550
# HELP rspamd_learns_total Total learns.
# TYPE rspamd_learns_total counter
rspamd_learns_total 9526
# HELP rspamd_actions_total Actions labelled by action type.
# TYPE rspamd_actions_total counter
rspamd_actions_total{type="reject"} 12
rspamd_actions_total{type="soft reject"} 3
rspamd_actions_total{type="rewrite subject"} 0
rspamd_actions_total{type="add header"} 5978
rspamd_actions_total{type="greylist"} 0
rspamd_actions_total{type="no action"} 0
# HELP rspamd_statfiles_revision Stat files revision.
# TYPE rspamd_statfiles_revision gauge
rspamd_statfiles_revision{symbol="BAYES_SPAM",type="redis"} 9429
rspamd_statfiles_revision{symbol="BAYES_HAM",type="redis"} 97
# HELP rspamd_statfiles_users Stat files users.
# TYPE rspamd_statfiles_users gauge
rspamd_statfiles_users{symbol="BAYES_SPAM",type="redis"} 1
# HELP rspamd_fuzzy_stat Fuzzy stat labelled by storage.
# TYPE rspamd_fuzzy_stat gauge
rspamd_fuzzy_stat{storage="rspamd.com"} 1768011131
# EOF
"""
KEPT_FAMILIES = {"rspamd_scanned_total", "rspamd_spam_total", "rspamd_ham_total", "rspamd_learned_total",
                 "rspamd_actions_total", "rspamd_connections", "rspamd_scan_time_average",
                 "rspamd_process_start_time_seconds", "tno_rspamd_up", "tno_rspamd_last_run_timestamp_seconds"}




def test_parse_keeps_rspamds_counters_under_their_own_names() -> None:
    parsed = rspamd.parse(RSPAMD_METRICS)
    assert parsed["rspamd_scanned_total"] == {"": 5978.0}
    assert parsed["rspamd_actions_total"] == {
        '{type="reject"}': 12.0, '{type="soft reject"}': 3.0, '{type="rewrite subject"}': 0.0,
        '{type="add header"}': 5978.0, '{type="greylist"}': 0.0, '{type="no action"}': 0.0}
    assert parsed["rspamd_process_start_time_seconds"] == {"": 1663651459.0}  # renamed: no clash with node_exporter
    assert "process_start_time_seconds" not in parsed
    for dropped in ("rspamd_build_info", "rspamd_config", "rspamd_statfiles_revision", "rspamd_fuzzy_stat",
                    "rspamd_allocated_bytes", "rspamd_control_connections_total", "rspamd_read_only"):
        assert dropped not in parsed


def test_render_is_valid_exposition_with_bounded_labels() -> None:
    text = rspamd.render(rspamd.parse(RSPAMD_METRICS), 1764547200.0)
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    # the client library strips _total from counter family names
    assert {s.name for f in fams.values() for s in f.samples} == KEPT_FAMILIES
    samples = exposition_samples(text)
    assert samples[("rspamd_actions_total", (("type", "soft reject"),))] == 3
    assert samples[("rspamd_scanned_total", ())] == 5978
    assert samples[("tno_rspamd_up", ())] == 1
    labels = {k for (_n, lbls) in samples for k, _v in lbls}
    assert labels == {"type"}  # no version, config id, symbol or storage label
    assert "nzpuz9" not in text and "rspamd.com" not in text and "BAYES" not in text


def test_foreign_labels_and_values_are_dropped() -> None:
    """Whatever comes in, ``type`` takes one of Rspamd's six actions and nothing else gains a label."""
    hostile = ('rspamd_actions_total{type="maire@alpha.test"} 5\n'
               'rspamd_actions_total{type="reject",user="maire@alpha.test"} 7\n'
               'rspamd_actions_total{type="reject"} notanumber\n'
               'rspamd_scanned_total{user="maire@alpha.test"} 9\n'
               'rspamd_scanned_total 4 1764547200000\n'  # an OpenMetrics timestamp is ignored
               'rspamd_actions_total{type="no action"} 4\n')
    parsed = rspamd.parse(hostile)
    assert parsed == {"rspamd_actions_total": {'{type="no action"}': 4.0}, "rspamd_scanned_total": {"": 4.0}}


def test_render_without_an_answer_says_down_and_keeps_no_counter() -> None:
    samples = exposition_samples(rspamd.render(None, 5.0))
    assert samples == {("tno_rspamd_up", ()): 0, ("tno_rspamd_last_run_timestamp_seconds", ()): 5.0}


class _Controller(BaseHTTPRequestHandler):
    """Rspamd's controller stand-in: /metrics answers the sample; with a password set, only with it."""

    password: ClassVar[str | None] = None
    seen_passwords: ClassVar[list[str | None]] = []

    def do_GET(self) -> None:
        type(self).seen_passwords.append(self.headers.get("Password"))
        if self.path != "/metrics" or (self.password and self.headers.get("Password") != self.password):
            self.send_response(403 if self.path == "/metrics" else 404)
            self.end_headers()
            return
        body = RSPAMD_METRICS.encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/openmetrics-text; version=1.0.0; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def controller() -> Iterator[tuple[str, type[_Controller]]]:
    handler = type("Controller", (_Controller,), {"password": None, "seen_passwords": []})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, check=False)


def test_main_reads_the_loopback_controller_and_writes_atomically(controller, tmp_path: Path) -> None:
    url, handler = controller
    out = tmp_path / "tno_rspamd.prom"
    res = _run("--url", f"{url}/metrics", "--out", str(out), "--password-file", str(tmp_path / "absent"))
    assert res.returncode == 0, res.stderr
    assert 'rspamd_actions_total{type="soft reject"} 3' in out.read_text()
    assert "tno_rspamd_up 1" in out.read_text()
    assert oct(out.stat().st_mode & 0o777) == "0o644" and not list(tmp_path.glob("*.tmp"))
    assert handler.seen_passwords == [None]  # no password file: no header


def test_main_sends_the_password_file_and_never_prints_it(controller, tmp_path: Path) -> None:
    url, handler = controller
    handler.password = "s3cret-controller"
    secret = tmp_path / "password"
    out = tmp_path / "tno_rspamd.prom"
    res = _run("--url", f"{url}/metrics", "--out", str(out))
    assert res.returncode == 1 and "did not answer" in res.stderr
    assert "tno_rspamd_up 0" in out.read_text() and "rspamd_actions_total" not in out.read_text()
    secret.write_text("s3cret-controller\n")
    res = _run("--url", f"{url}/metrics", "--out", str(out), "--password-file", str(secret))
    assert res.returncode == 0, res.stderr
    assert "tno_rspamd_up 1" in out.read_text()
    assert handler.seen_passwords[-1] == "s3cret-controller"
    secret.write_text("wrong\n")
    res = _run("--url", f"{url}/metrics", "--out", str(out), "--password-file", str(secret))
    assert res.returncode == 1 and "wrong" not in res.stdout + res.stderr and "s3cret" not in res.stderr


def test_main_refuses_a_non_loopback_url_and_a_foreign_answer(controller, tmp_path: Path) -> None:
    url, _handler = controller
    res = _run("--url", "http://198.18.0.11:11334/metrics", "--out", str(tmp_path / "x.prom"))
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "loopback" in res.stderr
    assert not (tmp_path / "x.prom").exists()
    res = _run("--url", f"{url}/stat", "--out", str(tmp_path / "y.prom"))  # 404
    assert res.returncode == 1 and "tno_rspamd_up 0" in (tmp_path / "y.prom").read_text()


def _timers(host: str, rspamd: bool) -> list[str]:
    """The timers tno_monitoring's vars/main.yml selects for ``host`` (Jinja, as Ansible evaluates it)."""
    import ast

    import jinja2
    role_vars = yaml.safe_load((ROLE / "vars" / "main.yml").read_text())
    context = {"inventory_hostname": host, "groups": {"mail": ["mail1"]}, "tno_monitoring_rspamd_metrics": rspamd,
               "tno_monitoring_mail_quota_metrics": True, "tno_monitoring_os_status_metrics": True}
    env = jinja2.Environment()
    on_mail = env.from_string(role_vars["__tno_monitoring_on_mail"]).render(context)
    context["__tno_monitoring_on_mail"] = on_mail == "True"
    features = ast.literal_eval(env.from_string(role_vars["__tno_monitoring_timer_features"]).render(context).strip())
    return [feature["timer"] for feature in features]


def test_units_and_task_wiring() -> None:
    variables = {"tno_monitoring_textfile_dir": "/var/lib/prometheus/node-exporter"}
    service = render_template("tno_monitoring", "tno-rspamd-metrics.service.j2", variables)
    assert ("ExecStart=/usr/bin/python3 /usr/local/lib/tno/tno-rspamd-metrics --url http://127.0.0.1:11334/metrics"
            " --out /var/lib/prometheus/node-exporter/tno_rspamd.prom"
            " --password-file /etc/tno/rspamd-controller.password") in service
    assert "Type=oneshot" in service and "After=rspamd.service" in service
    timer = render_template("tno_monitoring", "tno-rspamd-metrics.timer.j2", {})
    assert "OnUnitActiveSec=30s" in timer and "WantedBy=timers.target" in timer
    # the role's timer-driven exporters (vars/main.yml): the Rspamd reader on mail hosts only, when enabled
    assert "tno-rspamd-metrics.timer" in _timers("mail1", rspamd=True)
    assert "tno-rspamd-metrics.timer" not in _timers("mail1", rspamd=False)
    assert _timers("office1", rspamd=True) == ["tno-os-status.timer"]
    specs = yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text())["argument_specs"]["main"]["options"]
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    for name in ("tno_monitoring_rspamd_metrics", "tno_monitoring_rspamd_metrics_interval",
                 "tno_monitoring_rspamd_controller_port", "tno_monitoring_rspamd_password_file"):
        assert specs[name]["default"] == defaults[name], name
