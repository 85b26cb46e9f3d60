"""The internet-facing mail edge (issue 14): inbound policy, send limit, aliases, RFC 2142 and Sieve.

Why: thresholds, the DMARC verdict, the per-user limit, postscreen and the alias map are what a commune's MX
does with mail from the internet and what a phished mailbox can do; a wrong line rejects good mail,
accepts forged mail or lets one commune's file capture another's addresses. The role's files are
rendered with Ansible's own templating (tests/unit/role_render.py) and asserted exactly; the schema and
logical rules are checked through the one loader, on copies of the lab inventory.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from role_render import render as render_template

from tnoctl import paths
from tnoctl.config import load_inventory
from tnoctl.config.ansible_view import host_vars
from tnoctl.config.mailrules import postmaster
from tnoctl.errors import InvalidInput
from tnoctl.lab import base

NO_SPAM = {"reject": None, "add_header": None, "greylist": None}


def _tenant(slug: str, domains: list[str], boxes: list[str], mail: dict | None = None, host: str = "mail1") -> dict:
    return {"slug": slug, "domains": domains, "primary_domain": domains[0], "services": ["mail"],
            "placement": {"mail": host},
            "mailboxes": [{"address": a, "local": a.split("@")[0], "domain": a.split("@")[1]} for a in boxes],
            "mail": mail or {"postmaster": boxes[0] if boxes else None, "aliases": [], "spam": dict(NO_SPAM)}}


ALPHA = _tenant("alpha", ["alpha.test", "annex-alpha.test"], ["maire@alpha.test", "dgs@annex-alpha.test"], {
    "postmaster": "dgs@annex-alpha.test",
    "aliases": [{"local": "contact", "domain": "annex-alpha.test", "address": "contact@annex-alpha.test",
                 "to": ["maire@alpha.test"], "forward": ["archive@partner.example"]}],
    "spam": {"reject": 25.0, "add_header": None, "greylist": 3.0},
})
BETA = _tenant("beta", ["beta.test"], ["postmaster@beta.test", "maire@beta.test"])
GAMMA = _tenant("gamma", ["gamma.test"], ["maire@gamma.test"], host="mail2")
ALL = [{"slug": t["slug"], "domains": t["domains"], "mail_host": t["placement"]["mail"],
        "mail_host_address": {"mail1": "198.18.0.11", "mail2": "198.18.0.12"}[t["placement"]["mail"]]}
       for t in (ALPHA, BETA, GAMMA)]


def render(template: str, extra: dict | None = None) -> str:
    here = [ALPHA, BETA]
    variables = {"tno_tenants": [ALPHA, BETA, GAMMA], "tno_all_tenants": ALL, "inventory_hostname": "mail1",
                 "__tno_mail_tenants": here, "__tno_mail_release_2": False, "tno_mail_relayhost": "",
                 "tno_mail_myhostname": "mail.alpha.test"}
    return render_template("tno_mail", template, {**variables, **(extra or {})})


# ---------------------------------------------------------------- Rspamd inbound policy and send limit


def test_platform_thresholds_become_the_rspamd_actions_without_greylisting_by_default():
    text = render("rspamd/actions.conf.j2")
    assert "reject = 15.0;" in text and "add_header = 6.0;" in text and "greylist = null;" in text
    text = render("rspamd/actions.conf.j2", {"tno_mail_spam_thresholds": {"reject": 20, "add_header": 8,
                                                                          "greylist": 4}})
    assert "reject = 20.0;" in text and "add_header = 8.0;" in text and "greylist = 4.0;" in text


def test_tenant_thresholds_apply_to_mail_for_its_domains_only_with_platform_values_filling_the_gaps():
    text = render("rspamd/settings.conf.j2")
    assert text.count("apply {") == 1  # beta keeps the platform's thresholds: no rule
    assert 'rcpt = ["@alpha.test", "@annex-alpha.test"];' in text
    assert "reject = 25.0;" in text and "add_header = 6.0;" in text and "greylist = 3.0;" in text
    assert "beta" not in text and "gamma" not in text


def test_greylist_module_runs_only_when_a_threshold_asks_for_it():
    with_alpha = render("rspamd/rspamd.conf.override.j2")
    assert "greylist {" not in with_alpha  # alpha's own greylist threshold needs the module
    without = render("rspamd/rspamd.conf.override.j2", {"__tno_mail_tenants": [BETA]})
    assert "greylist {" in without
    for module in ("fuzzy_check", "rbl", "phishing", "url_redirector", "rspamd_update"):
        assert f"{module} {{\n  enabled = false;" in with_alpha


def test_dmarc_reject_policy_is_enforced_and_no_report_leaves_the_platform():
    text = render("rspamd/dmarc.conf.j2")
    assert 'reject = "reject";' in text and 'quarantine = "add_header";' in text
    assert "reporting {\n  enabled = false;" in text


def test_send_limit_is_per_authenticated_user_and_can_be_switched_off():
    text = render("rspamd/ratelimit.conf.j2")
    assert 'selector = "user.lower";' in text
    assert "burst = 200;" in text and 'rate = "200 / 1h";' in text
    day = render("rspamd/ratelimit.conf.j2", {"tno_mail_send_limit": {"messages": 50, "per": "day"}})
    assert 'rate = "50 / 1d";' in day
    off = render("rspamd/ratelimit.conf.j2", {"tno_mail_send_limit": None})
    assert "rates {" not in off


def test_a_mailbox_with_its_own_send_limit_gets_its_own_bucket_and_leaves_the_platforms():
    """Its own bucket (lower or higher) replaces the platform's: the platform rate skips it (not_in)."""
    own = [dict(ALPHA, mailboxes=[dict(ALPHA["mailboxes"][0], send_limit={"messages": 5, "per": "hour"}),
                                  ALPHA["mailboxes"][1]]),
           dict(BETA, mailboxes=[dict(BETA["mailboxes"][0], send_limit=None),
                                 dict(BETA["mailboxes"][1], send_limit={"messages": 5000, "per": "day"})])]
    text = render("rspamd/ratelimit.conf.j2", {"__tno_mail_tenants": own})
    assert 'selector = "user.lower.not_in(\'maire@alpha.test\',\'maire@beta.test\')";' in text
    assert 'selector = "user.lower.in(\'maire@alpha.test\')";' in text
    assert 'burst = 5;\n      rate = "5 / 1h";' in text
    assert 'selector = "user.lower.in(\'maire@beta.test\')";' in text and 'rate = "5000 / 1d";' in text
    assert text.count("bucket {") == 3
    off = render("rspamd/ratelimit.conf.j2", {"__tno_mail_tenants": own, "tno_mail_send_limit": None})
    assert text.count("selector") == 3 and off.count("selector") == 2 and "not_in" not in off
    if shutil.which("rspamadm"):  # the selectors are valid for the Rspamd the hosts run (Debian's)
        import subprocess

        selectors = [line.split("=", 1)[1].strip().rstrip(";")[1:-1] for line in text.splitlines()
                     if "selector =" in line]
        script = "local ls = require 'lua_selectors'\n" + "".join(
            f"assert(ls.create_selector_closure(rspamd_config, [[{sel}]], ''), [[{sel}]])\n" for sel in selectors)
        res = subprocess.run(["rspamadm", "lua", "-e", script + "print('ok')"], capture_output=True, text=True,
                             check=False, timeout=120)
        assert res.stdout.strip().endswith("ok"), res.stdout + res.stderr


