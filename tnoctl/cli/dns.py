"""`tnoctl dns plan | check | publish`: the communes' DNS records as code (action: tnoctl/actions/dns.py)."""

from __future__ import annotations

import click

from tnoctl.actions.operation import Outcome
from tnoctl.cli.confirm import confirm, refused, render, require_yes
from tnoctl.cli.context import AppContext, untrusted
from tnoctl.errors import ExitCode, InvalidInput

TENANT_HELP = "Only this tenant (repeatable; default: every tenant of the inventory)."


@click.group("dns")
def dns() -> None:
    """The DNS records each commune must have: show them, check what is published, publish the difference.

    Records per domain: MX, SPF, DKIM (every active selector, read from the mail host), DMARC, MTA-STS,
    TLS-RPT, the SRV records of RFC 6186 and the addresses of mail./smtp./imap./autoconfig./mta-sts.
    (mail host) and office. (office host). `check` and `publish` talk to the platform's DNS server
    (tno_dns_server); `publish` signs its RFC 2136 updates with the TSIG key from the vault. A commune
    whose tenant file says `dns: {zone: external}` (zone at its registrar) is never updated: `plan`
    marks its records as the commune's to publish, `check` asks its zone's own name servers.

    \b
    Examples:
      tnoctl dns plan --tenant givors
      tnoctl dns check --json
      tnoctl dns publish --tenant givors --yes
    """


def inert(outcome: Outcome) -> Outcome:
    """The outcome with its free-text lines escaped (DKIM values and SSH errors come from the hosts)."""
    outcome.lines = [untrusted(line) for line in outcome.lines]
    outcome.errors = [untrusted(line) for line in outcome.errors]
    return outcome


def run_check(app: AppContext, tenants: tuple[str, ...], as_json: bool) -> int:
    """`dns check` (also `tenant dns SLUG --check`)."""
    from tnoctl.actions import dns as action

    return render(app, inert(action.check(app.env, action.DnsRequest(tenants))), as_json)


def run_publish(app: AppContext, tenants: tuple[str, ...], yes: bool, as_json: bool) -> int:
    """`dns publish` (also `tenant dns SLUG --publish`): the records to publish are shown, then asked for."""
    from tnoctl.actions import dns as action

    if as_json and not yes:
        raise InvalidInput("dns publish --json needs --yes (the records to publish are shown as a table)")
    require_yes("dns publish", yes)  # before any query: nobody could answer the question

    def show_and_ask(pending: Outcome) -> bool:
        if not as_json:
            app.print_table(pending.columns, pending.rows)
        return confirm("dns publish", f"{pending.message}. Publish them?", yes)

    outcome = action.publish(app.env, action.PublishRequest(tenants, confirm=show_and_ask))
    if outcome.exit_code == ExitCode.REFUSED:
        return refused(app, outcome.message)
    return render(app, inert(outcome), as_json)


@dns.command("plan")
@click.option("--tenant", "-t", "tenants", multiple=True, help=TENANT_HELP)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def plan(app: AppContext, tenants: tuple[str, ...], as_json: bool) -> int:
    """Show the records each tenant must have, as zone-file lines (read-only; DKIM keys read over SSH, one
    command per mail host). Paste them into a zone the platform does not manage (registrar-hosted).

    Exit 1 names the tenants whose records cannot be computed yet (no DKIM key: deploy first).

    \b
    Examples:
      tnoctl dns plan --tenant givors
      tnoctl dns plan --json
    """
    from tnoctl.actions import dns as action

    return render(app, inert(action.plan(app.env, action.DnsRequest(tenants))), as_json)


@dns.command("check")
@click.option("--tenant", "-t", "tenants", multiple=True, help=TENANT_HELP)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def check(app: AppContext, tenants: tuple[str, ...], as_json: bool) -> int:
    """Ask the platform's DNS server for every record and report it as published, missing or different.

    External zones (dns.zone: external) are asked of their own name servers, found through this
    machine's resolver. Exit 1 when a record is missing or different (one stderr line per record: tenant,
    kind, name, type).
    Each tenant's result goes to the state store: the exporter shows tnoctl_dns_record_ok{tenant,record}
    and tnoctl_dns_check_timestamp_seconds{tenant} (alert TnoDnsRecordWrong). Changes no zone.

    \b
    Examples:
      tnoctl dns check
      tnoctl dns check --tenant givors --json
    """
    return run_check(app, tenants, as_json)


@dns.command("publish")
@click.option("--tenant", "-t", "tenants", multiple=True, help=TENANT_HELP)
@click.option("--yes", "-y", is_flag=True, help="Do not ask before changing the zones.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (needs --yes).")
@click.pass_obj
def publish(app: AppContext, tenants: tuple[str, ...], yes: bool, as_json: bool) -> int:
    """Publish the missing or different records by RFC 2136 (TSIG key from the vault), then check again.

    Shows the records to publish and asks (without a terminal: needs --yes). Only values of the same
    kind are replaced (an SPF replaces an SPF, never a site-verification TXT); audited as `dns publish`,
    with the tenants' locks held. Exit 1 when a record is still missing or different afterwards. Tenants
    whose zone is external are sent nothing: one line each says their records are the commune's.

    \b
    Examples:
      tnoctl dns publish --tenant givors
      tnoctl dns publish --yes --json
    """
    return run_publish(app, tenants, yes, as_json)


