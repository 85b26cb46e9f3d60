"""`tnoctl tenant dns SLUG [--check | --publish]`: one commune's DNS records, a shorthand of `tnoctl dns`.

`tenant dns SLUG` prints the records (action tenant_dns), `--check` is `dns check --tenant SLUG` and
`--publish` is `dns publish --tenant SLUG`: the same functions (tnoctl/cli/dns.py, tnoctl/actions/dns.py).
"""

from __future__ import annotations

import click

from tnoctl.cli.context import AppContext, untrusted
from tnoctl.errors import InvalidInput


@click.command("dns")
@click.argument("slug")
@click.option("--check", "check", is_flag=True,
              help="Same as `tnoctl dns check --tenant SLUG`: query the platform's DNS server (tno_dns_server) and "
              "report each record as published, missing or different; exit 1 if any is missing or different.")
@click.option("--publish", "publish", is_flag=True,
              help="Same as `tnoctl dns publish --tenant SLUG`: send the missing/different records by RFC 2136 "
              "(TSIG key from the vault), then check again.")
@click.option("--yes", is_flag=True, help="Do not ask before --publish changes the zone.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def dns(app: AppContext, slug: str, check: bool, publish: bool, yes: bool, as_json: bool) -> int:
    """Print the DNS records the commune must publish for its mail and office domains.

    Run it after a deploy: the DKIM keys are generated on the mail host and read from there.
    With --check, compare them with what the platform's DNS server serves; with --publish, send the
    difference (exit 1 names the tenant and record still missing or different). Secrets are never printed.
    For several communes at once: `tnoctl dns plan|check|publish`.

    \b
    Examples:
      tnoctl tenant dns givors
      tnoctl tenant dns givors --check
      tnoctl tenant dns givors --publish --yes
    """
    if check and publish:
        raise InvalidInput("tenant dns: give --check or --publish, not both (--publish checks afterwards)")
    if check or publish:
        from tnoctl.cli.dns import run_check, run_publish

        return run_publish(app, (slug,), yes, as_json) if publish else run_check(app, (slug,), as_json)
    from tnoctl.actions.tenant_dns import TenantDnsRequest, run

    outcome = run(app.env, TenantDnsRequest(slug))
    if as_json:
        app.print_json(outcome.data["records"])
    else:
        for line in outcome.lines:
            app.stdout.write(untrusted(line) + "\n")
    return int(outcome.exit_code)
