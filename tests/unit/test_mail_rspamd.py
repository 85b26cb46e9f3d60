"""Rspamd as the DKIM signer of every mail host (issue 14): the role's generated files, rendered with
Ansible's own templating, and the on-host DKIM key script.

Why: the cross-commune DKIM hole is closed by two generated artefacts (the login -> tenant -> domains
table the From alignment rule reads, and the per-domain signing table); a wrong line in either signs
for the wrong commune or for nobody, so their content is asserted exactly here, without a host.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import pwd
import subprocess
from pathlib import Path

import pytest
from ansible.parsing.dataloader import DataLoader
from role_render import render as render_template

from tnoctl.actions.tenant_dns import dkim_txt_value

ROLE = Path(__file__).resolve().parents[2] / "roles" / "tno_mail"

TENANTS = [
    {"slug": "alpha", "domains": ["alpha.test", "Alpha-Annex.test"], "services": ["mail"],
     "placement": {"mail": "mail1"},
     "mailboxes": [{"address": "Maire@alpha.test"}, {"address": "dgs@alpha-annex.test"}]},
    {"slug": "beta", "domains": ["beta.test"], "services": ["mail"], "placement": {"mail": "mail1"},
     "mailboxes": [{"address": "maire@beta.test"}]},
    {"slug": "gamma", "domains": ["gamma.test"], "services": ["mail"], "placement": {"mail": "mail2"},
     "mailboxes": [{"address": "maire@gamma.test"}]},
]


def render(template: str, extra: dict | None = None) -> str:
    """Render one tno_mail template for host mail1 (role vars + defaults + the tenants above)."""
    variables = {"tno_tenants": TENANTS, "inventory_hostname": "mail1",
                 "__tno_mail_tenants": [t for t in TENANTS if t["placement"]["mail"] == "mail1"]}
    return render_template("tno_mail", template, {**variables, **(extra or {})})


def test_alignment_table_maps_each_login_to_its_own_tenant_only():
    data = json.loads(render("rspamd/tenants.json.j2"))
    assert data == {
        "logins": {"maire@alpha.test": "alpha", "dgs@alpha-annex.test": "alpha", "maire@beta.test": "beta"},
        "tenants": {"alpha": ["alpha.test", "alpha-annex.test"], "beta": ["beta.test"]},
    }


def test_signing_table_has_one_key_per_hosted_domain_and_signs_authenticated_mail_only():
    text = render("rspamd/dkim_signing.conf.j2")
    assert "sign_authenticated = true;" in text
    assert "sign_local = false;" in text and "sign_inbound = false;" in text
    assert 'use_domain = "header";' in text and "allow_hdrfrom_multiple = false;" in text
    # any domain of the login's tenant may be signed: the alignment prefilter has refused the others
    assert "allow_hdrfrom_mismatch = true;" in text and "allow_username_mismatch = true;" in text
    for domain in ("alpha.test", "Alpha-Annex.test", "beta.test"):
        assert f'"{domain}" {{' in text
        assert f'path = "/etc/opendkim/keys/{domain}/tno2026.private";' in text
    assert "gamma.test" not in text  # another host's commune is never signed here
    assert text.count('selector = "tno2026";') == 3


def test_rotated_selector_signs_with_the_new_key():
    text = render("rspamd/dkim_signing.conf.j2", {"tno_mail_dkim_selector": "tno2027"})
    assert 'selector = "tno2027";' in text and "tno2026" not in text


def test_postfix_uses_rspamd_as_milter_and_defers_without_it():
    text = render("postfix/main.cf.j2", {"__tno_mail_release_2": False, "tno_mail_relayhost": "",
                                         "tno_mail_myhostname": "mail.alpha.test"})
    assert "smtpd_milters = inet:127.0.0.1:11332" in text
    assert "milter_default_action = tempfail" in text
    assert "{auth_authen}" in text
    assert "8891" not in text  # OpenDKIM's milter is gone


def test_modules_reaching_outside_servers_are_disabled_in_one_override_file():
    text = render("rspamd/rspamd.conf.override.j2")
    for module in ("fuzzy_check", "rbl", "phishing", "url_redirector", "asn", "multimap", "rspamd_update", "greylist"):
        assert f"{module} {{\n  enabled = false;\n}}" in text  # no threshold asks for greylisting here
    assert "maps.d/mime_types.inc" in render("rspamd/mime_types.conf.j2")


def test_rspamd_listens_on_loopback_only_and_resolver_stays_local_without_dns():
    assert 'bind_socket = "127.0.0.1:11332";' in render("rspamd/worker-proxy.inc.j2")
    assert 'bind_socket = "127.0.0.1:11334";' in render("rspamd/worker-controller.inc.j2")
    lab = "# tnoctl lab host: no DNS server; lab names are in /etc/hosts\n"
    no_dns = render("rspamd/options.inc.j2", {"__tno_mail_state": {"resolv_conf": lab}})
    assert '"127.0.0.1:53"' in no_dns
    resolver = "search example.org\nnameserver 192.0.2.53\n"
    with_dns = render("rspamd/options.inc.j2", {"__tno_mail_state": {"resolv_conf": resolver}})
    assert "nameserver" not in with_dns.replace("# This host", "")
    assert "dns {" not in with_dns


def test_no_opendkim_left_in_the_role():
    """OpenDKIM is neither installed, configured, validated nor checked; only retire_opendkim.yml names it."""
    for path in (ROLE / "tasks").glob("*.yml"):
        if path.name != "retire_opendkim.yml":
            commands = [line for line in path.read_text().splitlines() if not line.lstrip().startswith("#")]
            assert not any("opendkim" in line.replace("retire_opendkim.yml", "") for line in commands), path
    assert "opendkim" not in (ROLE / "handlers" / "main.yml").read_text()
    assert not (ROLE / "templates" / "opendkim").exists()
    packages = DataLoader().load_from_file(str(ROLE / "vars" / "main.yml"))["__tno_mail_base_packages"]
    assert "rspamd" in packages and "redis-server" in packages and "opendkim" not in packages


# ---------------------------------------------------------------- files/tno_dkim_keys.py


@pytest.fixture(scope="module")
def keys_module():
    spec = importlib.util.spec_from_file_location("tno_dkim_keys", ROLE / "files" / "tno_dkim_keys.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def _me() -> str:
    return pwd.getpwuid(os.getuid()).pw_name


def test_key_script_generates_once_and_publishes_the_matching_record(keys_module, tmp_path):
    changes = keys_module.ensure(tmp_path, "sel1", 1024, _me(), "alpha.test", check=False)
    private, txt = tmp_path / "alpha.test" / "sel1.private", tmp_path / "alpha.test" / "sel1.txt"
    assert any(c.startswith("generate") for c in changes) and private.exists() and txt.exists()
    assert private.stat().st_mode & 0o777 == 0o600
    before = private.read_bytes()
    assert keys_module.ensure(tmp_path, "sel1", 1024, _me(), "alpha.test", check=False) == []  # idempotent
    assert private.read_bytes() == before
    value = dkim_txt_value(txt.read_text())
    assert value.startswith("v=DKIM1; h=sha256; k=rsa; p=")
    der = subprocess.run(["openssl", "rsa", "-in", str(private), "-pubout", "-outform", "DER"],
                         check=True, capture_output=True).stdout
    assert base64.b64decode(value.split("p=", 1)[1]) == der


def test_key_script_keeps_an_existing_key_and_check_mode_changes_nothing(keys_module, tmp_path):
    folder = tmp_path / "beta.test"
    folder.mkdir(mode=0o750)
    subprocess.run(["openssl", "genrsa", "-out", str(folder / "old.private"), "1024"], check=True, capture_output=True)
    (folder / "old.private").chmod(0o600)
    kept = (folder / "old.private").read_bytes()
    assert keys_module.ensure(tmp_path, "old", 1024, _me(), "beta.test", check=True) == [f"write {folder}/old.txt"]
    assert not (folder / "old.txt").exists()
    keys_module.ensure(tmp_path, "old", 1024, _me(), "beta.test", check=False)
    assert (folder / "old.private").read_bytes() == kept and (folder / "old.txt").exists()
    # rotation: a new selector gets its own key next to the old one
    keys_module.ensure(tmp_path, "new", 1024, _me(), "beta.test", check=False)
    assert (folder / "new.private").read_bytes() != kept and (folder / "old.private").read_bytes() == kept
