"""`tnoctl lab up|prepare|down|status|ssh|ssh-config|credentials|restart-host`: the local lab (root)."""

from __future__ import annotations

import subprocess

import click

from tnoctl import paths
from tnoctl.cli.context import AppContext
from tnoctl.errors import Refused


def _lab(app: AppContext):
    """The Lab of the inventory in use (imported lazily: `tnoctl --help` stays fast)."""
    from tnoctl.lab.lab import Lab

    return Lab(app.inventory)


@click.group()
def lab() -> None:
    """Five throw-away Debian hosts (real systemd, real SSH) on this machine, on 198.18.0.0/24.

    \b
    Example:
      sudo tnoctl lab up
      ssh -F $(tnoctl lab ssh-config) mail1 systemctl is-system-running
      sudo tnoctl lab down
    """


@lab.command()
@click.option("--fresh", is_flag=True, help="Discard the hosts' disks first (brand-new machines).")
@click.option("--host", "only", multiple=True, metavar="HOST",
              help="Boot only this host of the inventory (repeatable); the others are left as they are.")
@click.pass_obj
def up(app: AppContext, fresh: bool, only: tuple[str, ...]) -> int:
    """Bring the lab up (idempotent; cleans what a killed lab left behind). Needs root.

    --host boots one more machine into a running lab, e.g. a sixth host added to hosts.yml for a
    disaster-recovery exercise (docs/backups.md), without touching the other hosts.

    \b
    Example:
      sudo tnoctl lab up
      sudo tnoctl lab up --fresh
      sudo tnoctl lab up --host mail3
    """
    if only:
        if fresh:
            raise click.UsageError("--fresh and --host cannot be combined")
        if not _lab(app).up_hosts(list(only)):
            app.info(f"already running: {', '.join(only)}")
        return 0
    started = _lab(app).up(fresh=fresh)
    if not started:
        app.info("the lab is already up")
    return 0


@lab.command()
@click.pass_obj
def prepare(app: AppContext) -> int:
    """Build or reuse the lab's base image and apt repo (cached), without booting anything. Needs root.

    `lab up` does this first; running it ahead (make test does, beside the unit tests) takes the
    cold debootstrap off the critical path. A concurrent `lab up` waits for it.

    \b
    Example:
      sudo tnoctl lab prepare
    """
    _lab(app).prepare()
    return 0


@lab.command()
@click.pass_obj
def down(app: AppContext) -> int:
    """Stop every lab host and server; leaves no process, netns, bridge or mount. Needs root.

    \b
    Example:
      sudo tnoctl lab down
    """
    _lab(app).down()
    return 0


@lab.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def status(app: AppContext, as_json: bool) -> int:
    """State of each lab host: running, stopped or stale (killed, leftovers present).

    \b
    Example:
      tnoctl lab status --json
    """
    from tnoctl.lab.lab import require_root

    require_root()
    rows = [s.as_dict() for s in _lab(app).status()]
    if as_json:
        app.print_json(rows)
    else:
        app.print_table(["host", "address", "state"], [[r["name"], r["address"], r["state"]] for r in rows])
    return 0


@lab.command(context_settings={"ignore_unknown_options": True})
@click.argument("host")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.pass_obj
def ssh(app: AppContext, host: str, command: tuple[str, ...]) -> int:
    """Open a shell on a lab host, or run COMMAND there (ssh -F <lab ssh_config>).

    \b
    Example:
      sudo tnoctl lab ssh mail1
      sudo tnoctl lab ssh office1 -- systemctl is-system-running
    """
    from tnoctl.lab.lab import require_root

    require_root()
    argv = _lab(app).ssh_argv(host, list(command))
    return subprocess.call(argv)


@lab.command("ssh-config")
@click.pass_obj
def ssh_config(app: AppContext) -> int:
    """Print the path of the lab's ssh_config (strict host-key checking, lab key).

    \b
    Example:
      ssh -F $(tnoctl lab ssh-config) mail1 hostname
    """
    app.stdout.write(f"{_lab(app).ssh_config_path}\n")
    return 0


@lab.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def credentials(app: AppContext, as_json: bool) -> int:
    """The lab tenants' mailbox addresses and passwords (lab inventory only; for trying it by hand).

    \b
    Example:
      tnoctl lab credentials --json
    """
    from tnoctl.config import vault
    from tnoctl.lab import topology

    if not app.is_lab:
        raise Refused(f"tnoctl lab credentials only reads the lab inventory ({paths.LAB_INVENTORY}), "
                      f"not {app.inventory}")
    password_file = app.vault_password_file or app.inventory / "vault-password"
    rows = [
        {"tenant": tenant.slug, "address": address,
         "password": vault.decrypt_value(app.inventory, password_file, var)}
        for tenant in topology.load(app.inventory).tenants
        for address, var in tenant.mailboxes
    ]
    if as_json:
        app.print_json(rows)
    else:
        app.print_table(["tenant", "address", "password"], [list(r.values()) for r in rows])
    return 0


@lab.command("restart-host")
@click.argument("host")
@click.option("--wipe", is_flag=True, help="Discard the host's disk: a fresh machine with new host keys.")
@click.pass_obj
def restart_host(app: AppContext, host: str, wipe: bool) -> int:
    """Stop one lab host and start it again (with --wipe: as a brand-new machine). Needs root.

    \b
    Example:
      sudo tnoctl lab restart-host backup1 --wipe
    """
    _lab(app).restart_host(host, wipe=wipe)
    return 0


@lab.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def smoke(app: AppContext, as_json: bool) -> int:
    """Prove each lab commune works: a mail round trip (587 → IMAPS) and office through HTTPS.

    TLS is verified against the lab CA. Exit 1 if any commune fails.

    \b
    Example:
      tnoctl lab smoke
    """
    from concurrent.futures import ThreadPoolExecutor

    from tnoctl.config import load_inventory
    from tnoctl.config.vault import read_vault
    from tnoctl.lab.smoke import smoke_tenant

    if not app.is_lab:
        raise Refused(f"tnoctl lab smoke only runs against the lab inventory ({paths.LAB_INVENTORY})")
    inventory = load_inventory(app.inventory)
    secrets = read_vault(app.inventory, app.vault_password_file or app.inventory / "vault-password")
    ca = paths.lab_ca_bundle()
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda t: smoke_tenant(t, inventory, secrets, ca), inventory.tenants))
    if as_json:
        app.print_json([r.__dict__ for r in results])
    else:
        app.print_table(
            ["tenant", "mail (587 → IMAPS)", "office (HTTPS)", "result"],
            [[r.tenant, r.mail_detail, r.office_detail, "ok" if r.ok else "FAILED"] for r in results],
        )
    return 0 if all(r.ok for r in results) else 1
