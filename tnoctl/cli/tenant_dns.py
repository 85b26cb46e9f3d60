"""`tnoctl tenant dns SLUG [--check | --publish]`: a commune's DNS records (actions: tenant_dns, tenant_dns_sync)."""

from __future__ import annotations

import click

from tnoctl.cli.confirm import confirm, refused, render
from tnoctl.cli.context import AppContext
from tnoctl.errors import InvalidInput


@click.command("dns")
@click.argument("slug")
@click.option("--check", "check", is_flag=True,
              help="Query the platform's DNS server (tno_dns_server) for MX/SPF/DKIM/DMARC/MTA-STS and report "
              "each as published, missing or different; exit 1 if any is missing or different.")
@click.option("--publish", "publish", is_flag=True,
              help="Send the missing/different records by RFC 2136 (TSIG key from the vault), then check again.")
@click.option("--yes", is_flag=True, help="Do not ask before --publish changes the zone.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def dns(app: AppContext, slug: str, check: bool, publish: bool, yes: bool, as_json: bool) -> int:
    """Print the DNS records the commune must publish for its mail and office domains.

    Run it after a deploy: the DKIM key is generated on the mail host and read from there.
    With --check, compare them with what the platform's DNS server serves; with --publish, send the
    difference (exit 1 names the tenant and record still missing or different). Secrets are never printed.

    \b
    Examples:
      tnoctl tenant dns givors
      tnoctl tenant dns givors --check
      tnoctl tenant dns givors --publish --yes
    """
    if check and publish:
        raise InvalidInput("tenant dns: give --check or --publish, not both (--publish checks afterwards)")
    if check or publish:
        from tnoctl.actions.tenant_dns_sync import DnsSyncRequest
        from tnoctl.actions.tenant_dns_sync import run as sync_run

        if publish and not confirm("tenant dns --publish", f"Publish the missing DNS records of {slug}?", yes):
            return refused(app)
        return render(app, sync_run(app.env, DnsSyncRequest(slug, publish=publish)), as_json)
    from tnoctl.actions.tenant_dns import TenantDnsRequest, run

    outcome = run(app.env, TenantDnsRequest(slug))
    if as_json:
        app.print_json(outcome.data["records"])
    else:
        for line in outcome.lines:
            app.stdout.write(line + "\n")
    return int(outcome.exit_code)
