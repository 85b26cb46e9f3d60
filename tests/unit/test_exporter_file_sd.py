"""Blackbox file_sd targets, the shipped blackbox modules and the example Prometheus config."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.unit.test_probe_report import _inventory
from tnoctl import paths
from tnoctl.exporter.file_sd import MODULES, groups, host_groups
from tnoctl.probes.targets import endpoints

EXPORTERS = paths.PROJECT_ROOT / "exporters"


def test_groups_by_name_and_by_address() -> None:
    by_name = groups(endpoints(_inventory()))
    smtp = by_name["blackbox-smtp_starttls.json"]
    assert {"targets": ["mail.alpha.test:25"], "labels": {
        "tenant": "alpha", "component": "mail", "service": "smtp", "module": "smtp_starttls", "host": "mail1",
        "server_name": "mail.alpha.test", "__param_module": "smtp_starttls"}} in smtp
    assert any(g["targets"] == ["mail.beta.test:587"] for g in smtp)  # submission shares the module
    (https,) = by_name["blackbox-https_office.json"]
    assert https["targets"] == ["https://office.alpha.test/hosting/discovery"]
    by_addr = groups(endpoints(_inventory()), by_address=True)
    (https,) = by_addr["blackbox-https_office.json"]
    assert https["targets"] == ["https://198.18.0.13/hosting/discovery"]
    assert https["labels"]["__param_hostname"] == "office.alpha.test"
    assert by_addr["blackbox-imaps_tls.json"][0]["targets"] == ["198.18.0.11:993"]


def test_every_module_is_defined_in_blackbox_yml() -> None:
    modules = yaml.safe_load((EXPORTERS / "blackbox" / "blackbox.yml").read_text())["modules"]
    assert set(MODULES.values()) <= set(modules)
    assert all(m.get("tcp", m.get("http", {})).get("tls_config", {}).get("ca_file") for m in modules.values())


@pytest.mark.skipif(shutil.which("prometheus-blackbox-exporter") is None, reason="prometheus-blackbox-exporter absent")
def test_blackbox_config_check() -> None:
    res = subprocess.run(["prometheus-blackbox-exporter", f"--config.file={EXPORTERS / 'blackbox' / 'blackbox.yml'}",
                          "--config.check"], capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr
    assert "Config file is ok" in res.stderr + res.stdout


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool absent")
def test_prometheus_example_config_check_with_generated_targets(tmp_path: Path) -> None:
    conf = tmp_path / "prometheus" / "prometheus.yml"
    conf.parent.mkdir()
    shutil.copy(EXPORTERS / "prometheus" / "prometheus.yml", conf)
    (tmp_path / "rules").mkdir()
    shutil.copy(EXPORTERS / "rules" / "tno.yml", tmp_path / "rules" / "tno.yml")
    sd = conf.parent / "file_sd"
    sd.mkdir()
    inv = _inventory()
    for host in inv.hosts.values():
        host.groups = {"mail"}
    for name, body in {**groups(endpoints(inv), by_address=True), **host_groups(inv)}.items():
        (sd / name).write_text(json.dumps(body))
    res = subprocess.run(["promtool", "check", "config", str(conf)], capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "WARNING" not in res.stdout + res.stderr  # the file_sd files are found and valid


def test_monitoring_targets_cli_writes_files(tmp_path: Path) -> None:
    import io

    from tnoctl.cli import main
    from tnoctl.cli.context import AppContext

    err = io.StringIO()
    app = AppContext(stdout=io.StringIO(), stderr=err)
    rc = main(["--inventory", str(paths.LAB_INVENTORY), "--state-dir", str(tmp_path / "state"), "monitoring",
               "targets", "--by-address", "--out", str(tmp_path / "sd")], app)
    assert rc == 0, err.getvalue()
    files = sorted(p.name for p in (tmp_path / "sd").iterdir())
    assert files == sorted([f"blackbox-{m}.json" for m in set(MODULES.values())] + ["dovecot.json", "node.json"])
    node = json.loads((tmp_path / "sd" / "node.json").read_text())
    assert {"targets": ["198.18.0.11:9100"], "labels": {"host": "mail1"}} in node and len(node) == 5
    dovecot = json.loads((tmp_path / "sd" / "dovecot.json").read_text())
    assert [g["labels"]["host"] for g in dovecot] == ["mail1", "mail2"]
    groups_ = [g for f in (tmp_path / "sd").glob("blackbox-*.json") for g in json.loads(f.read_text())]
    assert groups_ and all(g["labels"]["tenant"] and g["labels"]["__param_module"] for g in groups_)
    assert all(g["targets"][0].split("//")[-1].startswith("198.18.0.") for g in groups_)
