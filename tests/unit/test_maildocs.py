"""The mail documents served over HTTPS (#15): MTA-STS policy + autoconfig, one source for nginx and DNS.

tnoctl.config.maildocs writes the texts; role tno_mail serves them (its filter plugin calls the same
functions) and `dns plan` publishes the policy id and the MX from them. These tests render the role's
file list and nginx virtual hosts with ansible-core's own templating for a tenant with several domains.
"""

from __future__ import annotations

import typing
from pathlib import Path

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import add_all_plugin_dirs
from ansible.template import Templar, trust_as_template

from tests.unit.dnsfakes import dkim_reply
from tests.unit.fakes import FakeSsh, make_env
from tests.unit.role_render import ROLES, render, role_vars
from tnoctl import paths
from tnoctl.actions.tenant_dns import records_for, tenant_records
from tnoctl.config import maildocs
from tnoctl.config.schema import Platform
from tnoctl.lab import dns as lab_dns
from tnoctl.lab import etchosts, topology

add_all_plugin_dirs(str(ROLES / "tno_mail"))  # the role's filters (tno_mta_sts_policy, ...), as Ansible loads them

SAINT_FONS = {
    "slug": "saint-fons", "name": "Saint-Fons & CCAS", "services": ["mail", "office"],
    "domains": ["saint-fons.test", "ccas-saint-fons.test", "mediatheque-saint-fons.test"],
    "placement": {"mail": "mail1", "office": "office2"},
}
VENISSIEUX = {"slug": "venissieux", "name": "Vénissieux", "services": ["mail"], "domains": ["venissieux.test"],
              "placement": {"mail": "mail1", "office": None}}
DOMAINS = SAINT_FONS["domains"] + VENISSIEUX["domains"]


def _policy(domain: str, mode: str) -> str:
    return f"version: STSv1\nmode: {mode}\nmx: mail.{domain}\nmax_age: 604800\n"


def test_policy_text_is_exact_and_its_id_follows_the_content():
    assert maildocs.mta_sts_policy("saint-fons.test") == _policy("saint-fons.test", "testing")
    assert maildocs.mta_sts_policy("saint-fons.test", "enforce") == _policy("saint-fons.test", "enforce")
    ids = {maildocs.mta_sts_id(maildocs.mta_sts_policy(d, m)) for d in DOMAINS for m in maildocs.MTA_STS_MODES}
    assert len(ids) == len(DOMAINS) * len(maildocs.MTA_STS_MODES)  # any change of the text changes the id
    assert all(len(i) == 20 and i.isalnum() for i in ids)  # RFC 8461: 1*32 alphanumerics
    assert maildocs.mta_sts_id(_policy("a.test", "testing")) == maildocs.mta_sts_id(_policy("a.test", "testing"))
    with pytest.raises(ValueError, match="MTA-STS mode"):
        maildocs.mta_sts_policy("a.test", "strict")


def test_planned_mx_and_mta_sts_id_are_those_of_the_served_policy(tmp_path):
    """dns plan over the lab inventory: every mail domain's MX equals its policy's mx: line, and the TXT id."""
    ssh = FakeSsh(results={("mail1", "grep"): dkim_reply(), ("mail2", "grep"): dkim_reply()})
    env = make_env(paths.LAB_INVENTORY, tmp_path, ssh=ssh)
    mode = env.inventory.platform.tno_mail_mta_sts_mode
    (found,) = tenant_records(env, ["saint-fons"])
    assert len(found.domains) == 3
    for domain in found.domains:
        policy = maildocs.mta_sts_policy(domain, mode)
        mx_lines = [line.removeprefix("mx: ") for line in policy.splitlines() if line.startswith("mx: ")]
        planned_mx = [r["value"].split()[1].rstrip(".") for r in found.records
                      if r["type"] == "MX" and r["name"] == f"{domain}."]
        assert mx_lines == planned_mx == [f"mail.{domain}"]
        txt = [r["value"] for r in found.records if r["name"] == f"_mta-sts.{domain}."]
        assert txt == [f"v=STSv1; id={maildocs.mta_sts_id(policy)}"]


