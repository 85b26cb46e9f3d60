"""End-to-end: the lab DNS (knotd), the lab ACME CA (pebble), `tenant dns` and `dns check/publish` (issue 15).

Reuses the session `fleet` (no second deploy, no second `lab up`). What it proves on the running lab:
knotd serves the lab zones on 198.18.0.1:53 and refuses unsigned updates; lab hosts resolve through it
and trust pebble's root; `tenant dns --check` reports a fresh zone's mail records as missing (exit 1),
`--publish --yes` publishes them (then exit 0), a DKIM record deleted behind tnoctl's back (a TSIG-signed
delete, what `nsupdate` does) is named by `--check` and restored by `--publish`; certbot with the
RFC 2136 plugin on a lab host gets a certificate from pebble by DNS-01 through the lab DNS; `dns publish`
then `dns check --json` pass for every tenant, a deleted DKIM record makes `dns check` exit 1 naming it
and the exporter's render show tnoctl_dns_record_ok 0 for it, until `dns publish` restores it. The lab
inventory is in `tno_tls_mode: acme`: after the session deploy (what `make demo` runs) every tenant service
name is served on 25 (STARTTLS), 587 (STARTTLS), 993 and 443 with its own pebble certificate, verified by
``openssl s_client -verify_return_error`` against pebble's root alone.

Budget (CI): the DNS tests take seconds; the certbot test installs certbot on one host through
apt-cacher-ng and issues one certificate (expected < 60 s). Secrets (the TSIG key) never reach output.
"""

from __future__ import annotations

import json
import shlex
import subprocess
from typing import Any

import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.tsigkeyring
import dns.update
import pebblecheck
import pytest

from tnoctl.lab import acme
from tnoctl.lab import dns as labdns

pytestmark = [pytest.mark.root, pytest.mark.lab]
SERVER = "198.18.0.1"


def _tsig_secret(fleet: Any) -> str:
    return fleet.secrets[labdns.TSIG_VAULT_NAME]


def _answer(name: str, rtype: str) -> list[str]:
    response = dns.query.udp(dns.message.make_query(name, rtype), SERVER, timeout=5)
    return [r.to_text() for rrset in response.answer for r in rrset]


def _mail_tenant(fleet: Any) -> str:
    return fleet.tenants_with("mail")[0]


def test_lab_dns_serves_the_lab_zones_and_refuses_unsigned_updates(fleet):
    slug = _mail_tenant(fleet)
    domain = fleet.domain(slug)
    assert _answer(f"mail.{domain}.", "A") == [fleet.address(fleet.mail_host(slug))]
    assert _answer(f"{acme.ACME_NAME}.", "A") == [SERVER]
    update = dns.update.UpdateMessage(domain)
    update.add(f"intruder.{domain}.", 60, "A", "198.18.0.99")
    response = dns.query.tcp(update, SERVER, timeout=5)
    assert response.rcode() in (dns.rcode.REFUSED, dns.rcode.NOTAUTH)
    assert _answer(f"intruder.{domain}.", "A") == []


def test_lab_hosts_resolve_through_the_lab_dns_and_trust_pebble(fleet, lab):
    host = fleet.mail_host(_mail_tenant(fleet))
    resolv = fleet.ssh(host, "cat", "/etc/resolv.conf").stdout
    assert [line for line in resolv.splitlines() if line.startswith("nameserver")] == [f"nameserver {SERVER}"]
    assert fleet.ssh(host, "getent", "hosts", acme.ACME_NAME).stdout.split()[0] == SERVER  # not in /etc/hosts
    installed = fleet.ssh(host, "cat", "/usr/local/share/ca-certificates/tno-lab-acme-root.crt").stdout
    assert installed == lab.acme_root_path.read_text()
    script = ("import json, urllib.request; "
              f"print(json.load(urllib.request.urlopen('{acme.DIRECTORY_URL}', timeout=10))['newOrder'])")
    assert fleet.ssh(host, "python3", "-c", script).stdout.startswith(f"https://{acme.ACME_NAME}:")


def _states(out: str) -> dict[tuple[str, str], str]:
    return {(r["kind"], r["name"]): r["state"] for r in json.loads(out)["records"]}


