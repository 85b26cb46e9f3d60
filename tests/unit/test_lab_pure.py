"""Pure parts of the lab: names, /etc/hosts, SANs, ssh files, recipe hash, nspawn argv, states."""

from __future__ import annotations

from pathlib import Path

import pytest

from tnoctl import paths
from tnoctl.config.hosts import Host
from tnoctl.errors import InvalidInput
from tnoctl.lab import aptproxy, base, boot, etchosts, net, sshfiles, topology
from tnoctl.lab.lab import host_state

HOSTS = (
    topology.LabHost("mail1", "198.18.0.11", ("mail",)),
    topology.LabHost("office1", "198.18.0.13", ("office", "proxy")),
)
TENANTS = (
    topology.LabTenant("a", ("a.test", "a-bis.test"), "mail1", "office1"),
    topology.LabTenant("b", ("b.test",), "mail1", None),
)
TOPO = topology.Topology(hosts=HOSTS, tenants=TENANTS)


def test_hosts_file_maps_every_service_name_to_its_host() -> None:
    text = etchosts.render_hosts_file(TOPO)
    lines = text.splitlines()
    assert "198.18.0.1\tlabgw" in lines
    assert (
        "198.18.0.11\tmail1.lab.test mail1 mail.a.test smtp.a.test imap.a.test autoconfig.a.test mta-sts.a.test "
        "mail.a-bis.test smtp.a-bis.test imap.a-bis.test autoconfig.a-bis.test mta-sts.a-bis.test "
        "mail.b.test smtp.b.test imap.b.test autoconfig.b.test mta-sts.b.test"
    ) in lines
    assert "198.18.0.13\toffice1.lab.test office1 office.a.test office.a-bis.test" in lines
    assert "office.b.test" not in text


def test_cert_sans_per_host() -> None:
    sans = etchosts.cert_sans(TOPO)
    assert sans["office1"] == ["office1", "office1.lab.test", "office.a.test", "office.a-bis.test"]
    assert sans["mail1"][:5] == ["mail1", "mail1.lab.test", "mail.a.test", "smtp.a.test", "imap.a.test"]


def test_embedded_lab_inventory_has_the_five_hosts() -> None:
    topo = topology.load(paths.LAB_INVENTORY)
    assert [(h.name, h.address) for h in topo.hosts] == [
        ("mail1", "198.18.0.11"), ("mail2", "198.18.0.12"), ("office1", "198.18.0.13"),
        ("office2", "198.18.0.14"), ("backup1", "198.18.0.15"),
    ]
    assert "proxy" in topo.host("office1").groups
    assert topo.tenants and all(t.mail_host in {"mail1", "mail2", None} for t in topo.tenants)
    assert all(t.office_host in {"office1", "office2", None} for t in topo.tenants)


OPERATOR_VARS = {"ansible_user": "tnoops", "ansible_become": True}


@pytest.mark.parametrize("address", ["10.0.0.5", "192.168.1.2", "198.18.1.5", "not-an-ip"])
def test_hosts_outside_the_lab_network_are_rejected(address: str) -> None:
    hosts = {"mail1": Host("mail1", address, {"mail", "all"}, dict(OPERATOR_VARS))}
    with pytest.raises(InvalidInput) as exc:
        topology.lab_hosts(hosts)
    assert "hosts.yml: mail1: ansible_host must be in 198.18.0.0/24" in exc.value.details[0]


@pytest.mark.parametrize("variables", [{}, {"ansible_user": "root"}, {"ansible_user": "tnoops"},
                                       {"ansible_user": "admin", "ansible_become": True}])
def test_lab_hosts_must_log_in_as_the_operator_with_become(variables: dict) -> None:
    sources = dict.fromkeys(variables, "group_vars/all/connection.yml")
    hosts = {"mail1": Host("mail1", "198.18.0.11", {"mail", "all"}, variables, sources)}
    with pytest.raises(InvalidInput) as exc:
        topology.lab_hosts(hosts)
    assert exc.value.details[0].startswith("group_vars/all/connection.yml: mail1: ansible_user must be 'tnoops'")


def test_embedded_lab_inventory_logs_in_as_the_operator_with_sudo() -> None:
    topo = topology.load(paths.LAB_INVENTORY)
    for host in topo.inventory.hosts.values():
        assert host.vars["ansible_user"] == base.OPERATOR == "tnoops"
        assert host.vars["ansible_become"] is True
        assert "-F /var/lib/tnoctl/lab/ssh_config" in host.vars["ansible_ssh_common_args"]


