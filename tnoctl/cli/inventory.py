"""`tnoctl inventory validate|show|export`: check the inventory, see placement, export for Ansible."""

from __future__ import annotations

import re
from pathlib import Path

import click

from tnoctl.cli.confirm import confirm, refused, render
from tnoctl.cli.context import AppContext
from tnoctl.errors import ExitCode, InvalidInput


@click.group()
def inventory() -> None:
    """Validate, show and export the inventory (hosts, platform, tenants).

    \b
    Example:
      tnoctl --inventory inventories/example inventory validate
    """


@inventory.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def validate(app: AppContext, as_json: bool) -> int:
    """Check every file of the inventory; report all errors at once as `file:field: message`.

    Exit status 2 when anything is wrong. With --json: `{inventory, valid, hosts, tenants, errors,
    vault_checked}` when valid, `{inventory, valid: false, errors: [{file, field, message}]}` when
    not. Results of unchanged tenant files are cached in the state directory, so repeated runs on
    large inventories are fast.

    \b
    Example:
      tnoctl inventory validate && tnoctl inventory validate --inventory inventories/example --json
    """
    from tnoctl.actions.reports import inventory_validate

    try:
        outcome = inventory_validate(app.env)
    except InvalidInput as exc:
        if not as_json:
            raise
        errors = [structured(line) for line in exc.details or [exc.message]]
        app.print_json({"inventory": str(app.inventory), "valid": False, "errors": errors})
        return int(ExitCode.INVALID)
    return render(app, outcome, as_json=as_json)


_FIELD = re.compile(r"[A-Za-z0-9_.\-\[\]]+|line \d+(, column \d+)?")


def structured(line: str) -> dict[str, str]:
    """``file: field: message`` -> ``{file, field, message}`` (``""`` for a part the line does not have).

    The file is a path relative to the inventory (``tenants/givors.yml``); the field a dotted key
    path (``mailboxes[0].quota``) or a YAML position (``line 2``); a line such as
    ``... and 3 more errors`` is all message.
    """
    file, sep, rest = line.partition(": ")
    if not sep or " " in file or not (file.endswith((".yml", ".yaml")) or "/" in file):
        return {"file": "", "field": "", "message": line}
    field, sep, message = rest.partition(": ")
    if sep and _FIELD.fullmatch(field):
        return {"file": file, "field": field, "message": message}
    return {"file": file, "field": "", "message": rest}


@inventory.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def show(app: AppContext, as_json: bool) -> None:
    """Show hosts, their groups and the tenants each one serves.

    \b
    Example:
      tnoctl inventory show --json
    """
    inv = app.env.inventory
    rows = [{"host": h.name, "address": h.address, "groups": sorted(h.groups - {"all"}),
             "tenants": inv.slugs_on_host(h.name)} for h in inv.hosts.values()]
    if as_json:
        app.print_json({"inventory": str(inv.path), "hosts": rows})
        return
    app.print_table(["host", "address", "groups", "tenants"],
                    [[r["host"], r["address"], ",".join(r["groups"]), ", ".join(r["tenants"]) or "-"]
                     for r in rows], title=f"inventory {inv.path}")


@inventory.command()
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write to this file (atomically) instead of stdout.")
@click.pass_obj
def export(app: AppContext, out: Path | None) -> None:
    """Write a static YAML inventory: hosts, groups, tno_tenants per host, platform vars.

    For tools that cannot run the tno_tenants inventory plugin (AWX). Secrets are not included.

    \b
    Example:
      tnoctl inventory export --out /tmp/lab-static.yml
      ansible-inventory -i /tmp/lab-static.yml --list
    """
    from tnoctl.config.export import export_text
    from tnoctl.config.vault import atomic_write

    text = export_text(app.env.inventory)
    if out is None:
        app.stdout.write(text)
        return
    try:
        atomic_write(out, text.encode())
    except OSError as exc:
        raise InvalidInput(f"cannot write {out}: {exc.strerror or exc}") from None
    app.info(f"wrote {out}")


@inventory.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def secrets(app: AppContext, as_json: bool) -> int:
    """Create the per-host secrets missing from the vault (each mail host's Rspamd controller password).

    Values are random and encrypted into group_vars/all/vault.yml, never shown; existing ones are
    kept, so running it again changes nothing. Needs the vault password. A deploy of a mail host
    whose secret is missing is refused (exit 2) and names this command. With --json: `{added: [...]}`.

    \b
    Example:
      tnoctl inventory secrets --vault-password-file ~/.tno-vault && git add group_vars/all/vault.yml
    """
    from tnoctl.actions import host_secrets

    return render(app, host_secrets.run(app.env), as_json=as_json)


@inventory.command("split-vault")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def split_vault(app: AppContext, yes: bool, as_json: bool) -> int:
    """Move every tenant's secrets from group_vars/all/vault.yml to vault/SLUG.yml (one file per tenant).

    Each vault/SLUG.yml is encrypted as a whole (one key derivation per tenant instead of one per
    value), and a deploy or plan limited to some hosts decrypts only their tenants' files. Platform
    secrets (office, rspamd, dns, acme...) stay in vault.yml. Tenant files are written first and
    vault.yml last, so an interrupted run is finished by running it again; with nothing left to move
    it writes nothing. Prints counts, never values. Needs the vault password. With --json:
    `{tenants, moved, kept}`. Afterwards `tenant add` writes new tenants' secrets to vault/SLUG.yml.

    \b
    Example:
      tnoctl inventory split-vault --vault-password-file ~/.tno-vault --yes
      git add vault group_vars/all/vault.yml
    """
    from tnoctl.actions import vault_split

    if not confirm("inventory split-vault", f"Move every tenant secret of {app.inventory} to vault/<slug>.yml?",
                   yes):
        return refused(app)
    return render(app, vault_split.run(app.env), as_json=as_json)
