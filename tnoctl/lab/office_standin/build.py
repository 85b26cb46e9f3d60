"""Build the stand-in's Debian packages (coolwsd_<version>_all.deb) with dpkg-deb, reproducibly.

Why: the lab repository must hold several versions of the same package so that install, upgrade and
rollback are exercised for real. The build is deterministic (fixed SOURCE_DATE_EPOCH, fixed modes and
mtimes, root ownership; dpkg-deb sorts the members) and cached under a hash of this source tree, so
`lab up` only rebuilds when a file here changes.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

SOURCE_DIR = Path(__file__).resolve().parent
SOURCE_DATE_EPOCH = 1735689600  # 2025-01-01T00:00:00Z: fixed so every build is byte-identical


@dataclass(frozen=True)
class StandinVersion:
    """One package version of the stand-in and whether it is the deliberately broken build."""

    version: str
    broken: bool = False


VERSIONS: tuple[StandinVersion, ...] = (
    StandinVersion("24.04.10.1"),
    StandinVersion("24.04.11.1"),
    StandinVersion("24.04.12.1", broken=True),
)

BROKEN_NOTE = (
    "This build is deliberately broken: it installs and starts, but its health\n"
    " endpoints answer 500/503 (kit process failed to start), to rehearse a failed\n"
    " upgrade and its rollback."
)
GOOD_NOTE = "This build is healthy."

# (source file relative to SOURCE_DIR, path in the package, mode)
PAYLOAD: tuple[tuple[str, str, int], ...] = (
    ("coolwsd.py", "usr/bin/coolwsd", 0o755),
    ("coolwsd.service", "lib/systemd/system/coolwsd.service", 0o644),
    ("coolwsd.xml", "etc/coolwsd/coolwsd.xml", 0o640),
    ("README.md", "usr/share/doc/coolwsd/README.md", 0o644),
)
SCRIPTS = ("postinst", "prerm", "postrm")


def source_hash() -> str:
    """SHA-256 over every file of the stand-in source tree (names and contents), build code included."""
    digest = hashlib.sha256()
    for path in sorted(SOURCE_DIR.rglob("*")):
        if not path.is_file() or "__pycache__" in path.parts or path.suffix == ".pyc":
            continue
        digest.update(path.relative_to(SOURCE_DIR).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def render_daemon(version: str, broken: bool) -> str:
    """The daemon's source with its package version and broken flag substituted (as installed)."""
    text = (SOURCE_DIR / "coolwsd.py").read_text()
    text = text.replace('PACKAGE_VERSION = "@PACKAGE_VERSION@"', f'PACKAGE_VERSION = "{version}"', 1)
    return text.replace('BROKEN_BUILD = "@BROKEN_BUILD@"', f'BROKEN_BUILD = "{"1" if broken else "0"}"', 1)


def deb_name(version: str) -> str:
    return f"coolwsd_{version}_all.deb"


def _write(path: Path, data: bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    path.chmod(mode)


def _stage(root: Path, spec: StandinVersion) -> None:
    """Lay out the package tree (payload + DEBIAN/) under ``root`` with fixed modes and mtimes."""
    md5sums: list[str] = []
    size = 0
    for src, dest, mode in PAYLOAD:
        data = render_daemon(spec.version, spec.broken).encode() if src == "coolwsd.py" else (
            SOURCE_DIR / src
        ).read_bytes()
        _write(root / dest, data, mode)
        size += len(data)
        if not dest.startswith("etc/"):  # conffiles are not listed in md5sums
            md5sums.append(f"{hashlib.md5(data).hexdigest()}  {dest}\n")
    control = (SOURCE_DIR / "debian" / "control.in").read_text()
    control = (
        control.replace("@PACKAGE_VERSION@", spec.version)
        .replace("@INSTALLED_SIZE@", str((size + 1023) // 1024))
        .replace("@BROKEN_NOTE@", BROKEN_NOTE if spec.broken else GOOD_NOTE)
    )
    debian = root / "DEBIAN"
    _write(debian / "control", control.encode(), 0o644)
    _write(debian / "conffiles", (SOURCE_DIR / "debian" / "conffiles").read_bytes(), 0o644)
    _write(debian / "md5sums", "".join(sorted(md5sums, key=lambda s: s.split()[1])).encode(), 0o644)
    for script in SCRIPTS:
        _write(debian / script, (SOURCE_DIR / "debian" / script).read_bytes(), 0o755)
    for path in [root, *root.rglob("*")]:
        if path.is_dir():
            path.chmod(0o755)
        os.utime(path, (SOURCE_DATE_EPOCH, SOURCE_DATE_EPOCH), follow_symlinks=False)


def build_deb(spec: StandinVersion, out_path: Path) -> Path:
    """Build one package into ``out_path`` (written atomically)."""
    with tempfile.TemporaryDirectory(prefix="coolwsd-standin-") as tmp:
        root = Path(tmp) / "root"
        _stage(root, spec)
        tmp_deb = Path(tmp) / out_path.name
        env = {**os.environ, "SOURCE_DATE_EPOCH": str(SOURCE_DATE_EPOCH), "LC_ALL": "C.UTF-8"}
        subprocess.run(
            ["dpkg-deb", "--root-owner-group", "-Zxz", "--build", str(root), str(tmp_deb)],
            check=True, env=env, capture_output=True, text=True,
        )
        out_path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(tmp_deb, out_path.with_name(f".{out_path.name}.tmp"))
        os.replace(out_path.with_name(f".{out_path.name}.tmp"), out_path)
    return out_path


def build_debs(out_dir: Path) -> list[Path]:
    """Build every stand-in version into ``out_dir/standin-<source hash>/`` and return the .deb paths.

    Skips the build when that directory already holds all the packages (the source is unchanged), and
    removes cache directories of older source trees.
    """
    cache = out_dir / f"standin-{source_hash()[:16]}"
    debs = [cache / deb_name(spec.version) for spec in VERSIONS]
    if all(deb.is_file() for deb in debs):
        return debs
    for spec, deb in zip(VERSIONS, debs, strict=True):
        if not deb.is_file():
            build_deb(spec, deb)
    for stale in out_dir.glob("standin-*"):
        if stale != cache and stale.is_dir():
            shutil.rmtree(stale)
    return debs
