"""Role tno_acme's deploy, run for real on localhost (issue 19): a converged host costs two executions.

tasks/deploy.yml runs through ansible-runner against a fake /etc/letsencrypt, names, nginx, Postfix and
Dovecot directories in tmp_path, with stand-ins (on the play's PATH) for what the host's tools report:
``openssl verify`` (a lineage trusted unless its fullchain.pem says "untrusted"), ``dpkg-query``
(certbot, its plugin and dovecot-core installed), ``systemctl`` (certbot.timer enabled and active; no
service running, so the deploy hook reloads nothing) and ``certbot`` (logs its argv and creates the
lineage as ``certbot certonly`` does). Proved:

* the first deploy issues the missing lineage, writes the credentials, hook, names file and SNI maps, and
  runs the handler; the next one changes nothing, calls no certbot and costs 2 module executions (apt,
  the credentials, the hook before certbot, issuance, the timer and the prune skipped);
* changed names (a new domain) and a missing lineage trigger certbot for that lineage only; a lineage
  the host no longer trusts (``openssl`` stand-in) is issued again with --force-renewal;
* check mode reports the change and writes nothing, and calls no certbot (on a fresh host too);
* the TSIG secret is in no job event; a changed secret rewrites the credentials file (censored task);
* Postfix's SNI map up to date and tno_sni unchanged: the fact that lets tno_mail skip `tno-reload map`.
"""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tnoctl import paths
from tnoctl.plan.calls import PlaybookCall
from tnoctl.run.ansible import run_playbook

pytestmark = pytest.mark.integration

SECRET = "c2VjcmV0LXRzaWcta2V5LWZvci10aGUtdGVzdA=="
ISSUE = "Issue or expand a tenant's certificate (only tenants whose names changed, untrusted or that have none)"
CREDENTIALS = "Install the RFC 2136 credentials (TSIG secret from the vault)"
DPKG = """#!/bin/sh
# dpkg-query -W -f FORMAT PACKAGE...: every package installed, dovecot-core 2.3
case "$3" in
  *Version*) printf 'install ok installed\\t1:2.3.19.1+dfsg1-2.1+deb12u1' ;;
  *) shift 3; for p in "$@"; do printf '%s\\tinstall ok installed\\n' "$p"; done ;;
esac
"""
SYSTEMCTL = """#!/bin/sh
case "$1" in
  is-enabled) echo enabled ;;
  is-active) [ "$2" = --quiet ] && exit 3; echo active ;;
  daemon-reload) echo daemon-reload >> "$(dirname "$0")/../systemctl.log" ;;
  *) exit 1 ;;
esac
"""
CERTBOT = """#!/bin/sh
echo "$*" >> "{log}"
while [ $# -gt 0 ]; do [ "$1" = --cert-name ] && name=$2; shift; done
mkdir -p "{le}/live/$name" && echo pem > "{le}/live/$name/fullchain.pem"
"""
OPENSSL = """#!/bin/sh
# openssl verify -CAfile FILE -untrusted CHAIN CERT: a lineage whose fullchain.pem says "untrusted" fails, as
# a certificate from a CA the host no longer trusts does
for last; do :; done
if grep -q untrusted "$(dirname "$last")/fullchain.pem"; then
  echo "error 20 at 1 depth lookup: unable to get local issuer certificate"; exit 2
fi
echo "$last: OK"
"""
PLAY = [{"name": "tno_acme deploy", "hosts": "mail", "gather_facts": False,
         "environment": {"PATH": "{{ __test_bin }}:/usr/bin:/bin"},
         "tasks": [{"name": "The role's deploy", "ansible.builtin.include_role": {
             "name": "tno_acme", "tasks_from": "deploy.yml"}}]}]


def _tenant(domains: list[str]) -> dict[str, Any]:
    return {"slug": "givors", "services": ["mail"], "domains": domains, "placement": {"mail": "mail1"}}


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("dpkg-query", DPKG), ("systemctl", SYSTEMCTL), ("openssl", OPENSSL),
                       ("certbot", CERTBOT.format(log=tmp_path / "certbot.log", le=tmp_path / "le"))):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    (tmp_path / "pb.yml").write_text(yaml.safe_dump(PLAY, sort_keys=False))
    _inventory(tmp_path, ["givors.test"], SECRET)
    return tmp_path


