"""The lab's local, signed apt repository holding the office stand-in packages, in two layouts.

Why: production trusts Collabora's repository through a ``signed-by`` keyring; the lab does exactly the
same with its own repository and a throw-away signing key, so the office role's apt code path
(keyring, source line, pinned version, signature checking on) is the production one.

Layout under ``repo_dir`` (served over HTTP by the lab at http://198.18.0.1:8081/)::

    pool/main/c/coolwsd/{coolwsd,coolwsd-kit}_<version>_all.deb
    dists/tno-lab/main/binary-{all,amd64}/Packages(.gz)        component layout: suite tno-lab, component main
    dists/tno-lab/Release, InRelease, Release.gpg
    flat/{coolwsd,coolwsd-kit}_<version>_all.deb               flat layout (no dists/, no components),
    flat/Packages(.gz), flat/Release, InRelease, Release.gpg   as some vendor repositories and mirrors are:
                                                               ``URIs: http://198.18.0.1:8081/flat/``, ``Suites: ./``

The signing key lives in a private GNUPGHOME at ``repo_dir/../gnupg``; its public keyring (binary, as
apt's ``signed-by`` wants it) is exported to ``repo_dir/../tno-lab-archive-keyring.gpg``.
Idempotent: with unchanged sources a second call writes nothing and takes a fraction of a second.
"""

from __future__ import annotations

import email.utils
import gzip
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from tnoctl.errors import OperationFailed
from tnoctl.lab.office_standin.build import build_debs

SUITE = "tno-lab"
COMPONENT = "main"
ARCHITECTURES = ("amd64", "all")
KEY_UID = "tnoctl lab apt repository (throw-away) <apt@lab.test>"
KEYRING_NAME = "tno-lab-archive-keyring.gpg"
FLAT_DIR = "flat"
"""The flat layout's directory under the repository root (its Suites entry is ``./``)."""


def _write_if_changed(path: Path, data: bytes) -> bool:
    """Atomically write ``data`` unless the file already holds it; True if written."""
    if path.is_file() and path.read_bytes() == data:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.chmod(0o644)
    os.replace(tmp, path)
    return True


