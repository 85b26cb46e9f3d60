"""Running external commands and printing timed progress lines for the lab.

Why a module: every lab step shells out (ip, debootstrap, tar, ssh-keygen...). One helper
turns a failing command into :class:`OperationFailed` with the tail of its stderr, so no
traceback and no `shell=True` anywhere in the lab.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import IO

from tnoctl.errors import OperationFailed

_T0 = time.monotonic()


def log(message: str, stream: IO[str] | None = None) -> None:
    """One progress line on stderr, prefixed with the seconds since the process started."""
    out = stream or sys.stderr
    out.write(f"[lab {time.monotonic() - _T0:7.2f}s] {message}\n")
    out.flush()


@contextmanager
def step(what: str) -> Iterator[None]:
    """Log `what`, run the block, log how long it took (progress with timings)."""
    t0 = time.monotonic()
    log(f"{what} ...")
    yield
    log(f"{what}: done in {time.monotonic() - t0:.2f}s")


def run(
    argv: Sequence[str],
    *,
    check: bool = True,
    input_text: str | None = None,
    quiet: bool = True,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run `argv` (no shell). Raise OperationFailed with the stderr tail when `check` and it fails.

    `quiet=False` lets the command's output through to our stderr (long builds such as debootstrap).
    """
    try:
        proc = subprocess.run(
            list(argv),
            input=input_text,
            text=True,
            stdout=subprocess.PIPE if quiet else sys.stderr,
            stderr=subprocess.PIPE if quiet else sys.stderr,
            env=env,
            check=False,
        )
    except FileNotFoundError as exc:
        raise OperationFailed(f"command not found: {argv[0]} (install it; see apt-packages.txt)") from exc
    if check and proc.returncode != 0:
        tail = (proc.stderr or "").strip().splitlines()[-5:]
        raise OperationFailed(f"command failed (rc={proc.returncode}): {' '.join(argv)}", details=tail)
    return proc
