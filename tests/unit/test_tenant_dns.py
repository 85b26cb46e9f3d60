"""The one DNS record builder (#15): records per domain, DKIM keys of every active selector read over SSH."""

from __future__ import annotations

import pytest

from tests.unit.dnsfakes import DKIM_VALUE, dkim_reply, grep_output
from tests.unit.fakes import FakeSsh, make_env
from tnoctl import paths
from tnoctl.actions.tenant_dns import (
    KEY_DIR,
    dkim_argv,
    dkim_txt_value,
    parse_dkim,
    records_for,
    tenant_records,
)
from tnoctl.config.maildocs import mta_sts_id, mta_sts_policy
from tnoctl.errors import OperationFailed

GENKEY_FILE = """tno2026._domainkey\tIN\tTXT\t( "v=DKIM1; h=sha256; k=rsa; "
\t  "p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAx"
\t  "yz123" )  ; ----- DKIM key tno2026 for givors.test
"""


def _by_key(rows: list[dict]) -> dict[tuple[str, str], list[str]]:
    out: dict[tuple[str, str], list[str]] = {}
    for row in rows:
        out.setdefault((row["name"], row["type"]), []).append(row["value"])
    return out


def test_dkim_value_joins_chunks():
    expected = "v=DKIM1; h=sha256; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAxyz123"
    assert dkim_txt_value(GENKEY_FILE) == expected


def test_dkim_value_without_key_is_an_error():
    with pytest.raises(OperationFailed):
        dkim_txt_value('( "v=DKIM1; k=rsa; " )')


def test_records_of_a_mail_and_office_domain():
    rows = records_for("givors.test", "mail.givors.test", "office.givors.test",
                       {"tno2027": "v=DKIM1; p=new", "tno2026": "v=DKIM1; p=old"}, "192.0.2.11", "192.0.2.13")
    got = _by_key(rows)
    assert got[("givors.test.", "MX")] == ["10 mail.givors.test."]
    assert got[("givors.test.", "TXT")] == ["v=spf1 mx -all"]
    assert got[("tno2026._domainkey.givors.test.", "TXT")] == ["v=DKIM1; p=old"]
    assert got[("tno2027._domainkey.givors.test.", "TXT")] == ["v=DKIM1; p=new"]  # every active selector
    assert got[("_dmarc.givors.test.", "TXT")] == ["v=DMARC1; p=quarantine; rua=mailto:postmaster@givors.test"]
    assert got[("_mta-sts.givors.test.", "TXT")][0].startswith("v=STSv1; id=")
    assert got[("_smtp._tls.givors.test.", "TXT")] == ["v=TLSRPTv1; rua=mailto:postmaster@givors.test"]
    assert got[("_submission._tcp.givors.test.", "SRV")] == ["0 1 587 mail.givors.test."]
    assert got[("_imap._tcp.givors.test.", "SRV")] == ["0 1 143 mail.givors.test."]
    assert got[("_imaps._tcp.givors.test.", "SRV")] == ["0 1 993 mail.givors.test."]
    for service in ("_submissions", "_pop3", "_pop3s"):  # RFC 6186: "." = not offered here
        assert got[(f"{service}._tcp.givors.test.", "SRV")] == ["0 0 0 ."]
    for name in ("mail", "smtp", "imap", "autoconfig", "mta-sts"):  # the mail host serves mta-sts./autoconfig.
        assert got[(f"{name}.givors.test.", "A")] == ["192.0.2.11"]
    assert got[("office.givors.test.", "A")] == ["192.0.2.13"]
    assert not [r for r in rows if r["type"] == "CNAME"]
    assert {r["kind"] for r in rows} == {"mx", "spf", "dkim", "dmarc", "mta-sts", "tls-rpt", "srv", "a"}
    assert len({(r["name"], r["type"], r["value"]) for r in rows}) == len(rows)


def test_office_only_domain_gets_no_mail_record():
    rows = records_for("bron.test", None, "office.bron.test", None, None, "192.0.2.13")
    assert [(r["kind"], r["name"], r["type"]) for r in rows] == [("a", "office.bron.test.", "A")]


def test_mail_only_domain_has_no_office_names_and_ipv6_gives_aaaa():
    rows = records_for("feyzin.test", "mail.feyzin.test", None, {"tno2026": "v=DKIM1; p=x"}, "2001:db8::11")
    names = {(r["name"], r["type"]) for r in rows if r["kind"] == "a"}
    assert names == {(f"{n}.feyzin.test.", "AAAA") for n in ("mail", "smtp", "imap", "autoconfig", "mta-sts")}
    assert not [r for r in records_for("feyzin.test", "mail.feyzin.test", None, None) if r["kind"] == "a"]


def test_mta_sts_record_id_follows_the_policy():
    txt = {r["name"]: r["value"] for r in records_for("givors.test", "mail.givors.test", None, None)
           if r["type"] == "TXT"}
    policy = mta_sts_policy("givors.test")
    assert "mx: mail.givors.test\n" in policy and policy.startswith("version: STSv1\n")
    assert txt["_mta-sts.givors.test."] == f"v=STSv1; id={mta_sts_id(policy)}"
    assert mta_sts_id(policy) != mta_sts_id(mta_sts_policy("other.test"))
    enforced = {r["name"]: r["value"] for r in records_for("givors.test", "mail.givors.test", None, None,
                                                           mta_sts_mode="enforce") if r["type"] == "TXT"}
    assert enforced["_mta-sts.givors.test."] == f"v=STSv1; id={mta_sts_id(mta_sts_policy('givors.test', 'enforce'))}"
    assert enforced["_mta-sts.givors.test."] != txt["_mta-sts.givors.test."]


