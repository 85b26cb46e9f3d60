"""The SSH ControlPath directory is private and checked (#13): another user's /tmp/tno-cp-<uid> is refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tnoctl.errors import OperationFailed
from tnoctl.run.ansible import private_dir


def test_created_private(tmp_path: Path) -> None:
    path = private_dir(tmp_path / "cp")
    assert (os.stat(path).st_mode & 0o777) == 0o700 and os.stat(path).st_uid == os.getuid()
    assert private_dir(path) == path  # an existing private directory is reused


def test_world_writable_directory_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "cp"
    path.mkdir()
    os.chmod(path, 0o777)
    with pytest.raises(OperationFailed, match="mode 0700"):
        private_dir(path)


def test_directory_of_another_user_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "cp"
    path.mkdir(mode=0o700)
    if os.getuid() != 0:
        pytest.skip("chown to another uid needs root")  # the machines that run the suite are root
    os.chown(path, 4242, 4242)
    with pytest.raises(OperationFailed, match="owned by uid"):
        private_dir(path)


def test_symlink_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.mkdir(mode=0o700)
    (tmp_path / "cp").symlink_to(target)
    with pytest.raises(OperationFailed):
        private_dir(tmp_path / "cp")
