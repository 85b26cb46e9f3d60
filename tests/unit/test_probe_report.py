"""`tnoctl status`: folding results into the table, exit logic, CLI rendering with injected results,
and the inventory → probe targets walk."""

from __future__ import annotations

import io
import json
from types import SimpleNamespace as NS

import pytest

from tnoctl.cli import main
from tnoctl.cli.context import AppContext
from tnoctl.probes import report, targets
from tnoctl.probes.base import Probe, ProbeResult

RESULTS = [
    ProbeResult("alpha", "mail", "smtp", True, 0.1),
    ProbeResult("alpha", "mail", "imap", False, 3.0, "ConnectionRefusedError: refused"),
    ProbeResult("alpha", "office", "https", True, 0.2),
    ProbeResult("beta", "mail", "smtp_certificate", False, 0.1, "certificate expires in 12.0 days", severity="warning"),
    ProbeResult("beta", "office", "office_discovery", True, 0.3),
]


def test_fold_worst_severity_and_reasons() -> None:
    rows = {(r.tenant, r.component): r for r in report.fold(RESULTS)}
    assert rows[("alpha", "mail")].state == "critical"
    assert rows[("alpha", "mail")].reasons == ["imap: ConnectionRefusedError: refused"]
    assert rows[("alpha", "office")].state == "ok"
    assert rows[("beta", "mail")].state == "warning"
    assert report.exit_code(rows.values()) == 1
    assert report.exit_code(report.fold(RESULTS[2:])) == 0  # warnings alone do not fail


def _run(monkeypatch, results, *args: str) -> tuple[int, str]:
    monkeypatch.setattr("tnoctl.actions.reports.gather", lambda env, request: results)
    out = io.StringIO()
    app = AppContext(stdout=out, stderr=io.StringIO())
    return main(["status", *args], app), out.getvalue()


def test_status_table_and_exit_code(monkeypatch) -> None:
    rc, out = _run(monkeypatch, RESULTS)
    assert rc == 1
    assert "CRITICAL" in out and "imap: ConnectionRefusedError" in out and "WARNING" in out


def test_status_json(monkeypatch) -> None:
    rc, out = _run(monkeypatch, RESULTS[2:], "--json")
    doc = json.loads(out)
    assert rc == 0 and doc["state"] == "warning"
    assert {c["tenant"] for c in doc["components"]} == {"alpha", "beta"}
    assert len(doc["checks"]) == 3


def test_status_help_has_example(capsys) -> None:
    assert main(["status", "--help"], AppContext()) == 0
    assert "Example:" in capsys.readouterr().out


def _inventory():
    hosts = {"mail1": NS(address="198.18.0.11"), "office1": NS(address="198.18.0.13")}
    alpha = NS(slug="alpha", domains=["alpha.test", "alt.test"], services=["mail", "office"],
               placement=NS(mail="mail1", office="office1"),
               mailboxes=[NS(local="alice", domain=None, password_vault="tno_vault_alpha_alice"),
                          NS(local="canary", domain=None, password_vault="tno_vault_alpha_canary")])
    beta = NS(slug="beta", domains=["beta.test"], services=["mail"], placement=NS(mail="mail1", office=None),
              mailboxes=[])
    return NS(tenants=[alpha, beta], hosts=hosts)


def test_endpoints_use_address_and_tenant_names() -> None:
    eps = targets.endpoints(_inventory())
    assert [(e.tenant, e.service) for e in eps] == [
        ("alpha", "smtp"), ("alpha", "submission"), ("alpha", "imap"), ("alpha", "imaps"), ("alpha", "https"),
        ("beta", "smtp"), ("beta", "submission"), ("beta", "imap"), ("beta", "imaps")]
    https = next(e for e in eps if e.service == "https")
    assert (https.address, https.port, https.server_name) == ("198.18.0.13", 443, "office.alpha.test")
    assert targets.endpoints(_inventory(), ["beta"])[0].server_name == "mail.beta.test"


def test_canary_password_comes_from_the_named_vault_variable() -> None:
    asked = []

    def secrets(name: str) -> str | None:
        asked.append(name)
        return "s3cret"

    probes = targets.network_probes(_inventory(), targets.ProbeOptions(roundtrip=True), secrets, ["alpha"])
    assert set(asked) == {"tno_vault_alpha_canary"}
    checks = sorted(p.check for p in probes)
    assert checks == ["https", "imap", "imaps", "office", "roundtrip", "smtp", "submission"]
    assert targets.canary(_inventory().tenants[1]) is None


def test_queue_probes_one_per_mail_host() -> None:
    probes = targets.queue_probes(_inventory(), run=lambda h, a, t: "")
    assert len(probes) == 1 and probes[0].tenants == ("alpha", "beta")
    res = probes[0].run(1.0)
    assert {r.tenant for r in res} == {"alpha", "beta"} and all(r.ok for r in res)


@pytest.mark.parametrize("state,rank", [("ok", 0), ("warning", 1), ("critical", 2)])
def test_rank_order(state: str, rank: int) -> None:
    assert report.RANK[state] == rank


def test_a_probe_is_immutable_and_its_timeout_fails_every_tenant_it_reports_for():
    """Probe is a named tuple (cheap to build 210,000 per round): fields fixed, defaults kept."""
    probe = Probe("t1", "mail", "queue", lambda timeout: [], 20.0, "warning", ("t1", "t2"))
    with pytest.raises(AttributeError):
        probe.tenant = "t3"  # type: ignore[misc]
    assert Probe("t1", "mail", "smtp", probe.run).timeout == 10.0
    assert Probe("t1", "mail", "smtp", probe.run).severity == "critical"
    assert [(r.tenant, r.ok, r.severity) for r in probe.failed("timeout", 20.0)] == [
        ("t1", False, "warning"), ("t2", False, "warning")]
