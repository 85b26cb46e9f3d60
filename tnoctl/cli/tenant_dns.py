"""`tnoctl tenant dns SLUG`: print the DNS records a commune must publish (action: actions/tenant_dns.py)."""

from __future__ import annotations

import click

from tnoctl.cli.context import AppContext


@click.command("dns")
@click.argument("slug")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def dns(app: AppContext, slug: str, as_json: bool) -> int:
    """Print the DNS records the commune must publish for its mail and office domains.

    Run it after a deploy: the DKIM key is generated on the mail host and read from there.

    \b
    Example:
      tnoctl tenant dns givors
    """
    from tnoctl.actions.tenant_dns import TenantDnsRequest, run

    outcome = run(app.env, TenantDnsRequest(slug))
    if as_json:
        app.print_json(outcome.data["records"])
    else:
        for line in outcome.lines:
            app.stdout.write(line + "\n")
    return int(outcome.exit_code)
