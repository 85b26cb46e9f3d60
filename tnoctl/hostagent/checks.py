"""Host side of the scheduled checks and of the result pull: ``tno-backup drill KEY`` and ``tno-backup results``.

Standard library only (installed next to agent.py by role tno_backup).

* ``drill KEY`` (timer ``tno-backup-drill@KEY.timer``, weekly inside the tenant's maintenance window
  at a per-tenant offset): ``borgmatic check`` (repository and archives, i.e. ``backup verify``), then
  the restore test of the unit's latest archive: mail is extracted into a scratch dir and compared
  with its manifest; office restores the staged ``coolwsd.xml`` and checks it is a coolwsd configuration. The
  verdict goes to ``/var/lib/tno-backup/state/KEY.drill.json`` and is printed as one JSON line.
  It runs with this host's append-only key and passphrase file: reading a repository is allowed.
* ``results``: one JSON line with every configured unit's last run (``KEY.json``, written by
  ``run``) and last drill (``KEY.drill.json``). tnoctl pulls it over its one SSH factory
  (tnoctl/actions/backup_sync.py), so a timer-run backup or drill reaches tnoctl's state store,
  ``status``, ``backup list`` and the exporter: the host files are the one source of truth.
"""

from __future__ import annotations

import fcntl
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from xml.etree import ElementTree

try:  # on the host these modules sit next to this file
    import agent  # type: ignore[import-not-found]
    import manifest  # type: ignore[import-not-found]
    import naming  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - package import path (unit tests)
    from tnoctl.backup import naming
    from tnoctl.hostagent import agent, manifest

def office_config_path(cfg: agent.TenantConfig) -> str:
    """Archive-relative path of the unit's staged coolwsd.xml (its own WOPI group; office_stage.py)."""
    return (cfg.staging or f"{naming.STAGING_ROOT}/{cfg.key}").strip("/") + "/coolwsd.xml"


def latest_archive(cfg: agent.TenantConfig, names_and_times: list[tuple[str, str]]) -> str | None:
    """The newest archive of this unit (scheduled or tagged), by borg's start time; None if there is none."""
    mine = [(t, n) for n, t in names_and_times
            if (naming.parse_archive(cfg.slug, n) or ("", None))[0] == cfg.component]
    return max(mine)[1] if mine else None


def office_verdict(text: str) -> tuple[bool, str]:
    """(ok, detail) of a restored coolwsd.xml: well-formed, root ``<config>``, some settings."""
    try:
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError as exc:
        return False, f"restored coolwsd.xml is not well-formed XML: {exc}"
    settings = sum(1 for _ in root.iter()) - 1
    if root.tag != "config" or settings == 0:
        return False, f"restored coolwsd.xml is not a coolwsd configuration (root <{root.tag}>, {settings} settings)"
    return True, f"coolwsd.xml restored ({settings} settings)"


def _borgmatic(cfg: agent.TenantConfig, *args: str, timeout: float = 6 * 3600) -> subprocess.CompletedProcess:
    return subprocess.run(["borgmatic", "--config", cfg.borgmatic_config, *args], capture_output=True, text=True,
                          check=False, timeout=timeout)


def _tail(text: str) -> str:
    return " | ".join([ln.strip() for ln in text.strip().splitlines() if ln.strip()][-2:])[:300]


def _list(cfg: agent.TenantConfig) -> list[tuple[str, str]]:
    proc = _borgmatic(cfg, "rlist", "--json")
    if proc.returncode != 0:
        raise RuntimeError(f"borgmatic rlist failed (rc {proc.returncode}): {_tail(proc.stderr)}")
    data = json.loads(proc.stdout)
    docs = data if isinstance(data, list) else [data]
    return [(str(a["name"]), str(a.get("start") or a.get("time") or "")) for d in docs for a in d.get("archives", [])]


