"""`tnoctl exporter`: serve the Prometheus metrics of the state store and the background probes."""

from __future__ import annotations

import ipaddress
import signal
import threading
from pathlib import Path

import click

from tnoctl.cli.context import AppContext
from tnoctl.errors import InvalidInput


@click.command()
@click.option("--listen", default="127.0.0.1:9520", show_default=True, help="HOST:PORT to listen on.")
@click.option("--web-config", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              help="Exporter-toolkit style web config: tls_server_config, basic_auth_users (bcrypt).")
@click.option("--probe-interval", type=click.FloatRange(5, 3600), default=60.0, show_default=True,
              help="Seconds between rounds of background probes.")
@click.option("--no-probes", is_flag=True, help="Serve the state store only (no background probes).")
@click.option("--no-queue", is_flag=True, help="Skip the mail queue probe (it needs SSH to the mail hosts).")
@click.option("--backup-sync-interval", type=click.FloatRange(5, 3600), default=30.0, show_default=True,
              help="Seconds between pulls of the hosts' backup and drill results (timer runs) into the state "
                   "store (docs/backups.md); keep it at most the Prometheus scrape interval.")
@click.option("--no-backup-sync", is_flag=True, help="Do not pull backup results from the hosts (SSH).")
@click.option("--ca-file", type=click.Path(path_type=Path, dir_okay=False),
              help="CA bundle for the probes (default: lab CA for the lab inventory, else system trust).")
@click.option("--parallelism", type=click.IntRange(1, 256), default=16, show_default=True,
              help="Probes in flight at once.")
@click.option("--allow-unauthenticated-remote", is_flag=True,
              help="Serve a non-loopback address without basic auth or client certificates.")
@click.pass_obj
def exporter(app: AppContext, listen: str, web_config: Path | None, probe_interval: float, no_probes: bool,
             no_queue: bool, backup_sync_interval: float, no_backup_sync: bool, ca_file: Path | None,
             parallelism: int, allow_unauthenticated_remote: bool) -> int:
    """Run the Prometheus exporter until SIGTERM (exit 0) or Ctrl-C (exit 130).

    A non-loopback --listen (`:9520`, `0.0.0.0:9520`, a LAN address) needs authentication in the web
    config (basic_auth_users or client_auth_type: RequireAndVerifyClientCert), or the explicit
    --allow-unauthenticated-remote; otherwise it exits 2.

    Every scrape reads the state store afresh (backups, versions, upgrades, drift, operations);
    app-level probes run in a background thread and their cached results carry
    tnoctl_probe_last_run_timestamp_seconds. A second thread pulls the hosts' backup and drill
    results (timer runs included) into the state store every --backup-sync-interval seconds, over
    the same SSH factory as every other verb. SIGHUP reloads the inventory.

    \b
    Example:
      tnoctl exporter --listen 127.0.0.1:9520 --web-config /etc/tnoctl/web.yml
      curl -s http://127.0.0.1:9520/metrics | grep tnoctl_up
    """
    from tnoctl.exporter import app as exporter_app
    from tnoctl.exporter.server import ExporterServer, parse_listen
    from tnoctl.exporter.webconfig import load_web_config

    try:
        host, port = parse_listen(listen)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    web = load_web_config(web_config) if web_config else None
    if not is_loopback(host) and not (web and web.authenticates) and not allow_unauthenticated_remote:
        raise InvalidInput(f"--listen {listen} serves every network without authentication: configure "
                           "basic_auth_users or client certificates in --web-config, listen on 127.0.0.1, "
                           "or pass --allow-unauthenticated-remote")
    holder = _InventoryHolder(app)
    holder.reload()
    probes = None if no_probes else (lambda: holder.probes(ca_file, no_queue))
    exp = exporter_app.build(app.state_dir, holder.known, probes, probe_interval, parallelism)
    exp.collector.render_gzip()  # render + compress once before serving: the first scrape is then incremental
    # The handlers come before "serving": a supervisor (or a test) that stops the exporter as soon
    # as it announces itself must get a clean exit 0, not a death by the default SIGTERM action.
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGHUP, lambda *_: holder.reload())
    try:
        server = ExporterServer(exp.registry, host, port, web, exp.collector.render,
                                exp.collector.render_gzip).start()
    except OSError as exc:
        raise InvalidInput(f"cannot listen on {listen}: {exc.strerror or exc}") from None
    if exp.worker is not None:
        exp.worker.start()
    syncer = None if no_backup_sync else _backup_syncer(app, backup_sync_interval)
    if syncer is not None:
        syncer.start()
    scheme = "https" if web and web.tls else "http"
    app.info(f"tnoctl exporter: serving {scheme}://{host}:{server.port}/metrics (state {app.state_dir})")
    try:
        done.wait()
    finally:  # SIGTERM: exit 0; Ctrl-C: KeyboardInterrupt, exit 130 like every verb (after a clean stop)
        if exp.worker is not None:
            exp.worker.stop()
        if syncer is not None:
            syncer.stop()
        server.stop()
    return 0


