"""`tnoctl lab prepare`: builds the cached base image and apt repo under the lab lock, boots nothing.

`make test` runs it beside the unit tests; a concurrent `lab up` must wait for it on the lab lock
rather than build the same base a second time (the system-touching steps are replaced by recorders).
"""

from __future__ import annotations

import fcntl
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from tnoctl import paths
from tnoctl.lab import lab as lab_module
from tnoctl.lab.lab import Lab


def _lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, steps: list[str]) -> Lab:
    monkeypatch.setattr(lab_module, "require_root", lambda: None)
    image = SimpleNamespace(rootfs=Path("/nonexistent/rootfs"), name="base-test")
    monkeypatch.setattr(lab_module.base, "ensure_base", lambda cache: steps.append(f"base {cache.name}") or image)
    monkeypatch.setattr(Lab, "_ensure_apt_repo", lambda self_: steps.append("apt repo"))
    for forbidden in ("_start_servers", "_start_hosts", "_wait_systemd", "_refresh_apt_lists"):
        monkeypatch.setattr(Lab, forbidden, lambda self_, *a, n=forbidden, **k: steps.append(n))
    monkeypatch.setattr(lab_module.net, "ensure_bridge", lambda: steps.append("bridge"))
    return Lab(paths.LAB_INVENTORY, lab_dir=tmp_path / "lab", cache_dir=tmp_path / "cache")


def test_prepare_builds_base_and_apt_repo_and_boots_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    steps: list[str] = []
    _lab(tmp_path, monkeypatch, steps).prepare()
    assert steps == ["base cache", "apt repo"]


def test_prepare_waits_for_the_lab_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    steps: list[str] = []
    lab = _lab(tmp_path, monkeypatch, steps)
    waiting = threading.Event()
    monkeypatch.setattr(lab_module, "log", lambda msg: waiting.set() if "waiting for it" in msg else None)
    lab.lab_dir.mkdir(parents=True)
    worker = threading.Thread(target=lab.prepare)
    with open(lab.lab_dir / ".lock", "w") as holder:  # another lab operation (e.g. `lab up`) holds the lock
        fcntl.flock(holder, fcntl.LOCK_EX)
        worker.start()
        assert waiting.wait(timeout=30), "prepare did not reach the lab lock"
        assert steps == []  # found the lock taken: nothing built while the other operation runs
    worker.join(timeout=30)  # closing the file released the lock
    assert not worker.is_alive() and steps == ["base cache", "apt repo"]