def _inventory(root: Path, domains: list[str], secret: str) -> None:
    platform = {"ansible_python_interpreter": sys.executable, "tno_tls_mode": "acme", "tno_tenants": [_tenant(domains)],
                "tno_acme_directory_url": "https://acme.test/directory", "tno_acme_contact": "ops@example.test",
                "tno_dns_server": "198.18.0.1", "tno_dns_tsig_key_name": "tno-acme.", "tno_dns_tsig_algorithm":
                "hmac-sha256", "tno_dns_tsig_secret_vault": "tno_vault_dns_tsig", "tno_vault_dns_tsig": secret,
                # what tno_common's package read (earlier in site.yml) reports: certbot and its plugin installed
                "tno_common_host_packages": {"certbot": "2.1.0-4", "python3-certbot-dns-rfc2136": "2.1.0-1"}}
    inventory = {"all": {"vars": platform, "children": {"mail": {"hosts": {"mail1": {"ansible_connection": "local"}}}}}}
    (root / "hosts.yml").write_text(yaml.safe_dump(inventory))


def _run(root: Path, run_id: str, *, check: bool = False) -> tuple[Any, list[dict[str, Any]]]:
    extra = {"tno_acme_config_dir": str(root / "le"), "tno_acme_state_dir": str(root / "le" / "tno"),
             "tno_acme_credentials_file": str(root / "le" / "tno-rfc2136.ini"),
             "__tno_acme_nginx_dir": str(root / "nginx"),
             "__tno_acme_postfix_dir": str(root / "postfix"), "__tno_acme_dovecot_dir": str(root / "dovecot"),
             "__tno_acme_certbot_dropin": str(root / "systemd" / "certbot.service.d" / "tno-metrics.conf"),
             "__tno_acme_hook_path": f"{root / 'bin'}:/usr/bin:/bin", "__test_bin": str(root / "bin")}
    call = PlaybookCall(playbook=str(root / "pb.yml"), extra_vars=extra, check=check)
    result = run_playbook(call, inventory=root / "hosts.yml", state_dir=root / "state-run", run_id=run_id)
    assert result.success, [f.message for f in result.failed_tasks]
    events_dir = next((root / "state-run" / "runs" / run_id).rglob("job_events"))
    return result, [json.loads(p.read_text()) for p in sorted(events_dir.glob("*.json"))]


def _executions(root: Path, run_id: str) -> int:
    count = runpy.run_path(str(paths.PROJECT_ROOT / "bench" / "deploy_overhead.py"))["module_executions"]
    return count(next((root / "state-run" / "runs" / run_id).rglob("job_events"))).get("mail1", 0)


def _ran(events: list[dict[str, Any]], task: str) -> bool:
    return any(e.get("event") in ("runner_on_ok", "runner_item_on_ok") and e["event_data"].get("task") == task
               for e in events)


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for d in ("le", "nginx", "postfix", "dovecot")
            for p in (root / d).rglob("*") if p.is_file()}


def _run_files(root: Path) -> str:
    """Every artifact of every run so far (job events, the runner's stdout, ...), as one text."""
    return "".join(p.read_text(errors="replace") for p in (root / "state-run").rglob("*") if p.is_file())


def _certbot_calls(root: Path) -> list[str]:
    log = root / "certbot.log"
    return log.read_text().splitlines() if log.exists() else []