def test_the_mailbox_send_limit_reaches_ansible():
    inventory = load_inventory(paths.LAB_INVENTORY)
    boxes = [b for hv in host_vars(inventory).values() for t in hv["tno_tenants"] for b in t["mailboxes"]]
    assert boxes and all("send_limit" in b for b in boxes)
    limited = [b for b in boxes if b["send_limit"]]
    assert all(set(b["send_limit"]) == {"messages", "per"} for b in limited)


def test_redis_backing_the_limit_is_the_local_one():
    assert 'servers = "127.0.0.1:6379";' in render("rspamd/redis.conf.j2")


# ---------------------------------------------------------------- Postfix: postscreen and the alias map


def test_port_25_goes_through_postscreen_and_platform_peers_skip_it():
    master = render("postfix/master.cf.j2")
    assert "smtp      inet  n       -       y       -       1       postscreen" in master
    assert "smtpd     pass  -       -       y       -       -       smtpd" in master
    assert "submission inet n" in master  # 587 is not screened
    main = render("postfix/main.cf.j2")
    assert "postscreen_access_list = permit_mynetworks, cidr:/etc/postfix/tno/postscreen_access.cidr" in main
    assert "postscreen_greet_action = enforce" in main
    assert "postscreen_dnsbl_sites =\n" in main  # sovereign: no public blocklist
    cidr = render("postfix/postscreen_access.cidr.j2")
    assert "198.18.0.12/32 permit" in cidr and "198.18.0.11" not in cidr


