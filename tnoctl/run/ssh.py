"""The one place tnoctl runs commands over SSH (backups, restores, queue probes, DKIM reads, runbook steps).

It connects to an inventory host exactly as Ansible would (``SshRunner.for_inventory``): the
host's ``ansible_host``/``ansible_port``/``ansible_user``/``ansible_ssh_private_key_file`` and
``ansible_ssh_common_args`` (``-F`` config file, ``-o ProxyJump=``/``-J`` bastion, known_hosts,
IdentityFile...), resolved by :mod:`tnoctl.run.sshtarget`; ssh-agent keys are offered unless
IdentitiesOnly says otherwise. When the host says ``ansible_become``, every command runs as
``sudo -n -u <ansible_become_user> -- ARGV`` (never a password prompt: a host that wants one
fails the command). Commands are argv lists quoted with ``shlex.join``; secrets go on stdin.

Host keys are always checked strictly (paramiko ``RejectPolicy`` over the known_hosts files the
options name), for the destination and for every jump host: an unknown or changed key is an
error, never learned. A bastion (ProxyJump) is a paramiko transport to the jump host whose
``direct-tcpip`` channel is the socket of the next hop, as ``ssh -J`` does.

Why paramiko and not fabric: fabric (built on paramiko) adds a shell-string ``run``, password
watchers for sudo and an auto-adding host key policy by default; tnoctl needs argv lists,
``sudo -n``, binary stdin/stdout streams (borg passphrases, Maildir exports) and strict keys on
every hop, which are a few lines on paramiko itself. fabric is therefore not a dependency.
"""

from __future__ import annotations

import os
import shlex
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import paramiko

from tnoctl.errors import InvalidInput, OperationFailed
from tnoctl.run.sshtarget import ConfigLookup, Hop, Target, resolve


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


class _Configs:
    """ssh config files parsed once per runner (paramiko's parser; first file wins, like OpenSSH)."""

    def __init__(self) -> None:
        self._parsed: dict[tuple[str, ...], paramiko.SSHConfig] = {}
        self._lock = threading.Lock()

    def __call__(self, files: Sequence[str]) -> ConfigLookup:
        key = tuple(files)
        with self._lock:
            config = self._parsed.get(key)
            if config is None:
                config = paramiko.SSHConfig()
                for path in key:
                    if not os.path.isfile(path):
                        continue
                    try:
                        with open(path) as fh:
                            config.parse(fh)
                    except (OSError, paramiko.ssh_exception.ConfigParseError, ValueError) as exc:
                        raise InvalidInput(f"ssh config {path}: {exc}") from None
                self._parsed[key] = config

        def lookup(hostname: str) -> dict[str, Any]:
            try:
                return dict(config.lookup(hostname))
            except (paramiko.ssh_exception.ConfigParseError, ImportError, ValueError) as exc:
                raise InvalidInput(f"ssh config {', '.join(key)}: {hostname}: {exc}") from None

        return lookup


