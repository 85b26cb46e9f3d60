"""`tnoctl tenant onboard SLUG`: deploy, publish DNS, back up and probe a tenant added by `tenant add` (rerunnable)."""

from __future__ import annotations

import click

from tnoctl.cli.confirm import confirm, render
from tnoctl.cli.context import AppContext
from tnoctl.errors import ExitCode


@click.command()
@click.argument("slug")
@click.option("--yes", "-y", is_flag=True, help="Do not ask before deploying.")
@click.option("--ignore-windows", is_flag=True, help="Deploy even if a change would restart a tenant-facing "
              "service outside another tenant's maintenance window (default: refuse, exit 4).")
@click.option("--no-drill", is_flag=True, help="Skip the restore test of the first backup.")
@click.pass_obj
def onboard(app: AppContext, slug: str, yes: bool, ignore_windows: bool, no_drill: bool) -> int:
    """Bring a new tenant into service: validate, deploy, DNS, back up, drill, probe.

    Deploys the tenant's hosts and every mail host (inter-commune routing and TLS policy maps) with
    the backup machinery (and, with tno_tls_mode acme, the tenant's certificates), publishes and
    checks its DNS records on tno_dns_server as `tenant dns --publish` does (without a DNS server:
    prints them), takes the first backup and its restore test, and finishes with the tenant's
    health probes. Each step is journaled: after an interruption or a failure, run the
    same command again and it resumes where it stopped. Exit 1 if a step failed, 2 for invalid
    input, 3 when a tenant of those hosts is locked, 4 when the deploy would restart a service
    outside a maintenance window (see --ignore-windows).

    \b
    Example:
      tnoctl tenant add mions --name Mions --insee 69283 --domain mions.test --mailbox mairie
      tnoctl tenant onboard mions --yes
    """
    from tnoctl.actions import tenant_onboard

    question = f"Deploy {slug} to its hosts and every mail host, publish its DNS records, then back it up?"
    if not confirm("tenant onboard", question, yes):
        app.info("not onboarded")
        return int(ExitCode.REFUSED)
    request = tenant_onboard.OnboardRequest(slug, ignore_windows=ignore_windows, drill=not no_drill)
    return render(app, tenant_onboard.run(app.env, request))
