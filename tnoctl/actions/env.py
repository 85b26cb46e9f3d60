"""The one environment of a tnoctl process: inventory, state dir, vault, SSH, playbook runner, clock, output.

Built once (the CLI's ``AppContext.env``, or a test with fakes) and passed to every action, so an
action never reads global paths, ``sys.stdout`` or builds its own SSH client or ansible-runner call.
It replaces the former per-verb environments (``RunContext``, ``BackupEnv``, ``UpgradeEnv``).

Two seams make orchestration testable without hosts:

* ``playbooks`` (a :class:`PlaybookRunner`): the real one wraps
  :func:`tnoctl.run.ansible.run_playbook` with live progress and vault redaction; tests pass
  ``tests/unit/fakes.FakePlaybookRunner`` and assert the ordered calls;
* ``ssh_factory``: builds the SSH runner from the loaded inventory, the ONE place SSH is set up.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import IO, TYPE_CHECKING, Protocol

from tnoctl.config.load import Inventory
from tnoctl.plan.calls import PlaybookCall
from tnoctl.state.store import Store

if TYPE_CHECKING:  # imported where used: a read verb never pays for ansible-runner and paramiko (issue 18)
    from tnoctl.run.ansible import RunResult
    from tnoctl.run.ssh import SshRunner


@dataclass
class Output:
    """How actions talk to the operator: results on stdout, progress and warnings on stderr."""

    stdout: IO[str] = field(default_factory=lambda: sys.stdout)
    stderr: IO[str] = field(default_factory=lambda: sys.stderr)

    def info(self, msg: str) -> None:
        """One progress line on stderr (stdout stays clean for ``--json``)."""
        self.stderr.write(f"{msg}\n")
        self.stderr.flush()

    def warn(self, msg: str) -> None:
        """One warning line on stderr."""
        self.stderr.write(f"tnoctl: warning: {msg}\n")
        self.stderr.flush()

    @property
    def progress_stream(self) -> IO[str]:
        """Where live playbook progress is drawn."""
        return self.stderr


class PlaybookRunner(Protocol):
    """Runs one planned playbook call; injectable so unit tests record calls instead of running Ansible."""

    def run(
        self,
        call: PlaybookCall,
        *,
        run_id: str,
        hosts: Sequence[str],
        title: str,
        cancel: Callable[[], bool] | None = None,
    ) -> RunResult:
        """Run ``call``; ``hosts`` and ``title`` feed the live progress display (either empty: none).

        ``cancel`` is polled while the playbook runs; True stops it (result status ``canceled``).
        """
        ...


class AnsiblePlaybookRunner:
    """The real runner: ansible-runner via :func:`tnoctl.run.ansible.run_playbook`, progress, redaction."""

    def __init__(self, env: Env) -> None:
        self.env = env

    def run(
        self,
        call: PlaybookCall,
        *,
        run_id: str,
        hosts: Sequence[str],
        title: str,
        cancel: Callable[[], bool] | None = None,
    ) -> RunResult:
        """Run one playbook with the environment's inventory, state dir and vault password file."""
        from tnoctl.run.ansible import run_playbook
        from tnoctl.run.progress import RunProgress

        env = self.env
        env.scope_hosts(call.limit)  # the scrubber covers what this run can handle, not the whole vault

        def go(on_event: Callable[[dict], None] | None) -> RunResult:
            return run_playbook(
                call,
                inventory=env.inventory_path,
                state_dir=env.state_dir,
                run_id=run_id,
                vault_password_file=env.vault_password_file,
                on_event=on_event,
                redact=env.redact,
                cancel=cancel,
            )

        if not title or not hosts:  # parallel runs (upgrade batches) log their own lines instead
            return go(None)
        with RunProgress(env.output.progress_stream, list(hosts), title) as progress:
            return go(progress)


def default_ssh_factory(inventory: Inventory) -> SshRunner:
    """The ONE place tnoctl builds its SSH client for an inventory's hosts.

    Returns a :class:`tnoctl.backup.remote.BackupSsh` (an :class:`SshRunner` with stdin and borg
    helpers) so backup, restore and upgrade snapshots use the same connections as every other verb.
    """
    from tnoctl.backup.remote import BackupSsh

    return BackupSsh.for_inventory(inventory)


