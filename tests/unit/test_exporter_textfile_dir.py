"""The textfile directory is one path: node_exporter (role tno_monitoring) reads where backups write.

Why: the backup agent writes ``tno_backup_<slug>.prom`` into ``tno_backup_textfile_dir``; if the
monitoring role pointed node_exporter elsewhere, backup metrics would silently vanish from Prometheus.
The same holds for role tno_acme's deploy hook and certbot.service (``tno_acme_*.prom``, TnoAcme* alerts).
"""

from __future__ import annotations

from pathlib import Path

import yaml

ROLES = Path(__file__).resolve().parents[2] / "roles"


def _defaults(role: str) -> dict:
    return yaml.safe_load((ROLES / role / "defaults" / "main.yml").read_text())


def _spec_default(role: str, name: str) -> object:
    spec = yaml.safe_load((ROLES / role / "meta" / "argument_specs.yml").read_text())
    return spec["argument_specs"]["main"]["options"][name].get("default")


def test_backup_and_monitoring_roles_agree_on_the_textfile_directory() -> None:
    monitoring = _defaults("tno_monitoring")["tno_monitoring_textfile_dir"]
    assert monitoring == _spec_default("tno_monitoring", "tno_monitoring_textfile_dir")
    backup = str(_defaults("tno_backup")["tno_backup_textfile_dir"])
    # tno_backup either has the same literal default or takes the monitoring variable
    assert backup == monitoring or "tno_monitoring_textfile_dir" in backup


def test_acme_and_monitoring_roles_agree_on_the_textfile_directory() -> None:
    monitoring = _defaults("tno_monitoring")["tno_monitoring_textfile_dir"]
    assert _defaults("tno_acme")["tno_acme_textfile_dir"] == monitoring
    assert _spec_default("tno_acme", "tno_acme_textfile_dir") == monitoring


def test_node_exporter_is_pointed_at_the_textfile_directory() -> None:
    template = (ROLES / "tno_monitoring" / "templates" / "prometheus-node-exporter.default.j2").read_text()
    assert "--collector.textfile.directory={{ tno_monitoring_textfile_dir }}" in template
