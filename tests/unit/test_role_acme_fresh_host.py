"""Role tno_acme on a fresh host and on Dovecot 2.4 (#15): what the first lab run of `acme` mode needs.

A fresh mail host runs tno_acme before tno_mail installs Postfix, Dovecot and nginx: the directories of
the hook and SNI maps must be created, the deploy hook must not fail without postmap, and tno_mail must
build the Postfix SNI map once Postfix is there. Whether a lineage exists is read on the host (not with
the `is file` test, which looks at the controller), and the names file is written only after certbot
succeeded (a failed issuance is retried by the next deploy). Dovecot's SNI blocks follow its version.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template
from role_render import render, role_vars

from tnoctl import paths

ROLES = Path(paths.__file__).resolve().parent.parent / "roles"
TASKS = yaml.safe_load((ROLES / "tno_acme" / "tasks" / "deploy.yml").read_text())
LINEAGES = [{"slug": "givors", "name": "tno-givors", "domains": ["imap.givors.test", "mail.givors.test"]}]
BOOKWORM = """dovecot-core:
  Installed: (none)
  Candidate: 1:2.3.19.1+dfsg1-2.1+deb12u1
"""
TRIXIE = """dovecot-core:
  Installed: 1:2.4.1+dfsg1-6
  Candidate: 1:2.4.1+dfsg1-6
"""


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
    sni = _task("Install the SNI maps")
    assert "__tno_acme_mail_sni_files" in sni["tno_files"]["files"] and sni["notify"] == "Tno_acme sni changed"


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
                                 "smtp.givors.test\n"}]
    nginx = _vars("office1", tenants).template(trust_as_template("{{ __tno_acme_nginx_files }}"))
    assert nginx == [{"src": "nginx-cert.conf.j2", "dest": "/etc/nginx/tno-acme-givors.conf",
                      "vars": {"item": {"slug": "givors", "name": "tno-givors", "domains": ["office.givors.test"]}}}]


def test_issuance_reads_the_lineage_on_the_host_and_records_names_only_after_certbot():
    issue = _task("Issue or expand")
    assert "is file" not in issue["when"] and "(__tno_acme_present.stdout | from_json).live" in issue["when"]
    assert _task("Read the tenant lineages")["ansible.builtin.import_tasks"] == "lineages.yml"
    (read,) = yaml.safe_load((ROLES / "tno_acme" / "tasks" / "lineages.yml").read_text())  # one execution, read-only
    assert read["ansible.builtin.script"]["cmd"].startswith("tno_acme_lineages.py {{ tno_acme_config_dir")
    assert "--prune" not in read["ansible.builtin.script"]["cmd"]
    assert read["check_mode"] is False and read["changed_when"] is False
    assert _index("Read the tenant lineages") < _index("Issue or expand")
    compare = _task("Compare the names")
    assert compare["check_mode"] is True and compare["tno_files"]["files"] == "{{ __tno_acme_names_files }}"
    assert "__tno_acme_names.changed_files" in issue["when"]
    assert _index("Compare the names") < _index("Issue or expand") < _index("Record the names")
    assert "check_mode" not in _task("Record the names")
    timer = _task("Enable unattended renewal")
    assert timer["when"] == "not (ansible_check_mode and __tno_acme_packages is changed)"


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
    assert build["when"] == "tno_tls_mode | default('files') == 'acme'"
    assert build["notify"] == "Tno_mail postfix changed"
    assert tasks.index(build) < next(i for i, t in enumerate(tasks) if t["name"].startswith("Write the Postfix"))
    assert not any("postmap" in yaml.safe_dump(t) for t in tasks)
    acme = Templar(loader=DataLoader(), variables=role_vars("tno_acme"))
    assert role_vars("tno_mail")["__tno_mail_acme_hook"] == acme.template(trust_as_template("{{ __tno_acme_hook }}"))


def _dovecot(policy: str) -> str:
    return render("tno_acme", "dovecot-sni.conf.j2", {"__tno_acme_lineages": LINEAGES,
                                                      "__tno_acme_dovecot_policy": {"stdout": policy}})


def test_dovecot_sni_blocks_use_the_syntax_of_the_version_apt_installs():
    old = _dovecot(BOOKWORM)
    assert "local_name imap.givors.test {\n  ssl_cert = </etc/letsencrypt/live/tno-givors/fullchain.pem\n" in old
    assert "ssl_server_cert_file" not in old
    new = _dovecot(TRIXIE)
    assert ("local_name mail.givors.test {\n  ssl_server_cert_file = /etc/letsencrypt/live/tno-givors/fullchain.pem\n"
            "  ssl_server_key_file = /etc/letsencrypt/live/tno-givors/privkey.pem\n}") in new
    assert "ssl_cert =" not in new
    assert "ssl_cert = <" in _dovecot("")  # unknown (apt-cache printed nothing): the Debian 12 syntax
