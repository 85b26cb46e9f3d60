"""Host agent of the ``tno_backup`` role: stage a tenant, run borgmatic, write the textfile.

Runs on the mail hosts as ``/usr/local/sbin/tno-backup`` (standard library only; the role
copies this file and ``manifest.py`` to ``/usr/local/lib/tno-backup/``). The systemd timer and
``tnoctl backup run`` both call ``tno-backup run SLUG``, so a scheduled run and a manual run are
the same code path and record the same way.

* ``stage SLUG`` (borgmatic's ``before_backup`` hook): ``doveadm backup`` of every mailbox into
  the tenant's staging tree (a consistent copy while users are connected; incremental), the
  tenant's userdb lines, DKIM private keys, Sieve scripts, and the mail manifest.
* ``stage <slug>.office`` (the office unit's hook): the tenant's own office configuration, cut out of
  the host-wide coolwsd.xml and proxy file (office_stage.py): no host secret in a tenant's repository.
* ``run KEY [--tag TAG]``: ``borgmatic create --json`` under a per-key flock (KEY is ``<slug>`` for the
  mail host, ``<slug>.office`` for the office host);
  with a tag the archive is named ``<key>.tag-<TAG>-<time>`` (upgrade safety snapshots); parses the stats,
  writes ``tno_backup_<slug>.prom`` atomically (temp file + rename) for node_exporter's textfile
  collector, keeps the last success in ``/var/lib/tno-backup/state/<slug>.json``, prints one
  JSON line (no secret in it: the passphrase is read by borg through ``encryption_passcommand``).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

try:  # on the host, manifest.py and naming.py sit next to this file (role tno_backup copies them)
    import manifest  # type: ignore[import-not-found]
    import naming  # type: ignore[import-not-found]
    import office_stage  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - package import path (unit tests)
    from tnoctl.backup import naming
    from tnoctl.hostagent import manifest, office_stage

CONFIG_DIR = Path("/etc/tno-backup/tenants")
STATE_DIR = Path("/var/lib/tno-backup/state")
LOCK_DIR = Path("/run/lock")
STAGE_WORKERS = 4
DOVECOT_HOME = "home"
"""A mailbox's Dovecot home inside its maildir root (Sieve scripts, the vacation duplicate database): the role
tno_mail sets ``home = <maildir>/home``; archives of the old layout (home = the root) restore into it too."""


@dataclass(frozen=True)
class TenantConfig:
    """What the role renders to ``/etc/tno-backup/tenants/<key>.json`` for the agent.

    Office configs (``component: office``) carry slug, component, staging, the two host-wide files
    their stage cuts the tenant's part out of (``coolwsd_xml``, ``proxy_conf``), borgmatic_config,
    textfile_dir.
    """

    slug: str
    borgmatic_config: str
    textfile_dir: str
    component: str = "mail"
    domains: list[str] = field(default_factory=list)
    mailboxes: list[str] = field(default_factory=list)
    staging: str = ""
    vmail_dir: str = ""
    vmail_uid: int = 0
    vmail_gid: int = 0
    userdb: str = ""
    dkim_dir: str = ""
    coolwsd_xml: str = ""
    proxy_conf: str = ""

    @property
    def key(self) -> str:
        """Host-side name of this backup unit (``givors``, ``givors.office``): files, lock, textfile."""
        return naming.unit_key(self.slug, self.component)

    @classmethod
    def load(cls, key: str, config_dir: Path = CONFIG_DIR) -> TenantConfig:
        """Read one unit's agent configuration (unknown keys ignored, e.g. ``retention``)."""
        data = json.loads((config_dir / f"{key}.json").read_text())
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


@dataclass
class RunState:
    """Outcome of the last run plus the last success (what the textfile shows)."""

    tenant: str
    ok: bool
    finished_at: float
    duration_seconds: float
    last_success_at: float = 0.0
    archive: str = ""
    original_bytes: int = 0
    compressed_bytes: int = 0
    deduplicated_bytes: int = 0
    detail: str = ""
    component: str = "mail"
    stage_seconds: float = 0.0  # of this run's staging hook (mail): what the benchmark breaks down


