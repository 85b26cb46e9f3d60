"""The per-tenant vault layout: `vault/<slug>.yml`, one ansible-vault encrypted file per commune.

Why (issue 18): with every secret inline in `group_vars/all/vault.yml` (~7 ms PBKDF2 per value), a
35,000-commune vault is ~760 MiB and Ansible's host_group_vars parses all of it in every run. Here each
tenant's secrets (its namespace `tno_vault_<slug_>_*` and `tno_vault_borg_<slug_>`) form one YAML
mapping encrypted as a whole: one PBKDF2 per tenant file, and a run opens only its tenants' files.
`vault.yml` keeps the platform's secrets (and, in older inventories, may still hold tenant secrets:
both layouts are read). The layout is on when the directory `vault/` exists.

Rules (one-line errors naming the file and the variable): a file must be `<slug>.yml` of a tenant
of `tenants/`, a regular file (a symlink only inside the inventory), at most :data:`FILE_MAX` bytes,
whole-file encrypted, a mapping of scalars whose names all belong to that tenant (longest matching
namespace, logical.py); a name may not also be defined in `vault.yml`. Nothing here logs a value.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Container, Iterable
from pathlib import Path
from typing import Any

from tnoctl.config import yamlio
from tnoctl.config.logical import PLATFORM_VAULT_PREFIXES, vault_namespace
from tnoctl.errors import InvalidInput

VAULT_DIR = "vault"
FILE_MAX = 16 * 1024 * 1024
"""Cap of one tenant vault file (a commune with 1,000 mailboxes needs ~100 KiB)."""
BORG_PREFIX = PLATFORM_VAULT_PREFIXES[0]
HEADER = b"$ANSIBLE_VAULT;"

DECRYPTS = 0
"""Tenant files decrypted by this process (tests: one per file and change)."""
DECRYPTED: list[str] = []
"""Slugs of the tenant files this process decrypted, in order (tests: none outside a run's targets)."""
_MEMO: dict[str, tuple[tuple[int, int, int], dict[str, str]]] = {}
"""slug -> (stat key, plaintext mapping) of the tenant files decrypted by this process."""


def _printable(text: str) -> str:
    """File and variable names come from outside: never let one forge an output line."""
    return "".join(ch if ch.isprintable() else "?" for ch in text)[:160]


def is_split(inventory: Path) -> bool:
    """True when the inventory uses the per-tenant layout (the directory `vault/` exists)."""
    return (inventory / VAULT_DIR).is_dir()


def rel(slug: str) -> str:
    """`vault/<slug>.yml`: the tenant's file, relative to the inventory."""
    return f"{VAULT_DIR}/{slug}.yml"


def files(inventory: Path) -> dict[str, tuple[int, int, int]]:
    """{slug: (size, mtime_ns, inode)} of every `vault/*.yml` (empty without the layout); no content read."""
    found: dict[str, tuple[int, int, int]] = {}
    try:
        entries = os.scandir(inventory / VAULT_DIR)
    except OSError:
        return found
    with entries:
        for entry in entries:
            if entry.name.endswith(".yml") and not entry.name.startswith("."):
                try:
                    st = entry.stat()
                except OSError:
                    continue
                found[entry.name[:-4]] = (st.st_size, st.st_mtime_ns, st.st_ino)
    return found


_LISTINGS: dict[str, tuple[tuple[int, int, int], frozenset[str]]] = {}
"""directory -> (its stat, stems of its *.yml): the listings made by :func:`_stems`."""


def _stems(path: Path) -> frozenset[str]:
    """Stems of the `*.yml` in ``path`` (one listing, no stat per file), memoised on the directory's stat.

    Creating, deleting or renaming a file changes the directory's mtime, so the memo stays exact.
    """
    try:
        st = path.stat()
        names = None if _LISTINGS.get(str(path), ((), None))[0] == (st.st_mtime_ns, st.st_ino, st.st_size) \
            else os.listdir(path)
    except OSError:
        return frozenset()
    if names is not None:
        stems = frozenset(n[:-4] for n in names if n.endswith(".yml") and not n.startswith("."))
        _LISTINGS[str(path)] = ((st.st_mtime_ns, st.st_ino, st.st_size), stems)
    return _LISTINGS[str(path)][1]


def present(inventory: Path) -> frozenset[str]:
    """Slugs that have a `vault/<slug>.yml` (empty without the layout)."""
    return _stems(inventory / VAULT_DIR)


def owner(name: str, slugs: Container[str]) -> str | None:
    """The slug among ``slugs`` owning vault variable ``name`` (longest matching namespace), else None.

    Slugs never contain `_`, so the namespace `tno_vault_saint_priest_` names exactly `saint-priest`.
    """
    if name.startswith(BORG_PREFIX):
        slug = name[len(BORG_PREFIX):].replace("_", "-")
        return slug if slug in slugs else None
    if not name.startswith("tno_vault_") or name.startswith(PLATFORM_VAULT_PREFIXES):
        return None
    rest = name[len("tno_vault_"):]
    cut = rest.rfind("_")
    while cut > 0:
        slug = rest[:cut].replace("_", "-")
        if slug in slugs:
            return slug
        cut = rest.rfind("_", 0, cut)
    return None


def layout_errors(inventory: Path, slugs: Iterable[str]) -> list[str]:
    """`vault/x: message` for every entry of `vault/` that is not the file of a tenant in ``slugs``.

    Cheap (one directory listing, no content read): validation runs it on every load.
    """
    known = set(slugs)
    errors: list[str] = []
    try:
        entries = sorted(os.scandir(inventory / VAULT_DIR), key=lambda e: e.name)
    except OSError:
        return errors
    base = os.path.realpath(inventory)
    for entry in entries:
        where = f"{VAULT_DIR}/{_printable(entry.name)}"
        if entry.name.startswith("."):
            continue  # editor and atomic-write temporaries
        if not entry.name.endswith(".yml"):
            errors.append(f"{where}: (file): not a tenant vault file (expected {VAULT_DIR}/<slug>.yml)")
        elif entry.name[:-4] not in known:
            errors.append(f"{where}: (file): no tenant {entry.name[:-4]!r} (tenants/{entry.name}); "
                          "move or delete this vault file")
        elif entry.is_symlink() and not os.path.realpath(entry.path).startswith(base.rstrip(os.sep) + os.sep):
            errors.append(f"{where}: (file): a symlink pointing outside the inventory (refused)")
        elif not entry.is_file():
            errors.append(f"{where}: (file): not a regular file")
    return errors


_KNOWN: dict[str, Any] = {}
"""The last union made by :func:`known_slugs`: {"key": (its two listings), "value": frozenset}."""


def known_slugs(inventory: Path, plus: str | None = None) -> Container[str]:
    """Slugs of `tenants/*.yml` and `vault/*.yml` (memoised listings), and ``plus``: the namespaces owning names."""
    tenants, vaults = _stems(inventory / "tenants"), present(inventory)
    if _KNOWN.get("key") != (tenants, vaults):
        _KNOWN.update(key=(tenants, vaults), value=tenants | vaults)
    known: frozenset[str] = _KNOWN["value"]
    return known if plus is None or plus in known else known | {plus}


def namespace(slug: str) -> tuple[str, str]:
    """(prefix of the tenant's own names, its borg passphrase variable)."""
    return vault_namespace(slug), BORG_PREFIX + slug.replace("-", "_")


def check_names(slug: str, names: Iterable[str], slugs: Container[str], platform: Collection[str]) -> None:
    """InvalidInput unless every name belongs to ``slug`` and none is also in vault.yml (``platform``)."""
    check_twice(slug, names, platform)
    for name in names:
        if owner(name, slugs) != slug:
            space, borg = namespace(slug)
            raise InvalidInput(f"{rel(slug)}: {_printable(name)}: outside the tenant's vault namespace "
                               f"({space}* or {borg})")


def check_twice(slug: str, names: Iterable[str], platform: Collection[str]) -> None:
    """InvalidInput naming the first name of the tenant file that vault.yml defines too."""
    twice = sorted(n for n in names if n in platform)
    if twice:
        raise InvalidInput(f"{rel(slug)}: {_printable(twice[0])}: also defined in group_vars/all/vault.yml (a name "
                           "is defined once; after an interrupted `tnoctl inventory split-vault`, run it again)")


def read_bytes(inventory: Path, slug: str) -> bytes:
    """The ciphertext of the tenant's file under the safe reading rules (InvalidInput naming the file)."""
    try:
        data = yamlio.read_file(inventory / rel(slug), root=inventory, limit=FILE_MAX, what="tenant vault file")
    except FileNotFoundError:
        raise InvalidInput(f"{rel(slug)}: (file): not found") from None
    except yamlio.YamlProblem as exc:
        raise InvalidInput(f"{rel(slug)}: {exc.where}: {exc.message}") from None
    if not data.startswith(HEADER):
        raise InvalidInput(f"{rel(slug)}: (file): not ansible-vault encrypted (encrypt it: ansible-vault encrypt)")
    return data


def parse_plain(slug: str, plain: bytes) -> dict[str, str]:
    """The decrypted mapping: same safe YAML as every inventory file; scalars only."""
    try:
        doc = yamlio.loads(plain, what="tenant vault file", limit=FILE_MAX)
    except yamlio.YamlProblem as exc:
        raise InvalidInput(f"{rel(slug)}: {exc.where}: {exc.message}") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise InvalidInput(f"{rel(slug)}: (document): must be a mapping of tno_vault_* variables")
    out: dict[str, str] = {}
    for key, value in doc.items():
        if not isinstance(key, str) or isinstance(value, dict | list):
            raise InvalidInput(f"{rel(slug)}: {_printable(str(key))}: must be a name with a text value")
        if value is not None:
            out[key] = str(value)
    return out


def read_tenant(inventory: Path, slug: str, lib: Any, decrypt: Any, platform: Collection[str] = (),
                keep: bool = True) -> dict[str, str]:
    """Plaintext mapping of `vault/<slug>.yml`, decrypted once per process while its stat is unchanged.

    ``lib`` and ``decrypt`` are vault.py's VaultLib and its error-mapping decrypt (this module stays
    free of ansible imports); ``platform`` are vault.yml's names (a name defined twice is an error).
    Callers must not mutate or print the result. ``keep=False``: not memoised (a long-lived reader
    that keeps only the values it needs, e.g. the exporter's canary lookup).
    """
    global DECRYPTS
    path = inventory / rel(slug)
    try:
        st = path.stat()
        key = (st.st_size, st.st_mtime_ns, st.st_ino)
    except OSError:
        key = None
    memo = _MEMO.get(slug)
    if key is not None and memo is not None and memo[0] == key:
        check_twice(slug, memo[1], platform)  # vault.yml may have changed since
        return memo[1]
    data = read_bytes(inventory, slug)
    doc = parse_plain(slug, decrypt(lib, data, rel(slug)))
    check_names(slug, doc, known_slugs(inventory, slug), platform)
    DECRYPTS += 1
    DECRYPTED.append(slug)
    if key is not None and keep:
        _MEMO[slug] = (key, doc)
    return doc


def forget(slug: str) -> None:
    """Drop the memo of one tenant file (after this process rewrote or removed it)."""
    _MEMO.pop(slug, None)
