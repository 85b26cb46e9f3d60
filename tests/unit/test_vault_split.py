"""The per-tenant vault layout `vault/<slug>.yml` (issue 18): reading, validation, writing, migration.

The lab inventory is copied and split with the migration (config/vaultmigrate.py); the lab itself
keeps its single vault.yml.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.unit.fakes import FakePlaybookRunner, FakeSsh, make_env
from tnoctl.actions import tenant_remove
from tnoctl.actions.env import Env
from tnoctl.backup import naming
from tnoctl.cli import main
from tnoctl.cli.context import AppContext
from tnoctl.config import vault, vaultmigrate, vaultsplit
from tnoctl.config.load import load_inventory, validate_inventory
from tnoctl.errors import InvalidInput

LAB = Path(__file__).resolve().parents[2] / "inventories" / "lab"
PLATFORM = ["tno_vault_dns_tsig_key", "tno_vault_office_admin_password", "tno_vault_rspamd_mail1_eb1a10a2",
            "tno_vault_rspamd_mail2_868af49f"]


def _age(inv: Path) -> None:
    """Older than the racy window: the caches may trust the stat."""
    old = time.time() - 60
    for path in [*(inv / "tenants").glob("*.yml"), *(inv / "vault").glob("*.yml"), inv / vault.VAULT_REL]:
        os.utime(path, (old, old))


@pytest.fixture(autouse=True)
def fresh_process(monkeypatch):
    """Start each test as a new process would: nothing parsed or decrypted yet."""
    monkeypatch.setattr(vault, "_MEMO", {})
    monkeypatch.setattr(vault, "PARSES", 0)
    monkeypatch.setattr(vaultsplit, "_MEMO", {})
    monkeypatch.setattr(vaultsplit, "DECRYPTS", 0)
    monkeypatch.setattr(vaultsplit, "DECRYPTED", [])


@pytest.fixture
def lab(tmp_path: Path) -> Path:
    dest = tmp_path / "inv"
    shutil.copytree(LAB, dest, ignore=shutil.ignore_patterns(".tno"))
    return dest


@pytest.fixture
def before(lab: Path) -> dict[str, str]:
    """Every secret of the lab vault, in plaintext, before the split."""
    return vault.read_vault(lab, lab / "vault-password")


@pytest.fixture
def inv(lab: Path, before: dict[str, str]) -> Path:
    vaultmigrate.split(lab, lab / "vault-password", workers=1)
    _age(lab)
    vault._MEMO.clear()
    vaultsplit._MEMO.clear()
    vaultsplit.DECRYPTED.clear()
    return lab


def _pw(inv: Path) -> Path:
    return inv / "vault-password"


def _givors_names(inv: Path) -> list[str]:
    tenant = load_inventory(inv).tenant("givors")
    return [box.password_vault for box in tenant.mailboxes] + [naming.passphrase_var("givors")]


# ------------------------------------------------------------------ migration
def test_split_moves_every_tenant_secret_and_keeps_the_platform_ones(inv: Path, before: dict[str, str]) -> None:
    raw, whole = vault.read_raw(inv, _pw(inv))
    assert sorted(raw) == PLATFORM and not whole
    files = sorted(p.name for p in (inv / "vault").iterdir())
    assert files == [f"{s}.yml" for s in ["bron", "corbas", "feyzin", "givors", "saint-fons", "vaulx-en-velin",
                                          "venissieux"]]
    for name in files:
        path = inv / "vault" / name
        assert path.read_bytes().startswith(b"$ANSIBLE_VAULT;") and path.stat().st_mode & 0o777 == 0o600
        assert not any(value.encode() in path.read_bytes() for value in before.values())
    assert vault.read_vault(inv, _pw(inv)) == before
    assert sorted(vault.tenant_doc(inv, _pw(inv), "givors")) == sorted(
        n for n in before if n.startswith(("tno_vault_givors_", "tno_vault_borg_givors")))


def test_split_again_moves_nothing_and_writes_nothing(inv: Path) -> None:
    stamps = {p: (p.stat().st_ino, p.read_bytes()) for p in [*(inv / "vault").iterdir(), inv / vault.VAULT_REL]}
    assert vaultmigrate.split(inv, _pw(inv), workers=1) == {"tenants": 0, "moved": 0, "kept": 4}
    assert {p: (p.stat().st_ino, p.read_bytes()) for p in stamps} == stamps


def test_an_interrupted_split_is_reported_then_finished_by_a_rerun(lab: Path, before: dict[str, str],
                                                                   monkeypatch) -> None:
    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(vault, "write_platform", crash)
    with pytest.raises(KeyboardInterrupt):
        vaultmigrate.split(lab, _pw(lab), workers=1)
    monkeypatch.undo()
    assert len(list((lab / "vault").iterdir())) == 7 and len(vault.read_raw(lab, _pw(lab))[0]) == len(before)
    with pytest.raises(InvalidInput, match=r"^vault/\S+\.yml: tno_vault_\w+: also defined in "
                                           r"group_vars/all/vault\.yml .*split-vault`, run it again\)$"):
        load_inventory(lab, _pw(lab))
    counts = vaultmigrate.split(lab, _pw(lab), workers=1)
    assert counts == {"tenants": 7, "moved": len(before) - 4, "kept": 4}
    assert sorted(vault.read_raw(lab, _pw(lab))[0]) == PLATFORM
    assert vault.read_vault(lab, _pw(lab)) == before
    load_inventory(lab, _pw(lab))


def test_split_refuses_a_value_that_differs_from_an_earlier_tenant_file(lab: Path, before: dict[str, str]) -> None:
    name = "tno_vault_givors_dgs"
    vault.write_tenant(lab, vault._vaultlib(_pw(lab)), "givors", {name: "not-the-same"})
    with pytest.raises(InvalidInput, match=r"^vault/givors\.yml: tno_vault_givors_dgs: differs from "):
        vaultmigrate.split(lab, _pw(lab), workers=1)
    assert len(vault.read_raw(lab, _pw(lab))[0]) == len(before)  # vault.yml untouched


def test_split_verb_prints_counts_never_values(lab: Path, before: dict[str, str]) -> None:
    app = AppContext(inventory=lab, state_dir_override=lab.parent / "state", stdout=io.StringIO(),
                     stderr=io.StringIO())
    code = main(["--inventory", str(lab), "--vault-password-file", str(_pw(lab)), "inventory", "split-vault",
                 "--yes", "--json"], app=app)
    out = app.stdout.getvalue() + app.stderr.getvalue()
    assert code == 0 and json.loads(app.stdout.getvalue()) == {"tenants": 7, "moved": len(before) - 4, "kept": 4}
    assert not any(value in out for value in before.values())


# ------------------------------------------------------------------ reading
def test_one_decrypt_per_tenant_file_per_process_and_only_the_files_asked(inv: Path, monkeypatch) -> None:
    names = _givors_names(inv)
    vault.PARSES = 0
    inline: list[bytes] = []
    real = vault._decrypt
    monkeypatch.setattr(vault, "_decrypt", lambda lib, data, pw: inline.append(data) or real(lib, data, pw))
    values = vault.read_vault(inv, _pw(inv), names)
    assert sorted(values) == sorted(names)
    assert vault.decrypt_value(inv, _pw(inv), names[0]) == values[names[0]]
    vault.read_vault(inv, _pw(inv), names)
    vault.secret_scrubber(inv, _pw(inv), names)
    assert vaultsplit.DECRYPTED == ["givors"] and inline == []  # one whole-file decrypt, no inline value
    assert vault.PARSES == 1


def test_scope_secrets_decrypts_only_the_targeted_tenants_files(inv: Path, tmp_path: Path) -> None:
    assert Env.build(inv, tmp_path / "state", _pw(inv)).inventory  # the validation cache is warm
    vaultsplit._MEMO.clear()  # as a new process
    vaultsplit.DECRYPTED.clear()
    env = Env.build(inv, tmp_path / "state", _pw(inv))
    env.scope_secrets(["givors", "feyzin"])
    assert sorted(vaultsplit.DECRYPTED) == ["feyzin", "givors"]
    secret = vault.tenant_doc(inv, _pw(inv), "givors")["tno_vault_givors_dgs"]
    assert secret not in env.redact(f"password {secret}")
    assert sorted(vaultsplit.DECRYPTED) == ["feyzin", "givors"]


def test_split_secret_names_decrypts_each_file_once_over_threads_and_memoises(inv: Path, monkeypatch) -> None:
    threads: set[str] = set()
    real = vault._decrypt_at

    def decrypt(lib, data, pw, where):
        threads.add(threading.current_thread().name)
        return real(lib, data, pw, where)

    monkeypatch.setattr(vault, "_decrypt_at", decrypt)
    names, others = vault.split_secret_names(inv, _pw(inv), ["givors", "feyzin", "givors"])
    assert others == [] and sorted(vaultsplit.DECRYPTED) == ["feyzin", "givors"]
    assert threads and all(name.startswith("tno-vault") for name in threads)
    assert sorted(names) == sorted([*vault.tenant_doc(inv, _pw(inv), "givors"), *vault.tenant_doc(inv, _pw(inv),
                                                                                                  "feyzin")])
    assert sorted(vaultsplit.DECRYPTED) == ["feyzin", "givors"]  # tenant_doc used the memo read_tenants filled


def test_a_changed_tenant_file_is_decrypted_again(inv: Path) -> None:
    vault.read_vault(inv, _pw(inv), ["tno_vault_givors_dgs"])
    assert vault.add_secrets(inv, _pw(inv), {"tno_vault_givors_new": "n" * 24}, tenant="givors") == [
        "tno_vault_givors_new"]
    assert vault.decrypt_value(inv, _pw(inv), "tno_vault_givors_new") == "n" * 24
    assert vaultsplit.DECRYPTED == ["givors", "givors"]


def test_the_exporter_lookup_reads_a_tenant_file_once(inv: Path) -> None:
    from tnoctl.exporter.vaultlookup import VaultLookup

    lookup = VaultLookup(inv, _pw(inv), ["tno_vault_givors_canary", "tno_vault_corbas_canary"])
    first = lookup("tno_vault_givors_canary")
    assert first and lookup("tno_vault_givors_canary") == first and lookup.decrypts == 1
    assert lookup("tno_vault_corbas_canary") and lookup.decrypts == 2
    assert lookup("tno_vault_office_admin_password")  # platform: still from vault.yml
    assert sorted(vaultsplit.DECRYPTED) == ["corbas", "givors"]
    assert lookup("tno_vault_givors_no_such_canary") is None and lookup.decrypts == 3  # read once more ...
    assert lookup("tno_vault_givors_no_such_canary") is None and lookup.decrypts == 3  # ... then known absent


# ------------------------------------------------------------------ validation and its cache
def test_warm_validation_decrypts_nothing_and_the_cache_holds_no_value(inv: Path, tmp_path: Path,
                                                                      before: dict[str, str]) -> None:
    cache = tmp_path / "cache"
    assert validate_inventory(inv, _pw(inv), cache).vault_checked
    assert len(vaultsplit.DECRYPTED) == 7
    vaultsplit._MEMO.clear()
    vaultsplit.DECRYPTED.clear()
    report = validate_inventory(inv, _pw(inv), cache)
    assert report.vault_checked and report.stats["parsed"] == 0 and vaultsplit.DECRYPTED == []
    written = b"".join(p.read_bytes() for p in cache.rglob("*") if p.is_file())
    assert not any(value.encode() in written for value in before.values())
    # the stored names serve a run without the password too
    assert validate_inventory(inv, None, cache).vault_checked and vaultsplit.DECRYPTED == []


def test_without_password_and_cache_the_reference_check_is_skipped(inv: Path, tmp_path: Path) -> None:
    assert not validate_inventory(inv, None, tmp_path / "cache").vault_checked
    assert vaultsplit.DECRYPTED == []


def test_a_reference_missing_from_its_tenant_file_is_reported(inv: Path, tmp_path: Path) -> None:
    doc = dict(vault.tenant_doc(inv, _pw(inv), "givors"))
    del doc["tno_vault_givors_dgs"]
    vault.write_tenant(inv, vault._vaultlib(_pw(inv)), "givors", doc)
    with pytest.raises(InvalidInput) as exc:
        load_inventory(inv, _pw(inv), tmp_path / "cache")
    assert any("tenants/givors.yml: mailboxes[1].password_vault: tno_vault_givors_dgs is not defined in the vault"
               in line for line in exc.value.details), exc.value.details


@pytest.mark.parametrize(("name", "message"), [
    ("nowhere.yml", r"vault/nowhere\.yml: \(file\): no tenant 'nowhere' \(tenants/nowhere\.yml\)"),
    ("notes.txt", r"vault/notes\.txt: \(file\): not a tenant vault file"),
])
def test_a_stray_vault_file_is_named(inv: Path, name: str, message: str) -> None:
    (inv / "vault" / name).write_text("x")
    with pytest.raises(InvalidInput) as exc:
        load_inventory(inv, _pw(inv))
    assert any(re.search(message, line) for line in exc.value.details), exc.value.details


def test_a_symlink_outside_the_inventory_or_a_directory_is_refused(inv: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere.yml"
    outside.write_bytes((inv / "vault" / "givors.yml").read_bytes())
    (inv / "vault" / "givors.yml").unlink()
    (inv / "vault" / "givors.yml").symlink_to(outside)
    (inv / "vault" / "corbas.yml").unlink()
    (inv / "vault" / "corbas.yml").mkdir()
    with pytest.raises(InvalidInput) as exc:
        load_inventory(inv, _pw(inv))
    assert "vault/corbas.yml: (file): not a regular file" in exc.value.details
    assert "vault/givors.yml: (file): a symlink pointing outside the inventory (refused)" in exc.value.details
    with pytest.raises(InvalidInput, match=r"^vault/givors\.yml: \(file\): tenant vault file is a symlink"):
        vault.read_vault(inv, _pw(inv), ["tno_vault_givors_dgs"])


def test_an_oversize_or_plaintext_tenant_file_is_refused(inv: Path) -> None:
    (inv / "vault" / "givors.yml").write_bytes(b"$ANSIBLE_VAULT;1.1;AES256\n" + b"0" * (vaultsplit.FILE_MAX + 1))
    with pytest.raises(InvalidInput, match=r"^vault/givors\.yml: \(file\): tenant vault file is \d+ bytes, more "):
        vault.read_vault(inv, _pw(inv), ["tno_vault_givors_dgs"])
    (inv / "vault" / "corbas.yml").write_text("tno_vault_corbas_dgs: plain\n")
    with pytest.raises(InvalidInput, match=r"^vault/corbas\.yml: \(file\): not ansible-vault encrypted"):
        vault.read_vault(inv, _pw(inv), ["tno_vault_corbas_dgs"])


@pytest.mark.parametrize(("extra", "message"), [
    ({"tno_vault_corbas_dgs": "x"}, r"^vault/givors\.yml: tno_vault_corbas_dgs: outside the tenant's vault "
                                    r"namespace \(tno_vault_givors_\* or tno_vault_borg_givors\)$"),
    ({"tno_vault_office_admin_password": "x"}, r"^vault/givors\.yml: tno_vault_office_admin_password: also "
                                               r"defined in group_vars/all/vault\.yml"),
    ({"tno_vault_borg_corbas": "x"}, r"^vault/givors\.yml: tno_vault_borg_corbas: outside"),
])
def test_a_name_outside_its_file_or_defined_twice_is_one_error(inv: Path, tmp_path: Path, extra, message) -> None:
    doc = {**vault.tenant_doc(inv, _pw(inv), "givors"), **extra}
    vault.write_tenant(inv, vault._vaultlib(_pw(inv)), "givors", doc)
    with pytest.raises(InvalidInput, match=message):
        load_inventory(inv, _pw(inv), tmp_path / "cache")
    with pytest.raises(InvalidInput, match=message):
        vault.read_vault(inv, _pw(inv), ["tno_vault_givors_dgs"])


def test_a_nested_namespace_belongs_to_the_longest_slug() -> None:
    slugs = {"saint", "saint-priest", "givors"}
    assert vaultsplit.owner("tno_vault_saint_priest_mairie", slugs) == "saint-priest"
    assert vaultsplit.owner("tno_vault_saint_mairie", slugs) == "saint"
    assert vaultsplit.owner("tno_vault_saint__priest_1a2b3c4d", slugs) == "saint"
    assert vaultsplit.owner("tno_vault_borg_saint_priest", slugs) == "saint-priest"
    assert vaultsplit.owner("tno_vault_office_admin_password", slugs) is None
    assert vaultsplit.owner("tno_vault_lyon_mairie", slugs) is None


# ------------------------------------------------------------------ writing
def test_tenant_add_writes_its_secrets_to_its_own_file(inv: Path) -> None:
    vault_yml = (inv / vault.VAULT_REL).read_bytes()
    app = AppContext(inventory=inv, state_dir_override=inv.parent / "state", stdout=io.StringIO(),
                     stderr=io.StringIO())
    code = main(["--inventory", str(inv), "--vault-password-file", str(_pw(inv)), "tenant", "add", "mions",
                 "--name", "Mions", "--insee", "69283", "--domain", "mions.test", "--mailbox", "mairie",
                 "--mail-host", "mail2"], app=app)
    assert code == 0, app.stderr.getvalue()
    assert (inv / vault.VAULT_REL).read_bytes() == vault_yml
    path = inv / "vault" / "mions.yml"
    assert path.stat().st_mode & 0o777 == 0o600 and path.read_bytes().startswith(b"$ANSIBLE_VAULT;")
    doc = vault.tenant_doc(inv, _pw(inv), "mions")
    box = load_inventory(inv, _pw(inv)).tenant("mions").mailboxes[0].password_vault
    assert sorted(doc) == sorted([box, "tno_vault_borg_mions"])
    assert not any(v in app.stdout.getvalue() + app.stderr.getvalue() for v in doc.values())


def test_tenant_add_without_the_layout_still_writes_vault_yml(lab: Path) -> None:
    assert vault.add_secrets(lab, _pw(lab), {"tno_vault_mions_x": "y" * 24}, tenant="mions") == ["tno_vault_mions_x"]
    assert not (lab / "vault").exists() and "tno_vault_mions_x" in vault.read_raw(lab, _pw(lab))[0]


def test_tenant_remove_moves_the_tenant_vault_file_to_offboarded(inv: Path, tmp_path: Path) -> None:
    ssh = FakeSsh({("mail2", naming.AGENT): (0, '{"ok": true, "archive": "givors-x"}'),
                   ("office2", naming.AGENT): (0, '{"ok": true, "archive": "givors.office-x"}'),
                   ("backup1", "runuser"): (0, "ab" * 32 + "\n")})
    clock = datetime(2026, 11, 29, 11, 0, tzinfo=UTC).timestamp
    env = make_env(inv, tmp_path / "state", ssh=ssh, playbooks=FakePlaybookRunner(), clock=clock,
                   vault_password_file=_pw(inv))
    cipher = (inv / "vault" / "givors.yml").read_bytes()
    outcome = tenant_remove.run(env, tenant_remove.TenantRemoveRequest("givors", tmp_path / "exports"))
    assert outcome.ok, outcome
    assert not (inv / "vault" / "givors.yml").exists()
    assert (env.state_dir / "offboarded" / "givors.vault.yml").read_bytes() == cipher
    assert "vault file moved to" in outcome.message
    load_inventory(inv, _pw(inv))  # valid without the tenant and its vault file


def test_each_playbook_run_scopes_the_scrubber_to_its_limit_additively(inv: Path, tmp_path: Path,
                                                                       monkeypatch) -> None:
    """Verbs other than deploy/plan (upgrade waves, backup setup...) run playbooks through the Env's runner."""
    from tnoctl.plan.calls import PlaybookCall
    from tnoctl.run import ansible

    assert Env.build(inv, tmp_path / "state", _pw(inv)).inventory  # warm validation cache
    vaultsplit._MEMO.clear()
    vaultsplit.DECRYPTED.clear()
    seen: list[str] = []
    monkeypatch.setattr(ansible, "run_playbook", lambda call, **kw: seen.append(kw["redact"]("x")))
    env = Env.build(inv, tmp_path / "state", _pw(inv))
    on = {h: sorted(env.inventory.slugs_on_host(h)) for h in ("mail1", "mail2")}
    env.playbooks.run(PlaybookCall("site.yml", limit=("mail2",)), run_id="a", hosts=[], title="")
    assert sorted(vaultsplit.DECRYPTED) == on["mail2"]
    env.playbooks.run(PlaybookCall("site.yml", limit=("mail2",)), run_id="b", hosts=[], title="")
    env.playbooks.run(PlaybookCall("site.yml", limit=("mail1", "mail2")), run_id="c", hosts=[], title="")
    assert sorted(vaultsplit.DECRYPTED) == sorted(on["mail1"] + on["mail2"])  # each file once
    secret = vault.tenant_doc(inv, _pw(inv), on["mail1"][0])[naming.passphrase_var(on["mail1"][0])]
    assert secret not in env.redact(secret)
    env.playbooks.run(PlaybookCall("site.yml"), run_id="d", hosts=[], title="")  # the whole fleet
    assert sorted(set(vaultsplit.DECRYPTED)) == sorted(vaultsplit.present(inv)) and len(seen) == 4


