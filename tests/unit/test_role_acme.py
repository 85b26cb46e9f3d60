"""Role tno_acme (#15): lineages per tenant and host, credentials file, SNI maps, deploy hook (pure Jinja)."""

from __future__ import annotations

import ast
from pathlib import Path

import jinja2
import yaml

from tnoctl import paths

ROLE = Path(paths.__file__).resolve().parent.parent / "roles" / "tno_acme"
SECRET = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA=="  # stands for the vault's TSIG secret
TENANTS = [
    {"slug": "givors", "services": ["mail", "office"], "domains": ["givors.test", "givors2.test"],
     "placement": {"mail": "mail1", "office": "office1"}},
    {"slug": "corbas", "services": ["mail"], "domains": ["corbas.test"], "placement": {"mail": "mail2"}},
    {"slug": "bron", "services": ["mail", "office"], "domains": ["bron.test"],
     "placement": {"mail": "mail1", "office": "office2"}},
]
GROUPS = {"mail": ["mail1", "mail2"], "proxy": ["office1", "office2"]}
DEFAULTS = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())


def _env() -> jinja2.Environment:
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, trim_blocks=True)
    env.filters["comment"] = lambda text: f"# {text}"
    env.filters["bool"] = bool
    return env


def lineages(host: str) -> list[dict]:
    """__tno_acme_lineages of `host`, evaluated as Ansible would (the template renders a Python literal)."""
    expr = yaml.safe_load((ROLE / "vars" / "main.yml").read_text())["__tno_acme_lineages"]
    text = _env().from_string(expr).render(tno_tenants=TENANTS, inventory_hostname=host, groups=GROUPS,
                                           **DEFAULTS)
    return ast.literal_eval(text.strip())


def _render(name: str, **context: object) -> str:
    return _env().from_string((ROLE / "templates" / name).read_text()).render(ansible_managed="managed",
                                                                               **DEFAULTS, **context)


def test_one_lineage_per_tenant_with_the_names_this_host_serves():
    mail1 = lineages("mail1")
    assert [lin["name"] for lin in mail1] == ["tno-bron", "tno-givors"]
    givors = mail1[1]["domains"]
    assert "imap.givors2.test" in givors and "autoconfig.givors.test" in givors
    assert "mta-sts.givors.test" in givors and "mta-sts.givors2.test" in givors  # served by the mail host
    assert not any(name.startswith("office.") for name in givors)
    assert lineages("office1") == [{"slug": "givors", "name": "tno-givors", "domains": [
        "office.givors.test", "office.givors2.test"]}]
    assert [lin["slug"] for lin in lineages("mail2")] == ["corbas"]
    assert lineages("backup1") == []


def test_adding_a_tenant_leaves_the_other_lineages_unchanged():
    before = lineages("mail1")
    TENANTS.append({"slug": "feyzin", "services": ["mail"], "domains": ["feyzin.test"],
                    "placement": {"mail": "mail1"}})
    try:
        after = lineages("mail1")
    finally:
        TENANTS.pop()
    assert [lin for lin in after if lin["slug"] != "feyzin"] == before


def test_credentials_file_carries_the_tsig_key():
    def lookup(kind: str, name: str) -> str:
        assert (kind, name) == ("vars", "tno_vault_dns_tsig_key")
        return SECRET

    text = _render("rfc2136.ini.j2", lookup=lookup, tno_dns_server="[2001:db8::53]", tno_dns_tsig_key_name="k.",
                   tno_dns_tsig_secret_vault="tno_vault_dns_tsig_key", tno_dns_tsig_algorithm="hmac-sha256")
    lines = dict(line.split(" = ", 1) for line in text.splitlines() if " = " in line)
    assert lines == {"dns_rfc2136_server": "2001:db8::53", "dns_rfc2136_port": "53", "dns_rfc2136_name": "k.",
                     "dns_rfc2136_secret": SECRET, "dns_rfc2136_algorithm": "HMAC-SHA256"}
    ported = _render("rfc2136.ini.j2", lookup=lookup, tno_dns_server="198.18.0.1:5353", tno_dns_tsig_key_name="k.",
                     tno_dns_tsig_secret_vault="tno_vault_dns_tsig_key", tno_dns_tsig_algorithm="hmac-sha256")
    assert "dns_rfc2136_server = 198.18.0.1\ndns_rfc2136_port = 5353\n" in ported


def test_credentials_task_is_0600_and_no_log():
    tasks = yaml.safe_load((ROLE / "tasks" / "deploy.yml").read_text())
    creds = next(t for t in tasks if "credentials" in t["name"])
    (entry,) = creds["tno_files"]["files"]
    assert entry["mode"] == "0600" and entry["diff"] is False and creds["no_log"] is True


