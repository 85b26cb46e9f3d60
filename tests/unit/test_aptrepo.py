"""The local signed apt repository: layout, signatures (gpgv), idempotency, and real apt reading it."""

from __future__ import annotations

import gzip
import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tnoctl.lab import aptrepo

VERSIONS = ["24.04.10.1-1", "24.04.11.1-1", "24.04.12.1-1", "24.04.13.1-1"]
PACKAGES = ("coolwsd", "coolwsd-kit")


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(cache_dir, repo_dir, keyring) of a repository built once for this module."""
    base = tmp_path_factory.mktemp("apt")
    cache, repo_dir = base / "cache", base / "lab" / "apt" / "repo"
    keyring = aptrepo.ensure_repo(cache, repo_dir)
    return cache, repo_dir, keyring


def _snapshot(root: Path) -> dict[str, tuple[int, bytes]]:
    """Every file's mtime and content, except gpg's own housekeeping files in GNUPGHOME."""
    return {
        str(p): (p.stat().st_mtime_ns, p.read_bytes())
        for p in sorted(root.rglob("*"))
        if p.is_file() and "gnupg" not in p.parts
    }


def _gpgv(keyring: Path, *files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["gpgv", "--keyring", str(keyring), *map(str, files)], capture_output=True,
                          text=True, check=False)


def test_layout_and_keyring(repo: tuple[Path, Path, Path]) -> None:
    _, repo_dir, keyring = repo
    assert keyring == repo_dir.parent / "tno-lab-archive-keyring.gpg"
    assert not keyring.read_bytes().startswith(b"-----BEGIN")  # binary, as signed-by wants
    pool = repo_dir / "pool/main/c/coolwsd"
    assert sorted(p.name for p in pool.iterdir()) == sorted(f"{p}_{v}_all.deb" for v in VERSIONS for p in PACKAGES)
    gnupg = repo_dir.parent / "gnupg"
    assert gnupg.is_dir() and (gnupg.stat().st_mode & 0o777) == 0o700
    dist = repo_dir / "dists/tno-lab"
    for arch in ("all", "amd64"):
        packages = (dist / f"main/binary-{arch}/Packages").read_bytes()
        assert gzip.decompress((dist / f"main/binary-{arch}/Packages.gz").read_bytes()) == packages
        text = packages.decode()
        for v in VERSIONS:
            assert f"Version: {v}\n" in text
            assert f"Filename: pool/main/c/coolwsd/coolwsd_{v}_all.deb\n" in text
            assert f"Filename: pool/main/c/coolwsd/coolwsd-kit_{v}_all.deb\n" in text
        assert text.count("Package: coolwsd\n") == len(VERSIONS)
        assert text.count("Package: coolwsd-kit\n") == len(VERSIONS)
    flat = repo_dir / "flat"
    flat_text = (flat / "Packages").read_text()
    assert "Filename: ./coolwsd_24.04.11.1-1_all.deb\n" in flat_text
    assert "Components:" not in (flat / "Release").read_text()
    assert _gpgv(keyring, flat / "InRelease").returncode == 0


def test_release_fields_and_hashes(repo: tuple[Path, Path, Path]) -> None:
    dist = repo[1] / "dists/tno-lab"
    release = (dist / "Release").read_text()
    fields = dict(line.split(": ", 1) for line in release.splitlines() if ": " in line and line[0] != " ")
    assert fields["Suite"] == "tno-lab" and fields["Codename"] == "tno-lab"
    assert fields["Architectures"] == "amd64 all" and fields["Components"] == "main"
    sha_section = release.split("SHA256:\n", 1)[1].splitlines()
    assert len(sha_section) == 4
    for line in sha_section:
        digest, size, name = line.split()
        data = (dist / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == digest and len(data) == int(size)


def test_signatures_verify_with_gpgv(repo: tuple[Path, Path, Path]) -> None:
    _, repo_dir, keyring = repo
    dist = repo_dir / "dists/tno-lab"
    inrelease = _gpgv(keyring, dist / "InRelease")
    assert inrelease.returncode == 0, inrelease.stderr
    assert "tnoctl lab apt repository" in inrelease.stderr
    assert _gpgv(keyring, dist / "Release.gpg", dist / "Release").returncode == 0


def test_second_call_changes_nothing(repo: tuple[Path, Path, Path]) -> None:
    cache, repo_dir, keyring = repo
    before = _snapshot(repo_dir.parent) | _snapshot(cache)
    assert aptrepo.ensure_repo(cache, repo_dir) == keyring
    assert _snapshot(repo_dir.parent) | _snapshot(cache) == before


def test_tampered_release_is_detected_and_resigned(tmp_path: Path, repo: tuple[Path, Path, Path]) -> None:
    cache = repo[0]
    repo_dir = tmp_path / "apt" / "repo"
    keyring = aptrepo.ensure_repo(cache, repo_dir)
    dist = repo_dir / "dists/tno-lab"
    (dist / "Release").write_text((dist / "Release").read_text().replace("Suite: tno-lab", "Suite: evil"))
    assert _gpgv(keyring, dist / "Release.gpg", dist / "Release").returncode != 0
    assert not aptrepo.signatures_valid(keyring, dist)
    aptrepo.ensure_repo(cache, repo_dir)
    assert aptrepo.signatures_valid(keyring, dist)
    assert "Suite: tno-lab" in (dist / "Release").read_text()


@pytest.fixture()
def http_server(repo: tuple[Path, Path, Path]) -> Iterator[int]:
    """Serve the repository with python's http.server on 127.0.0.1 (random port); stopped by PID."""
    proc = subprocess.Popen(
        [sys.executable, "-u", "-m", "http.server", "--bind", "127.0.0.1", "0"],
        cwd=repo[1], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()  # "Serving HTTP on 127.0.0.1 port N (http://127.0.0.1:N/) ..."
    port = int(line.split(" port ")[1].split()[0])
    try:
        yield port
    finally:
        proc.terminate()
        proc.wait()


def render_sources(url: str, suite: str, components: list[str], keyring: Path) -> str:
    """The office role's deb822 source (roles/tno_office/templates/tno-office.sources.j2), rendered."""
    import jinja2

    root = Path(__file__).resolve().parents[2] / "roles/tno_office/templates"
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(root), trim_blocks=True)
    env.filters["comment"] = lambda text: f"# {text}"
    return env.get_template("tno-office.sources.j2").render(
        ansible_managed="managed", tno_office_apt_repo_url=url, tno_office_apt_suite=suite,
        tno_office_apt_components=components, tno_office_apt_keyring=str(keyring))