def userdb_lines(text: str, domains: list[str]) -> list[str]:
    """The passwd-file lines of a tenant: users whose domain is one of ``domains`` (case-insensitive)."""
    wanted = {d.lower() for d in domains}
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#") or ":" not in line:
            continue
        user = line.split(":", 1)[0]
        if "@" in user and user.rsplit("@", 1)[1].lower() in wanted:
            out.append(line)
    return out


def create_stats(output: str) -> dict[str, object]:
    """Archive name and sizes from ``borgmatic create --json`` (a list of borg create JSON documents)."""
    data = json.loads(output)
    doc = data[0] if isinstance(data, list) else data
    archive = doc["archive"]
    stats = archive["stats"]
    return {
        "archive": archive["name"],
        "original_bytes": int(stats["original_size"]),
        "compressed_bytes": int(stats["compressed_size"]),
        "deduplicated_bytes": int(stats["deduplicated_size"]),
        "files": int(stats.get("nfiles", 0)),
    }


def render_textfile(state: RunState, component: str = "mail") -> str:
    """Prometheus text format of one run (names shared with tnoctl's exporter, base units)."""
    labels = f'tenant="{state.tenant}",component="{component}"'
    rows = [
        ("tnoctl_backup_last_run_timestamp_seconds", "End time of the last backup run.", state.finished_at),
        ("tnoctl_backup_last_run_success", "1 if the last backup run succeeded.", 1.0 if state.ok else 0.0),
        ("tnoctl_backup_last_run_duration_seconds", "Duration of the last backup run.", state.duration_seconds),
        ("tnoctl_backup_last_success_timestamp_seconds", "End time of the last successful backup.",
         state.last_success_at),
    ]
    out = []
    for name, doc, value in rows:
        out += [f"# HELP {name} {doc}", f"# TYPE {name} gauge", f"{name}{{{labels}}} {float(value)!r}"]
    name = "tnoctl_backup_size_bytes"
    out += [f"# HELP {name} Size of the last successful backup archive.", f"# TYPE {name} gauge"]
    for kind in ("original", "compressed", "deduplicated"):
        out.append(f'{name}{{{labels},kind="{kind}"}} {float(getattr(state, kind + "_bytes"))!r}')
    return "\n".join(out) + "\n"


