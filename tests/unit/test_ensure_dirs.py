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


def test_a_dotted_active_sieve_link_is_renamed_and_check_mode_only_reports_it(tmp_path: Path) -> None:
    home = tmp_path / "a.test" / "mairie"
    (home / "sieve").mkdir(parents=True)
    os.chmod(home, 0o700)
    (home / "sieve" / "vacation.sieve").write_text('require ["vacation"];\n')
    (home / ".dovecot.sieve").symlink_to("sieve/vacation.sieve")  # Maildir++ lists it as folder "dovecot/sieve"
    ids = (str(os.getuid()), str(os.getgid()), "0700")
    move = ("--move-link", ".dovecot.sieve:dovecot.sieve")

    assert _run("--check", *move, *ids, str(home)) == f"move {home}/.dovecot.sieve -> dovecot.sieve\n"
    assert (home / ".dovecot.sieve").is_symlink()  # check mode changes nothing

    assert _run(*move, *ids, str(home)) == f"move {home}/.dovecot.sieve -> dovecot.sieve\n"
    assert not (home / ".dovecot.sieve").exists() and os.readlink(home / "dovecot.sieve") == "sieve/vacation.sieve"
    assert _run(*move, *ids, str(home)) == ""  # converged: nothing to say


def test_missing_directories_are_created_with_the_mode(tmp_path: Path) -> None:
    target = tmp_path / "b.test" / "dgs"
    out = _run(str(os.getuid()), str(os.getgid()), "0700", str(target))
    assert out == f"create {target}\n" and target.stat().st_mode & 0o7777 == 0o700
