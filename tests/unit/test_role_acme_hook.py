"""tno_acme's deploy hook `tno-reload` run for real with /bin/sh (#15): failures are loud, the map is safe.

The hook is rendered as Ansible does, with its PATH pointing at a directory of stand-ins for systemctl,
postfix, doveconf, nginx and postmap (plus the few coreutils it needs), and Postfix's directory in
tmp_path. The stand-ins log what they were asked and fail when the test says so:

* a failed validation (`postfix check`, `doveconf -n`, `nginx -t`) or postmap makes the hook exit 1,
  after it still tried the other services (certbot then prints and logs the failed hook);
* the SNI map is built aside and renamed over the previous .db only when postmap succeeded (a failed
  postmap leaves the previous map byte for byte), mode 0600;
* `tno-reload map [--check]` (what role tno_mail runs) rebuilds only a missing or outdated map, says so,
  changes nothing with --check and reloads nothing.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from role_render import render

STUBS = {
    "systemctl": """case "$1" in
  is-active) [ -e "$TNO_T/active-$3" ]; exit $? ;;
  reload) echo "reload $2" >> "$TNO_T/log"; [ ! -e "$TNO_T/fail-reload-$2" ] ;;
  *) exit 2 ;;
esac""",
    "postfix": 'echo "postfix $*" >> "$TNO_T/log"; [ ! -e "$TNO_T/fail-postfix" ]',
    "doveconf": 'echo "doveconf $*" >> "$TNO_T/log"; [ ! -e "$TNO_T/fail-doveconf" ]',
    "nginx": 'echo "nginx $*" >> "$TNO_T/log"; [ ! -e "$TNO_T/fail-nginx" ]',
    # postmap -F hash:FILE writes FILE.db; a failing one leaves a half-written FILE.db behind
    "postmap": """file=${2#hash:}
echo "postmap $*" >> "$TNO_T/log"
if [ -e "$TNO_T/fail-postmap" ]; then echo partial > "$file.db"; exit 1; fi
{ echo "db of:"; cat "$file"; } > "$file.db\"""",
}
COREUTILS = ("cp", "mv", "rm", "chmod", "cat")


class Hook:
    """The rendered hook, its stand-ins and Postfix directory under one tmp_path."""

    def __init__(self, root: Path, postmap: bool = True) -> None:
        self.root = root
        self.bin = root / "bin"
        self.postfix = root / "postfix"
        self.bin.mkdir()
        self.postfix.mkdir()
        for name in COREUTILS:
            (self.bin / name).symlink_to(shutil.which(name) or f"/bin/{name}")
        for name, body in STUBS.items():
            if name == "postmap" and not postmap:
                continue
            script = self.bin / name
            script.write_text(f"#!/bin/sh\n{body}\n")
            script.chmod(0o755)
        self.path = root / "tno-reload"
        self.path.write_text(render("tno_acme", "tno-reload.sh.j2", {
            "__tno_acme_hook_path": str(self.bin), "__tno_acme_postfix_dir": str(self.postfix)}))
        self.path.chmod(0o755)
        self.map = self.postfix / "tno_sni"
        self.db = self.postfix / "tno_sni.db"

    def flag(self, *names: str) -> None:
        for name in names:
            (self.root / name).touch()

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {"TNO_T": str(self.root), "PATH": "/nonexistent"}
        return subprocess.run(["/bin/sh", str(self.path), *args], env=env, capture_output=True, text=True,
                              timeout=30, check=False)

    def log(self) -> list[str]:
        path = self.root / "log"
        return path.read_text().splitlines() if path.exists() else []

    def leftovers(self) -> list[str]:
        return sorted(p.name for p in self.postfix.iterdir() if ".new" in p.name)


@pytest.fixture()
def hook(tmp_path: Path) -> Hook:
    h = Hook(tmp_path)
    h.map.write_text("mail.givors.test /k.pem /c.pem\n")
    h.flag("active-postfix", "active-dovecot", "active-nginx")
    return h