def test_mode_comes_from_the_platform_and_defaults_to_testing():
    assert typing.get_args(Platform.model_fields["tno_mail_mta_sts_mode"].annotation) == maildocs.MTA_STS_MODES
    assert Platform.model_fields["tno_mail_mta_sts_mode"].default == maildocs.MTA_STS_DEFAULT_MODE == "testing"
    assert role_vars("tno_mail")["tno_mail_mta_sts_mode"] == maildocs.MTA_STS_DEFAULT_MODE
    spec = yaml.safe_load((ROLES / "tno_mail" / "meta" / "argument_specs.yml").read_text())
    option = spec["argument_specs"]["main"]["options"]["tno_mail_mta_sts_mode"]
    assert tuple(option["choices"]) == maildocs.MTA_STS_MODES and option["default"] == "testing"
    enforce = records_for("a.test", "mail.a.test", None, None, mta_sts_mode="enforce")
    assert {r["value"] for r in enforce if r["kind"] == "mta-sts"} == {maildocs.mta_sts_record("a.test", "enforce")}


def test_autoconfig_offers_what_the_mail_role_listens_on():
    xml = maildocs.autoconfig_xml("ccas-saint-fons.test", "Saint-Fons & CCAS")
    assert "<domain>ccas-saint-fons.test</domain>" in xml
    assert "<displayName>Saint-Fons &amp; CCAS</displayName>" in xml
    assert ('<incomingServer type="imap">\n      <hostname>imap.ccas-saint-fons.test</hostname>\n'
            "      <port>993</port>\n      <socketType>SSL</socketType>") in xml
    assert ('<outgoingServer type="smtp">\n      <hostname>smtp.ccas-saint-fons.test</hostname>\n'
            "      <port>587</port>\n      <socketType>STARTTLS</socketType>") in xml
    assert xml.count("<username>%EMAILADDRESS%</username>") == 2  # Dovecot and Postfix log in by address
    master = (ROLES / "tno_mail" / "templates" / "postfix" / "master.cf.j2").read_text()
    assert "\nsubmission inet" in master and "\nsubmissions inet" not in master and "\nsmtps inet" not in master
    dovecot = (ROLES / "tno_mail" / "templates" / "dovecot" / "dovecot-2.4.conf.j2").read_text()
    assert "port = 993" in dovecot and "auth_username_format = %{user | lower}" in dovecot


def _web_task_vars() -> dict:
    """The documents' variables (vars/main.yml: configure.yml's directories call writes them in a deploy)."""
    variables = yaml.safe_load((ROLES / "tno_mail" / "vars" / "main.yml").read_text())
    return {k: variables[k] for k in ("__tno_mail_web_files", "__tno_mail_web_dirs")}


def _template(expr: str, variables: dict) -> object:
    templar = Templar(loader=DataLoader(), variables={**role_vars("tno_mail"), **variables})
    return templar.template(trust_as_template(expr))


def test_role_writes_every_domain_documents_from_the_same_functions():
    task_vars = _web_task_vars()
    variables = {"__tno_mail_tenants": [SAINT_FONS, VENISSIEUX], "tno_mail_mta_sts_mode": "enforce",
                 "tno_tenants": [SAINT_FONS, VENISSIEUX], "inventory_hostname": "mail1"}
    files = _template(task_vars["__tno_mail_web_files"], variables)
    web = "/var/lib/tno/mail-web"
    assert {f["dest"]: f["content"] for f in files} == {
        **{f"{web}/{d}/mta-sts.txt": _policy(d, "enforce") for d in DOMAINS},
        **{f"{web}/{d}/config-v1.1.xml": maildocs.autoconfig_xml(d, SAINT_FONS["name"]) for d in SAINT_FONS["domains"]},
        f"{web}/venissieux.test/config-v1.1.xml": maildocs.autoconfig_xml("venissieux.test", "Vénissieux"),
    }
    dirs = _template(task_vars["__tno_mail_web_dirs"], {**variables, "__tno_mail_domains": sorted(DOMAINS)})
    assert [d["path"] for d in dirs] == [web, *(f"{web}/{d}" for d in sorted(DOMAINS))]
    # an upgrade (configure.yml without web.yml) writes no document, as before the merge (issue 19)
    upgrade = {**variables, "tno_action": "upgrade"}
    assert _template(task_vars["__tno_mail_web_files"], upgrade) == []
    assert _template(task_vars["__tno_mail_web_dirs"], upgrade) == []