def test_tenant_dns_check_publish_and_repair(fleet):
    slug = _mail_tenant(fleet)
    domain = fleet.domain(slug)
    rc, out, err = fleet.tnoctl("tenant", "dns", slug, "--check", "--json")
    assert rc == 0, err  # `tnoctl deploy` (the session fleet) published the records (issue 15, item 5)
    assert _states(out)[("mx", f"{domain}.")] == "published"
    rc, out, err = fleet.tnoctl("tenant", "dns", slug, "--publish", "--yes", "--json")
    assert rc == 0, err
    assert set(_states(out).values()) == {"published"}
    secret = _tsig_secret(fleet)
    assert secret not in out and secret not in err

    dkim_name = f"tno2026._domainkey.{domain}."
    keyring = dns.tsigkeyring.from_text({labdns.TSIG_KEY_NAME: (labdns.TSIG_ALGORITHM, secret)})
    delete = dns.update.UpdateMessage(domain, keyring=keyring, keyname=dns.name.from_text(labdns.TSIG_KEY_NAME),
                                      keyalgorithm=labdns.TSIG_ALGORITHM)
    delete.delete(dkim_name, "TXT")
    assert dns.query.tcp(delete, SERVER, timeout=5).rcode() == dns.rcode.NOERROR

    rc, out, err = fleet.tnoctl("tenant", "dns", slug, "--check", "--json")
    assert rc == 1
    assert _states(out)[("dkim", dkim_name)] == "missing"
    assert f"{slug}: dkim {dkim_name} TXT is missing" in err
    rc, out, err = fleet.tnoctl("tenant", "dns", slug, "--publish", "--yes")
    assert rc == 0, err
    rc, _out, _err = fleet.tnoctl("tenant", "dns", slug, "--check")
    assert rc == 0


def test_certbot_rfc2136_gets_a_pebble_certificate_through_the_lab_dns(fleet, lab):
    slug = _mail_tenant(fleet)
    host, name = fleet.mail_host(slug), f"mail.{fleet.domain(slug)}"
    fleet.ssh(host, "apt-get", "install", "-y", "-q", "--no-install-recommends", "certbot",
              "python3-certbot-dns-rfc2136")
    ini = "\n".join([f"dns_rfc2136_server = {SERVER}", "dns_rfc2136_port = 53",
                     f"dns_rfc2136_name = {labdns.TSIG_KEY_NAME}", f"dns_rfc2136_secret = {_tsig_secret(fleet)}",
                     "dns_rfc2136_algorithm = HMAC-SHA256"]) + "\n"
    creds = "/root/tno-e2e-rfc2136.ini"
    write = f"umask 077 && cat > {creds}"
    remote = shlex.join(["sudo", "-n", "sh", "-c", write])  # the secret goes through stdin, never argv
    proc = subprocess.run(["ssh", "-F", str(fleet.ssh_config), host, "--", remote],
                          input=ini, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-500:]
    try:
        result = fleet.ssh(host, "certbot", "certonly", "--non-interactive", "--agree-tos",
                           "--email", "postmaster@lab.test", "--server", acme.DIRECTORY_URL,
                           "--dns-rfc2136", "--dns-rfc2136-credentials", creds,
                           "--dns-rfc2136-propagation-seconds", "1", "--cert-name", "tno-e2e",
                           "--domains", name, check=False)
        assert result.returncode == 0, result.stderr[-1500:].replace(_tsig_secret(fleet), "<secret>")
        issuer = fleet.ssh(host, "openssl", "x509", "-noout", "-issuer", "-in",
                           "/etc/letsencrypt/live/tno-e2e/cert.pem").stdout
        assert "Pebble" in issuer and "tnoctl lab CA" not in issuer
        verify = fleet.ssh(host, "openssl", "verify", "-CAfile",
                           "/usr/local/share/ca-certificates/tno-lab-acme-root.crt", "-untrusted",
                           "/etc/letsencrypt/live/tno-e2e/chain.pem", "/etc/letsencrypt/live/tno-e2e/cert.pem",
                           check=False)
        assert verify.returncode == 0, verify.stdout + verify.stderr
    finally:
        fleet.ssh(host, "rm", "-f", creds, check=False)
        fleet.ssh(host, "certbot", "delete", "--non-interactive", "--cert-name", "tno-e2e", check=False)


