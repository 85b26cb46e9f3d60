"""Check many tenant files fast: a content-addressed check cache and a process pool over every core.

The cache (`<state dir>/cache/tenant-checks.json`, plain JSON: never pickle from a writable dir)
holds, per tenant file, the check outcome (messages + summary) under the SHA-256 of its path and
content, so it is shareable: a fresh clone with a copied cache pays read + hash only. A stat index
(size, mtime_ns, inode -> digest) lets a warm run skip even reading the files. The whole cache is
keyed by a fingerprint of the validating code and of the vault variable names (a new tnoctl or a
changed vault invalidates it). As in git's "racy git" rule, a file modified less than RACY_NS before
the cache was written is always read and hashed again: file systems stamp mtimes with a coarse
clock, so two quick same-size edits can look equal in stat.

Worker processes are forked and inherit the vault name set through a module global: it is never
pickled into the chunks they receive (1.8 M names at full scale).
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

from tnoctl.config import validate, yamlio

CACHE_NAME = "tenant-checks.json"
_CODE_FILES = ("schema.py", "logical.py", "mailrules.py", "validate.py", "messages.py", "window.py", "yamlio.py",
               "scan.py")
RACY_NS = 2_000_000_000
POOL_THRESHOLD = 400
CHUNK = 250

Result = tuple[str, list[str], dict[str, Any] | None]
Stat = tuple[int, int, int]

_WORKER_NAMES: frozenset[str] | None = None
"""The vault names of the scan in progress, inherited by forked workers (see module docstring)."""


def fingerprint(vault_digest: str | None) -> str:
    """Hash of the checking code and of the vault names' digest: a change of either invalidates the cache."""
    digest = hashlib.sha256()
    here = Path(__file__).parent
    for name in _CODE_FILES:
        digest.update((here / name).read_bytes())
    digest.update(b"\0novault" if vault_digest is None else vault_digest.encode())
    return digest.hexdigest()


def workers_default() -> int:
    """`$TNO_VALIDATE_WORKERS`, else every core (cold validation is CPU-bound)."""
    env = os.environ.get("TNO_VALIDATE_WORKERS", "")
    return int(env) if env.isdigit() and int(env) > 0 else (os.cpu_count() or 1)


def list_tenant_files(root: Path) -> tuple[list[tuple[str, Stat]], list[str]]:
    """(rel, stat key) of every tenants/*.yml, sorted; plus errors for stray non-.yml files."""
    tdir = root / "tenants"
    files: list[tuple[str, Stat]] = []
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


def content_digest(root: Path, rel: str) -> str | None:
    """SHA-256 of the file's path and bytes (the cache address); None when unreadable or refused.

    Read under the same policy as the parse (regular file inside the inventory, size limit): a
    refused file is never cached, so its check (and its one-line error) runs every time.
    """
    try:
        data = yamlio.read_file(root / rel, root=root, what="tenant file")
    except (OSError, yamlio.YamlProblem):
        return None
    return hashlib.sha256(rel.encode() + b"\0" + data).hexdigest()


def _load_cache(path: Path | None, key: str) -> tuple[dict[str, list[Any]], dict[str, list[Any]], int]:
    """(stat index rel -> [stat, digest], results digest -> [errors, summary], written ns); empty if stale."""
    if path is None:
        return {}, {}, 0
    try:
        doc = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return {}, {}, 0
    if (not isinstance(doc, dict) or doc.get("key") != key or not isinstance(doc.get("index"), dict)
            or not isinstance(doc.get("results"), dict)):
        return {}, {}, 0
    written = doc.get("written_ns")
    return doc["index"], doc["results"], written if isinstance(written, int) else 0


def _save_cache(path: Path, key: str, index: dict[str, list[Any]], results: dict[str, list[Any]]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        doc = {"key": key, "written_ns": time.time_ns(), "index": index, "results": results}
        tmp.write_text(json.dumps(doc, separators=(",", ":")))
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only state dir only costs speed


def _check_chunk(root: Path, rels: list[str]) -> list[Result]:
    """Worker entry point: the vault names come from the inherited module global."""
    return validate.check_tenant_files(root, rels, _WORKER_NAMES)


def _check_all(root: Path, rels: list[str], vault_names: frozenset[str] | None, workers: int) -> list[Result]:
    global _WORKER_NAMES
    if workers <= 1 or len(rels) < POOL_THRESHOLD:
        return validate.check_tenant_files(root, rels, vault_names)
    chunks = [rels[i : i + CHUNK] for i in range(0, len(rels), CHUNK)]
    ctx = multiprocessing.get_context("fork")
    results: list[Result] = []
    _WORKER_NAMES = vault_names
    try:
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            for part in pool.map(_check_chunk, [root] * len(chunks), chunks):
                results.extend(part)
    finally:
        _WORKER_NAMES = None
    return results


def scan(root: Path, vault: Any, cache_dir: Path | None = None, workers: int | None = None,
         listing: tuple[list[tuple[str, Stat]], list[str]] | None = None) -> tuple[list[Result], dict[str, int]]:
    """Check every tenant file; return (results in file order, stats).

    ``vault`` gives ``digest`` (str or None, cheap) and ``names()`` (the name set, parsed only when
    some file must really be checked): see :class:`tnoctl.config.vaultnames.VaultNames`. With the
    split vault layout it also gives ``scan_key`` (vault.yml's part only) and ``tenant_part(slug)``
    (the digest of that tenant's own vault file's names), so a changed tenant vault file re-checks
    that tenant only, not every tenant file. ``listing`` is
    :func:`list_tenant_files`'s answer when the caller already has it (its stray-file errors are the
    caller's to report).
    """
    files, _stray = listing if listing is not None else list_tenant_files(root)
    key = fingerprint(getattr(vault, "scan_key", vault.digest))
    part = getattr(vault, "tenant_part", None)  # split vault layout: a tenant's own vault file's names digest

    def result_key(digest: str, rel: str) -> str:
        """A check result depends on the file and on its tenant's own vault file's names (split layout)."""
        extra = part(rel[len("tenants/"):-len(".yml")]) if part is not None else ""
        return digest if not extra else hashlib.sha256(f"{digest}\n{extra}".encode()).hexdigest()

    cache_path = cache_dir / CACHE_NAME if cache_dir is not None else None
    index, results, written_ns = _load_cache(cache_path, key)
    fresh: dict[str, Result] = {}
    new_index: dict[str, list[Any]] = {}
    todo: list[str] = []
    hashed = 0
    for rel, stat in files:
        entry = index.get(rel)
        if entry is not None and tuple(entry[0]) == stat and stat[1] < written_ns - RACY_NS:
            digest = entry[1]
        else:
            digest = content_digest(root, rel)
            hashed += 1
        hit = results.get(result_key(digest, rel)) if digest is not None else None
        if hit is not None:
            fresh[rel] = (validate.printable(rel), hit[0], hit[1])
            new_index[rel] = [list(stat), digest]
        else:
            todo.append(rel)
            if digest is not None:
                new_index[rel] = [list(stat), digest]
    if todo:
        for res, rel in zip(_check_all(root, todo, vault.names(), workers or workers_default()), todo, strict=True):
            fresh[rel] = res
    ordered = [fresh[rel] for rel, _ in files]
    if cache_path is not None and (todo or hashed):
        kept = {result_key(new_index[rel][1], rel): [res[1], res[2]]
                for (rel, _), res in zip(files, ordered, strict=True) if rel in new_index}
        _save_cache(cache_path, key, new_index, kept)
    return ordered, {"files": len(files), "parsed": len(todo), "cached": len(files) - len(todo),
                            "hashed": hashed}
