"""The lab DNS (knotd) and ACME CA (pebble): pure rendering of their configuration (#15)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from tests.unit.test_lab_pure import TOPO  # two hosts; tenant a (two domains, office), b (mail only)
from tnoctl.lab import acme, dns, topology
from tnoctl.lab.boot import ACME_ROOT_TARGET, CA_TARGET

SECRET = base64.b64encode(bytes(range(32))).decode()


def test_zones_are_the_lab_domain_and_every_tenant_domain():
    zones = dns.lab_zones(TOPO)
    assert list(zones) == ["lab.test", "a.test", "a-bis.test", "b.test"]
    assert ("acme", "A", "198.18.0.1") in zones["lab.test"]
    assert ("mail1", "A", "198.18.0.11") in zones["lab.test"]
    assert ("mail", "A", "198.18.0.11") in zones["a-bis.test"]
    assert ("office", "A", "198.18.0.13") in zones["a.test"]
    assert ("mta-sts", "A", "198.18.0.11") in zones["a.test"]  # the mail host serves the MTA-STS policy
    assert ("mta-sts", "A", "198.18.0.11") in zones["b.test"]  # mail only: policy served all the same
    assert not any(name == "office" for name, _t, _v in zones["b.test"])  # no office host


def test_zone_file_has_soa_ns_then_records():
    text = dns.render_zone("a.test", [("mail", "A", "198.18.0.11")], serial=42)
    lines = text.splitlines()
    assert lines[0] == "$ORIGIN a.test."
    assert "IN SOA ns.lab.test. hostmaster.lab.test. 42 " in lines[2]
    assert lines[3] == "@ IN NS ns.lab.test."
    assert lines[4] == "mail IN A 198.18.0.11"


def test_knot_conf_listens_on_gateway_only_and_updates_need_the_key(tmp_path):
    text = dns.render_knot_conf(tmp_path, ["lab.test", "a.test"], SECRET)
    assert "    listen: 198.18.0.1@53\n" in text
    assert text.count("listen:") == 2  # the server's address and the control socket, nothing else
    assert "    action: update\n" in text and "    key: tno-lab-update.\n" in text
    assert "    acl: tsig_update\n" in text  # the template: every zone gets the ACL
    assert "  - domain: lab.test.\n  - domain: a.test.\n" in text
    assert f"    secret: {SECRET}\n" in text
    assert "    user: knot:knot\n" in text


def test_resolv_conf_points_at_the_lab_dns_only():
    text = dns.render_resolv_conf()
    assert [line for line in text.splitlines() if line.startswith("nameserver")] == ["nameserver 198.18.0.1"]


@pytest.mark.parametrize("secret,ok", [
    (SECRET, True),
    (base64.b64encode(b"short").decode(), False),
    ("not base64!", False),
    (SECRET[:10] + " " + SECRET[10:], False),
    ("", False),
])
def test_tsig_secret_must_be_a_32_byte_base64_key(secret, ok):
    assert dns.valid_tsig_secret(secret) is ok


def test_lab_vault_tsig_key_is_valid_and_named_by_the_platform():
    from tnoctl import paths
    from tnoctl.config import yamlio
    from tnoctl.config.vault import decrypt_value

    inv = Path(paths.LAB_INVENTORY)
    platform = yamlio.load_mapping(inv / "group_vars" / "all" / "platform.yml")
    assert platform["tno_dns_tsig_secret_vault"] == dns.TSIG_VAULT_NAME
    assert platform["tno_dns_tsig_key_name"] == dns.TSIG_KEY_NAME
    assert platform["tno_dns_server"] == "198.18.0.1"
    assert platform["tno_acme_directory_url"] == acme.DIRECTORY_URL
    assert dns.valid_tsig_secret(decrypt_value(inv, inv / "vault-password", dns.TSIG_VAULT_NAME))


def test_pebble_config_listens_on_the_gateway_with_the_given_cert(tmp_path):
    config = json.loads(acme.render_config(tmp_path / "c.crt", tmp_path / "c.key"))["pebble"]
    assert config["listenAddress"] == "198.18.0.1:14000"
    assert config["managementListenAddress"] == "198.18.0.1:15000"
    assert config["certificate"] == str(tmp_path / "c.crt")
    assert config["externalAccountBindingRequired"] is False


def test_pebble_resolves_through_the_lab_dns_without_sleeping(monkeypatch):
    monkeypatch.setenv("PEBBLE_VA_ALWAYS_VALID", "1")  # never inherited: validation must really happen
    argv = acme.pebble_argv("/usr/bin/pebble", Path("/x/pebble.json"))
    assert argv[argv.index("-dnsserver") + 1] == "198.18.0.1:53"
    env = acme.pebble_env()
    assert env["PEBBLE_VA_NOSLEEP"] == "1"
    assert "PEBBLE_VA_ALWAYS_VALID" not in env


def test_pebble_listener_cert_names_are_permitted_by_the_lab_ca(tmp_path):
    from cryptography import x509

    from tnoctl.lab import ca

    ca.ensure_host_certs(tmp_path / "ca", tmp_path / "certs", {"acme": acme.CERT_SANS})
    cert = x509.load_pem_x509_certificate((tmp_path / "certs" / "acme.crt").read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["acme.lab.test"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["198.18.0.1"]


def test_acme_root_is_a_separate_trust_anchor():
    assert ACME_ROOT_TARGET != CA_TARGET
    assert ACME_ROOT_TARGET.startswith("usr/local/share/ca-certificates/")


def test_every_lab_zone_file_parses_as_a_zone():
    import dns.zone as dnszone  # dnspython (the lab module is imported as `dns` above)

    from tnoctl import paths

    zones = dns.lab_zones(topology.load(paths.LAB_INVENTORY))
    assert "givors.test" in zones
    for name, records in zones.items():
        zone = dnszone.from_text(dns.render_zone(name, records, 7), origin=f"{name}.", relativize=False)
        assert zone.get_soa().serial == 7


def test_zone_list_of_a_rendered_conf_is_read_and_replaced_without_touching_the_rest(tmp_path):
    text = dns.render_knot_conf(tmp_path, ["lab.test", "a.test"], SECRET)
    assert dns.served_zones(text) == ["lab.test", "a.test"]
    grown = dns.with_zone_list(text, ["lab.test", "a.test", "mions.test"])
    assert dns.served_zones(grown) == ["lab.test", "a.test", "mions.test"]
    assert grown.startswith(text) and grown.endswith("  - domain: mions.test.\n")  # key, ACL, template kept
    assert dns.with_zone_list(grown, ["lab.test", "a.test"]) == text
    with pytest.raises(Exception, match="no zone list"):
        dns.with_zone_list("server:\n", ["a.test"])


def test_a_zone_added_to_the_running_server_then_removed(tmp_path, monkeypatch):
    """add_zones writes only the new zone's file, extends knot.conf and reloads; remove_zones undoes it."""
    (tmp_path / "zones").mkdir()
    conf = tmp_path / "knot.conf"
    conf.write_text(dns.render_knot_conf(tmp_path, ["lab.test", "a.test"], SECRET))
    (tmp_path / "zones" / "a.test.zone").write_text("published by RFC 2136, kept\n")
    calls: list[str] = []
    monkeypatch.setattr(dns, "_reload", lambda run_dir: calls.append("reload"))
    monkeypatch.setattr(dns, "_wait_soa", lambda zone, run_dir: calls.append(f"soa {zone}"))
    monkeypatch.setattr(dns.shutil, "chown", lambda path, user, group: None)
    zones = dns.lab_zones(TOPO)
    assert dns.add_zones(tmp_path, zones, serial=7) == ["a-bis.test", "b.test"]
    assert calls == ["reload", "soa a-bis.test", "soa b.test"]
    assert dns.served_zones(conf.read_text()) == ["lab.test", "a.test", "a-bis.test", "b.test"]
    assert (tmp_path / "zones" / "a.test.zone").read_text() == "published by RFC 2136, kept\n"
    assert "mail IN A 198.18.0.11" in (tmp_path / "zones" / "b.test.zone").read_text()
    assert dns.add_zones(tmp_path, zones) == [] and calls.count("reload") == 1  # all served: no reload
    assert dns.remove_zones(tmp_path, ["b.test", "not-served.test"]) == ["b.test"]
    assert dns.served_zones(conf.read_text()) == ["lab.test", "a.test", "a-bis.test"]
    assert not (tmp_path / "zones" / "b.test.zone").exists() and calls.count("reload") == 2


def test_trust_bundle_is_the_lab_ca_then_pebbles_root_and_clients_use_it(tmp_path, monkeypatch):
    from tnoctl import paths

    ca_dir = tmp_path / "ca"
    ca_dir.mkdir()
    monkeypatch.setenv("TNO_LAB_DIR", str(tmp_path))
    (ca_dir / "ca.crt").write_text("LAB CA PEM")  # no final newline: the bundle must not glue the two
    assert paths.lab_ca_bundle() == ca_dir / "ca.crt"  # no pebble (yet): the lab CA alone
    (ca_dir / acme.ROOT_FILE).write_text("PEBBLE ROOT PEM\n")
    acme.write_trust_bundle(ca_dir / "ca.crt", ca_dir / acme.ROOT_FILE, ca_dir / acme.TRUST_FILE)
    assert (ca_dir / acme.TRUST_FILE).read_text() == "LAB CA PEM\nPEBBLE ROOT PEM\n"
    assert paths.lab_ca_bundle() == ca_dir / acme.TRUST_FILE
    assert not list(ca_dir.glob("*.tmp"))