def test_a_tenant_file_changed_after_a_warm_run_is_the_only_one_decrypted(inv: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    validate_inventory(inv, _pw(inv), cache)
    validate_inventory(inv, _pw(inv), cache)  # warm: the listing summary answers
    doc = dict(vault.tenant_doc(inv, _pw(inv), "givors"))
    del doc["tno_vault_givors_dgs"]
    vault.write_tenant(inv, vault._vaultlib(_pw(inv)), "givors", doc)
    vaultsplit._MEMO.clear()
    vaultsplit.DECRYPTED.clear()
    with pytest.raises(InvalidInput) as exc:
        load_inventory(inv, _pw(inv), cache)
    assert any("tno_vault_givors_dgs is not defined in the vault" in line for line in exc.value.details)
    assert vaultsplit.DECRYPTED == ["givors"]


def test_a_changed_tenant_vault_file_rechecks_that_tenant_only(inv: Path, tmp_path: Path, monkeypatch) -> None:
    """With vault.yml, any new name re-checks every tenant file (35,000 at full scale, minutes)."""
    from tnoctl.config import validate

    cache = tmp_path / "cache"
    load_inventory(inv, _pw(inv), cache)
    vault.add_secrets(inv, _pw(inv), {"tno_vault_givors_new": "n" * 24}, tenant="givors")
    calls: list[str] = []
    real = validate.check_tenant_file
    monkeypatch.setattr(validate, "check_tenant_file",
                        lambda p, rel, *a, **k: calls.append(rel) or real(p, rel, *a, **k))
    load_inventory(inv, _pw(inv), cache)
    assert calls == ["tenants/givors.yml"]
