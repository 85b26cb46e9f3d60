"""Role tno_acme's one read of the host and, with --prune, the removal of departed tenants' lineages.

Usage: tno_acme_lineages.py [--prune] [--check] [--certbot PATH] [--timer UNIT] [--verify CAFILE]
                            [--file PATH]... [--dovecot] [--sni-map PATH] CONFDIR STATEDIR NGINXDIR [KEEP ...]

CONFDIR is certbot's configuration root (/etc/letsencrypt), STATEDIR role tno_acme's names files
(STATEDIR/tno-<slug>.names), NGINXDIR where the tenants' nginx snippets are (tno-acme-<slug>.conf),
KEEP the lineages (``tno-<slug>``) this host must serve. Only names ``tno-<slug>`` are ever looked at:
certbot lineages of anything else on the host are not ours and are never touched.

Prints one JSON object:

* ``live``: the lineages with a certificate (CONFDIR/live/NAME/fullchain.pem), what issuance reads;
* ``stale``: the ``tno-*`` lineages found (a renewal configuration, a live directory, a names file or
  an nginx snippet) that are not in KEEP: tenants offboarded or moved to another host, whose lineage
  certbot.timer would otherwise renew against the CA forever;
* ``deleted``: with --prune, every stale lineage removed (``certbot delete --non-interactive
  --cert-name NAME`` when certbot knows it, then its names file and nginx snippet); with --check too,
  the same list of what would be removed, and nothing is;
* ``names``: KEEP -> the text of its names file (the names it was issued for), null when missing: the
  role issues a lineage when it is not live or its expected names differ (decided on the controller);
* ``untrusted``: with --verify, the live lineages among KEEP whose certificate does not verify against
  CAFILE (the host's trust store) with the lineage's own chain (``openssl verify``): expired, or issued
  by a CA the host no longer trusts (another ACME CA, a distrusted root, the lab's pebble restarted with a
  new root). The role issues them again (``--force-renewal``): certbot would otherwise keep a lineage
  whose names are unchanged until it nears expiry;
* ``timer_ready``: with --timer, whether UNIT is enabled and active (systemd_service runs only when not);
* ``files``: --file PATH -> ``{sha1, mode, owner, group}`` of the file, null when missing (the credentials
  file: rewritten only when it differs; its checksum as `stat`/`copy` report it, never its content);
* ``dovecot_version``: with --dovecot, the version of dovecot-core installed, else apt's candidate, epoch
  dropped ("" when apt knows none): which syntax the Dovecot SNI blocks use;
* ``sni_map_pending``: with --sni-map, whether PATH exists and PATH.db is missing or older (what
  ``tno-reload map`` rebuilds): role tno_mail runs the hook only then.

The read changes nothing (the role's check mode stays honest: every write is a real module's).
One execution per host for what were nine (issue 19). Exit 1 when a removal failed, after trying the
others (certbot's output on stderr); exit 2 on a bad argument.
"""

from __future__ import annotations

import grp
import hashlib
import json
import pwd
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

LINEAGE = re.compile(r"tno-[a-z0-9][a-z0-9-]*")
"""A lineage of role tno_acme: ``tno-<slug>`` (tenant slugs are lowercase letters, digits and dashes)."""
SNIPPET = re.compile(r"tno-acme-([a-z0-9][a-z0-9-]*)\.conf")


@dataclass(frozen=True)
class Dirs:
    """Where a host keeps lineages (certbot), names files (tno_acme) and nginx snippets."""

    conf: Path
    state: Path
    nginx: Path

    def renewal(self, name: str) -> Path:
        return self.conf / "renewal" / f"{name}.conf"

    def live(self, name: str) -> Path:
        return self.conf / "live" / name

    def names(self, name: str) -> Path:
        return self.state / f"{name}.names"

    def snippet(self, name: str) -> Path:
        return self.nginx / f"tno-acme-{name.removeprefix('tno-')}.conf"


