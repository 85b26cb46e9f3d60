"""Where and how to connect to one inventory host, worked out the way Ansible + OpenSSH would (pure).

Ansible's ssh connection runs ``ssh [ansible.cfg ssh_args] -o Port=<ansible_port>
-o IdentityFile=<ansible_ssh_private_key_file> -o User=<ansible_user> -o ConnectTimeout=<timeout>
<ansible_ssh_common_args> <ansible_ssh_extra_args> <ansible_host>``; OpenSSH keeps the *first*
value it sees for an option (command line before config file; IdentityFile accumulates) and then
reads the config file named by ``-F`` (else ``~/.ssh/config`` and ``/etc/ssh/ssh_config``) for the
destination. :func:`resolve` reproduces that and returns the hops to open (jump hosts first).

Understood in the argument strings: ``-F``, ``-o Key=Value``, ``-J``, ``-p``, ``-l``, ``-i``; flags
without argument (``-C``, ``-T``...) are accepted and ignored. Options that matter here:
HostName, Port, User, IdentityFile, IdentitiesOnly, IdentityAgent (``none`` disables the agent),
UserKnownHostsFile, GlobalKnownHostsFile, ProxyJump (``[user@]host[:port]``, comma-separated
chains; a jump host is looked up in the same config file, as OpenSSH does) and ConnectTimeout.
ProxyCommand is refused (use ProxyJump). StrictHostKeyChecking is not read: host keys are always
checked strictly (an unknown or changed key is an error).
"""

from __future__ import annotations

import getpass
import os
import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tnoctl.errors import InvalidInput

FLAGS_WITH_ARGUMENT = frozenset("BbcDEeFIiJLlmOoPpQRSWw")
FLAGS_WITHOUT_ARGUMENT = frozenset("46AaCfGgKkMNnqsTtVvXxYy")
DEFAULT_USER_CONFIG = "~/.ssh/config"
DEFAULT_SYSTEM_CONFIG = "/etc/ssh/ssh_config"
DEFAULT_KNOWN_HOSTS = ("~/.ssh/known_hosts", "~/.ssh/known_hosts2")
DEFAULT_GLOBAL_KNOWN_HOSTS = ("/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2")
DEFAULT_TIMEOUT = 10.0
"""Ansible's default connection timeout (``ansible_timeout``), passed as ConnectTimeout."""
MAX_JUMPS = 8
SHORT_OPTIONS = {"J": "proxyjump", "p": "port", "l": "user", "i": "identityfile"}
"""Short flags that set an option this module uses (other flags with a value are ignored)."""

ConfigLookup = Callable[[str], dict[str, Any]]
"""``hostname -> options`` of an ssh config (keys lower-case; ``identityfile`` etc. are lists)."""
ConfigLoader = Callable[[Sequence[str]], ConfigLookup]
"""Builds a lookup from config file paths (first file wins): paramiko's SSHConfig in ssh.py."""


@dataclass(frozen=True)
class Hop:
    """One SSH connection to open: a jump host or the destination."""

    name: str
    """What the user wrote (inventory host or jump spec), for messages."""
    hostname: str
    port: int
    user: str
    identity_files: tuple[str, ...]
    use_agent: bool
    look_for_keys: bool
    known_hosts: tuple[str, ...]
    global_known_hosts: tuple[str, ...]
    timeout: float


@dataclass(frozen=True)
class Target:
    """How to reach one inventory host: ``hops`` (jump hosts first, destination last) and become."""

    host: str
    hops: tuple[Hop, ...]
    become_user: str | None
    """``sudo -n -u USER`` wraps every command when set (``ansible_become``)."""

    @property
    def destination(self) -> Hop:
        """The last hop: the host itself."""
        return self.hops[-1]

    def wrap(self, argv: Sequence[str]) -> list[str]:
        """The argv to run on the host: ``sudo -n -u USER -- ARGV`` when the host says become."""
        if self.become_user is None:
            return list(argv)
        return ["sudo", "-n", "-u", self.become_user, "--", *argv]


@dataclass
class SshArgs:
    """What an OpenSSH argument string says: config file and options in command-line order."""

    config_file: str | None
    options: list[tuple[str, str]]