def _run(argv: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    """Run a tool; turn a failure into OperationFailed with its stderr (no traceback for the user)."""
    proc = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise OperationFailed(f"{argv[0]} failed (rc={proc.returncode}): {proc.stderr.strip()[-500:]}")
    return proc.stdout


class SigningKey:
    """The lab repository's signing key in a private GNUPGHOME (generated once, no passphrase)."""

    def __init__(self, gnupg_home: Path) -> None:
        self.home = gnupg_home
        self.env = {**os.environ, "GNUPGHOME": str(gnupg_home), "LC_ALL": "C.UTF-8"}

    def _gpg(self, *args: str) -> str:
        return _run(["gpg", "--batch", "--no-tty", "--pinentry-mode", "loopback", "--passphrase", "", *args],
                    env=self.env)

    def fingerprint(self) -> str | None:
        if not self.home.is_dir():
            return None
        proc = subprocess.run(
            ["gpg", "--batch", "--with-colons", "--list-secret-keys"],
            env=self.env, capture_output=True, text=True, check=False,
        )
        for line in proc.stdout.splitlines():
            if line.startswith("fpr:"):
                return line.split(":")[9]
        return None

    def ensure(self) -> str:
        """Return the key's fingerprint, generating an ed25519 signing key on first use."""
        self.home.mkdir(parents=True, exist_ok=True)
        for path in [self.home, *self.home.rglob("*")]:  # private key material: owner only
            if path.is_symlink() or path.is_socket():
                continue
            wanted = 0o700 if path.is_dir() else 0o600
            if path.stat().st_mode & 0o777 != wanted:
                path.chmod(wanted)
        fpr = self.fingerprint()
        if fpr is None:
            self._gpg("--quick-gen-key", KEY_UID, "ed25519", "sign", "never")
            fpr = self.fingerprint()
            if fpr is None:
                raise OperationFailed(f"gpg did not create a signing key in {self.home}")
        return fpr

    def export(self, fpr: str) -> bytes:
        """The public key as a binary keyring (what apt's signed-by= expects)."""
        proc = subprocess.run(["gpg", "--batch", "--export", fpr], env=self.env, capture_output=True, check=False)
        if proc.returncode != 0 or not proc.stdout:
            raise OperationFailed(f"gpg --export failed for the lab repository key in {self.home}")
        return proc.stdout

    def sign(self, fpr: str, release: Path) -> None:
        """Write InRelease (clearsigned) and Release.gpg (detached, armored) next to ``release``."""
        common = ("--yes", "--digest-algo", "SHA256", "--local-user", fpr)
        self._gpg(*common, "--clearsign", "--output", str(release.with_name("InRelease")), str(release))
        self._gpg(*common, "--armor", "--detach-sign", "--output", str(release.with_name("Release.gpg")),
                  str(release))

    def stop_agent(self) -> None:
        """Stop the gpg-agent gpg started for this GNUPGHOME (only that one)."""
        subprocess.run(["gpgconf", "--kill", "gpg-agent"], env=self.env, capture_output=True, check=False)


def signatures_valid(keyring: Path, dist: Path) -> bool:
    """True if InRelease and Release.gpg verify against ``keyring`` with gpgv (what apt does)."""
    if not all((dist / n).is_file() for n in ("Release", "InRelease", "Release.gpg")) or not keyring.is_file():
        return False
    checks = (
        ["gpgv", "--keyring", str(keyring), str(dist / "InRelease")],
        ["gpgv", "--keyring", str(keyring), str(dist / "Release.gpg"), str(dist / "Release")],
    )
    return all(subprocess.run(c, capture_output=True, check=False).returncode == 0 for c in checks)


def _packages_index(repo_dir: Path, subdir: str = "pool") -> bytes:
    """The Packages index of ``subdir``, from apt-ftparchive (paths relative to ``repo_dir``)."""
    return _run(["apt-ftparchive", "packages", subdir], cwd=repo_dir).encode()


def _release(files: dict[str, bytes], flat: bool = False) -> bytes:
    """A Release file for ``files`` (path relative to dists/<suite>, or to the flat directory → content)."""
    lines = [
        "Origin: tnoctl lab",
        "Label: tnoctl lab stand-in packages (not Collabora Online)",
        f"Suite: {SUITE}",
        f"Codename: {SUITE}",
        f"Date: {email.utils.formatdate(usegmt=True)}",
        f"Architectures: {' '.join(ARCHITECTURES)}",
        *([] if flat else [f"Components: {COMPONENT}"]),
        "Description: tnoctl lab repository: the coolwsd lab stand-in (NOT Collabora Online)",
    ]
    for field, algo in (("MD5Sum", hashlib.md5), ("SHA256", hashlib.sha256)):
        lines.append(f"{field}:")
        lines += [f" {algo(data).hexdigest()} {len(data):>8} {name}" for name, data in sorted(files.items())]
    return ("\n".join(lines) + "\n").encode()


def _sync_pool(debs: list[Path], pool: Path, keep: tuple[str, ...] = ()) -> bool:
    """Make ``pool`` hold exactly ``debs`` (copy new/changed, remove others but ``keep``); True if changed."""
    pool.mkdir(parents=True, exist_ok=True)
    changed = False
    wanted = {deb.name for deb in debs} | set(keep)
    for deb in debs:
        dest = pool / deb.name
        if dest.is_file() and dest.stat().st_size == deb.stat().st_size and dest.read_bytes() == deb.read_bytes():
            continue
        tmp = pool / f".{deb.name}.tmp"
        shutil.copyfile(deb, tmp)
        tmp.chmod(0o644)
        os.replace(tmp, dest)
        changed = True
    for stale in pool.iterdir():
        if stale.name not in wanted and stale.is_file():
            stale.unlink()
            changed = True
    return changed


def _make_world_readable(repo_dir: Path) -> None:
    """Directories 0755 whatever the umask: the lab serves the tree as an unprivileged user."""
    for path in [repo_dir, *repo_dir.rglob("*")]:
        if path.is_dir() and path.stat().st_mode & 0o777 != 0o755:
            path.chmod(0o755)


def _publish(key: SigningKey, fpr: str, keyring: Path, dist: Path, files: dict[str, bytes], changed: bool,
             flat: bool) -> None:
    """Write the indexes under ``dist`` and (re-)sign its Release when anything changed or does not verify."""
    for name, data in files.items():
        changed |= _write_if_changed(dist / name, data)
    if changed or not signatures_valid(keyring, dist):
        with tempfile.TemporaryDirectory(dir=dist, prefix=".release-") as tmp:
            staged = Path(tmp) / "Release"
            staged.write_bytes(_release(files, flat))
            key.sign(fpr, staged)
            for name in ("Release", "InRelease", "Release.gpg"):
                (Path(tmp) / name).chmod(0o644)
                os.replace(Path(tmp) / name, dist / name)
        if not signatures_valid(keyring, dist):
            raise OperationFailed(f"the signed lab repository in {dist} does not verify with {keyring}")


def ensure_repo(cache_dir: Path, repo_dir: Path) -> Path:
    """Build (cached) the stand-in packages, lay out and sign both layouts; return the keyring path.

    ``cache_dir`` keeps the built .debs (keyed by the stand-in source hash). The signing key is created
    once in ``repo_dir/../gnupg``; the indexes are re-generated and re-signed only when the packages
    changed, an index is missing, or the signatures no longer verify with the exported keyring.
    """
    debs = build_debs(cache_dir / "debs")
    keyring = repo_dir.parent / KEYRING_NAME
    key = SigningKey(repo_dir.parent / "gnupg")
    fpr = key.ensure()
    try:
        keyring_changed = _write_if_changed(keyring, key.export(fpr))
        pool_changed = _sync_pool(debs, repo_dir / "pool" / COMPONENT / "c" / "coolwsd")
        packages = _packages_index(repo_dir)
        packages_gz = gzip.compress(packages, compresslevel=9, mtime=0)
        files: dict[str, bytes] = {}
        for arch in ARCHITECTURES:
            files[f"{COMPONENT}/binary-{arch}/Packages"] = packages
            files[f"{COMPONENT}/binary-{arch}/Packages.gz"] = packages_gz
        _publish(key, fpr, keyring, repo_dir / "dists" / SUITE, files, pool_changed or keyring_changed, False)

        flat = repo_dir / FLAT_DIR
        flat_changed = _sync_pool(debs, flat, keep=("Packages", "Packages.gz", "Release", "InRelease",
                                                    "Release.gpg"))
        flat_packages = _run(["apt-ftparchive", "packages", "."], cwd=flat).encode()
        flat_files = {"Packages": flat_packages, "Packages.gz": gzip.compress(flat_packages, compresslevel=9,
                                                                              mtime=0)}
        _publish(key, fpr, keyring, flat, flat_files, flat_changed or keyring_changed, True)
        _make_world_readable(repo_dir)
    finally:
        key.stop_agent()
    return keyring
