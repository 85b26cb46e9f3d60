"""viewcache.py: a host's `tno_tenants` entries come from the content-addressed cache, not from a parse
of every tenant file (issue 18); what it returns is what a parse builds."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from tnoctl.config import validate, viewcache
from tnoctl.config.ansible_view import host_vars
from tnoctl.config.load import load_inventory

LAB = Path(__file__).resolve().parents[2] / "inventories" / "lab"


@pytest.fixture
def inv(tmp_path: Path) -> Path:
    dest = tmp_path / "inv"
    shutil.copytree(LAB, dest, ignore=shutil.ignore_patterns(".tno"))
    old = time.time() - 60
    for path in (dest / "tenants").glob("*.yml"):
        os.utime(path, (old, old))
    return dest


@pytest.fixture
def parses(monkeypatch) -> list[str]:
    """The tenant files parsed (validate.check_tenant_file) from now on."""
    calls: list[str] = []
    real = validate.check_tenant_file

    def check(path, rel, *args, **kwargs):
        calls.append(rel)
        return real(path, rel, *args, **kwargs)

    monkeypatch.setattr(validate, "check_tenant_file", check)
    return calls


def _views(inv: Path, host: str, cache: Path | None, parses: list[str]) -> list[dict]:
    """The host's entries as a new process builds them; ``parses`` then holds the files host_vars parsed."""
    loaded = load_inventory(inv)
    parses.clear()
    return host_vars(loaded, {host}, cache)[host]["tno_tenants"]


def test_a_warm_host_parses_no_tenant_file_and_gets_the_same_entries(inv, tmp_path, parses):
    cache = tmp_path / "cache"
    host = load_inventory(inv).row("givors").placement.mail
    uncached = _views(inv, host, None, parses)
    cold = _views(inv, host, cache, parses)
    assert len(parses) == len(cold) > 1
    warm = _views(inv, host, cache, parses)
    assert parses == []
    assert warm == cold == uncached
    assert json.loads(json.dumps(uncached)) == uncached  # JSON keeps every type an entry has


def test_a_changed_tenant_file_is_parsed_alone(inv, tmp_path, parses):
    cache = tmp_path / "cache"
    host = load_inventory(inv).row("givors").placement.mail
    _views(inv, host, cache, parses)
    path = inv / "tenants" / "givors.yml"
    path.write_text(path.read_text() + "# an edit: new content, same entry\n")
    views = _views(inv, host, cache, parses)
    assert parses == ["tenants/givors.yml"]
    assert _views(inv, host, cache, parses) == views and parses == []


def test_the_retention_defaults_are_part_of_the_key(inv):
    assert viewcache.key({"daily": 7}) != viewcache.key({"daily": 8})


def test_a_corrupt_cache_file_costs_a_parse_not_an_error(inv, tmp_path, parses):
    cache = tmp_path / "cache"
    host = load_inventory(inv).row("givors").placement.mail
    cold = _views(inv, host, cache, parses)
    viewcache.path_of(cache, host).write_text('{"key": "x", "views": [')
    assert _views(inv, host, cache, parses) == cold and len(parses) == len(cold)


def test_an_entry_built_from_a_file_edited_meanwhile_is_not_stored(inv, tmp_path):
    cache = tmp_path / "cache"
    rel = "tenants/givors.yml"
    path = inv / rel

    def build(r: str) -> dict:
        path.write_text(path.read_text() + "# edited while building\n")
        return {"slug": "givors"}

    assert viewcache.host_views(inv, "mail1", [rel], build, {}, cache) == [{"slug": "givors"}]
    stored = json.loads(viewcache.path_of(cache, "mail1").read_text())["views"]
    assert stored == {}


def test_the_cache_file_name_is_a_hash_of_the_host(tmp_path):
    path = viewcache.path_of(tmp_path, "../../etc/x")
    assert path.parent == tmp_path / viewcache.DIR_NAME and ".." not in path.name
