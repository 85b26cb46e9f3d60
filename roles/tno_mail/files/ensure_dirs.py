"""Create missing directories with one owner and mode, in one process: a loop of `file` tasks costs a round
trip per mailbox (minutes for thousands of mailboxes). Prints one line per directory it created or fixed
(or would, with --check); an empty output means nothing changed.

``--home NAME``: each DIR (a maildir root) also gets its Dovecot home DIR/NAME, with the same owner and
mode. The home must not be the maildir root: Maildir++ lists every dotted entry of the root as a folder,
so Pigeonhole's ``.dovecot.lda-dupes`` and ``.dovecot.sieve`` broke quota counting there.
``--move OLD``: an entry OLD left in a maildir root by the old layout (home = root) moves into the home
under the same name, unless the home already has one (then it is left and reported).

Usage: ensure_dirs.py [--check] [--home NAME [--move OLD]...] UID GID MODE DIR...
"""

import os
import sys


def ensure(path: str, uid: int, gid: int, mode: int, check: bool) -> None:
    """Create ``path`` or fix its owner and mode; print what changed (or would)."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        print(f"create {path}")
        if not check:
            os.makedirs(path, exist_ok=True)
            os.chown(path, uid, gid)
            os.chmod(path, mode)
        return
    if (info.st_uid, info.st_gid, info.st_mode & 0o7777) != (uid, gid, mode):
        print(f"fix {path}")
        if not check:
            os.chown(path, uid, gid)
            os.chmod(path, mode)


def move_into_home(root: str, home: str, names: list[str], check: bool) -> None:
    """Move the old layout's entries (``names``) of the maildir root into the home; symlinks are not followed."""
    for name in names:
        old, new = os.path.join(root, name), os.path.join(home, name)
        if not os.path.lexists(old):
            continue
        if os.path.lexists(new):
            print(f"keep {old} (the home already has {name})", file=sys.stderr)  # not a change: no churn
            continue
        print(f"move {old} -> {new}")
        if not check:
            os.rename(old, new)


def main(argv: list[str]) -> int:
    check = argv[:1] == ["--check"]
    if check:
        argv = argv[1:]
    home, moves = None, []
    if argv[:1] == ["--home"]:
        home, argv = argv[1], argv[2:]
        while argv[:1] == ["--move"]:
            moves.append(argv[1])
            argv = argv[2:]
    uid, gid, mode, dirs = int(argv[0]), int(argv[1]), int(argv[2], 8), argv[3:]
    for path in dirs:
        ensure(path, uid, gid, mode, check)
        if home is not None:
            ensure(os.path.join(path, home), uid, gid, mode, check)
            if os.path.isdir(path):
                move_into_home(path, os.path.join(path, home), moves, check)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
