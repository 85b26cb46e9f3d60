"""The probes' canary passwords, read from the vault once per change and decrypted once per value.

Why (issue 18): the probe worker used to re-parse the whole ``vault.yml`` for every lookup (twice per
tenant and round); at 35,000 communes the vault holds every mailbox password and borg passphrase
(hundreds of MB), so a round never finished. :class:`VaultLookup` scans the file only when its
stat (inode, size, mtime) changed, keeps only the ciphertexts of the names it was told it will be
asked for (the tenants' canaries, :meth:`VaultLookup.want`), and decrypts each value once (kept
while its ciphertext is unchanged). The scan streams the file in chunks and finds top-level keys
with a regular expression, so the whole vault is never held in memory nor built as YAML objects;
an entry in tnoctl's own form (``name: !vault |`` + an indented ciphertext, as ``tnoctl tenant add``
and ansible-vault write it) is read directly, any other form of a wanted entry is parsed with the
inventory's safe YAML loader. A whole-file encrypted vault is read with the product's reader.
With the split layout (config/vaultsplit.py) a name owned by a tenant that has a `vault/<slug>.yml`
is read from that file: decrypted once per change of the file, keeping only the wanted names.

Values are only handed to the probe that logs in; nothing here logs or prints one.
"""

from __future__ import annotations

import os
import re
import stat
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

from tnoctl.config import vault, vaultsplit, yamlio
from tnoctl.errors import InvalidInput

CHUNK = 16 << 20
_TOP = re.compile(rb"^([^\s#\-][^:\n]*?)[ \t]*:", re.M)
"""A top-level mapping key: a line that starts without indentation, comment or document marker."""
_BLOCK = re.compile(rb"[^:\n]*:[ \t]*!vault[ \t]*\|[-+]?[ \t]*\r?\n((?:[ \t]+\S[^\n]*\n?|[ \t]*\r?\n)+)\Z")
"""tnoctl's own form of an entry: ``name: !vault |`` then only indented lines (the ciphertext)."""


class _Loader(yamlio.SafeLoader):
    """The inventory's safe loader, keeping ``!vault`` scalars as :class:`tnoctl.config.vault.Vaulted`."""


_Loader.add_constructor("!vault", lambda loader, node: vault.Vaulted(loader.construct_scalar(node)))


