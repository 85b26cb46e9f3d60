"""roles/tno_acme/vars/main.yml `__tno_acme_eab`: EAB is optional, so an undefined or null setting means "no EAB".

Found on the lab: `tno_acme_eab_kid_vault is not none` on an undefined variable (a platform without EAB,
the common case) failed the issuance task's `no_log` keyword under ansible-core 2.19.
"""

from __future__ import annotations

import pytest
import yaml
from ansible.template import Templar, trust_as_template

from tnoctl import paths

EXPR = yaml.safe_load((paths.ROLES_DIR / "tno_acme" / "vars" / "main.yml").read_text())["__tno_acme_eab"]


@pytest.mark.parametrize("settings,expected", [
    ({}, False),
    ({"tno_acme_eab_kid_vault": None}, False),
    ({"tno_acme_eab_kid_vault": ""}, False),
    ({"tno_acme_eab_kid_vault": "tno_vault_acme_eab_kid"}, True),
])
def test_eab_flag_is_false_unless_a_vault_name_is_set(settings: dict, expected: bool) -> None:
    assert Templar(loader=None, variables=settings).template(trust_as_template(EXPR)) is expected