def test_alias_map_holds_aliases_forwards_and_rfc2142_addresses_of_every_domain():
    main = render("postfix/main.cf.j2")
    assert "virtual_alias_maps = texthash:/etc/postfix/tno/virtual" in main
    lines = [line for line in render("postfix/virtual.j2").splitlines() if line and not line.startswith("#")]
    assert lines == [
        "abuse@alpha.test dgs@annex-alpha.test",
        "abuse@annex-alpha.test dgs@annex-alpha.test",
        "abuse@beta.test postmaster@beta.test",
        "contact@annex-alpha.test maire@alpha.test, archive@partner.example",
        "postmaster@alpha.test dgs@annex-alpha.test",
        "postmaster@annex-alpha.test dgs@annex-alpha.test",
        # postmaster@beta.test is a mailbox itself: no alias line shadows it
    ]


def test_tenants_without_a_mail_section_get_no_alias_lines():
    bare = {k: v for k, v in BETA.items() if k != "mail"}
    text = render("postfix/virtual.j2", {"__tno_mail_tenants": [bare]})
    assert [line for line in text.splitlines() if line and not line.startswith("#")] == []


# ---------------------------------------------------------------- Dovecot: Sieve and ManageSieve


@pytest.mark.parametrize("version", ["2.3", "2.4"])
def test_sieve_runs_at_delivery_with_managesieve_on_4190_and_no_redirect(version: str):
    text = render(f"dovecot/dovecot-{version}.conf.j2")
    assert "protocols = imap lmtp sieve" in text
    assert "service managesieve-login {\n  inet_listener sieve {\n    port = 4190" in text
    assert "sieve_max_redirects = 0" in text
    assert "~/.dovecot.sieve" in text and "~/sieve" in text  # where tnoctl.hostagent backs them up
    # the home is <maildir>/home, never the maildir root: Maildir++ took the root's dotted entries for folders
    assert "/%d/%n/home" in text if version == "2.3" else "%{user | username}/home" in text
    assert ("mail_plugins = $mail_plugins sieve" if version == "2.3" else "    sieve = yes") in text


def test_role_installs_pigeonhole_and_keeps_installing_rspamd_and_redis():
    vars_text = (paths.ROLES_DIR / "tno_mail" / "vars" / "main.yml").read_text()
    for package in ("dovecot-sieve", "dovecot-managesieved", "rspamd", "redis-server"):
        assert package in vars_text


# ---------------------------------------------------------------- schema and logical rules


def _copy_lab(tmp_path: Path) -> Path:
    root = tmp_path / "inv"
    shutil.copytree(paths.LAB_INVENTORY, root, ignore=shutil.ignore_patterns("vault.yml"))
    return root


def _edit(root: Path, slug: str, mail: dict) -> None:
    path = root / "tenants" / f"{slug}.yml"
    doc = yaml.safe_load(path.read_text())
    doc["mail"] = mail
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False))


def _errors(root: Path) -> list[str]:
    with pytest.raises(InvalidInput) as failed:
        load_inventory(root)
    return list(failed.value.details)


def test_lab_three_domain_commune_has_a_cross_domain_alias_and_a_postmaster():
    inv = load_inventory(paths.LAB_INVENTORY)
    view = next(t for t in host_vars(inv, {"mail1"})["mail1"]["tno_tenants"] if t["slug"] == "saint-fons")
    assert view["mail"]["postmaster"] == "mairie@saint-fons.test"
    alias = view["mail"]["aliases"][0]
    assert alias["address"] == "contact@mediatheque-saint-fons.test"
    assert {a.split("@")[1] for a in alias["to"]} == {"saint-fons.test", "ccas-saint-fons.test"}


def test_every_mail_tenant_view_names_a_postmaster_mailbox_by_default():
    inv = load_inventory(paths.LAB_INVENTORY)
    for host in ("mail1", "mail2"):
        for view in host_vars(inv, {host})[host]["tno_tenants"]:
            if "mail" in view["services"] and view["mailboxes"]:
                assert view["mail"]["postmaster"] in {b["address"] for b in view["mailboxes"]}


