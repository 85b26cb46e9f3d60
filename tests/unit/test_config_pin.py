"""write_pin changes exactly one line of platform.yml, keeps comments and quoting, and reads back right."""

from __future__ import annotations

from pathlib import Path

import pytest

from tnoctl.config.pin import read_pin, write_pin
from tnoctl.errors import InvalidInput

PLATFORM = """# Platform settings
tno_platform_name: lab
tno_office_version: 24.04.10.1  # bumped by tnoctl upgrade
tno_mail_release: '1'
tno_backup_host: backup1
"""


@pytest.fixture()
def inventory(tmp_path: Path) -> Path:
    (tmp_path / "group_vars" / "all").mkdir(parents=True)
    (tmp_path / "group_vars" / "all" / "platform.yml").write_text(PLATFORM)
    return tmp_path


def test_one_line_changes_and_comments_stay(inventory: Path) -> None:
    assert write_pin(inventory, "tno_office_version", "24.04.11.1")
    text = (inventory / "group_vars/all/platform.yml").read_text()
    assert text == PLATFORM.replace("24.04.10.1  #", "24.04.11.1  #")
    assert read_pin(inventory, "tno_office_version") == "24.04.11.1"


def test_numbers_stay_strings(inventory: Path) -> None:
    assert write_pin(inventory, "tno_mail_release", "2")
    assert "tno_mail_release: '2'\n" in (inventory / "group_vars/all/platform.yml").read_text()
    assert read_pin(inventory, "tno_mail_release") == "2"
    assert not write_pin(inventory, "tno_mail_release", "2")  # already pinned: nothing written


def test_missing_variable_is_named(inventory: Path) -> None:
    with pytest.raises(InvalidInput, match="tno_nope: not set"):
        write_pin(inventory, "tno_nope", "1")