class Env:
    """Everything an action needs from the outside world; cheap to build, lazy in what it loads."""

    def __init__(
        self,
        inventory_path: Path,
        state_dir: Path,
        vault_password_file: Path | None = None,
        output: Output | None = None,
        *,
        clock: Callable[[], float] = time.time,
        playbooks: PlaybookRunner | None = None,
        ssh_factory: Callable[[Inventory], SshRunner] = default_ssh_factory,
        inventory: Inventory | None = None,
        redact: Callable[[str], str] | None = None,
    ) -> None:
        self.inventory_path = Path(inventory_path)
        self.state_dir = Path(state_dir)
        self.vault_password_file = vault_password_file
        self.output = output or Output()
        self.clock = clock
        self.playbooks: PlaybookRunner = playbooks if playbooks is not None else AnsiblePlaybookRunner(self)
        self.ssh_factory = ssh_factory
        self._ssh: SshRunner | None = None
        self._scoped: set[str] | None = None  # tenants a partial scrubber covers (None: no partial one)
        if inventory is not None:
            self.__dict__["inventory"] = inventory  # pre-seed the cached_property (tests)
        if redact is not None:
            self.__dict__["redact"] = redact

    @classmethod
    def build(
        cls,
        inventory_path: Path,
        state_dir: Path,
        vault_password_file: Path | None,
        output: Output | None = None,
        *,
        clock: Callable[[], float] = time.time,
        playbooks: PlaybookRunner | None = None,
        ssh_factory: Callable[[Inventory], SshRunner] = default_ssh_factory,
    ) -> Env:
        """The environment of one process (the CLI calls it once through ``AppContext.env``)."""
        return cls(inventory_path, state_dir, vault_password_file, output, clock=clock, playbooks=playbooks,
                   ssh_factory=ssh_factory)

    @cached_property
    def inventory(self) -> Inventory:
        """The validated inventory, loaded on first use and kept for the process."""
        from tnoctl.config import load_inventory

        return load_inventory(self.inventory_path, self.vault_password_file, cache_dir=self.state_dir / "cache")

    def reload_inventory(self) -> None:
        """Forget the cached inventory (after an action wrote to it, e.g. ``tenant add``)."""
        self.__dict__.pop("inventory", None)

    @property
    def ssh(self) -> SshRunner:
        """The SSH runner (one connection cache per process), created on first use; closed by :meth:`close`."""
        if self._ssh is None:
            self._ssh = self.ssh_factory(self.inventory)
        return self._ssh

    @cached_property
    def redact(self) -> Callable[[str], str]:
        """The vault secret scrubber: registers every vault value once, then masks them in any text."""
        from tnoctl.config.vault import secret_scrubber

        return secret_scrubber(self.inventory_path, self.vault_password_file)

    def scope_secrets(self, slugs: Iterable[str]) -> None:
        """Build the scrubber from the secrets of these tenants only (plus the platform's).

        A deploy or plan limited to some hosts calls this before its run: only the values the run
        can handle are decrypted (~7 ms per inline value, ~5 ms per tenant file), never the whole
        fleet's vault. Additive: a later call registers the secrets of tenants not covered yet
        (several runs in one process, e.g. upgrade waves). No-op once the full scrubber exists.
        """
        if "redact" in self.__dict__ and self._scoped is None:
            return
        if self.vault_password_file is None:  # nothing can be decrypted: no tenant file to read for names
            self.__dict__["redact"] = self.redact
            return
        from tnoctl.backup.naming import passphrase_var
        from tnoctl.config.vault import platform_secret_names, secret_scrubber, split_secret_names

        covered = self._scoped or set()
        new = [slug for slug in dict.fromkeys(slugs) if slug not in covered]
        if self._scoped is not None and not new:
            return
        names = [] if self._scoped is not None else platform_secret_names(self.inventory_path,
                                                                           self.vault_password_file)
        split_names, others = split_secret_names(self.inventory_path, self.vault_password_file, new)
        names += split_names  # a tenant with its own vault file: all of that file, no tenant file parsed
        for slug in others:
            tenant = self.inventory.tenant(slug)
            names += [box.password_vault for box in tenant.mailboxes] + [passphrase_var(slug)]
        self._scoped = covered | set(new)
        self.__dict__["redact"] = secret_scrubber(self.inventory_path, self.vault_password_file, names)

    def scope_hosts(self, hosts: Sequence[str]) -> None:
        """:meth:`scope_secrets` for the tenants these hosts serve; no hosts (a whole-fleet run) or a name
        that is no inventory host (a pattern): every secret."""
        if hosts and set(hosts) <= set(self.inventory.hosts):
            self.scope_secrets(slug for host in hosts for slug in self.inventory.slugs_on_host(host))
        elif self._scoped is not None:  # a partial scrubber would miss what a fleet-wide run handles
            self.__dict__.pop("redact", None)
            self._scoped = None

    @property
    def store(self) -> Store:
        """The state store the exporter reads."""
        return Store(self.state_dir)

    def close(self) -> None:
        """Close the SSH connections, if any were opened."""
        if self._ssh is not None:
            self._ssh.close()
            self._ssh = None

    def __enter__(self) -> Env:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
