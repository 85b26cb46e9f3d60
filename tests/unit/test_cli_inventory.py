"""CLI verbs run in-process: exit codes, --json output, tenant add (atomic, vault, no secret printed)."""

import io
import json
import shutil
from pathlib import Path

import pytest

from tnoctl.cli import main
from tnoctl.cli.context import AppContext
from tnoctl.config import vault
from tnoctl.config.load import load_inventory

LAB = Path(__file__).resolve().parents[2] / "inventories" / "lab"
# The lab fleet (issue 20): both services, mail only (feyzin), office only (bron), three domains (saint-fons).
LAB_TENANTS = ["bron", "corbas", "feyzin", "givors", "saint-fons", "vaulx-en-velin", "venissieux"]


@pytest.fixture
def inv(tmp_path: Path) -> Path:
    dest = tmp_path / "inv"
    shutil.copytree(LAB, dest, ignore=shutil.ignore_patterns(".tno"))
    return dest


def run(inv: Path, *argv: str) -> tuple[int, str, str]:
    app = AppContext(inventory=inv, state_dir_override=inv.parent / "state", stdout=io.StringIO(),
                     stderr=io.StringIO())
    rc = main(["--inventory", str(inv), *argv], app=app)
    return rc, app.stdout.getvalue(), app.stderr.getvalue()


def test_validate_ok_and_json(inv):
    rc, out, err = run(inv, "inventory", "validate")
    assert (rc, err) == (0, "") and out == f"inventory {inv} is valid: 5 hosts, 7 tenants\n"
    rc, out, _ = run(inv, "inventory", "validate", "--json")
    assert rc == 0 and json.loads(out) == {"inventory": str(inv), "valid": True, "hosts": 5, "tenants": 7,
                                           "errors": [], "vault_checked": True}


def test_validate_invalid_exits_2_with_every_message(inv):
    (inv / "tenants" / "givors.yml").write_text((inv / "tenants" / "givors.yml").read_text()
                                                 .replace("quota: 2G", "quota: 5 GO", 1))
    (inv / "tenants" / "corbas.yml").write_text("slug: corbas\n")
    rc, out, err = run(inv, "inventory", "validate")
    assert rc == 2 and out == ""
    assert err.startswith(f"tnoctl: error: inventory {inv} is invalid: 4 errors\n")
    assert "  tenants/givors.yml: mailboxes[0].quota: '5 GO' is not a size like 5G\n" in err
    assert "  tenants/corbas.yml: name: required key is missing\n" in err
    assert "Traceback" not in err
    rc, out, _ = run(inv, "inventory", "validate", "--json")
    assert rc == 2 and len(json.loads(out)["errors"]) == 4


def test_validate_uses_cache_and_sees_changes(inv):
    assert run(inv, "inventory", "validate")[0] == 0
    assert (inv.parent / "state" / "cache" / "tenant-checks.json").is_file()
    assert run(inv, "inventory", "validate")[0] == 0
    path = inv / "tenants" / "givors.yml"
    path.write_text(path.read_text().replace("quota: 2G", "quota: lots", 1))
    rc, _, err = run(inv, "inventory", "validate")
    assert rc == 2 and "tenants/givors.yml: mailboxes[0].quota: 'lots' is not a size like 5G" in err


def test_missing_inventory_is_exit_2(tmp_path):
    rc, _, err = run(tmp_path / "nope", "inventory", "validate")
    assert rc == 2 and "not a directory" in err


def test_inventory_show(inv):
    rc, out, _ = run(inv, "inventory", "show", "--json")
    hosts = {h["host"]: h for h in json.loads(out)["hosts"]}
    assert rc == 0 and hosts["mail1"]["tenants"] == ["saint-fons", "vaulx-en-velin", "venissieux"]
    assert hosts["office2"]["groups"] == ["office", "proxy"] and hosts["backup1"]["address"] == "198.18.0.15"
    rc, out, _ = run(inv, "inventory", "show")
    assert rc == 0 and "office1" in out


def test_tenant_list_and_show(inv):
    rc, out, _ = run(inv, "tenant", "list", "--json")
    rows = json.loads(out)
    assert rc == 0 and [r["slug"] for r in rows] == LAB_TENANTS
    assert rows[5]["pilot"] is True and rows[5]["mail_host"] == "mail1"
    rc, out, _ = run(inv, "tenant", "show", "givors", "--json")
    view = json.loads(out)
    assert rc == 0 and view["primary_domain"] == "givors.test"
    assert {b["local"]: b["quota_bytes"] for b in view["mailboxes"]}["quota-test"] == 2 * 1024**2
    rc, out, _ = run(inv, "tenant", "show", "givors")
    assert rc == 0 and "tno_vault_givors_dgs" in out
    rc, _, err = run(inv, "tenant", "show", "nope")
    assert rc == 2 and "unknown tenant 'nope' (known: bron, corbas, feyzin, givors" in err