def atomic_write(path: Path, text: str, mode: int = 0o644) -> None:
    """Write a temp file next to ``path``, fsync, chmod, rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def next_state(previous: RunState | None, current: RunState) -> RunState:
    """Carry the last success (time and sizes) over a failed run, so the textfile keeps it."""
    if current.ok:
        current.last_success_at = current.finished_at
        return current
    if previous is not None:
        current.last_success_at = previous.last_success_at
        current.archive = previous.archive
        for kind in ("original_bytes", "compressed_bytes", "deduplicated_bytes"):
            setattr(current, kind, getattr(previous, kind))
    return current


def _chown_tree(path: Path, uid: int, gid: int) -> None:
    os.chown(path, uid, gid)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            os.lchown(os.path.join(root, name), uid, gid)


def _copy_tree(src: Path, dest: Path) -> None:
    if dest.exists() or dest.is_symlink():
        shutil.rmtree(dest) if dest.is_dir() and not dest.is_symlink() else dest.unlink()
    if src.is_dir():
        shutil.copytree(src, dest, symlinks=True)
    elif src.exists() or src.is_symlink():
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest, follow_symlinks=False)


def _doveadm_backup(address: str, dest: Path, uid: int, gid: int) -> None:
    """One-way dsync of a mailbox into ``dest``.

    rc 2 means "changed while syncing": retried. Any other failure (e.g. the live mailbox was
    recreated with new GUIDs after a restore, which dsync refuses to mirror onto the old copy):
    the staging copy is dropped and a full copy made once. History stays in the older archives.
    """
    argv = ["doveadm", "backup", "-u", address, f"maildir:{dest}"]
    for attempt in range(4):
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
        if proc.returncode == 0:
            return
        if proc.returncode != 2 and attempt < 3:
            shutil.rmtree(dest, ignore_errors=True)
            dest.mkdir(parents=True, mode=0o700)
            os.chown(dest, uid, gid)
    raise RuntimeError(f"doveadm backup {address} failed (rc {proc.returncode}): {proc.stderr.strip()[:300]}")


def stage(cfg: TenantConfig) -> int:
    """Build the staging tree borgmatic archives: mail, userdb, DKIM keys, Sieve, manifest.

    Office units stage the tenant's own office configuration instead (office_stage.py).
    The manifest hashes only messages whose (size, mtime, ctime, inode) changed since the last run
    (cache in the state dir, not archived): a Maildir message file never changes in place.
    """
    if cfg.component == "office":
        office_stage.stage(cfg.slug, Path(cfg.staging), Path(cfg.coolwsd_xml), Path(cfg.proxy_conf))
        return 0
    started = time.time()
    staging = Path(cfg.staging)
    mail = staging / "mail"
    mail.mkdir(parents=True, exist_ok=True)
    os.chmod(staging, 0o711)  # traversable by vmail (doveadm backup writes mail/ as vmail)
    os.chown(mail, cfg.vmail_uid, cfg.vmail_gid)
    os.chmod(mail, 0o700)
    wanted: set[tuple[str, str]] = set()
    jobs = []
    for address in cfg.mailboxes:
        local, domain = address.rsplit("@", 1)
        wanted.add((domain, local))
        dest = mail / domain / local
        if not dest.exists():
            dest.mkdir(parents=True, mode=0o700)
            _chown_tree(mail / domain, cfg.vmail_uid, cfg.vmail_gid)
        jobs.append((address, dest, cfg.vmail_uid, cfg.vmail_gid))
    # one dsync per mailbox, independent of each other: a few at a time (start-up dominates small ones)
    with ThreadPoolExecutor(max_workers=STAGE_WORKERS) as pool:
        for future in [pool.submit(_doveadm_backup, *job) for job in jobs]:
            future.result()  # re-raises the first failure
    for domain_dir in [p for p in mail.iterdir() if p.is_dir()]:
        for home in [p for p in domain_dir.iterdir() if p.is_dir()]:
            if (domain_dir.name, home.name) not in wanted:
                shutil.rmtree(home)  # mailbox removed from the tenant: its history stays in older archives
    try:
        lines = userdb_lines(Path(cfg.userdb).read_text(), cfg.domains)
    except FileNotFoundError:
        lines = []
    atomic_write(staging / "userdb", "\n".join(lines) + ("\n" if lines else ""), 0o600)
    (staging / "dkim").mkdir(mode=0o700, exist_ok=True)
    for domain in cfg.domains:
        _copy_tree(Path(cfg.dkim_dir) / domain, staging / "dkim" / domain)
    for domain, local in sorted(wanted):
        home = Path(cfg.vmail_dir) / domain / local
        for name in ("sieve", ".dovecot.sieve"):  # the Dovecot home (<maildir>/home), else the old layout's root
            source = home / DOVECOT_HOME / name
            _copy_tree(source if os.path.lexists(source) else home / name, staging / "sieve" / domain / local / name)
    cache_file = STATE_DIR / f"{cfg.key}.manifest-cache.json"
    cache = _load_json(cache_file)
    entries = manifest.compute(mail, cache)
    atomic_write(cache_file, json.dumps(cache, separators=(",", ":")), 0o600)
    atomic_write(staging / "manifest.json", manifest.dumps(entries, tenant=cfg.slug, created=time.time()), 0o600)
    atomic_write(STATE_DIR / f"{cfg.key}.stage.json", json.dumps({"seconds": round(time.time() - started, 3)}))
    return 0


def _load_json(path: Path) -> dict:
    """A JSON object from ``path``; {} when missing or unreadable (a cache is never fatal)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _load_state(key: str) -> RunState | None:
    try:
        return RunState(**json.loads((STATE_DIR / f"{key}.json").read_text()))
    except (FileNotFoundError, ValueError, TypeError):
        return None


