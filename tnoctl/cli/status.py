"""`tnoctl status`: probe the selected tenants once, concurrently, and show what is not OK."""

from __future__ import annotations

from pathlib import Path

import click

from tnoctl.cli.confirm import render
from tnoctl.cli.context import AppContext


@click.command()
@click.option("--tenant", "-t", "tenants", multiple=True, help="Only this tenant (repeatable). Default: all.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--timeout", type=click.FloatRange(0.1, 300), default=10.0, show_default=True,
              help="Per-probe timeout in seconds.")
@click.option("--parallelism", type=click.IntRange(1, 256), default=16, show_default=True,
              help="Probes in flight at once.")
@click.option("--ca-file", type=click.Path(path_type=Path, dir_okay=False),
              help="CA bundle to verify TLS (default: the lab CA for the lab inventory, else system trust).")
@click.option("--roundtrip", is_flag=True, help="Also send a canary message to itself and time its delivery.")
@click.option("--no-queue", is_flag=True, help="Skip the mail queue check (it needs SSH to the mail hosts).")
@click.pass_obj
def status(app: AppContext, tenants: tuple[str, ...], as_json: bool, timeout: float, parallelism: int,
           ca_file: Path | None, roundtrip: bool, no_queue: bool) -> int:
    """Probe every tenant's mail and office once and show a tenant × component table.

    Checks SMTP, submission, IMAP/IMAPS (with the canary login when the vault is readable),
    HTTPS through the proxy, office capabilities and discovery, TLS expiry, the mail queue and
    backup freshness. Exits 1 when anything is critical.

    \b
    Example:
      tnoctl status --tenant vaulx-en-velin
      tnoctl status --json | jq '.components[] | select(.state != "ok")'
    """
    from tnoctl.actions.reports import StatusRequest
    from tnoctl.actions.reports import status as status_report

    request = StatusRequest(tenants, timeout, parallelism, ca_file, roundtrip, queues=not no_queue)
    return render(app, status_report(app.env, request), as_json=as_json)
