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
import stat
from collections.abc import Callable, Collection, Container, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

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


Stat = tuple[int, int, int]


class Listing(NamedTuple):
    """One pass over `vault/`: the stat of each `*.yml` (followed), and every entry for the layout rules."""

    stats: dict[str, Stat]  # slug -> (size, mtime_ns, inode) of the regular `<slug>.yml` files
    entries: list[tuple[str, bool, bool]]  # (name, is a symlink, is a regular file once followed)


def scan_dir(inventory: Path) -> Listing:
    """List `vault/` once (empty without the layout): one stat per `*.yml`, no content read."""
    stats: dict[str, Stat] = {}
    entries: list[tuple[str, bool, bool]] = []
    try:
        scanner = os.scandir(inventory / VAULT_DIR)
    except OSError:
        return Listing(stats, entries)
    with scanner:
        for entry in scanner:
            name = entry.name
            if name.startswith("."):
                continue  # editor and atomic-write temporaries
            regular = False
            if name.endswith(".yml"):
                try:
                    st = entry.stat()
                    regular = stat.S_ISREG(st.st_mode)
                except OSError:
                    st = None
                if regular and st is not None:
                    stats[name[:-4]] = (st.st_size, st.st_mtime_ns, st.st_ino)
            entries.append((name, entry.is_symlink(), regular))
    return Listing(stats, entries)


def files(inventory: Path) -> dict[str, Stat]:
    """{slug: (size, mtime_ns, inode)} of every regular `vault/*.yml` (empty without the layout)."""
    return scan_dir(inventory).stats


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


def layout_errors(inventory: Path, slugs: Container[str], listing: Listing | None = None) -> list[str]:
    """`vault/x: (file): message` for every entry of `vault/` that is not the file of a tenant in ``slugs``.

    Cheap (the directory listing of :func:`scan_dir`, no content read): validation runs it on every load.
    """
    errors: list[str] = []
    base = os.path.realpath(inventory).rstrip(os.sep) + os.sep
    for name, link, regular in sorted((listing or scan_dir(inventory)).entries):
        if name.endswith(".yml") and name[:-4] in slugs and regular and not link:
            continue  # the common case, decided without formatting anything
        where = f"{VAULT_DIR}/{_printable(name)}"
        if not name.endswith(".yml"):
            errors.append(f"{where}: (file): not a tenant vault file (expected {VAULT_DIR}/<slug>.yml)")
        elif name[:-4] not in slugs:
            errors.append(f"{where}: (file): no tenant {_printable(name[:-4])!r} (tenants/{_printable(name)}); "
                          "move or delete this vault file")
        elif link and not os.path.realpath(inventory / VAULT_DIR / name).startswith(base):
            errors.append(f"{where}: (file): a symlink pointing outside the inventory (refused)")
        elif not regular:
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


def parse_doc(slug: str, plain: bytes) -> dict[str, Any]:
    """The decrypted mapping as YAML typed it: same safe YAML as every inventory file; scalar values only."""
    try:
        doc = yamlio.loads(plain, what="tenant vault file", limit=FILE_MAX)
    except yamlio.YamlProblem as exc:
        raise InvalidInput(f"{rel(slug)}: {exc.where}: {exc.message}") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise InvalidInput(f"{rel(slug)}: (document): must be a mapping of tno_vault_* variables")
    for key, value in doc.items():
        if not isinstance(key, str) or isinstance(value, dict | list):
            raise InvalidInput(f"{rel(slug)}: {_printable(str(key))}: must be a name with a text value")
    return doc


def parse_plain(slug: str, plain: bytes) -> dict[str, str]:
    """The decrypted mapping, values as text (empty values dropped): tnoctl's own readers."""
    return {key: str(value) for key, value in parse_doc(slug, plain).items() if value is not None}


