"""Dashboards (and alert rules) only query metrics that exist: tnoctl's own, from a full synthetic
scrape, or the documented names of blackbox_exporter, node_exporter, Dovecot and Prometheus itself."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.unit.test_exporter import NOW, fill
from tnoctl import paths
from tnoctl.exporter import app as exporter_app
from tnoctl.probes.base import ProbeResult

DASHBOARDS = sorted((paths.PROJECT_ROOT / "exporters" / "dashboards").glob("*.json"))
EXTERNAL = {
    # Prometheus itself
    "up", "ALERTS", "ALERTS_FOR_STATE",
    # blackbox_exporter 0.23 (tcp/http probers)
    "probe_success", "probe_duration_seconds", "probe_ssl_earliest_cert_expiry", "probe_http_status_code",
    "probe_dns_lookup_time_seconds", "probe_tls_version_info", "probe_ssl_last_chain_expiry_timestamp_seconds",
    # node_exporter
    "node_filesystem_avail_bytes", "node_filesystem_size_bytes", "node_load1", "node_memory_MemAvailable_bytes",
    "node_textfile_scrape_error", "node_systemd_unit_state",
    # Dovecot OpenMetrics (metric auth_failures { filter = event=auth_request_finished AND success=no })
    "dovecot_auth_failures_total",
    # role tno_monitoring's quota textfile (roles/tno_monitoring/files/tno-mail-quota-metrics.py)
    "tno_mail_quota_used_bytes", "tno_mail_quota_limit_bytes", "tno_mail_quota_mailbox_max_usage_ratio",
    "tno_mail_quota_mailboxes", "tno_mail_quota_last_run_timestamp_seconds",
    # role tno_monitoring's OS status textfile (roles/tno_monitoring/files/tno-os-status-metrics.py)
    "tno_os_reboot_required", "tno_os_upgrades_pending", "tno_os_status_last_run_timestamp_seconds",
    # role tno_monitoring's Rspamd textfile (roles/tno_monitoring/files/tno-rspamd-metrics.py; Rspamd's own names)
    "rspamd_actions_total", "rspamd_scanned_total", "tno_rspamd_up", "tno_rspamd_last_run_timestamp_seconds",
    # role tno_acme's deploy hook and certbot.service drop-in (tests/unit/test_role_acme_hook.py checks the writer)
    "tno_acme_deploy_hook_success", "tno_acme_renew_success", "tno_acme_certificate_expiry_timestamp_seconds",
}
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset",
            "inf", "nan"}


def metric_names(expr: str) -> set[str]:
    """Metric names referenced by a PromQL expression (labels, functions, keywords stripped)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # range selectors
    names = set()
    for m in re.finditer(r"(?<![\w.$])([A-Za-z_:][A-Za-z0-9_:]*)\s*(\()?", expr):
        name, call = m.group(1), m.group(2)
        if call or name.lower() in KEYWORDS:
            continue
        names.add(name)
    return names


def test_metric_names_parser() -> None:
    assert metric_names('topk(20, time() - tnoctl_backup_last_success_timestamp_seconds{tenant="$t"}) / 86400') == {
        "tnoctl_backup_last_success_timestamp_seconds"}
    assert metric_names("sum by (instance) (rate(dovecot_auth_failures_total[5m])) > 1") == {
        "dovecot_auth_failures_total"}
    assert metric_names('a == 1 and on (instance) b{x=~"y|z"}') == {"a", "b"}


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> set[str]:
    """Every family name of a full synthetic scrape (store of every kind + every cached probe kind)."""
    state = tmp_path_factory.mktemp("state")
    fill(state)
    exp = exporter_app.build(state, lambda: {"alpha": ("mail", "office")}, probes=lambda: [])
    for r in (ProbeResult("alpha", "mail", "queue", True, 0.1, "", 1, {"messages.deferred": 1.0,
                                                                        "oldest_age_seconds.deferred": 5.0}),
              ProbeResult("alpha", "mail", "smtp_certificate", True, 0.1, "", 30, {"not_after_timestamp_seconds": NOW}),
              ProbeResult("alpha", "mail", "roundtrip", True, 0.7, "", 0.7)):
        exp.cache.put(r, NOW)
    exp.cache.finish_round(NOW, 1.0)
    return {s.name for fam in text_string_to_metric_families(exp.collector.render()) for s in fam.samples}


def _dashboard_exprs(path: Path) -> list[str]:
    doc = json.loads(path.read_text())
    exprs = [t["expr"] for p in doc["panels"] for t in p.get("targets", [])]
    for var in doc.get("templating", {}).get("list", []):
        query = var.get("query")
        text = query.get("query", "") if isinstance(query, dict) else ""
        m = re.match(r"label_values\((\w+),", text)
        if m:
            exprs.append(m.group(1))
    return exprs


def test_dashboards_exist_with_tenant_variable() -> None:
    names = {p.name for p in DASHBOARDS}
    assert {"tno-fleet.json", "tno-tenant.json"} <= names
    tenant = json.loads((paths.PROJECT_ROOT / "exporters" / "dashboards" / "tno-tenant.json").read_text())
    assert "tenant" in {v["name"] for v in tenant["templating"]["list"]}
    assert all('tenant="$tenant"' in t["expr"] for p in tenant["panels"] for t in p["targets"])


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_queries_use_existing_metrics(path: Path, exported: set[str]) -> None:
    doc = json.loads(path.read_text())
    ids = [p["id"] for p in doc["panels"]]
    assert len(ids) == len(set(ids)), "duplicate panel ids"
    exprs = _dashboard_exprs(path)
    assert exprs
    unknown = {n for e in exprs for n in metric_names(e)} - exported - EXTERNAL
    assert not unknown, f"{path.name} queries metrics nobody exports: {sorted(unknown)}"


def test_alert_rules_use_existing_metrics(exported: set[str]) -> None:
    doc = yaml.safe_load((paths.PROJECT_ROOT / "exporters" / "rules" / "tno.yml").read_text())
    recorded = {r["record"] for g in doc["groups"] for r in g["rules"] if "record" in r}
    unknown = {n for g in doc["groups"] for r in g["rules"] for n in metric_names(r["expr"])} - exported - EXTERNAL
    unknown -= recorded
    assert not unknown, f"rules query metrics nobody exports: {sorted(unknown)}"