def _apt(tmp_path: Path, port: int, keyring: Path, *args: str, deb822: str = "") -> subprocess.CompletedProcess[str]:
    """Run an apt command against only this repository, with state and cache under tmp_path."""
    sources = tmp_path / "sources.list"
    sources.write_text("" if deb822 else f"deb [signed-by={keyring}] http://127.0.0.1:{port} tno-lab main\n")
    (tmp_path / "parts").mkdir(exist_ok=True)
    if deb822:
        (tmp_path / "parts" / "tno-office.sources").write_text(deb822)
    (tmp_path / "lists/partial").mkdir(parents=True, exist_ok=True)
    (tmp_path / "cache/archives/partial").mkdir(parents=True, exist_ok=True)
    status = tmp_path / "status"
    status.touch()
    opts = {
        "Dir::Etc::SourceList": str(sources),
        "Dir::Etc::SourceParts": str(tmp_path / "parts"),
        "Dir::Etc::Preferences": str(tmp_path / "no-preferences"),
        "Dir::Etc::PreferencesParts": str(tmp_path / "no-parts"),
        "Dir::State": str(tmp_path),
        "Dir::State::Lists": str(tmp_path / "lists"),
        "Dir::State::status": str(status),
        "Dir::Cache": str(tmp_path / "cache"),
        "APT::Architecture": "amd64",
        "APT::Architectures": "amd64",
        "APT::Sandbox::User": "root",
        "Acquire::http::Proxy": "DIRECT",
        "Acquire::Languages": "none",
        "Debug::NoLocking": "1",
    }
    argv = [args[0], *(f"-o{k}={v}" for k, v in opts.items()), *args[1:]]
    return subprocess.run(argv, capture_output=True, text=True, check=False,
                          env={**os.environ, "LC_ALL": "C.UTF-8"}, cwd=tmp_path)


