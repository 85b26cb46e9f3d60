"""Nothing the suite does leaves the lab: the session's capture of the lab bridge, read at the end.

The `egress_capture` fixture (conftest.py) ran tcpdump on tnoctl's lab bridge from before `lab up`:
in a full `make test` it saw the lab's first boot, the fleet's deploy (packages through the apt proxy,
certificates), mail runs through Rspamd, upgrades, backups, restores and onboarding. The rules are
tnoctl.lab.egress's: no packet outside 198.18.0.0/24 (IPv6: link-local), no DNS question for a name
the lab does not own (Rspamd's maps, updates, fuzzy and RBL lookups would show here: the lab DNS is
authoritative only, a production resolver would forward them), no apt proxy request but to Debian's
mirror. Run alone, the test still covers `lab up`, a deploy and one inbound message scanned by Rspamd.

Named to run after every test that uses the fleet as deployed (test_zx_... included) and before
test_zy_lab_restart (which wipes mail2: the message below must reach a deployed mail host) and
test_zz_lab_recovery (which takes the lab down and so ends the capture).
"""

from __future__ import annotations

import uuid
from typing import Any

from test_deploy_mail import _message
from test_edge import _outside_host, _smtp_from_host

from tnoctl.lab.egress import Capture, check_file


def test_a_capture_of_the_lab_bridge_shows_no_traffic_leaving_the_lab(fleet: Any, egress_capture: Capture) -> None:
    slug = fleet.tenants_with("mail")[0]
    rcpt = fleet.mailboxes(slug)[0][0]
    token = uuid.uuid4().hex
    body = f"Bonjour,\n\nle compte rendu est sur https://www.example.com/cr-{token}.pdf et http://bit.ly/x{token[:6]}\n"
    msg = _message("mairie@outside.example", [rcpt], token, body=body)
    replies = _smtp_from_host(fleet, _outside_host(fleet), slug, "mairie@outside.example", rcpt, msg)
    assert replies["data"][0] == 250, replies  # scanned by Rspamd (URLs, SPF, DKIM, DMARC) and accepted

    assert egress_capture.running(), "tcpdump stopped before the end of the session (was the bridge removed?)"
    report = check_file(egress_capture.stop())
    assert not report.violations, f"traffic leaving the lab:\n{report.summary()}"
    # Not vacuous: the capture saw the hosts talk, resolve lab names and fetch packages via the proxy.
    assert report.connections > 0 and report.dns_questions and report.proxied_hosts, report.summary()
    print(report.summary())
