"""Issue 18: the exporter's canary passwords come from one read of the vault per change.

Structural, not timed: VaultLookup.scans counts reads of vault.yml, .decrypts counts decrypted
values. Lookups use a copy of the lab vault (inline `!vault` values, as tnoctl writes them).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tnoctl import paths
from tnoctl.config import vault
from tnoctl.exporter.vaultlookup import CHUNK, VaultLookup

CANARIES = ["tno_vault_givors_canary", "tno_vault_corbas_canary", "tno_vault_feyzin_canary"]


@pytest.fixture
def inv(tmp_path: Path) -> Path:
    dest = tmp_path / "inv"
    shutil.copytree(paths.LAB_INVENTORY, dest, ignore=shutil.ignore_patterns(".tno"))
    return dest


def test_one_read_and_one_decrypt_per_value_across_rounds(inv: Path) -> None:
    lookup = VaultLookup(inv, inv / "vault-password", CANARIES)
    expected = {name: vault.decrypt_value(inv, inv / "vault-password", name) for name in CANARIES}
    for _round in range(3):  # three probe rounds, each asking every canary twice (IMAPS + round trip)
        for name in CANARIES * 2:
            assert lookup(name) == expected[name]
    assert lookup.scans == 1
    assert lookup.decrypts == len(CANARIES)


def test_a_changed_vault_is_read_again_and_only_changed_values_decrypted(inv: Path) -> None:
    lookup = VaultLookup(inv, inv / "vault-password", CANARIES)
    for name in CANARIES:
        lookup(name)
    vault.add_secrets(inv, inv / "vault-password", {"tno_vault_new_thing": "x"})  # rewrites the file
    assert lookup("tno_vault_givors_canary") == vault.decrypt_value(inv, inv / "vault-password",
                                                                     "tno_vault_givors_canary")
    assert lookup.scans == 2
    assert lookup.decrypts == len(CANARIES)  # ciphertexts unchanged: plaintexts kept


def test_missing_name_wrong_password_and_no_vault_give_none(inv: Path, tmp_path: Path) -> None:
    lookup = VaultLookup(inv, inv / "vault-password", CANARIES)
    assert lookup("tno_vault_nobody_canary") is None
    wrong = tmp_path / "wrong"
    wrong.write_text("not-the-password\n")
    assert VaultLookup(inv, wrong, CANARIES)("tno_vault_givors_canary") is None
    os.unlink(inv / vault.VAULT_REL)
    assert lookup("tno_vault_givors_canary") is None


def test_other_yaml_forms_and_long_files_are_read_right(inv: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = inv / vault.VAULT_REL
    lib_text = path.read_text()
    plain = "# a comment at column 0\n---\n'tno_vault_quoted_canary': plain-value  # trailing comment\n"
    path.write_text(plain + lib_text + "tno_vault_flow_canary: {a: 1}\ntno_vault_last_canary: last\n")
    assert CHUNK > 512
    monkeypatch.setattr("tnoctl.exporter.vaultlookup.CHUNK", 512)  # entries cross chunk boundaries
    lookup = VaultLookup(inv, inv / "vault-password",
                         [*CANARIES, "tno_vault_quoted_canary", "tno_vault_last_canary"])
    assert lookup("tno_vault_quoted_canary") == "plain-value"
    assert lookup("tno_vault_last_canary") == "last"
    assert lookup("tno_vault_givors_canary") == vault.decrypt_value(inv, inv / "vault-password",
                                                                     "tno_vault_givors_canary")
    assert lookup.scans == 1


def test_whole_file_encrypted_vault(inv: Path) -> None:
    values = vault.read_vault(inv, inv / "vault-password")
    path = inv / vault.VAULT_REL
    lib = vault._vaultlib(inv / "vault-password")
    text = "".join(f"{k}: {v}\n" for k, v in values.items())
    path.write_bytes(lib.encrypt(text.encode()))
    lookup = VaultLookup(inv, inv / "vault-password", CANARIES)
    assert lookup("tno_vault_givors_canary") == values["tno_vault_givors_canary"]


def test_symlink_outside_the_inventory_is_refused(inv: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere.yml"
    shutil.copy(inv / vault.VAULT_REL, outside)
    (inv / vault.VAULT_REL).unlink()
    (inv / vault.VAULT_REL).symlink_to(outside)
    assert VaultLookup(inv, inv / "vault-password", CANARIES)("tno_vault_givors_canary") is None
