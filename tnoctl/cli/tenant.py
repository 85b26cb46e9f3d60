"""`tnoctl tenant list|show|add` (+ `onboard`, `remove`, `dns` from their own modules): the communes."""

from __future__ import annotations

import json
from json.encoder import encode_basestring_ascii as _esc  # type: ignore[attr-defined]

import click

from tnoctl.cli.confirm import render
from tnoctl.cli.context import AppContext, untrusted


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

    \b
    Example:
      tnoctl -i inventories/example tenant list
    """
    inv = app.env.inventory  # the cached loader: rows only, no tenant file parsed on a warm cache
    rows = [{"slug": t.slug, "name": t.name, "insee": t.insee, "domains": list(t.domains),
             "services": list(t.services), "mail_host": t.placement.mail, "office_host": t.placement.office,
             "mailboxes": t.mailboxes, "pilot": t.pilot, "maintenance_window": t.maintenance_window}
            for t in inv.rows]
    if as_json:
        app.stdout.write(rows_json(rows) + "\n")
        return
    app.print_table(["slug", "name", "domains", "mail", "office", "boxes", "pilot"],
                    [[r["slug"], r["name"], ", ".join(r["domains"]), r["mail_host"], r["office_host"],
                      r["mailboxes"], "yes" if r["pilot"] else ""] for r in rows])


_CONSTANTS = {None: "null", True: "true", False: "false"}


def _scalar(v: object) -> str:
    """A scalar as json writes it (``default=str`` for anything else)."""
    if type(v) is str:
        return _esc(v)
    if v is None or v is True or v is False:
        return _CONSTANTS[v]
    if type(v) is int:
        return int.__repr__(v)
    return json.dumps(v, default=str)


def _value(v: object, indent: str) -> str:
    """One row value as ``json.dumps(indent=2)`` writes it inside a row (lists of strings on their own lines)."""
    if type(v) is list:
        if not v:
            return "[]"
        inner = "\n" + indent + "  "
        return "[" + inner + ("," + inner).join(map(_scalar, v)) + "\n" + indent + "]"
    return _scalar(v)


def rows_json(rows: list[dict[str, object]]) -> str:
    """``json.dumps(rows, indent=2, default=str)`` of flat rows, rendered row by row with the C string escaper.

    35,000 rows at scale: the standard encoder walks them in pure Python when ``indent`` is set,
    which was most of `tenant list --json`'s time (issue 18). Same bytes (tests/unit/test_inventory_index.py).
    """
    if not rows:
        return "[]"
    out = []
    for row in rows:
        out.append("{\n    " + ",\n    ".join(f"{_esc(k)}: {_value(v, '    ')}" for k, v in row.items()) + "\n  }")
    return "[\n  " + ",\n  ".join(out) + "\n]"


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
    are generated, encrypted into group_vars/all/vault.yml, and never printed.

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