def test_unknown_host_names_the_valid_ones() -> None:
    with pytest.raises(InvalidInput, match="lab hosts: mail1, office1"):
        TOPO.host("mail9")


def test_known_hosts_lines_come_from_pub_files() -> None:
    pubs = ["ssh-ed25519 AAAAC3Nz mail1\n", "ecdsa-sha2-nistp256 AAAAE2 root@x\n", "garbage\n"]
    assert sshfiles.known_hosts_lines(HOSTS[0], pubs) == [
        "mail1,198.18.0.11 ssh-ed25519 AAAAC3Nz",
        "mail1,198.18.0.11 ecdsa-sha2-nistp256 AAAAE2",
    ]


def test_ssh_config_is_strict_and_names_every_host() -> None:
    text = sshfiles.render_ssh_config(HOSTS, Path("/var/lib/tnoctl/lab"))
    assert "Host mail1 mail1.lab.test 198.18.0.11\n  HostName 198.18.0.11\n" in text
    assert "Host office1 office1.lab.test 198.18.0.13\n  HostName 198.18.0.13\n" in text
    for line in (
        "StrictHostKeyChecking yes", "UserKnownHostsFile /var/lib/tnoctl/lab/known_hosts",
        "GlobalKnownHostsFile /dev/null", "IdentityFile /var/lib/tnoctl/lab/id_ed25519",
        "IdentitiesOnly yes", "User tnoops", "KexAlgorithms curve25519-sha256",
    ):
        assert f"  {line}\n" in text
    assert "StrictHostKeyChecking no" not in text


def test_recipe_hash_is_stable_and_follows_the_recipe(monkeypatch: pytest.MonkeyPatch) -> None:
    first = base.recipe_hash()
    assert first == base.recipe_hash()
    image = base.current(Path("/cache"))
    assert image.tarball == Path(f"/cache/base-bookworm-{first[:12]}.tar.zst")
    assert image.rootfs == Path(f"/cache/base-bookworm-{first[:12]}")
    monkeypatch.setattr(base, "INCLUDE", (*base.INCLUDE, "postfix"))
    assert base.recipe_hash() != first
    monkeypatch.undo()
    monkeypatch.setattr(base, "CONFIG_VERSION", base.CONFIG_VERSION + 1)
    assert base.recipe_hash() != first


def test_base_recipe_keeps_the_lab_contracts() -> None:
    proxy = base.FILES["etc/apt/apt.conf.d/01tno-lab-proxy"]
    assert 'Acquire::http::Proxy "http://198.18.0.1:3142";' in proxy
    assert 'Acquire::http::Proxy::198.18.0.1 "DIRECT";' in proxy
    assert "nameserver" not in base.FILES["etc/resolv.conf"]
    assert {"openssh-server", "systemd", "systemd-sysv", "dbus", "python3", "sudo"} <= set(base.INCLUDE)


def test_base_has_the_operator_with_sudo_and_refuses_root_logins(monkeypatch: pytest.MonkeyPatch) -> None:
    sshd = base.FILES["etc/ssh/sshd_config.d/tno-lab.conf"].splitlines()
    assert "PermitRootLogin no" in sshd and "PasswordAuthentication no" in sshd
    assert base.FILES["etc/sudoers.d/tnoops"] == "tnoops ALL=(ALL:ALL) NOPASSWD: ALL\n"
    assert "requiretty" not in "".join(base.FILES.values())  # Ansible pipelining with become needs no tty
    first = base.recipe_hash()
    monkeypatch.setattr(base, "OPERATOR", "someoneelse")
    assert base.recipe_hash() != first  # another account means another base image


def test_boot_writes_the_operator_authorized_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/bash\n"
                                         "tnoops:x:1000:1000:tnoctl operator:/home/tnoops:/bin/bash\n")
    owners = []
    monkeypatch.setattr(boot.os, "chown", lambda path, uid, gid: owners.append((Path(path).name, uid, gid)))
    boot.write_authorized_keys(tmp_path, "tnoops", "ssh-ed25519 AAAA lab\n")
    keys = tmp_path / "home/tnoops/.ssh/authorized_keys"
    assert keys.read_text() == "ssh-ed25519 AAAA lab\n"
    assert keys.stat().st_mode & 0o777 == 0o600 and keys.parent.stat().st_mode & 0o777 == 0o700
    assert owners == [(".ssh", 1000, 1000), ("authorized_keys", 1000, 1000)]
    assert not (tmp_path / "root/.ssh").exists()