def create_argv(cfg: TenantConfig, tag: str | None = None) -> list[str]:
    """``borgmatic create --json`` of one unit; a tag overrides the archive name (``<key>.tag-<tag>-<time>``)."""
    argv = ["borgmatic", "--config", cfg.borgmatic_config]
    if tag:
        name = naming.archive_name_format(cfg.slug, cfg.component, tag)
        argv += ["--override", f"storage.archive_name_format='{name}'"]
    return [*argv, "create", "--json"]


def run(cfg: TenantConfig, tag: str | None = None) -> int:
    """``borgmatic create`` for one unit; record the result (textfile + state) and print it as JSON."""
    LOCK_DIR.mkdir(parents=True, exist_ok=True)
    with open(LOCK_DIR / f"tno-backup-{cfg.key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        started = time.time()
        proc = subprocess.run(create_argv(cfg, tag), capture_output=True, text=True, check=False)
        finished = time.time()
        state = RunState(cfg.slug, proc.returncode == 0, finished, round(finished - started, 3),
                         component=cfg.component)
        if cfg.component == "mail":
            state.stage_seconds = float(_load_json(STATE_DIR / f"{cfg.key}.stage.json").get("seconds", 0.0))
        if state.ok:
            try:
                stats = create_stats(proc.stdout)
            except (ValueError, KeyError, IndexError, TypeError) as exc:
                state.ok, state.detail = False, f"unreadable borgmatic output: {type(exc).__name__}"
            else:
                state.archive = str(stats["archive"])
                state.original_bytes = int(stats["original_bytes"])  # type: ignore[call-overload]
                state.compressed_bytes = int(stats["compressed_bytes"])  # type: ignore[call-overload]
                state.deduplicated_bytes = int(stats["deduplicated_bytes"])  # type: ignore[call-overload]
        else:
            tail = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()][-3:]
            state.detail = f"borgmatic rc {proc.returncode}: " + " | ".join(tail)[:500]
        state = next_state(_load_state(cfg.key), state)
        atomic_write(STATE_DIR / f"{cfg.key}.json", json.dumps(asdict(state)), 0o644)
        atomic_write(Path(cfg.textfile_dir) / f"tno_backup_{cfg.key}.prom", render_textfile(state, cfg.component))
        sys.stdout.write(json.dumps(asdict(state)) + "\n")
        return 0 if state.ok else 1


RESTORE_ROOT = Path("/var/lib/tno-backup/restore")


def _extract(cfg: TenantConfig, archive: str, paths: list[str]) -> Path:
    """``borgmatic extract`` of ``paths`` (archive-relative) into a fresh scratch dir; returns the staging root."""
    RESTORE_ROOT.mkdir(parents=True, exist_ok=True)
    os.chmod(RESTORE_ROOT, 0o711)
    scratch = RESTORE_ROOT / f"{cfg.slug}-{os.getpid()}-{int(time.time())}"
    scratch.mkdir(mode=0o711)
    argv = ["borgmatic", "--config", cfg.borgmatic_config, "extract", "--archive", archive,
            "--destination", str(scratch)]
    if paths:
        argv += ["--path", *paths]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        shutil.rmtree(scratch, ignore_errors=True)
        raise RuntimeError(f"borgmatic extract failed (rc {proc.returncode}): {proc.stderr.strip()[-400:]}")
    root = scratch / cfg.staging.strip("/")
    # borg creates the leading directories 0700 root: doveadm import (as vmail) must traverse them,
    # and fails silently (rc 0, nothing imported) when it cannot. The manifest check catches that too.
    path = scratch
    for part in [*Path(cfg.staging.strip("/")).parts, "mail"]:
        path = path / part
        if path.is_dir():
            os.chmod(path, 0o711)
    return root


FETCHED_MARK = "fetched-archive"
"""In a fetched tree (``RESTORE_ROOT/<slug>.fetched/``): the archive it holds, written last."""


def _fetched_dir(cfg: TenantConfig) -> Path:
    return RESTORE_ROOT / f"{cfg.slug}.fetched"


