"""Per-host secrets in the vault: today the Rspamd controller password of every mail host (issue 14).

Name: ``tno_vault_rspamd_<host, readable>_<8 hex of sha256(host)>``, in the platform's namespace
``tno_vault_rspamd_*`` (logical.PLATFORM_VAULT_PREFIXES: no tenant slug may own it). Host names may
hold ``A-Z . _ -`` (schema.HOST_RE), so the readable part (lower case, other characters as ``_``) is
lossy, and the digest of the exact host name tells apart ``mail-1``, ``mail_1`` and ``Mail.1``: the
same rule as the mailbox names ``tenant add`` writes (newtenant.vault_name).

`tnoctl inventory secrets` creates the missing ones (random, never shown); a deploy refuses a mail
host whose secret is missing before anything runs (:func:`missing`), and the inventory plugin hands
each mail host the *name* of its variable (``tno_mail_rspamd_password_vault``, ansible_view.py).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from pathlib import Path

from tnoctl.config import vault

RSPAMD_PREFIX = "tno_vault_rspamd_"
"""Namespace of the mail hosts' Rspamd controller passwords (a platform namespace)."""


def rspamd_password_var(host: str) -> str:
    """The vault variable holding mail host ``host``'s Rspamd controller password."""
    readable = re.sub(r"[^a-z0-9]", "_", host.lower())[:48].strip("_") or "x"
    return f"{RSPAMD_PREFIX}{readable}_{hashlib.sha256(host.encode()).hexdigest()[:8]}"


def wanted(mail_hosts: Iterable[str]) -> dict[str, str]:
    """``{vault variable: host}`` of the per-host secrets these mail hosts need."""
    return {rspamd_password_var(host): host for host in sorted(set(mail_hosts))}


def missing(inventory: Path, password_file: Path | None, mail_hosts: Iterable[str]) -> list[str]:
    """``file: field: message`` for each of these mail hosts whose secret is not in the vault.

    Empty when the vault's names cannot be read (no vault file, or a whole-file encrypted vault
    without its password): Ansible then reports the undefined variable itself.
    """
    raw = vault.read_raw(inventory, password_file)
    if raw is None:
        return []
    names = raw[0]
    return [f"{vault.VAULT_REL}: {name}: not defined (Rspamd controller password of mail host {host}); "
            "create it with: tnoctl inventory secrets"
            for name, host in wanted(mail_hosts).items() if name not in names]


def create(inventory: Path, password_file: Path, mail_hosts: Iterable[str]) -> list[str]:
    """Add a random secret for each of these mail hosts that has none; return the names added."""
    new = {name: vault.new_password(32) for name in wanted(mail_hosts)}
    return vault.add_secrets(inventory, password_file, new)