def test_a_converged_host_costs_two_executions_and_issuance_follows_the_names(root: Path) -> None:
    fresh, _ = _run(root, "c0", check=True)  # a host switching to acme, previewed: nothing written, no certbot
    assert fresh.hosts["mail1"].changed > 0 and _snapshot(root) == {} and not _certbot_calls(root)
    assert not any((root / d).exists() for d in ("le", "nginx", "postfix", "dovecot"))
    first, events = _run(root, "d1")
    assert first.hosts["mail1"].changed > 0
    (call,) = _certbot_calls(root)
    assert "--cert-name tno-givors" in call and "--domains=mail.givors.test" in call
    assert (root / "le" / "tno" / "tno-givors.names").read_text() == (
        "autoconfig.givors.test\nimap.givors.test\nmail.givors.test\nmta-sts.givors.test\nsmtp.givors.test\n")
    credentials = root / "le" / "tno-rfc2136.ini"
    assert f"dns_rfc2136_secret = {SECRET}" in credentials.read_text() and credentials.stat().st_mode & 0o777 == 0o600
    assert (root / "le" / "renewal-hooks" / "deploy" / "tno-reload").stat().st_mode & 0o777 == 0o755
    assert "ssl_cert = </" in (root / "dovecot" / "50-acme-sni.conf").read_text()  # dpkg-query: Dovecot 2.3
    assert _ran(events, "Rebuild the Postfix SNI map and reload the services that use the certificates")
    dropin = root / "systemd" / "certbot.service.d" / "tno-metrics.conf"
    assert "renew-result" in dropin.read_text()  # certbot.service records each renewal's outcome
    assert (root / "systemctl.log").read_text() == "daemon-reload\n"  # systemd reads the new drop-in

    again, events = _run(root, "d2")
    assert again.hosts["mail1"].changed == 0 and len(_certbot_calls(root)) == 1
    assert _executions(root, "d2") == 2  # the read and the one tno_files call
    assert not _ran(events, CREDENTIALS) and not _ran(events, ISSUE)
    assert not _ran(events, "Rebuild the Postfix SNI map and reload the services that use the certificates")
    assert (root / "systemctl.log").read_text() == "daemon-reload\n"  # drop-in unchanged: no reload
    assert SECRET not in _run_files(root)

    # a new domain: check mode reports it and writes nothing, calls no certbot; the deploy issues it
    _inventory(root, ["givors.test", "givors.example"], SECRET)
    before = _snapshot(root)
    check, events = _run(root, "c1", check=True)
    assert check.hosts["mail1"].changed > 0 and _snapshot(root) == before and len(_certbot_calls(root)) == 1
    _run(root, "d3")
    assert len(_certbot_calls(root)) == 2 and "--domains=mail.givors.example" in _certbot_calls(root)[-1]
    assert "mail.givors.example" in (root / "le" / "tno" / "tno-givors.names").read_text()

    # a lineage missing on the host (e.g. deleted by hand) is issued again; the others are left alone
    for path in sorted((root / "le" / "live" / "tno-givors").iterdir()):
        path.unlink()
    _run(root, "d4")
    assert len(_certbot_calls(root)) == 3 and _executions(root, "d4") > 2
    assert "--force-renewal" not in "".join(_certbot_calls(root))

    # a lineage whose certificate the host no longer trusts (another CA, a restarted lab CA, expired) is
    # issued again with --force-renewal (certbot keeps an unexpired lineage whose names are unchanged);
    # check mode reports it and calls no certbot; once issued, the next deploy is quiet again
    (root / "le" / "live" / "tno-givors" / "fullchain.pem").write_text("untrusted")
    check, _ = _run(root, "c4", check=True)
    assert check.hosts["mail1"].changed > 0 and len(_certbot_calls(root)) == 3
    _run(root, "d4u")
    assert len(_certbot_calls(root)) == 4 and "--force-renewal" in _certbot_calls(root)[-1]
    quiet, _ = _run(root, "d4v")
    assert quiet.hosts["mail1"].changed == 0 and len(_certbot_calls(root)) == 4

    # a changed TSIG secret rewrites the credentials file in a censored task; nothing else is issued
    _inventory(root, ["givors.test", "givors.example"], SECRET + "x")
    rotated, events = _run(root, "d5")
    assert rotated.hosts["mail1"].changed == 1 and _ran(events, CREDENTIALS) and len(_certbot_calls(root)) == 4
    assert f"dns_rfc2136_secret = {SECRET}x" in credentials.read_text()
    assert SECRET not in _run_files(root)  # not in the events, the runner's stdout or any artifact


def test_tno_mail_skips_the_sni_map_build_only_when_the_map_is_current(root: Path) -> None:
    _run(root, "d1")

    def fact(run_id: str) -> Any:
        _, events = _run(root, run_id)
        found = [e["event_data"]["res"]["ansible_facts"]["tno_acme_sni_map_current"] for e in events
                 if e.get("event") == "runner_on_ok" and "tno_acme_sni_map_current" in
                 (e["event_data"].get("res") or {}).get("ansible_facts", {})]
        return found[0]

    assert fact("d2") is False  # no tno_sni.db yet (postmap is not installed here): tno_mail builds it
    (root / "postfix" / "tno_sni.db").write_text("db")
    assert fact("d3") is True
