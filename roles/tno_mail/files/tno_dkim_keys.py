"""Ensure one DKIM key pair per domain under a key directory, in OpenDKIM's historical layout.

Usage: tno_dkim_keys.py [--check] KEYDIR SELECTOR BITS OWNER DOMAIN...

For every DOMAIN: KEYDIR/DOMAIN/SELECTOR.private (RSA, PEM, mode 0600, owned by OWNER) is generated
only when missing (an existing key, e.g. made by opendkim-genkey before the move to Rspamd, is kept,
so published DNS records stay valid), and KEYDIR/DOMAIN/SELECTOR.txt (the DNS record, in
opendkim-genkey's format, which `tnoctl tenant dns` reads) is written from the private key when
missing. Ownership and modes are corrected when they differ. Prints one line per change; --check
prints what it would change and changes nothing. Runs on the mail host (Python 3 + openssl).
"""

from __future__ import annotations

import base64
import os
import pwd
import subprocess
import sys
from pathlib import Path


def txt_record(selector: str, public_der: bytes) -> str:
    """The DNS TXT record of a public key, split in 250-character quoted chunks like opendkim-genkey."""
    value = "v=DKIM1; h=sha256; k=rsa; p=" + base64.b64encode(public_der).decode()
    chunks = [value[i:i + 250] for i in range(0, len(value), 250)]
    quoted = "\n\t  ".join(f'"{chunk}"' for chunk in chunks)
    return f"{selector}._domainkey\tIN\tTXT\t( {quoted} )  ; ----- DKIM key {selector}\n"


def _public_der(private: Path) -> bytes:
    return subprocess.run(["openssl", "rsa", "-in", str(private), "-pubout", "-outform", "DER"],
                          check=True, capture_output=True).stdout


def _fix(path: Path, uid: int, gid: int, mode: int, check: bool) -> bool:
    st = path.stat()
    if (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (uid, gid, mode):
        return False
    if not check:
        os.chown(path, uid, gid)
        path.chmod(mode)
    return True


def ensure(keydir: Path, selector: str, bits: int, owner: str, domain: str, check: bool) -> list[str]:
    """Make one domain's key pair right; return the changes (made, or to make with ``check``)."""
    entry = pwd.getpwnam(owner)
    uid, gid = entry.pw_uid, entry.pw_gid
    changes: list[str] = []
    folder = keydir / domain
    private = folder / f"{selector}.private"
    txt = folder / f"{selector}.txt"
    if not folder.is_dir():
        changes.append(f"create {folder}")
        if check:
            return [*changes, f"generate {private}", f"write {txt}"]
        folder.mkdir(parents=True, mode=0o750)
    if _fix(folder, uid, gid, 0o750, check):
        changes.append(f"owner/mode {folder}")
    if not private.exists():
        changes.append(f"generate {private}")
        if check:
            return [*changes, f"write {txt}"]
        tmp = private.with_suffix(".private.tmp")
        old_umask = os.umask(0o077)
        try:
            subprocess.run(["openssl", "genrsa", "-out", str(tmp), str(bits)], check=True, capture_output=True)
        finally:
            os.umask(old_umask)
        tmp.rename(private)
    if _fix(private, uid, gid, 0o600, check):
        changes.append(f"owner/mode {private}")
    if not txt.exists():
        changes.append(f"write {txt}")
        if not check:
            txt.write_text(txt_record(selector, _public_der(private)))
    if txt.exists() and _fix(txt, uid, gid, 0o644, check):
        changes.append(f"owner/mode {txt}")
    return changes


def main(argv: list[str]) -> int:
    check = "--check" in argv
    args = [a for a in argv if a != "--check"]
    keydir, selector, bits, owner, *domains = args
    for domain in domains:
        for change in ensure(Path(keydir), selector, int(bits), owner, domain, check):
            print(change)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
