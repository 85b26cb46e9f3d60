"""Create missing directories with one owner and mode, in one process: a loop of `file` tasks costs a round
trip per mailbox (minutes for thousands of mailboxes). Prints one line per directory it created or fixed
(or would, with --check); an empty output means nothing changed.

``--move-link OLD:NEW``: in each directory, a symlink named OLD is renamed NEW (a layout migration:
the active Sieve script link moved from ``.dovecot.sieve``, which Maildir++ takes for a folder and
which breaks quota counting, to ``dovecot.sieve``).

Usage: ensure_dirs.py [--check] [--move-link OLD:NEW] UID GID MODE DIR...
"""

import os
import sys


def main(argv: list[str]) -> int:
    check = argv[:1] == ["--check"]
    if check:
        argv = argv[1:]
    moves: list[tuple[str, str]] = []
    while argv[:1] == ["--move-link"]:
        old, new = argv[1].split(":", 1)
        moves.append((old, new))
        argv = argv[2:]
    uid, gid, mode, dirs = int(argv[0]), int(argv[1]), int(argv[2], 8), argv[3:]
    for path in dirs:
        try:
            info = os.stat(path)
        except FileNotFoundError:
            print(f"create {path}")
            if not check:
                os.makedirs(path, exist_ok=True)
                os.chown(path, uid, gid)
                os.chmod(path, mode)
            continue
        if (info.st_uid, info.st_gid, info.st_mode & 0o7777) != (uid, gid, mode):
            print(f"fix {path}")
            if not check:
                os.chown(path, uid, gid)
                os.chmod(path, mode)
        for old, new in moves:
            link = os.path.join(path, old)
            if os.path.islink(link):
                print(f"move {link} -> {new}")
                if not check:
                    os.replace(link, os.path.join(path, new))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
