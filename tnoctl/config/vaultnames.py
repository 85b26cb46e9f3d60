"""The vault's variable names for validation, without parsing the vault on every run.

Tenant checks depend on which vault names exist, so the tenant-check cache is keyed by a digest of
the name set. Computing it means parsing `vault.yml` (hundreds of MB at 35,000 communes), so the
digest is cached in `<state dir>/cache/vault-names.json` under the file's stat and SHA-256 (same
racy-mtime rule as scan.py). The name set itself is only built when a tenant file must really be
checked. A whole-file encrypted vault is not cached (its names need the password). With a password,
one ciphertext kept in the cache is decrypted on every run, so a wrong password is still reported
early; no plaintext and no password-derived value is ever written.

Split layout (`vault/<slug>.yml`, vaultsplit.py): a tenant file's names need the password, so they
are cached per file in `vault-tenant-names.json` ({slug: [stat, sha256 of the ciphertext, digest of
its names]}) and `vault-names.d/<sha256(slug, ciphertext sha)>.txt` (the names, one a line: names
only, never a value). A warm run stats the tenant files and decrypts nothing; a changed file is
hashed and, if its ciphertext is new, decrypted once. Without a password an uncached file makes the
names unknowable (the check is skipped, as for a whole-file vault.yml).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from functools import cached_property
from pathlib import Path
from typing import Any

from tnoctl.config import scan, vault, vaultsplit, yamlio
from tnoctl.config.scan import RACY_NS

CACHE_NAME = "vault-names.json"
TENANTS_CACHE = "vault-tenant-names.json"
SUMMARY_NAME = "vault-tenant-names.sum.json"
NAMES_DIR = "vault-names.d"


def names_digest(names: frozenset[str]) -> str:
    """SHA-256 of the sorted names: what the tenant checks depend on."""
    return hashlib.sha256("\n".join(sorted(names)).encode()).hexdigest()


POOL_MIN = 64
"""Tenant files to decrypt per worker process before a pool pays off (a fork costs ~50 ms)."""


def _names_of(args: tuple[Path, Path, str]) -> list[str]:
    """A worker's job: the checked names of one tenant file (never its values)."""
    inventory, password_file, slug = args
    return sorted(vault.tenant_doc(inventory, password_file, slug, keep=False))


