"""tnoctl/hostagent/history.py against a real borg repository (Debian's borgbackup, as on the backup host).

The repository is append-only like the ones `borg serve --append-only` writes for the mail hosts: a
client's `borg delete` only appends a manifest version, and history.py still reads the older ones, so
`ledger.vanished` names an archive nobody but the intruder ever listed. After `borg compact` (run by
tnoctl's prune as the owner, append-only off for it) the superseded versions are gone.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tnoctl import paths
from tnoctl.backup import ledger

SCRIPT = paths.PROJECT_ROOT / "tnoctl" / "hostagent" / "history.py"
PASSPHRASE = "history-test-passphrase"


@pytest.fixture()
def borg_env(tmp_path: Path) -> dict[str, str]:
    if shutil.which("borg") is None or not Path("/usr/bin/python3").exists():
        pytest.fail("borg is missing: borgbackup is in apt-packages.txt, run `make install`")
    return {**os.environ, "BORG_BASE_DIR": str(tmp_path / "base"), "BORG_PASSPHRASE": PASSPHRASE}


def _borg(env: dict[str, str], *args: str, cwd: Path) -> None:
    subprocess.run(["borg", *args], env=env, cwd=cwd, check=True, capture_output=True)


def _history(env: dict[str, str], repo: Path) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in env.items() if k != "BORG_PASSPHRASE"} | {"BORG_PASSPHRASE_FD": "0"}
    return subprocess.run(["/usr/bin/python3", str(SCRIPT), str(repo)], input=PASSPHRASE + "\n", env=clean,
                          capture_output=True, text=True, check=False)


def test_history_lists_every_manifest_version_until_compact(tmp_path: Path, borg_env: dict[str, str]) -> None:
    repo, data = tmp_path / "repo", tmp_path / "data"
    data.mkdir()
    (data / "mail").write_text("bonjour\n")
    _borg(borg_env, "init", "--append-only", "--encryption=repokey", str(repo), cwd=tmp_path)
    for name in ("feyzin-1", "feyzin-2"):
        _borg(borg_env, "create", f"{repo}::{name}", "data", cwd=tmp_path)
    _borg(borg_env, "delete", f"{repo}::feyzin-1", cwd=tmp_path)  # the intruder's delete: only appended

    proc = _history(borg_env, repo)
    assert proc.returncode == 0, proc.stderr
    assert PASSPHRASE not in proc.stdout + proc.stderr
    doc = json.loads(proc.stdout)
    names = [v[2] for v in doc["versions"]]
    assert names == [[], ["feyzin-1"], ["feyzin-1", "feyzin-2"], ["feyzin-2"]]
    logged = [int(line.split()[1].rstrip(",")) for line in (repo / "transactions").read_text().splitlines()]
    assert [v[0] for v in doc["versions"]] == logged  # the transaction ids of borg's own log
    assert ledger.vanished(doc["versions"], ["feyzin-2"], {}) == {"feyzin-1": logged[-1]}
    listed = subprocess.run(["borg", "list", "--short", str(repo)], env=borg_env, capture_output=True, text=True,
                            check=True).stdout.split()
    assert doc["versions"][-1][2] == sorted(listed)  # prune takes the newest version as `borg list`

    _borg(borg_env, "config", str(repo), "append_only", "0", cwd=tmp_path)
    _borg(borg_env, "compact", str(repo), cwd=tmp_path)
    after = json.loads(_history(borg_env, repo).stdout)["versions"]
    assert [v[2] for v in after] == [["feyzin-2"]]


def test_a_wrong_passphrase_is_one_line_without_the_secret(tmp_path: Path, borg_env: dict[str, str]) -> None:
    repo, data = tmp_path / "repo", tmp_path / "data"
    data.mkdir()
    _borg(borg_env, "init", "--append-only", "--encryption=repokey", str(repo), cwd=tmp_path)
    _borg(borg_env, "create", f"{repo}::x", "data", cwd=tmp_path)
    proc = subprocess.run(["/usr/bin/python3", str(SCRIPT), str(repo)], input="zq-not-the-passphrase-42\n",
                          env={**borg_env, "BORG_PASSPHRASE_FD": "0", "BORG_PASSPHRASE": ""},
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith("history.py: ") and len(proc.stderr.splitlines()) == 1
    assert "PassphraseWrong" in proc.stderr and "zq-not-the-passphrase-42" not in proc.stderr
