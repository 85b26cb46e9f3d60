"""Hostile inventory files (#13): special files, symlinks out of the inventory, alias bombs, duplicate keys.

Each case must end in exit 2 with a `file: where: message` line within seconds (a SIGALRM deadline
turns a hang into a failure), never read a foreign file's content, never print unbounded output.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tnoctl.cli import main
from tnoctl.cli.context import AppContext
from tnoctl.config import vault, yamlio
from tnoctl.errors import InvalidInput

EXAMPLE = Path(__file__).resolve().parents[2] / "inventories" / "example"


@contextmanager
def deadline(seconds: int) -> Iterator[None]:
    """Fail (instead of hanging forever) when the block takes longer than ``seconds``."""
    def boom(signum, frame):
        raise TimeoutError(f"still running after {seconds} s")

    old = signal.signal(signal.SIGALRM, boom)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@pytest.fixture
def inv(tmp_path: Path) -> Path:
    dest = tmp_path / "inv"
    shutil.copytree(EXAMPLE, dest, ignore=shutil.ignore_patterns(".tno"))
    return dest


def validate(inv: Path) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    app = AppContext(inventory=inv, state_dir_override=inv.parent / "state", stdout=out, stderr=err)
    with deadline(20):
        rc = main(["--inventory", str(inv), "inventory", "validate"], app=app)
    return rc, out.getvalue() + err.getvalue()


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_symlink_to_a_device_is_refused_fast(inv, device):
    (inv / "tenants" / "evil.yml").symlink_to(device)
    start = time.monotonic()
    rc, out = validate(inv)
    assert rc == 2
    assert "tenants/evil.yml: (file): tenant file is a symlink pointing outside the inventory" in out
    assert time.monotonic() - start < 10


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_device_is_refused_before_opening_even_without_a_root(device):
    with deadline(5), pytest.raises(yamlio.YamlProblem, match="a character device, not a regular file"):
        yamlio.load_mapping(Path(device), what="tenant file")


def test_symlink_inside_the_inventory_to_a_device_node_is_refused(inv):
    """A link kept inside the inventory must still end at a regular file."""
    os.mkfifo(inv / "tenants" / ".pipe")
    (inv / "tenants" / "evil.yml").symlink_to(inv / "tenants" / ".pipe")
    rc, out = validate(inv)
    assert rc == 2
    assert "tenants/evil.yml: (file): tenant file is a FIFO, not a regular file" in out


def test_fifo_never_blocks(inv):
    os.mkfifo(inv / "tenants" / "evil.yml")
    rc, out = validate(inv)
    assert rc == 2
    assert "tenants/evil.yml: (file): tenant file is a FIFO, not a regular file" in out


def test_symlink_inside_the_inventory_to_a_regular_file_is_allowed(inv):
    shared = inv / "shared"
    shared.mkdir()
    (inv / "tenants" / "bron.yml").rename(shared / "bron.yml")
    (inv / "tenants" / "bron.yml").symlink_to(shared / "bron.yml")
    rc, out = validate(inv)
    assert rc == 0, out


def test_symlink_to_a_secret_file_leaks_nothing(inv, tmp_path):
    secret = tmp_path / "shadow"
    secret.write_text("root:$6$SECRETHASH:19000:0:99999:7:::\nsneaky: key\n")
    (inv / "tenants" / "evil.yml").symlink_to(secret)
    (inv / "tenants" / "shadow.yml").symlink_to("/etc/shadow")
    rc, out = validate(inv)
    assert rc == 2
    assert "SECRETHASH" not in out and "sneaky" not in out and "root:" not in out
    assert "tenants/evil.yml: (file): tenant file is a symlink pointing outside the inventory" in out
    assert "tenants/shadow.yml: (file): tenant file is a symlink pointing outside the inventory" in out


@pytest.mark.parametrize("rel", ["hosts.yml", "group_vars/all/platform.yml"])
def test_hosts_and_platform_files_follow_the_same_rules(inv, rel):
    (inv / rel).unlink()
    os.mkfifo(inv / rel)
    rc, out = validate(inv)
    assert rc == 2
    assert f"{rel}: (file):" in out and "a FIFO, not a regular file" in out


def test_fifo_and_symlink_vault_are_refused(inv, tmp_path):
    path = inv / vault.VAULT_REL
    path.unlink()
    os.mkfifo(path)
    with deadline(5), pytest.raises(InvalidInput, match="vault file is a FIFO"):
        vault.read_vault(inv, inv / "vault-password")
    path.unlink()
    path.symlink_to("/dev/zero")
    with deadline(5), pytest.raises(InvalidInput, match="symlink pointing outside the inventory"):
        vault.vault_names(inv, None)


BOMB = (b"a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
        b"c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
        b"e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
        b"g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]\nh: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]\n"
        b"tno_vault_x: [*h, *h, *h, *h, *h, *h, *h, *h, *h]\n")


def test_vault_alias_bomb_is_refused(inv):
    (inv / vault.VAULT_REL).write_bytes(BOMB)
    with deadline(5), pytest.raises(InvalidInput, match="YAML aliases"):
        vault.read_vault(inv, inv / "vault-password")


def test_duplicate_key_in_a_tenant_file_names_file_and_key(inv):
    path = inv / "tenants" / "bron.yml"
    path.write_text(path.read_text() + "pilot: true\npilot: false\n")
    rc, out = validate(inv)
    assert rc == 2
    assert "tenants/bron.yml: line" in out and "duplicate key 'pilot' (first at line" in out


def test_duplicate_key_in_the_vault_is_an_error(inv):
    path = inv / vault.VAULT_REL
    text = path.read_text()
    first = text.split("\n", 1)[0]  # "tno_vault_x: !vault |"
    block_end = text.index("\ntno_vault_", 1)
    path.write_text(text + text[: block_end + 1])
    with pytest.raises(InvalidInput, match=r"duplicate key '" + first.split(":")[0]):
        vault.vault_names(inv, None)


def test_error_output_is_capped(inv):
    boxes = "".join(f"- {{local: 'Bad {i}', name: x, password_vault: nope}}\n" for i in range(3000))
    (inv / "tenants" / "bron.yml").write_text("slug: bron\nmailboxes:\n" + boxes)
    rc, out = validate(inv)
    assert rc == 2
    lines = out.splitlines()
    assert len(lines) < 60
    assert any("... and" in line and "more errors" in line for line in lines)


def test_inventory_wide_error_output_is_capped(inv):
    for i in range(300):
        (inv / "tenants" / f"junk{i}.yml").write_text("[1]\n")
    rc, out = validate(inv)
    assert rc == 2
    assert "300 errors" in out or "errors" in out.splitlines()[0]
    assert len(out.splitlines()) <= 205
    assert "(inventory): ... and 100 more errors" in out


def test_a_symlinked_tenants_directory_outside_the_inventory_is_refused(inv, tmp_path):
    outside = tmp_path / "outside"
    shutil.move(str(inv / "tenants"), outside)
    (inv / "tenants").symlink_to(outside)
    rc, out = validate(inv)
    assert rc == 2
    assert "tenants/bron.yml: (file): tenant file is a symlink pointing outside the inventory" in out


def test_an_inventory_reached_through_a_symlink_is_fine(inv, tmp_path):
    link = tmp_path / "link-to-inv"
    link.symlink_to(inv)
    rc, out = validate(link)
    assert rc == 0, out
