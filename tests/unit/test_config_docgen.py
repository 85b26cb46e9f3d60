"""The committed docs/inventory-reference.md is generated from the schema and up to date."""

from tnoctl.config import docgen


def test_committed_reference_is_up_to_date():
    assert docgen.OUTPUT.read_text() == docgen.render(), "run: python -m tnoctl.config.docgen"


def test_every_schema_field_is_described():
    from tnoctl.config.schema import BackupOverride, Contact, Mailbox, Office, Placement, Platform, Retention, Tenant

    for model in (Tenant, Placement, Mailbox, Office, Contact, BackupOverride, Platform, Retention):
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no description"


# --- the roles' tno_tenants argument_spec (tnoctl/config/argspec.py) ---------------------------------

import pytest  # noqa: E402
import yaml  # noqa: E402
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator  # noqa: E402

from tnoctl import paths  # noqa: E402
from tnoctl.config import argspec  # noqa: E402
from tnoctl.config.ansible_view import host_vars, tenant_view  # noqa: E402
from tnoctl.config.load import load_inventory  # noqa: E402
from tnoctl.config.schema import Tenant  # noqa: E402

RETENTION = {"keep_daily": 7, "keep_weekly": 4, "keep_monthly": 6}


@pytest.mark.parametrize("role", argspec.ROLES)
def test_committed_argument_spec_is_up_to_date(role):
    path = argspec.spec_path(role)
    assert path.read_text() == argspec.regenerate(path.read_text(), str(path)), "run: make generate"


def test_check_mode_names_a_stale_file(tmp_path, monkeypatch, capsys):
    stale = tmp_path / "argument_specs.yml"
    stale.write_text(argspec.spec_path("tno_mail").read_text().replace("Local part", "Local bit"))
    monkeypatch.setattr(argspec, "spec_path", lambda role: stale)
    assert argspec.main(["--check"]) == 1
    assert str(stale) in capsys.readouterr().err
    assert "Local bit" in stale.read_text()  # --check never writes


def _tenant_spec(role: str) -> dict:
    spec = yaml.safe_load(argspec.spec_path(role).read_text())
    return {"tno_tenants": spec["argument_specs"]["main"]["options"]["tno_tenants"]}


def _errors(role: str, tenants: list[dict]) -> list[str]:
    return ArgumentSpecValidator(_tenant_spec(role)).validate({"tno_tenants": tenants}).error_messages


@pytest.mark.parametrize("role", argspec.ROLES)
def test_lab_ansible_view_passes_role_validation(role):
    views = host_vars(load_inventory(paths.LAB_INVENTORY))
    for host, hostvars in views.items():
        assert _errors(role, hostvars["tno_tenants"]) == [], host


VARIED = [
    Tenant.model_validate({"slug": "office-only", "name": "Office Only", "insee": "69001", "domains": ["a.fr"],
                           "services": ["office"], "placement": {"office": "office1"}}),
    Tenant.model_validate({"slug": "mail-only", "name": "Mail Only", "insee": "2A004", "domains": ["b.fr", "c.fr"],
                           "services": ["mail"], "placement": {"mail": "mail1"}, "backup": {"keep_daily": 3},
                           "mailboxes": [{"local": "x", "name": "X", "password_vault": "tno_vault_x"},
                                         {"local": "y", "domain": "c.fr", "name": "Y", "quota": "2G",
                                          "password_vault": "tno_vault_y",
                                          "send_limit": {"messages": 20, "per": "day"}}]}),
]


@pytest.mark.parametrize("role", argspec.ROLES)
def test_varied_tenants_pass_and_bad_ones_fail(role):
    views = [tenant_view(t, RETENTION) for t in VARIED]
    assert _errors(role, views) == []
    bad = [dict(views[1], services=["mail", "fax"], unknown_key=1)]
    bad[0]["mailboxes"] = [dict(bad[0]["mailboxes"][0], quota_bytes="many")]
    errors = " ".join(_errors(role, bad))
    assert "fax" in errors and "unknown_key" in errors and "quota_bytes" in errors


def _keys(spec_options: dict, value: dict, where: str = "") -> None:
    """The spec describes exactly the keys the view produces, at every level."""
    assert set(spec_options) == set(value), f"{where or 'tenant'}: spec {sorted(spec_options)} != view {sorted(value)}"
    for name, spec in spec_options.items():
        sub = value[name]
        if sub is None:  # an optional dict left unset (a mailbox without its own send_limit)
            assert not spec.get("required"), f"{where}{name} is required but None"
            continue
        if "options" in spec and isinstance(sub, list):
            for item in sub:
                _keys(spec["options"], item, f"{where}{name}[].")
        elif "options" in spec:
            _keys(spec["options"], sub, f"{where}{name}.")


def test_spec_keys_are_exactly_the_view_keys():
    _keys(argspec.tenant_options(), tenant_view(VARIED[1], RETENTION))


def test_every_generated_option_is_typed_and_described():
    def walk(opts: dict) -> None:
        for name, spec in opts.items():
            assert spec["type"] and spec["description"], name
            walk(spec.get("options", {}))

    walk(argspec.tenant_options())
