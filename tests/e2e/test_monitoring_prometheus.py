"""Issues 6 and 17 acceptance on the lab: a real Prometheus scrapes tnoctl, blackbox_exporter and node
exporters, and a real Alertmanager groups and delivers the alerts to a webhook receiver.

One module-scoped stack (tests/e2e/promlab.py): Debian's prometheus, prometheus-alertmanager and
blackbox_exporter on loopback with temporary configuration, two ``tnoctl exporter`` processes (the
fleet's state store with background probes; a copy of it made hostile, store only), blackbox, node and
Dovecot targets from ``tnoctl monitoring targets``, the node exporters deployed by role tno_monitoring,
a test-only copy of exporters/rules/tno.yml whose ``for:`` are 2 s, and the configuration of
``tnoctl monitoring alertmanager --webhook-url <the test's receiver>`` with shorter group timings.
Every process is stopped by PID at the end. The Dovecot test restarts what it stops, in a finally.
"""

from __future__ import annotations

import imaplib
import json
import shutil
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import promlab
import pytest
import yaml

from tnoctl import paths
from tnoctl.probes.targets import endpoints
from tnoctl.state.store import BackupResult, Store

REPO = Path(__file__).resolve().parents[2]
TNOCTL = str(Path(sys.executable).parent / "tnoctl")
DEADLINE = 120.0  # seconds a wait loop may take before the test fails (scrape/eval intervals are 1-2 s)


def _backed_up(fleet) -> set[str]:
    """Tenants whose first component (mail; office for an office-only tenant) has a good backup in the store."""
    first = {t.slug: t.services[0] for t in fleet.inventory.tenants}
    latest = Store(fleet.state_dir).latest_backups()
    return {t for (t, c), st in latest.items() if c == first.get(t) and st.last_success}


def _ensure_backups(fleet) -> None:
    """Every tenant has a good backup in the fleet's store (test_backup may already have made some).

    Only the first component is required (mail, or the office configuration of an office-only
    tenant): the rc of `backup run` also covers other office configuration backups, which are not
    what this test is about.
    """
    missing = sorted(set(fleet.tenants) - _backed_up(fleet))
    if not missing:
        return
    rc, out, err = fleet.tnoctl("backup", "run", *[a for s in missing for a in ("--tenant", s)])
    assert _backed_up(fleet) >= set(fleet.tenants), f"backup run -> {rc}\n{out[-3000:]}\n{err[-3000:]}"


def _hostile_copy(fleet, dest: Path) -> Path:
    """A copy of the fleet's state dir whose backups file ends with a truncated line and a stranger."""
    shutil.copytree(fleet.state_dir / "store", dest / "store")
    store = Store(dest)
    with open(store.path("backups"), "ab") as fh:
        fh.write(b'{"tenant": "' + fleet.tenants[0].encode() + b'", "component": "ma')  # a crashed writer
    store.record_backup(BackupResult("ghost-town", "mail", True, 1.0e9, 1.0, 10, 5, 5, "not in inventory"))
    return dest


def _exporter_argv(state_dir: Path, port: int, *extra: str) -> list[str]:
    return [TNOCTL, "--inventory", str(paths.LAB_INVENTORY), "--state-dir", str(state_dir),
            "--vault-password-file", str(paths.LAB_INVENTORY / "vault-password"),
            "exporter", "--listen", f"127.0.0.1:{port}", *extra]