def parse_ssh_args(text: str, where: str) -> SshArgs:
    """Parse ``ansible_ssh_common_args``-style text; InvalidInput naming ``where`` on anything unknown."""
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise InvalidInput(f"{where}: cannot split {text!r}: {exc}") from None
    config_file: str | None = None
    options: list[tuple[str, str]] = []
    i = 0
    while i < len(words):
        word = words[i]
        if not word.startswith("-") or len(word) < 2:
            raise InvalidInput(f"{where}: unexpected {word!r} (only ssh options belong here)")
        flags = word[1:]
        while flags:
            flag, flags = flags[0], flags[1:]
            if flag in FLAGS_WITHOUT_ARGUMENT:
                continue
            if flag not in FLAGS_WITH_ARGUMENT:
                raise InvalidInput(f"{where}: unknown ssh option -{flag}")
            if flags:
                value, flags = flags, ""
            else:
                i += 1
                if i >= len(words):
                    raise InvalidInput(f"{where}: ssh option -{flag} needs a value")
                value = words[i]
            if flag == "F":
                config_file = config_file or value
            elif flag == "o":
                options.append(_option(value, where))
            elif flag in SHORT_OPTIONS:
                options.append((SHORT_OPTIONS[flag], value))
        i += 1
    return SshArgs(config_file, options)


def _option(text: str, where: str) -> tuple[str, str]:
    """``Key=Value`` or ``Key Value`` (as OpenSSH's -o accepts) → (lower-case key, value)."""
    key, sep, value = text.partition("=")
    if not sep:
        key, _, value = text.strip().partition(" ")
    key, value = key.strip().lower(), value.strip()
    if not key or not value:
        raise InvalidInput(f"{where}: -o {text!r} is not Key=Value")
    return key, value


