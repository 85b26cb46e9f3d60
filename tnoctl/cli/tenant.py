"""`tnoctl tenant list|show|add` (+ `onboard`, `remove`, `dns` from their own modules): the communes."""

from __future__ import annotations

from json.encoder import encode_basestring_ascii as _esc  # type: ignore[attr-defined]

import click

from tnoctl.cli.confirm import render
from tnoctl.cli.context import AppContext, untrusted
from tnoctl.config.load import TenantRow


@click.group()
def tenant() -> None:
    """Tenants (communes): list, show, add, remove (offboard), and the DNS records they publish.

    \b
    Example:
      tnoctl tenant list --json
    """


@tenant.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def list_(app: AppContext, as_json: bool) -> None:
    """List tenants with their domains, hosts and mailbox counts.

    Over 1,000 tenants the table is drawn plain: one line per tenant, each column as wide as its
    widest cell (never wrapped), no colour.

    \b
    Example:
      tnoctl -i inventories/example tenant list
    """
    inv = app.env.inventory  # the cached loader: rows only, no tenant file parsed on a warm cache
    if as_json:
        app.stdout.write(list_json(inv.rows) + "\n")
        return
    app.print_table(["slug", "name", "domains", "mail", "office", "boxes", "pilot"],
                    [[t.slug, t.name, ", ".join(t.domains), t.placement.mail, t.placement.office, t.mailboxes,
                      "yes" if t.pilot else ""] for t in inv.rows])  # rows straight from the index (issue 18)


def list_row(t: TenantRow) -> dict[str, object]:
    """One tenant as `tenant list --json` prints it."""
    return {"slug": t.slug, "name": t.name, "insee": t.insee, "domains": list(t.domains),
            "services": list(t.services), "mail_host": t.placement.mail, "office_host": t.placement.office,
            "mailboxes": t.mailboxes, "pilot": t.pilot, "maintenance_window": t.maintenance_window}


def _strings(values: tuple[str, ...]) -> str:
    """A list of strings inside a row, as ``json.dumps(indent=2)`` writes it."""
    return "[\n      " + ",\n      ".join(map(_esc, values)) + "\n    ]" if values else "[]"


def list_json(rows: list[TenantRow]) -> str:
    """``json.dumps([list_row(t) for t in rows], indent=2)``, written with one template per row (same bytes).

    35,000 rows at scale: building a dict per row and walking it key by key was half of a warm
    `tenant list --json` (issue 18). tests/unit/test_inventory_index.py compares the bytes.
    """
    if not rows:
        return "[]"
    text = [f'{{\n    "slug": {_esc(t.slug)},\n    "name": {_esc(t.name)},\n    "insee": {_esc(t.insee)},\n'
            f'    "domains": {_strings(t.domains)},\n    "services": {_strings(t.services)},\n'
            f'    "mail_host": {_nullable(t.placement.mail)},\n    "office_host": {_nullable(t.placement.office)},\n'
            f'    "mailboxes": {int.__repr__(t.mailboxes)},\n    "pilot": {"true" if t.pilot else "false"},\n'
            f'    "maintenance_window": {_esc(t.maintenance_window)}\n  }}' for t in rows]
    return "[\n  " + ",\n  ".join(text) + "\n]"


def _nullable(value: str | None) -> str:
    return "null" if value is None else _esc(value)


@tenant.command()
@click.argument("slug")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def show(app: AppContext, slug: str, as_json: bool) -> None:
    """Show one tenant as Ansible sees it (vault variable names only, never passwords).

    \b
    Example:
      tnoctl tenant show givors --json
    """
    from tnoctl.actions.reports import tenant_show

    outcome = tenant_show(app.env, slug)
    if as_json:
        app.print_json(outcome.data)
        return
    for line in outcome.lines:
        app.stdout.write(untrusted(line) + "\n")
    app.print_table(outcome.columns, outcome.rows, title="mailboxes")


@tenant.command()
@click.argument("slug")
@click.option("--name", required=True, help="Display name, e.g. 'Saint-Fons'.")
@click.option("--insee", required=True, help="INSEE commune code, e.g. 69199.")
@click.option("--domain", "domains", multiple=True, required=True, help="Mail domain (repeat; first is primary).")
@click.option("--mailbox", "mailboxes", multiple=True, help="Mailbox as local[:quota], e.g. mairie:2G (repeat).")
@click.option("--mail-host", default=None, help="Mail host (default: the least loaded host of group mail).")
@click.option("--office-host", default=None, help="Office host (default: the least loaded of group office).")
@click.option("--window", default=None, help="Maintenance window, e.g. 'Sun 02:00-05:00'.")
@click.pass_obj
def add(app: AppContext, slug: str, name: str, insee: str, domains: tuple[str, ...], mailboxes: tuple[str, ...],
        mail_host: str | None, office_host: str | None, window: str | None) -> int:
    """Add a tenant: write tenants/SLUG.yml and random mailbox passwords into the vault.

    The whole inventory is validated with the new tenant before anything is written. Passwords
    are generated, encrypted into vault/SLUG.yml when the inventory has a vault/ directory (see
    `tnoctl inventory split-vault`), else into group_vars/all/vault.yml, and never printed.

    \b
    Example:
      tnoctl tenant add saint-fons --name Saint-Fons --insee 69199 --domain saint-fons.test \\
        --mailbox mairie:2G --mailbox dgs --mail-host mail1 --office-host office1
    """
    from tnoctl.actions import tenant_add

    request = tenant_add.TenantAddRequest(slug, name, insee, domains, mailboxes, mail_host, office_host, window)
    return render(app, tenant_add.run(app.env, request))


def _attach_subcommands() -> None:
    """Sub-verbs that live in their own modules (onboarding, offboarding, DNS records)."""
    from tnoctl.cli.tenant_dns import dns
    from tnoctl.cli.tenant_onboard import onboard
    from tnoctl.cli.tenant_remove import remove

    tenant.add_command(onboard)
    tenant.add_command(remove)
    tenant.add_command(dns)


_attach_subcommands()
