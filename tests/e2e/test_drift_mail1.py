"""Issue 8 acceptance 3: a hand-edited Postfix main.cf on mail1 is drift for mail1's tenants only.

Needs root and the deployed lab (session fixtures `lab` and `fleet`).
"""

from __future__ import annotations

import json

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tnoctl.exporter.app import build, known_from_inventory

pytestmark = [pytest.mark.root, pytest.mark.lab]

HOST = "mail1"


def _drift_metric(fleet) -> dict[tuple[str, str], float]:
    exporter = build(fleet.state_dir, known=lambda: known_from_inventory(fleet.inventory))
    text = generate_latest(exporter.registry).decode()
    return {(s.labels["tenant"], s.labels["component"]): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples
            if s.name == "tnoctl_config_drift"}


def test_hand_edit_on_mail1_is_drift_until_deploy(fleet) -> None:
    on_mail1 = sorted(t for t in fleet.tenants if fleet.mail_host(t) == HOST)
    assert on_mail1
    fleet.ssh(HOST, "sh", "-c", 'echo "# hand edit by the drift test" >> /etc/postfix/main.cf')
    try:
        rc, out, err = fleet.tnoctl("drift", "--json")  # the whole fleet: only mail1's tenants may drift
        assert rc == 1, err[-3000:]
        doc = json.loads(out)
        drifted = sorted({(t["tenant"], t["component"]) for t in doc["tenants"] if t["drift"]})
        assert drifted == [(t, "mail") for t in on_mail1]
        assert {c["host"] for c in doc["changes"]} == {HOST}
        metric = _drift_metric(fleet)
        for tenant in fleet.tenants_with("mail"):
            expected = 1.0 if tenant in on_mail1 else 0.0
            assert metric[(tenant, "mail")] == expected, (tenant, metric)
    finally:
        rc, out, err = fleet.tnoctl("deploy", "--host", HOST, "--yes")
    assert rc == 0, out + err[-3000:]
    rc, out, err = fleet.tnoctl("drift", "--json", *[a for t in on_mail1 for a in ("--tenant", t)])
    assert rc == 0, out + err[-3000:]  # the deploy converged mail1 (the others were clean in the fleet run)
    assert all(v == 0.0 for v in _drift_metric(fleet).values())
    assert "hand edit" not in fleet.ssh(HOST, "cat", "/etc/postfix/main.cf").stdout
