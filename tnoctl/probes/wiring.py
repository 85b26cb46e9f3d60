"""Connect the probes to the rest of tnoctl: vault secrets, the SSH adapter, the lab CA.

Used by ``tnoctl status`` and ``tnoctl exporter`` so both probe exactly the same way.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tnoctl import paths
from tnoctl.errors import OperationFailed
from tnoctl.probes import targets
from tnoctl.probes.base import Probe
from tnoctl.probes.queue import CommandRunner
from tnoctl.probes.targets import ProbeOptions, SecretLookup
from tnoctl.state.store import Store


def default_ca_file(inventory: Path) -> Path | None:
    """``$TNO_CA_FILE`` if set, else the lab's trust bundle for the lab inventory (lab CA + pebble's root:
    ``tno_tls_mode: acme`` certificates come from pebble); None (system trust) otherwise."""
    if os.environ.get("TNO_CA_FILE"):
        return Path(os.environ["TNO_CA_FILE"])
    try:
        if inventory.resolve() == paths.LAB_INVENTORY.resolve():
            return paths.lab_ca_bundle()
    except OSError:
        pass
    return None


def secret_lookup(inventory: Path, vault_password_file: Path | None) -> SecretLookup | None:
    """Vault variable name → value (None if absent), or None without a vault password (no canary login).

    Values are decrypted on demand and only handed to the probe that logs in; never logged.
    """
    if vault_password_file is None:
        return None
    from tnoctl.config.vault import decrypt_value
    from tnoctl.errors import TnoError

    def lookup(name: str) -> str | None:
        try:
            return decrypt_value(inventory, vault_password_file, name)
        except (TnoError, KeyError):
            return None

    return lookup


def ssh_runner(runner: Any) -> CommandRunner:
    """``(host, argv, timeout) → stdout`` over the process's SSH runner (``Env.ssh``); OperationFailed on rc != 0.

    ``runner`` is built in one place (tnoctl.actions.env.default_ssh_factory), never here.
    """

    def run(host: str, argv: list[str], timeout: float) -> str:
        res = runner.run(host, argv, timeout=timeout)
        if not res.ok:
            raise OperationFailed(f"{host}: {argv[0]} exited {res.rc}: {res.stderr.strip()[:120]}")
        return res.stdout

    return run


def all_probes(inventory: Any, opts: ProbeOptions, only: Iterable[str] | None = None,
               secrets: SecretLookup | None = None, ssh: CommandRunner | None = None,
               store: Store | None = None) -> list[Probe]:
    """Network probes, queue probes (if ``ssh``) and the backup-freshness probe (if ``store``)."""
    only = list(only) if only else None
    probes = targets.network_probes(inventory, opts, secrets, only)
    if ssh is not None:
        probes += targets.queue_probes(inventory, ssh, only=only)
    if store is not None:
        probes.append(targets.backup_probe(inventory, store, only))
    return probes