def _dns_metrics(fleet: Any) -> dict[tuple[str, str], float]:
    """tnoctl_dns_record_ok by (tenant, record), through the exporter's render path over the fleet's store."""
    from prometheus_client.parser import text_string_to_metric_families

    from tnoctl.exporter import app as exporter_app

    text = exporter_app.build(fleet.state_dir).collector.render()
    return {(s.labels["tenant"], s.labels["record"]): s.value for fam in text_string_to_metric_families(text)
            if fam.name == "tnoctl_dns_record_ok" for s in fam.samples}


def test_dns_check_fleet_json_repair_and_metric(fleet):
    """`dns publish --yes` then `dns check` exit 0 for every tenant; a DKIM TXT deleted behind tnoctl's back is
    named by `dns check --json` (exit 1) and exported as tnoctl_dns_record_ok 0; `dns publish` restores it (1)."""
    rc, _out, err = fleet.tnoctl("dns", "publish", "--yes")
    assert rc == 0, err
    rc, out, err = fleet.tnoctl("dns", "check", "--json")
    assert rc == 0, err
    checked = json.loads(out)
    assert {t["tenant"] for t in checked["tenants"]} == set(fleet.tenants)
    assert {r["state"] for r in checked["records"]} == {"published"}

    slug = _mail_tenant(fleet)
    domain = fleet.domain(slug)
    label = f"dkim tno2026._domainkey.{domain}. TXT"
    secret = _tsig_secret(fleet)
    keyring = dns.tsigkeyring.from_text({labdns.TSIG_KEY_NAME: (labdns.TSIG_ALGORITHM, secret)})
    delete = dns.update.UpdateMessage(domain, keyring=keyring, keyname=dns.name.from_text(labdns.TSIG_KEY_NAME),
                                      keyalgorithm=labdns.TSIG_ALGORITHM)
    delete.delete(f"tno2026._domainkey.{domain}.", "TXT")
    assert dns.query.tcp(delete, SERVER, timeout=5).rcode() == dns.rcode.NOERROR

    rc, out, err = fleet.tnoctl("dns", "check", "--json")
    assert rc == 1
    assert {r["record"]: r["state"] for r in json.loads(out)["records"] if r["tenant"] == slug}[label] == "missing"
    assert [line for line in err.splitlines() if line.endswith((" is missing", " is different"))] == [
        f"{slug}: {label} is missing"]
    assert _dns_metrics(fleet)[(slug, label)] == 0.0

    rc, out, err = fleet.tnoctl("dns", "publish", "--tenant", slug, "--yes", "--json")
    assert rc == 0, err
    assert secret not in out and secret not in err
    assert _dns_metrics(fleet)[(slug, label)] == 1.0
    rc, _out, err = fleet.tnoctl("dns", "check", "--tenant", slug)
    assert rc == 0, err


def test_every_tenant_service_name_serves_its_pebble_certificate(fleet, lab):
    """After the session deploy (`make demo`'s), each tenant's names chain to pebble, one lineage per tenant."""
    from tnoctl import paths

    lab_ca_subject = pebblecheck.subject(paths.lab_dir() / "ca" / "ca.crt")
    serials = pebblecheck.served_serials(fleet, lab.acme_root_path, lab_ca_subject)
    assert set(serials) == set(fleet.tenants)
    assert sum(len(v) for v in serials.values()) >= 4 * len(fleet.tenants)
    per_tenant_host = {}
    for slug, by_endpoint in serials.items():
        for endpoint, serial in by_endpoint.items():
            on_proxy = endpoint.split(".", 1)[0] == "office"  # office.<domain>: the proxy's lineage
            per_tenant_host.setdefault((slug, on_proxy), set()).add(serial)
    one_each = {key: sorted(found) for key, found in per_tenant_host.items() if len(found) != 1}
    assert not one_each, f"a tenant's names on one host are served with several certificates: {one_each}"
    shared = [(a, b) for a in per_tenant_host for b in per_tenant_host
              if a[0] < b[0] and per_tenant_host[a] & per_tenant_host[b]]
    assert not shared, f"two tenants are served the same certificate (one lineage per tenant): {shared}"