def decrypt_many(inventory: Path, slugs: Iterable[str], decrypt: Callable[[bytes, str], bytes],
                 workers: int) -> Iterator[tuple[str, bytes]]:
    """(slug, plaintext) of each tenant file of ``slugs``, in that order: read (:func:`read_bytes`) and
    ``decrypt(ciphertext, rel)`` run in ``workers`` threads.

    Threads, not processes: the key derivation (PBKDF2, ~5 ms, the bulk of a file's cost) runs in
    ``cryptography`` without the GIL, so the files of a 700-tenant host use every core while the
    plaintext never leaves this process (no pickling, no pipe, nothing on disk). The caller parses
    each plaintext as it comes and drops it. The first failure (InvalidInput from the read, or
    whatever ``decrypt`` raises) is raised when its turn comes; files not started yet are cancelled.
    """
    global DECRYPTS
    order = list(slugs)

    def one(slug: str) -> bytes:
        return decrypt(read_bytes(inventory, slug), rel(slug))

    pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="tno-vault")
    try:
        for slug, plain in zip(order, pool.map(one, order), strict=True):
            DECRYPTS += 1
            DECRYPTED.append(slug)
            yield slug, plain
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _memo(inventory: Path, slug: str) -> tuple[Stat | None, dict[str, str] | None]:
    """(the file's stat key, its memoised mapping if that stat is unchanged)."""
    try:
        st = (inventory / rel(slug)).stat()
        key = (st.st_size, st.st_mtime_ns, st.st_ino)
    except OSError:
        return None, None
    memo = _MEMO.get(slug)
    return key, memo[1] if memo is not None and memo[0] == key else None


def _checked(inventory: Path, slug: str, plain: bytes, platform: Collection[str]) -> dict[str, str]:
    doc = parse_plain(slug, plain)
    check_names(slug, doc, known_slugs(inventory, slug), platform)
    return doc


def read_tenant(inventory: Path, slug: str, lib: Any, decrypt: Any, platform: Collection[str] = (),
                keep: bool = True) -> dict[str, str]:
    """Plaintext mapping of `vault/<slug>.yml`, decrypted once per process while its stat is unchanged.

    ``lib`` and ``decrypt`` are vault.py's VaultLib and its error-mapping decrypt (this module stays
    free of ansible imports); ``platform`` are vault.yml's names (a name defined twice is an error).
    Callers must not mutate or print the result. ``keep=False``: not memoised (a long-lived reader
    that keeps only the values it needs, e.g. the exporter's canary lookup).
    """
    global DECRYPTS
    key, memo = _memo(inventory, slug)
    if memo is not None:
        check_twice(slug, memo, platform)  # vault.yml may have changed since
        return memo
    doc = _checked(inventory, slug, decrypt(lib, read_bytes(inventory, slug), rel(slug)), platform)
    DECRYPTS += 1
    DECRYPTED.append(slug)
    if key is not None and keep:
        _MEMO[slug] = (key, doc)
    return doc


def read_tenants(inventory: Path, slugs: Iterable[str], lib: Any, decrypt: Any, platform: Collection[str] = (),
                 workers: int = 1) -> dict[str, dict[str, str]]:
    """:func:`read_tenant` of each slug (memoised the same way), the files not memoised yet decrypted in
    ``workers`` threads (:func:`decrypt_many`): a deploy's scrubber for a 700-commune host."""
    out: dict[str, dict[str, str]] = {}
    keys: dict[str, Stat | None] = {}
    for slug in dict.fromkeys(slugs):
        key, memo = _memo(inventory, slug)
        if memo is not None:
            check_twice(slug, memo, platform)
            out[slug] = memo
        else:
            keys[slug] = key
    for slug, plain in decrypt_many(inventory, keys, lambda data, where: decrypt(lib, data, where), workers):
        out[slug] = _checked(inventory, slug, plain, platform)
        key = keys[slug]
        if key is not None:
            _MEMO[slug] = (key, out[slug])
    return out


def forget(slug: str) -> None:
    """Drop the memo of one tenant file (after this process rewrote or removed it)."""
    _MEMO.pop(slug, None)
