"""The sixth lab host of the disaster-recovery exercise (tnoctl.lab.spare) and `lab up --host`, without a lab.

The hosts.yml edit is pure and checked against the product's loader (mail3 becomes a valid mail host
with the lab's connection settings); `Lab.up_hosts` boots only the named hosts, in the same order of
steps as `lab up` (asserted with the system-touching steps replaced by recorders); the context manager
puts hosts.yml back byte for byte and removes the machine even when its body fails.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from tnoctl import paths
from tnoctl.cli import main
from tnoctl.cli.context import AppContext
from tnoctl.config import hostsecrets
from tnoctl.config.load import load_inventory
from tnoctl.config.vault import VAULT_REL
from tnoctl.errors import InvalidInput
from tnoctl.lab import lab as lab_module
from tnoctl.lab import spare, topology
from tnoctl.lab.lab import HostStatus, Lab


@pytest.fixture()
def inventory(tmp_path: Path) -> Path:
    copy = tmp_path / "inventory"
    shutil.copytree(paths.LAB_INVENTORY, copy, ignore=shutil.ignore_patterns(".tno"))
    return copy


def test_with_host_adds_a_valid_mail_host(inventory: Path) -> None:
    hosts = inventory / "hosts.yml"
    hosts.write_text(spare.with_host(hosts.read_text(), spare.SPARE_NAME, spare.SPARE_ADDRESS))
    loaded = load_inventory(inventory)
    mail3 = loaded.hosts["mail3"]
    assert mail3.address == "198.18.0.16" and "mail" in mail3.groups
    assert mail3.vars["ansible_user"] == "tnoops" and mail3.vars["ansible_become"] is True
    lab_hosts = topology.lab_hosts(loaded.hosts)  # inside the lab network, operator account: usable
    assert [h.name for h in lab_hosts][-1] == "mail3"
    assert {"mail1", "mail2", "office1", "office2", "backup1"} <= set(loaded.hosts)


@pytest.mark.parametrize("name,address", [("mail1", "198.18.0.16"), ("mail3", "198.18.0.12")])
def test_with_host_refuses_a_name_or_address_in_use(name: str, address: str) -> None:
    text = (paths.LAB_INVENTORY / "hosts.yml").read_text()
    with pytest.raises(InvalidInput, match="already uses"):
        spare.with_host(text, name, address)


class _Recorder:
    """Stands in for the lab steps that touch the system; records their order and arguments."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, running: set[str]) -> None:
        self.steps: list[tuple] = []
        self.running = running
        monkeypatch.setattr(lab_module, "require_root", lambda: None)
        image = SimpleNamespace(rootfs=Path("/nonexistent/rootfs"), name="base-test")
        monkeypatch.setattr(lab_module.base, "ensure_base", lambda cache: self._add("base") or image)
        monkeypatch.setattr(lab_module.sshfiles, "ensure_key", lambda d: self._key(d))
        monkeypatch.setattr(lab_module.net, "ensure_bridge", lambda: self._add("bridge"))
        for name in ("_ensure_ca", "_ensure_apt_repo", "_start_servers", "_write_client_files", "_clean_stale"):
            monkeypatch.setattr(Lab, name, lambda self_, n=name: self._add(n))
        monkeypatch.setattr(Lab, "status", lambda self_: [
            HostStatus(h.name, h.address, "running" if h.name in self.running else "stopped")
            for h in self_.topology.hosts])
        monkeypatch.setattr(lab_module.hosts, "start", lambda lab_dir, host, *a: self._add("start", host.name))
        monkeypatch.setattr(lab_module.hosts, "wait_booted", lambda lab_dir, host, rec: self._add("booted", host.name))
        monkeypatch.setattr(Lab, "_wait_systemd", lambda self_, names=None: self._add("systemd", tuple(names)))
        monkeypatch.setattr(Lab, "_refresh_apt_lists", lambda self_, names=None: self._add("apt", tuple(names)))

    def _add(self, *step: object) -> None:
        self.steps.append(step)

    def _key(self, lab_dir: Path) -> Path:
        key = lab_dir / "id"
        key.with_suffix(".pub").parent.mkdir(parents=True, exist_ok=True)
        key.with_suffix(".pub").write_text("ssh-ed25519 AAAA lab\n")
        return key


def test_up_hosts_boots_only_the_named_host(inventory: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hosts = inventory / "hosts.yml"
    hosts.write_text(spare.with_host(hosts.read_text(), "mail3", "198.18.0.16"))
    rec = _Recorder(monkeypatch, running={"mail1", "mail2", "office1", "office2", "backup1"})
    lab = Lab(inventory, lab_dir=tmp_path / "lab", cache_dir=tmp_path / "cache")

    assert lab.up_hosts(["mail3"]) == ["mail3"]
    assert rec.steps == [("_clean_stale",), ("base",), ("_ensure_ca",), ("_ensure_apt_repo",), ("bridge",),
                         ("_start_servers",), ("start", "mail3"), ("booted", "mail3"), ("_write_client_files",),
                         ("systemd", ("mail3",)), ("apt", ("mail3",))]


def test_up_hosts_keeps_a_running_host_and_refuses_unknown_names(inventory: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    rec = _Recorder(monkeypatch, running={"mail1", "mail2", "office1", "office2", "backup1"})
    lab = Lab(inventory, lab_dir=tmp_path / "lab", cache_dir=tmp_path / "cache")
    assert lab.up_hosts(["mail2"]) == []
    assert not [s for s in rec.steps if s[0] in ("start", "systemd", "apt")]
    rec.steps.clear()
    with pytest.raises(InvalidInput, match="no lab host 'mail3'"):
        lab.up_hosts(["mail3"])
    assert rec.steps == []  # nothing started for a name the inventory does not have


def test_spare_host_restores_hosts_yml_and_removes_the_machine_even_on_failure(
        inventory: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    original = (inventory / "hosts.yml").read_text()
    original_vault = (inventory / VAULT_REL).read_bytes()
    calls: list[tuple[str, str]] = []
    monkeypatch.setattr(Lab, "up_hosts", lambda self, names: calls.append(("up", names[0])) or names)
    monkeypatch.setattr(Lab, "remove_host", lambda self, name: calls.append(("remove", name)) or "stopped")

    with pytest.raises(RuntimeError), spare.spare_host(inventory) as lab:
        assert "mail3" in lab.topology.inventory.hosts
        # the new mail host's secrets exist (a deploy would refuse it otherwise), as `inventory secrets` makes them
        assert hostsecrets.missing(inventory, inventory / "vault-password", ["mail3"]) == []
        raise RuntimeError("the exercise failed")
    assert (inventory / "hosts.yml").read_text() == original
    assert (inventory / VAULT_REL).read_bytes() == original_vault
    assert calls == [("up", "mail3"), ("remove", "mail3")]


def test_cli_lab_up_host_and_fresh_do_not_combine() -> None:
    err = io.StringIO()
    rc = main(["lab", "up", "--host", "mail3", "--fresh"], AppContext(inventory=paths.LAB_INVENTORY,
                                                                        stdout=io.StringIO(), stderr=err))
    assert rc == 2 and "--fresh and --host cannot be combined" in err.getvalue()