class VaultNames:
    """``digest`` (cheap when cached) and ``names()`` (parses the vault once per process)."""

    def __init__(self, inventory: Path, password_file: Path | None, cache_dir: Path | None = None,
                 tenant_files: dict[str, tuple[int, int, int]] | None = None) -> None:
        self.inventory = inventory
        self.password_file = password_file
        self.cache_dir = cache_dir
        self.split = vaultsplit.is_split(inventory)
        self._names: Any = ...
        self._shas: dict[str, str] = {}  # slug -> sha256 of its tenant file (split layout), set by digest
        self._files = tenant_files  # the caller's stat listing of vault/ (vaultsplit.scan_dir), if it has one
        self._parts: dict[str, str] | None = None  # slug -> names digest of its file, once computed

    def names(self) -> frozenset[str] | None:
        """The names, or None when they cannot be known (no vault, or encrypted files without password)."""
        if self._names is ...:
            if not self.split:
                self._names = vault.vault_names(self.inventory, self.password_file)
            else:
                self._names = self._split_names()
        return self._names

    @cached_property
    def digest(self) -> str | None:
        """Digest of the name set (None: names unknowable); from the caches when the files are unchanged."""
        base = self._base
        if not self.split:
            return base
        if base is None and (self.inventory / vault.VAULT_REL).exists():
            return None
        tenants = self._tenants_digest()
        if tenants is None:
            return None
        return hashlib.sha256(f"{base or names_digest(frozenset())}\n{tenants}".encode()).hexdigest()

    @cached_property
    def scan_key(self) -> str | None:
        """What every tenant check depends on: :attr:`digest` without the split layout; with it, only
        vault.yml's names (each tenant's own file enters its check's key through :meth:`tenant_part`)."""
        if self.digest is None or not self.split:
            return self.digest
        return hashlib.sha256(f"split\n{self._base or ''}".encode()).hexdigest()

    def tenant_part(self, slug: str) -> str:
        """Digest of the names of `vault/<slug>.yml` ("" without the layout or the file)."""
        if not self.split:
            return ""
        if self._parts is None:
            self._parts = self._tenant_digests() or {}
        return self._parts.get(slug, "")

    def _listing(self) -> dict[str, tuple[int, int, int]]:
        if self._files is None:
            self._files = vaultsplit.files(self.inventory)
        return self._files

    def _tenants_digest(self) -> str | None:
        """Digest over every tenant file's names digest. Warm: when the stat listing of `vault/` equals the
        one summarised by the last run (`vault-tenant-names.sum.json`), neither the per-file cache nor a
        file is read."""
        listing = self._listing()
        key = hashlib.sha256("\n".join(f"{slug} {st[0]} {st[1]} {st[2]}" for slug, st in sorted(listing.items()))
                             .encode()).hexdigest()
        newest = max((st[1] for st in listing.values()), default=0)
        summary = self._load_json(SUMMARY_NAME)
        if (summary and summary.get("listing") == key and isinstance(summary.get("digest"), str)
                and isinstance(summary.get("written_ns"), int) and newest < summary["written_ns"] - RACY_NS):
            return summary["digest"]
        parts = self._tenant_digests()
        if parts is None:
            return None
        digest = hashlib.sha256("\n".join(f"{slug} {d}" for slug, d in sorted(parts.items())).encode()).hexdigest()
        self._save_json(SUMMARY_NAME, {"listing": key, "digest": digest})
        return digest

    @cached_property
    def _base(self) -> str | None:
        return self._base_digest()

    def _base_digest(self) -> str | None:
        """Digest of vault.yml's names (the whole vault without the split layout)."""
        path = self.inventory / vault.VAULT_REL
        try:
            st = path.stat()
        except OSError:
            return None
        stat = [st.st_size, st.st_mtime_ns, st.st_ino]
        doc = self._load()
        if doc and doc["stat"] == stat and stat[1] < doc["written_ns"] - RACY_NS:
            return self._checked(doc)
        try:
            sha = hashlib.sha256(yamlio.read_file(path, root=self.inventory, limit=vault.MAX_BYTES,
                                                  what="vault file")).hexdigest()
        except FileNotFoundError:
            return None
        except (OSError, yamlio.YamlProblem):
            sha = ""  # refused or unreadable: parsing reports it (InvalidInput) and nothing is cached
        if doc and sha and doc["sha"] == sha:
            self._save({**doc, "stat": stat})
            return self._checked(doc)
        names = vault.platform_names(self.inventory, self.password_file) if self.split else self.names()
        if names is None:
            return None
        raw = vault.read_raw(self.inventory, self.password_file)
        if sha and raw is not None and not raw[1]:  # inline values: cacheable without the password
            found = vault.password_sample(raw[0])
            sample = str(found) if found is not None else None
            self._save({"stat": stat, "sha": sha, "digest": names_digest(names), "sample": sample})
        return names_digest(names)

    def _checked(self, doc: dict[str, Any]) -> str:
        """Report a wrong password as a cold run would: the password checked against one cached ciphertext
        (vault.password_opens, standard library); when it does not open it, VaultLib's decrypt gives the error."""
        sample = doc.get("sample")
        if self.password_file is not None and sample and not vault.password_opens(self.password_file, sample.encode()):
            vault._decrypt(vault._vaultlib(self.password_file), sample.encode(), self.password_file)
        return doc["digest"]

    def _load(self) -> dict[str, Any] | None:
        doc = self._load_json(CACHE_NAME)
        keys = {"stat", "sha", "digest", "written_ns"}
        return doc if doc is not None and keys <= doc.keys() else None

    def _save(self, doc: dict[str, Any]) -> None:
        self._save_json(CACHE_NAME, doc)

    # ------------------------------------------------------------------ split layout
    def _tenant_digests(self) -> dict[str, str] | None:
        """{slug: digest of its file's names}, decrypting only files whose ciphertext is new (None: no password).

        New files are decrypted over every core (cold: one PBKDF2 each, ~5 ms; 35,000 files).
        """
        cached, written_ns = self._load_tenants()
        fresh: dict[str, list[Any]] = {}
        digests: dict[str, str] = {}
        unknown: list[tuple[str, str]] = []
        changed = False
        for slug, stat in self._listing().items():
            entry = cached.get(slug)
            if entry is not None and tuple(entry[0]) == stat and stat[1] < written_ns - RACY_NS:
                sha, digest = entry[1], entry[2]
            else:
                changed = True
                sha = hashlib.sha256(vaultsplit.read_bytes(self.inventory, slug)).hexdigest()
                stored = self._stored(slug, sha) if entry is None or entry[1] != sha else None
                digest = entry[2] if entry is not None and entry[1] == sha else (
                    names_digest(stored) if stored is not None else "")
                if not digest:
                    unknown.append((slug, sha))
            self._shas[slug] = sha
            digests[slug] = digest
            fresh[slug] = [list(stat), sha, digest]
        if unknown:
            if self.password_file is None:
                return None
            for (slug, sha), names in zip(unknown, self._decrypt_names([s for s, _ in unknown]), strict=True):
                self._store(slug, sha, names)
                digests[slug] = names_digest(names)
                fresh[slug][2] = digests[slug]
        if changed or fresh.keys() != cached.keys():
            self._save_tenants(fresh)
        self._parts = digests
        return digests

    def _decrypt_names(self, slugs: list[str]) -> list[frozenset[str]]:
        """The names of these tenant files (decrypted, checked), over every core when there are many."""
        assert self.password_file is not None
        workers = min(scan.workers_default(), max(1, len(slugs) // POOL_MIN))
        if workers < 2:
            return [frozenset(vault.tenant_doc(self.inventory, self.password_file, s, keep=False)) for s in slugs]
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        args = [(self.inventory, self.password_file, s) for s in slugs]
        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork")) as pool:
            return [frozenset(n) for n in pool.map(_names_of, args, chunksize=max(1, len(args) // (workers * 8)))]

    def _split_names(self) -> frozenset[str] | None:
        """vault.yml's names and every tenant file's (from the names store, else decrypted once)."""
        if self.digest is None or (self._listing() and not self._shas and self._tenant_digests() is None):
            return None
        base = vault.platform_names(self.inventory, self.password_file)
        if base is None:
            return None
        found = set(base)
        for slug, sha in sorted(self._shas.items()):
            names = self._file_names(slug, sha)
            if names is None:
                return None
            vaultsplit.check_twice(slug, names, base)
            found |= names
        return frozenset(found)

    def _file_names(self, slug: str, sha: str) -> frozenset[str] | None:
        """Names of this version of `vault/<slug>.yml`: stored by an earlier run, else decrypted once and
        stored; None without a password."""
        names = self._stored(slug, sha)
        if names is None:
            if self.password_file is None:
                return None
            names = frozenset(vault.tenant_doc(self.inventory, self.password_file, slug))
            self._store(slug, sha, names)
        return names

    def _names_path(self, slug: str, sha: str) -> Path | None:
        if self.cache_dir is None:
            return None
        key = hashlib.sha256(f"{slug}\0{sha}".encode()).hexdigest()
        return self.cache_dir / NAMES_DIR / f"{key}.txt"

    def _stored(self, slug: str, sha: str) -> frozenset[str] | None:
        """The names of this tenant file version, if a run with the password stored them."""
        path = self._names_path(slug, sha)
        if path is None:
            return None
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError):
            return None
        names = frozenset(text.split())
        space, borg = vaultsplit.namespace(slug)
        if not all(n.startswith(space) or n == borg for n in names):
            return None  # not written by us (the names were checked before being stored): decrypt again
        return names

    def _store(self, slug: str, sha: str, names: frozenset[str]) -> None:
        path = self._names_path(slug, sha)
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            tmp.write_text("".join(f"{n}\n" for n in sorted(names)))
            os.replace(tmp, path)
        except OSError:
            pass  # a read-only state dir only costs speed

    def _load_json(self, name: str) -> dict[str, Any] | None:
        if self.cache_dir is None:
            return None
        try:
            doc = json.loads((self.cache_dir / name).read_bytes())
        except (OSError, ValueError):
            return None
        return doc if isinstance(doc, dict) else None

    def _save_json(self, name: str, doc: dict[str, Any]) -> None:
        if self.cache_dir is None:
            return
        try:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            tmp = self.cache_dir / f".{name}.{os.getpid()}.tmp"
            tmp.write_text(json.dumps({**doc, "written_ns": time.time_ns()}))
            os.replace(tmp, self.cache_dir / name)
        except OSError:
            pass  # a read-only state dir only costs speed

    def _load_tenants(self) -> tuple[dict[str, Any], int]:
        doc = self._load_json(TENANTS_CACHE)
        if doc is None or not isinstance(doc.get("files"), dict) or not isinstance(doc.get("written_ns"), int):
            return {}, 0
        files = {k: v for k, v in doc["files"].items()
                 if isinstance(v, list) and len(v) == 3 and isinstance(v[0], list) and all(isinstance(x, str)
                                                                                            for x in v[1:])}
        return files, doc["written_ns"]

    def _save_tenants(self, files: dict[str, list[Any]]) -> None:
        self._save_json(TENANTS_CACHE, {"files": files})
