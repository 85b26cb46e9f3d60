"""`tnoctl monitoring`: generate what Prometheus needs (blackbox targets, alert rules)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from tnoctl.cli.context import AppContext
from tnoctl.errors import InvalidInput


@click.group()
def monitoring() -> None:
    """Generate Prometheus configuration: blackbox file_sd targets and alert rules.

    \b
    Example:
      tnoctl monitoring targets --out /etc/prometheus/file_sd
      tnoctl monitoring rules --runbook-base https://git.example.org/tnoctl/-/blob/main/docs/runbooks
    """


@monitoring.command()
@click.option("--out", type=click.Path(path_type=Path, file_okay=False),
              help="Write one blackbox-<module>.json per module here (atomically). Default: print JSON.")
@click.option("--by-address", is_flag=True,
              help="Target host addresses instead of DNS names (the lab has no DNS).")
@click.option("--tenant", "-t", "tenants", multiple=True, help="Only this tenant (repeatable).")
@click.pass_obj
def targets(app: AppContext, out: Path | None, by_address: bool, tenants: tuple[str, ...]) -> None:
    """Prometheus file_sd targets for blackbox_exporter: SMTP/IMAP STARTTLS, IMAPS, HTTPS per tenant.

    Each target carries tenant, component, service and module labels and __param_module for the
    multi-target relabelling of exporters/prometheus/prometheus.yml.

    \b
    Example:
      tnoctl monitoring targets --by-address --out /var/lib/prometheus/file_sd
    """
    from tnoctl.config.load import load_inventory
    from tnoctl.exporter.file_sd import groups
    from tnoctl.probes.targets import endpoints

    inv = load_inventory(app.inventory, app.vault_password_file)
    for slug in tenants:
        inv.tenant(slug)
    files = groups(endpoints(inv, tenants or None), by_address)
    if out is None:
        app.print_json(files)
        return
    out.mkdir(parents=True, exist_ok=True)
    for name, body in files.items():
        tmp = out / f".{name}.tmp"
        tmp.write_text(json.dumps(body, indent=2) + "\n")
        os.replace(tmp, out / name)
        app.info(f"wrote {out / name} ({len(body)} targets)")


@monitoring.command()
@click.option("--runbook-base", default=None, metavar="URL",
              help="Base of runbook_url (default: docs/runbooks, relative to the repository).")
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), help="Write here instead of stdout.")
@click.pass_obj
def rules(app: AppContext, runbook_base: str | None, out: Path | None) -> None:
    """Render the alert rules (exporters/rules/tno.yml.tmpl) with your runbook base URL.

    \b
    Example:
      tnoctl monitoring rules --runbook-base https://git.example.org/tnoctl/-/blob/main/docs/runbooks \\
        --out /etc/prometheus/rules/tno.yml
    """
    from tnoctl.exporter.rules import DEFAULT_RUNBOOK_BASE, render

    try:
        text = render(runbook_base or DEFAULT_RUNBOOK_BASE)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    if out is None:
        app.stdout.write(text)
        return
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, out)
    app.info(f"wrote {out}")