def test_renewal_rebuilds_the_map_root_only_and_reloads_every_running_service(hook: Hook) -> None:
    proc = hook.run()
    assert proc.returncode == 0, proc.stderr
    assert hook.db.read_text() == "db of:\nmail.givors.test /k.pem /c.pem\n"
    assert stat.S_IMODE(hook.db.stat().st_mode) == 0o600 and hook.db.stat().st_uid == os.getuid()
    assert hook.leftovers() == []
    log = hook.log()
    assert {"reload postfix", "reload dovecot", "reload nginx", "postfix check", "doveconf -n",
            "nginx -t -q"} <= set(log)
    assert log.index("postfix check") < log.index("reload postfix")
    assert not any("restart" in line for line in log)


@pytest.mark.parametrize(("failing", "service"), [("fail-postfix", "postfix"), ("fail-doveconf", "dovecot"),
                                                  ("fail-nginx", "nginx"), ("fail-reload-nginx", "nginx")])
def test_a_failed_validation_or_reload_exits_1_after_trying_the_other_services(hook: Hook, failing: str,
                                                                                service: str) -> None:
    hook.flag(failing)
    proc = hook.run()
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert proc.stderr.startswith("tno-reload: ") and service in proc.stderr
    reloaded = {line.split()[1] for line in hook.log() if line.startswith("reload ")}
    others = {"postfix", "dovecot", "nginx"} - {service}
    assert others <= reloaded  # the other services were still reloaded
    if failing != "fail-reload-nginx":
        assert service not in reloaded  # never reloaded on a configuration that does not validate


def test_a_failed_postmap_keeps_the_previous_map_and_fails(hook: Hook) -> None:
    hook.db.write_bytes(b"previous map")
    hook.db.chmod(0o600)
    hook.flag("fail-postmap")
    proc = hook.run()
    assert proc.returncode == 1 and "kept the previous" in proc.stderr
    assert hook.db.read_bytes() == b"previous map"
    assert hook.leftovers() == []


def test_stopped_services_are_neither_validated_nor_reloaded(tmp_path: Path) -> None:
    hook = Hook(tmp_path)
    hook.map.write_text("")
    assert hook.run().returncode == 0
    assert hook.log() == ["postmap -F hash:" + str(hook.map) + ".new"]


def test_before_postfix_is_installed_the_hook_skips_the_map_and_map_mode_fails(tmp_path: Path) -> None:
    hook = Hook(tmp_path, postmap=False)
    hook.map.write_text("mail.givors.test /k.pem /c.pem\n")
    hook.flag("active-nginx")
    proc = hook.run()
    assert proc.returncode == 0, proc.stderr
    assert not hook.db.exists() and hook.log() == ["nginx -t -q", "reload nginx"]
    assert hook.run("map", "--check").stdout == "would rebuild\n"  # check mode: Postfix would be installed
    failed = hook.run("map")
    assert failed.returncode == 1 and "postmap is not installed" in failed.stderr


def test_map_mode_rebuilds_only_a_missing_or_outdated_map_and_reloads_nothing(hook: Hook) -> None:
    check = hook.run("map", "--check")
    assert (check.returncode, check.stdout) == (0, "would rebuild\n") and not hook.db.exists()
    first = hook.run("map")
    assert (first.returncode, first.stdout) == (0, "rebuilt\n") and hook.db.exists()
    assert stat.S_IMODE(hook.db.stat().st_mode) == 0o600
    again = hook.run("map")
    assert (again.returncode, again.stdout) == (0, "")  # up to date: nothing to do, nothing said
    assert hook.run("map", "--check").stdout == ""
    hook.map.write_text("smtp.bron.test /k2.pem /c2.pem\n")
    later = hook.db.stat().st_mtime + 5
    os.utime(hook.map, (later, later))
    assert hook.run("map").stdout == "rebuilt\n"
    assert hook.db.read_text() == "db of:\nsmtp.bron.test /k2.pem /c2.pem\n"
    assert not any(line.startswith("reload ") for line in hook.log())


def test_map_mode_without_a_map_does_nothing(tmp_path: Path) -> None:
    """`files` mode never reaches the hook; a mail host in acme mode always has tno_sni (maybe empty)."""
    hook = Hook(tmp_path)
    proc = hook.run("map")
    assert (proc.returncode, proc.stdout, hook.log()) == (0, "", [])
