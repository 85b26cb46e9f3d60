"""Crash-safe writes: what must survive a power cut is fsynced, file and directory.

A ``rename()`` or a newly created file lives in its directory's entry table: without an fsync of
the directory, a crash can bring back the old file, or no file, even though the data was fsynced.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


def read_regular(path: Path, limit: int) -> bytes:
    """The bytes of ``path`` if it is a regular file of at most ``limit`` bytes; ValueError otherwise.

    Opened with ``O_NONBLOCK | O_NOFOLLOW`` and checked with ``fstat``: a FIFO or a symlink planted in
    the state dir can neither hang a reader nor point it at another file. FileNotFoundError passes.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_NOCTTY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise ValueError(f"cannot open: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ValueError("not a regular file")
        if st.st_size > limit:
            raise ValueError(f"{st.st_size} bytes, more than the {limit} allowed")
        data = os.read(fd, limit + 1)
        if len(data) > limit:
            raise ValueError(f"more than the {limit} bytes allowed")
        return data
    finally:
        os.close(fd)


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
