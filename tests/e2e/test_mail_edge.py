"""End-to-end: DKIM signing moved to Rspamd and bound to the sender's own commune (issue 14), on the lab.

Why: on a shared mail host a user of commune A must not obtain a DKIM signature of commune B. These
tests speak real SMTP submission (587, STARTTLS, AUTH) to the lab hosts of the session fleet and check
what leaves: a From: in another commune's domain (same host and another host) is refused with a 5xx
at the end of DATA; a From: in another domain of the sender's own commune is accepted, signed with
that domain's key, and the signature verifies (dkimpy, the published key read from the signing host)
on the copy delivered at another lab host. Helpers are the mail acceptance tests' own.
"""

from __future__ import annotations

import email
import email.policy
import smtplib
import uuid
from typing import Any

import dkim
import pytest
from test_deploy_mail import _dkim_dnsfunc, _domain_of, _message, _submission, _wait_for

pytestmark = [pytest.mark.root, pytest.mark.lab]


def _tenants_by_host(fleet: Any) -> dict[str, list[str]]:
    hosts: dict[str, list[str]] = {}
    for slug in fleet.tenants_with("mail"):
        hosts.setdefault(fleet.mail_host(slug), []).append(slug)
    return hosts


def _multi_domain_tenant(fleet: Any) -> Any:
    tenant = next((t for t in fleet.inventory.tenants if "mail" in t.services and len(t.domains) >= 2), None)
    assert tenant is not None, "the lab must have a mail tenant with several domains"
    return tenant


def test_from_outside_the_senders_commune_is_refused_5xx(fleet: Any) -> None:
    """A user of A submits with envelope = own login and From: in B's domain, B on the same host, then on another."""
    hosts = _tenants_by_host(fleet)
    shared = next((slugs for slugs in hosts.values() if len(slugs) >= 2), None)
    assert shared, "the lab must have two mail tenants on one host"
    slug_a, same_host_b = shared[0], shared[1]
    other_host_b = next(s for h, slugs in hosts.items() if h != fleet.mail_host(slug_a) for s in slugs)
    login = fleet.mailboxes(slug_a)[0]
    rcpt = fleet.mailboxes(slug_a)[1][0]
    for victim in (same_host_b, other_host_b):
        forged = f"maire@{fleet.domain(victim)}"
        msg = _message(forged, [rcpt], uuid.uuid4().hex)
        with _submission(fleet, slug_a, login) as smtp, pytest.raises(smtplib.SMTPDataError) as refused:
            smtp.sendmail(login[0], [rcpt], msg.as_bytes())
        code, text = refused.value.smtp_code, refused.value.smtp_error.decode(errors="replace")
        assert 500 <= code < 600, f"{slug_a} as {forged}: {code} {text}"
        assert fleet.domain(victim) in text and "not a domain of your commune" in text, text


def test_own_commune_domain_is_signed_with_that_domain_and_verifies_at_the_receiving_host(fleet: Any) -> None:
    """A mailbox of the multi-domain commune sends From: its commune's next domain to a mailbox on another host."""
    tenant = _multi_domain_tenant(fleet)
    login = fleet.mailboxes(tenant.slug)[0]
    header_from = f"{login[0].split('@')[0]}@{next(d for d in tenant.domains if d != _domain_of(login[0]))}"
    receiver = next(s for s in fleet.tenants_with("mail") if fleet.mail_host(s) != fleet.mail_host(tenant.slug))
    rcpt = fleet.mailboxes(receiver)[0]
    token = uuid.uuid4().hex
    msg = _message(header_from, [rcpt[0]], token)
    with _submission(fleet, tenant.slug, login) as smtp:
        refused = smtp.sendmail(login[0], [rcpt[0]], msg.as_bytes())
    assert refused == {}

    raw = _wait_for(fleet, receiver, rcpt, token)
    signatures = email.message_from_bytes(raw, policy=email.policy.default).get_all("DKIM-Signature") or []
    assert len(signatures) == 1, f"expected one DKIM signature, got {len(signatures)}"
    tags = dict(part.strip().split("=", 1) for part in str(signatures[0]).replace("\n", "").split(";") if "=" in part)
    assert tags["d"].strip() == _domain_of(header_from)
    assert tags["s"].strip() == "tno2026"
    assert dkim.verify(raw, dnsfunc=_dkim_dnsfunc(fleet, fleet.mail_host(tenant.slug)))
