"""The SSH factory: Ansible's connection variables → hops, OpenSSH option parsing, become, ProxyJump (no network)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, ClassVar

import paramiko
import pytest

from tnoctl.config import load_inventory
from tnoctl.config.hosts import load_hosts
from tnoctl.errors import InvalidInput, OperationFailed
from tnoctl.run import ssh as sshmod
from tnoctl.run.ssh import SshRunner
from tnoctl.run.sshtarget import parse_jump, parse_ssh_args, resolve

LAB_CONFIG = {
    "198.18.0.12": {"hostname": "198.18.0.12", "user": "tnoops", "identityfile": ["/lab/id_ed25519"],
                    "identitiesonly": "yes", "userknownhostsfile": "/lab/known_hosts"},
    "backup1": {"hostname": "198.18.0.15", "user": "tnoops", "identityfile": ["/lab/id_ed25519"],
                "identitiesonly": "yes", "userknownhostsfile": "/lab/known_hosts"},
}


def fake_configs(seen: list[tuple[str, ...]] | None = None):
    def load(files):
        if seen is not None:
            seen.append(tuple(files))
        return lambda name: dict(LAB_CONFIG.get(name, {"hostname": name}))
    return load


def test_parse_ssh_args_understands_config_file_options_and_short_flags() -> None:
    args = parse_ssh_args("-C -F /etc/tno/ssh_config -o ProxyJump=ops@bastion:2222 -oUser=x "
                          "-o 'IdentityFile /k' -J j2 -p 2200 -l u -i /k2 -T", "where")
    assert args.config_file == "/etc/tno/ssh_config"
    assert args.options == [("proxyjump", "ops@bastion:2222"), ("user", "x"), ("identityfile", "/k"),
                            ("proxyjump", "j2"), ("port", "2200"), ("user", "u"), ("identityfile", "/k2")]


@pytest.mark.parametrize(("text", "message"), [
    ("-Z", "unknown ssh option -Z"),
    ("-o", "ssh option -o needs a value"),
    ("mail1", "unexpected 'mail1'"),
    ("-o ProxyJump", "is not Key=Value"),
    ("-o 'unclosed", "cannot split"),
])
def test_parse_ssh_args_rejects_what_it_cannot_honour(text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message) as exc:
        parse_ssh_args(text, "group_vars/all/connection.yml: mail1: ansible_ssh_common_args")
    assert str(exc.value).startswith("group_vars/all/connection.yml: mail1: ansible_ssh_common_args: ")


@pytest.mark.parametrize(("spec", "parsed"), [
    ("bastion", (None, "bastion", None)),
    ("ops@bastion:2222", ("ops", "bastion", 2222)),
    ("ssh://ops@10.0.0.1:22", ("ops", "10.0.0.1", 22)),
    ("[2001:db8::1]:2022", (None, "2001:db8::1", 2022)),
])
def test_parse_jump(spec: str, parsed: tuple) -> None:
    assert parse_jump(spec, "w") == parsed


def test_ansible_variables_win_over_common_args_and_config_file() -> None:
    seen: list[tuple[str, ...]] = []
    variables = {"ansible_host": "198.18.0.12", "ansible_port": 2222, "ansible_user": "ops",
                 "ansible_ssh_private_key_file": "/keys/ops",
                 "ansible_ssh_common_args": "-F /lab/ssh_config -o User=ignored -o Port=1 -o IdentityFile=/k2"}
    target = resolve("mail2", variables, {}, fake_configs(seen))
    assert seen == [("/lab/ssh_config",)]
    (hop,) = target.hops
    assert (hop.hostname, hop.port, hop.user) == ("198.18.0.12", 2222, "ops")
    assert hop.identity_files == ("/keys/ops", "/k2", "/lab/id_ed25519")  # IdentityFile adds up, cmdline first
    assert hop.known_hosts == ("/lab/known_hosts",)
    assert (hop.use_agent, hop.look_for_keys) == (False, False)  # IdentitiesOnly yes
    assert target.become_user is None
    assert target.wrap(["cat", "/etc/x"]) == ["cat", "/etc/x"]


def test_without_config_file_the_user_and_system_configs_are_read_and_the_agent_is_used(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "/home/op")
    seen: list[tuple[str, ...]] = []
    target = resolve("mail-a", {"ansible_host": "198.18.0.21", "ansible_user": "tnoops"}, {}, fake_configs(seen))
    assert seen == [("/home/op/.ssh/config", "/etc/ssh/ssh_config")]
    hop = target.destination
    assert (hop.hostname, hop.port, hop.user, hop.use_agent, hop.look_for_keys) == (
        "198.18.0.21", 22, "tnoops", True, True)
    assert hop.known_hosts == ("/home/op/.ssh/known_hosts", "/home/op/.ssh/known_hosts2")


def test_become_wraps_every_command_in_sudo_n() -> None:
    target = resolve("mail1", {"ansible_user": "tnoops", "ansible_become": True}, {}, fake_configs())
    assert target.wrap(["cat", "/etc/opendkim/keys/a b"]) == ["sudo", "-n", "-u", "root", "--", "cat",
                                                              "/etc/opendkim/keys/a b"]
    other = resolve("mail1", {"ansible_become": True, "ansible_become_user": "vmail"}, {}, fake_configs())
    assert other.wrap(["id"]) == ["sudo", "-n", "-u", "vmail", "--", "id"]


def test_other_become_methods_and_proxycommand_are_refused() -> None:
    with pytest.raises(InvalidInput, match="ansible_become_method: 'su' is not supported"):
        resolve("m", {"ansible_become": True, "ansible_become_method": "su"},
                {"ansible_become_method": "host_vars/m.yml"}, fake_configs())
    with pytest.raises(InvalidInput, match="ProxyCommand is not supported"):
        resolve("m", {"ansible_ssh_common_args": "-o ProxyCommand='nc %h %p'"}, {}, fake_configs())


def test_proxyjump_resolves_the_jump_host_through_the_same_config() -> None:
    variables = {"ansible_host": "198.18.0.12", "ansible_user": "tnoops", "ansible_become": True,
                 "ansible_ssh_common_args": "-F /lab/ssh_config -o ProxyJump=backup1"}
    target = resolve("mail2", variables, {}, fake_configs())
    jump, dest = target.hops
    assert (jump.name, jump.hostname, jump.user, jump.identity_files, jump.known_hosts) == (
        "backup1", "198.18.0.15", "tnoops", ("/lab/id_ed25519",), ("/lab/known_hosts",))
    assert (dest.hostname, dest.user) == ("198.18.0.12", "tnoops")
    chained = resolve("mail2", {"ansible_ssh_common_args": "-J ops@b1:2201,b2"}, {}, fake_configs())
    assert [(h.hostname, h.port) for h in chained.hops] == [("b1", 2201), ("b2", 22), ("mail2", 22)]
    assert chained.hops[0].user == "ops"


class FakeChannel:
    def __init__(self, dest: tuple[str, int]) -> None:
        self.dest = dest


class FakeTransport:
    def __init__(self, log: list) -> None:
        self.log = log

    def open_channel(self, kind: str, dest: tuple[str, int], src: tuple[str, int], timeout: float) -> FakeChannel:
        self.log.append(("channel", kind, dest))
        return FakeChannel(dest)

    def open_session(self, timeout: float) -> FakeSession:
        return FakeSession(self.log)

    def is_active(self) -> bool:
        return True


class FakeSession:
    """A session channel: records the command; ``stop here`` as paramiko would fail, or a finished command."""

    script: ClassVar[tuple[bytes, bytes, int] | None] = None  # (stdout, stderr, rc); None: exec fails

    def __init__(self, log: list) -> None:
        self.log = log

    def settimeout(self, timeout: float) -> None:
        self.log.append(("timeout", timeout))

    def exec_command(self, command: str) -> None:
        self.log.append(("exec", command))
        if self.script is None:
            raise paramiko.SSHException("stop here")

    def sendall(self, data: bytes) -> None:
        self.log.append(("stdin", data))

    def shutdown_write(self) -> None:
        self.log.append(("eof",))

    def makefile(self, mode: str) -> io.BytesIO:
        return io.BytesIO(self.script[0])

    def makefile_stderr(self, mode: str) -> io.BytesIO:
        return io.BytesIO(self.script[1])

    def makefile_stdin(self, *args: Any) -> None:
        raise AssertionError("a ChannelStdinFile deadlocks paramiko's transport when collected (issue #2685)")

    def recv_exit_status(self) -> int:
        return self.script[2]

    def close(self) -> None:
        self.log.append(("close",))


class FakeClient:
    """Records what SshRunner asks of paramiko: known_hosts files, policy, connect arguments."""

    log: ClassVar[list] = []

    def __init__(self) -> None:
        self.known: list[str] = []
        self.policy: Any = None

    def load_system_host_keys(self, path: str) -> None:
        self.known.append(path)

    def set_missing_host_key_policy(self, policy: Any) -> None:
        self.policy = policy

    def connect(self, hostname: str, **kw: Any) -> None:
        sock = kw["sock"]
        self.log.append(("connect", hostname, kw["username"], kw["key_filename"], kw["allow_agent"],
                         sock.dest if sock else None, type(self.policy).__name__, tuple(self.known)))

    def get_transport(self) -> FakeTransport:
        return FakeTransport(self.log)

    def exec_command(self, command: str, timeout: float):
        raise AssertionError("SshRunner must not use SSHClient.exec_command (its stdin file can deadlock)")

    def close(self) -> None:
        pass


def test_runner_opens_the_jump_host_then_a_direct_tcpip_channel_with_strict_keys(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    known = tmp_path / "known_hosts"
    known.write_text("")
    key = tmp_path / "id"
    key.write_text("")
    config = tmp_path / "ssh_config"
    config.write_text(f"Host backup1\n  HostName 198.18.0.15\nHost *\n  User tnoops\n  IdentityFile {key}\n"
                      f"  IdentitiesOnly yes\n  UserKnownHostsFile {known}\n")
    FakeClient.log = []
    monkeypatch.setattr(sshmod.paramiko, "SSHClient", FakeClient)
    inventory = type("Inv", (), {})()
    host = type("H", (), {"name": "mail2", "vars": {
        "ansible_host": "198.18.0.12", "ansible_become": True,
        "ansible_ssh_common_args": f"-F {config} -o ProxyJump=backup1"}, "var_sources": {}})()
    inventory.hosts = {"mail2": host}
    runner = SshRunner.for_inventory(inventory)
    with pytest.raises(OperationFailed, match="stop here"):
        runner.run("mail2", ["borg", "list", "a b"])
    assert FakeClient.log == [
        ("connect", "198.18.0.15", "tnoops", [str(key)], False, None, "RejectPolicy", (str(known),)),
        ("channel", "direct-tcpip", ("198.18.0.12", 22)),
        ("connect", "198.18.0.12", "tnoops", [str(key)], False, ("198.18.0.12", 22), "RejectPolicy", (str(known),)),
        ("timeout", 60), ("exec", "sudo -n -u root -- borg list 'a b'"), ("close",),
    ]
    FakeClient.log.clear()
    FakeSession.script = (b"listed\n", b"warn\n", 3)
    try:
        result = runner.run("mail2", ["borg", "list"], input=b"passphrase")
    finally:
        FakeSession.script = None
    assert (result.rc, result.stdout, result.stderr) == (3, "listed\n", "warn\n")
    # stdin through the channel itself then EOF (no ChannelStdinFile: FakeSession.makefile_stdin fails)
    assert FakeClient.log == [("timeout", 60), ("exec", "sudo -n -u root -- borg list"), ("stdin", b"passphrase"),
                              ("eof",), ("close",)]
    with pytest.raises(InvalidInput, match="no host 'mail9' in the inventory"):
        runner.run("mail9", ["true"])


def test_connection_variables_follow_ansible_precedence(tmp_path: Path) -> None:
    (tmp_path / "group_vars/all").mkdir(parents=True)
    (tmp_path / "group_vars/mail").mkdir(parents=True)
    (tmp_path / "host_vars").mkdir()
    (tmp_path / "hosts.yml").write_text(
        "all:\n  vars: {ansible_user: fromfile, ansible_port: 2200}\n  children:\n"
        "    mail:\n      vars: {ansible_become_user: mailgroup}\n      hosts:\n"
        "        mail1: {ansible_host: 198.18.0.11}\n        mail2: {ansible_host: 198.18.0.12, ansible_port: 2202}\n")
    (tmp_path / "group_vars/all/connection.yml").write_text("ansible_user: tnoops\nansible_become: yes\n"
                                                            "ansible_port: 22\nunrelated: 1\n")
    (tmp_path / "group_vars/all/vault.yml").write_text("tno_vault_x: !vault |\n  $ANSIBLE_VAULT;1.1;AES256\n")
    (tmp_path / "group_vars/mail/ssh.yml").write_text("ansible_ssh_common_args: -J ops@bastion\n")
    (tmp_path / "host_vars/mail1.yml").write_text("ansible_user: special\n")
    hosts, errors = load_hosts(tmp_path / "hosts.yml")
    assert [e for e in errors if "required group" not in e] == []
    one, two = hosts["mail1"], hosts["mail2"]
    assert one.vars == {"ansible_user": "special", "ansible_port": 22, "ansible_become": True,
                        "ansible_become_user": "mailgroup", "ansible_ssh_common_args": "-J ops@bastion",
                        "ansible_host": "198.18.0.11"}
    assert one.var_sources["ansible_user"] == "host_vars/mail1.yml"
    assert two.vars["ansible_user"] == "tnoops" and two.vars["ansible_port"] == 2202
    assert two.var_sources["ansible_become"] == "group_vars/all/connection.yml"


def test_bad_connection_variables_are_reported_with_file_and_field(tmp_path: Path) -> None:
    (tmp_path / "group_vars/all").mkdir(parents=True)
    (tmp_path / "hosts.yml").write_text("all:\n  children:\n    mail:\n      hosts:\n"
                                        "        mail1: {ansible_port: 70000, ansible_become: perhaps}\n")
    (tmp_path / "group_vars/all/connection.yml").write_text("ansible_user: '{{ lookup(\"env\", \"USER\") }}'\n")
    _hosts, errors = load_hosts(tmp_path / "hosts.yml")
    assert "hosts.yml: all.children.mail.hosts.mail1.ansible_port: 70000 is not a TCP port" in errors
    assert "hosts.yml: all.children.mail.hosts.mail1.ansible_become: 'perhaps' is not a boolean" in errors
    assert ("group_vars/all/connection.yml: ansible_user: templated connection variables are not supported "
            "(write the value)") in errors


@pytest.mark.parametrize("name", ["lab", "example"])
def test_shipped_inventories_log_in_as_the_operator_with_sudo(name: str) -> None:
    inventory = load_inventory(Path(__file__).resolve().parents[2] / "inventories" / name)
    runner = SshRunner.for_inventory(inventory)
    for host in inventory.hosts:
        target = runner.target(host)
        assert target.destination.user == "tnoops"
        assert runner.command_line(host, ["postqueue", "-j"]) == "sudo -n -u root -- postqueue -j"
    if name == "example":
        assert [h.hostname for h in runner.target("mail-a").hops] == ["bastion.example", "198.18.0.21"]
