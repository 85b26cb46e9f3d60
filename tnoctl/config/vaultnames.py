"""The vault's variable names for validation, without parsing the vault on every run.

Tenant checks depend on which vault names exist, so the tenant-check cache is keyed by a digest of
the name set. Computing it means parsing `vault.yml` (hundreds of MB at 35,000 communes), so the
digest is cached in `<state dir>/cache/vault-names.json` under the file's stat and SHA-256 (same
racy-mtime rule as scan.py). The name set itself is only built when a tenant file must really be
checked. A whole-file encrypted vault is not cached (its names need the password). With a password,
one ciphertext kept in the cache is decrypted on every run, so a wrong password is still reported
early; no plaintext and no password-derived value is ever written.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from functools import cached_property
from pathlib import Path
from typing import Any

from tnoctl.config import vault, yamlio
from tnoctl.config.scan import RACY_NS

CACHE_NAME = "vault-names.json"


def names_digest(names: frozenset[str]) -> str:
    """SHA-256 of the sorted names: what the tenant checks depend on."""
    return hashlib.sha256("\n".join(sorted(names)).encode()).hexdigest()


class VaultNames:
    """``digest`` (cheap when cached) and ``names()`` (parses the vault once per process)."""

    def __init__(self, inventory: Path, password_file: Path | None, cache_dir: Path | None = None) -> None:
        self.inventory = inventory
        self.password_file = password_file
        self.cache_path = cache_dir / CACHE_NAME if cache_dir is not None else None
        self._names: Any = ...

    def names(self) -> frozenset[str] | None:
        """The names, or None when they cannot be known (no vault, or whole-file encrypted without password)."""
        if self._names is ...:
            self._names = vault.vault_names(self.inventory, self.password_file)
        return self._names

    @cached_property
    def digest(self) -> str | None:
        """Digest of the name set (None: names unknowable); from the cache when the file is unchanged."""
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
        names = self.names()
        if names is None:
            return None
        raw = vault.read_raw(self.inventory, self.password_file)
        if sha and raw is not None and not raw[1]:  # inline values: cacheable without the password
            found = vault.password_sample(raw[0])
            sample = str(found) if found is not None else None
            self._save({"stat": stat, "sha": sha, "digest": names_digest(names), "sample": sample})
        return names_digest(names)

    def _checked(self, doc: dict[str, Any]) -> str:
        """Report a wrong password as a cold run would (one decrypt of a cached ciphertext)."""
        if self.password_file is not None and doc.get("sample"):
            vault._decrypt(vault._vaultlib(self.password_file), doc["sample"].encode(), self.password_file)
        return doc["digest"]

    def _load(self) -> dict[str, Any] | None:
        if self.cache_path is None:
            return None
        try:
            doc = json.loads(self.cache_path.read_bytes())
        except (OSError, ValueError):
            return None
        keys = {"stat", "sha", "digest", "written_ns"}
        return doc if isinstance(doc, dict) and keys <= doc.keys() else None

    def _save(self, doc: dict[str, Any]) -> None:
        if self.cache_path is None:
            return
        try:
            self.cache_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.cache_path.with_name(f".{CACHE_NAME}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps({**doc, "written_ns": time.time_ns()}))
            os.replace(tmp, self.cache_path)
        except OSError:
            pass  # a read-only state dir only costs speed
