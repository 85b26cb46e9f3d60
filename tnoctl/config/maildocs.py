"""The mail documents served over HTTPS and the service names they live on: one source for DNS and roles.

Why one module: the MTA-STS policy (RFC 8461) is served by the mail host's nginx
(``https://mta-sts.<domain>/.well-known/mta-sts.txt``) and its id is published in the ``_mta-sts`` TXT
record by `tnoctl dns plan|publish`; both must come from the same text, or senders cache a policy
whose id never changes. The role renders the file through its filter plugin
(roles/tno_mail/filter_plugins/tno_maildocs.py), which calls :func:`mta_sts_policy` here; `dns plan`
calls :func:`mta_sts_record` on the same inputs. The policy's ``mx:`` is :func:`mail_fqdn`, the very
name the MX record points at.

Which host serves which name (``MAIL_NAMES`` / ``OFFICE_NAMES``) is also written once here: dns plan's
A records, the lab's zones, /etc/hosts and host certificates, and role tno_acme's name lists
(checked by tests/unit/test_maildocs.py) follow it. ``mta-sts.`` and ``autoconfig.`` are served by
the *mail host*: every commune with mail has one (a mail-only commune has no office proxy), and both
documents describe the mail service. Pure: no I/O.
"""

from __future__ import annotations

import hashlib
from typing import Literal
from xml.sax.saxutils import escape

MtaStsMode = Literal["testing", "enforce", "none"]
MTA_STS_MODES: tuple[str, ...] = ("testing", "enforce", "none")
MTA_STS_DEFAULT_MODE = "testing"
"""RFC 8461 section 5 advises ``testing`` first: senders report failures (TLS-RPT) but still deliver."""
MTA_STS_MAX_AGE = 604800
"""Seconds a sender caches the policy (one week; RFC 8461 suggests weeks, at most 31557600)."""

MAIL_NAMES = ("mail", "smtp", "imap", "autoconfig", "mta-sts")
"""Service names of a domain served by its mail host (A records, certificates, nginx vhosts)."""
OFFICE_NAMES = ("office",)
"""Service names of a domain served by its office host (the office proxy)."""


IMAPS_PORT = 993
"""Dovecot's IMAP over implicit TLS (roles/tno_mail: inet_listener imaps)."""
SUBMISSION_PORT = 587
"""Postfix's submission with STARTTLS (roles/tno_mail master.cf; no 465 `submissions` listener)."""


def mail_fqdn(domain: str) -> str:
    """The mail host name of ``domain``: the MX target and the MTA-STS ``mx:`` line (no trailing dot)."""
    return f"mail.{domain}"


def mta_sts_policy(domain: str, mode: str = MTA_STS_DEFAULT_MODE, max_age: int = MTA_STS_MAX_AGE) -> str:
    """The policy text served at ``https://mta-sts.<domain>/.well-known/mta-sts.txt`` (RFC 8461 section 3.2).

    One ``mx:`` line, exactly the MX the platform publishes for the domain (:func:`mail_fqdn`). Lines
    end with LF (the RFC's ``sts-policy-term`` is LF or CRLF): the bytes survive templating unchanged.
    """
    if mode not in MTA_STS_MODES:
        raise ValueError(f"MTA-STS mode must be one of {', '.join(MTA_STS_MODES)}, not {mode!r}")
    return f"version: STSv1\nmode: {mode}\nmx: {mail_fqdn(domain)}\nmax_age: {max_age}\n"


def mta_sts_id(policy: str) -> str:
    """The policy id of ``_mta-sts`` TXT: a digest of the policy text, so it changes exactly when the text does.

    20 hex characters (RFC 8461: 1 to 32 alphanumerics).
    """
    return hashlib.sha256(policy.encode()).hexdigest()[:20]


def mta_sts_record(domain: str, mode: str = MTA_STS_DEFAULT_MODE) -> str:
    """The ``_mta-sts.<domain>`` TXT value announcing the policy the mail host serves (pure)."""
    return f"v=STSv1; id={mta_sts_id(mta_sts_policy(domain, mode))}"


def autoconfig_xml(domain: str, display_name: str) -> str:
    """Thunderbird's autoconfig document (clientConfig 1.1) of ``domain``, as the mail host offers it (pure).

    Served at ``https://autoconfig.<domain>/mail/config-v1.1.xml`` and under ``/.well-known/autoconfig/``.
    IMAP on 993 with TLS, submission on 587 with STARTTLS (what role tno_mail listens on); the login is the
    full address, which Dovecot's passwd-file and Postfix's sender-login map are keyed on.
    """
    name = escape(display_name)
    dom = escape(domain)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<clientConfig version="1.1">\n'
        f'  <emailProvider id="{dom}">\n'
        f"    <domain>{dom}</domain>\n"
        f"    <displayName>{name}</displayName>\n"
        f"    <displayShortName>{name}</displayShortName>\n"
        '    <incomingServer type="imap">\n'
        f"      <hostname>imap.{dom}</hostname>\n"
        f"      <port>{IMAPS_PORT}</port>\n"
        "      <socketType>SSL</socketType>\n"
        "      <authentication>password-cleartext</authentication>\n"
        "      <username>%EMAILADDRESS%</username>\n"
        "    </incomingServer>\n"
        '    <outgoingServer type="smtp">\n'
        f"      <hostname>smtp.{dom}</hostname>\n"
        f"      <port>{SUBMISSION_PORT}</port>\n"
        "      <socketType>STARTTLS</socketType>\n"
        "      <authentication>password-cleartext</authentication>\n"
        "      <username>%EMAILADDRESS%</username>\n"
        "    </outgoingServer>\n"
        "  </emailProvider>\n"
        "</clientConfig>\n"
    )