def _backup_syncer(app: AppContext, interval: float):  # -> PeriodicWorker
    """The thread pulling backup results (actions.backup_sync) into the store the collector reads."""
    from tnoctl.actions.backup_sync import sync
    from tnoctl.exporter.worker import PeriodicWorker

    said: set[str] = set()

    def once() -> None:  # a host that stays unreadable is reported once, not every round
        errors = set(sync(app.env).errors)
        for line in sorted(errors - said):
            app.warn(f"backup results not pulled from {line}")
        said.clear()
        said.update(errors)

    return PeriodicWorker("tnoctl-backup-sync", once, interval, on_error=lambda e: app.warn(f"backup sync: {e}"))


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost (an empty host or 0.0.0.0 / :: is every interface)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


class _InventoryHolder:
    """The inventory as last loaded; after a failed reload probes use the previous one (and it warns)."""

    def __init__(self, app: AppContext) -> None:
        self.app = app
        self.inventory = None
        self.failed = False
        self._known = None  # the same mapping object between reloads: the collector keys its cache on it
        self._ssh = None  # one SSH adapter (cached connections) per loaded inventory
        self._secrets = None  # one vault reader for the process: re-read only when vault.yml changes
        self._probes = None  # the round's probe list, rebuilt only when the inventory is reloaded

    def reload(self) -> None:
        from tnoctl.exporter.app import probe_view

        try:  # one inventory for the process: the Env's (cached loader), read by the backup sync thread too
            self.app.env.reload_inventory()
            self.inventory = probe_view(self.app.env.inventory)
            self.failed = False
            self._known = None
            self._ssh = None
            self._probes = None
            self._want_canaries()
        except Exception as exc:  # keep serving the store; the inventory collector reports the failure
            self.failed = True
            self.app.warn(f"inventory not loaded ({getattr(exc, 'message', exc)}); tenants are not filtered")

    def known(self):
        """Tenant → services for the collector; raises when the last load failed (reported as a metric)."""
        from tnoctl.exporter.app import known_from_inventory

        if self.failed:
            raise RuntimeError("inventory failed to load")
        if self._known is None and self.inventory is not None:
            self._known = known_from_inventory(self.inventory)
        return self._known

    def _want_canaries(self) -> None:
        """Tell the vault reader which names the probes will ask for (the tenants' canary passwords)."""
        from tnoctl.exporter.vaultlookup import VaultLookup
        from tnoctl.probes.targets import canary

        if self.app.vault_password_file is None or self.inventory is None:
            self._secrets = None
            return
        if self._secrets is None:
            self._secrets = VaultLookup(self.app.inventory, self.app.vault_password_file)
        self._secrets.want(found[1] for t in self.inventory.tenants if (found := canary(t)) is not None)

    def probes(self, ca_file: Path | None, no_queue: bool):
        """The probe list of a background round, from the current inventory (secrets read when probed).

        Built once per loaded inventory and reused by every round: a probe reads the time, its
        canary password and the host's queue when it runs, so nothing in it goes stale.
        """
        from tnoctl.probes import wiring
        from tnoctl.probes.targets import ProbeOptions

        inv = self.inventory
        if inv is None:
            return []
        if self._probes is not None:
            return self._probes
        opts = ProbeOptions(ca_file or wiring.default_ca_file(self.app.inventory), 10.0, False,
                            inv.platform.tno_office_version)
        if not no_queue and self._ssh is None:
            self._ssh = wiring.ssh_runner(self.app.env.ssh_factory(inv))  # the one SSH factory
        self._probes = wiring.all_probes(inv, opts, None, self._secrets, None if no_queue else self._ssh)
        return self._probes
