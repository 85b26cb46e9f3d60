"""Check many tenant files fast: a validated-parse cache and a process pool over the CPU cores.

The cache (`<state dir>/cache/tenant-checks.json`, plain JSON: never pickle from a writable dir)
maps each tenant file to (size, mtime_ns, inode) and its check outcome (messages + summary). It is
keyed by a fingerprint of the validating code and of the vault variable names, so a new tnoctl
or a changed vault invalidates it. Only files whose stat changed are parsed again. As in git's
"racy git" rule, a file modified less than RACY_NS before the cache was written is always parsed
again: file systems stamp mtimes with a coarse clock, so two quick same-size edits can look equal.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from tnoctl.config import validate

CACHE_NAME = "tenant-checks.json"
_CODE_FILES = ("schema.py", "logical.py", "validate.py", "messages.py", "window.py", "yamlio.py")
RACY_NS = 2_000_000_000
POOL_THRESHOLD = 400
CHUNK = 250

Result = tuple[str, list[str], dict[str, Any] | None]


def fingerprint(vault_names: frozenset[str] | None) -> str:
    """Hash of the checking code and the vault variable names: a change invalidates the cache."""
    digest = hashlib.sha256()
    here = Path(__file__).parent
    for name in _CODE_FILES:
        digest.update((here / name).read_bytes())
    digest.update(b"\0novault" if vault_names is None else "\n".join(sorted(vault_names)).encode())
    return digest.hexdigest()


def list_tenant_files(root: Path) -> tuple[list[tuple[str, tuple[int, int, int]]], list[str]]:
    """(rel, stat key) of every tenants/*.yml, sorted; plus errors for stray non-.yml files."""
    tdir = root / "tenants"
    files: list[tuple[str, tuple[int, int, int]]] = []
    errors: list[str] = []
    try:
        entries = list(os.scandir(tdir))
    except FileNotFoundError:
        return [], []
    except OSError as exc:
        return [], [f"tenants/: (directory): cannot list: {exc.strerror}"]
    for entry in entries:
        rel = f"tenants/{entry.name}"
        if entry.name.startswith("."):
            continue
        if not entry.name.endswith(".yml"):
            errors.append(f"{validate.printable(rel)}: (file): tenant files must be named <slug>.yml")
            continue
        try:
            st = entry.stat()
        except OSError:
            st = None
        files.append((rel, (st.st_size, st.st_mtime_ns, st.st_ino) if st else (-1, -1, -1)))
    files.sort()
    return files, errors


def _load_cache(path: Path | None, key: str) -> tuple[dict[str, list[Any]], int]:
    """(entries, time the cache was written in ns); empty when absent, stale or unreadable."""
    if path is None:
        return {}, 0
    try:
        doc = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return {}, 0
    if not isinstance(doc, dict) or doc.get("key") != key or not isinstance(doc.get("entries"), dict):
        return {}, 0
    written = doc.get("written_ns")
    return doc["entries"], written if isinstance(written, int) else 0


def _save_cache(path: Path, key: str, entries: dict[str, list[Any]]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        doc = {"key": key, "written_ns": time.time_ns(), "entries": entries}
        tmp.write_text(json.dumps(doc, separators=(",", ":")))
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only state dir only costs speed


def _check_all(root: Path, rels: list[str], vault_names: frozenset[str] | None, workers: int) -> list[Result]:
    if workers <= 1 or len(rels) < POOL_THRESHOLD:
        return validate.check_tenant_files(root, rels, vault_names)
    chunks = [rels[i : i + CHUNK] for i in range(0, len(rels), CHUNK)]
    ctx = multiprocessing.get_context("fork")
    results: list[Result] = []
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        for part in pool.map(validate.check_tenant_files, [root] * len(chunks), chunks,
                             [vault_names] * len(chunks)):
            results.extend(part)
    return results


def scan(root: Path, vault_names: frozenset[str] | None, cache_dir: Path | None = None,
         workers: int | None = None) -> tuple[list[Result], list[str], dict[str, int]]:
    """Check every tenant file; return (results in file order, stray-file errors, stats)."""
    files, stray = list_tenant_files(root)
    key = fingerprint(vault_names)
    cache_path = cache_dir / CACHE_NAME if cache_dir is not None else None
    cached, written_ns = _load_cache(cache_path, key)
    fresh: dict[str, Result] = {}
    todo: list[str] = []
    for rel, stat in files:
        entry = cached.get(rel)
        if entry is not None and tuple(entry[0]) == stat and stat[1] < written_ns - RACY_NS:
            fresh[rel] = (rel, entry[1], entry[2])
        else:
            todo.append(rel)
    if workers is None:
        env = os.environ.get("TNO_VALIDATE_WORKERS", "")
        workers = int(env) if env.isdigit() else min(2, os.cpu_count() or 1)
    for res in _check_all(root, todo, vault_names, workers):
        fresh[res[0]] = res
    ordered = [fresh[validate.printable(rel)] if rel not in fresh else fresh[rel] for rel, _ in files]
    if cache_path is not None and todo:
        stats = dict(files)
        _save_cache(cache_path, key, {r[0]: [stats.get(r[0], (-1, -1, -1)), r[1], r[2]] for r in ordered})
    return ordered, stray, {"files": len(files), "parsed": len(todo), "cached": len(files) - len(todo)}
