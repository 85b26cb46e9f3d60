"""Beyond one controller (issue 18): the collection and the execution environment build offline.

`scripts/build_collection.py` (what `make collection` runs) assembles `syndicat.tnoctl` from the
repository's roles/, playbooks/ and plugins/ and runs `ansible-galaxy collection build`; then
`ansible-builder create` writes the execution environment's build context from
execution-environment.yml. Neither touches the network. The collection's playbooks are the
repository's, byte for byte, and find their roles inside the collection (syntax check from a
directory without the repository's ansible.cfg).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
ROLES = sorted(p.name for p in (ROOT / "roles").iterdir() if p.is_dir())


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of execution-environment.yml next to a fresh build/ (as in the repository root)."""
    work = tmp_path_factory.mktemp("collection")
    shutil.copy(ROOT / "execution-environment.yml", work / "execution-environment.yml")
    subprocess.run([sys.executable, str(ROOT / "scripts" / "build_collection.py"), "--out", str(work / "build")],
                   check=True, capture_output=True, text=True, timeout=300)
    return work


def test_galaxy_build_holds_roles_playbooks_plugin_and_host_agent(built: Path) -> None:
    tarball = built / "build" / f"syndicat-tnoctl-{VERSION}.tar.gz"
    with tarfile.open(tarball) as tar:
        names = set(tar.getnames())
        manifest = json.load(tar.extractfile("MANIFEST.json"))  # type: ignore[arg-type]
        site = tar.extractfile("playbooks/site.yml").read()  # type: ignore[union-attr]
    info = manifest["collection_info"]
    assert (info["namespace"], info["name"], info["version"]) == ("syndicat", "tnoctl", VERSION)
    assert {f"roles/{r}/tasks/main.yml" for r in ROLES} <= names
    assert {f"playbooks/{p.name}" for p in (ROOT / "playbooks").glob("*.yml")} <= names
    assert "plugins/inventory/tno_tenants.py" in names
    assert {"tnoctl/hostagent/agent.py", "tnoctl/hostagent/manifest.py", "tnoctl/backup/naming.py"} <= names
    assert site == (ROOT / "playbooks" / "site.yml").read_bytes()  # the same playbooks, unchanged
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)


def test_collection_playbooks_find_their_roles_without_the_repository(built: Path, tmp_path: Path) -> None:
    (tmp_path / "ansible.cfg").write_text("[defaults]\n")  # not the repository's (no roles_path = roles)
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(built / "build" / "collection"),
           "ANSIBLE_CONFIG": str(tmp_path / "ansible.cfg"), "PATH": f"{BIN}:{os.environ['PATH']}"}
    for playbook in sorted(p.stem for p in (ROOT / "playbooks").glob("*.yml")):
        proc = subprocess.run([str(BIN / "ansible-playbook"), "-i", "localhost,", "--syntax-check",
                               f"syndicat.tnoctl.{playbook}"], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=120)
        assert proc.returncode == 0, f"{playbook}: {proc.stdout[-2000:]}{proc.stderr[-2000:]}"


def test_ansible_builder_create_writes_the_ee_context_offline(built: Path) -> None:
    proc = subprocess.run([str(BIN / "ansible-builder"), "create", "-f", "execution-environment.yml",
                           "--context", "context", "--output-filename", "Containerfile"],
                          cwd=built, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    context = built / "context"
    containerfile = (context / "Containerfile").read_text()
    assert {p.name for p in (context / "_build" / "tnoctl").iterdir()} == {"syndicat-tnoctl.tar.gz",
                                                                          "tnoctl-src.tar.gz"}
    assert "pip install --no-cache-dir /tmp/tnoctl-inputs/tnoctl-src.tar.gz" in containerfile
    assert "ansible-galaxy collection install --offline --no-deps" in containerfile
    assert "requirements.yml" not in containerfile  # nothing comes from Galaxy
    with tarfile.open(context / "_build" / "tnoctl" / "tnoctl-src.tar.gz") as tar:
        assert {"tnoctl-src/pyproject.toml", "tnoctl-src/tnoctl/exporter/collector.py"} <= set(tar.getnames())