def _entries(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.is_dir() else []


def present(dirs: Dirs) -> set[str]:
    """Every ``tno-*`` lineage that has a trace on the host (renewal config, live dir, names file, snippet)."""
    found = {n.removesuffix(".conf") for n in _entries(dirs.conf / "renewal") if n.endswith(".conf")}
    found |= set(_entries(dirs.conf / "live"))
    found |= {n.removesuffix(".names") for n in _entries(dirs.state) if n.endswith(".names")}
    found |= {"tno-" + m.group(1) for n in _entries(dirs.nginx) if (m := SNIPPET.fullmatch(n))}
    return {name for name in found if LINEAGE.fullmatch(name)}


def live(dirs: Dirs, names: set[str]) -> list[str]:
    """The lineages among ``names`` that have a certificate to serve."""
    return sorted(n for n in names if (dirs.live(n) / "fullchain.pem").is_file())


def names_files(dirs: Dirs, keep: set[str]) -> dict[str, str | None]:
    """KEEP -> the text of its names file, None when it is missing or unreadable as text."""
    out: dict[str, str | None] = {}
    for name in sorted(keep):
        try:
            out[name] = dirs.names(name).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            out[name] = None
    return out


def untrusted(dirs: Dirs, names: list[str], cafile: str) -> list[str]:
    """The lineages among ``names`` whose cert.pem fails ``openssl verify`` against ``cafile`` + their chain.

    Only a verdict of openssl counts: when openssl cannot run, nothing is reported (no needless issuance).
    """
    out = []
    for name in names:
        live_dir = dirs.live(name)
        try:
            proc = subprocess.run(["openssl", "verify", "-CAfile", cafile, "-untrusted", str(live_dir / "chain.pem"),
                                   str(live_dir / "cert.pem")], capture_output=True, text=True, check=False,
                                  stdin=subprocess.DEVNULL)
        except OSError:
            return []
        if proc.returncode != 0:
            out.append(name)
    return out


def timer_ready(unit: str) -> bool:
    """Whether systemd has ``unit`` enabled and started, as systemd_service judges ``enabled: true`` (exit
    status 0 of ``is-enabled``) and ``state: started`` (active, activating or reloading)."""
    try:
        enabled = subprocess.run(["systemctl", "is-enabled", unit], capture_output=True, text=True, check=False)
        active = subprocess.run(["systemctl", "is-active", unit], capture_output=True, text=True, check=False)
    except OSError:
        return False
    return enabled.returncode == 0 and active.stdout.strip() in {"active", "activating", "reloading"}


def file_state(path: Path) -> dict[str, str] | None:
    """sha1 (what tno_files compares), mode, owner and group of ``path``; None when it is not a file."""
    try:
        data = path.read_bytes()
        st = path.stat()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None
    try:
        owner = pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        owner = str(st.st_uid)
    try:
        group = grp.getgrgid(st.st_gid).gr_name
    except KeyError:
        group = str(st.st_gid)
    return {"sha1": hashlib.sha1(data).hexdigest(), "mode": f"{st.st_mode & 0o7777:04o}",
            "owner": owner, "group": group}


def dovecot_version() -> str:
    """dovecot-core's installed version, else apt's candidate (as `apt-cache policy` gives), epoch dropped."""
    try:
        dpkg = subprocess.run(["dpkg-query", "-W", "-f", "${Status}\t${Version}", "dovecot-core"],
                              capture_output=True, text=True, check=False).stdout.split("\t")
        if len(dpkg) == 2 and dpkg[0].split()[-1:] == ["installed"] and dpkg[1]:
            return re.sub(r"^[0-9]+:", "", dpkg[1])
        policy = subprocess.run(["apt-cache", "policy", "dovecot-core"], capture_output=True, text=True,
                                check=False).stdout
    except OSError:
        return ""
    found = re.search(r"Candidate: (\S+)", policy)
    return re.sub(r"^[0-9]+:", "", found.group(1)) if found and found.group(1) != "(none)" else ""


def sni_map_pending(source: Path) -> bool:
    """As ``tno-reload map``: ``source`` exists and ``source``.db is missing or older (modification time)."""
    database = source.with_name(source.name + ".db")
    try:
        mtime = source.stat().st_mtime_ns
    except FileNotFoundError:
        return False
    try:
        return mtime > database.stat().st_mtime_ns
    except FileNotFoundError:
        return True


def remove(dirs: Dirs, name: str, certbot: str) -> str | None:
    """Remove one stale lineage; return an error message, or None when it is gone."""
    if dirs.renewal(name).exists() or dirs.live(name).exists():
        proc = subprocess.run([certbot, "delete", "--non-interactive", "--config-dir", str(dirs.conf),
                               "--cert-name", name], capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            sys.stderr.write(proc.stdout[-2000:] + proc.stderr[-2000:])
            return f"tno_acme_lineages: certbot delete --cert-name {name} failed (rc {proc.returncode})"
    dirs.names(name).unlink(missing_ok=True)
    dirs.snippet(name).unlink(missing_ok=True)
    return None


def main(argv: list[str]) -> int:
    flags = {"--prune": False, "--check": False, "--dovecot": False}
    valued: dict[str, list[str]] = {"--certbot": [], "--timer": [], "--verify": [], "--file": [], "--sni-map": []}
    args: list[str] = []
    rest = iter(argv)
    for arg in rest:
        if arg in flags:
            flags[arg] = True
        elif arg in valued:
            valued[arg].append(next(rest, ""))
        else:
            args.append(arg)
    certbot = valued["--certbot"][-1] if valued["--certbot"] else "certbot"
    bad = [k for k in args[3:] if not LINEAGE.fullmatch(k)]
    empty = [k for k, values in valued.items() if "" in values]
    if len(args) < 3 or bad or empty:
        sys.stderr.write(f"usage: tno_acme_lineages.py [--prune] [--check] [--certbot PATH] "
                         f"[--timer UNIT] [--verify CAFILE] [--file PATH]... [--dovecot] [--sni-map PATH] "
                         f"CONFDIR STATEDIR NGINXDIR [tno-SLUG ...] (not lineage names: {bad}; "
                         f"options without a value: {empty})\n")
        return 2
    dirs = Dirs(Path(args[0]), Path(args[1]), Path(args[2]))
    keep = set(args[3:])
    found = present(dirs)
    stale = sorted(found - keep)
    deleted: list[str] = []
    errors: list[str] = []
    if flags["--prune"]:
        for name in stale:
            error = None if flags["--check"] else remove(dirs, name, certbot)
            if error:
                errors.append(error)
            else:
                deleted.append(name)
    serving = live(dirs, found & keep)
    report: dict[str, object] = {"live": serving, "stale": stale, "deleted": deleted}
    if not flags["--prune"]:
        report["names"] = names_files(dirs, keep)
        report["files"] = {path: file_state(Path(path)) for path in valued["--file"]}
        if valued["--verify"]:
            report["untrusted"] = untrusted(dirs, serving, valued["--verify"][-1])
        if valued["--timer"]:
            report["timer_ready"] = timer_ready(valued["--timer"][-1])
        if flags["--dovecot"]:
            report["dovecot_version"] = dovecot_version()
        if valued["--sni-map"]:
            report["sni_map_pending"] = sni_map_pending(Path(valued["--sni-map"][-1]))
    print(json.dumps(report))
    for error in errors:
        sys.stderr.write(error + "\n")
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
