"""Content-addressed cache of one host's `tno_tenants` entries (issue 18: a run costs what its targets cost).

Building a tenant's entry (ansible_view.tenant_view) means parsing and validating its YAML file with
the pydantic schema: ~5 ms per file, 700 files for a mail host at full scale, on every ansible-playbook
start. The validation cache (scan.py, index.py) keeps only a summary per file, so the inventory plugin
used to parse them all again. This cache keeps the entries themselves, in
``<cache dir>/tenant-views/<sha256 of the host name>.json``: one file per host (a run reads its
targeted hosts' files only), a JSON mapping from each tenant file's content address (SHA-256 of its
path and bytes, as scan.py) to its entry. A warm start reads the host's tenant files (to hash them:
the address is the truth, not a stat) and one JSON file; a changed tenant file misses alone and is
parsed again. The header key covers the code that builds an entry and the platform's retention
defaults (merged into each entry's ``backup``): a new tnoctl or retention rewrites the whole file.

Entries hold no secret (mailboxes name their vault variable, never its value); the file is plain JSON
written atomically (never pickle from a writable directory). An unreadable, corrupt or stale file
costs time only: the entries are built again from the tenant files.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tnoctl.config import scan

DIR_NAME = "tenant-views"
VERSION = 1
_CODE_FILES = ("ansible_view.py", "viewcache.py", "schedule.py")

View = dict[str, Any]


def key(retention: dict[str, int]) -> str:
    """The header key: the code building an entry (scan.py's checking code included) and the retention."""
    digest = hashlib.sha256(f"{VERSION}\n{scan.fingerprint(None)}\n".encode())
    here = Path(__file__).parent
    for name in _CODE_FILES:
        digest.update((here / name).read_bytes())
    digest.update(json.dumps(retention, sort_keys=True).encode())
    return digest.hexdigest()


def path_of(cache_dir: Path, host: str) -> Path:
    """The host's cache file (its name hashed: host names never become paths)."""
    return cache_dir / DIR_NAME / f"{hashlib.sha256(host.encode()).hexdigest()[:32]}.json"


def _load(path: Path, expected: str) -> dict[str, View]:
    """{content address: entry} stored under ``expected``; empty when absent, stale or malformed."""
    try:
        doc = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError):
        return {}
    if not isinstance(doc, dict) or doc.get("key") != expected or not isinstance(doc.get("views"), dict):
        return {}
    return {k: v for k, v in doc["views"].items() if isinstance(v, dict)}


def _save(path: Path, expected: str, views: dict[str, View]) -> None:
    """Write atomically; a read-only state dir only costs speed."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"key": expected, "views": views}, separators=(",", ":")))
        os.replace(tmp, path)
    except OSError:
        pass


def address(root: Path, rel: str) -> str | None:
    """Content address of a tenant file (scan.content_digest: its path and bytes); None when unreadable."""
    return scan.content_digest(root, rel)


def host_views(root: Path, host: str, rels: list[str], build: Callable[[str], View], retention: dict[str, int],
               cache_dir: Path | None) -> list[View]:
    """The entries of the tenant files ``rels`` (in that order), from the host's cache file where the
    content is unchanged, from ``build(rel)`` (parse + validate) otherwise; the file is rewritten when
    anything was built or dropped.

    An entry is stored only when the file hashed the same before and after it was built (an edit
    meanwhile would otherwise file the new content's entry under the old content's address).
    """
    if cache_dir is None:
        return [build(rel) for rel in rels]
    expected = key(retention)
    path = path_of(cache_dir, host)
    cached = _load(path, expected)
    kept: dict[str, View] = {}
    out: list[View] = []
    dirty = False
    for rel in rels:
        digest = address(root, rel)
        view = cached.get(digest) if digest is not None else None
        if view is None:
            view = build(rel)
            dirty = True
            if digest is None or address(root, rel) != digest:
                out.append(view)
                continue
        kept[digest] = view  # type: ignore[index]
        out.append(view)
    if dirty or len(kept) != len(cached):
        _save(path, expected, kept)
    return out
