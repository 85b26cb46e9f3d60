"""`tno_tls_mode: acme` (role tno_acme) end to end, on the spare host mail3 (issue 15). Needs root + lab.

The lab inventory is in `acme` mode (pebble, the lab DNS and its TSIG key); tests/e2e/test_acme_dns.py
checks the session fleet's certificates. This test proves what must not disturb that fleet: a fresh host's
issuance, a forced renewal, an added and a removed commune. The spare host ``mail3``
(tnoctl.lab.spare) joins the lab inventory, and temporary mail-only communes are placed on mail3, their zones
created at the lab DNS (``Lab.serve_new_zones``: DNS-01 needs the zone). Only mail3 is deployed
(`tnoctl deploy --host mail3 --yes`; the backup machinery of that deploy also runs on backup1). Proved
from the controller with ``openssl s_client -verify_return_error -verify_hostname NAME`` against
pebble's root only:

* every service name of the commune (``mail. smtp. imap. autoconfig. mta-sts.``) is served on 25
  (STARTTLS), 587 (STARTTLS) and 993, and ``mta-sts.``/``autoconfig.`` on 443, with a certificate issued
  by pebble (not the lab CA) for that name;
* ``certbot renew --force-renewal --cert-name tno-<slug>`` (what certbot.timer does when a lineage is
  due; it runs the role's deploy hook) changes the served serial on every port to the new lineage's,
  and the main PIDs of postfix, dovecot and nginx are unchanged (reloaded, never restarted); the hook
  leaves node_exporter textfiles (``tno_acme_deploy_hook_success 1``, the renewed certificate's notAfter
  under ``lineage="tno-<slug>"``), and a run of certbot.service (nothing due) records
  ``tno_acme_renew_success 1`` through the role's drop-in (alerts TnoAcme*);
* a second commune added on mail3 and deployed gets its own pebble certificates on every port, and the
  first commune's served serials are unchanged;
* once the second commune's tenant file is gone (what `tenant remove` does to it) and mail3 is redeployed,
  `certbot certificates` on mail3 no longer lists ``tno-<second>`` (certbot.timer stops renewing it), its
  renewal configuration, live directory, names file and nginx snippet are gone, /etc/postfix/tno_sni no
  longer names it, and the first commune still serves its certificate.

At the end (``finally``) platform.yml and vault.yml (borg passphrases, mail3's Rspamd password) are back to their
exact text, the temporary tenant files are gone,
their zones are dropped from the lab DNS, and mail3 leaves hosts.yml and is powered off (disk discarded).
What stays is what only `tenant remove` would undo: the two communes' borg repositories, the first
commune's authorized_keys line on backup1 (the second's went with the deploy that ran without its tenant
file) and their backup records in the state store. The next fleet-wide
deploy would therefore change backup1, so this module is named to run after every test that checks the
fleet converged or counts tenants (test_deploy_converge, test_day2_*, test_monitoring_*, the bench
smokes) and before the capture check and the lab restarts (test_zxz_*, test_zy_*, test_zz_*).
Budget: mail3's fresh deploy (packages + two issuances) is most of it; expected ~4-5 min in all
(the removal adds one deploy of mail3).
"""

from __future__ import annotations

import re
import ssl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pebblecheck
import pytest
from pebblecheck import STARTTLS_PORTS
from prometheus_client.parser import text_string_to_metric_families

from tnoctl import paths
from tnoctl.config import load_inventory, newtenant
from tnoctl.config.vault import VAULT_REL
from tnoctl.lab.lab import Lab
from tnoctl.lab.spare import SPARE_ADDRESS, SPARE_NAME, spare_host

pytestmark = [pytest.mark.root, pytest.mark.lab]

# Two communes the lab inventory does not have (and that no other e2e test adds), mail only, on mail3.
FIRST = {"slug": "ternay", "name": "Ternay", "insee": "69297", "domain": "ternay.test"}
SECOND = {"slug": "solaize", "name": "Solaize", "insee": "69296", "domain": "solaize.test"}
MAIL_NAMES = ("mail", "smtp", "imap", "autoconfig", "mta-sts")  # role tno_acme's tno_acme_mail_names
WEB_NAMES = ("autoconfig", "mta-sts")  # the mail host's nginx serves these two on 443
RELOAD_WAIT = 20.0  # seconds for a reloaded service to serve the renewed certificate on new connections
# The real main process of each service (Debian's postfix.service is a oneshot wrapper with no PID).
UNITS = ("dovecot", "nginx")
POSTFIX_MASTER_PID = "/var/spool/postfix/pid/master.pid"
"""Debian's postfix@.service says GuessMainPID=no (MainPID stays 0): Postfix's master writes its own PID here."""
PLATFORM = paths.LAB_INVENTORY / "group_vars" / "all" / "platform.yml"
VAULT = paths.LAB_INVENTORY / VAULT_REL
WINDOW = "Mon-Sun 00:00-24:00"  # always open: the deploy's window guard never refuses
ACME_LINE = "\ntno_tls_mode: acme\n"