def test_tenant_show_never_prints_a_password(inv):
    secret = vault.decrypt_value(inv, inv / "vault-password", "tno_vault_givors_dgs")
    for argv in (["tenant", "show", "givors"], ["tenant", "show", "givors", "--json"], ["inventory", "export"]):
        rc, out, err = run(inv, *argv)
        assert rc == 0 and secret not in out and secret not in err


def test_tenant_add_writes_file_and_vault(inv):
    before = (inv / "group_vars" / "all" / "vault.yml").read_text()
    rc, out, err = run(inv, "tenant", "add", "mions", "--name", "Mions", "--insee", "69283",
                       "--domain", "mions.test", "--mailbox", "mairie:2G", "--mailbox", "dgs",
                       "--mail-host", "mail2")
    assert rc == 0, err
    assert "tenant mions added" in out
    assert "next step: tnoctl tenant onboard mions" in out
    loaded = load_inventory(inv, inv / "vault-password")
    tenant = loaded.tenant("mions")
    assert tenant.placement.mail == "mail2" and tenant.placement.office == "office1"  # least loaded (tie: name)
    assert [(b.local, b.quota) for b in tenant.mailboxes] == [("mairie", "2G"), ("dgs", "1G")]
    assert tenant.mailboxes[0].password_vault.startswith("tno_vault_mions__mairie_")
    password = vault.decrypt_value(inv, inv / "vault-password", tenant.mailboxes[0].password_vault)
    assert len(password) == 24 and password not in out + err
    borg = vault.decrypt_value(inv, inv / "vault-password", "tno_vault_borg_mions")  # backup setup needs it
    assert len(borg) == 24 and borg != password and borg not in out + err
    after = (inv / "group_vars" / "all" / "vault.yml").read_text()
    assert before.splitlines()[0] in after and password not in after
    assert not list((inv / "tenants").glob(".*tmp"))


@pytest.mark.parametrize(("argv", "message"), [
    (["a;rm -rf /"], "is not a tenant slug"),
    (["../../etc"], "is not a tenant slug"),
    (["givors"], "tenant 'givors' already exists"),
    (["new", "--domain", "givors.test"], "tenants/new.yml: domains: 'givors.test' is also used by"),
    (["new", "--mail-host", "office1"], "tenants/new.yml: placement.mail: host 'office1' is not in group 'mail'"),
    (["new", "--insee", "6919"], "tenants/new.yml: insee: '6919' is not an INSEE code"),
    (["new", "--mailbox", "x:5 GO"], "tenants/new.yml: mailboxes[0].quota: '5 GO' is not a size like 5G"),
])
def test_tenant_add_refuses_bad_input_without_writing(inv, argv, message):
    vault_before = (inv / "group_vars" / "all" / "vault.yml").read_bytes()
    files_before = sorted(p.name for p in (inv / "tenants").iterdir())
    args = ["tenant", "add", argv[0], "--name", "N"]
    rest = argv[1:]
    if "--insee" not in rest:
        rest += ["--insee", "69199"]
    if "--domain" not in rest:
        rest += ["--domain", "new.test"]
    rc, _, err = run(inv, *args, *rest)
    assert rc == 2 and message in err, err
    assert (inv / "group_vars" / "all" / "vault.yml").read_bytes() == vault_before
    assert sorted(p.name for p in (inv / "tenants").iterdir()) == files_before


def test_tenant_add_needs_vault_password(inv):
    (inv / "vault-password").unlink()
    rc, _, err = run(inv, "tenant", "add", "new", "--name", "N", "--insee", "69199", "--domain", "new.test",
                     "--mailbox", "a")
    assert rc == 2 and "needs the vault password" in err


@pytest.mark.parametrize("verb", [["inventory"], ["inventory", "validate"], ["inventory", "show"],
                                  ["inventory", "export"], ["tenant"], ["tenant", "list"], ["tenant", "show"],
                                  ["tenant", "add"]])
def test_help_has_an_example(inv, verb, capsys):
    rc, _, _ = run(inv, *verb, "--help")  # click prints help on the real stdout
    assert rc == 0 and "Example:" in capsys.readouterr().out
