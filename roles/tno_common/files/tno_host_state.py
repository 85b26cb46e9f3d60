"""Read what tno_common needs to know about the host, in one read-only run (issue 19).

Usage: tno_host_state.py LINK LOCALE_GEN [LOCALE...]

Prints one JSON object:

- ``packages``: every package dpkg has installed, ``{name: version}`` (the role's `apt` runs only when
  one of its packages is missing; exported as the fact ``tno_common_host_packages`` so that the later
  roles of the same run skip their no-op `apt` too: about a second and one module execution each);
- ``held``: those of them on hold (tno_office's `dpkg_selections` then has nothing to do);
- ``link``: the target of the symbolic link LINK (``/etc/localtime``), or null when it is no link;
- ``locales_pending``: the LOCALEs whose line in LOCALE_GEN (``/etc/locale.gen``) is not exactly
  ``<locale> UTF-8``, judged as ``lineinfile`` does with the role's regexp ``^#? *<locale> `` (the last
  matching line counts); all of them when the file is missing.

A task the state says is already converged is skipped; the others run the real module, so check mode
and diffs are those of `apt`, `file` and `lineinfile`.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path


def installed_packages() -> tuple[dict[str, str], list[str]]:
    """``{package: version}`` of the packages dpkg has installed (status ``... installed``), and those of
    them held (selection ``hold``, what ``dpkg_selections`` sets)."""
    out = subprocess.run(["dpkg-query", "-W", "-f", "${Package}\t${Version}\t${Status}\n"],
                         capture_output=True, text=True, check=True).stdout
    packages: dict[str, str] = {}
    held: list[str] = []
    for line in out.splitlines():
        fields = line.split("\t")
        status = fields[2].split() if len(fields) == 3 else []
        if status[-1:] == ["installed"]:
            packages[fields[0]] = fields[1]
            if status[0] == "hold":
                held.append(fields[0])
    return packages, sorted(held)


def link_target(path: str) -> str | None:
    """What the symbolic link ``path`` points to, or None when it is missing or not a link."""
    return os.readlink(path) if os.path.islink(path) else None


def locales_pending(locale_gen: Path, locales: list[str]) -> list[str]:
    """The ``locales`` lineinfile would change in ``locale_gen`` (line ``<locale> UTF-8``).

    As ansible.builtin.lineinfile compares: the file's lines as ``readlines()`` gives them (bytes, newline
    kept), the last one the regexp matches must equal the line plus ``\\n`` (a last line without its
    newline, or ending in ``\\r\\n``, would be rewritten)."""
    try:
        lines = io.BytesIO(locale_gen.read_bytes()).readlines()
    except FileNotFoundError:
        return list(locales)
    pending: list[str] = []
    for locale in locales:
        pattern = re.compile(b"^#? *" + re.escape(locale.encode()) + b" ")
        matching = [line for line in lines if pattern.search(line)]
        if not matching or matching[-1] != f"{locale} UTF-8\n".encode():
            pending.append(locale)
    return pending


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: tno_host_state.py LINK LOCALE_GEN [LOCALE...]", file=sys.stderr)
        return 2
    link, locale_gen, locales = argv[0], Path(argv[1]), argv[2:]
    packages, held = installed_packages()
    print(json.dumps({"packages": packages, "held": held, "link": link_target(link),
                      "locales_pending": locales_pending(locale_gen, locales)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