def _first(options: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """OpenSSH semantics: the first value of an option wins; IdentityFile and known-hosts files add up."""
    out: dict[str, Any] = {}
    for key, value in options:
        if key == "identityfile":
            out.setdefault(key, []).append(value)
        elif key in ("userknownhostsfile", "globalknownhostsfile"):
            out.setdefault(key, value.split())
        else:
            out.setdefault(key, value)
    return out


def _merge(cmdline: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, Any]:
    """Command-line options first, config-file values for what the command line leaves open."""
    merged = dict(config)
    for key, value in cmdline.items():
        if key == "identityfile":
            merged[key] = [*value, *config.get(key, [])]
        else:
            merged[key] = value
    return merged


def _bool(value: Any) -> bool:
    return str(value).lower() in ("yes", "true")


def _expand(path: str) -> str:
    return os.path.expanduser(path)


def _paths(value: Any) -> tuple[str, ...]:
    """A known-hosts option as file paths (config files give one space-separated string)."""
    items = value.split() if isinstance(value, str) else list(value)
    return tuple(_expand(p) for p in items)


def _port(value: Any, where: str) -> int:
    try:
        port = int(value)
    except (TypeError, ValueError):
        port = 0
    if not 0 < port < 65536:
        raise InvalidInput(f"{where}: Port {value!r} is not a TCP port")
    return port


def _hop(name: str, opts: Mapping[str, Any], where: str, default_timeout: float) -> Hop:
    """A Hop from merged options (defaults as OpenSSH: port 22, local user, default known_hosts)."""
    if str(opts.get("proxycommand", "none")).lower() != "none":
        raise InvalidInput(f"{where}: ProxyCommand is not supported by tnoctl's SSH; use ProxyJump")
    identities = tuple(_expand(p) for p in opts.get("identityfile", []))
    only = _bool(opts.get("identitiesonly", "no"))
    agent = str(opts.get("identityagent", "")).lower() != "none" and not only
    try:
        timeout = float(opts.get("connecttimeout", default_timeout))
    except ValueError:
        raise InvalidInput(f"{where}: ConnectTimeout {opts.get('connecttimeout')!r} is not a number") from None
    return Hop(
        name=name,
        hostname=str(opts.get("hostname", name)),
        port=_port(opts.get("port", 22), where),
        user=str(opts.get("user") or getpass.getuser()),
        identity_files=identities,
        use_agent=agent,
        look_for_keys=not identities and not only,
        known_hosts=_paths(opts.get("userknownhostsfile", DEFAULT_KNOWN_HOSTS)),
        global_known_hosts=_paths(opts.get("globalknownhostsfile", DEFAULT_GLOBAL_KNOWN_HOSTS)),
        timeout=timeout,
    )


def parse_jump(spec: str, where: str) -> tuple[str | None, str, int | None]:
    """``[user@]host[:port]`` or ``ssh://[user@]host[:port]`` → (user, host, port)."""
    text = spec.removeprefix("ssh://")
    user, _, rest = text.rpartition("@")
    host, port = rest, None
    if rest.startswith("["):  # [v6-address]:port
        host, _, tail = rest[1:].partition("]")
        port = _port(tail[1:], where) if tail.startswith(":") else None
    elif rest.count(":") == 1:
        host, _, tail = rest.partition(":")
        port = _port(tail, where)
    if not host:
        raise InvalidInput(f"{where}: ProxyJump {spec!r} names no host")
    return user or None, host, port


def _jumps(value: str, lookup: ConfigLookup, where: str, timeout: float, depth: int) -> list[Hop]:
    """The hops of a ProxyJump value: each jump host resolved through the same config file(s)."""
    if value.lower() == "none":
        return []
    if depth > MAX_JUMPS:
        raise InvalidInput(f"{where}: ProxyJump chain longer than {MAX_JUMPS} hops (a loop?)")
    hops: list[Hop] = []
    for index, spec in enumerate(s.strip() for s in value.split(",")):
        user, host, port = parse_jump(spec, where)
        cmdline = {k: v for k, v in (("user", user), ("port", port)) if v is not None}
        config = lookup(host)
        opts = _merge(cmdline, config)
        if index == 0 and "proxyjump" in config:  # the first jump host may itself sit behind a jump host
            hops += _jumps(str(config["proxyjump"]), lookup, where, timeout, depth + 1)
        opts.pop("proxyjump", None)
        hops.append(_hop(spec, opts, f"{where} (jump host {spec})", timeout))
    return hops


def resolve(host: str, variables: Mapping[str, Any], sources: Mapping[str, str],
            load_config: ConfigLoader) -> Target:
    """The Target of inventory host ``host`` from its connection variables (see the module doc).

    ``sources`` names the file of each variable, for error messages; ``load_config`` reads ssh
    config files (injected: tests pass a fake, ssh.py passes paramiko's parser).
    """

    def where(var: str) -> str:
        return f"{sources.get(var, 'inventory')}: {host}: {var}"

    method = str(variables.get("ansible_become_method", "sudo"))
    if variables.get("ansible_become") and method != "sudo":
        raise InvalidInput(f"{where('ansible_become_method')}: {method!r} is not supported (tnoctl uses sudo -n)")
    timeout = float(variables.get("ansible_timeout", DEFAULT_TIMEOUT))
    options: list[tuple[str, str]] = []
    if "ansible_port" in variables:
        options.append(("port", str(variables["ansible_port"])))
    if "ansible_ssh_private_key_file" in variables:
        options.append(("identityfile", str(variables["ansible_ssh_private_key_file"])))
    if "ansible_user" in variables:
        options.append(("user", str(variables["ansible_user"])))
    options.append(("connecttimeout", str(timeout)))
    config_file: str | None = None
    for var in ("ansible_ssh_common_args", "ansible_ssh_extra_args"):
        if variables.get(var):
            args = parse_ssh_args(str(variables[var]), where(var))
            config_file = config_file or args.config_file
            options += args.options
    files = [_expand(config_file)] if config_file else [_expand(DEFAULT_USER_CONFIG), DEFAULT_SYSTEM_CONFIG]
    lookup = load_config(files)
    destination = str(variables.get("ansible_host", host))
    config = lookup(destination)
    opts = _merge(_first(options), config)
    context = where("ansible_ssh_common_args") if "ansible_ssh_common_args" in variables else f"{host}: ssh options"
    hops = _jumps(str(opts.pop("proxyjump", "none")), lookup, context, timeout, 0)
    hops.append(_hop(host, opts, context, timeout))
    become = bool(variables.get("ansible_become", False))
    return Target(host, tuple(hops), str(variables.get("ansible_become_user", "root")) if become else None)
