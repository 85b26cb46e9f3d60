"""``ansible_managed`` exists only while a template file renders: task, handler and vars files cannot use it.

Ansible defines it for the `template` module and for tno_files' ``src`` templates, not for task arguments
(a tno_files ``content:``): there it is undefined and fails the task at run time, on the host, in the middle
of an upgrade (seen in CI: `tnoctl upgrade os` failed and could not roll back mail1).
"""

from __future__ import annotations

from pathlib import Path

import pytest

ROLES = Path(__file__).resolve().parents[2] / "roles"
FILES = sorted(p for sub in ("tasks", "handlers", "vars", "defaults") for p in ROLES.glob(f"*/{sub}/*.yml"))


def test_there_are_role_files_to_check() -> None:
    assert len(FILES) > 20


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROLES)))
def test_task_and_vars_files_do_not_use_ansible_managed(path: Path) -> None:
    assert "ansible_managed" not in path.read_text(), (
        f"{path.relative_to(ROLES)}: ansible_managed is defined only inside template files (write the notice "
        "in the template, or as plain text)")
