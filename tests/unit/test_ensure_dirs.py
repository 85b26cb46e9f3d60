"""roles/tno_mail/files/ensure_dirs.py: directories created/fixed in one run, and the Sieve link migration."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tnoctl import paths

SCRIPT = paths.ROLES_DIR / "tno_mail" / "files" / "ensure_dirs.py"


def _run(*argv: str) -> str:
    proc = subprocess.run([sys.executable, str(SCRIPT), *argv], capture_output=True, text=True, check=True)
    return proc.stdout


def test_the_old_layouts_sieve_entries_move_from_the_maildir_root_into_the_home(tmp_path: Path) -> None:
    root = tmp_path / "a.test" / "mairie"
    (root / "sieve").mkdir(parents=True)
    os.chmod(root, 0o700)
    (root / "sieve" / "vacation.sieve").write_text('require ["vacation"];\n')
    (root / ".dovecot.sieve").symlink_to("sieve/vacation.sieve")  # Maildir++ listed it as folder "dovecot/sieve"
    ids = (str(os.getuid()), str(os.getgid()), "0700")
    opts = ("--home", "home", "--move", "sieve", "--move", ".dovecot.sieve", "--move", ".dovecot.lda-dupes")
    home = root / "home"
    said = (f"create {home}\nmove {root}/sieve -> {home}/sieve\nmove {root}/.dovecot.sieve -> {home}/.dovecot.sieve\n")

    assert _run("--check", *opts, *ids, str(root)) == said
    assert (root / ".dovecot.sieve").is_symlink() and not home.exists()  # check mode changes nothing

    assert _run(*opts, *ids, str(root)) == said
    assert not os.path.lexists(root / ".dovecot.sieve") and not (root / "sieve").exists()
    assert (home / ".dovecot.sieve").read_text() == 'require ["vacation"];\n'  # the relative link still resolves
    assert home.stat().st_mode & 0o7777 == 0o700
    assert _run(*opts, *ids, str(root)) == ""  # converged: nothing to say


def test_an_entry_the_home_already_has_is_left_in_the_root_and_not_reported_as_a_change(tmp_path: Path) -> None:
    root = tmp_path / "b.test" / "dgs"
    (root / "home" / "sieve").mkdir(parents=True)
    (root / "sieve").mkdir()
    for d in (root, root / "home"):
        os.chmod(d, 0o700)
    ids = (str(os.getuid()), str(os.getgid()), "0700")
    proc = subprocess.run([sys.executable, str(SCRIPT), "--home", "home", "--move", "sieve", *ids, str(root)],
                          capture_output=True, text=True, check=True)
    assert proc.stdout == "" and "keep" in proc.stderr and (root / "sieve").is_dir()


def test_missing_directories_are_created_with_the_mode(tmp_path: Path) -> None:
    target = tmp_path / "b.test" / "dgs"
    out = _run(str(os.getuid()), str(os.getgid()), "0700", str(target))
    assert out == f"create {target}\n" and target.stat().st_mode & 0o7777 == 0o700
