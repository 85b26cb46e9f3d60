"""Build the stand-in's Debian packages with dpkg-deb, reproducibly: per version, ``coolwsd`` and its companion.

Why: the lab repository must hold several versions of the same packages so that install, upgrade and
rollback are exercised for real, with what real office packages have and a naive role gets wrong:
Debian revisions (package ``24.04.11.1-1`` while the daemon reports ``24.04.11.1``, as the real
coolwsd's capabilities do) and a companion package that must move in lockstep (``coolwsd-kit``, like
the real ``code-brand``/``collaboraoffice*``): ``coolwsd`` depends on ``coolwsd-kit (= <same version>)``
and the daemon refuses to open documents when the installed kit is another version. The build is
deterministic (fixed SOURCE_DATE_EPOCH, fixed modes and mtimes, root ownership; dpkg-deb sorts the
members) and cached under a hash of this source tree, so `lab up` only rebuilds when a file here changes.
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


KIT_PACKAGE = "coolwsd-kit"
"""The companion package: must be installed at exactly the version of coolwsd."""
KIT_VERSION_FILE = "usr/share/coolwsd-kit/kit-version"
"""What the kit installs: its package version, read by the daemon before opening a document."""


@dataclass(frozen=True)
class StandinVersion:
    """One package version (``upstream-revision``) of the stand-in and how it is broken, if it is.

    ``broken``: "" (healthy), "health" (installs and starts, health endpoints and document loads fail)
    or "documents" (health endpoints answer, but no document opens: the kit fails to start).
    """

    version: str
    broken: str = ""

    @property
    def upstream(self) -> str:
        """The version without its Debian revision: what the daemon reports (``productVersion``)."""
        return self.version.rsplit("-", 1)[0]


VERSIONS: tuple[StandinVersion, ...] = (
    StandinVersion("24.04.10.1-1"),
    StandinVersion("24.04.11.1-1"),
    StandinVersion("24.04.12.1-1", broken="health"),
    StandinVersion("24.04.13.1-1", broken="documents"),
)

NOTES = {
    "": "This build is healthy.",
    "health": (
        "This build is deliberately broken: it installs and starts, but its health\n"
        " endpoints answer 500/503 and no document opens (kit process failed to\n"
        " start), to rehearse a failed upgrade and its rollback."
    ),
    "documents": (
        "This build is deliberately broken: its health endpoints answer, but no\n"
        " document opens (kit process failed to start), to rehearse an upgrade that\n"
        " only a document-open health check catches."
    ),
}

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


def render_daemon(version: str, broken: str) -> str:
    """The daemon's source with its package version and broken mode substituted (as installed)."""
    text = (SOURCE_DIR / "coolwsd.py").read_text()
    text = text.replace('PACKAGE_VERSION = "@PACKAGE_VERSION@"', f'PACKAGE_VERSION = "{version}"', 1)
    return text.replace('BROKEN_BUILD = "@BROKEN_BUILD@"', f'BROKEN_BUILD = "{broken}"', 1)


def deb_name(version: str, package: str = "coolwsd") -> str:
    return f"{package}_{version}_all.deb"


def _write(path: Path, data: bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    path.chmod(mode)


def _finish_tree(root: Path) -> None:
    for path in [root, *root.rglob("*")]:
        if path.is_dir():
            path.chmod(0o755)
        os.utime(path, (SOURCE_DATE_EPOCH, SOURCE_DATE_EPOCH), follow_symlinks=False)


def _md5sums(files: dict[str, bytes]) -> bytes:
    lines = [f"{hashlib.md5(data).hexdigest()}  {dest}\n" for dest, data in files.items()
             if not dest.startswith("etc/")]  # conffiles are not listed in md5sums
    return "".join(sorted(lines, key=lambda s: s.split()[1])).encode()


def _control(template: str, spec: StandinVersion, size: int) -> bytes:
    text = (SOURCE_DIR / "debian" / template).read_text()
    return (
        text.replace("@PACKAGE_VERSION@", spec.version)
        .replace("@INSTALLED_SIZE@", str((size + 1023) // 1024))
        .replace("@BROKEN_NOTE@", NOTES[spec.broken])
    ).encode()


def _stage(root: Path, spec: StandinVersion) -> None:
    """Lay out the coolwsd package tree (payload + DEBIAN/) under ``root`` with fixed modes and mtimes."""
    files: dict[str, bytes] = {}
    for src, dest, mode in PAYLOAD:
        data = render_daemon(spec.version, spec.broken).encode() if src == "coolwsd.py" else (
            SOURCE_DIR / src
        ).read_bytes()
        _write(root / dest, data, mode)
        files[dest] = data
    debian = root / "DEBIAN"
    _write(debian / "control", _control("control.in", spec, sum(map(len, files.values()))), 0o644)
    _write(debian / "conffiles", (SOURCE_DIR / "debian" / "conffiles").read_bytes(), 0o644)
    _write(debian / "md5sums", _md5sums(files), 0o644)
    for script in SCRIPTS:
        _write(debian / script, (SOURCE_DIR / "debian" / script).read_bytes(), 0o755)
    _finish_tree(root)


def _stage_kit(root: Path, spec: StandinVersion) -> None:
    """Lay out the companion package: its version file and a README, no maintainer scripts."""
    files = {
        KIT_VERSION_FILE: f"{spec.version}\n".encode(),
        "usr/share/doc/coolwsd-kit/README.md": (SOURCE_DIR / "README.md").read_bytes(),
    }
    for dest, data in files.items():
        _write(root / dest, data, 0o644)
    debian = root / "DEBIAN"
    _write(debian / "control", _control("control-kit.in", spec, sum(map(len, files.values()))), 0o644)
    _write(debian / "md5sums", _md5sums(files), 0o644)
    _finish_tree(root)


def build_deb(spec: StandinVersion, out_path: Path, package: str = "coolwsd") -> Path:
    """Build one package (``coolwsd`` or the kit) into ``out_path`` (written atomically)."""
    with tempfile.TemporaryDirectory(prefix="coolwsd-standin-") as tmp:
        root = Path(tmp) / "root"
        (_stage_kit if package == KIT_PACKAGE else _stage)(root, spec)
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
    """Build both packages of every version into ``out_dir/standin-<source hash>/``; return the .deb paths.

    Skips the build when that directory already holds all the packages (the source is unchanged), and
    removes cache directories of older source trees.
    """
    cache = out_dir / f"standin-{source_hash()[:16]}"
    wanted = [(spec, package, cache / deb_name(spec.version, package))
              for spec in VERSIONS for package in ("coolwsd", KIT_PACKAGE)]
    debs = [deb for _spec, _package, deb in wanted]
    if all(deb.is_file() for deb in debs):
        return debs
    for spec, package, deb in wanted:
        if not deb.is_file():
            build_deb(spec, deb, package)
    for stale in out_dir.glob("standin-*"):
        if stale != cache and stale.is_dir():
            shutil.rmtree(stale)
    return debs
