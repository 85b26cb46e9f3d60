"""Filter `tno_password_hash`: sha512-crypt a mailbox password only when it changed (issue 18).

`secret | tno_password_hash(salt, rounds, shard)` returns exactly what
`secret | password_hash('sha512', salt, rounds=rounds)` returns (same function), but remembers it on
the controller: `$TNO_PASSWORD_HASH_CACHE/<shard>.txt` (tnoctl sets the directory under its state
dir; without it the filter just hashes, like password_hash). Each line is `<key> <hash>`, where key is
HMAC-SHA256 under a random per-cache key (`.key`, mode 0600) of (salt, rounds, secret): no
plaintext is stored, and the key cannot be brute-forced offline without the key file. The hash
itself is what the mail host's users file holds anyway. Lines are appended with O_APPEND, one
write each (atomic for short lines), so parallel hosts and runs never corrupt the file; a torn or
unknown line is ignored and recomputed. One shard per mail host keeps each worker's read small.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from pathlib import Path

from ansible.plugins.filter.core import get_encrypted_password

ENV = "TNO_PASSWORD_HASH_CACHE"
_SHARD = re.compile(r"^[A-Za-z0-9._-]{1,200}$")
_LINE = re.compile(r"^([0-9a-f]{64}) (\$6\$[^\s]+)$")
_loaded: dict[str, dict[str, str]] = {}
COMPUTED = [0]
"""How many hashes this process computed (the unit test proves unchanged ones are reused)."""


def _cache_key(directory: Path) -> bytes:
    path = directory / ".key"
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = directory / f".key.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(secrets.token_bytes(32))
    try:
        os.link(tmp, path)  # first writer wins; a concurrent one reads the winner's key
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return path.read_bytes()


def _entries(path: Path) -> dict[str, str]:
    found = _loaded.get(str(path))
    if found is None:
        found = {}
        try:
            for line in path.read_text(errors="replace").splitlines():
                match = _LINE.match(line)
                if match:
                    found[match.group(1)] = match.group(2)
        except FileNotFoundError:
            pass
        _loaded[str(path)] = found
    return found


def tno_password_hash(secret: str, salt: str, rounds: int = 5000, shard: str = "default") -> str:
    """sha512-crypt of ``secret`` with ``salt``/``rounds``, computed only if not remembered."""
    where = os.environ.get(ENV)
    if not where or not _SHARD.match(shard):
        COMPUTED[0] += 1
        return get_encrypted_password(secret, "sha512", salt=salt, rounds=rounds)
    directory = Path(where)
    key = hmac.new(_cache_key(directory), f"{salt}\0{rounds}\0{secret!s}".encode(), hashlib.sha256).hexdigest()
    path = directory / f"{shard}.txt"
    entries = _entries(path)
    if key in entries:
        return entries[key]
    COMPUTED[0] += 1
    value = get_encrypted_password(secret, "sha512", salt=salt, rounds=rounds)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, f"{key} {value}\n".encode())
    finally:
        os.close(fd)
    entries[key] = value
    return value


class FilterModule:
    """Ansible entry point."""

    def filters(self):
        """Filters of this file."""
        return {"tno_password_hash": tno_password_hash}
