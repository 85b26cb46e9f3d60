"""`tnoctl tenant remove SLUG`: offboarding — final backup, Maildir export, removal from every host, shredding.

Attached to the `tenant` group by tnoctl/cli/tenant.py; the work is tnoctl/actions/tenant_remove.py
(docs/backups.md, "Crypto-shredding").
"""

from __future__ import annotations

from pathlib import Path

import click

from tnoctl.cli.confirm import confirm, refused, render
from tnoctl.cli.context import AppContext


@click.command("remove")
@click.argument("slug")
@click.option("--export-dir", type=click.Path(path_type=Path), default=None,
              help="Where the Maildir tarball goes (default: <state dir>/exports).")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def remove(app: AppContext, slug: str, export_dir: Path | None, yes: bool) -> int:
    """Offboard a commune: final backup, Maildir export, removal from every host, crypto-shredding.

    Its files, backup units, keys and passphrases leave its hosts; its tenant file (and its
    vault/SLUG.yml, in the split vault layout) moves to <state dir>/offboarded/ and its hosts and
    the backup host are redeployed without it; then its repository key is shredded and the
    repository removed. The Maildir tarball is what remains.

    \b
    Example:
      tnoctl tenant remove corbas --yes
    """
    from tnoctl.actions import tenant_remove

    request = tenant_remove.TenantRemoveRequest(slug, export_dir)
    target = tenant_remove.check(app.env, request)
    if not confirm("tenant remove", f"Remove tenant {slug} from {', '.join(target.hosts)} and shred its backups?", yes):
        return refused(app)
    return render(app, tenant_remove.run(app.env, request))