def fetch_tenant(cfg: TenantConfig, archive: str) -> int:
    """Disaster recovery, data half: extract the whole archive where ``restore-tenant`` will find it.

    Why: ``restore --to-host`` runs this while ``site.yml`` deploys the new host, so the borg extract
    (most of a large tenant's recovery time) no longer waits for the deploy. Needs only this tenant's
    backup configuration (``backup.yml``), not Dovecot. The tree is complete only once its mark names the
    archive (written after a successful extract); an older tree of the tenant is replaced.
    """
    started = time.time()
    root = _extract(cfg, archive, [])
    scratch = root.parents[len(Path(cfg.staging.strip("/")).parts) - 1]
    target = _fetched_dir(cfg)
    try:
        (scratch / FETCHED_MARK).write_text(archive)
        shutil.rmtree(target, ignore_errors=True)
        scratch.rename(target)
    except OSError:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    sys.stdout.write(json.dumps({"tenant": cfg.slug, "archive": archive,
                                 "seconds": round(time.time() - started, 3)}) + "\n")
    return 0


def _take_fetched(cfg: TenantConfig, archive: str) -> Path | None:
    """The staging root of a tree ``fetch-tenant`` left for exactly ``archive``, else None (and no stale tree)."""
    target = _fetched_dir(cfg)
    try:
        held = (target / FETCHED_MARK).read_text()
    except OSError:
        held = None
    if held != archive:
        shutil.rmtree(target, ignore_errors=True)
        return None
    return target / cfg.staging.strip("/")


def _import(address: str, source: Path, parent: str) -> None:
    """``doveadm import`` every message of ``source`` (a Maildir++ home) into ``parent`` ("" = top)."""
    argv = ["doveadm", "import", "-u", address, f"maildir:{source}", parent, "all"]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"doveadm import {address} failed (rc {proc.returncode}): {proc.stderr.strip()[:300]}")


def _verify(cfg: TenantConfig, root: Path, mailboxes: set[str], parent: str) -> dict[str, object]:
    expected = manifest.loads((root / "manifest.json").read_text())
    folders = sorted({e.folder for e in expected if e.mailbox in mailboxes})
    mapping = manifest.prefixed(parent, folders) if parent else None
    result = manifest.compare(expected, manifest.compute(Path(cfg.vmail_dir)), mapping, mailboxes)
    return {"ok": result.ok, "checked": result.checked, "missing": len(result.missing)}


def restore_mailbox(cfg: TenantConfig, address: str, archive: str, parent: str) -> int:
    """Import one mailbox of ``archive`` into ``parent`` (a dated folder): live mail is never touched."""
    local, domain = address.rsplit("@", 1)
    rel = cfg.staging.strip("/")
    root = _extract(cfg, archive, [f"{rel}/mail/{domain}/{local}", f"{rel}/manifest.json"])
    try:
        source = root / "mail" / domain / local
        if not source.is_dir():
            raise RuntimeError(f"{address} is not in archive {archive}")
        _chown_tree(root / "mail", cfg.vmail_uid, cfg.vmail_gid)
        _import(address, source, parent)
        verdict = _verify(cfg, root, {address}, parent)
    finally:
        shutil.rmtree(root.parents[len(Path(rel).parts) - 1], ignore_errors=True)
    sys.stdout.write(json.dumps({"mailbox": address, "archive": archive, "folder": parent, **verdict}) + "\n")
    return 0 if verdict["ok"] else 1