class VaultLookup:
    """``lookup(name) -> plaintext | None`` for the names declared with :meth:`want`."""

    def __init__(self, inventory: Path, password_file: Path, names: Iterable[str] = ()) -> None:
        self.inventory, self.password_file = inventory, password_file
        self.path = inventory / vault.VAULT_REL
        self._lock = threading.Lock()
        self._wanted: set[str] = set(names)
        self._stat: tuple[int, int, int] | None = None
        self._values: dict[str, str] = {}  # wanted name → ciphertext (Vaulted) or plain value, as in the file
        self._plain: dict[str, tuple[str, str]] = {}  # name → (ciphertext, plaintext)
        self._lib = None
        # slug -> (stat, wanted values, every name the file defines): a name it lacks costs no decrypt
        self._tenants: dict[str, tuple[tuple[int, int, int], dict[str, str], frozenset[str]]] = {}
        self.scans = 0  # file reads since creation (tests: one per change of the file)
        self.decrypts = 0  # values decrypted since creation (tests: one per value and change)

    def want(self, names: Iterable[str]) -> None:
        """Declare the names that will be looked up; new ones are read at the next lookup."""
        with self._lock:
            new = set(names) - self._wanted
            if new:
                self._wanted |= new
                self._stat = None

    def __call__(self, name: str) -> str | None:
        """The plaintext of ``name``, or None when the vault lacks it or cannot be read/decrypted."""
        try:
            found, plain = self._from_tenant_file(name)
        except (InvalidInput, OSError):
            return None
        if found:
            return plain
        with self._lock:
            if name not in self._wanted:  # not declared: read once more, with it
                self._wanted.add(name)
                self._stat = None
            try:
                self._refresh()
            except (InvalidInput, OSError, yamlio.YamlProblem):
                return None
            value = self._values.get(name)
            cached = self._plain.get(name)
        if value is None:
            return None
        if not isinstance(value, vault.Vaulted):
            return str(value)
        if cached is not None and cached[0] == value:
            return cached[1]
        plain = self._decrypt(value)  # outside the lock: probes decrypt in parallel
        if plain is not None:
            with self._lock:
                self._plain[name] = (str(value), plain)
        return plain

    # ------------------------------------------------------------------ reading
    def _from_tenant_file(self, name: str) -> tuple[bool, str | None]:
        """(True, value) when the split layout's tenant file owning ``name`` defines it, else (False, None)."""
        present = vaultsplit.present(self.inventory)
        slug = vaultsplit.owner(name, present) if present else None
        if slug is None:
            return False, None
        st = os.stat(self.inventory / vaultsplit.rel(slug))
        key = (st.st_ino, st.st_size, st.st_mtime_ns)
        cached = self._tenants.get(slug)
        if cached is None or cached[0] != key or (name in cached[2] and name not in cached[1]):
            with self._lock:
                self._wanted.add(name)
                wanted = set(self._wanted)
            doc = vault.tenant_doc(self.inventory, self.password_file, slug, keep=False)
            self.decrypts += 1
            cached = (key, {k: v for k, v in doc.items() if k in wanted}, frozenset(doc))
            self._tenants[slug] = cached
        value = cached[1].get(name)
        return value is not None, value

    def _refresh(self) -> None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self._stat, self._values = None, {}
            return
        key = (st.st_ino, st.st_size, st.st_mtime_ns)
        if key == self._stat:
            return
        self._values = self._scan()
        self._stat = key
        self._plain = {k: v for k, v in self._plain.items() if self._values.get(k) == v[0]}

    def _scan(self) -> dict[str, object]:
        self.scans += 1
        with self._open() as fh:
            if fh.read(len(b"$ANSIBLE_VAULT;")) == b"$ANSIBLE_VAULT;":  # whole-file encrypted: small by nature
                raw = vault.read_raw(self.inventory, self.password_file)
                doc = raw[0] if raw else {}
                return {k: v for k, v in doc.items() if k in self._wanted and v is not None}
            fh.seek(0)
            wanted = {n.encode() for n in self._wanted}
            found: dict[str, object] = {}
            for key, entry in _entries(fh):
                if key in wanted:
                    name = key.decode()
                    if name in found:
                        raise InvalidInput(f"{vault.VAULT_REL}: duplicate key {name}")
                    found[name] = _value(name, entry)
            return found

    def _open(self):
        real = os.path.realpath(self.path)
        base = os.path.realpath(self.inventory)
        if not real.startswith(base.rstrip(os.sep) + os.sep):
            raise InvalidInput(f"{vault.VAULT_REL}: a symlink pointing outside the inventory (refused)")
        fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise InvalidInput(f"{vault.VAULT_REL}: not a regular file")
        return os.fdopen(fd, "rb")

    def _decrypt(self, ciphertext: str) -> str | None:
        try:
            if self._lib is None:
                self._lib = _vaultlib(self.password_file)
            self.decrypts += 1
            return self._lib.decrypt(ciphertext.encode()).decode()
        except Exception:  # wrong password, corrupt value: no canary login, never a traceback
            return None


def _entries(fh) -> Iterator[tuple[bytes, bytes]]:
    """(key, the entry's text) of every top-level key, chunk by chunk (an entry never spans two)."""
    pending = b""
    while True:
        data = fh.read(CHUNK)
        buf = pending + data
        starts = [(m.start(), m.group(1)) for m in _TOP.finditer(buf)]
        if not data:
            complete, pending = starts, b""
        elif starts:  # the last entry may go on in the next chunk
            *complete, last = starts
            pending = buf[last[0]:]
        else:  # one entry longer than a chunk: keep reading
            pending = buf
            continue
        for (start, key), nxt in zip(complete, [s for s, _ in complete[1:]] + [len(buf) - len(pending)],
                                     strict=True):
            yield key.strip(b"'\""), buf[start:nxt]
        if not data:
            return


def _value(name: str, entry: bytes) -> object:
    """The value of one entry: the common ``!vault |`` block read directly, anything else through YAML."""
    block = _BLOCK.match(entry)
    if block is not None:
        return vault.Vaulted("\n".join(line.strip() for line in block.group(1).decode().splitlines() if line.strip()))
    try:
        doc = yamlio.loads(entry, what="vault file", loader=_Loader, limit=len(entry) + 1)
    except yamlio.YamlProblem as exc:
        raise InvalidInput(f"{vault.VAULT_REL}: {name}: {exc.message}") from None
    if not isinstance(doc, dict) or name not in doc:
        raise InvalidInput(f"{vault.VAULT_REL}: {name}: not a top-level variable")
    return doc[name]


def _vaultlib(password_file: Path):
    """ansible's VaultLib for the inventory's password file (the same secret Ansible uses)."""
    from ansible.constants import DEFAULT_VAULT_ID_MATCH
    from ansible.parsing.vault import VaultLib, VaultSecret

    return VaultLib([(DEFAULT_VAULT_ID_MATCH, VaultSecret(password_file.read_bytes().strip()))])
