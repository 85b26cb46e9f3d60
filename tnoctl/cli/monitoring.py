"""`tnoctl monitoring`: generate what Prometheus and Alertmanager need (targets, alert rules, routing)."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import click

from tnoctl.cli.context import AppContext
from tnoctl.errors import InvalidInput


@click.group()
def monitoring() -> None:
    """Generate Prometheus, Alertmanager and Grafana configuration: targets, rules, routing, dashboards.

    \b
    Example:
      tnoctl monitoring targets --out /etc/prometheus/file_sd
      tnoctl monitoring rules --lang fr --runbook-base https://git.example.org/tnoctl/-/blob/main/docs/runbooks
      tnoctl monitoring alertmanager --webhook-url https://chat.example.org/hooks/oncall
      tnoctl monitoring dashboards --lang fr --out /var/lib/grafana/dashboards/tno
    """


@monitoring.command()
@click.option("--out", type=click.Path(path_type=Path, file_okay=False),
              help="Write one blackbox-<module>.json per module here (atomically). Default: print JSON.")
@click.option("--by-address", is_flag=True,
              help="Target host addresses instead of DNS names (the lab has no DNS).")
@click.option("--tenant", "-t", "tenants", multiple=True, help="Only this tenant (repeatable).")
@click.pass_obj
def targets(app: AppContext, out: Path | None, by_address: bool, tenants: tuple[str, ...]) -> None:
    """Prometheus file_sd targets: blackbox (SMTP/IMAP STARTTLS, IMAPS, HTTPS per tenant), node, Dovecot.

    Each blackbox target carries tenant, component, service, module, host and server_name labels and
    __param_module for the multi-target relabelling of exporters/prometheus/prometheus.yml;
    node.json (every host, :9100) and dovecot.json (mail hosts, :9900) carry the host label.

    \b
    Example:
      tnoctl monitoring targets --by-address --out /var/lib/prometheus/file_sd
    """
    from tnoctl.exporter.file_sd import MODULES, host_groups, render_chunks, render_groups
    from tnoctl.probes.endpoints import endpoints

    inv = app.env.inventory  # the cached loader; endpoints need rows only (no tenant file parsed)
    for slug in tenants:
        inv.row(slug)
    found = endpoints(SimpleNamespace(tenants=inv.rows, hosts=inv.hosts), tenants or None)
    hosts = host_groups(inv)
    if out is None:  # the --json text of {file: body}; blackbox bodies written piece by piece (175,000 groups)
        files = [*render_chunks(found, by_address, 1),
                 *((name, [json.dumps(body, indent=2).replace("\n", "\n  ")]) for name, body in hosts.items())]
        for i, (name, chunks) in enumerate(files):  # never empty: render_chunks names every module's file
            app.stdout.write(("{\n" if i == 0 else ",\n") + f"  {json.dumps(name)}: ")
            app.stdout.writelines(chunks)
        app.stdout.write("\n}\n")
        return
    out.mkdir(parents=True, exist_ok=True)
    bodies = {**render_groups(found, by_address), **{name: json.dumps(body, indent=2) for name, body in hosts.items()}}
    counts = Counter(f"blackbox-{MODULES[ep.service]}.json" for ep in found)
    counts.update({name: len(body) for name, body in hosts.items()})
    for name, text in bodies.items():
        tmp = out / f".{name}.tmp"
        tmp.write_text(text + "\n")
        os.replace(tmp, out / name)
        app.info(f"wrote {out / name} ({counts[name]} targets)")


@monitoring.command()
@click.option("--runbook-base", default=None, metavar="URL",
              help="Absolute http(s) base of runbook_url, e.g. your git web URL of docs/runbooks "
                   "(default: an example.org placeholder to replace).")
@click.option("--lang", type=click.Choice(["en", "fr"]), default="en", show_default=True,
              help="Language of the alert summaries and descriptions.")
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), help="Write here instead of stdout.")
@click.pass_obj
def rules(app: AppContext, runbook_base: str | None, lang: str, out: Path | None) -> None:
    """Render the alert rules (exporters/rules/tno.yml.tmpl) in your language with your runbook base URL.

    \b
    Example:
      tnoctl monitoring rules --lang fr \\
        --runbook-base https://git.example.org/tnoctl/-/blob/main/docs/runbooks \\
        --out /etc/prometheus/rules/tno.yml
    """
    from tnoctl.exporter.rules import DEFAULT_RUNBOOK_BASE, render

    try:
        text = render(runbook_base or DEFAULT_RUNBOOK_BASE, lang=lang)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    _write(app, text, out)


@monitoring.command()
@click.option("--webhook-url", metavar="URL", default=None,
              help="Webhook receiver of the notifications (default: a placeholder to replace).")
@click.option("--email-to", metavar="ADDRESS", default=None, help="Also mail the notifications to this address.")
@click.option("--email-from", metavar="ADDRESS", default=None, help="Sender of the notification mails.")
@click.option("--smarthost", metavar="HOST:PORT", default=None, help="SMTP relay for the notification mails.")
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), help="Write here instead of stdout.")
@click.pass_obj
def alertmanager(app: AppContext, webhook_url: str | None, email_to: str | None, email_from: str | None,
                 smarthost: str | None, out: Path | None) -> None:
    """Render the Alertmanager configuration: grouping by host/tenant, inhibitions, your receiver.

    Alerts located on a host are grouped by host (a stopped Dovecot is one notification, not one
    per tenant and service), the others by tenant; a down host silences its tenants' alerts; an
    endpoint down silences the slow/degraded/certificate alerts of the same tenant and component.
    Check the result with `amtool check-config`.

    \b
    Example:
      tnoctl monitoring alertmanager --webhook-url https://chat.example.org/hooks/oncall \\
        --out /etc/prometheus/alertmanager.yml
    """
    from tnoctl.exporter.alertmanager import Receiver, render

    try:
        text = render(Receiver.build(webhook_url, email_to, email_from, smarthost))
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    _write(app, text, out)


@monitoring.command()
@click.option("--lang", type=click.Choice(["en", "fr"]), default="en", show_default=True,
              help="Language of the titles, descriptions and legends.")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False),
              help="Write one <name>.json per dashboard here (atomically). Default: print JSON.")
@click.pass_obj
def dashboards(app: AppContext, lang: str, out: Path | None) -> None:
    """The Grafana dashboards (exporters/dashboards) with titles in your language, ready to import.

    \b
    Example:
      tnoctl monitoring dashboards --lang fr --out /var/lib/grafana/dashboards/tno
    """
    from tnoctl.exporter.dashboards import render

    try:
        files = render(lang)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    if out is None:
        app.print_json({name: json.loads(text) for name, text in files.items()})
        return
    out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        _write(app, text, out / name)


def _write(app: AppContext, text: str, out: Path | None) -> None:
    """Print ``text``, or write it to ``out`` atomically."""
    if out is None:
        app.stdout.write(text)
        return
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, out)
    app.info(f"wrote {out}")