def restore_tenant(cfg: TenantConfig, archive: str) -> int:
    """Disaster recovery on this host: every mailbox (top level), DKIM keys, Sieve; check the userdb.

    Uses the tree ``fetch-tenant`` extracted for the same archive when there is one, else extracts now.
    """
    root = _take_fetched(cfg, archive) or _extract(cfg, archive, [])
    try:
        _chown_tree(root / "mail", cfg.vmail_uid, cfg.vmail_gid)
        boxes = set()
        for domain_dir in sorted(p for p in (root / "mail").iterdir() if p.is_dir()):
            for home in sorted(p for p in domain_dir.iterdir() if p.is_dir()):
                address = f"{home.name}@{domain_dir.name}"
                boxes.add(address)
                _import(address, home, "")
        for domain in cfg.domains:
            src = root / "dkim" / domain
            if src.is_dir():
                for key in src.iterdir():
                    dest = Path(cfg.dkim_dir) / domain / key.name
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(key, dest)
                    if _has_user("_rspamd"):  # Rspamd signs; keys readable by it only
                        shutil.chown(dest, "_rspamd", "_rspamd")
        sieve = root / "sieve"
        if sieve.is_dir():
            for home in (p for d in sieve.iterdir() for p in d.iterdir()):
                target = Path(cfg.vmail_dir) / home.parent.name / home.name
                for item in home.iterdir():  # into the Dovecot home, whichever layout the archive was taken from
                    _copy_tree(item, target / DOVECOT_HOME / item.name)
                _chown_tree(target, cfg.vmail_uid, cfg.vmail_gid)
        saved = {ln.split(":", 1)[0] for ln in (root / "userdb").read_text().splitlines() if ln}
        try:
            live = {ln.split(":", 1)[0] for ln in Path(cfg.userdb).read_text().splitlines() if ln and ":" in ln}
        except FileNotFoundError:
            live = set()
        verdict = _verify(cfg, root, boxes, "")
        verdict["userdb_missing"] = sorted(saved - live)
        verdict["ok"] = bool(verdict["ok"]) and not verdict["userdb_missing"]
    finally:
        shutil.rmtree(root.parents[len(Path(cfg.staging.strip("/")).parts) - 1], ignore_errors=True)
    sys.stdout.write(json.dumps({"tenant": cfg.slug, "archive": archive, "mailboxes": len(boxes), **verdict}) + "\n")
    return 0 if verdict["ok"] else 1


def _has_user(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


USAGE = ("usage: tno-backup stage SLUG | run KEY [--tag TAG] | restore-mailbox SLUG ADDRESS ARCHIVE FOLDER"
         " | fetch-tenant SLUG ARCHIVE | restore-tenant SLUG ARCHIVE | drill KEY | results\n")


def _checks():  # type: ignore[no-untyped-def]
    """The scheduled-checks module (imported late: it imports this one)."""
    try:
        import checks  # type: ignore[import-not-found]
    except ImportError:  # pragma: no cover - package import path (unit tests)
        from tnoctl.hostagent import checks
    return checks


def main(argv: list[str]) -> int:
    """``stage SLUG``, ``run KEY [--tag TAG]``, ``restore-mailbox SLUG ADDR ARCHIVE FOLDER``, ``fetch-tenant``,
    ``restore-tenant``,
    ``drill KEY`` and ``results`` (checks.py)."""
    arity = {"stage": 2, "run": 2, "restore-mailbox": 5, "fetch-tenant": 3, "restore-tenant": 3, "drill": 2}
    if argv == ["results"]:
        return _checks().print_results()
    tag = None
    if len(argv) == 4 and argv[0] == "run" and argv[2] == "--tag":
        argv, tag = argv[:2], argv[3]
    if not argv or arity.get(argv[0]) != len(argv):
        sys.stderr.write(USAGE)
        return 2
    try:
        if tag is not None:
            naming.check_tag(tag)
        cfg = TenantConfig.load(argv[1])
    except (OSError, ValueError, TypeError) as exc:
        sys.stderr.write(f"tno-backup: {argv[0]} {argv[1]}: {exc}\n")
        return 2
    try:
        if argv[0] == "stage":
            return stage(cfg)
        if argv[0] == "run":
            return run(cfg, tag)
        if argv[0] == "drill":
            return _checks().drill(cfg)
        if argv[0] == "restore-mailbox":
            return restore_mailbox(cfg, argv[2], argv[3], argv[4])
        if argv[0] == "fetch-tenant":
            return fetch_tenant(cfg, argv[2])
        return restore_tenant(cfg, argv[2])
    except (OSError, RuntimeError, ValueError) as exc:
        sys.stderr.write(f"tno-backup: {argv[0]} {argv[1]}: {exc}\n")
        return 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
