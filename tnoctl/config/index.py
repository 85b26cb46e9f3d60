"""The validated inventory index: what a warm run reads instead of every tenant's cached check.

After a validation that found no error, the loader writes ``<state dir>/cache/inventory-index.json``:
one record per tenant (the fields of :class:`tnoctl.config.load.TenantRow`), sorted by slug. A later
run that finds the same key uses those records and skips the per-file check cache and the
cross-tenant rules altogether: at 35,000 communes that is the difference between decoding 25 MB of
check results plus the cross-tenant pass and decoding one table (issue 18: warm verbs <= 2 s).

The key covers everything the validation depends on: the checking code and vault names
(``scan.fingerprint``), this module and the loader, the inventory's path, the host groups and the
platform's WOPI exceptions and spam thresholds (inputs of the cross-tenant rules), and the listing of tenants/ with each
file's size, mtime and inode. hosts.yml and platform.yml are still validated on every run (cheap);
the index is only consulted when they have no error and tenants/ holds no stray file. Same racy-mtime
rule as scan.py: a file modified less than ``RACY_NS`` before the index was written invalidates it.

The file is plain JSON (never pickle from a writable directory): a header line (version, key, time
written, SHA-256 and count of the body), then one record per line sorted by slug. A warm run checks
the header and the body's hash only; the body is decoded when rows are asked for, and `tenant show X`
decodes the few lines of a binary search. A body whose hash or count does not match is ignored (the
full validation runs and rewrites it); a record of the wrong shape makes the loader fall back to the
full validation too: a truncated, corrupt or hand-edited index can cost time, never a wrong answer
or a crash.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterable
from operator import itemgetter
from pathlib import Path
from typing import Any

from tnoctl.config.scan import RACY_NS, Stat

NAME = "inventory-index.json"
VERSION = 4
_CODE_FILES = ("index.py", "load.py")
ZONES = ("platform", "external")
"""Values of a tenant's ``dns.zone`` (tnoctl.config.schema.TenantDns)."""

Record = list[Any]
"""[rel, slug, name, insee, domains, services, mail, office, pilot, maintenance_window, mailboxes, backup, canary,
dns_zone]"""


def listing_digest(files: list[tuple[str, Stat]]) -> tuple[str, int]:
    """(SHA-256 of every tenant file's name and stat, newest mtime in ns) of a tenants/ listing.

    The listing's ``repr`` is hashed (one C-level pass over 35,000 entries instead of a Python
    loop building a line per file): names are quoted and escaped by repr, so it is unambiguous.
    """
    digest = hashlib.sha256(repr(files).encode("utf-8", "surrogateescape"))
    newest = max(map(itemgetter(1), map(itemgetter(1), files)), default=0)
    return digest.hexdigest(), newest


def key(root: Path, fingerprint: str, host_groups: dict[str, set[str]], extra_wopi: dict[str, list[str]],
        listing: str, spam: dict[str, Any] | None = None, tls_mode: str | None = None) -> str:
    """The index key of one inventory state (see the module docstring)."""
    digest = hashlib.sha256()
    here = Path(__file__).parent
    for name in _CODE_FILES:
        digest.update((here / name).read_bytes())
    context = {"version": VERSION, "root": os.path.realpath(root), "fingerprint": fingerprint,
               "groups": {h: sorted(g) for h, g in sorted(host_groups.items())},
               "wopi": {s: list(v) for s, v in sorted(extra_wopi.items())}, "listing": listing,
               "spam": spam, "tls_mode": tls_mode}
    digest.update(json.dumps(context, sort_keys=True).encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


def load(path: Path, expected_key: str, count: int, newest_mtime: int) -> bytes | None:
    """The body stored under ``expected_key`` for ``count`` tenant files (hash checked, not parsed); else None."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    head, sep, body = data.partition(b"\n")
    if not sep:
        return None
    try:
        header = json.loads(head)
    except (ValueError, RecursionError):
        return None
    if (not isinstance(header, dict) or header.get("version") != VERSION or header.get("key") != expected_key
            or not isinstance(header.get("written_ns"), int) or newest_mtime >= header["written_ns"] - RACY_NS
            or header.get("count") != count or header.get("sha256") != hashlib.sha256(body).hexdigest()):
        return None
    return body


def parse(body: bytes, rels: Iterable[str]) -> list[Record] | None:
    """Every record of a body (one JSON list per line, sorted by slug, one per file of ``rels``); None if malformed."""
    try:
        records = json.loads(b"[" + body.replace(b"\n", b",") + b"]") if body else []
    except (ValueError, RecursionError):
        return None
    wanted = set(rels)
    if len(records) != len(wanted):
        return None
    previous = ""
    for rec in records:
        if not valid_record(rec) or rec[0] not in wanted or rec[1] <= previous:
            return None
        previous = rec[1]
    return records


def find(lines: list[bytes], slug: str) -> Record | bool | None:
    """The record of ``slug`` by binary search over a body's lines (a few decoded, not all).

    None when absent; False when a decoded line is malformed (the caller then parses the whole body).
    """
    lo, hi = 0, len(lines)
    while lo < hi:
        mid = (lo + hi) // 2
        try:
            rec = json.loads(lines[mid])
        except (ValueError, RecursionError):
            return False
        if not valid_record(rec):
            return False
        if rec[1] == slug:
            return rec
        if rec[1] < slug:
            lo = mid + 1
        else:
            hi = mid
    return None


def _strs(value: Any, least: int = 0) -> bool:
    return type(value) is list and len(value) >= least and all(type(v) is str for v in value)


def valid_record(rec: Any) -> bool:
    """True when ``rec`` has the shape :func:`record` writes (a hand-edited index must not crash a verb)."""
    if type(rec) is not list or len(rec) != 14:
        return False
    rel, slug, name, insee, domains, services, mail, office, pilot, window, boxes, backup, canary, zone = rec
    return (type(slug) is str and rel == f"tenants/{slug}.yml" and type(name) is str and type(insee) is str
            and _strs(domains, 1) and _strs(services) and (mail is None or type(mail) is str)
            and (office is None or type(office) is str) and type(pilot) is bool and type(window) is str
            and type(boxes) is int and type(backup) is dict
            and (not backup or all(type(k) is str and type(v) is int for k, v in backup.items()))
            and (canary is None or (_strs(canary) and len(canary) == 2)) and zone in ZONES)


def record(rel: str, s: dict[str, Any]) -> Record:
    """One tenant's record from its check summary (tnoctl.config.logical.summary)."""
    return [rel, s["slug"], s["name"], s["insee"], list(s["domains"]), list(s["services"]), s["placement"]["mail"],
            s["placement"]["office"], s["pilot"], s["maintenance_window"], s["mailboxes"], dict(s["backup"]),
            s["canary"], s["dns_zone"]]


def save(path: Path, index_key: str, records: list[Record]) -> None:
    """Write the index atomically (one record per line); a read-only state dir only costs speed."""
    body = "\n".join(json.dumps(rec, separators=(",", ":")) for rec in records).encode()
    header = {"version": VERSION, "key": index_key, "written_ns": time.time_ns(), "count": len(records),
              "sha256": hashlib.sha256(body).hexdigest()}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(json.dumps(header).encode() + b"\n" + body)
        os.replace(tmp, path)
    except OSError:
        pass
