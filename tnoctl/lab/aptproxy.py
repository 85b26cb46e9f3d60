"""Lab-side servers on the bridge address: apt-cacher-ng (:3142) and the local apt repo (:8081).

apt-cacher-ng runs on a private copy of its configuration with the Debian `Remap-debrep` /
`Remap-secdeb` lines commented out: with them it rewrites deb.debian.org to its default backend
ftp.debian.org, which may not resolve (recipe failure 1). Its cache dir lives under the lab cache
dir so it survives labs and CI runs. Both servers are PID-tracked (tnoctl.lab.procs) and run as
unprivileged users via setpriv (which execs, so the recorded PID is the server's).
"""

from __future__ import annotations

import pwd
import re
import shutil
import socket
import sys
import time
from pathlib import Path

from tnoctl.errors import OperationFailed
from tnoctl.lab import procs
from tnoctl.lab.net import GATEWAY

ACNG_PORT = 3142
REPO_PORT = 8081
ACNG_USER = "apt-cacher-ng"
REPO_USER = "nobody"


def disable_remaps(conf_text: str) -> str:
    """Comment out the Remap-debrep/Remap-secdeb lines of acng.conf (pure)."""
    return re.sub(r"(?m)^(Remap-(?:debrep|secdeb):)", r"#\1", conf_text)


def wait_port(host: str, port: int, timeout: float, record: procs.ProcRecord | None = None) -> bool:
    """Poll a TCP port until it accepts; stop early if `record`'s process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            if record is not None and not procs.alive(record):
                return False
            time.sleep(0.05)
    return False


def _setpriv(user: str) -> list[str]:
    """argv prefix that drops to `user` and execs (no extra process)."""
    entry = pwd.getpwnam(user)
    return ["setpriv", f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--init-groups", "--"]


def _chown_tree(path: Path, user: str) -> None:
    entry = pwd.getpwnam(user)
    shutil.chown(path, entry.pw_uid, entry.pw_gid)
    for sub in path.rglob("*"):
        shutil.chown(sub, entry.pw_uid, entry.pw_gid)


def start_acng(run_dir: Path, cache_dir: Path) -> procs.ProcRecord:
    """Start apt-cacher-ng on 198.18.0.1:3142 (foreground, detached); return its record."""
    if shutil.which("apt-cacher-ng") is None and not Path("/usr/sbin/apt-cacher-ng").exists():
        raise OperationFailed("apt-cacher-ng is not installed (apt-get install apt-cacher-ng)")
    conf = run_dir / "conf"
    shutil.rmtree(conf, ignore_errors=True)
    shutil.copytree("/etc/apt-cacher-ng", conf, symlinks=True)
    acng_conf = conf / "acng.conf"
    acng_conf.write_text(disable_remaps(acng_conf.read_text()))
    cache_dir.mkdir(parents=True, exist_ok=True)
    _chown_tree(run_dir, ACNG_USER)
    shutil.chown(cache_dir, ACNG_USER, ACNG_USER)
    argv = [
        *_setpriv(ACNG_USER),
        "/usr/sbin/apt-cacher-ng",
        "-c",
        str(conf),
        "ForeGround=1",
        f"BindAddress={GATEWAY}",
        f"Port={ACNG_PORT}",
        f"CacheDir={cache_dir}",
        f"LogDir={run_dir}",
        f"PidFile={run_dir / 'pid'}",
        f"SocketPath={run_dir / 'socket'}",
    ]
    pid = procs.spawn_detached(argv, run_dir / "console.log")
    record = procs.record_for(pid, marker=f"BindAddress={GATEWAY}", program="apt-cacher-ng")
    if not wait_port(GATEWAY, ACNG_PORT, 15, record):
        raise OperationFailed(f"apt-cacher-ng did not listen on {GATEWAY}:{ACNG_PORT} (see {run_dir})")
    return record


def start_repo_server(repo_dir: Path, log_path: Path) -> procs.ProcRecord:
    """Serve the local apt repo over HTTP on 198.18.0.1:8081 as user nobody; return its record."""
    python = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable
    argv = [
        *_setpriv(REPO_USER),
        python,
        "-m",
        "http.server",
        str(REPO_PORT),
        "--bind",
        GATEWAY,
        "--directory",
        str(repo_dir),
    ]
    pid = procs.spawn_detached(argv, log_path)
    record = procs.record_for(pid, marker="http.server", program=Path(python).name)
    if not wait_port(GATEWAY, REPO_PORT, 15, record):
        raise OperationFailed(f"the local apt repo server did not listen on {GATEWAY}:{REPO_PORT}")
    return record
