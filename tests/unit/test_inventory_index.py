"""Issue 18: the validated inventory index (config/index.py) — structural properties, no timing.

A warm run reads the index only (no tenant file parsed, no per-file check cache read, no
cross-tenant pass); `tenant show X` decodes a few index lines and parses X's file only; a changed
inventory misses the index; a corrupt or forged index is detected and rebuilt, never trusted, never
a crash.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path

import pytest

from tnoctl.actions.env import Env
from tnoctl.actions.reports import tenant_show
from tnoctl.config import index, logical, scan, validate
from tnoctl.config.load import TenantRow, load_inventory, validate_inventory
from tnoctl.errors import InvalidInput

LAB = Path(__file__).resolve().parents[2] / "inventories" / "lab"


@pytest.fixture
def inv(tmp_path: Path) -> Path:
    dest = tmp_path / "inv"
    shutil.copytree(LAB, dest, ignore=shutil.ignore_patterns(".tno"))
    old = time.time() - 60  # older than the racy window: the index may trust the stat
    for path in (dest / "tenants").glob("*.yml"):
        os.utime(path, (old, old))
    return dest


@pytest.fixture
def cache(inv: Path, tmp_path: Path) -> Path:
    """A cache dir after one full (cold) validation: the index is written."""
    path = tmp_path / "cache"
    validate_inventory(inv, cache_dir=path)
    assert (path / index.NAME).exists()
    return path


class Counted:
    """Counts calls of the real tenant-file check (and of the full scan)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.files: list[str] = []
        self.scans = 0
        check, full = validate.check_tenant_file, scan.scan

        def counted_check(path, *args, **kwargs):
            self.files.append(Path(path).name)
            return check(path, *args, **kwargs)

        def counted_scan(*args, **kwargs):
            self.scans += 1
            return full(*args, **kwargs)

        monkeypatch.setattr(validate, "check_tenant_file", counted_check)
        monkeypatch.setattr(scan, "scan", counted_scan)


def _expected_rows(inv: Path) -> list[TenantRow]:
    return load_inventory(inv).rows  # no cache: the full validation


def test_warm_run_reads_the_index_only(inv, cache, monkeypatch):
    expected = _expected_rows(inv)
    counted = Counted(monkeypatch)
    monkeypatch.setattr(logical, "cross_rules", lambda *a, **k: pytest.fail("cross-tenant pass on a warm run"))
    (cache / scan.CACHE_NAME).unlink()  # the per-file check cache is not even read
    report = validate_inventory(inv, cache_dir=cache)
    assert report.stats == {"files": 7, "parsed": 0, "cached": 7, "hashed": 0}
    loaded = load_inventory(inv, cache_dir=cache)
    assert loaded.rows == expected
    assert loaded.rows_on_host("mail1") == [r for r in expected if r.placement.mail == "mail1" and "mail" in r.services]
    assert counted.files == [] and counted.scans == 0


def test_tenant_show_decodes_a_few_lines_and_parses_one_file(inv, cache, monkeypatch, tmp_path):
    slug = sorted(p.stem for p in (inv / "tenants").glob("*.yml"))[3]
    want = tenant_show(Env(inv, tmp_path / "cold"), slug).data
    counted = Counted(monkeypatch)
    decoded: list[bytes] = []
    real_loads = json.loads
    monkeypatch.setattr(index.json, "loads", lambda data, *a, **k: decoded.append(data) or real_loads(data, *a, **k))
    env = Env(inv, cache.parent / "state")
    env.__dict__["inventory"] = load_inventory(inv, cache_dir=cache)
    assert tenant_show(env, slug).data == want
    assert counted.files == [f"{slug}.yml"] and counted.scans == 0
    lines = [d for d in decoded if d.startswith(b"[")]  # index records (the header is a JSON object)
    assert 1 <= len(lines) <= 3 < 7  # a binary search over 7 records, never the whole body
    assert "records" not in env.inventory.table.__dict__
    with pytest.raises(InvalidInput, match="unknown tenant 'nope'"):
        env.inventory.row("nope")


@pytest.mark.parametrize("change", ["edit", "add", "remove"])
def test_a_changed_inventory_misses_the_index(inv, cache, monkeypatch, change):
    tenants = inv / "tenants"
    if change == "edit":
        path = tenants / "givors.yml"
        path.write_text(path.read_text().replace("name: Givors", "name: Givors-Bis"))
    elif change == "add":
        text = (tenants / "givors.yml").read_text()
        shutil.copy(tenants / "givors.yml", tenants / "zz-copy.yml")
        (tenants / "zz-copy.yml").write_text(text.replace("slug: givors", "slug: zz-copy"))
    else:
        (tenants / "feyzin.yml").unlink()
    counted = Counted(monkeypatch)
    try:
        loaded = load_inventory(inv, cache_dir=cache)
    except InvalidInput:
        assert change == "add"  # the copy repeats givors' domains: the full pass reports it
        assert counted.scans == 1
        return
    assert counted.scans == 1
    assert loaded.rows == _expected_rows(inv)


