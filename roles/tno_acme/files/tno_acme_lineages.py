"""Read the tenant lineages on a host and, with --prune, remove those of tenants it no longer serves.

Usage: tno_acme_lineages.py [--prune] [--check] [--certbot PATH] CONFDIR STATEDIR NGINXDIR [KEEP ...]

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
  the same list of what would be removed, and nothing is.

One execution per host replaces a ``stat`` per tenant (issue 19). Exit 1 when a removal failed, after
trying the others (certbot's output on stderr); exit 2 on a bad argument.
"""

from __future__ import annotations

import json
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
    flags = {"--prune": False, "--check": False}
    certbot = "certbot"
    args: list[str] = []
    rest = iter(argv)
    for arg in rest:
        if arg in flags:
            flags[arg] = True
        elif arg == "--certbot":
            certbot = next(rest, "")
        else:
            args.append(arg)
    bad = [k for k in args[3:] if not LINEAGE.fullmatch(k)]
    if len(args) < 3 or not certbot or bad:
        sys.stderr.write(f"usage: tno_acme_lineages.py [--prune] [--check] [--certbot PATH] CONFDIR STATEDIR "
                         f"NGINXDIR [tno-SLUG ...] (not lineage names: {bad})\n")
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
    print(json.dumps({"live": live(dirs, found & keep), "stale": stale, "deleted": deleted}))
    for error in errors:
        sys.stderr.write(error + "\n")
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