def test_acng_remaps_are_commented_out() -> None:
    conf = "CacheDir: /x\nRemap-debrep: file:deb_mirror*.gz /debian ; file:backends_debian\n" \
           "Remap-secdeb: security.debian.org\nRemap-uburep: file:x\n"
    out = aptproxy.disable_remaps(conf)
    assert "#Remap-debrep:" in out and "#Remap-secdeb:" in out
    assert "\nRemap-uburep: file:x" in out and "CacheDir: /x" in out


def test_nspawn_argv_boots_real_systemd_in_the_host_netns() -> None:
    argv = boot.nspawn_argv("mail2", "/lab/hosts/mail2/merged")
    assert argv[:5] == ["systemd-nspawn", "-q", "-D", "/lab/hosts/mail2/merged", "-M"]
    assert "--network-namespace-path=/run/netns/mail2" in argv
    assert {"-b", "--register=no", "--keep-unit", "--resolv-conf=off", "--link-journal=no"} <= set(argv)


@pytest.mark.parametrize("host", ["mail1", "office2", "backup1", "averyveryverylonghostname"])
def test_veth_names_fit_the_interface_limit(host: str) -> None:
    name = net.veth_name(host)
    assert len(name) <= 15 and name.startswith("ve-")


@pytest.mark.parametrize(
    ("running", "record", "netns", "state"),
    [
        (True, True, True, "running"),
        (False, True, True, "stale"),
        (False, False, True, "stale"),
        (False, True, False, "stale"),
        (False, False, False, "stopped"),
    ],
)
def test_host_state(running: bool, record: bool, netns: bool, state: str) -> None:
    assert host_state(running, record, netns) == state


def test_host_mac_is_stable_and_locally_administered() -> None:
    assert net.host_mac("198.18.0.11") == "02:54:c6:12:00:0b"
    assert net.host_mac("198.18.0.12") != net.host_mac("198.18.0.11")


def test_extra_hosts_get_no_bare_name_the_ca_would_refuse() -> None:
    """The lab CA permits only the five standard bare names: office3 is certified as office3.lab.test."""
    from tnoctl.lab.topology import LabHost, Topology

    topo = Topology((LabHost("office1", "198.18.0.13", ("office",)), LabHost("office3", "198.18.0.23", ("office",))))
    sans = etchosts.cert_sans(topo)
    assert sans["office1"][:2] == ["office1", "office1.lab.test"]
    assert sans["office3"] == ["office3.lab.test"]


def test_each_lab_host_gets_a_cgroup_of_its_own_in_every_hierarchy_nspawn_uses(tmp_path):
    """Five nspawns sharing the caller's /payload made their systemd instances remove each other's unit
    cgroups (219/CGROUP at boot): each host's wrapper moves into <caller's cgroup>/tno-lab-<host> first."""
    from tnoctl.lab.boot import cgroup_hierarchies

    hybrid = "9:name=systemd:/\n4:memory:/process_api/x\n0::/\n"
    for sub in ("systemd", "unified"):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / "cgroup.procs").write_text("")
    assert cgroup_hierarchies(hybrid, tmp_path) == [tmp_path / "systemd", tmp_path / "unified"]
    v2 = tmp_path / "v2"
    (v2 / "user.slice" / "s.scope").mkdir(parents=True)
    (v2 / "cgroup.procs").write_text("")
    assert cgroup_hierarchies("0::/user.slice/s.scope\n", v2) == [v2 / "user.slice" / "s.scope"]
    assert cgroup_hierarchies("0::/\n", tmp_path / "none") == []
    assert cgroup_hierarchies("", v2) == []


def test_release_cgroup_removes_only_the_hosts_empty_dirs(tmp_path, monkeypatch):
    from tnoctl.lab import boot

    parent = tmp_path / "cg"
    (parent / "tno-lab-mail1" / "payload" / "system.slice").mkdir(parents=True)
    (parent / "tno-lab-mail2").mkdir()
    monkeypatch.setattr(boot, "cgroup_hierarchies", lambda text: [parent])
    boot.release_cgroup("mail1", "0::/\n")
    assert not (parent / "tno-lab-mail1").exists() and (parent / "tno-lab-mail2").is_dir()