def test_the_key_covers_the_inputs_of_the_cross_tenant_rules(inv):
    files, _ = scan.list_tenant_files(inv)
    listing, _newest = index.listing_digest(files)
    base = index.key(inv, "fp", {"mail1": {"mail", "all"}}, {}, listing)
    assert base == index.key(inv, "fp", {"mail1": {"all", "mail"}}, {}, listing)
    others = [index.key(inv, "fp2", {"mail1": {"mail", "all"}}, {}, listing),
              index.key(inv, "fp", {"mail1": {"office", "all"}}, {}, listing),
              index.key(inv, "fp", {"mail1": {"mail", "all"}}, {"givors": ["https://x.test"]}, listing),
              index.key(inv, "fp", {"mail1": {"mail", "all"}}, {}, index.listing_digest(files[1:])[0]),
              index.key(inv / "tenants", "fp", {"mail1": {"mail", "all"}}, {}, listing),
              index.key(inv, "fp", {"mail1": {"mail", "all"}}, {}, listing, {"reject": 20.0})]
    assert base not in others and len(set(others)) == len(others)


def test_changed_platform_spam_thresholds_miss_the_index(inv, cache, monkeypatch):
    """A tenant's override is checked against the platform's thresholds: a warm run may not skip that."""
    platform = inv / "group_vars" / "all" / "platform.yml"
    text = platform.read_text()
    assert "tno_mail_spam_thresholds: {reject: 15.0," in text
    platform.write_text(text.replace("thresholds: {reject: 15.0,", "thresholds: {reject: 40.0,"))
    counted = Counted(monkeypatch)
    load_inventory(inv, cache_dir=cache)
    assert counted.scans == 1


def _rewrite_body(cache: Path, body: bytes, fix_hash: bool) -> None:
    path = cache / index.NAME
    head, _, _old = path.read_bytes().partition(b"\n")
    header = json.loads(head)
    if fix_hash:
        header["sha256"] = hashlib.sha256(body).hexdigest()
    path.write_bytes(json.dumps(header).encode() + b"\n" + body)


@pytest.mark.parametrize("damage", ["truncated", "flipped", "garbage-header", "empty"])
def test_a_corrupt_index_is_detected_by_its_hash_and_rebuilt(inv, cache, monkeypatch, damage):
    expected = _expected_rows(inv)
    path = cache / index.NAME
    data = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(data[: len(data) - 40])
    elif damage == "flipped":
        path.write_bytes(data.replace(b"givors", b"gIvors", 1))
    elif damage == "garbage-header":
        path.write_bytes(b"\x00\xff{{{\n" + data)
    else:
        path.write_bytes(b"")
    counted = Counted(monkeypatch)
    assert load_inventory(inv, cache_dir=cache).rows == expected
    assert counted.scans == 1
    assert index.load(path, json.loads(path.read_bytes().partition(b"\n")[0])["key"], 7, 0) is not None  # rewritten


@pytest.mark.parametrize("forged", [
    b'[1,2,3]',
    b'{"not": "a record"}',
    b'["tenants/../../etc/passwd.yml","x","X","69000",["x.test"],[],null,null,false,"Sun 02:00-05:00",0,{},null]',
])
def test_a_forged_index_with_a_matching_hash_falls_back_to_the_full_validation(inv, cache, monkeypatch, forged):
    """Someone rewrote the body and its hash: the shapes are checked when decoded; no crash, no wrong row."""
    expected = _expected_rows(inv)
    lines = (cache / index.NAME).read_bytes().partition(b"\n")[2].split(b"\n")
    lines[len(lines) // 2] = forged
    _rewrite_body(cache, b"\n".join(lines), fix_hash=True)
    counted = Counted(monkeypatch)
    loaded = load_inventory(inv, cache_dir=cache)
    assert loaded.rows == expected
    assert counted.scans == 1
    loaded = load_inventory(inv, cache_dir=cache)  # the fallback rewrote a good index
    assert loaded.rows == expected and counted.scans == 1


def test_tenant_list_json_text_equals_the_standard_encoder():
    from tnoctl.cli.tenant import list_json, list_row
    from tnoctl.config.load import RowPlacement

    rows = [TenantRow("tenants/a.yml", "a", "Sa\u00eft \"x\" \\ \u2028", "69001", ("a.test", "b.test"), (),
                      RowPlacement(None, "office1"), True, "Sun 02:00-05:00", 0, {}, None),
            TenantRow("tenants/b.yml", "b", "B\x00\udcff", "69002", ("c.test",), ("mail", "office"),
                      RowPlacement("mail1", None), False, "Sat 22:00-23:00", 12, {"daily": 3},
                      ("canary@c.test", "v")),
            TenantRow.of(["tenants/c.yml", "c", "C", "1", ["d.test"], ["mail"], "mail2", None, False, "w", 1, {},
                          None, "external"])]
    assert list_json(rows) == json.dumps([list_row(t) for t in rows], indent=2)
    assert list_json([]) == json.dumps([], indent=2)