def test_alias_rules_refuse_capture_shadowing_and_targets_outside_the_commune(tmp_path: Path):
    root = _copy_lab(tmp_path)
    _edit(root, "saint-fons", {
        "postmaster": "nobody@saint-fons.test",
        "aliases": [
            {"local": "contact", "domain": "venissieux.test", "to": ["mairie@saint-fons.test"]},
            {"local": "abuse", "to": ["mairie@saint-fons.test"]},
            {"local": "mairie", "to": ["pret@mediatheque-saint-fons.test"]},
            {"local": "dsi", "to": ["mairie@venissieux.test", "ghost@saint-fons.test"]},
            {"local": "archives", "forward": ["mairie@saint-fons.test", "mairie@venissieux.test"]},
            {"local": "dsi", "to": ["mairie@saint-fons.test"]},
        ],
    })
    errors = [e for e in _errors(root) if "saint-fons" in e]
    expected = [
        "mail.postmaster: nobody@saint-fons.test is not one of the tenant's mailboxes",
        "mail.aliases[0].domain: 'venissieux.test' is not one of the tenant's domains",
        "mail.aliases[1].local: abuse@ is reserved (RFC 2142)",
        "mail.aliases[2]: mairie@saint-fons.test is a mailbox of this tenant",
        "mail.aliases[3].to[0]: mairie@venissieux.test is outside the tenant's domains",
        "mail.aliases[3].to[1]: ghost@saint-fons.test is not a mailbox or alias of this tenant",
        "mail.aliases[4].forward[0]: mairie@saint-fons.test is in the tenant's own domains",
        "mail.aliases[5]: duplicate alias dsi@saint-fons.test (also mail.aliases[3])",
        "mail.aliases: a forward to venissieux.test goes into tenant 'venissieux'",
    ]
    for fragment in expected:
        assert any(fragment in e for e in errors), (fragment, errors)
    assert all(e.startswith("tenants/saint-fons.yml: ") for e in errors)


def test_alias_needs_a_target_and_addresses_are_lower_case(tmp_path: Path):
    root = _copy_lab(tmp_path)
    _edit(root, "saint-fons", {"aliases": [{"local": "vide"}, {"local": "x", "to": ["Mairie@saint-fons.test"]}]})
    errors = " | ".join(_errors(root))
    assert "mail.aliases[0]" in errors and "at least one target" in errors
    assert "mail.aliases[1].to[0]" in errors and "lower-case address" in errors


def test_spam_thresholds_must_stay_ordered_in_the_platform_and_once_merged_for_a_tenant(tmp_path: Path):
    root = _copy_lab(tmp_path)
    _edit(root, "feyzin", {"spam": {"add_header": 20.0}})  # platform reject 15 < 20
    platform = root / "group_vars" / "all" / "platform.yml"
    text = platform.read_text()
    platform.write_text(text.replace("greylist: null}", "greylist: 9.0}").replace("add_header: 6.0", "add_header: 6.0"))
    errors = _errors(root)
    assert any("tno_mail_spam_thresholds" in e and "greylist (9) must be lower than add_header (6)" in e
               for e in errors), errors
    platform.write_text(text)
    errors = _errors(root)
    assert errors == ["tenants/feyzin.yml: mail.spam: with the platform's tno_mail_spam_thresholds, add_header "
                      "(20) must be lower than reject (15)"]


# ---------------------------------------------------------------- lab base image


def test_lab_base_preinstalls_rspamd_and_redis_disabled_and_the_recipe_says_so(monkeypatch: pytest.MonkeyPatch):
    assert {"rspamd", "redis-server"} <= set(base.INCLUDE)
    assert set(base.DISABLED_UNITS) == {"rspamd.service", "redis-server.service"}
    first = base.recipe_hash()
    monkeypatch.setattr(base, "DISABLED_UNITS", ("rspamd.service",))
    assert base.recipe_hash() != first


def test_a_commune_without_mailboxes_gets_no_rfc2142_lines_and_no_postmaster():
    empty = _tenant("delta", ["delta.test"], [])
    text = render("postfix/virtual.j2", {"__tno_mail_tenants": [empty]})
    assert [line for line in text.splitlines() if line and not line.startswith("#")] == []
    inv = load_inventory(paths.LAB_INVENTORY)
    office_only = next(t for t in inv.tenants if "mail" not in t.services and not t.mailboxes)
    assert postmaster(office_only) is None