def test_dkim_read_is_one_argv_command_and_its_output_is_parsed_per_selector():
    argv = dkim_argv(["a.test", "b.test"])
    assert argv[:8] == ["grep", "-r", "-s", "-H", "-Z", "--include=*.txt", "-e", ""]
    assert argv[-2:] == [f"{KEY_DIR}/a.test", f"{KEY_DIR}/b.test"]
    output = grep_output({
        f"{KEY_DIR}/a.test/tno2026.txt": GENKEY_FILE,
        f"{KEY_DIR}/a.test/tno2027.txt": '( "v=DKIM1; k=rsa; p=NEW" )',
        f"{KEY_DIR}/a.test/old/tno2020.txt": '( "v=DKIM1; p=SUBDIR" )',  # not directly in the domain dir
        f"{KEY_DIR}/a.test/Bad_Name.txt": '( "v=DKIM1; p=BAD" )',  # not a DNS label we publish
        f"{KEY_DIR}/c.test/tno2026.txt": '( "v=DKIM1; p=OTHER" )',  # not asked for
    })
    assert parse_dkim(output, ["a.test", "b.test"]) == {
        "a.test": {"tno2026": DKIM_VALUE, "tno2027": "v=DKIM1; k=rsa; p=NEW"}, "b.test": {}}


def _env(tmp_path, ssh):
    return make_env(paths.LAB_INVENTORY, tmp_path, ssh=ssh)


def test_tenant_records_read_each_mail_host_once_for_all_selected_tenants(tmp_path):
    ssh = FakeSsh(results={})
    env = _env(tmp_path, ssh)
    slugs = [row.slug for row in env.inventory.rows]
    for host in ("mail1", "mail2"):
        ssh.results[(host, "grep")] = dkim_reply()
    found = tenant_records(env, slugs)
    assert [t.slug for t in found] == slugs and not [t.error for t in found if t.error]
    assert sorted(host for host, _argv in ssh.commands) == ["mail1", "mail2"]
    by_slug = {t.slug: t for t in found}
    bron = by_slug["bron"]  # office only: its office name, nothing of mail
    assert {(r["kind"], r["name"].split(".")[0]) for r in bron.records} == {("a", "office")}
    givors = env.inventory.row("givors")
    office_ip = env.inventory.hosts[givors.placement.office].address
    mail_ip = env.inventory.hosts[givors.placement.mail].address
    rows = _by_key(by_slug["givors"].records)
    assert rows[(f"office.{givors.domains[0]}.", "A")] == [office_ip]
    assert rows[(f"mta-sts.{givors.domains[0]}.", "A")] == [mail_ip]  # its nginx serves the policy
    assert rows[(f"tno2026._domainkey.{givors.domains[0]}.", "TXT")] == [DKIM_VALUE]
    saint_fons = env.inventory.row("saint-fons")
    assert {r["name"] for r in by_slug["saint-fons"].records if r["kind"] == "mx"} == {
        f"{d}." for d in saint_fons.domains}


def test_a_domain_without_key_fails_only_its_tenant(tmp_path):
    ssh = FakeSsh(results={})
    env = _env(tmp_path, ssh)
    feyzin = env.inventory.row("feyzin")
    ssh.results[(feyzin.placement.mail, "grep")] = dkim_reply(without=feyzin.domains)
    found = {t.slug: t for t in tenant_records(env, ["feyzin", "givors"])}
    assert found["feyzin"].error == (f"{feyzin.placement.mail}: no DKIM key for {feyzin.domains[0]} yet; "
                                     "run 'tnoctl deploy' first")
    assert found["feyzin"].records == [] and not found["givors"].error


def test_an_unreadable_mail_host_fails_its_tenants_with_one_line(tmp_path):
    # rc 2 without output or stderr: grep -s found no key directory (not deployed yet)
    ssh = FakeSsh(results={("mail2", "grep"): lambda host, argv: (2, ""), ("mail1", "grep"): dkim_reply()})
    env = _env(tmp_path, ssh)
    found = {t.slug: t for t in tenant_records(env, ["givors", "venissieux"])}
    assert "no DKIM key" in found["givors"].error and not found["venissieux"].error
    ssh.results[("mail2", "grep")] = (255, "sudo: a password is required\nmore")
    found = {t.slug: t for t in tenant_records(env, ["givors", "venissieux"])}
    assert found["givors"].error == "mail2: cannot read the DKIM keys: sudo: a password is required"


def test_tenant_dns_run_raises_the_tenant_error(tmp_path):
    from tnoctl.actions.tenant_dns import TenantDnsRequest, run

    env = _env(tmp_path, FakeSsh(results={("mail2", "grep"): dkim_reply(without=("givors.test",))}))
    with pytest.raises(OperationFailed, match=r"no DKIM key for givors.test yet; run 'tnoctl deploy' first"):
        run(env, TenantDnsRequest("givors"))
    env = _env(tmp_path, FakeSsh(results={("mail2", "grep"): dkim_reply()}))
    outcome = run(env, TenantDnsRequest("givors"))
    assert any(line.startswith("tno2026._domainkey.givors.test.") for line in outcome.lines)
    assert all(r["kind"] for r in outcome.data["records"])