def _endpoints(tenant: dict[str, str]) -> list[tuple[str, int]]:
    """(server name, port) of every TLS endpoint of the commune on its mail host."""
    domain = tenant["domain"]
    out = [(f"{n}.{domain}", port) for n in MAIL_NAMES for port in (*STARTTLS_PORTS, 993)]
    return out + [(f"{n}.{domain}", 443) for n in WEB_NAMES]


def _ok(fleet: Any, *argv: str) -> str:
    started = time.monotonic()
    out = fleet.ok(*argv)
    print(f"\ntnoctl {' '.join(argv)}: {time.monotonic() - started:.1f}s")
    return out


def _served(name: str, port: int, pebble_root: Path) -> dict[str, str]:
    """The certificate mail3 presents for ``name`` on ``port``, verified against pebble's root alone."""
    return pebblecheck.served(SPARE_ADDRESS, name, port, pebble_root)


def _lineage(fleet: Any, tenant: dict[str, str]) -> dict[str, str]:
    """The certificate of the commune's lineage on mail3 (what certbot issued last)."""
    pem = fleet.ssh(SPARE_NAME, "cat", f"/etc/letsencrypt/live/tno-{tenant['slug']}/cert.pem").stdout
    return pebblecheck.fields(pem)


def _serve_all(tenant: dict[str, str], pebble_root: Path, lab_ca_subject: str) -> dict[tuple[str, int], str]:
    """Every endpoint of the commune verified (pebble, right name); their serials."""
    serials = {}
    for name, port in _endpoints(tenant):
        cert = _served(name, port, pebble_root)
        assert "Pebble" in cert["issuer"] and cert["issuer"].strip() != lab_ca_subject, (
            f"{name} on {SPARE_NAME}:{port}: issuer {cert['issuer']!r} is not pebble's intermediate")
        serials[(name, port)] = cert["serial"]
    return serials


def _main_pids(fleet: Any) -> dict[str, str]:
    pids = {unit: fleet.ssh(SPARE_NAME, "systemctl", "show", "-p", "MainPID", "--value", unit).stdout.strip()
            for unit in UNITS}
    pids["postfix master"] = fleet.ssh(SPARE_NAME, "cat", POSTFIX_MASTER_PID, check=False).stdout.strip()
    assert all(pid not in ("", "0") for pid in pids.values()), f"a service of {SPARE_NAME} is not running: {pids}"
    return pids


TEXTFILE_DIR = "/var/lib/prometheus/node-exporter"  # role tno_monitoring's, where tno_acme writes too


def _textfile(fleet: Any, name: str) -> dict[str, float]:
    """A node_exporter textfile of mail3, parsed by prometheus_client: {'name{label="value"}': value}."""
    text = fleet.ssh(SPARE_NAME, "cat", f"{TEXTFILE_DIR}/{name}", check=False).stdout
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
            out[s.name + (f"{{{labels}}}" if labels else "")] = s.value
    return out


@contextmanager
def _acme_communes(lab_inventory: Path) -> Iterator[list[str]]:
    """The lab in acme mode; at the end platform.yml and vault.yml exactly back, tenant files and zones gone.

    Yields the list the body appends the zones it made the lab DNS serve to (dropped at the end).
    """
    original = PLATFORM.read_text()
    assert original.count(ACME_LINE) == 1, f"{PLATFORM}: expected exactly one line 'tno_tls_mode: acme'"
    saved_vault = VAULT.read_bytes()
    zones: list[str] = []
    try:
        yield zones
    finally:  # before mail3 leaves hosts.yml: the inventory must stay valid without it
        PLATFORM.write_text(original)
        VAULT.write_bytes(saved_vault)
        for tenant in (FIRST, SECOND):
            (lab_inventory / "tenants" / f"{tenant['slug']}.yml").unlink(missing_ok=True)
        if zones:
            Lab(lab_inventory).drop_zones(zones)


