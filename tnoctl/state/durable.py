"""Crash-safe writes: what must survive a power cut is fsynced, file and directory.

A ``rename()`` or a newly created file lives in its directory's entry table: without an fsync of
the directory, a crash can bring back the old file, or no file, even though the data was fsynced.
"""

from __future__ import annotations

import os
from pathlib import Path


def fsync_dir(directory: Path) -> None:
    """fsync a directory so that a rename or a file created in it survives a crash."""
    dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def replace(tmp: Path, path: Path) -> None:
    """``os.replace(tmp, path)`` then fsync the directory (``tmp`` must already be fsynced)."""
    os.replace(tmp, path)
    fsync_dir(path.parent)
