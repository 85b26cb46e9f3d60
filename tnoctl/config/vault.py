"""The inventory's vault: `group_vars/all/vault.yml` and, in the split layout, `vault/<slug>.yml`.

`vault.yml` holds the platform's secrets (and, in older or small inventories, every tenant's); with
the directory `vault/` present each tenant's secrets live in its own whole-file encrypted file
(vaultsplit.py): readers decrypt only the tenant files of the names they are asked for.

Each value is encrypted on its own with ansible's VaultLib (`key: !vault |` blocks), so variable
*names* stay readable and `ansible-inventory --list` works without the vault password, while
playbooks decrypt values with it. A whole-file encrypted vault (`ansible-vault encrypt`) is read
and written too. Nothing here logs or prints a value.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import os
import secrets
import string
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from tnoctl.config import vaultsplit, yamlio
from tnoctl.errors import InvalidInput
from tnoctl.state.durable import fsync_dir

VAULT_REL = "group_vars/all/vault.yml"
_ALPHABET = string.ascii_letters + string.digits
_HEADER = b"$ANSIBLE_VAULT;"
MAX_BYTES = 256 * 1024 * 1024
"""Vault files larger than this are refused: ~350,000 inline values (35,000 communes x 10 mailboxes)."""


class Vaulted(str):
    """Ciphertext of one inline `!vault` value (never the plaintext)."""


class _Loader(yamlio.SafeLoader):
    """Safe loader that keeps `!vault` scalars as :class:`Vaulted`."""


class _Dumper(yamlio.SafeDumper):
    """Safe dumper that writes :class:`Vaulted` back as `!vault |` blocks."""


_Loader.add_constructor("!vault", lambda loader, node: Vaulted(loader.construct_scalar(node)))
_Dumper.add_representer(Vaulted, lambda d, v: d.represent_scalar("!vault", str(v), style="|"))


def _vaultlib(password_file: Path):
    from ansible.constants import DEFAULT_VAULT_ID_MATCH
    from ansible.parsing.vault import VaultLib, VaultSecret

    try:
        password = password_file.read_bytes().strip()
    except OSError as exc:
        raise InvalidInput(f"cannot read vault password file {password_file}: {exc.strerror}") from None
    if not password:
        raise InvalidInput(f"vault password file {password_file} is empty")
    return VaultLib([(DEFAULT_VAULT_ID_MATCH, VaultSecret(password))])


def password_opens(password_file: Path, vaulttext: bytes) -> bool:
    """Whether the password file's secret authenticates ``vaulttext`` (format 1.1/1.2 AES256), standard
    library only.

    Why: a warm run checks the password against one cached ciphertext so that a wrong password is
    reported as a cold run would; importing ansible's vault code for that costs ~0.2 s of every warm verb
    (issue 18: <= 2 s). This checks the HMAC-SHA256 of the ciphertext with the key PBKDF2 derives, as
    VaultAES256 does before it decrypts, and never decrypts. False also means "could not tell" (an
    unreadable file, another format): the caller then asks VaultLib, which gives the exact error.
    """
    try:
        password = password_file.read_bytes().strip()
        lines = vaulttext.strip().splitlines()
        header = [field.strip() for field in lines[0].split(b";")]
        if not password or len(header) < 3 or header[0] != b"$ANSIBLE_VAULT" or header[1] not in (b"1.1", b"1.2") \
                or header[2] != b"AES256":
            return False
        salt_hex, mac_hex, ciphertext_hex = binascii.unhexlify(b"".join(line.strip() for line in lines[1:])).split(
            b"\n", 2)
        salt, mac, ciphertext = (binascii.unhexlify(part) for part in (salt_hex, mac_hex, ciphertext_hex))
    except (OSError, ValueError, IndexError, binascii.Error):
        return False
    keys = hashlib.pbkdf2_hmac("sha256", password, salt, 10000, 80)  # key1 (AES), key2 (HMAC), IV
    return hmac.compare_digest(hmac.new(keys[32:64], ciphertext, hashlib.sha256).digest(), mac)


def _decrypt(lib, data: bytes, password_file: Path) -> bytes:
    return _decrypt_at(lib, data, password_file, VAULT_REL)


def _decrypt_at(lib, data: bytes, password_file: Path, where: str) -> bytes:
    try:
        return lib.decrypt(data)
    except Exception as exc:  # AnsibleError and friends: wrong password, corrupt data
        raise InvalidInput(f"{where}: cannot decrypt with {password_file}: {type(exc).__name__}") from None


def _parse(data: bytes) -> dict[str, Any]:
    """The same safe reading as every inventory file (no aliases, no duplicate keys), !vault kept."""
    try:
        doc = yamlio.loads(data, what="vault file", loader=_Loader, limit=MAX_BYTES)
    except yamlio.YamlProblem as exc:  # hostile vault file: one message, no traceback, no content
        raise InvalidInput(f"{VAULT_REL}: {exc.where}: {exc.message}") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise InvalidInput(f"{VAULT_REL}: (document): must be a mapping of tno_vault_* variables")
    return doc


_MEMO: dict[str, Any] = {}
"""The last vault parsed by this process: {"key": (path, stat, password file), "value": (doc, whole)}."""
PARSES = 0
"""How many times this process parsed a vault file (the unit tests prove it is once)."""


def _stat_key(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns, st.st_ino


def read_raw(inventory: Path, password_file: Path | None) -> tuple[dict[str, Any], bool] | None:
    """(mapping, whole_file_encrypted); inline values stay ciphertext. None if absent or unreadable.

    Parsed once per process: the result is kept while the file's stat is unchanged (callers must not
    mutate it; :func:`add_secrets` copies). A 35,000-commune vault is hundreds of MB of YAML.
    """
    global PARSES
    path = inventory / VAULT_REL
    memo_key = (str(path.resolve()), _stat_key(path), str(password_file))
    if memo_key[1] is not None and _MEMO.get("key") == memo_key:
        return _MEMO["value"]
    try:
        data = yamlio.read_file(path, root=inventory, limit=MAX_BYTES, what="vault file")
    except FileNotFoundError:
        return None
    except yamlio.YamlProblem as exc:
        raise InvalidInput(f"{VAULT_REL}: {exc.where}: {exc.message}") from None
    if data.startswith(_HEADER):
        if password_file is None:
            return None
        value = _parse(_decrypt(_vaultlib(password_file), data, password_file)), True
    else:
        value = _parse(data), False
    PARSES += 1
    _MEMO.clear()
    _MEMO.update(key=memo_key, value=value)
    return value


PLATFORM_SECRET_PREFIXES = ("tno_vault_office_", "tno_vault_rspamd_")
"""Platform secrets every deploy may handle, whatever its tenant selection (office admin password, the
mail hosts' Rspamd controller passwords: one per mail host, tens of values, not per tenant)."""


def password_sample(doc: dict[str, Any]) -> Vaulted | None:
    """The ciphertext decrypted to check the password: a platform secret when there is one (any
    deploy handles it anyway), so checking never decrypts a tenant's secret outside a run's targets."""
    vaulted = [(str(k), v) for k, v in doc.items() if isinstance(v, Vaulted)]
    platform = [v for k, v in vaulted if k.startswith(PLATFORM_SECRET_PREFIXES)]
    return (platform or [v for _, v in vaulted] or [None])[0]


def platform_names(inventory: Path, password_file: Path | None) -> frozenset[str] | None:
    """Names defined in vault.yml (empty without it), or None when a whole-file vault.yml has no password.

    With a password, one inline value is decrypted too, so a wrong password is reported early.
    """
    raw = read_raw(inventory, password_file)
    if raw is None:
        return frozenset() if not (inventory / VAULT_REL).exists() else None
    doc, _ = raw
    if password_file is not None:
        sample = password_sample(doc)
        if sample is not None:
            _decrypt(_vaultlib(password_file), sample.encode(), password_file)
    return frozenset(str(k) for k in doc)


def vault_names(inventory: Path, password_file: Path | None,
                slugs: Iterable[str] | None = None) -> frozenset[str] | None:
    """Names of the vault variables, or None when they cannot be known (check skipped).

    vault.yml's (see :func:`platform_names`; None when the inventory has no vault at all) and, in the
    split layout, those of the tenant files of ``slugs`` (None: every tenant file, each decrypted once
    per process); without a password tenant files are unknowable (None).
    """
    split = vaultsplit.is_split(inventory)
    if not split and not (inventory / VAULT_REL).exists():
        return None
    names = platform_names(inventory, password_file)
    if names is None or not split:
        return names
    if password_file is None:
        return None
    present = vaultsplit.present(inventory)
    found = set(names)
    for slug in sorted(present if slugs is None else set(slugs) & present):
        found.update(tenant_doc(inventory, password_file, slug))
    return frozenset(found)


def tenant_doc(inventory: Path, password_file: Path, slug: str, keep: bool = True,
               twice_ok: bool = False) -> dict[str, str]:
    """Plaintext mapping of `vault/<slug>.yml` (decrypted once per process per file version; never print it).

    A name vault.yml defines too is an error, unless ``twice_ok`` (the migration finishing an interrupted run).
    """
    raw = read_raw(inventory, password_file) if not twice_ok else None
    return vaultsplit.read_tenant(inventory, slug, _vaultlib(password_file),
                                  lambda lib, data, where: _decrypt_at(lib, data, password_file, where),
                                  raw[0].keys() if raw is not None else (), keep=keep)


def split_secret_names(inventory: Path, password_file: Path, slugs: Iterable[str]) -> tuple[list[str], list[str]]:
    """(every secret name of the tenants among ``slugs`` that have a `vault/<slug>.yml`: the file's and
    vault.yml's names they own; the other slugs). A scrubber needs no tenant file parse for the first."""
    present = vaultsplit.present(inventory)
    wanted = [s for s in dict.fromkeys(slugs) if s in present]
    others = [s for s in dict.fromkeys(slugs) if s not in present]
    if not wanted:
        return [], others
    raw = read_raw(inventory, password_file)
    chosen = set(wanted)
    names = [str(k) for k in (raw[0] if raw is not None else {}) if vaultsplit.owner(str(k), present) in chosen]
    docs = vaultsplit.read_tenants(inventory, wanted, _vaultlib(password_file),
                                   lambda lib, data, where: _decrypt_at(lib, data, password_file, where),
                                   raw[0].keys() if raw is not None else (), workers=os.cpu_count() or 1)
    for slug in wanted:
        names += docs[slug]
    return names, others


def new_password(length: int = 24) -> str:
    """A random mailbox password (letters and digits: safe in any config file)."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def add_secrets(inventory: Path, password_file: Path, new: dict[str, str], tenant: str | None = None) -> list[str]:
    """Add variables that do not exist yet (existing ones are kept); return the names added.

    With ``tenant`` and the split layout they go to `vault/<tenant>.yml` (every name must be that
    tenant's), else to vault.yml as before.
    """
    if tenant is not None and vaultsplit.is_split(inventory):
        return _add_tenant_secrets(inventory, password_file, tenant, new)
    lib = _vaultlib(password_file)
    raw = read_raw(inventory, password_file)
    doc, whole = (dict(raw[0]), raw[1]) if raw is not None else ({}, False)
    added = [k for k in new if k not in doc]
    for key in added:
        doc[key] = new[key] if whole else Vaulted(lib.encrypt(new[key].encode()).decode())
    _write_vault_yml(inventory, lib, doc, whole)
    return added


def write_platform(inventory: Path, password_file: Path, doc: dict[str, Any], whole: bool) -> None:
    """Rewrite vault.yml with ``doc`` as read by :func:`read_raw` (inline ciphertexts are kept as they are)."""
    _write_vault_yml(inventory, _vaultlib(password_file), doc, whole)


def _write_vault_yml(inventory: Path, lib: Any, doc: dict[str, Any], whole: bool) -> None:
    text = yaml.dump(dict(sorted(doc.items())), Dumper=_Dumper, sort_keys=False, allow_unicode=True)
    content = lib.encrypt(text.encode()) if whole else text.encode()
    path = inventory / VAULT_REL
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, content, 0o600 if whole else 0o644)


def _add_tenant_secrets(inventory: Path, password_file: Path, slug: str, new: dict[str, str]) -> list[str]:
    raw = read_raw(inventory, password_file)
    platform = raw[0].keys() if raw is not None else {}.keys()
    exists = (inventory / vaultsplit.rel(slug)).exists()
    doc = dict(tenant_doc(inventory, password_file, slug)) if exists else {}
    added = [k for k in new if k not in doc and k not in platform]
    if not added:
        return []
    doc.update({k: new[k] for k in added})
    vaultsplit.check_names(slug, doc, vaultsplit.known_slugs(inventory, slug), platform)
    write_tenant(inventory, _vaultlib(password_file), slug, doc)
    return added


def write_tenant(inventory: Path, lib: Any, slug: str, doc: dict[str, str]) -> None:
    """Encrypt ``doc`` as a whole into `vault/<slug>.yml` (atomic, 0600); the caller checked the names."""
    text = yaml.safe_dump(dict(sorted(doc.items())), sort_keys=False, allow_unicode=True, width=1 << 16)
    path = inventory / vaultsplit.rel(slug)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lib.encrypt(text.encode()), 0o600)
    vaultsplit.forget(slug)


def decrypt_value(inventory: Path, password_file: Path, name: str) -> str:
    """Plaintext of one vault variable (for probes and tests; callers must not print it)."""
    values = read_vault(inventory, password_file, [name])
    if name not in values:
        raise InvalidInput(f"{VAULT_REL}: {name} is not defined in the vault")
    return values[name]


def atomic_write(path: Path, content: bytes, mode: int = 0o644) -> None:
    """Write via a temp file in the same directory, fsync it, rename over ``path``, fsync the directory.

    Without the directory fsync a crash after the rename can bring the old file (or none) back.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(content)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def read_vault(inventory: Path, password_file: Path, names: Iterable[str] | None = None) -> dict[str, str]:
    """Vault variables, decrypted: all of them, or only ``names`` (those absent are skipped).

    For redaction registries and tests; never print the values. Deploys pass the names their
    targeted tenants need: decrypting costs ~7 ms per inline value or per tenant file (PBKDF2), hours
    for a whole fleet. In the split layout a name owned by a tenant with a `vault/<slug>.yml` is read
    from that file only (one decrypt per file and process); every other name from vault.yml.
    """
    raw = read_raw(inventory, password_file)
    doc = raw[0] if raw is not None else {}
    present = vaultsplit.present(inventory)
    values: dict[str, str] = {}
    if names is None:
        wanted: Iterable[Any] = doc.keys()
        for slug in sorted(present):
            values.update(tenant_doc(inventory, password_file, slug))
    else:
        wanted = []
        by_owner: dict[str, list[str]] = {}
        for name in dict.fromkeys(names):
            slug = vaultsplit.owner(name, present) if present else None
            if slug is not None:
                by_owner.setdefault(slug, []).append(name)
            elif name in doc:
                wanted.append(name)
        for slug, owned in by_owner.items():  # one read (and at most one decrypt) per tenant file
            tdoc = tenant_doc(inventory, password_file, slug)
            values.update((n, tdoc[n]) for n in owned if n in tdoc)
            wanted += [n for n in owned if n not in tdoc and n in doc]
    lib = _vaultlib(password_file) if wanted else None
    for name in wanted:
        value = doc[name]
        if isinstance(value, Vaulted):
            values[str(name)] = _decrypt(lib, value.encode(), password_file).decode()
        elif value is not None:
            values[str(name)] = str(value)
    return values


def platform_secret_names(inventory: Path, password_file: Path | None) -> list[str]:
    """Names of the platform-wide vault variables (no decrypt; from the per-process parse)."""
    raw = read_raw(inventory, password_file)
    return [str(k) for k in raw[0] if str(k).startswith(PLATFORM_SECRET_PREFIXES)] if raw else []


def secret_scrubber(inventory: Path, password_file: Path | None, names: Iterable[str] | None = None):
    """Register vault values as secrets (audit, diffs, messages) and return the text scrubber.

    The one place verbs get their redaction function from (deploy, plan, drift, runbooks). With
    ``names`` only those values are decrypted and registered (a deploy's targeted tenants): the
    scrubber masks what the run can handle, no more.
    """
    from tnoctl.state.redact import SECRETS

    if password_file is not None:
        SECRETS.add_all(v for v in read_vault(inventory, password_file, names).values() if v)
    return SECRETS.scrub_text
