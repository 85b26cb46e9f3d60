"""Golden messages: schema errors become `file:field: message`, all at once."""

import shutil
from pathlib import Path

import pytest

from tnoctl.config.load import load_inventory
from tnoctl.errors import InvalidInput

LAB = Path(__file__).resolve().parents[2] / "inventories" / "lab"


@pytest.fixture
def inv(tmp_path: Path) -> Path:
    dest = tmp_path / "inv"
    shutil.copytree(LAB, dest, ignore=shutil.ignore_patterns(".tno"))
    return dest


def errors_of(inv: Path, password: bool = False) -> list[str]:
    with pytest.raises(InvalidInput) as err:
        load_inventory(inv, inv / "vault-password" if password else None)
    assert err.value.message.startswith(f"inventory {inv} is invalid: {len(err.value.details)} error")
    return err.value.details


def write(inv: Path, name: str, text: str) -> None:
    (inv / "tenants" / name).write_text(text)


BASE = """\
slug: {slug}
name: Test
insee: "{insee}"
domains: [{slug}.test]
placement: {{mail: mail1, office: office1}}
"""


def test_lab_inventory_is_valid_with_its_vault():
    inv = load_inventory(LAB, LAB / "vault-password")
    assert [t.slug for t in inv.tenants] == ["bron", "corbas", "feyzin", "givors", "saint-fons", "vaulx-en-velin",
                                             "venissieux"]


def test_golden_schema_messages(inv):
    write(inv, "givors.yml", """\
slug: givors
name: Givors
insee: 69091
domains: [givors.test, "Not A Domain"]
services: [mail, fax]
placement: {mail: mail2, office: office2}
colour: blue
mailboxes:
  - {local: a, name: A, password_vault: tno_vault_givors_a}
  - {local: b, name: B, password_vault: tno_vault_givors_b, quota: 1G}
  - {local: c, name: C, password_vault: tno_vault_givors_c, quota: 5 GO}
  - {local: d, nmae: D, password_vault: secret123}
office: {wopi_hosts: ["http://cloud.givors.test"]}
maintenance_window: "Sunday 02:00-05:00"
pilot: "maybe"
backup: {keep_daily: -1}
""")
    assert errors_of(inv) == [
        'tenants/givors.yml: insee: 69091 must be a string (quote it: "69091")',
        "tenants/givors.yml: domains[1]: 'Not A Domain' is not a lower-case domain name like example.fr",
        "tenants/givors.yml: services[1]: 'fax' is not one of: mail, office",
        "tenants/givors.yml: mailboxes[2].quota: '5 GO' is not a size like 5G",
        "tenants/givors.yml: mailboxes[3].name: required key is missing",
        "tenants/givors.yml: mailboxes[3].password_vault: 'secret123' is not a vault name like tno_vault_x",
        "tenants/givors.yml: mailboxes[3].nmae: unknown key (did you mean 'name'?)",
        "tenants/givors.yml: office.wopi_hosts[0]: 'http://cloud.givors.test' is not an https:// URL "
        "(WOPI hosts must use https)",
        "tenants/givors.yml: maintenance_window: 'Sunday 02:00-05:00' is not a window like 'Sun 02:00-05:00', "
        "'Mon-Fri 22:00-06:00' or 'Sat,Sun 01:00-04:00'",
        "tenants/givors.yml: pilot: expected true or false, got a string 'maybe'",
        "tenants/givors.yml: backup.keep_daily: -1 must be at least 0",
        "tenants/givors.yml: colour: unknown key (allowed: backup, contacts, dns, domains, insee, mail, mailboxes, "
        "maintenance_window, name, office, pilot, placement, services, slug)",
    ]


def test_yaml_syntax_error_names_the_line(inv):
    write(inv, "x.yml", "slug: x\nname: [unclosed\ninsee: '69000'\n")
    (msg,) = errors_of(inv)
    assert msg.startswith("tenants/x.yml: line 3: invalid YAML:")


@pytest.mark.parametrize(("content", "expected"), [
    ("- a\n- b\n", "tenants/x.yml: (document): must be a mapping of keys, got a list"),
    ("just text\n", "tenants/x.yml: (document): must be a mapping of keys, got a string"),
    ("a: &a [1]\nb: *a\n", "tenants/x.yml: (file): YAML aliases (*name) are not allowed in inventory files"),
])
def test_non_mapping_and_aliases(inv, content, expected):
    write(inv, "x.yml", content)
    assert errors_of(inv) == [expected]


def test_missing_keys_and_all_files_reported_together(inv):
    write(inv, "a.yml", "slug: a\n")
    write(inv, "b.yml", "name: B\n")
    errs = errors_of(inv)
    assert "tenants/a.yml: name: required key is missing" in errs
    assert "tenants/a.yml: insee: required key is missing" in errs
    assert "tenants/b.yml: slug: required key is missing" in errs


def test_platform_errors_are_prefixed(inv):
    path = inv / "group_vars" / "all" / "platform.yml"
    path.write_text(path.read_text().replace("tno_backup_host: backup1", "tno_backup_host: mail1") + "extra: 1\n")
    errs = errors_of(inv)
    assert errs == [
        "group_vars/all/platform.yml: extra: unknown key (allowed: tno_acme_contact, tno_acme_directory_url, "
        "tno_acme_eab_hmac_vault, tno_acme_eab_kid_vault, tno_acme_propagation_seconds, tno_backup_host, "
        "tno_backup_retention, tno_backup_storage_quota, tno_dns_server, tno_dns_tsig_algorithm, "
        "tno_dns_tsig_key_name, tno_dns_tsig_secret_vault, tno_mail_mta_sts_mode, tno_mail_relayhost, "
        "tno_mail_release, tno_mail_send_limit, tno_mail_spam_thresholds, tno_mail_transport_overrides, "
        "tno_office_admin_allow, tno_office_apt_components, tno_office_apt_keyring_src, "
        "tno_office_apt_repo_url, tno_office_apt_suite, tno_office_companion_packages, "
        "tno_office_extra_wopi_hosts, tno_office_probe_wopi_host, tno_office_version, tno_platform_name, "
        "tno_timezone, tno_tls_cert_dir, tno_tls_mode)",
    ]
    path.write_text(path.read_text().replace("extra: 1\n", ""))
    assert errors_of(inv) == ["group_vars/all/platform.yml: tno_backup_host: 'mail1' is not in group 'backup'"]


def test_huge_and_control_character_values_are_truncated(inv):
    write(inv, "x.yml", BASE.format(slug="x", insee="69000") + f"pilot: \"{'A' * 100000}\\n\\u0007\"\n")
    (msg,) = errors_of(inv)
    assert msg.startswith("tenants/x.yml: pilot: expected true or false, got a string 'AAAA")
    assert len(msg) < 200 and "\n" not in msg
