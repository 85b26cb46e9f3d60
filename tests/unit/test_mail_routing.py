"""Inter-commune mail by MX (issue 15, item 5): the transport map holds only overrides, TLS is verified.

Why: a platform domain left in the transport map would keep bypassing DNS (the acceptance asks for no
entry); a TLS policy keyed by anything but the recipient domain would not apply to MX-routed mail, and a
missing ``match=mail.<domain>`` or a wrong CA would either accept any certificate or refuse every
delivery. The role's Postfix files are rendered with Ansible's own templating (tests/unit/role_render.py)
and asserted exactly, in both certificate modes; the platform setting is validated through the one loader.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from role_render import render as render_template

from tnoctl import paths
from tnoctl.config import load_inventory
from tnoctl.errors import InvalidInput

HERE = [{"slug": "alpha", "domains": ["alpha.test"], "primary_domain": "alpha.test", "services": ["mail"],
         "placement": {"mail": "mail1"}, "mailboxes": [], "mail": {"postmaster": None, "aliases": []}}]
ALL = [
    {"slug": "alpha", "domains": ["alpha.test"], "mail_host": "mail1", "mail_host_address": "198.18.0.11"},
    {"slug": "gamma", "domains": ["gamma.test", "annex-gamma.test"], "mail_host": "mail2",
     "mail_host_address": "198.18.0.12"},
    {"slug": "delta", "domains": ["delta.test"], "mail_host": "mail3", "mail_host_address": "198.18.0.13"},
    {"slug": "office-only", "domains": ["office.test"], "mail_host": None, "mail_host_address": None},
]


def render(template: str, extra: dict | None = None) -> str:
    """One Postfix file of mail1 (serving alpha) on a platform where gamma and delta live on other hosts."""
    variables = {"tno_tenants": HERE, "tno_all_tenants": ALL, "inventory_hostname": "mail1",
                 "__tno_mail_tenants": HERE, "__tno_mail_release_2": False, "tno_mail_relayhost": "",
                 "tno_mail_myhostname": "mail.alpha.test", "tno_tls_mode": "files"}
    return render_template("tno_mail", template, {**variables, **(extra or {})})


def lines(text: str) -> list[str]:
    """The map's entries (comments and blank lines dropped)."""
    return [line for line in text.splitlines() if line.strip() and not line.startswith("#")]


def test_transport_map_is_empty_by_default_so_every_commune_is_reached_by_mx():
    assert lines(render("postfix/transport.j2")) == []


def test_transport_map_holds_the_explicit_overrides_except_for_a_domain_served_here():
    overrides = {"gamma.test": "[198.18.0.12]:25", "partner.example": "mx.partner.example",
                 "alpha.test": "[192.0.2.1]:25"}
    assert lines(render("postfix/transport.j2", {"tno_mail_transport_overrides": overrides})) == [
        "gamma.test smtp:[198.18.0.12]:25",
        "partner.example smtp:mx.partner.example",
    ]  # alpha.test is delivered locally here: an override would send its mail away


def test_tls_policy_is_keyed_by_recipient_domain_and_matches_the_mx_host_name():
    assert lines(render("postfix/tls_policy.j2")) == [
        "delta.test secure match=mail.delta.test",
        "gamma.test secure match=mail.gamma.test",
        "annex-gamma.test secure match=mail.annex-gamma.test",
    ]  # by tenant slug, then the tenant's domain order; no line for alpha (local) nor for the office-only commune


def test_tls_policy_is_opportunistic_when_platform_verification_is_off():
    assert lines(render("postfix/tls_policy.j2", {"tno_mail_verify_platform_tls": False})) == [
        "delta.test may", "gamma.test may", "annex-gamma.test may"]


def test_smtp_client_sends_sni_and_trusts_the_platform_ca_in_files_mode():
    main = render("postfix/main.cf.j2")
    assert "\nsmtp_tls_CAfile = /etc/tno/tls/mail/ca.crt\n" in main
    assert "\nsmtp_tls_servername = hostname\n" in main
    assert "smtp_tls_CApath" not in main
    assert "\ntransport_maps = texthash:/etc/postfix/tno/transport\n" in main
    assert "\nsmtp_tls_policy_maps = texthash:/etc/postfix/tno/tls_policy\n" in main
    assert "\nsmtp_tls_security_level = may\n" in main


def test_smtp_client_trusts_the_system_store_in_acme_mode():
    main = render("postfix/main.cf.j2", {"tno_tls_mode": "acme"})
    assert "\nsmtp_tls_CAfile = /etc/ssl/certs/ca-certificates.crt\n" in main  # the ACME CA's root is there
    assert "/etc/tno/tls/mail/ca.crt" not in main.split("# --- TLS (client side)")[1].split("# --- SASL")[0]
    assert "\nsmtp_tls_servername = hostname\n" in main
    assert "tls_server_sni_maps = hash:/etc/postfix/tno_sni" in main


def test_postscreen_still_lets_the_other_mail_hosts_skip_the_pregreet_test():
    assert lines(render("postfix/postscreen_access.cidr.j2")) == ["198.18.0.12/32 permit", "198.18.0.13/32 permit"]


def test_lab_platform_has_no_override_and_a_bad_next_hop_is_one_line_naming_file_and_field(tmp_path: Path):
    inv = tmp_path / "inv"
    shutil.copytree(paths.LAB_INVENTORY, inv, ignore=shutil.ignore_patterns(".tno"))
    assert load_inventory(inv).platform.tno_mail_transport_overrides == {}
    platform = inv / "group_vars" / "all" / "platform.yml"
    platform.write_text(platform.read_text() + 'tno_mail_transport_overrides: {ternay.test: "x y"}\n')
    try:
        load_inventory(inv)
    except InvalidInput as exc:
        problems = exc.details or [exc.message]
    else:
        raise AssertionError("a next hop with a space was accepted")
    assert problems == ["group_vars/all/platform.yml: tno_mail_transport_overrides['ternay.test']: 'x y' is not an "
                        "SMTP next hop like [192.0.2.25]:25 or mx.example.fr"]
