"""tno_acme's tno_acme_lineages.py on a fake /etc/letsencrypt (#15): stale tenant lineages are removed.

A tenant offboarded or moved away kept its lineage on the old host, renewed by certbot.timer forever.
The script reads the host's ``tno-*`` lineages once (what issuance needs: which have a certificate) and,
with --prune, removes those not kept: ``certbot delete`` (a stand-in here that logs its argv and removes
the lineage as certbot does), the names file and the nginx snippet. Never a lineage not named tno-*;
--check lists and removes nothing; a failed certbot delete exits 1 after trying the others.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest
import yaml

from tnoctl import paths

SCRIPT = paths.PROJECT_ROOT / "roles" / "tno_acme" / "files" / "tno_acme_lineages.py"
CERTBOT = """#!/bin/sh
# certbot delete --non-interactive --config-dir DIR --cert-name NAME (what the script passes)
echo "$*" >> "$(dirname "$0")/certbot.log"
[ "$5" = --cert-name ] || exit 2
[ "$6" != tno-broken ] || exit 1
rm -rf "$4/live/$6" "$4/archive/$6" "$4/renewal/$6.conf"
"""


@pytest.fixture()
def host(tmp_path: Path) -> Path:
    """Lineages givors (kept), bron (left), broken (left, certbot fails), and other.example (not ours)."""
    conf = tmp_path / "le"
    for name in ("tno-givors", "tno-bron", "other.example"):
        (conf / "live" / name).mkdir(parents=True)
        (conf / "live" / name / "fullchain.pem").write_text("pem")
        (conf / "renewal").mkdir(exist_ok=True)
        (conf / "renewal" / f"{name}.conf").write_text("renewal")
    (conf / "renewal" / "tno-broken.conf").write_text("renewal")
    (tmp_path / "state").mkdir()
    (tmp_path / "nginx").mkdir()
    for slug in ("givors", "bron", "broken", "gone"):  # gone: only leftovers of an earlier removal
        (tmp_path / "state" / f"tno-{slug}.names").write_text("names\n")
        (tmp_path / "nginx" / f"tno-acme-{slug}.conf").write_text("snippet")
    (tmp_path / "nginx" / "tno-office.conf").write_text("vhost")
    (tmp_path / "certbot").write_text(CERTBOT)
    (tmp_path / "certbot").chmod(0o755)
    return tmp_path


def _run(host: Path, *flags: str, keep: tuple[str, ...] = ("tno-givors",)) -> subprocess.CompletedProcess[str]:
    argv = ["/usr/bin/python3", str(SCRIPT), *flags, "--certbot", str(host / "certbot"), str(host / "le"),
            str(host / "state"), str(host / "nginx"), *keep]
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)


def _files(host: Path) -> list[str]:
    return sorted(str(p.relative_to(host)) for p in host.rglob("*") if p.is_file() and p.name != "certbot.log")


def test_read_lists_issued_and_stale_lineages_and_changes_nothing(host: Path) -> None:
    before = _files(host)
    proc = _run(host, keep=("tno-givors", "tno-new"))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"live": ["tno-givors"], "stale": ["tno-broken", "tno-bron", "tno-gone"],
                                       "deleted": [], "names": {"tno-givors": "names\n", "tno-new": None},
                                       "files": {}}
    assert _files(host) == before and not (host / "certbot.log").exists()


def test_check_mode_lists_what_it_would_delete_and_deletes_nothing(host: Path) -> None:
    before = _files(host)
    proc = _run(host, "--prune", "--check")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["deleted"] == ["tno-broken", "tno-bron", "tno-gone"]
    assert _files(host) == before and not (host / "certbot.log").exists()


def test_prune_deletes_stale_tno_lineages_only_and_fails_loudly_on_a_certbot_error(host: Path) -> None:
    proc = _run(host, "--prune")
    assert proc.returncode == 1
    assert "certbot delete --cert-name tno-broken failed" in proc.stderr
    assert json.loads(proc.stdout)["deleted"] == ["tno-bron", "tno-gone"]
    log = (host / "certbot.log").read_text().splitlines()
    assert log == [f"delete --non-interactive --config-dir {host / 'le'} --cert-name tno-broken",
                   f"delete --non-interactive --config-dir {host / 'le'} --cert-name tno-bron"]
    assert _files(host) == [
        "certbot", "le/live/other.example/fullchain.pem", "le/live/tno-givors/fullchain.pem",
        "le/renewal/other.example.conf", "le/renewal/tno-broken.conf", "le/renewal/tno-givors.conf",
        "nginx/tno-acme-broken.conf", "nginx/tno-acme-givors.conf", "nginx/tno-office.conf",
        "state/tno-broken.names", "state/tno-givors.names"]  # broken kept whole: the next deploy retries it
    (host / "le" / "renewal" / "tno-broken.conf").unlink()  # e.g. the operator removed it by hand
    again = _run(host, "--prune")
    assert again.returncode == 0 and json.loads(again.stdout)["deleted"] == ["tno-broken"]
    assert json.loads(_run(host, "--prune").stdout) == {"live": ["tno-givors"], "stale": [], "deleted": []}


def test_a_host_without_certbot_yet_has_no_lineages(tmp_path: Path) -> None:
    argv = ["/usr/bin/python3", str(SCRIPT), "--prune", str(tmp_path / "le"), str(tmp_path / "state"),
            str(tmp_path / "nginx"), "tno-givors"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    assert (proc.returncode, json.loads(proc.stdout)) == (0, {"live": [], "stale": [], "deleted": []})


def test_a_kept_name_that_is_not_a_lineage_is_refused(host: Path) -> None:
    proc = _run(host, "--prune", keep=("tno-givors", "../etc"))
    assert proc.returncode == 2 and "../etc" in proc.stderr and proc.stdout == ""


def test_site_removes_departed_lineages_only_after_the_roles_that_used_them():
    """Deleting a lineage before tno_mail/tno_proxy rewrote the vhosts including its nginx snippet would make
    `nginx -t` (the deploy hook's, the roles' handlers') fail on the old vhost: the removal is a later play."""
    plays = yaml.safe_load((paths.PROJECT_ROOT / "playbooks" / "site.yml").read_text())
    names = [p["name"] for p in plays]
    prune = next(i for i, n in enumerate(names) if n.startswith("Certificates of tenants that left"))
    for role in ("tno_acme", "tno_mail", "tno_proxy"):
        assert any(r["role"] == role for p in plays[:prune] for r in p.get("roles", [])), role
    (task,) = plays[prune]["tasks"]
    assert task["ansible.builtin.include_role"] == {"name": "tno_acme", "tasks_from": "prune_lineages.yml"}
    assert plays[prune]["hosts"] == "mail:proxy"
    # deploy only: playbooks/check.yml imports site.yml with tno_action=check (read-only)
    assert task["when"] == "tno_tls_mode | default('files') == 'acme' and tno_action | default('deploy') == 'deploy'"
    remove, _metrics = yaml.safe_load((SCRIPT.parent.parent / "tasks" / "prune_lineages.yml").read_text())
    assert remove["check_mode"] is False
    assert "'--check' if ansible_check_mode" in remove["ansible.builtin.script"]["cmd"]
    assert "__tno_acme_present.stdout" in remove["when"]  # no execution unless the deploy's read found one


FAKE_DPKG = """#!/bin/sh
# dpkg-query -W -f FORMAT PACKAGE...: certbot installed, its plugin only as config-files, dovecot-core absent
case "$3" in
  *Version*) printf 'unknown ok not-installed\\t' ; exit 1 ;;
  *) shift 3; for p in "$@"; do case "$p" in
       certbot) printf 'certbot\\tinstall ok installed\\n' ;;
       python3-certbot-dns-rfc2136) printf 'python3-certbot-dns-rfc2136\\tdeinstall ok config-files\\n' ;;
     esac; done; exit 1 ;;
esac
"""
FAKE_APT_CACHE = """#!/bin/sh
printf 'dovecot-core:\\n  Installed: (none)\\n  Candidate: 1:2.4.1+dfsg1-6\\n'
"""
FAKE_SYSTEMCTL = """#!/bin/sh
[ "$1" = is-enabled ] && { echo enabled; exit 0; }
echo inactive; exit 3
"""


def test_the_read_reports_packages_timer_credentials_dovecot_and_the_sni_map(host: Path) -> None:
    """What tasks/deploy.yml skips its apt, timer, credentials and tno_mail's map build on (issue 19)."""
    bin_dir = host / "bin"
    bin_dir.mkdir()
    for name, text in (("dpkg-query", FAKE_DPKG), ("apt-cache", FAKE_APT_CACHE), ("systemctl", FAKE_SYSTEMCTL)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    secret = host / "le" / "tno-rfc2136.ini"
    secret.write_text("dns_rfc2136_secret = s3cret\n")
    secret.chmod(0o600)
    (host / "postfix").mkdir()
    (host / "postfix" / "tno_sni").write_text("map\n")
    argv = ["/usr/bin/python3", str(SCRIPT), "--timer", "certbot.timer", "--file", str(secret),
            "--file", str(host / "missing.ini"), "--dovecot",
            "--sni-map", str(host / "postfix" / "tno_sni"), str(host / "le"), str(host / "state"),
            str(host / "nginx"), "tno-givors"]
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin"}
    before = _files(host)
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False, env=env)
    assert proc.returncode == 0, proc.stderr
    state = json.loads(proc.stdout)
    assert "packages_missing" not in state  # tno_common's package read decides the role's apt
    assert state["timer_ready"] is False  # enabled but not active: systemd_service must start it
    assert state["files"][str(secret)]["sha1"] == hashlib.sha1(b"dns_rfc2136_secret = s3cret\n").hexdigest()
    assert state["files"][str(secret)]["mode"] == "0600" and state["files"][str(host / "missing.ini")] is None
    assert "s3cret" not in proc.stdout  # the checksum, never the content
    assert state["dovecot_version"] == "2.4.1+dfsg1-6"  # not installed: apt's candidate, epoch dropped
    assert state["sni_map_pending"] is True  # no tno_sni.db yet
    assert _files(host) == before  # read-only
    (host / "postfix" / "tno_sni.db").write_text("db")
    again = json.loads(subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False, env=env).stdout)
    assert again["sni_map_pending"] is False


