"""The backup host's SSH side (issue 13): per-repository storage quota, root-owned authorized_keys.

No host needed: the role's template is rendered with jinja2 and its tasks read as YAML.
"""

from __future__ import annotations

from pathlib import Path

import jinja2
import pytest
import yaml
from pydantic import ValidationError

from tnoctl import paths
from tnoctl.config.schema import Platform

ROLE = Path(paths.__file__).resolve().parent.parent / "roles" / "tno_backup"
BASE = {"tno_platform_name": "p", "tno_office_version": "1", "tno_office_apt_repo_url": "http://a.example",
        "tno_office_apt_suite": "s", "tno_office_apt_components": ["main"], "tno_office_apt_keyring_src": "/k",
        "tno_tls_cert_dir": "/c", "tno_backup_host": "backup1"}


def _authorized_keys(quota: str) -> list[str]:
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, extensions=["jinja2.ext.loopcontrols"])
    env.filters["comment"] = lambda text: f"# {text}"
    template = env.from_string((ROLE / "templates" / "authorized_keys.j2").read_text())
    text = template.render(
        ansible_managed="managed", tno_backup_repo_root="/srv/tno-backup", tno_backup_storage_quota=quota,
        tno_all_tenants=[{"slug": "givors", "mail_host": "mail1", "office_host": "office1"}],
        hostvars={"mail1": {"__tno_backup_pubkeys": {"givors": "ssh-ed25519 AAAAmail root@mail1"}},
                  "office1": {"__tno_backup_pubkeys": {"givors.office": "ssh-ed25519 AAAAoffice root@office1"}}},
        __tno_backup_existing_lines=[])
    return [line for line in text.splitlines() if line.startswith("command=")]


def test_every_key_gets_the_platform_storage_quota() -> None:
    lines = _authorized_keys("500G")
    assert len(lines) == 2
    for line in lines:
        assert line.startswith('command="borg serve --append-only --restrict-to-repository /srv/tno-backup/givors '
                               '--storage-quota 500G",restrict ssh-ed25519 ')


def test_no_quota_setting_no_flag() -> None:
    assert all("--storage-quota" not in line for line in _authorized_keys(""))


@pytest.mark.parametrize("value", ["500G", "2T", "10M", "", "99M"])
def test_platform_storage_quota_accepts(value: str) -> None:
    assert Platform(**BASE, tno_backup_storage_quota=value).tno_backup_storage_quota == value


@pytest.mark.parametrize("value", ["9M", "1.5G", "500g", "0G", "500G\n", "500G --append-only", "-1G", "1E"])
def test_platform_storage_quota_rejects(value: str) -> None:
    with pytest.raises(ValidationError, match="tno_backup_storage_quota"):
        Platform(**BASE, tno_backup_storage_quota=value)


def test_lab_and_example_platforms_set_a_quota() -> None:
    for inventory in ("lab", "example"):
        platform = yaml.safe_load((paths.LAB_INVENTORY.parent / inventory / "group_vars" / "all" / "platform.yml")
                                  .read_text())
        assert Platform(**platform).tno_backup_storage_quota


def _task(name_part: str) -> dict:
    tasks = yaml.safe_load((ROLE / "tasks" / "server.yml").read_text())
    (task,) = [t for t in tasks if name_part in t["name"]]
    return task


def _server_files() -> dict:
    """The arguments of the backup host's one tno_files call (issue 19)."""
    return _task("append-only, single-repository forced command")["tno_files"]


def test_authorized_keys_is_roots_and_read_only_for_the_serve_account() -> None:
    """Before: owner tnobackup, 0600: a process running as the serve account could rewrite its forced commands."""
    args = _server_files()
    (entry,) = [f for f in args["files"] if f["dest"].endswith("/.ssh/authorized_keys")]
    assert entry["src"] == "authorized_keys.j2"
    assert entry.get("owner", args["owner"]) == "root" and entry["group"] == "{{ tno_backup_user }}"
    mode = int(entry["mode"], 8)
    assert mode & 0o022 == 0 and mode & 0o040  # group reads, nobody else writes


def test_the_serve_accounts_home_and_ssh_dir_are_roots() -> None:
    """A writable home would let the account rename ~/.ssh away and plant its own authorized_keys."""
    directories = {d["path"]: d for d in _server_files()["directories"]}
    for path in ("{{ tno_backup_user_home }}", "{{ tno_backup_user_home }}/.ssh"):
        assert directories[path].get("owner", "root") == "root" and directories[path]["mode"] == "0755"
    owned = [p for p, d in directories.items() if d.get("owner") == "{{ tno_backup_user }}"]
    assert owned and not any(p.endswith("/.ssh") or p == "{{ tno_backup_user_home }}" for p in owned)
