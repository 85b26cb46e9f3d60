"""Move every tenant secret from `group_vars/all/vault.yml` to `vault/<slug>.yml` (`inventory split-vault`).

Why (issue 18): one file per tenant, encrypted as a whole, costs one PBKDF2 per tenant instead of one
per value, and a run opens only its tenants' files (vaultsplit.py). Order makes an interrupted run
safe to repeat: the tenant files are written first (each merged with what an earlier, interrupted
run wrote: a name whose value differs is refused, naming the file and the variable), vault.yml is
rewritten last, without the moved names. Until that last write the names are defined twice, which
validation reports with the hint to run the migration again. A run with nothing left to move writes
nothing. Decrypting the inline values (~7 ms each) is spread over every core. Only counts are returned.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from tnoctl.config import vault, vaultsplit
from tnoctl.errors import InvalidInput

POOL_THRESHOLD = 20
"""Below this many tenants to write, no worker processes (their start costs more than it saves)."""


def plan(inventory: Path, password_file: Path) -> tuple[dict[str, list[str]], dict[str, Any], bool]:
    """({slug: names in vault.yml owned by that tenant}, vault.yml's mapping, whole-file encrypted)."""
    raw = vault.read_raw(inventory, password_file)
    if raw is None:
        return {}, {}, False
    doc, whole = raw
    try:
        with os.scandir(inventory / "tenants") as entries:
            slugs = {e.name[:-4] for e in entries if e.name.endswith(".yml") and not e.name.startswith(".")}
    except OSError:
        slugs = set()
    owned: dict[str, list[str]] = {}
    for name in doc:
        slug = vaultsplit.owner(str(name), slugs)
        if slug is not None:
            owned.setdefault(slug, []).append(str(name))
    return owned, doc, whole


def _write_one(inventory: Path, password_file: Path, slug: str, entries: dict[str, tuple[str, bool]]) -> int:
    """Decrypt ``entries`` ({name: (value, inline ciphertext?)}), merge them into `vault/<slug>.yml` and
    write it; the number of names written."""
    lib = vault._vaultlib(password_file)
    values = {name: vault._decrypt(lib, value.encode(), password_file).decode() if inline else value
              for name, (value, inline) in entries.items()}
    exists = (inventory / vaultsplit.rel(slug)).exists()
    doc = dict(vault.tenant_doc(inventory, password_file, slug, twice_ok=True)) if exists else {}
    for name, value in values.items():
        if name in doc and doc[name] != value:
            raise InvalidInput(f"{vaultsplit.rel(slug)}: {name}: differs from {vault.VAULT_REL} (keep one value: "
                               "delete the wrong one, then run `tnoctl inventory split-vault` again)")
    doc.update(values)
    vaultsplit.check_names(slug, doc, vaultsplit.known_slugs(inventory, slug), ())
    vault.write_tenant(inventory, lib, slug, doc)
    return len(values)


def _job(args: tuple[Path, Path, str, dict[str, tuple[str, bool]]]) -> int:
    return _write_one(*args)


def split(inventory: Path, password_file: Path | None, workers: int | None = None) -> dict[str, int]:
    """Move the tenant secrets; {"tenants": files written, "moved": names moved, "kept": names left in vault.yml}."""
    if password_file is None:
        raise InvalidInput("inventory split-vault needs the vault password (--vault-password-file or "
                           "$TNO_VAULT_PASSWORD_FILE)")
    owned, doc, whole = plan(inventory, password_file)
    (inventory / vaultsplit.VAULT_DIR).mkdir(mode=0o700, exist_ok=True)
    if not owned:
        return {"tenants": 0, "moved": 0, "kept": len(doc)}
    jobs = [(inventory, password_file, slug,
             {n: (str(doc[n]), isinstance(doc[n], vault.Vaulted)) for n in names if doc[n] is not None})
            for slug, names in sorted(owned.items())]
    count = workers or os.cpu_count() or 1
    if count > 1 and len(jobs) >= POOL_THRESHOLD:
        import multiprocessing

        with ProcessPoolExecutor(max_workers=count, mp_context=multiprocessing.get_context("fork")) as pool:
            moved = sum(pool.map(_job, jobs, chunksize=max(1, len(jobs) // (count * 8))))
    else:
        moved = sum(_job(job) for job in jobs)
    moving = {n for names in owned.values() for n in names}
    vault.write_platform(inventory, password_file, {k: v for k, v in doc.items() if k not in moving}, whole)
    return {"tenants": len(jobs), "moved": moved, "kept": len(doc) - len(moving)}
