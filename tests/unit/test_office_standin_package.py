"""The stand-in's Debian packages: fields, payload, conffile, maintainer scripts, determinism, cache."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from tnoctl.lab.office_standin import build

VERSIONS = ["24.04.10.1-1", "24.04.11.1-1", "24.04.12.1-1", "24.04.13.1-1"]
BROKEN = {"24.04.12.1-1": "health", "24.04.13.1-1": "documents"}


@pytest.fixture(scope="module")
def debs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return build.build_debs(tmp_path_factory.mktemp("debs"))


def _field(deb: Path, name: str) -> str:
    return subprocess.run(["dpkg-deb", "-f", str(deb), name], capture_output=True, text=True,
                          check=True).stdout.strip()


def _members(deb: Path) -> dict[str, tarfile.TarInfo]:
    proc = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], capture_output=True, check=True)
    tmp = deb.parent / f"{deb.name}.tar"
    tmp.write_bytes(proc.stdout)
    with tarfile.open(tmp) as tar:
        return {m.name.removeprefix("./"): m for m in tar.getmembers()}


def test_versions_with_revisions_and_a_companion_package(debs: list[Path]) -> None:
    assert [d.name for d in debs] == [f"{p}_{v}_all.deb" for v in VERSIONS for p in ("coolwsd", "coolwsd-kit")]
    assert [_field(d, "Version") for d in debs] == [v for v in VERSIONS for _ in range(2)]


@pytest.mark.parametrize("index", [0, 1, 2, 3])
def test_control_fields(debs: list[Path], index: int) -> None:
    deb, kit, version = debs[2 * index], debs[2 * index + 1], VERSIONS[index]
    assert _field(deb, "Package") == "coolwsd"
    assert _field(deb, "Architecture") == "all"
    assert _field(deb, "Depends") == f"python3 (>= 3.9), adduser, coolwsd-kit (= {version})"  # lockstep
    description = _field(deb, "Description")
    assert description.startswith("tnoctl lab stand-in for coolwsd — NOT Collabora Online")
    assert "cannot be fetched in this environment" in description
    assert ("deliberately broken" in description) == (version in BROKEN)
    assert _field(kit, "Package") == "coolwsd-kit" and _field(kit, "Version") == version
    assert "NOT Collabora Online" in _field(kit, "Description")
    kit_files = _members(kit)
    assert "usr/share/coolwsd-kit/kit-version" in kit_files


def test_payload_conffile_and_scripts(debs: list[Path]) -> None:
    members = _members(debs[0])
    assert members["usr/bin/coolwsd"].mode == 0o755
    assert members["lib/systemd/system/coolwsd.service"].mode == 0o644
    assert members["etc/coolwsd/coolwsd.xml"].mode == 0o640
    assert "usr/share/doc/coolwsd/README.md" in members
    assert {m.uname for m in members.values()} == {"root"}
    info = subprocess.run(["dpkg-deb", "-I", str(debs[0])], capture_output=True, text=True, check=True).stdout
    for script in ("postinst", "prerm", "postrm", "conffiles", "md5sums"):
        assert f" {script}" in info
    conffiles = subprocess.run(["dpkg-deb", "-I", str(debs[0]), "conffiles"], capture_output=True, text=True,
                               check=True).stdout
    assert conffiles.split() == ["/etc/coolwsd/coolwsd.xml"]
    postinst = subprocess.run(["dpkg-deb", "-I", str(debs[0]), "postinst"], capture_output=True, text=True,
                              check=True).stdout
    assert "adduser --quiet --system --group --home /opt/cool" in postinst
    assert "deb-systemd-invoke $_action 'coolwsd.service'" in postinst
    assert "[ -d /run/systemd/system ]" in postinst


@pytest.mark.parametrize("script", build.SCRIPTS)
def test_maintainer_scripts_parse(script: str) -> None:
    path = build.SOURCE_DIR / "debian" / script
    assert subprocess.run(["sh", "-n", str(path)], check=False).returncode == 0
    assert path.read_text().startswith("#!/bin/sh\n")


def test_installed_daemon_knows_its_version(debs: list[Path], tmp_path: Path) -> None:
    for deb, version in zip(debs[::2], VERSIONS, strict=True):
        root = tmp_path / version
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
        out = subprocess.run(["/usr/bin/python3", str(root / "usr/bin/coolwsd"), "--version"],
                             capture_output=True, text=True, check=True).stdout
        assert version.removesuffix("-1") in out and version not in out  # the product version, no revision
        text = (root / "usr/bin/coolwsd").read_text()
        assert f'BROKEN_BUILD = "{BROKEN.get(version, "")}"' in text
        assert "@PACKAGE_VERSION@\"" not in text.split("PACKAGE_VERSION = ", 1)[1].splitlines()[0]


def test_unit_file() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(build.SOURCE_DIR / "coolwsd.service")
    service = unit["Service"]
    assert service["User"] == "cool" and service["Group"] == "cool"
    assert service["ExecStart"] == "/usr/bin/coolwsd --config-file=/etc/coolwsd/coolwsd.xml"
    assert service["Restart"] == "on-failure"
    assert service["NoNewPrivileges"] == "yes" and service["ProtectSystem"] == "strict"
    assert "/var/lib/coolwsd" in service["ReadWritePaths"]
    assert "NOT Collabora Online" in unit["Unit"]["Description"]
    assert unit["Install"]["WantedBy"] == "multi-user.target"


def test_build_is_reproducible(debs: list[Path], tmp_path: Path) -> None:
    again = build.build_debs(tmp_path)
    assert [d.read_bytes() for d in again] == [d.read_bytes() for d in debs]


def test_unchanged_source_skips_rebuild(debs: list[Path], monkeypatch: pytest.MonkeyPatch) -> None:
    mtimes = [d.stat().st_mtime_ns for d in debs]

    def no_build(*_: object) -> Path:
        raise AssertionError("rebuilt although the source did not change")

    monkeypatch.setattr(build, "build_deb", no_build)
    assert build.build_debs(debs[0].parent.parent) == debs
    assert [d.stat().st_mtime_ns for d in debs] == mtimes


def test_changed_source_rebuilds_and_drops_old_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "src"
    shutil.copytree(build.SOURCE_DIR, src, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(build, "SOURCE_DIR", src)
    out = tmp_path / "out"
    first = build.build_debs(out)
    (src / "README.md").write_text((src / "README.md").read_text() + "\nchanged\n")
    second = build.build_debs(out)
    assert first[0].parent != second[0].parent
    assert not first[0].parent.exists() and all(d.is_file() for d in second)