def test_an_option_without_its_value_is_refused(host: Path) -> None:
    proc = subprocess.run(["/usr/bin/python3", str(SCRIPT), str(host / "le"), str(host / "state"),
                           str(host / "nginx"), "--timer"], capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 2 and "--timer" in proc.stderr and proc.stdout == ""


def _ca(tmp: Path, name: str) -> tuple[Path, Path]:
    """A throw-away root CA (certificate, key) made with the openssl CLI, as a lab's pebble root."""
    cert, key = tmp / f"{name}.crt", tmp / f"{name}.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", str(key), "-out", str(cert), "-subj", f"/CN={name}", "-days", "2",
                    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign"],
                   check=True, capture_output=True)
    return cert, key


def _lineage(live: Path, ca: tuple[Path, Path], days: int = 2) -> None:
    """live/cert.pem issued by ``ca``, chain.pem (the issuer, as certbot writes it) and fullchain.pem."""
    live.mkdir(parents=True, exist_ok=True)
    key, csr = live / "privkey.pem", live / "req.csr"
    subprocess.run(["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
                    str(key), "-out", str(csr), "-subj", "/CN=mail.givors.test"], check=True, capture_output=True)
    subprocess.run(["openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca[0]), "-CAkey", str(ca[1]),
                    "-out", str(live / "cert.pem"), "-days", str(days)], check=True, capture_output=True)
    (live / "chain.pem").write_bytes(ca[0].read_bytes())
    (live / "fullchain.pem").write_bytes((live / "cert.pem").read_bytes() + ca[0].read_bytes())


