"""Every schema pattern is a full match and platform fields that reach config files are strict (#13).

`re.match(r"^...$")` accepts "value\\n": the newline then reached vmailbox, tno-users, key.table,
the nginx vhost, main.cf (an open relay) and the apt source (`Trusted: yes`).
"""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import pytest
from pydantic import ValidationError

from tnoctl.config import yamlio
from tnoctl.config.load import load_inventory
from tnoctl.config.schema import Platform, Tenant
from tnoctl.config.window import Window
from tnoctl.errors import InvalidInput

LAB = Path(__file__).resolve().parents[2] / "inventories" / "lab"
TENANT = yamlio.load_mapping(LAB / "tenants" / "corbas.yml")
PLATFORM = yamlio.load_mapping(LAB / "group_vars" / "all" / "platform.yml")


def tenant_with(path: tuple, value) -> dict:
    doc = copy.deepcopy(TENANT)
    node = doc
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return doc


def test_the_lab_documents_are_valid():
    Tenant.model_validate(TENANT)
    Platform.model_validate(PLATFORM)


@pytest.mark.parametrize("path,value", [
    (("domains",), ["evil.example\n"]),
    (("mailboxes", 0, "local"), "mairie\n"),
    (("mailboxes", 0, "domain"), "corbas.test\n"),
    (("office", "wopi_hosts"), ["https://cloud.corbas.test\n"]),
    (("office", "wopi_hosts"), ["https://cloud.corbas.test/\"><x"]),
    (("maintenance_window",), "Sun 02:00-05:00\n"),
    (("slug",), "corbas\n"),
    (("insee",), "69273\n"),
    (("mailboxes", 0, "quota"), "2G\n"),
    (("mailboxes", 0, "password_vault"), "tno_vault_corbas_mairie\n"),
    (("mailboxes", 0, "name"), "Accueil\nroot: x"),
    (("name",), "Corbas\x1b[2J"),
    (("placement", "mail"), "mail1\n"),
    (("contacts",), [{"name": "x", "email": "a@b.fr\n"}]),
])
def test_trailing_newline_and_control_characters_are_rejected(path, value):
    with pytest.raises(ValidationError):
        Tenant.model_validate(tenant_with(path, value))


def test_window_parse_is_a_full_match():
    with pytest.raises(ValueError):
        Window.parse("Sun 02:00-05:00\n")


@pytest.mark.parametrize("key,value", [
    ("tno_mail_relayhost", "relay.example\nmynetworks = 0.0.0.0/0"),
    ("tno_mail_relayhost", "relay.example\n"),
    ("tno_mail_relayhost", "relay example"),
    ("tno_mail_transport_overrides", {"ternay.test": "[198.18.0.12]:25\nmynetworks = 0.0.0.0/0"}),
    ("tno_mail_transport_overrides", {"ternay.test": "mx.example.fr "}),
    ("tno_mail_transport_overrides", {"ternay.test": ""}),
    ("tno_mail_transport_overrides", {"ternay.test\nexample.fr": "[198.18.0.12]:25"}),
    ("tno_mail_transport_overrides", {"Ternay.test": "[198.18.0.12]:25"}),
    ("tno_office_apt_suite", "tno-lab\nTrusted: yes"),
    ("tno_office_apt_suite", "tno-lab [trusted=yes]"),
    ("tno_office_apt_components", ["main\nTrusted: yes"]),
    ("tno_office_apt_components", ["main contrib"]),
    ("tno_office_apt_repo_url", "http://198.18.0.1:8081\n"),
    ("tno_office_apt_repo_url", "http://x/ [trusted=yes]"),
    ("tno_office_apt_repo_url", "http://x/\"y"),
    ("tno_office_version", "24.04\n"),
    ("tno_mail_release", "1\n"),
    ("tno_office_apt_keyring_src", "/tmp/k.gpg\n"),
    ("tno_tls_cert_dir", "/etc/x y"),
    ("tno_platform_name", "lab\n"),
    ("tno_backup_host", "backup1\n"),
])
def test_platform_fields_that_reach_config_files_are_strict(key, value):
    with pytest.raises(ValidationError):
        Platform.model_validate({**PLATFORM, key: value})


@pytest.mark.parametrize("value", ["", "relay.example", "[relay.example]:587", "relay.example:25", "[2001:db8::1]"])
def test_valid_relayhosts_are_accepted(value):
    Platform.model_validate({**PLATFORM, "tno_mail_relayhost": value})


@pytest.mark.parametrize("value", ["[198.18.0.12]:25", "mx.example.fr", "[mx.example.fr]:2525", "[2001:db8::1]:25"])
def test_valid_transport_overrides_are_accepted(value):
    platform = Platform.model_validate({**PLATFORM, "tno_mail_transport_overrides": {"ternay.test": value}})
    assert platform.tno_mail_transport_overrides == {"ternay.test": value}


def test_hosts_yml_names_are_full_matches(tmp_path):
    inv = tmp_path / "inv"
    shutil.copytree(LAB, inv, ignore=shutil.ignore_patterns(".tno"))
    hosts = inv / "hosts.yml"
    hosts.write_text(hosts.read_text().replace("ansible_host: 198.18.0.11", 'ansible_host: "mail1.lab\\n"'))
    with pytest.raises(InvalidInput) as err:
        load_inventory(inv)
    assert any("ansible_host" in line and "is not an address" in line for line in err.value.details)


def test_double_dash_slugs_are_refused():
    """`a--b` would encode like `a` + `_b` in vault names: slugs are dash-separated words."""
    with pytest.raises(ValidationError):
        Tenant.model_validate(tenant_with(("slug",), "a--b"))