def _vhosts(host: str, groups: dict) -> str:
    return render("tno_mail", "nginx/tno-mail-web.conf.j2", {
        "inventory_hostname": host, "groups": groups, "tno_tenants": [SAINT_FONS, VENISSIEUX],
        "__tno_mail_tenants": [SAINT_FONS, VENISSIEUX], "__tno_mail_domains": sorted(DOMAINS)})


def test_nginx_serves_each_name_its_own_document_and_refuses_unknown_names():
    conf = _vhosts("mail1", {"mail": ["mail1"], "proxy": ["office1"]})
    for domain in DOMAINS:
        mta = conf.split(f"server_name mta-sts.{domain};", 1)[1].split("\n}\n", 1)[0]
        assert "location = /.well-known/mta-sts.txt {" in mta and "default_type text/plain;" in mta
        assert f"alias /var/lib/tno/mail-web/{domain}/mta-sts.txt;" in mta and "config-v1.1" not in mta
        auto = conf.split(f"server_name autoconfig.{domain};", 1)[1].split("\n}\n", 1)[0]
        for path in ("/mail/config-v1.1.xml", "/.well-known/autoconfig/mail/config-v1.1.xml"):
            assert f"location = {path} {{" in auto
        assert auto.count(f"alias /var/lib/tno/mail-web/{domain}/config-v1.1.xml;") == 2
        assert "mta-sts.txt" not in auto
        assert "ssl_certificate /etc/tno/tls/mail/host.crt;" in mta  # files mode: the host certificate
    assert conf.count("default_server") == 4  # 80 (444) and 443 (handshake refused; 421 for unknown Host)
    assert "ssl_reject_handshake on;\n    return 421;" in conf
    https = [line.strip() for line in conf.splitlines() if line.strip().startswith("server_name ")]
    assert https[:2] == ["server_name _;", "server_name _;"]
    assert https[2] == "server_name " + " ".join(f"mta-sts.{d} autoconfig.{d}" for d in sorted(DOMAINS)) + ";"
    assert sorted(https[3:]) == sorted(f"server_name {n}.{d};" for d in DOMAINS for n in ("mta-sts", "autoconfig"))
    # a host that is also an office proxy: tno_proxy's catch-all servers, not a second default_server
    assert "default_server" not in _vhosts("mail1", {"mail": ["mail1"], "proxy": ["mail1"]})


def test_acme_mode_includes_the_tenant_lineage_covering_the_names():
    conf = render("tno_mail", "nginx/tno-mail-web.conf.j2", {
        "inventory_hostname": "mail1", "groups": {"proxy": []}, "tno_tls_mode": "acme",
        "__tno_mail_tenants": [SAINT_FONS], "__tno_mail_domains": sorted(SAINT_FONS["domains"])})
    assert conf.count("include /etc/nginx/tno-acme-saint-fons.conf;") == 2 * len(SAINT_FONS["domains"])
    acme_defaults = yaml.safe_load((ROLES / "tno_acme" / "defaults" / "main.yml").read_text())
    assert tuple(acme_defaults["tno_acme_mail_names"]) == maildocs.MAIL_NAMES  # the lineage of the mail host
    assert tuple(acme_defaults["tno_acme_proxy_names"]) == maildocs.OFFICE_NAMES


def test_lab_names_certificates_and_zones_put_both_names_on_the_mail_host():
    topo = topology.load(paths.LAB_INVENTORY)
    sans = etchosts.cert_sans(topo)
    zones = lab_dns.lab_zones(topo)
    mail_ip = {h.name: h.address for h in topo.hosts}
    for tenant in topo.tenants:
        if not tenant.mail_host:
            continue
        for domain in tenant.domains:
            for name in ("mta-sts", "autoconfig"):
                assert f"{name}.{domain}" in sans[tenant.mail_host]
                assert (name, "A", mail_ip[tenant.mail_host]) in zones[domain]


def test_filter_plugin_is_the_maildocs_module():
    source = Path(ROLES / "tno_mail" / "filter_plugins" / "tno_maildocs.py").read_text()
    assert "from tnoctl.config import maildocs" in source
    assert _template("{{ 'x.test' | tno_mta_sts_policy('none') }}", {}) == maildocs.mta_sts_policy("x.test", "none")
    assert _template("{{ 'x.test' | tno_autoconfig_xml('X') }}", {}) == maildocs.autoconfig_xml("x.test", "X")
