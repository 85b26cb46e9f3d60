"""Safe YAML reading (caps, aliases, binary) and the validated-parse cache / process pool of `scan`."""

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from tnoctl.config import index, scan, yamlio
from tnoctl.config.load import validate_inventory
from tnoctl.errors import InvalidInput

LAB = Path(__file__).resolve().parents[2] / "inventories" / "lab"


@pytest.mark.parametrize(("data", "where", "text"), [
    (b"[" * 100_000, "line 1", "nesting depth"),
    (b"x: 1" + b"0" * 6000, "(file)", "invalid YAML: ValueError"),
    (b"\xff\xfe", "(file)", "not UTF-8"),
    (b"a: 1\x00", "(file)", "NUL"),
    (b"a: !!python/name:os.system\n", "line 1", "could not determine a constructor"),
    (b"a: &x [1]\nb: *x\n", "(file)", "aliases"),
    (b"a: " + b"A" * (yamlio.MAX_BYTES + 1), "(file)", "more than the"),
])
def test_loads_refuses_hostile_documents(data, where, text):
    with pytest.raises(yamlio.YamlProblem) as err:
        yamlio.loads(data)
    assert err.value.where == where and text in err.value.message
    assert "\n" not in err.value.message


def test_star_in_a_string_is_not_an_alias():
    assert yamlio.loads(b"a: '*not an alias*'\n") == {"a": "*not an alias*"}


def test_libyaml_is_used():
    import yaml

    assert yaml.__with_libyaml__ and issubclass(yamlio.SafeLoader, yaml.CSafeLoader)


@pytest.fixture
def inv(tmp_path: Path) -> Path:
    dest = tmp_path / "inv"
    shutil.copytree(LAB, dest, ignore=shutil.ignore_patterns(".tno"))
    return dest


def age(path: Path, seconds: float = 60) -> None:
    """Make a file look old, so the cache may trust it (files younger than RACY_NS are re-parsed)."""
    old = time.time() - seconds
    os.utime(path, (old, old))


def test_cache_hit_miss_and_racy_files(inv, tmp_path):
    for path in (inv / "tenants").glob("*.yml"):
        age(path)
    cache = tmp_path / "cache"
    assert validate_inventory(inv, cache_dir=cache).stats == {"files": 7, "parsed": 7, "cached": 0, "hashed": 7}
    assert validate_inventory(inv, cache_dir=cache).stats == {"files": 7, "parsed": 0, "cached": 7, "hashed": 0}
    givors = inv / "tenants" / "givors.yml"
    givors.write_text(givors.read_text().replace("quota: 2G", "quota: 2 G", 1))  # fresh mtime: racy, re-parsed
    with pytest.raises(InvalidInput) as err:
        validate_inventory(inv, cache_dir=cache)
    assert err.value.details == ["tenants/givors.yml: mailboxes[0].quota: '2 G' is not a size like 5G"]
    with pytest.raises(InvalidInput):  # cached errors are reported too
        validate_inventory(inv, cache_dir=cache)


def test_cache_is_content_addressed_and_shareable(inv, tmp_path):
    """A fresh copy (new inodes and mtimes) with a copied cache reads and hashes, but parses nothing."""
    cache = tmp_path / "cache"
    validate_inventory(inv, cache_dir=cache)
    clone = tmp_path / "clone"
    shutil.copytree(inv, clone)
    shared = tmp_path / "shared-cache"
    shutil.copytree(cache, shared)
    assert validate_inventory(clone, cache_dir=shared).stats == {"files": 7, "parsed": 0, "cached": 7, "hashed": 7}
    givors = clone / "tenants" / "givors.yml"
    givors.write_text(givors.read_text().replace("quota: 2G", "quota: 3G", 1))
    assert validate_inventory(clone, cache_dir=shared).stats["parsed"] == 1


def test_cold_validation_uses_every_core(monkeypatch):
    monkeypatch.delenv("TNO_VALIDATE_WORKERS", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 16)
    assert scan.workers_default() == 16
    monkeypatch.setenv("TNO_VALIDATE_WORKERS", "3")
    assert scan.workers_default() == 3


def test_cache_is_ignored_when_corrupt_or_from_other_code(inv, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / scan.CACHE_NAME).write_text("{not json")
    assert validate_inventory(inv, cache_dir=cache).stats["parsed"] == 7
    doc = json.loads((cache / scan.CACHE_NAME).read_text())
    doc["key"] = "other-version"
    (cache / scan.CACHE_NAME).write_text(json.dumps(doc))
    (cache / index.NAME).unlink()  # the validated index would answer first (tests/unit/test_inventory_index.py)
    assert validate_inventory(inv, cache_dir=cache).stats["parsed"] == 7


def test_process_pool_gives_the_same_messages(inv, monkeypatch):
    (inv / "tenants" / "corbas.yml").write_text("slug: corbas\n")
    with pytest.raises(InvalidInput) as serial:
        validate_inventory(inv, workers=1)
    monkeypatch.setattr(scan, "POOL_THRESHOLD", 2)
    monkeypatch.setattr(scan, "CHUNK", 1)
    with pytest.raises(InvalidInput) as pooled:
        validate_inventory(inv, workers=2)
    assert pooled.value.details == serial.value.details and len(serial.value.details) == 3


def test_stray_files_in_tenants_are_reported(inv):
    (inv / "tenants" / "notes.txt").write_text("hello")
    (inv / "tenants" / ".hidden.yml").write_text("ignored: true")
    with pytest.raises(InvalidInput) as err:
        validate_inventory(inv)
    assert err.value.details == ["tenants/notes.txt: (file): tenant files must be named <slug>.yml"]
