"""`tnoctl status`: probe the selected tenants once, concurrently, and show what is not OK."""

from __future__ import annotations

from pathlib import Path

import click

from tnoctl.cli.context import AppContext
from tnoctl.probes import report
from tnoctl.probes.base import ProbeResult
from tnoctl.probes.runner import run_probes
from tnoctl.probes.targets import ProbeOptions


def gather(app: AppContext, tenants: list[str], opts: ProbeOptions, parallelism: int,
           queues: bool) -> list[ProbeResult]:
    """Load the inventory, build every probe for the selection and run them (the one I/O step)."""
    from tnoctl.config.load import load_inventory
    from tnoctl.probes import wiring
    from tnoctl.state.store import Store

    inv = load_inventory(app.inventory, app.vault_password_file)
    for slug in tenants:
        inv.tenant(slug)  # InvalidInput (exit 2) on an unknown tenant
    opts = ProbeOptions(opts.ca_file or wiring.default_ca_file(app.inventory), opts.timeout, opts.roundtrip,
                        inv.platform.tno_office_version)
    probes = wiring.all_probes(inv, opts, tenants or None,
                               wiring.secret_lookup(app.inventory, app.vault_password_file),
                               wiring.ssh_runner(inv) if queues else None, Store(app.state_dir))
    return run_probes(probes, parallelism)


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
    results = gather(app, list(tenants), ProbeOptions(ca_file, timeout, roundtrip), parallelism, not no_queue)
    rows = report.fold(results)
    if as_json:
        app.print_json(report.as_json(rows, results))
    else:
        columns, table = report.table(rows)
        app.print_table(columns, table)
    return report.exit_code(rows)