def test_apt_reads_the_signed_repository(tmp_path: Path, repo: tuple[Path, Path, Path], http_server: int) -> None:
    keyring = repo[2]
    update = _apt(tmp_path, http_server, keyring, "apt-get", "update")
    assert update.returncode == 0, update.stdout + update.stderr
    assert "W:" not in update.stderr and "E:" not in update.stderr, update.stderr
    assert list((tmp_path / "lists").glob("*tno-lab_InRelease"))  # the signed index was accepted
    policy = _apt(tmp_path, http_server, keyring, "apt-cache", "policy", "coolwsd")
    assert policy.returncode == 0, policy.stderr
    assert "Candidate: 24.04.13.1-1" in policy.stdout
    for v in VERSIONS:
        assert f" {v} 500" in policy.stdout
    show = _apt(tmp_path, http_server, keyring, "apt-cache", "show", "coolwsd=24.04.10.1-1")
    assert "NOT Collabora Online" in show.stdout
    download = _apt(tmp_path, http_server, keyring, "apt-get", "download", "coolwsd=24.04.10.1-1")
    assert download.returncode == 0, download.stderr
    assert (tmp_path / "coolwsd_24.04.10.1-1_all.deb").read_bytes() == (
        repo[1] / "pool/main/c/coolwsd/coolwsd_24.04.10.1-1_all.deb"
    ).read_bytes()


def test_apt_refuses_repository_signed_by_another_key(
    tmp_path: Path, repo: tuple[Path, Path, Path], http_server: int
) -> None:
    other = aptrepo.SigningKey(tmp_path / "other-gnupg")
    try:
        fpr = other.ensure()
        wrong = tmp_path / "wrong-keyring.gpg"
        wrong.write_bytes(other.export(fpr))
    finally:
        other.stop_agent()
    update = _apt(tmp_path, http_server, wrong, "apt-get", "update")
    assert "NO_PUBKEY" in update.stderr or "not signed" in update.stderr, update.stderr
    policy = _apt(tmp_path, http_server, wrong, "apt-cache", "policy", "coolwsd")
    assert "24.04.10.1-1" not in policy.stdout


def test_loosened_gnupg_permissions_are_restored(repo: tuple[Path, Path, Path]) -> None:
    """Something widening the repo tree's permissions must not leave the signing key world-readable."""
    cache, repo_dir, _ = repo
    gnupg = repo_dir.parent / "gnupg"
    for path in [gnupg, *gnupg.rglob("*")]:
        if not path.is_socket():
            path.chmod(0o755 if path.is_dir() else 0o644)
    aptrepo.ensure_repo(cache, repo_dir)
    keys = list((gnupg / "private-keys-v1.d").iterdir())
    assert keys and all(k.stat().st_mode & 0o777 == 0o600 for k in keys)
    assert gnupg.stat().st_mode & 0o777 == 0o700


@pytest.mark.parametrize(("path", "suite", "components"), [("", "tno-lab", ["main"]), ("/flat/", "./", [])])
def test_role_source_reads_component_and_flat_layouts(
    tmp_path: Path, repo: tuple[Path, Path, Path], http_server: int, path: str, suite: str, components: list[str]
) -> None:
    """The role's deb822 source: Components for the dists/ layout, none (suite ./) for the flat one."""
    keyring = repo[2]
    text = render_sources(f"http://127.0.0.1:{http_server}{path}", suite, components, keyring)
    assert ("Components:" in text) == bool(components)
    update = _apt(tmp_path, http_server, keyring, "apt-get", "update", deb822=text)
    assert update.returncode == 0 and "W:" not in update.stderr, update.stdout + update.stderr
    madison = _apt(tmp_path, http_server, keyring, "apt-cache", "madison", "coolwsd-kit", deb822=text)
    assert "coolwsd-kit | 24.04.11.1-1 |" in madison.stdout, madison.stdout + madison.stderr
