"""Checking and publishing a commune's records: classification, update plan, recording (#15)."""

from __future__ import annotations

import pytest

from tests.unit.dnsfakes import FakeDns
from tnoctl.actions.tenant_dns_sync import Expected, check, classify, expected_records, plan_update

SPF = Expected("a.test", "spf", "a.test.", "TXT", "v=spf1 mx -all")
MX = Expected("a.test", "mx", "a.test.", "MX", "10 mail.a.test.")
TLSRPT = Expected("a.test", "tls-rpt", "_smtp._tls.a.test.", "TXT", "v=TLSRPTv1; rua=mailto:postmaster@a.test")


@pytest.mark.parametrize("served,state", [
    (["v=spf1 mx -all", "google-site-verification=x"], "published"),
    (["google-site-verification=x"], "missing"),
    ([], "missing"),
    (["v=spf1 a -all"], "different"),
])
def test_txt_classification_looks_only_at_its_kind(served, state):
    assert classify(SPF, served).state == state


def test_mx_classification_ignores_case_and_spacing():
    assert classify(MX, ["10  MAIL.A.TEST."]).state == "published"
    assert classify(MX, ["10 mx.elsewhere.fr."]).state == "different"
    assert classify(MX, []).state == "missing"


def test_addresses_srv_and_tls_rpt_classification():
    aaaa = Expected("a.test", "a", "mail.a.test.", "AAAA", "2001:db8::11")
    assert classify(aaaa, ["2001:0db8:0:0::11"]).state == "published"  # canonical form compared
    srv = Expected("a.test", "srv", "_imaps._tcp.a.test.", "SRV", "0 1 993 mail.a.test.")
    assert classify(srv, ["0 1 993 MAIL.A.TEST."]).state == "published"
    assert classify(srv, ["0 1 993 imap.elsewhere.fr."]).state == "different"
    assert classify(TLSRPT, ["v=spf1 mx -all"]).state == "missing"  # another TXT kind is not ours
    assert classify(TLSRPT, ["v=TLSRPTv1; rua=mailto:x@y"]).state == "different"
    assert TLSRPT.label == "tls-rpt _smtp._tls.a.test. TXT"


def test_expected_records_keep_the_builder_kind_and_their_zone():
    from tnoctl.actions.tenant_dns import records_for

    rows = records_for("a-bis.test", "mail.a-bis.test", "office.a-bis.test", {"tno2026": "v=DKIM1; p=abc"},
                       "192.0.2.1", "192.0.2.2")
    expected = expected_records(rows, ("a.test", "a-bis.test"))
    assert [r.kind for r in expected] == [r["kind"] for r in rows]
    assert {r.domain for r in expected} == {"a-bis.test"}
    assert {r.kind for r in expected} == {"mx", "spf", "dkim", "dmarc", "mta-sts", "tls-rpt", "srv", "a"}


def test_update_plan_replaces_only_same_kind_values():
    statuses = [classify(SPF, ["v=spf1 a -all", "google-site-verification=x"]), classify(MX, ["10 mx.x."])]
    (zone, (deletes, adds)), = plan_update(statuses).items()
    assert zone == "a.test"
    assert ("a.test.", "TXT", '"v=spf1 a -all"') in deletes
    assert not any("google" in str(d) for d in deletes)
    assert ("a.test.", "MX", None) in deletes
    assert ("a.test.", "TXT", '"v=spf1 mx -all"') in adds and ("a.test.", "MX", "10 mail.a.test.") in adds


def test_a_different_srv_replaces_the_whole_rrset():
    srv = Expected("a.test", "srv", "_imaps._tcp.a.test.", "SRV", "0 1 993 mail.a.test.")
    assert plan_update([classify(srv, ["0 1 993 old.a.test."])]) == {
        "a.test": ([("_imaps._tcp.a.test.", "SRV", None)], [("_imaps._tcp.a.test.", "SRV", "0 1 993 mail.a.test.")])}


def test_published_records_need_no_update():
    assert plan_update([classify(SPF, ["v=spf1 mx -all"])]) == {}


def test_check_queries_each_name_and_type_once():
    client = FakeDns()
    check([SPF, Expected("a.test", "mta-sts", "a.test.", "TXT", "v=STSv1; id=1"), MX], client)
    assert client.queries == [("a.test.", "TXT"), ("a.test.", "MX")]


def test_check_without_a_dns_server_is_one_line_error(tmp_path):
    from tests.unit.fakes import make_env
    from tnoctl import paths
    from tnoctl.actions.tenant_dns_sync import platform_client
    from tnoctl.errors import InvalidInput

    env = make_env(paths.LAB_INVENTORY, tmp_path)
    platform = env.inventory.platform.model_copy(update={"tno_dns_server": None})
    object.__setattr__(env.inventory, "platform", platform)
    with pytest.raises(InvalidInput, match=r"^group_vars/all/platform.yml: tno_dns_server: not set"):
        platform_client(env, False)


def test_publish_without_vault_password_is_refused_before_any_query(tmp_path):
    from tests.unit.fakes import make_env
    from tnoctl import paths
    from tnoctl.actions.tenant_dns_sync import platform_client
    from tnoctl.errors import InvalidInput

    env = make_env(paths.LAB_INVENTORY, tmp_path)
    with pytest.raises(InvalidInput, match="needs the vault password"):
        platform_client(env, True)
