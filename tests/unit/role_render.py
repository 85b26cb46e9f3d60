"""Render a role's template the way Ansible does (role defaults + vars + given variables), without a host.

Used by the unit tests of generated configuration (mail: Rspamd/Postfix; proxy: nginx vhosts), so their
content is asserted exactly with ansible-core's own templating (filters, trust rules) and no playbook run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

ROLES = Path(__file__).resolve().parents[2] / "roles"


def role_vars(role: str) -> dict[str, Any]:
    """The role's defaults overlaid with its vars (both templated lazily, like Ansible)."""
    loader = DataLoader()
    variables: dict[str, Any] = {}
    for part in ("defaults", "vars"):
        path = ROLES / role / part / "main.yml"
        if path.is_file():
            variables.update(loader.load_from_file(str(path), trusted_as_template=True) or {})
    return variables


def render(role: str, template: str, variables: dict[str, Any]) -> str:
    """Render roles/<role>/templates/<template> with the role's variables and ``variables`` on top."""
    merged = {"ansible_managed": "managed", **role_vars(role), **variables}
    templar = Templar(loader=DataLoader(), variables=merged)
    return templar.template(trust_as_template((ROLES / role / "templates" / template).read_text()))