def test_sni_maps_point_each_name_at_its_tenant_lineage():
    lin = lineages("mail1")
    postfix = _render("postfix-sni.j2", __tno_acme_lineages=lin)
    assert ("smtp.givors2.test /etc/letsencrypt/live/tno-givors/privkey.pem "
            "/etc/letsencrypt/live/tno-givors/fullchain.pem") in postfix.splitlines()
    dovecot = _render("dovecot-sni.conf.j2", __tno_acme_lineages=lin, __tno_acme_dovecot_version="2.3.19",
                      __tno_acme_dovecot_24=False)  # 2.4: tests/unit/test_role_acme_fresh_host.py
    assert "local_name imap.bron.test {\n  ssl_cert = </etc/letsencrypt/live/tno-bron/fullchain.pem\n" in dovecot
    nginx = _render("nginx-cert.conf.j2", item=lineages("office1")[0])
    assert "ssl_certificate /etc/letsencrypt/live/tno-givors/fullchain.pem;" in nginx


def test_deploy_hook_reloads_and_never_restarts():
    role_vars = yaml.safe_load((ROLE / "vars" / "main.yml").read_text())
    hook = _render("tno-reload.sh.j2", __tno_acme_hook_path=role_vars["__tno_acme_hook_path"],
                   __tno_acme_postfix_dir=role_vars["__tno_acme_postfix_dir"])
    assert hook.startswith("#!/bin/sh\n")
    commands = [line for line in hook.splitlines() if not line.startswith("#")]
    assert not any("restart" in line for line in commands)
    assert 'systemctl reload "$service"' in hook  # behaviour: tests/unit/test_role_acme_hook.py
    for service, check in (("postfix", "postfix check"), ("dovecot", "doveconf -n"), ("nginx", "nginx -t -q")):
        assert f"reload {service} {check}\n" in hook + "\n"
    assert 'postmap -F "hash:$MAP.new"' in hook and "MAP=/etc/postfix/tno_sni\n" in hook
    assert "PATH=/usr/sbin:/usr/bin:/sbin:/bin\n" in hook


def test_certbot_uses_the_rfc2136_plugin_and_the_hook():
    tasks = yaml.safe_load((ROLE / "tasks" / "deploy.yml").read_text())
    issue = next(t for t in tasks if t["name"].startswith("Issue"))
    argv = issue["vars"]["__argv"]
    for word in ("'--dns-rfc2136'", "'--deploy-hook'", "'--expand'", "'--cert-name'", "tno_acme_directory_url"):
        assert word in argv
    assert "--domains=" in argv


def test_certbot_service_records_each_renewal_run_through_the_hook():
    """The drop-in runs `tno-reload renew-result` after every certbot.service run (its result: ExecStopPost's
    $SERVICE_RESULT), ignoring its status ("-"); installing it reloads systemd's unit files."""
    hook = "/etc/letsencrypt/renewal-hooks/deploy/tno-reload"
    dropin = _render("certbot-tno-metrics.conf.j2", __tno_acme_hook=hook)
    lines = [line for line in dropin.splitlines() if line and not line.startswith("#")]
    assert lines == ["[Service]", f"ExecStopPost=-{hook} renew-result"]
    tasks = yaml.safe_load((ROLE / "tasks" / "deploy.yml").read_text())
    install = next(t for t in tasks if t["name"].startswith("Install the deploy hook, the names"))
    files = install["tno_files"]["files"]  # one Jinja list: the hook, the drop-in, names, SNI maps, snippets
    assert "{'src': 'certbot-tno-metrics.conf.j2', 'dest': __tno_acme_certbot_dropin}" in files
    assert "{'src': 'tno-reload.sh.j2', 'dest': __tno_acme_hook, 'mode': '0755'}" in files
    role_vars = yaml.safe_load((ROLE / "vars" / "main.yml").read_text())
    assert role_vars["__tno_acme_certbot_dropin"] == "/etc/systemd/system/certbot.service.d/tno-metrics.conf"
    assert "Tno_acme certbot unit changed" in install["notify"]
    handlers = yaml.safe_load((ROLE / "handlers" / "main.yml").read_text())
    (reload_units,) = [h for h in handlers if h.get("listen") == "Tno_acme certbot unit changed"]
    assert "__tno_acme_certbot_dropin in __tno_acme_files.changed_files" in reload_units["when"]  # only then
    assert reload_units["ansible.builtin.systemd_service"] == {"daemon_reload": True}
