"""Role tno_acme on a fresh host and on Dovecot 2.4 (#15): what the first lab run of `acme` mode needs.

A fresh mail host runs tno_acme before tno_mail installs Postfix, Dovecot and nginx: the directories of
the hook and SNI maps must be created, the deploy hook must not fail without postmap, and tno_mail must
build the Postfix SNI map once Postfix is there. Whether a lineage exists is read on the host (not with
the `is file` test, which looks at the controller), and the names file is written only after certbot
succeeded (a failed issuance is retried by the next deploy). Dovecot's SNI blocks follow its version.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template
from role_render import render, role_vars

from tnoctl import paths

ROLES = Path(paths.__file__).resolve().parent.parent / "roles"
TASKS = yaml.safe_load((ROLES / "tno_acme" / "tasks" / "deploy.yml").read_text())
LINEAGES = [{"slug": "givors", "name": "tno-givors", "domains": ["imap.givors.test", "mail.givors.test"]}]
BOOKWORM = {"dovecot_version": "2.3.19.1+dfsg1-2.1+deb12u1"}  # what files/tno_acme_lineages.py --dovecot reads
TRIXIE = {"dovecot_version": "2.4.1+dfsg1-6"}


def _task(prefix: str) -> dict:
    return next(t for t in TASKS if t["name"].startswith(prefix))


def _index(prefix: str) -> int:
    return next(i for i, t in enumerate(TASKS) if t["name"].startswith(prefix))


def test_every_file_goes_through_tno_files_which_creates_missing_directories_even_in_check_mode():
    """/etc/letsencrypt (host switching to acme), renewal-hooks/ (before certbot's first run), /etc/postfix and
    /etc/dovecot/tno.d (before tno_mail installs the packages): template/copy fail there, even in check mode."""
    for task in TASKS:
        assert not {"ansible.builtin.template", "ansible.builtin.copy", "template", "copy"} & set(task), task["name"]
    assert _task("Install the RFC 2136 credentials")["tno_files"]["directories"][0]["mode"] == "0700"
    files = _task("Install the deploy hook, the names")
    assert "__tno_acme_mail_sni_files" in files["tno_files"]["files"] and "Tno_acme sni changed" in files["notify"]
    assert files["tno_files"]["directories"] == [{"path": "{{ tno_acme_state_dir }}", "mode": "0700"}]


def _vars(host: str, tenants: list[dict]) -> Templar:
    merged = {**role_vars("tno_acme"), "tno_tenants": tenants, "inventory_hostname": host,
              "groups": {"mail": ["mail1"], "proxy": ["office1"]}}
    return Templar(loader=DataLoader(), variables=merged)


def test_names_files_and_nginx_snippets_one_per_lineage():
    tenants = [{"slug": "givors", "services": ["mail", "office"], "domains": ["givors.test"],
                "placement": {"mail": "mail1", "office": "office1"}}]
    names = _vars("mail1", tenants).template(trust_as_template("{{ __tno_acme_names_files }}"))
    assert names == [{"dest": "/etc/letsencrypt/tno/tno-givors.names",
                      "content": "autoconfig.givors.test\nimap.givors.test\nmail.givors.test\nmta-sts.givors.test\n"
                                 "smtp.givors.test\n", "mode": "0600"}]
    nginx = _vars("office1", tenants).template(trust_as_template("{{ __tno_acme_nginx_files }}"))
    assert nginx == [{"src": "nginx-cert.conf.j2", "dest": "/etc/nginx/tno-acme-givors.conf",
                      "vars": {"item": {"slug": "givors", "name": "tno-givors", "domains": ["office.givors.test"]}}}]


def test_issuance_reads_the_lineage_on_the_host_and_records_names_only_after_certbot():
    issue = _task("Issue or expand")
    assert issue["loop"] == "{{ __tno_acme_to_issue }}" and "when" not in issue  # decided from the host's read
    assert _task("Read the tenant lineages")["ansible.builtin.import_tasks"] == "lineages.yml"
    (read,) = yaml.safe_load((ROLES / "tno_acme" / "tasks" / "lineages.yml").read_text())  # one execution, read-only
    assert read["ansible.builtin.script"]["cmd"].startswith("tno_acme_lineages.py --timer ")
    assert "--prune" not in read["ansible.builtin.script"]["cmd"]
    assert read["check_mode"] is False and read["changed_when"] is False
    assert not any(t.get("check_mode") is True for t in TASKS)  # no check-mode tno_files comparison any more
    assert _index("Read the tenant lineages") < _index("Install the RFC 2136")
    assert _index("Install the RFC 2136") < _index("Install the deploy hook before")
    assert _index("Install the deploy hook before") < _index("Issue or expand") < _index("Install the deploy hook, the")
    assert _task("Install the deploy hook before")["when"] == "__tno_acme_to_issue | length > 0"
    credentials = _task("Install the RFC 2136 credentials")
    assert credentials["no_log"] is True and credentials["diff"] is False
    assert credentials["tno_files"]["files"][0]["diff"] is False
    timer = _task("Enable unattended renewal")
    assert timer["when"] == ("not __tno_acme_state.timer_ready and not (ansible_check_mode and "
                             "__tno_acme_packages is changed)")


MAIL1 = [{"slug": "givors", "services": ["mail"], "domains": ["givors.test"], "placement": {"mail": "mail1"}}]
NAMES = "autoconfig.givors.test\nimap.givors.test\nmail.givors.test\nmta-sts.givors.test\nsmtp.givors.test\n"
CONVERGED = {"live": ["tno-givors"], "stale": [], "deleted": [], "names": {"tno-givors": NAMES},
             "timer_ready": True, "files": {}, "dovecot_version": "2.3.19",
             "sni_map_pending": False}


INSTALLED = {"certbot": "2.1.0-4", "python3-certbot-dns-rfc2136": "2.1.0-1"}


def _decide(expression: str, host_packages: dict[str, str] | None = INSTALLED, **state: object) -> object:
    """``expression`` (a task's `when` or a role variable) on mail1 given the host's read ``state`` and
    tno_common's package read (``tno_common_host_packages``; None: not read, the role alone)."""
    templar = _vars("mail1", MAIL1)
    packages = {} if host_packages is None else {"tno_common_host_packages": host_packages}
    templar.available_variables = {**templar.available_variables, "group_names": ["mail"],
                                   "ansible_check_mode": False, "__tno_acme_packages": {"skipped": True},
                                   "__tno_acme_present": {"stdout": json.dumps({**CONVERGED, **state})},
                                   **packages}
    return templar.template(trust_as_template("{{ " + expression + " }}"))


def _when(prefix: str) -> str:
    return _task(prefix)["when"]


def test_a_converged_host_skips_apt_the_timer_issuance_and_the_prune():
    assert _decide(_when("Install certbot")) is False
    assert _decide(_when("Enable unattended renewal")) is False
    assert _decide("__tno_acme_to_issue") == []
    assert _decide(_when("Install the deploy hook before")) is False
    prune, metrics = yaml.safe_load((ROLES / "tno_acme" / "tasks" / "prune_lineages.yml").read_text())
    assert _decide(prune["when"]) is False and _decide(prune["when"], stale=["tno-bron"]) is True
    assert metrics["when"].startswith(f"{prune['register']} is changed")  # nothing pruned: no metrics rewrite


def test_a_missing_package_lineage_or_timer_or_changed_names_each_trigger_their_task_only():
    assert _decide(_when("Install certbot"), host_packages={"python3-certbot-dns-rfc2136": "2.1.0-1"}) is True
    assert _decide(_when("Install certbot"), host_packages=INSTALLED) is False
    assert _decide(_when("Install certbot"), host_packages=None) is True  # the role alone: no package read
    assert _decide(_when("Enable unattended renewal"), timer_ready=False) is True
    assert [x["name"] for x in _decide("__tno_acme_to_issue", live=[])] == ["tno-givors"]
    assert [x["name"] for x in _decide("__tno_acme_to_issue", names={"tno-givors": None})] == ["tno-givors"]
    assert [x["name"] for x in _decide("__tno_acme_to_issue", names={"tno-givors": "mail.givors.test\n"})] == [
        "tno-givors"]
    assert _decide(_when("Install the deploy hook before"), live=[]) is True


def test_the_credentials_are_rewritten_only_when_their_checksum_or_attributes_differ():
    templar = _vars("mail1", MAIL1)
    expected = {"sha1": "0" * 40, "mode": "0600", "owner": "root", "group": "root"}
    credentials = "/etc/letsencrypt/tno-rfc2136.ini"
    when = _when("Install the RFC 2136 credentials")
    content = "dns_rfc2136_secret = x\n"
    good = {**expected, "sha1": hashlib.sha1(content.encode()).hexdigest()}

    def decide(found: object) -> object:
        templar.available_variables = {**templar.available_variables, "__tno_acme_credentials_content": content,
                                       "__tno_acme_present": {"stdout": json.dumps({**CONVERGED,
                                                                                   "files": {credentials: found}})}}
        return templar.template(trust_as_template("{{ " + when + " }}"))

    assert decide(good) is False
    assert decide(None) is True and decide(expected) is True and decide({**good, "mode": "0644"}) is True


def test_deploy_hook_skips_postmap_until_postfix_is_installed():
    hook = render("tno_acme", "tno-reload.sh.j2", {})
    assert '[ -f "$MAP" ] && command -v postmap >/dev/null 2>&1' in hook
    assert "if postfix_ready; then\n  build_map\n" in hook


def test_the_postfix_sni_database_which_embeds_the_private_keys_is_built_aside_root_only():
    hook = render("tno_acme", "tno-reload.sh.j2", {})
    assert ('  if (umask 077 && cp "$MAP" "$MAP.new" && postmap -F "hash:$MAP.new" && chmod 0600 "$MAP.new.db" \\\n'
            '      && mv -f "$MAP.new.db" "$MAP.db"); then\n') in hook


def test_tno_mail_builds_the_sni_map_with_the_acme_hook_once_postfix_is_installed():
    """One builder of tno_sni.db: tno_mail runs the hook's map mode (no postmap of its own), which also
    rebuilds an outdated map; skipped in `files` mode, where tno_acme never ran."""
    tasks = yaml.safe_load((ROLES / "tno_mail" / "tasks" / "postfix.yml").read_text())
    build = next(t for t in tasks if t["name"].startswith("Build the SNI map"))
    command = build["ansible.builtin.command"]
    assert command["argv"] == "{{ [__tno_mail_acme_hook, 'map'] + (['--check'] if ansible_check_mode else []) }}"
    assert "creates" not in command and build["check_mode"] is False
    assert command["removes"] == "{{ __tno_mail_acme_hook if ansible_check_mode else omit }}"
    assert build["changed_when"] == "__tno_mail_sni_map.stdout | default('') | length > 0"
    assert build["when"] == ("tno_tls_mode | default('files') == 'acme' and not (tno_acme_sni_map_current "
                             "| default(false) | bool)")
    assert build["notify"] == "Tno_mail postfix changed"
    assert tasks.index(build) < next(i for i, t in enumerate(tasks) if t["name"].startswith("Write the Postfix"))
    assert not any("postmap" in yaml.safe_dump(t) for t in tasks)
    acme = Templar(loader=DataLoader(), variables=role_vars("tno_acme"))
    assert role_vars("tno_mail")["__tno_mail_acme_hook"] == acme.template(trust_as_template("{{ __tno_acme_hook }}"))


def _dovecot(policy: dict) -> str:
    return render("tno_acme", "dovecot-sni.conf.j2", {"__tno_acme_lineages": LINEAGES,
                                                      "__tno_acme_present": {"stdout": json.dumps(policy)}})


def test_dovecot_sni_blocks_use_the_syntax_of_the_version_apt_installs():
    old = _dovecot(BOOKWORM)
    assert "local_name imap.givors.test {\n  ssl_cert = </etc/letsencrypt/live/tno-givors/fullchain.pem\n" in old
    assert "ssl_server_cert_file" not in old
    new = _dovecot(TRIXIE)
    assert ("local_name mail.givors.test {\n  ssl_server_cert_file = /etc/letsencrypt/live/tno-givors/fullchain.pem\n"
            "  ssl_server_key_file = /etc/letsencrypt/live/tno-givors/privkey.pem\n}") in new
    assert "ssl_cert =" not in new
    assert "ssl_cert = <" in _dovecot({"dovecot_version": ""})  # apt knows none: the Debian 12 syntax
