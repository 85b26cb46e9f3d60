"""tno_acme's deploy hook `tno-reload` run for real with /bin/sh (#15): failures are loud, the map is safe.

The hook is rendered as Ansible does, with its PATH pointing at a directory of stand-ins for systemctl,
postfix, doveconf, nginx and postmap (plus the few coreutils it needs), and Postfix's directory in
tmp_path. The stand-ins log what they were asked and fail when the test says so:

* a failed validation (`postfix check`, `doveconf -n`, `nginx -t`) or postmap makes the hook exit 1,
  after it still tried the other services (certbot then prints and logs the failed hook);
* the SNI map is built aside and renamed over the previous .db only when postmap succeeded (a failed
  postmap leaves the previous map byte for byte), mode 0600;
* `tno-reload map [--check]` (what role tno_mail runs) rebuilds only a missing or outdated map, says so,
  changes nothing with --check and reloads nothing;
* the hook and `tno-reload renew-result` (certbot.service's ExecStopPost) leave node_exporter textfiles,
  parsed here with prometheus_client's own text parser: the hook's and the renewal's outcome, each tno-*
  lineage's expiry; nothing without the textfile directory, and a metric that cannot be written never
  changes the exit status.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from prometheus_client.parser import text_string_to_metric_families
from role_render import render

from tnoctl import paths

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
COREUTILS = ("cp", "mv", "rm", "chmod", "cat", "date", "openssl")


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
        self.letsencrypt = root / "letsencrypt"
        self.textfiles = root / "textfile"  # node_exporter's directory: absent unless a test creates it
        self.path.write_text(render("tno_acme", "tno-reload.sh.j2", {
            "__tno_acme_hook_path": str(self.bin), "__tno_acme_postfix_dir": str(self.postfix),
            "tno_acme_config_dir": str(self.letsencrypt), "tno_acme_textfile_dir": str(self.textfiles)}))
        self.path.chmod(0o755)
        self.map = self.postfix / "tno_sni"
        self.db = self.postfix / "tno_sni.db"

    def flag(self, *names: str) -> None:
        for name in names:
            (self.root / name).touch()

    def run(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        env = {"TNO_T": str(self.root), "PATH": "/nonexistent", **(env or {})}
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


# --- textfile metrics (TnoAcme* alerts) ---------------------------------------------------------------------

NOT_AFTER = datetime(2031, 5, 4, 10, 0, 0, tzinfo=UTC)
PROM_FILES = ["tno_acme_certificates.prom", "tno_acme_hook.prom", "tno_acme_renew.prom"]


def _certificate(not_after: datetime) -> bytes:
    """A self-signed certificate (PEM) whose notAfter is ``not_after``: what certbot's live/<lineage>/cert.pem holds."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mail.givors.test")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(not_after - timedelta(days=90))
            .not_valid_after(not_after).sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM)


def _live(hook: Hook, lineage: str, pem: bytes) -> None:
    """live/<lineage>/cert.pem as certbot lays it out: a symbolic link into archive/."""
    archive = hook.letsencrypt / "archive" / lineage
    archive.mkdir(parents=True)
    (archive / "cert1.pem").write_bytes(pem)
    live = hook.letsencrypt / "live" / lineage
    live.mkdir(parents=True)
    (live / "cert.pem").symlink_to(archive / "cert1.pem")


def _samples(path: Path) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """A .prom file through prometheus_client's text parser: {(name, labels): value}; a bad line raises."""
    out = {}
    for family in text_string_to_metric_families(path.read_text()):
        assert family.type == "gauge" and family.documentation, family.name
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


@pytest.fixture()
def metered(hook: Hook) -> Hook:
    """The hook on a host with node_exporter's textfile directory and three lineages (one not ours)."""
    hook.textfiles.mkdir()
    _live(hook, "tno-givors", _certificate(NOT_AFTER))
    _live(hook, "tno-bron", _certificate(NOT_AFTER + timedelta(days=3)))
    _live(hook, "someone-else", _certificate(NOT_AFTER))  # not a tno-* lineage: not this role's
    return hook


def _expiries(hook: Hook) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return _samples(hook.textfiles / "tno_acme_certificates.prom")


EXPIRIES = {
    ("tno_acme_certificate_expiry_timestamp_seconds", (("lineage", "tno-bron"),)):
        NOT_AFTER.timestamp() + 3 * 86400,
    ("tno_acme_certificate_expiry_timestamp_seconds", (("lineage", "tno-givors"),)): NOT_AFTER.timestamp(),
}


def test_the_hook_records_its_success_and_each_tno_lineage_expiry(metered: Hook) -> None:
    before = time.time()
    proc = metered.run()
    assert (proc.returncode, proc.stderr) == (0, "")
    assert sorted(p.name for p in metered.textfiles.iterdir()) == ["tno_acme_certificates.prom", "tno_acme_hook.prom"]
    hook_metrics = _samples(metered.textfiles / "tno_acme_hook.prom")
    assert hook_metrics[("tno_acme_deploy_hook_success", ())] == 1
    assert before - 1 <= hook_metrics[("tno_acme_deploy_hook_last_run_timestamp_seconds", ())] <= time.time() + 1
    assert _expiries(metered) == EXPIRIES
    for name in ("tno_acme_certificates.prom", "tno_acme_hook.prom"):  # node_exporter runs as another user
        assert stat.S_IMODE((metered.textfiles / name).stat().st_mode) == 0o644


