"""Platform settings for ACME certificates and the DNS server (#15): strict patterns, one-line errors."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tnoctl import paths
from tnoctl.config import yamlio
from tnoctl.config.schema import Platform

PLATFORM = yamlio.load_mapping(paths.LAB_INVENTORY / "group_vars" / "all" / "platform.yml")
ACME = {**PLATFORM, "tno_tls_mode": "acme"}
FILES = {**PLATFORM, "tno_tls_mode": "files"}


def test_lab_platform_is_acme_and_valid_in_both_modes():
    assert Platform.model_validate(PLATFORM).tno_tls_mode == "acme"  # `make demo` issues through pebble
    assert Platform.model_validate(FILES).tno_tls_mode == "files"
    assert Platform.model_validate(ACME).tno_dns_tsig_algorithm == "hmac-sha256"
    assert Platform.model_validate(ACME).tno_acme_propagation_seconds == 1  # one lab DNS server: no wait


def test_propagation_wait_defaults_to_ten_seconds_and_is_bounded():
    data = {k: v for k, v in ACME.items() if k != "tno_acme_propagation_seconds"}
    assert Platform.model_validate(data).tno_acme_propagation_seconds == 10
    for bad in (-1, 601, "10", True, 2.5):
        with pytest.raises(ValidationError, match="tno_acme_propagation_seconds"):
            Platform.model_validate({**ACME, "tno_acme_propagation_seconds": bad})


def test_files_mode_needs_no_acme_setting():
    minimal = {k: v for k, v in FILES.items() if not k.startswith(("tno_acme_", "tno_dns_", "tno_tls_mode"))}
    assert Platform.model_validate(minimal).tno_tls_mode == "files"


@pytest.mark.parametrize("missing", ["tno_acme_directory_url", "tno_acme_contact", "tno_dns_server",
                                     "tno_dns_tsig_key_name", "tno_dns_tsig_secret_vault"])
def test_acme_mode_names_the_missing_setting(missing):
    data = {k: v for k, v in ACME.items() if k != missing}
    if missing in ("tno_dns_tsig_key_name", "tno_dns_tsig_secret_vault"):
        data = {k: v for k, v in data.items() if k not in ("tno_dns_tsig_key_name", "tno_dns_tsig_secret_vault")}
    with pytest.raises(ValidationError, match=missing):
        Platform.model_validate(data)


@pytest.mark.parametrize("key,value", [
    ("tno_acme_directory_url", "http://acme.example/dir"),
    ("tno_acme_directory_url", "https://acme.example/dir\n"),
    ("tno_acme_directory_url", "https://acme example/dir"),
    ("tno_acme_contact", "ops@example.fr\nBcc: x@y"),
    ("tno_acme_contact", "ops example.fr"),
    ("tno_dns_server", "198.18.0.1 53"),
    ("tno_dns_server", "ns1.example.fr;rm"),
    ("tno_dns_tsig_key_name", "key name"),
    ("tno_dns_tsig_key_name", "key\tname."),
    ("tno_dns_tsig_algorithm", "hmac-md5"),
    ("tno_dns_tsig_secret_vault", "not_a_vault_name"),
    ("tno_acme_eab_kid_vault", "tno_vault_acme_kid\n"),
    ("tno_tls_mode", "letsencrypt"),
])
def test_strict_values_are_rejected(key, value):
    with pytest.raises(ValidationError):
        Platform.model_validate({**ACME, key: value})


@pytest.mark.parametrize("value", ["198.18.0.1", "198.18.0.1:5353", "[2001:db8::53]:53", "ns1.example.fr"])
def test_dns_server_forms(value):
    assert Platform.model_validate({**ACME, "tno_dns_server": value}).tno_dns_server == value


def test_eab_comes_as_a_pair():
    with pytest.raises(ValidationError, match="must be set together"):
        Platform.model_validate({**ACME, "tno_acme_eab_kid_vault": "tno_vault_acme_eab_kid"})
    both = {**ACME, "tno_acme_eab_kid_vault": "tno_vault_acme_eab_kid",
            "tno_acme_eab_hmac_vault": "tno_vault_acme_eab_hmac"}
    assert Platform.model_validate(both).tno_acme_eab_hmac_vault == "tno_vault_acme_eab_hmac"


def test_error_is_one_line_naming_file_and_field(tmp_path):
    import yaml

    from tnoctl.config import validate

    path = tmp_path / "platform.yml"
    path.write_text(yaml.safe_dump({**ACME, "tno_dns_server": "a b"}))
    _platform, errors = validate.check_platform(path, "group_vars/all/platform.yml")
    assert len(errors) == 1
    assert errors[0].startswith("group_vars/all/platform.yml: tno_dns_server:") and "\n" not in errors[0]


def test_a_tenant_cannot_take_the_dns_or_acme_vault_namespace():
    from tnoctl.config.logical import PLATFORM_VAULT_PREFIXES

    assert {"tno_vault_dns_", "tno_vault_acme_"} <= set(PLATFORM_VAULT_PREFIXES)
