"""Issue 18, controller side: a run costs what its targets cost (structural properties, no timing).

One vault parse per process; a warm validation parses neither the vault nor any tenant file; the
vault name set is never pickled into worker chunks; a limited deploy decrypts only the secrets of
the targeted hosts' tenants.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from tnoctl.actions.env import Env
from tnoctl.config import scan, vault
from tnoctl.config.load import load_inventory, validate_inventory

LAB = Path(__file__).resolve().parents[2] / "inventories" / "lab"


@pytest.fixture
def inv(tmp_path: Path) -> Path:
    dest = tmp_path / "inv"
    shutil.copytree(LAB, dest, ignore=shutil.ignore_patterns(".tno"))
    old = time.time() - 60  # older than the racy window: the caches may trust the stat
    for path in [*(dest / "tenants").glob("*.yml"), dest / vault.VAULT_REL]:
        os.utime(path, (old, old))
    return dest


@pytest.fixture(autouse=True)
def fresh_process(monkeypatch):
    """Start each test as a new process would: no vault parsed yet."""
    monkeypatch.setattr(vault, "_MEMO", {})
    monkeypatch.setattr(vault, "PARSES", 0)


def test_one_vault_parse_per_process(inv):
    password = inv / "vault-password"
    loaded = load_inventory(inv, password)
    vault.vault_names(inv, password)
    name = loaded.tenant("givors").mailboxes[0].password_vault
    assert vault.decrypt_value(inv, password, name) == vault.decrypt_value(inv, password, name)
    vault.read_vault(inv, password, [name])
    vault.secret_scrubber(inv, password, [name])
    assert vault.PARSES == 1


def test_a_changed_vault_is_parsed_again(inv):
    password = inv / "vault-password"
    vault.vault_names(inv, password)
    vault.add_secrets(inv, password, {"tno_vault_givors_new": "x" * 24})
    assert "tno_vault_givors_new" in vault.vault_names(inv, password)
    assert vault.PARSES == 2  # the first read (add_secrets reuses it), then the rewritten file (new inode)


def test_warm_validation_parses_neither_vault_nor_tenants(inv, tmp_path):
    password, cache = inv / "vault-password", tmp_path / "cache"
    assert validate_inventory(inv, password, cache_dir=cache).stats["parsed"] == 7
    assert vault.PARSES == 1
    vault._MEMO.clear()  # a new process
    report = validate_inventory(inv, password, cache_dir=cache)
    assert report.stats == {"files": 7, "parsed": 0, "cached": 7, "hashed": 0} and report.vault_checked
    assert vault.PARSES == 1


def test_warm_validation_still_reports_a_wrong_password(inv, tmp_path):
    from tnoctl.errors import InvalidInput

    cache = tmp_path / "cache"
    validate_inventory(inv, inv / "vault-password", cache_dir=cache)
    bad = tmp_path / "bad"
    bad.write_text("wrong\n")
    with pytest.raises(InvalidInput, match="cannot decrypt"):
        validate_inventory(inv, bad, cache_dir=cache)


def test_a_vault_change_invalidates_the_tenant_cache(inv, tmp_path):
    password, cache = inv / "vault-password", tmp_path / "cache"
    validate_inventory(inv, password, cache_dir=cache)
    vault.add_secrets(inv, password, {"tno_vault_givors_new": "x" * 24})
    assert validate_inventory(inv, password, cache_dir=cache).stats["parsed"] == 7


def test_worker_chunks_do_not_carry_the_vault_names(inv, monkeypatch):
    """Forked workers inherit the name set; what is pickled per chunk is the root and file names only."""
    sent: list[tuple] = []

    class InlinePool:
        def __init__(self, **_kwargs):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def map(self, fn, *iterables):
            args = list(zip(*iterables, strict=True))
            sent.extend(args)
            return [fn(*a) for a in args]

    monkeypatch.setattr(scan, "ProcessPoolExecutor", InlinePool)
    monkeypatch.setattr(scan, "POOL_THRESHOLD", 2)
    monkeypatch.setattr(scan, "CHUNK", 3)
    (inv / "tenants" / "givors.yml").write_text(
        (inv / "tenants" / "givors.yml").read_text().replace("tno_vault_givors_dgs", "tno_vault_givors_nope"))
    with pytest.raises(Exception, match="invalid") as err:
        validate_inventory(inv, inv / "vault-password", workers=2)
    assert any("tno_vault_givors_nope is not defined in the vault" in d for d in err.value.details)
    assert len(sent) == 3
    for args in sent:
        assert not any(isinstance(a, frozenset | set) for a in args)
        assert all(isinstance(a, Path | list) for a in args)


def test_limited_deploy_decrypts_only_the_targeted_tenants(inv, tmp_path, monkeypatch):
    password = inv / "vault-password"
    raw, _ = vault.read_raw(inv, password)
    by_cipher = {str(v): str(k) for k, v in raw.items()}
    decrypted: list[str] = []
    real = vault._decrypt

    def spy(lib, data, password_file):
        decrypted.append(by_cipher.get(data.decode(), "?"))
        return real(lib, data, password_file)

    monkeypatch.setattr(vault, "_decrypt", spy)
    env = Env.build(inv, tmp_path / "state", password)
    env.scope_secrets(["givors"])
    platform = ("tno_vault_office_", "tno_vault_rspamd_")  # the office admin and the mail hosts' controller passwords
    allowed = {n for n in raw if n.startswith(("tno_vault_givors_", *platform))} | {"tno_vault_borg_givors"}
    assert set(decrypted) == allowed  # every secret the run may handle, and none of another tenant
    before = len(decrypted)
    env.redact("text")  # the scrubber exists: nothing more is decrypted
    assert len(decrypted) == before


def test_plan_and_deploy_scope_the_scrubber_to_their_hosts(inv, tmp_path, monkeypatch):
    from tnoctl.actions import deploy

    seen: list[list[str]] = []
    monkeypatch.setattr(Env, "scope_secrets", lambda self, slugs: seen.append(list(slugs)))

    class Stop(Exception):
        pass

    def stop(*_a, **_k):
        raise Stop

    monkeypatch.setattr(deploy, "operation", stop)
    env = Env.build(inv, tmp_path / "state", inv / "vault-password")
    mail_host = env.inventory.tenant("givors").placement.mail
    for action, request in ((deploy.plan, deploy.PlanRequest(hosts=(mail_host,))),
                            (deploy.run, deploy.DeployRequest(hosts=(mail_host,)))):
        with pytest.raises(Stop):
            action(env, request)
    expected = sorted(env.inventory.slugs_on_host(mail_host))
    assert seen == [expected, expected] and "givors" in expected


def test_read_verbs_parse_no_tenant_file_on_a_warm_cache(inv, tmp_path, monkeypatch):
    from tnoctl.config import validate

    cache = tmp_path / "cache"
    load_inventory(inv, cache_dir=cache)
    calls: list[str] = []
    real = validate.check_tenant_file
    monkeypatch.setattr(validate, "check_tenant_file",
                        lambda p, rel, *a, **k: calls.append(rel) or real(p, rel, *a, **k))
    loaded = load_inventory(inv, cache_dir=cache)
    assert [r.slug for r in loaded.rows] == sorted(p.stem for p in (inv / "tenants").glob("*.yml"))
    assert calls == []
    loaded.tenant("givors")
    assert calls == ["tenants/givors.yml"]


def test_a_limited_run_feeds_and_parses_only_its_hosts_tenants(inv, tmp_path, monkeypatch):
    """The inventory plugin's view with TNO_LIMIT_HOSTS: tno_tenants for those hosts only."""
    from tnoctl.config import validate
    from tnoctl.config.ansible_view import all_tenants, host_vars

    cache = tmp_path / "cache"
    loaded = load_inventory(inv, cache_dir=cache)
    host = loaded.row("givors").placement.mail
    calls: list[str] = []
    real = validate.check_tenant_file
    monkeypatch.setattr(validate, "check_tenant_file",
                        lambda p, rel, *a, **k: calls.append(rel) or real(p, rel, *a, **k))
    view = host_vars(loaded, {host})
    assert list(view) == [host]
    assert sorted(t["slug"] for t in view[host]["tno_tenants"]) == sorted(loaded.slugs_on_host(host))
    assert sorted(calls) == sorted(f"tenants/{s}.yml" for s in loaded.slugs_on_host(host))
    assert len(all_tenants(loaded)) == len(loaded.rows) and len(calls) == len(loaded.slugs_on_host(host))