class SshRunner:
    """Runs argv commands on inventory hosts; one cached connection per host (thread-safe)."""

    def __init__(self, targets: Mapping[str, Callable[[], Target]]) -> None:
        """``targets``: host name -> a function resolving its Target (resolved on first use)."""
        self._targets = dict(targets)
        self._resolved: dict[str, Target] = {}
        self._clients: dict[str, list[paramiko.SSHClient]] = {}
        self._lock = threading.Lock()

    @classmethod
    def for_inventory(cls, inventory: Any) -> SshRunner:
        """A runner for every host of a loaded inventory (``tnoctl.config.load.Inventory``)."""
        configs = _Configs()

        def target_of(host: Any) -> Callable[[], Target]:
            def make() -> Target:
                return resolve(host.name, host.vars, host.var_sources, configs)
            return make

        return cls({name: target_of(h) for name, h in inventory.hosts.items()})

    def target(self, host: str) -> Target:
        """How ``host`` is reached (hops, user, become); InvalidInput for a host not in the inventory."""
        with self._lock:
            found = self._resolved.get(host)
            if found is None:
                make = self._targets.get(host)
                if make is None:
                    raise InvalidInput(f"no host {host!r} in the inventory")
                found = self._resolved[host] = make()
            return found

    # ------------------------------------------------------------------ connections
    @staticmethod
    def _open_hop(hop: Hop, sock: Any, label: str) -> paramiko.SSHClient:
        client = paramiko.SSHClient()
        for path in (*hop.known_hosts, *hop.global_known_hosts):
            if os.path.isfile(path):
                client.load_system_host_keys(path)
        client.set_missing_host_key_policy(paramiko.RejectPolicy())  # never learn a key
        keys = [k for k in hop.identity_files if os.path.isfile(k)]  # OpenSSH skips missing ones too
        try:
            client.connect(
                hop.hostname,
                port=hop.port,
                username=hop.user,
                key_filename=keys or None,
                timeout=hop.timeout,
                banner_timeout=hop.timeout,
                auth_timeout=hop.timeout,
                allow_agent=hop.use_agent,
                look_for_keys=hop.look_for_keys,
                sock=sock,
            )
        except paramiko.BadHostKeyException as exc:
            client.close()
            raise OperationFailed(f"{label}: host key mismatch for {hop.hostname} ({exc}); "
                                  "refusing to connect") from None
        except paramiko.SSHException as exc:
            client.close()
            raise OperationFailed(f"{label}: ssh {hop.user}@{hop.hostname}:{hop.port}: {exc}") from None
        except OSError as exc:
            client.close()
            reason = exc.strerror or exc
            raise OperationFailed(f"{label}: cannot connect to {hop.hostname}:{hop.port}: {reason}") from None
        return client

    def _open(self, target: Target) -> list[paramiko.SSHClient]:
        """Open every hop in turn; the next hop's socket is a direct-tcpip channel of the previous one."""
        chain: list[paramiko.SSHClient] = []
        sock = None
        try:
            for index, hop in enumerate(target.hops):
                label = target.host if index == len(target.hops) - 1 else f"{target.host} (via {hop.name})"
                chain.append(self._open_hop(hop, sock, label))
                if index + 1 < len(target.hops):
                    nxt = target.hops[index + 1]
                    transport = chain[-1].get_transport()
                    assert transport is not None
                    try:
                        sock = transport.open_channel("direct-tcpip", (nxt.hostname, nxt.port), ("127.0.0.1", 0),
                                                      timeout=nxt.timeout)
                    except (paramiko.SSHException, OSError) as exc:
                        raise OperationFailed(f"{target.host}: jump host {hop.name} cannot reach "
                                              f"{nxt.hostname}:{nxt.port}: {exc}") from None
        except BaseException:
            for client in reversed(chain):
                client.close()
            raise
        return chain

    def _connect(self, host: str) -> paramiko.SSHClient:
        target = self.target(host)
        with self._lock:
            chain = self._clients.get(host)
            if chain:
                transport = chain[-1].get_transport()
                if transport is not None and transport.is_active():
                    return chain[-1]
                for client in reversed(chain):
                    client.close()
            chain = self._open(target)
            self._clients[host] = chain
            return chain[-1]

    # ------------------------------------------------------------------ commands
    def command_line(self, host: str, argv: Sequence[str]) -> str:
        """The remote shell command for ``argv`` on ``host`` (with ``sudo -n`` when it says become)."""
        return shlex.join(self.target(host).wrap(argv))

    def run(
        self, host: str, argv: list[str] | tuple[str, ...], timeout: float = 60, input: bytes | None = None
    ) -> CommandResult:
        """Run ``argv`` on ``host``; returns its exit status and output (never raises on rc != 0).

        ``input`` is fed on stdin (how secrets such as borg passphrases reach a command: never argv).
        """
        command = self.command_line(host, argv)
        client = self._connect(host)
        try:
            chan = _exec(client, command, timeout)
            try:
                if input is not None:
                    chan.sendall(input)
                chan.shutdown_write()  # EOF on the command's stdin: nothing else will come
                out = chan.makefile("rb").read().decode("utf-8", "replace")
                err = chan.makefile_stderr("rb").read().decode("utf-8", "replace")
                rc = chan.recv_exit_status()
            finally:
                chan.close()
        except (paramiko.SSHException, OSError) as exc:
            raise OperationFailed(f"{host}: ssh command failed: {exc}") from None
        return CommandResult(host=host, argv=tuple(argv), rc=rc, stdout=out, stderr=err)

    def stream(self, host: str, argv: Sequence[str], write: Callable[[bytes], object], timeout: float) -> int:
        """Run ``argv`` on ``host`` passing its binary stdout to ``write`` in chunks; returns its rc."""
        command = self.command_line(host, argv)
        client = self._connect(host)
        try:
            chan = _exec(client, command, timeout)
            try:
                chan.shutdown_write()
                stdout = chan.makefile("rb")
                while chunk := stdout.read(1 << 20):
                    write(chunk)
                return chan.recv_exit_status()
            finally:
                chan.close()
        except (paramiko.SSHException, OSError) as exc:
            raise OperationFailed(f"{host}: ssh command failed: {exc}") from None

    def close(self) -> None:
        with self._lock:
            for chain in self._clients.values():
                for client in reversed(chain):
                    client.close()
            self._clients.clear()

    def __enter__(self) -> SshRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _exec(client: paramiko.SSHClient, command: str, timeout: float) -> paramiko.Channel:
    """Start ``command`` on a new session channel of ``client`` (what ``SSHClient.exec_command`` does).

    Why not ``exec_command``: it also makes a ``ChannelStdinFile`` whose finalizer takes the channel lock
    (``close()`` -> ``shutdown_write()``). When a reference cycle delays that finalizer to a garbage
    collection that happens to run on paramiko's transport thread while it holds the same lock (handling
    the channel's close), the transport thread deadlocks and every later command on that connection hangs
    (paramiko issue #2685, open in 3.5.1; seen here as an e2e test stuck in ``SshRunner.close``). The
    callers write stdin with ``Channel.sendall`` and ``shutdown_write`` themselves: no stdin file exists.
    """
    transport = client.get_transport()
    if transport is None:
        raise paramiko.SSHException("the SSH connection is closed")
    chan = transport.open_session(timeout=timeout)
    try:
        chan.settimeout(timeout)
        chan.exec_command(command)
    except BaseException:
        chan.close()
        raise
    return chan
