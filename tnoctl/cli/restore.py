"""`tnoctl restore`: one mailbox into a dated folder, or a whole tenant onto another mail host."""

from __future__ import annotations

import click

from tnoctl.cli.confirm import confirm, refused, render
from tnoctl.cli.context import AppContext


@click.command("restore")
@click.option("--tenant", "-t", required=True, help="Tenant slug.")
@click.option("--mailbox", "-m", help="Restore this mailbox (user@domain) into a dated folder.")
@click.option("--to-host", help="Disaster recovery: restore the whole tenant onto this mail host.")
@click.option("--archive", help="Archive name (default: the latest; see `tnoctl backup list`).")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON (archive, ok, detail, duration).")
@click.pass_obj
def restore(app: AppContext, tenant: str, mailbox: str | None, to_host: str | None, archive: str | None,
            yes: bool, as_json: bool) -> int:
    """Restore mail from the tenant's borg repository, never destroying mail that arrived since.

    --mailbox imports the archived mailbox under `Restored-<UTC date>/` (live folders untouched) and
    checks every message against the archive's manifest. --to-host (disaster recovery, also onto a
    host that never served the tenant) rewrites the tenant's mail placement, deploys the host and every
    other mail host that answers (routing), restores every mailbox, DKIM keys and Sieve scripts,
    verifies, and publishes the tenant's DNS records (docs/backups.md).
    Holds the tenant lock (a backup of the tenant waits: exit 3).

    \b
    Example:
      tnoctl restore --tenant givors --mailbox dgs@givors.test --yes
      tnoctl restore --tenant givors --to-host mail1 --yes
      tnoctl restore --tenant feyzin --to-host mail3 --yes --json
    """
    from tnoctl.actions import restore as restore_action

    request = restore_action.RestoreRequest(tenant, mailbox, to_host, archive)
    restore_action.check(app.env, request)
    if not confirm("restore", f"Restore {request.what}?", yes):
        return refused(app)
    return render(app, restore_action.run(app.env, request), as_json)
