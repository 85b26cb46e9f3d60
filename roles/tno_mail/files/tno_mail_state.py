"""Read what the mail role needs to know about the host, in one run (read-only; issue 19).

Usage: tno_mail_state.py PACKAGE...

Prints one JSON object: ``dovecot_version`` (first word of ``dovecot --version``; the role picks the
2.3 or 2.4 configuration syntax from it), ``resolv_conf`` (the text of /etc/resolv.conf: whether the
host has a resolver decides Rspamd's DNS settings) and ``installed`` (those of the PACKAGEs dpkg
has installed: the OpenDKIM packages to retire). One execution for what were three (`command`,
`slurp`, `package_facts`). Fails with one line on stderr when Dovecot is missing or does not answer.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

RESOLV_CONF = Path("/etc/resolv.conf")
NOT_INSTALLED = {"n", "c"}
"""Second letter of dpkg's db:Status-Abbrev for a package that is not (or only its conffiles) installed."""


def installed(packages: list[str]) -> list[str]:
    """The ``packages`` dpkg has installed (any state but not-installed and config-files), in order."""
    if not packages:
        return []
    out = subprocess.run(["dpkg-query", "-W", "-f", "${Package} ${db:Status-Abbrev}\n", *packages],
                         capture_output=True, text=True).stdout  # rc 1 when one is unknown: expected
    status = {fields[0]: fields[1] for fields in (line.split() for line in out.splitlines()) if len(fields) > 1}
    return [name for name in packages if len(status.get(name, "")) > 1 and status[name][1] not in NOT_INSTALLED]


def dovecot_version() -> str:
    """First word of ``dovecot --version``."""
    try:
        done = subprocess.run(["dovecot", "--version"], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise SystemExit(f"tno_mail_state: dovecot --version failed: {exc}") from None
    words = done.stdout.split()
    if not words:
        raise SystemExit("tno_mail_state: dovecot --version printed nothing")
    return words[0]


def main(argv: list[str]) -> int:
    resolv = RESOLV_CONF.read_text(errors="replace") if RESOLV_CONF.exists() else ""
    print(json.dumps({"dovecot_version": dovecot_version(), "resolv_conf": resolv, "installed": installed(argv)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