@pytest.fixture(scope="module")
def stack(fleet, backups, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """Prometheus + blackbox + tnoctl exporters, up and scraping; stopped by PID at module end."""
    _ensure_backups(fleet)
    work = tmp_path_factory.mktemp("promlab")
    procs = promlab.Stack(work)
    webhook = promlab.WebhookReceiver()
    try:
        file_sd = work / "file_sd"
        rc, _out, err = fleet.tnoctl("monitoring", "targets", "--out", str(file_sd))
        assert rc == 0, err
        eps = endpoints(fleet.inventory)
        hosts = work / "hosts"
        hosts.write_text(promlab.hosts_file((ep.server_name, ep.address) for ep in eps))
        bb_conf = work / "blackbox.yml"
        bb_conf.write_text(promlab.blackbox_config(REPO / "exporters/blackbox/blackbox.yml", fleet.ca_cert))
        rules = work / "tno-fast.yml"
        rules.write_text(promlab.fast_rules((REPO / "exporters/rules/tno.yml").read_text()))

        am_conf = work / "alertmanager.yml"
        rc, _out, err = fleet.tnoctl("monitoring", "alertmanager", "--webhook-url", webhook.url, "--out", str(am_conf))
        assert rc == 0, err
        am_conf.write_text(yaml.safe_dump(promlab.fast_alertmanager(yaml.safe_load(am_conf.read_text())),
                                          sort_keys=False))
        check = subprocess.run([promlab.AMTOOL, "check-config", str(am_conf)], capture_output=True, text=True,
                               check=False)
        assert check.returncode == 0, check.stdout + check.stderr

        ports = {name: promlab.free_port() for name in ("prom", "bb", "tnoctl", "hostile", "am")}
        procs.start("alertmanager", promlab.alertmanager_argv(am_conf, work / "am-data", ports["am"]))
        procs.start("blackbox", promlab.blackbox_argv(bb_conf, hosts, ports["bb"]))
        tnoctl = procs.start("tnoctl", _exporter_argv(fleet.state_dir, ports["tnoctl"], "--probe-interval", "5"))
        hostile = procs.start("hostile", _exporter_argv(_hostile_copy(fleet, work / "hostile"), ports["hostile"],
                                                        "--no-probes"))
        nodes = [f"{h.address}:9100" for h in fleet.inventory.hosts.values()]
        dovecots = [f"{h.address}:9900" for h in fleet.inventory.hosts.values() if "mail" in h.groups]
        config = promlab.prometheus_config(
            rules=rules, file_sd_dir=file_sd, blackbox=f"127.0.0.1:{ports['bb']}",
            alertmanager=f"127.0.0.1:{ports['am']}",
            tnoctl={"tnoctl": f"127.0.0.1:{ports['tnoctl']}", "tnoctl_hostile": f"127.0.0.1:{ports['hostile']}"})
        prom_conf = work / "prometheus.yml"
        prom_conf.write_text(yaml.safe_dump(config, sort_keys=False))
        check = subprocess.run([promlab.PROMTOOL, "check", "config", str(prom_conf)], capture_output=True,
                               text=True, check=False)
        assert check.returncode == 0, check.stdout + check.stderr
        prom = procs.start("prometheus", promlab.prometheus_argv(prom_conf, work / "data", ports["prom"]))
        api = promlab.PromAPI(f"http://127.0.0.1:{ports['prom']}")
        promlab.wait_for("prometheus ready", api.ready, DEADLINE)
        promlab.wait_for("alertmanager ready", lambda: promlab.http_get(f"http://127.0.0.1:{ports['am']}/-/ready"),
                         DEADLINE)
        for proc in (tnoctl, hostile):
            url = f"http://127.0.0.1:{ports[proc.name]}/metrics"
            promlab.wait_for(f"{proc.name} exporter (log: {proc.tail(300)})",
                             lambda p=proc, u=url: p.popen.poll() is None and "tnoctl_up" in promlab.http_get(u),
                             DEADLINE)
        yield {"api": api, "endpoints": eps, "procs": procs, "prom": prom, "ports": ports,
               "nodes": nodes, "dovecots": dovecots, "webhook": webhook}
    finally:
        procs.stop()
        webhook.stop()


def _proc(stack: dict, name: str) -> promlab.Proc:
    return next(p for p in stack["procs"].procs if p.name == name)


def test_1_every_endpoint_up_node_exporters_and_backup_metrics(fleet, stack) -> None:
    api: promlab.PromAPI = stack["api"]
    want = {(ep.tenant, ep.component, ep.service) for ep in stack["endpoints"]}
    assert {t for t, _c, _s in want} == set(fleet.tenants)

    def all_up() -> bool:
        got = {(m["tenant"], m["component"], m["service"]): v for m, v in api.query('probe_success{job="blackbox"}')}
        return set(got) == want and all(v == 1 for v in got.values())

    promlab.wait_for(f"probe_success == 1 for {len(want)} endpoints; blackbox log: "
                     f"{_proc(stack, 'blackbox').tail(500)}", all_up, DEADLINE)
    # the node exporters of role tno_monitoring, with the textfile collector working
    promlab.wait_for("every node exporter up", lambda: sorted(
        m["instance"] for m, v in api.query('up{job="node"}') if v == 1) == sorted(stack["nodes"]), DEADLINE)
    errors = api.query('node_textfile_scrape_error{job="node"}')
    assert len(errors) == len(stack["nodes"]) and all(v == 0 for _m, v in errors)
    # Dovecot's own OpenMetrics listener (role tno_monitoring's drop-in), with the auth counter the
    # TnoMailAuthFailuresHigh alert reads
    promlab.wait_for("every Dovecot stats listener up", lambda: sorted(
        m["instance"] for m, v in api.query('up{job="dovecot"}') if v == 1) == sorted(stack["dovecots"]), DEADLINE)
    promlab.wait_for("Dovecot counts the probes' logins", lambda: {
        m["instance"] for m, v in api.query('dovecot_auth_successes_total{job="dovecot"}') if v > 0
    } == set(stack["dovecots"]), DEADLINE)
    # every target carries its inventory host (file_sd of `tnoctl monitoring targets`): grouping, inhibition
    hosts = {m["instance"]: m.get("host") for m, _v in api.query('up{job=~"node|dovecot"}')}
    by_address = {f"{h.address}:{port}": name for name, h in fleet.inventory.hosts.items() for port in (9100, 9900)}
    assert hosts and all(by_address[i] == h for i, h in hosts.items()), hosts
    assert {m.get("host") for m, _v in api.query('probe_success{job="blackbox"}')} == {
        ep.host for ep in stack["endpoints"]}
    # role tno_monitoring turns node_exporter's systemd collector on (TnoSystemdUnitFailed)
    promlab.wait_for("systemd unit states of every host", lambda: {
        m["host"] for m, _v in api.query('node_systemd_unit_state{job="node",name="ssh.service",state="active"}')
    } == set(fleet.inventory.hosts), DEADLINE)
    # ... and writes each mail tenant's quota usage for the textfile collector (TnoMailboxNearQuota)
    promlab.wait_for("quota usage of every tenant", lambda: {
        m["tenant"] for m, v in api.query('tno_mail_quota_mailboxes{job="node"}') if v > 0}
        == set(fleet.tenants_with("mail")),
        DEADLINE)
    # ... and Rspamd's own counters, read from its loopback controller (TnoMailOutboundRateLimited,
    # TnoMailRejectRateJump): every mail host's Rspamd answered and exports its six actions
    mail_hosts = {fleet.mail_host(s) for s in fleet.tenants_with("mail")}
    promlab.wait_for("Rspamd's counters of every mail host", lambda: {
        m["host"] for m, v in api.query('tno_rspamd_up{job="node"}') if v == 1} >= mail_hosts, DEADLINE)
    actions = api.query('rspamd_actions_total{job="node"}')
    assert {(m["host"], m["type"]) for m, _v in actions if m["host"] in mail_hosts} == {
        (h, t) for h in mail_hosts for t in ("reject", "soft reject", "rewrite subject", "add header", "greylist",
                                             "no action")}, actions
    # tnoctl's backup metrics for every tenant, from the state store
    ok = {m["tenant"] for m, v in api.query('tnoctl_backup_last_success_timestamp_seconds{job="tnoctl"}') if v > 0}
    assert ok >= set(fleet.tenants)
    sizes = {m["tenant"] for m, _v in api.query('tnoctl_backup_size_bytes{job="tnoctl",kind="original"}')}
    assert sizes >= set(fleet.tenants)
    # the exporter itself is healthy and its background probes ran
    promlab.wait_for("tnoctl_up == 1", lambda: [v for _m, v in api.query('tnoctl_up{job="tnoctl"}')] == [1.0],
                     DEADLINE)
    promlab.wait_for("cached imap probes of every tenant", lambda: {
        m["tenant"] for m, v in api.query('tnoctl_probe_success{job="tnoctl",check="imaps_login"}') if v == 1
    } >= set(fleet.tenants_with("mail")), DEADLINE)


def test_2_promtool_check_metrics_on_a_scrape(stack) -> None:
    text = promlab.http_get(f"http://127.0.0.1:{stack['ports']['tnoctl']}/metrics")
    assert "tnoctl_backup_last_success_timestamp_seconds" in text
    out = subprocess.run([promlab.PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True,
                         check=False)
    assert (out.returncode, out.stdout + out.stderr) == (0, "")


def test_3_hostile_store_is_reported_not_fatal(fleet, stack) -> None:
    api: promlab.PromAPI = stack["api"]
    job = 'job="tnoctl_hostile"'
    promlab.wait_for("hostile exporter scraped", lambda: api.query(f"up{{{job}}} == 1"), DEADLINE)
    assert [v for _m, v in api.query(f"tnoctl_up{{{job}}}")] == [0.0]
    assert [v for _m, v in api.query(f'tnoctl_collector_success{{{job},collector="backups"}}')] == [0.0]
    assert [v for _m, v in api.query(f'tnoctl_store_invalid_lines{{{job},kind="backups"}}')] == [1.0]
    assert [v for _m, v in api.query(f'tnoctl_store_unknown_tenant_records{{{job},kind="backups"}}')] == [1.0]
    assert not api.query(f'tnoctl_backup_last_success_timestamp_seconds{{{job},tenant="ghost-town"}}')
    # the other metrics still come: every real tenant's backup
    ok = {m["tenant"] for m, v in api.query(f"tnoctl_backup_last_success_timestamp_seconds{{{job}}}") if v > 0}
    assert ok >= set(fleet.tenants)


def test_4_mail_round_trip_probe_on_the_lab(fleet) -> None:
    rc, out, err = fleet.tnoctl("status", "--json", "--roundtrip", "--no-queue")
    doc = json.loads(out)
    trips = {c["tenant"]: c for c in doc["checks"] if c["check"] == "roundtrip"}
    assert set(trips) == set(fleet.tenants_with("mail")), err
    failed = {t: c["detail"] for t, c in trips.items() if not c["ok"]}
    assert not failed
    assert all(0 < c["value"] < 60 for c in trips.values())
    assert rc == 0, [c for c in doc["components"] if c["state"] == "critical"]
    # the probe cleans up after itself: no probe message is left in a canary INBOX
    for slug in fleet.tenants_with("mail"):
        address, _pw = fleet.canary_mailbox(slug)
        local, domain = address.split("@")
        found = fleet.ssh(fleet.mail_host(slug), "grep", "-rl", "X-Tnoctl-Probe",
                          f"/srv/vmail/{domain}/{local}/cur", f"/srv/vmail/{domain}/{local}/new", check=False)
        assert found.stdout == "", f"{slug}: probe messages left behind"


def _dovecot_units(fleet, host: str) -> list[str]:
    """dovecot.service plus dovecot.socket when socket activation is on (else a stop would not stick)."""
    active = fleet.ssh(host, "systemctl", "is-active", "dovecot.socket", check=False).stdout.strip()
    return ["dovecot.socket", "dovecot.service"] if active == "active" else ["dovecot.service"]


def _down_tenants(doc: dict, checks: set[str]) -> set[str]:
    return {c["tenant"] for c in doc["checks"] if c["check"] in checks and not c["ok"]}


def test_5_dovecot_down_on_one_host_status_and_alert(fleet, stack) -> None:
    api: promlab.PromAPI = stack["api"]
    host = fleet.mail_host(fleet.tenants_with("mail")[0])
    affected = {t for t in fleet.tenants if fleet.mail_host(t) == host}
    assert affected != set(fleet.tenants_with("mail"))  # the lab has two mail hosts: the others must stay quiet
    assert not api.alerts("TnoTenantEndpointDown")
    units = _dovecot_units(fleet, host)
    webhook: promlab.WebhookReceiver = stack["webhook"]
    before = {a["alertname"] for a in api.alerts() if a.get("host") == host}  # e.g. a certificate warning
    t0 = time.monotonic()
    fleet.ssh(host, "systemctl", "stop", *units)
    try:
        rc, out, _err = fleet.tnoctl("status", "--json", "--no-queue")
        doc = json.loads(out)
        assert rc == 1
        assert _down_tenants(doc, {"imap", "imaps"}) == affected
        critical = {(c["tenant"], c["component"]) for c in doc["components"] if c["state"] == "critical"}
        assert critical == {(t, "mail") for t in affected}

        def firing() -> set[str]:
            return {a["tenant"] for a in api.alerts("TnoTenantEndpointDown")}

        promlab.wait_for(f"TnoTenantEndpointDown firing for exactly {sorted(affected)}",
                         lambda: firing() == affected, DEADLINE)
        services = {a["service"] for a in api.alerts("TnoTenantEndpointDown")}
        assert {"imap", "imaps"} <= services
        _one_grouped_notification(webhook, t0, host, affected, before)
    finally:
        fleet.ssh(host, "systemctl", "start", *reversed(units))
    promlab.wait_for("TnoTenantEndpointDown resolved", lambda: not api.alerts("TnoTenantEndpointDown")
                     and not api.alerts("TnoTenantEndpointDown", state="pending"), DEADLINE)
    rc, out, _err = fleet.tnoctl("status", "--json", "--no-queue")
    assert _down_tenants(json.loads(out), {"imap", "imaps"}) == set()
    assert rc == 0


def _endpoint_down_notifications(webhook: promlab.WebhookReceiver, t0: float) -> list[promlab.Notification]:
    return [n for n in webhook.since(t0) if n.firing("TnoTenantEndpointDown")]


def _one_grouped_notification(webhook: promlab.WebhookReceiver, t0: float, host: str, affected: set[str],
                              before: set[str]) -> None:
    """Alertmanager (generated config) delivers ONE notification for the host, listing every tenant and service."""
    promlab.wait_for(f"a webhook notification for {host} (firing on {host} before the stop: {sorted(before)})",
                     lambda: _endpoint_down_notifications(webhook, t0), DEADLINE)
    time.sleep(20)  # longer than group_wait: a second notification for the same outage would have come by now
    notes = _endpoint_down_notifications(webhook, t0)
    assert len(notes) == 1, [n.body for n in notes]
    body = notes[0].body
    assert body["groupLabels"] == {"host": host}, body["groupLabels"]
    down = {(a["tenant"], a["service"]) for a in notes[0].firing("TnoTenantEndpointDown")}
    assert down == {(t, s) for t in affected for s in ("imap", "imaps")}, down
    names = {a["alertname"] for a in notes[0].firing()}
    assert not names & {"TnoTLSCertificateExpiring", "TnoTenantEndpointSlow", "TnoOfficeDegraded"}, names
    assert all(a["runbook_url"].startswith("https://") for a in (x["annotations"] for x in body["alerts"]))
    outage = {"TnoTenantEndpointDown", "TnoTenantEndpointSlow", "TnoTLSCertificateExpiring", "TnoOfficeDegraded"}
    others = [n.body["groupLabels"] for n in webhook.since(t0) if n is not notes[0] and any(
        a.get("tenant") in affected and a["alertname"] in outage for a in n.firing())]
    assert not others, others  # no other notification about this outage (one per tenant or service)


def test_6_dovecot_counts_authentication_failures(fleet, stack) -> None:
    """TnoMailAuthFailuresHigh has data: a refused IMAP login shows in dovecot_auth_failures_total of its host."""
    api: promlab.PromAPI = stack["api"]
    slug = fleet.tenants_with("mail")[0]
    host = fleet.mail_host(slug)
    address, _password = fleet.canary_mailbox(slug)
    query = f'dovecot_auth_failures_total{{job="dovecot",host="{host}"}}'
    start = promlab.wait_for("the auth failure counter is scraped", lambda: api.query(query), DEADLINE)[0][1]
    context = ssl.create_default_context(cafile=str(fleet.ca_cert))
    imap = _PinnedIMAP(fleet.inventory.hosts[host].address, f"mail.{address.rsplit('@', 1)[1]}", context)
    try:
        with pytest.raises(imaplib.IMAP4.error):
            imap.login(address, "not-the-password")
    finally:
        imap.shutdown()
    promlab.wait_for("dovecot_auth_failures_total increases", lambda: api.query(query)[0][1] > start, DEADLINE)


class _PinnedIMAP(imaplib.IMAP4_SSL):
    """IMAPS to a lab address while TLS verifies a service name (the lab has no DNS)."""

    def __init__(self, address: str, server_name: str, context: ssl.SSLContext) -> None:
        self._address = address
        super().__init__(server_name, 993, ssl_context=context, timeout=15)

    def _create_socket(self, timeout: float | None) -> socket.socket:
        sock = socket.create_connection((self._address, self.port), timeout)
        return self.ssl_context.wrap_socket(sock, server_hostname=self.host)