@pytest.mark.parametrize("failing", ["fail-nginx", "fail-postmap", "fail-reload-dovecot"])
def test_a_failed_hook_records_0(metered: Hook, failing: str) -> None:
    metered.flag(failing)
    assert metered.run().returncode == 1
    assert _samples(metered.textfiles / "tno_acme_hook.prom")[("tno_acme_deploy_hook_success", ())] == 0
    assert _expiries(metered) == EXPIRIES
    metered.root.joinpath(failing).unlink()
    assert metered.run().returncode == 0  # the next run reloads everything: the alert clears
    assert _samples(metered.textfiles / "tno_acme_hook.prom")[("tno_acme_deploy_hook_success", ())] == 1


@pytest.mark.parametrize(("result", "success"), [("success", 1), ("exit-code", 0), ("signal", 0), (None, 0)])
def test_renew_result_records_certbot_service_outcome_and_touches_nothing_else(metered: Hook, result: str | None,
                                                                               success: int) -> None:
    before = time.time()
    proc = metered.run("renew-result", env={"SERVICE_RESULT": result} if result else {})
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")
    renew = _samples(metered.textfiles / "tno_acme_renew.prom")
    assert renew[("tno_acme_renew_success", ())] == success
    assert before - 1 <= renew[("tno_acme_renew_last_run_timestamp_seconds", ())] <= time.time() + 1
    assert _expiries(metered) == EXPIRIES
    assert metered.log() == [] and not metered.db.exists()  # no map built, nothing validated or reloaded
    assert not (metered.textfiles / "tno_acme_hook.prom").exists()


def test_metrics_mode_drops_a_deleted_lineage_and_touches_nothing_else(metered: Hook) -> None:
    """After `certbot delete` of a departed commune (tasks/prune_lineages.yml): no stale expiry line stays."""
    assert metered.run().returncode == 0
    shutil.rmtree(metered.letsencrypt / "live" / "tno-bron")
    shutil.rmtree(metered.letsencrypt / "archive" / "tno-bron")
    log, hook_prom = metered.log(), (metered.textfiles / "tno_acme_hook.prom").read_text()
    proc = metered.run("metrics")
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")
    assert _expiries(metered) == {k: v for k, v in EXPIRIES.items() if ("lineage", "tno-bron") not in k[1]}
    assert "tno-bron" not in (metered.textfiles / "tno_acme_certificates.prom").read_text()
    assert metered.log() == log and (metered.textfiles / "tno_acme_hook.prom").read_text() == hook_prom


def test_the_prune_rewrites_the_metrics_only_after_deleting_and_never_in_check_mode() -> None:
    tasks = yaml.safe_load((paths.ROLES_DIR / "tno_acme" / "tasks" / "prune_lineages.yml").read_text())
    prune, metrics = tasks
    assert metrics["ansible.builtin.command"]["argv"] == ["{{ __tno_acme_hook }}", "metrics"]
    assert metrics["when"] == f"{prune['register']} is changed and not ansible_check_mode"


def test_without_the_textfile_directory_nothing_is_written_nor_said(hook: Hook) -> None:
    _live(hook, "tno-givors", _certificate(NOT_AFTER))
    proc = hook.run()
    assert (proc.returncode, proc.stderr) == (0, "")
    renew = hook.run("renew-result", env={"SERVICE_RESULT": "success"})
    assert (renew.returncode, renew.stderr) == (0, "")
    assert not hook.textfiles.exists()


def test_a_metric_that_cannot_be_written_never_fails_the_hook_nor_leaves_a_temporary_file(metered: Hook) -> None:
    (metered.bin / "mv").unlink()  # a full disk, say: the rename into the textfile directory fails
    (metered.bin / "mv").write_text('#!/bin/sh\ncase "$3" in *.prom) exit 1 ;; esac\nexec ' + shutil.which("mv")
                                    + ' "$@"\n')
    (metered.bin / "mv").chmod(0o755)
    proc = metered.run()
    assert proc.returncode == 0, proc.stderr
    assert "could not write" in proc.stderr and "tno_acme_hook.prom (metrics only)" in proc.stderr
    assert {"reload postfix", "reload dovecot", "reload nginx"} <= set(metered.log())
    renew = metered.run("renew-result", env={"SERVICE_RESULT": "success"})
    assert renew.returncode == 0 and "tno_acme_renew.prom (metrics only)" in renew.stderr
    assert list(metered.textfiles.iterdir()) == []


def test_an_unreadable_certificate_is_said_and_left_out(metered: Hook) -> None:
    (metered.letsencrypt / "archive" / "tno-bron" / "cert1.pem").write_text("not a certificate\n")
    proc = metered.run()
    assert proc.returncode == 0 and "could not read the expiry of" in proc.stderr and "tno-bron" in proc.stderr
    assert _expiries(metered) == {k: v for k, v in EXPIRIES.items() if ("lineage", "tno-givors") in k[1]}


def test_the_alert_rules_query_only_series_the_hook_writes(metered: Hook) -> None:
    assert metered.run().returncode == 0
    assert metered.run("renew-result", env={"SERVICE_RESULT": "success"}).returncode == 0
    written = {name for path in metered.textfiles.iterdir() for name, _ in _samples(path)}
    doc = yaml.safe_load((paths.PROJECT_ROOT / "exporters" / "rules" / "tno.yml").read_text())
    queried = {name for group in doc["groups"] for rule in group["rules"]
               for name in re.findall(r"\btno_acme_[a-z_]+", rule["expr"])}
    assert queried == {"tno_acme_deploy_hook_success", "tno_acme_renew_success",
                       "tno_acme_certificate_expiry_timestamp_seconds"}
    assert queried <= written