def _restore_test(cfg: agent.TenantConfig, archive: str) -> tuple[bool, str, dict[str, object]]:
    if cfg.component == "office":
        scratch = _scratch(cfg)
        try:
            proc = _borgmatic(cfg, "extract", "--archive", archive, "--path", office_config_path(cfg),
                              "--destination", str(scratch), timeout=600)
            if proc.returncode != 0:
                return False, f"office {archive}: extract failed: {_tail(proc.stderr)}", {}
            ok, detail = office_verdict((scratch / office_config_path(cfg)).read_text())
            return ok, f"office {archive}: {detail}", {}
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    root = agent._extract(cfg, archive, [])
    try:
        expected = manifest.loads((root / "manifest.json").read_text())
        result = manifest.compare(expected, manifest.compute(root / "mail"))
    finally:
        shutil.rmtree(root.parents[len(Path(cfg.staging.strip("/")).parts) - 1], ignore_errors=True)
    detail = f"{archive}: {result.checked} messages checked, {len(result.missing)} missing or altered"
    return result.ok, detail, {"checked": result.checked, "missing": len(result.missing)}


def _scratch(cfg: agent.TenantConfig) -> Path:
    """A fresh scratch dir for the office restore test (a leftover of a killed drill is dropped first)."""
    path = agent.RESTORE_ROOT / f"{cfg.key}.drill"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def drill(cfg: agent.TenantConfig) -> int:
    """Verify then restore-test the unit's latest archive; record and print the verdict (rc 1 when it failed).

    Under the unit's run lock (the same flock as ``run``): a nightly backup that starts meanwhile waits
    for the drill instead of failing on borg's repository lock.
    """
    agent.LOCK_DIR.mkdir(parents=True, exist_ok=True)
    with open(agent.LOCK_DIR / f"tno-backup-{cfg.key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _drill_locked(cfg)


def _drill_locked(cfg: agent.TenantConfig) -> int:
    started = time.time()
    record: dict[str, object] = {"tenant": cfg.slug, "component": cfg.component, "kind": "drill"}
    try:
        checked = _borgmatic(cfg, "check")
        if checked.returncode != 0:
            ok, detail = False, f"borgmatic check failed (rc {checked.returncode}): {_tail(checked.stderr)}"
        else:
            archive = latest_archive(cfg, _list(cfg))
            if archive is None:
                ok, detail = False, f"no {cfg.component} archive to drill"
            else:
                ok, detail, extra = _restore_test(cfg, archive)
                record.update(extra, archive=archive)
    except (OSError, RuntimeError, ValueError, KeyError, subprocess.TimeoutExpired) as exc:
        ok, detail = False, f"{type(exc).__name__}: {exc}"[:300]
    record.update(ok=ok, detail=detail, finished_at=time.time(), duration_seconds=round(time.time() - started, 3))
    agent.atomic_write(agent.STATE_DIR / f"{cfg.key}.drill.json", json.dumps(record), 0o644)
    sys.stdout.write(json.dumps(record) + "\n")
    return 0 if ok else 1


def results(config_dir: Path | None = None, state_dir: Path | None = None) -> dict[str, dict[str, object]]:
    """Every configured unit's last run and last drill (missing or unreadable files are left out)."""
    config_dir, state_dir = config_dir or agent.CONFIG_DIR, state_dir or agent.STATE_DIR
    out: dict[str, dict[str, object]] = {}
    for conf in sorted(config_dir.glob("*.json")):
        key = conf.name.removesuffix(".json")
        unit: dict[str, object] = {}
        for name, path in (("run", state_dir / f"{key}.json"), ("drill", state_dir / f"{key}.drill.json")):
            try:
                data = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            if isinstance(data, dict):
                unit[name] = data
        out[key] = unit
    return out


def print_results() -> int:
    """``tno-backup results``: one JSON line ``{"units": {KEY: {"run": ..., "drill": ...}}}``."""
    sys.stdout.write(json.dumps({"units": results(), "at": time.time()}) + "\n")
    return 0
