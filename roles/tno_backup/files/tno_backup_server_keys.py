"""Read, in one run, the backup host's SSH host key and the serve account's current authorized_keys.

Usage: tno_backup_server_keys.py HOSTKEY_PUB AUTHORIZED_KEYS

Prints one JSON object: ``hostkey`` (the key type and base64 of HOSTKEY_PUB, the line the mail and office
hosts pin) and ``authorized_lines`` (the lines of AUTHORIZED_KEYS, [] when it does not exist yet: the
role keeps the lines of hosts not reached in this run). Read-only, so it also runs in check mode. One
execution for what were two slurps (issue 19).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    hostkey = Path(argv[0]).read_text().split()[:2]
    authorized = Path(argv[1])
    lines = authorized.read_text().splitlines() if authorized.is_file() else []
    print(json.dumps({"hostkey": " ".join(hostkey), "authorized_lines": lines}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
