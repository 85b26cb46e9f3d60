"""Issue 16 item 3 on the lab: `tenant onboard` of a new commune on mail2/office2, interrupted and rerun.

A commune the lab inventory does not have, ``mions`` (mail on mail2, office on office2, open window), is
added with `tenant add` to the checked-in lab inventory, and its zone is created at the lab DNS
(`Lab.serve_new_zones`: the operator creates a commune's zone before onboarding; `lab up` made zones
only for the tenants it saw). `tnoctl tenant onboard mions --yes` runs as a subprocess and gets SIGINT
as soon as its journal shows the deploy done (exit 130); the same command run again says it resumes
and finishes. Proved from outside: a user of a mail1 commune submits a message (587, STARTTLS, AUTH)
that arrives in the new mailbox over IMAPS (certificate verified as ``mail.mions.test``); `backup list`
shows its first mail and office archives; `status --json` shows every check of the commune ok, the
drill (``backup_verified``) included; the lab DNS serves its MX and `tenant dns --check` passes; the lab is
in `tno_tls_mode: acme`, so its names are served with its own pebble certificates while every other
commune's served certificates (serials, on every port) are those it had before.

Named `test_zw_...`: it runs after the tests that only read the session fleet and before test_zx (which
removes bron for good) and test_zy/test_zz (lab restart/recovery). At its end the fleet is as it found
it: `tenant remove mions` (hosts redeployed without it, repository shredded), its tenant file gone,
vault.yml back to its exact text, its zone dropped from the lab DNS. Reuses the session `fleet`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pebblecheck
import pytest
from fleet import _lab_secrets, sigint_as_in_a_terminal
from test_deploy_mail import _message, _submission, _wait_for

from tnoctl import paths
from tnoctl.backup import naming
from tnoctl.config import load_inventory
from tnoctl.config.vault import VAULT_REL
from tnoctl.lab.lab import Lab
from tnoctl.run.dnsclient import DnspythonClient
from tnoctl.state.journal import list_journals

pytestmark = [pytest.mark.root, pytest.mark.lab]
SLUG, DOMAIN = "mions", "mions.test"
ADD = ["tenant", "add", SLUG, "--name", "Mions", "--insee", "69283", "--domain", DOMAIN, "--mailbox", "mairie",
       "--mailbox", "canary", "--mail-host", "mail2", "--office-host", "office2", "--window", "Mon-Sun 00:00-24:00"]
DEPLOY_DEADLINE = 900.0


def _ok(fleet: Any, *argv: str) -> tuple[str, str]:
    rc, out, err = fleet.tnoctl(*argv)
    assert rc == 0, f"tnoctl {' '.join(argv)} -> {rc}\n{out[-3000:]}\n{err[-3000:]}"
    return out, err


def _done_steps(fleet: Any) -> list[str]:
    """Steps the onboarding journal of SLUG records as done (its first journal: a fresh session state dir)."""
    journals = [j for j in list_journals(fleet.state_dir / "onboarding") if j.id.startswith(f"onboard-{SLUG}-")]
    return journals[0].progress([SLUG])[SLUG].done_steps if journals else []


def _interrupt_after_deploy(fleet: Any, log: Path) -> str:
    """Start `tenant onboard` as its own process, SIGINT it once the deploy is journaled done; its output.

    Output goes to a file, not a pipe: nobody reads a pipe while the deploy's progress fills it.
    """
    argv = [sys.executable, "-m", "tnoctl", "--inventory", str(paths.LAB_INVENTORY), "--state-dir",
            str(fleet.state_dir), "tenant", "onboard", SLUG, "--yes"]
    env = {**os.environ, "TNO_VAULT_PASSWORD_FILE": str(paths.LAB_INVENTORY / "vault-password")}
    with open(log, "w") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                preexec_fn=sigint_as_in_a_terminal)
        try:
            deadline = time.monotonic() + DEPLOY_DEADLINE
            while proc.poll() is None and "deploy" not in _done_steps(fleet) and time.monotonic() < deadline:
                time.sleep(0.3)
            assert proc.poll() is None, f"onboarding ended before it could be interrupted:\n{log.read_text()[-3000:]}"
            assert "deploy" in _done_steps(fleet), f"the deploy step never finished:\n{log.read_text()[-3000:]}"
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=300)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    output = log.read_text()
    assert proc.returncode == 130, output[-3000:]
    return output


def test_fifth_commune_onboarded_after_an_interruption_receives_mail_is_backed_up_and_healthy(fleet, backups,
                                                                                             tmp_path):
    vault = paths.LAB_INVENTORY / VAULT_REL
    tenant_file = paths.LAB_INVENTORY / "tenants" / f"{SLUG}.yml"
    saved_vault = vault.read_bytes()
    assert not tenant_file.exists(), f"{tenant_file} is left over from an earlier run"
    sender_slug = next(s for s in fleet.tenants_with("mail") if fleet.mail_host(s) == "mail1")
    added, rc, out, err = False, 0, "", ""
    pebble_root = Lab(paths.LAB_INVENTORY).acme_root_path
    lab_ca_subject = pebblecheck.subject(paths.lab_dir() / "ca" / "ca.crt")
    others_before = pebblecheck.served_serials(fleet, pebble_root, lab_ca_subject)
    try:
        _ok(fleet, *ADD)
        added = True
        assert Lab(paths.LAB_INVENTORY).serve_new_zones() == [DOMAIN]  # fresh Lab: it reads the new tenant

        started = time.monotonic()
        _interrupt_after_deploy(fleet, tmp_path / "onboard-interrupted.log")
        out, err = _ok(fleet, "tenant", "onboard", SLUG, "--yes")
        print(f"\ntenant onboard {SLUG}: interrupted + rerun in {time.monotonic() - started:.1f}s\n{out}")
        assert f"resuming onboard-{SLUG}-1: already done: validate, deploy" in err
        assert f"tenant {SLUG} onboarded" in out + err

        # the new commune as the platform sees it
        view = dataclasses.replace(fleet, inventory=load_inventory(paths.LAB_INVENTORY), secrets=_lab_secrets())
        assert (view.mail_host(SLUG), view.office_host(SLUG)) == ("mail2", "office2")
        # its names under its own pebble certificates; the other communes' certificates untouched
        served = pebblecheck.served_serials(view, pebble_root, lab_ca_subject)
        assert served.get(SLUG), f"{SLUG}: no TLS endpoint found for its names"
        assert {k: v for k, v in served.items() if k != SLUG} == others_before, (
            f"onboarding {SLUG} changed the certificates other communes serve")
        # a user of a mail1 commune writes to it: mail1 has no transport entry for mions.test, it follows the MX
        # the onboarding published (mail.mions.test -> mail2)
        transport = fleet.ssh("mail1", "cat", "/etc/postfix/tno/transport").stdout
        assert not [line for line in transport.splitlines() if line.startswith(DOMAIN + " ")], transport
        sender = fleet.mailboxes(sender_slug)[0]
        rcpt = view.mailboxes(SLUG)[0]
        token = uuid.uuid4().hex
        with _submission(fleet, sender_slug, sender) as smtp:
            assert smtp.send_message(_message(sender[0], [rcpt[0]], token)) == {}
        _wait_for(view, SLUG, rcpt, token)

        # first backup of each component; its drill (restore test on the backup host) is `backup_verified`
        names = [a["name"] for a in json.loads(_ok(fleet, "backup", "list", "--tenant", SLUG, "--json")[0])]
        components = {naming.parse_archive(SLUG, name) for name in names}
        assert {("mail", None), ("office", None)} <= components, names
        checks = json.loads(_ok(fleet, "status", "--tenant", SLUG, "--json")[0])["checks"]
        mine = {(c["component"], c["check"]): c for c in checks if c["tenant"] == SLUG}
        assert ("mail", "backup_verified") in mine and ("office", "backup_verified") in mine, sorted(mine)
        assert [k for k, c in mine.items() if not c["ok"]] == [], {k: c for k, c in mine.items() if not c["ok"]}

        # published by the onboarding's DNS step
        dns = DnspythonClient(fleet.inventory.platform.tno_dns_server)
        assert dns.query(f"{DOMAIN}.", "MX") == [f"10 mail.{DOMAIN}."]
        _ok(fleet, "tenant", "dns", SLUG, "--check")
    finally:
        if added:
            rc, out, err = fleet.tnoctl("tenant", "remove", SLUG, "--yes")
        tenant_file.unlink(missing_ok=True)  # moved away by a successful remove; deleted after a failed one
        vault.write_bytes(saved_vault)
        Lab(paths.LAB_INVENTORY).drop_zones([DOMAIN])
    assert rc == 0, f"tenant remove {SLUG} -> {rc}\n{out[-3000:]}\n{err[-3000:]}"
    assert not tenant_file.exists() and vault.read_bytes() == saved_vault
    searched = ["/etc/postfix", "/etc/dovecot", "/etc/coolwsd", "/etc/tno-backup", "/etc/letsencrypt/renewal",
                "/etc/letsencrypt/tno"]
    leftovers = {h: fleet.ssh(h, "grep", "-rlsIw", "-e", SLUG, "-e", DOMAIN, *searched, check=False).stdout.split()
                 for h in ("mail1", "mail2", "office2")}
    assert {h: files for h, files in leftovers.items() if files} == {}  # tenant remove took it off every host
