"""No mail lost during a rolling upgrade of the mail hosts (issue 7, acceptance 5), against the lab.

Why: the mail role's upgrade really restarts Postfix and Dovecot, one host at a time. While
``tnoctl upgrade mail --to 2`` rolls over mail1 then mail2, a sender (tests/e2e/mailflood.py)
submits messages to mailboxes on both hosts (same-host and host-to-host routes), retrying on
connection errors and 4xx like any client. Afterwards every message that got its 250 must be in
its recipient's INBOX exactly once, nothing may have bounced, and release 2's settings must be live.
The test then rolls back to release 1 through the CLI (what the lab had), deletes its messages,
and leaves the platform pin untouched (``--no-pin``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import mailflood
import pytest
from mailflood import Endpoint, Route, Sender

from tnoctl import paths
from tnoctl.probes.tls import client_context

pytestmark = [pytest.mark.root, pytest.mark.lab]

MIN_MESSAGES = 200
"""The acceptance criterion: at least this many messages accepted during the rollout."""
WARMUP_MESSAGES = 20
"""Accepted before the upgrade starts, so the flood is in full swing when the first host restarts."""
SEND_INTERVAL = 0.05
"""Pause between two messages (seconds): a steady flood over the whole rollout (~10 messages/s in the lab)."""
DRAIN_DEADLINE = 300.0
"""How long the queues of both hosts may take to empty after the rollout (flushed every poll)."""
BASE_RELEASE, TARGET_RELEASE = "1", "2"
PLATFORM_FILE = paths.LAB_INVENTORY / "group_vars" / "all" / "platform.yml"


# ---------------------------------------------------------------- lab helpers


def _mail_hosts(fleet: Any) -> list[str]:
    return sorted({fleet.mail_host(slug) for slug in fleet.tenants_with("mail")})


def _endpoint(fleet: Any, slug: str) -> Endpoint:
    return Endpoint(fleet.address(fleet.mail_host(slug)), f"mail.{fleet.domain(slug)}")


def _release(fleet: Any, host: str) -> str:
    return fleet.ssh(host, "cat", "/etc/tno/mail-release", check=False).stdout.strip()


def _rollout(fleet: Any, release: str) -> tuple[int, str, str]:
    """``tnoctl upgrade mail --to RELEASE`` over every mail host, one at a time, without pinning it."""
    # with the default safety snapshot: a tagged borg archive of each tenant's mail before its host restarts
    return fleet.tnoctl("upgrade", "mail", "--to", release, "--waves", "1,100%", "--no-pin", "--yes")


def _routes(fleet: Any) -> list[Route]:
    """Per tenant: its first mailbox submits to its second (same host) and to a mailbox on the other host."""
    by_host: dict[str, list[str]] = {}
    for slug in fleet.tenants_with("mail"):
        by_host.setdefault(fleet.mail_host(slug), []).append(slug)
    hosts = sorted(by_host)
    routes = []
    for index, host in enumerate(hosts):
        peers = by_host[hosts[(index + 1) % len(hosts)]]
        for position, slug in enumerate(by_host[host]):
            sender, password = fleet.mailboxes(slug)[0]
            remote = fleet.mailboxes(peers[position % len(peers)])[2][0]
            for recipient in (fleet.mailboxes(slug)[1][0], remote):
                routes.append(Route(_endpoint(fleet, slug), sender, password, recipient))
    return routes


def _login_of(fleet: Any, address: str) -> tuple[str, tuple[str, str]]:
    """(tenant slug, (address, password)) of a lab mailbox."""
    for slug in fleet.tenants_with("mail"):
        for box in fleet.mailboxes(slug):
            if box[0] == address:
                return slug, box
    raise AssertionError(f"{address} is not a lab mailbox")


def _drain(fleet: Any, hosts: list[str]) -> dict[str, int]:
    """Flush the queues of ``hosts`` until all are empty (mail deferred towards a restarting peer).

    Returns {} when drained, else the messages still queued per host at the deadline.
    """
    deadline = time.monotonic() + DRAIN_DEADLINE
    while True:
        left = {}
        for host in hosts:
            fleet.ssh(host, "postqueue", "-f")
            queued = fleet.ssh(host, "postqueue", "-j").stdout.strip()
            if queued:
                left[host] = len(queued.splitlines())
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(2)


def _sweep(fleet: Any, addresses: set[str], run_id: str, search: str) -> list[str]:
    """Tokens of this run found (and deleted) in the INBOX of every address."""
    tls = client_context(fleet.ca_cert)
    found: list[str] = []
    for address in sorted(addresses):
        slug, login = _login_of(fleet, address)
        found += mailflood.sweep(_endpoint(fleet, slug), login, tls, run_id, delete=True, search=search)
    return found


@pytest.fixture
def back_to_base_release(fleet: Any) -> Iterator[None]:
    """Whatever happens in the test, leave the mail hosts on the base release and the pin untouched."""
    pin_before = PLATFORM_FILE.read_bytes()
    hosts = _mail_hosts(fleet)
    found = {host: _release(fleet, host) for host in hosts}
    assert set(found.values()) == {BASE_RELEASE}, f"the lab is not on mail release {BASE_RELEASE}: {found}"
    yield
    if any(_release(fleet, host) != BASE_RELEASE for host in hosts):
        _rollout(fleet, BASE_RELEASE)
    assert PLATFORM_FILE.read_bytes() == pin_before, "the upgrade changed the platform pin despite --no-pin"


# ---------------------------------------------------------------- acceptance 5


def test_no_mail_lost_during_rolling_mail_upgrade(fleet: Any, backups: Any, back_to_base_release: None) -> None:
    """≥ 200 messages submitted during the rollout; every one that got a 250 is delivered exactly once."""
    hosts = _mail_hosts(fleet)
    assert len(hosts) >= 2, "the lab must have two mail hosts"
    routes = _routes(fleet)
    run_id = mailflood.new_run_id()
    sender = Sender(run_id, routes, client_context(fleet.ca_cert), min_messages=MIN_MESSAGES,
                    interval=SEND_INTERVAL)
    recipients = {route.recipient for route in routes}
    senders = {route.sender for route in routes}
    swept = False
    sender.start()
    try:
        report = sender.report
        while len(report.accepted) < WARMUP_MESSAGES and not (report.rejected or report.gave_up):
            assert sender.is_alive(), f"the sender died before the rollout: {report.summary()}"
            time.sleep(0.2)
        before, started = len(report.accepted), time.monotonic()
        rc, out, err = _rollout(fleet, TARGET_RELEASE)
        during, took = len(report.accepted) - before, time.monotonic() - started
        sender.stop()
        sender.join()
        assert rc == 0, (f"upgrade to mail release {TARGET_RELEASE} failed (rc={rc}; "
                         f"sender: {report.summary()}):\n{out}\n{err[-4000:]}")
        for host in hosts:
            assert _release(fleet, host) == TARGET_RELEASE, f"{host}: release file not updated"
            ciphers = fleet.ssh(host, "postconf", "-h", "smtpd_tls_mandatory_ciphers").stdout.strip()
            assert ciphers == "high", f"{host}: release {TARGET_RELEASE} settings not live ({ciphers})"

        left = _drain(fleet, hosts)
        assert not left, f"mail queues not drained after {DRAIN_DEADLINE:g}s: {left}"
        found = _sweep(fleet, recipients, run_id, "HEADER")
        bounces = _sweep(fleet, senders, run_id, "TEXT")
        swept = True
        result = mailflood.tally(report.accepted, found)
        print(f"\nmail flood {run_id}: {report.summary()}; accepted during the {took:.0f}s rollout={during}; "
              f"found={result.found} unacknowledged-but-delivered={len(result.unacknowledged)}; "
              f"retries {'were' if report.retries else 'were not'} needed")

        assert len(report.accepted) >= MIN_MESSAGES, report.summary()
        assert not report.rejected, f"messages rejected with 5xx during the rollout: {report.summary()}"
        assert not report.gave_up, f"messages never accepted: {report.summary()}"
        assert not result.missing, f"accepted but lost: {len(result.missing)}, e.g. {result.missing[:5]}"
        assert not result.duplicated, f"delivered twice: {len(result.duplicated)}: {result.duplicated[:5]}"
        assert not bounces, f"{len(bounces)} bounce(s) in the senders' mailboxes"
    finally:
        sender.abort()
        sender.join()
        if not swept:  # leave no test mail behind for the other tests' message counts (best effort)
            with contextlib.suppress(Exception):
                _drain(fleet, hosts)
                _sweep(fleet, recipients, run_id, "HEADER")
                _sweep(fleet, senders, run_id, "TEXT")

    rc, out, err = _rollout(fleet, BASE_RELEASE)
    assert rc == 0, f"rollback to mail release {BASE_RELEASE} failed (rc={rc}):\n{out}\n{err[-4000:]}"
    for host in hosts:
        assert _release(fleet, host) == BASE_RELEASE, f"{host}: still on {_release(fleet, host)!r}"
        ciphers = fleet.ssh(host, "postconf", "-h", "smtpd_tls_mandatory_ciphers").stdout.strip()
        assert ciphers == "medium", f"{host}: release {BASE_RELEASE} settings not restored ({ciphers})"