def _add_commune(tenant: dict[str, str], zones: list[str]) -> None:
    """The commune on mail3, mail only, and its zone at the lab DNS (what an operator does before onboarding).

    Written by `tenant add`'s own functions (tnoctl.config.newtenant: validated with the whole inventory,
    borg passphrase generated into the vault, which the deploy's backup setup reads); `tenant add` itself
    always adds office too.
    """
    path = paths.LAB_INVENTORY / "tenants" / f"{tenant['slug']}.yml"
    assert not path.exists(), f"{path} exists: a previous run of this test did not clean up; remove it"
    inventory = load_inventory(paths.LAB_INVENTORY)
    doc = newtenant.build(inventory, tenant["slug"], tenant["name"], tenant["insee"], [tenant["domain"]], [],
                          SPARE_NAME, None, WINDOW)
    doc["services"], doc["placement"] = ["mail"], {"mail": SPARE_NAME}
    doc.pop("office")
    newtenant.write(inventory, doc, paths.LAB_INVENTORY / "vault-password")
    zones.extend(Lab(paths.LAB_INVENTORY).serve_new_zones())  # a fresh Lab: it reads the inventory as it is now
    assert tenant["domain"] in zones, f"the lab DNS did not add the zone {tenant['domain']} (added: {zones})"


