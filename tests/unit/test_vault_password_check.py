"""vault.password_opens: the warm run's password check without ansible's vault code (issue 18).

It must agree with ansible's VaultLib on what VaultLib itself wrote: true for the right password
(formats 1.1 and 1.2 with a vault id), false for a wrong one, an empty or missing password file, a
tampered ciphertext or something that is not a vault text, and it must never decrypt anything.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from ansible.parsing.vault import VaultLib, VaultSecret

from tnoctl.config import vault

PASSWORD = b"correct horse battery staple"


def _encrypt(plaintext: str, vault_id: str | None = None) -> bytes:
    return VaultLib([("default", VaultSecret(PASSWORD))]).encrypt(plaintext, VaultSecret(PASSWORD), vault_id=vault_id)


@pytest.fixture()
def good(tmp_path: Path) -> Path:
    path = tmp_path / "vault-password"
    path.write_bytes(PASSWORD + b"\n")  # the trailing newline is stripped, as ansible does
    return path


@pytest.mark.parametrize("vault_id", [None, "prod"])
def test_the_right_password_opens_what_ansible_wrote(good: Path, vault_id: str | None) -> None:
    text = _encrypt("s3cret", vault_id)
    assert text.startswith(b"$ANSIBLE_VAULT;1.2;AES256;prod" if vault_id else b"$ANSIBLE_VAULT;1.1;AES256")
    assert vault.password_opens(good, text) is True


def test_a_wrong_empty_or_missing_password_does_not(tmp_path: Path) -> None:
    text = _encrypt("s3cret")
    wrong, empty = tmp_path / "wrong", tmp_path / "empty"
    wrong.write_bytes(b"not the password")
    empty.write_bytes(b"\n")
    assert vault.password_opens(wrong, text) is False
    assert vault.password_opens(empty, text) is False
    assert vault.password_opens(tmp_path / "absent", text) is False


def test_a_tampered_or_foreign_text_does_not(good: Path) -> None:
    text = _encrypt("s3cret")
    lines = text.splitlines()
    last = lines[-1]
    lines[-1] = last[:-1] + (b"0" if last[-1:] != b"0" else b"1")  # one hex digit of the ciphertext changed
    assert vault.password_opens(good, b"\n".join(lines)) is False
    for foreign in (b"", b"plain text", b"$ANSIBLE_VAULT;1.1;AES256\nzz", b"$ANSIBLE_VAULT;1.0;AES\n00"):
        assert vault.password_opens(good, foreign) is False
