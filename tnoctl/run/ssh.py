"""The one place tnoctl runs commands over SSH (quick checks, runbook steps, DKIM key reads).

Built on paramiko with host-key checking always on (RejectPolicy, keys from the
known_hosts file the ssh_config names). Commands are argv lists, quoted with
``shlex.join`` for the remote shell: never a caller-built shell string.
Connection parameters come from an OpenSSH client config file: the lab's
``/var/lib/tnoctl/lab/ssh_config`` for the lab inventory, ``$TNO_SSH_CONFIG`` or
``~/.ssh/config`` otherwise.
"""

from __future__ import annotations

import os
import shlex
import threading
from dataclasses import dataclass
from pathlib import Path

import paramiko

from tnoctl import paths
from tnoctl.errors import OperationFailed


@dataclass(frozen=True)
class CommandResult:
    host: str
    argv: tuple[str, ...]
    rc: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.rc == 0


def ssh_config_for(inventory: Path) -> Path:
    """The ssh client config used for an inventory's hosts."""
    env = os.environ.get("TNO_SSH_CONFIG")
    if env:
        return Path(env)
    try:
        if inventory.resolve() == paths.LAB_INVENTORY.resolve():
            return paths.lab_dir() / "ssh_config"
    except OSError:
        pass
    return Path.home() / ".ssh" / "config"


class SshRunner:
    """Runs argv commands on named hosts; one cached connection per host (thread-safe)."""

    def __init__(self, ssh_config: Path, addresses: dict[str, str] | None = None, connect_timeout: float = 10) -> None:
        self.config = paramiko.SSHConfig()
        if ssh_config.exists():
            self.config = paramiko.SSHConfig.from_path(str(ssh_config))
        self.addresses = dict(addresses or {})
        self.connect_timeout = connect_timeout
        self._clients: dict[str, paramiko.SSHClient] = {}
        self._lock = threading.Lock()

    def _connect(self, host: str) -> paramiko.SSHClient:
        with self._lock:
            client = self._clients.get(host)
            if client is not None and client.get_transport() and client.get_transport().is_active():
                return client
            opts = self.config.lookup(host)
            client = paramiko.SSHClient()
            known = opts.get("userknownhostsfile", "~/.ssh/known_hosts").split()[0]
            client.load_host_keys(os.path.expanduser(known))
            client.set_missing_host_key_policy(paramiko.RejectPolicy())
            hostname = opts.get("hostname", self.addresses.get(host, host))
            if hostname == host and host in self.addresses:
                hostname = self.addresses[host]
            try:
                client.connect(
                    hostname,
                    port=int(opts.get("port", 22)),
                    username=opts.get("user", "root"),
                    key_filename=[os.path.expanduser(k) for k in opts.get("identityfile", [])] or None,
                    timeout=self.connect_timeout,
                    banner_timeout=self.connect_timeout,
                    auth_timeout=self.connect_timeout,
                    look_for_keys=not opts.get("identityfile"),
                    allow_agent=False,
                )
            except paramiko.BadHostKeyException as exc:
                raise OperationFailed(f"{host}: host key mismatch ({exc}); refusing to connect") from None
            except paramiko.SSHException as exc:
                raise OperationFailed(f"{host}: ssh: {exc}") from None
            except OSError as exc:
                raise OperationFailed(f"{host}: cannot connect: {exc.strerror or exc}") from None
            self._clients[host] = client
            return client

    def run(
        self, host: str, argv: list[str] | tuple[str, ...], timeout: float = 60, input: bytes | None = None
    ) -> CommandResult:
        """Run ``argv`` on ``host``; returns its exit status and output (never raises on rc != 0).

        ``input`` is fed on stdin (how secrets such as borg passphrases reach a command: never argv).
        """
        client = self._connect(host)
        command = shlex.join(argv)
        try:
            stdin, stdout, stderr = client.exec_command(command, timeout=timeout)
            if input is not None:
                stdin.write(input)
                stdin.channel.shutdown_write()
            out = stdout.read().decode("utf-8", "replace")
            err = stderr.read().decode("utf-8", "replace")
            rc = stdout.channel.recv_exit_status()
        except (paramiko.SSHException, OSError) as exc:
            raise OperationFailed(f"{host}: ssh command failed: {exc}") from None
        return CommandResult(host=host, argv=tuple(argv), rc=rc, stdout=out, stderr=err)

    def close(self) -> None:
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()

    def __enter__(self) -> SshRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