def test_acme_mode_issues_serves_renews_and_onboards_per_tenant_certificates(fleet, lab) -> None:
    pebble_root = lab.acme_root_path
    assert pebble_root.is_file(), f"{pebble_root}: pebble's root is missing (lab up starts pebble and fetches it)"
    lab_ca_subject = pebblecheck.subject(paths.lab_dir() / "ca" / "ca.crt")
    started = time.monotonic()
    with spare_host(paths.LAB_INVENTORY), _acme_communes(paths.LAB_INVENTORY) as zones:
        _add_commune(FIRST, zones)
        _ok(fleet, "inventory", "validate")  # spare_host made mail3's vault secrets, as `inventory secrets` does
        _ok(fleet, "deploy", "--host", SPARE_NAME, "--yes")

        # every name of the commune, on every port, under a pebble certificate for that name
        first = _serve_all(FIRST, pebble_root, lab_ca_subject)
        issued = _lineage(fleet, FIRST)["serial"]
        assert set(first.values()) == {issued}, (
            f"tno-{FIRST['slug']}: served serials {first} differ from the lineage's certificate {issued}")
        mode = fleet.ssh(SPARE_NAME, "stat", "-c", "%a %U", "/etc/postfix/tno_sni.db").stdout.split()
        assert mode == ["600", "root"], f"/etc/postfix/tno_sni.db embeds private keys but is {mode} (want 600 root)"

        # forced renewal: certbot runs the role's deploy hook; services reloaded, not restarted
        pids = _main_pids(fleet)
        renew = fleet.ssh(SPARE_NAME, "certbot", "renew", "--force-renewal", "--no-random-sleep-on-renew",
                          "--cert-name", f"tno-{FIRST['slug']}", check=False)
        assert renew.returncode == 0, f"certbot renew on {SPARE_NAME} -> {renew.returncode}\n{renew.stderr[-2000:]}"
        renewed = _lineage(fleet, FIRST)["serial"]
        assert renewed != issued, f"tno-{FIRST['slug']}: certbot renew --force-renewal did not replace the certificate"
        deadline = time.monotonic() + RELOAD_WAIT
        while (stale := {k: v for k, v in _serve_all(FIRST, pebble_root, lab_ca_subject).items() if v != renewed}):
            assert time.monotonic() < deadline, (
                f"{RELOAD_WAIT:.0f}s after the renewal these endpoints still serve another certificate than the "
                f"renewed {renewed} (the deploy hook /etc/letsencrypt/renewal-hooks/deploy/tno-reload did not "
                f"reload them): {stale}")
            time.sleep(1)
        assert _main_pids(fleet) == pids, f"a service was restarted by the renewal (main PIDs before: {pids})"
        # ... and recorded for Prometheus (TnoAcmeDeployHookFailed, TnoAcmeCertificateNotRenewed)
        hook_prom = _textfile(fleet, "tno_acme_hook.prom")
        assert hook_prom.get("tno_acme_deploy_hook_success") == 1, f"{TEXTFILE_DIR}/tno_acme_hook.prom: {hook_prom}"
        not_after = ssl.cert_time_to_seconds(_lineage(fleet, FIRST)["notAfter"])
        expiry = f'tno_acme_certificate_expiry_timestamp_seconds{{lineage="tno-{FIRST["slug"]}"}}'
        certs_prom = _textfile(fleet, "tno_acme_certificates.prom")
        assert certs_prom.get(expiry) == not_after, f"{TEXTFILE_DIR}/tno_acme_certificates.prom: {certs_prom}"
        # certbot.timer's job (nothing due: pebble's certificates last years) records its result (drop-in)
        assert not_after > time.time() + 31 * 86400, f"tno-{FIRST['slug']} would be due: certbot.service would sleep"
        run = fleet.ssh(SPARE_NAME, "systemctl", "start", "certbot.service", check=False)
        assert run.returncode == 0, f"systemctl start certbot.service on {SPARE_NAME}: {run.stderr[-2000:]}"
        renew_prom = _textfile(fleet, "tno_acme_renew.prom")
        assert renew_prom.get("tno_acme_renew_success") == 1, (
            f"{TEXTFILE_DIR}/tno_acme_renew.prom after certbot.service ran (drop-in "
            f"/etc/systemd/system/certbot.service.d/tno-metrics.conf): {renew_prom}")

        # a second commune onboarded on mail3: its own certificates, the first commune's untouched
        _add_commune(SECOND, zones)
        _ok(fleet, "deploy", "--host", SPARE_NAME, "--yes")
        _serve_all(SECOND, pebble_root, lab_ca_subject)
        assert _lineage(fleet, SECOND)["serial"] != renewed
        after = _serve_all(FIRST, pebble_root, lab_ca_subject)
        assert after == {k: renewed for k in first}, (
            f"adding {SECOND['slug']} changed the certificate {FIRST['slug']} serves (expected {renewed}): {after}")
        assert _lineage(fleet, FIRST)["serial"] == renewed, f"tno-{FIRST['slug']} was reissued by the second deploy"

        # the second commune leaves mail3 (its tenant file gone, as `tenant remove` moves it to offboarded/):
        # the redeploy deletes its lineage (certbot.timer would renew it forever), its names file and nginx
        # snippet, and its SNI entries; the first commune keeps its certificate
        (paths.LAB_INVENTORY / "tenants" / f"{SECOND['slug']}.yml").unlink()
        _ok(fleet, "deploy", "--host", SPARE_NAME, "--yes")
        listed = fleet.ssh(SPARE_NAME, "certbot", "certificates")
        names = re.findall(r"Certificate Name: (\S+)", listed.stdout + listed.stderr)
        assert f"tno-{SECOND['slug']}" not in names and f"tno-{FIRST['slug']}" in names, (
            f"after {SECOND['slug']} left {SPARE_NAME}, `certbot certificates` lists {names}: its lineage "
            f"tno-{SECOND['slug']} must be deleted (role tno_acme, tasks/prune_lineages.yml), tno-{FIRST['slug']} kept")
        leftovers = fleet.ssh(SPARE_NAME, "sh", "-c", f"ls -d /etc/letsencrypt/renewal/tno-{SECOND['slug']}.conf "
                              f"/etc/letsencrypt/live/tno-{SECOND['slug']} /etc/letsencrypt/tno/tno-{SECOND['slug']}"
                              f".names /etc/nginx/tno-acme-{SECOND['slug']}.conf 2>/dev/null; true").stdout.split()
        assert leftovers == [], f"{SPARE_NAME} still has files of the departed tno-{SECOND['slug']}: {leftovers}"
        expiries = _textfile(fleet, "tno_acme_certificates.prom")  # rewritten by the prune, not by a renewal
        first_lines = [k for k in expiries if f"tno-{FIRST['slug']}" in k]
        second_lines = [k for k in expiries if f"tno-{SECOND['slug']}" in k]
        assert first_lines and not second_lines, f"{TEXTFILE_DIR}/tno_acme_certificates.prom: {expiries}"
        sni = fleet.ssh(SPARE_NAME, "cat", "/etc/postfix/tno_sni").stdout
        assert SECOND["domain"] not in sni and FIRST["domain"] in sni, f"/etc/postfix/tno_sni after the removal:\n{sni}"
        assert _serve_all(FIRST, pebble_root, lab_ca_subject) == {k: renewed for k in first}, (
            f"removing {SECOND['slug']} changed the certificate {FIRST['slug']} serves (expected {renewed})")
    print(f"\nacme mode on {SPARE_NAME}: {time.monotonic() - started:.1f}s in all")