def test_verify_reports_the_live_lineages_the_trust_store_no_longer_verifies(tmp_path: Path) -> None:
    """A CA change (the lab's pebble restarted with a new root) leaves lineages the host does not trust:
    --verify names them, so the role issues them again; lineages of the trusted CA are not named."""
    old_ca, new_ca = _ca(tmp_path, "old-root"), _ca(tmp_path, "new-root")
    conf = tmp_path / "le"
    _lineage(conf / "live" / "tno-givors", new_ca)
    _lineage(conf / "live" / "tno-bron", old_ca)
    for sub in ("state", "nginx"):
        (tmp_path / sub).mkdir()
    proc = subprocess.run(["python3", str(SCRIPT), "--verify", str(new_ca[0]), str(conf), str(tmp_path / "state"),
                           str(tmp_path / "nginx"), "tno-givors", "tno-bron", "tno-absent"],
                          capture_output=True, text=True, check=True)
    report = json.loads(proc.stdout)
    assert report["live"] == ["tno-bron", "tno-givors"]
    assert report["untrusted"] == ["tno-bron"]  # a missing lineage is issued as missing, not as untrusted
    without = subprocess.run(["python3", str(SCRIPT), str(conf), str(tmp_path / "state"), str(tmp_path / "nginx"),
                              "tno-givors"], capture_output=True, text=True, check=True)
    assert "untrusted" not in json.loads(without.stdout)
