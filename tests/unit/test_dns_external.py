"""Communes whose DNS zone is hosted elsewhere (`dns: {zone: external}`, issue 15): the schema and its
one-line errors, the refusal with ACME, the index row, and every DNS path: `dns plan` marks the records
as the commune's, `dns check` resolves them through the zone's own servers (never the platform's) and
records the result, `dns publish` and deploy's DNS step send nothing and do not fail because of them.

Runs against a copy of the lab inventory (tests/unit/fakes.py, tests/unit/dnsfakes.py); the
onboarding and restore paths are in test_tenant_onboard.py and test_restore_host.py.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest

from tests.unit.dnsfakes import FakeDns, dkim_reply, serving
from tests.unit.fakes import FakePlaybookRunner, FakeSsh, files_tls_mode, make_env
from tnoctl import paths
from tnoctl.actions import deploy, tenant_dns_sync
from tnoctl.actions import dns as action
from tnoctl.cli import main
from tnoctl.cli.context import AppContext
from tnoctl.config import index
from tnoctl.config.load import load_inventory
from tnoctl.errors import ExitCode, InvalidInput, OperationFailed
from tnoctl.run import dnsclient
from tnoctl.state import audit
from tnoctl.state.store import Store

NOW = 1_800_000_000.0
EXTERNAL = "givors"


def external(inv: Path, slug: str = EXTERNAL, block: str = "dns:\n  zone: external\n") -> Path:
    """Append a ``dns`` block to a tenant file of a copied inventory."""
    path = inv / "tenants" / f"{slug}.yml"
    path.write_text(path.read_text() + block)
    return inv


@pytest.fixture()
def inv(tmp_path) -> Path:
    """A copy of the lab inventory (DNS server + TSIG key named) whose tenant givors has an external zone.

    In `tno_tls_mode: files`: `acme` refuses an external zone (no DNS-01 there).
    """
    dest = tmp_path / "inv"
    shutil.copytree(paths.LAB_INVENTORY, dest, ignore=shutil.ignore_patterns(".tno"))
    return external(files_tls_mode(dest))


def _env(inv: Path, state: Path, playbooks: FakePlaybookRunner | None = None):
    ssh = FakeSsh(results={(h, "grep"): dkim_reply() for h in ("mail1", "mail2")})
    return make_env(inv, state, ssh=ssh, playbooks=playbooks or FakePlaybookRunner(), clock=lambda: NOW)


def _never(e, key):
    raise AssertionError("the platform's DNS client was built")


# ------------------------------------------------------------------------------------------------ schema
def _validation_errors(inv: Path) -> list[str]:
    with pytest.raises(InvalidInput) as exc:
        load_inventory(inv)
    return exc.value.details or [exc.value.message]


@pytest.mark.parametrize("block", [
    "dns:\n  zone: registrar\n",
    "dns:\n  zone: \"external\\n\"\n",
    "dns:\n  zone: 1\n",
    "dns:\n  zone: [external]\n",
    f"dns:\n  zone: {'x' * 100_000}\n",
    "dns: external\n",
    "dns:\n  zone: external\n  managed: false\n",
])
def test_a_bad_dns_block_is_one_line_naming_file_and_field(tmp_path, block):
    dest = tmp_path / "inv"
    shutil.copytree(paths.LAB_INVENTORY, dest, ignore=shutil.ignore_patterns(".tno"))
    errors = _validation_errors(external(files_tls_mode(dest), "bron", block))
    assert len(errors) == 1, errors
    assert errors[0].startswith("tenants/bron.yml: dns"), errors
    assert "\n" not in errors[0] and len(errors[0]) < 400 and "x" * 100 not in errors[0]


def test_acme_refuses_an_external_zone_naming_file_and_field(inv):
    platform = inv / "group_vars" / "all" / "platform.yml"
    platform.write_text(platform.read_text().replace("tno_tls_mode: files", "tno_tls_mode: acme"))
    errors = _validation_errors(inv)
    assert errors == [f"tenants/{EXTERNAL}.yml: dns.zone: 'external' is not possible with tno_tls_mode acme (its "
                      "DNS-01 challenges are published on the platform's tno_dns_server); serve the zone there "
                      "(zone: platform) or use tno_tls_mode files"]
    (inv / "tenants" / f"{EXTERNAL}.yml").write_text(
        (inv / "tenants" / f"{EXTERNAL}.yml").read_text().replace("zone: external", "zone: platform"))
    assert load_inventory(inv).row(EXTERNAL).dns_zone == "platform"


def test_switching_to_acme_invalidates_a_warm_index(inv, tmp_path):
    """The TLS mode is an input of the cross-tenant rules: a warm index must not hide the new error."""
    import os
    import time

    from tnoctl.config.load import validate_inventory

    for path in (inv / "tenants").iterdir():  # older than the index: not "racy" (tnoctl.config.scan.RACY_NS)
        os.utime(path, (time.time() - 3600, time.time() - 3600))
    cache = tmp_path / "cache"
    assert load_inventory(inv, cache_dir=cache).row(EXTERNAL).dns_zone == "external"
    assert validate_inventory(inv, cache_dir=cache).stats["hashed"] == 0  # warm: the index, no file read
    platform = inv / "group_vars" / "all" / "platform.yml"
    platform.write_text(platform.read_text().replace("tno_tls_mode: files", "tno_tls_mode: acme"))
    with pytest.raises(InvalidInput) as exc:
        load_inventory(inv, cache_dir=cache)
    assert any("dns.zone" in line for line in exc.value.details)


def test_the_default_is_the_platform_and_the_index_keeps_the_mode(inv, tmp_path):
    loaded = load_inventory(inv, cache_dir=tmp_path / "cache")
    assert {r.slug: r.dns_zone for r in loaded.rows}[EXTERNAL] == "external"
    assert {r.dns_zone for r in loaded.rows if r.slug != EXTERNAL} == {"platform"}
    record = index.record("tenants/a.yml", {**_summary(), "dns_zone": "external"})
    assert index.valid_record(record) and record[-1] == "external"
    assert not index.valid_record([*record[:-1], "registrar"])  # a hand-edited index falls back to validation
    assert not index.valid_record(record[:-1])


def _summary() -> dict:
    return {"slug": "a", "name": "A", "insee": "69001", "domains": ["a.test"], "services": ["mail"],
            "placement": {"mail": "mail1", "office": None}, "pilot": False, "maintenance_window": "w",
            "mailboxes": 0, "backup": {}, "canary": None}


def test_the_example_inventory_has_one_external_commune_and_the_lab_none():
    example = load_inventory(paths.PROJECT_ROOT / "inventories" / "example")
    assert [r.slug for r in example.rows if r.dns_zone == "external"] == ["ecully"]
    assert not [r for r in load_inventory(paths.LAB_INVENTORY).rows if r.dns_zone == "external"]


# ------------------------------------------------------------------------------------------------ dns plan
def test_plan_marks_the_external_tenants_records_as_the_communes(inv, tmp_path):
    outcome = action.plan(_env(inv, tmp_path / "state"), action.DnsRequest((EXTERNAL, "bron")))
    assert outcome.exit_code == ExitCode.OK
    assert f"; {EXTERNAL} ({action.EXTERNAL_HEADER})" in outcome.lines and "; bron" in outcome.lines
    assert {t["tenant"]: t["zone"] for t in outcome.data["tenants"]} == {EXTERNAL: "external", "bron": "platform"}
    assert any(r["type"] == "MX" for t in outcome.data["tenants"] if t["tenant"] == EXTERNAL for r in t["records"])
    from tnoctl.actions import tenant_dns

    shorthand = tenant_dns.run(_env(inv, tmp_path / "state"), tenant_dns.TenantDnsRequest(EXTERNAL))  # tenant dns
    assert shorthand.data["zone"] == "external" and shorthand.data["records"]


# ------------------------------------------------------------------------------------------------ dns check
def test_check_asks_the_zones_own_servers_names_tenant_and_record_and_records_it(inv, tmp_path):
    env = _env(inv, tmp_path / "state")
    registrar = serving(env, [EXTERNAL])
    del registrar.records[("tno2026._domainkey.givors.test.", "TXT")]
    asked: list[tuple[str, ...]] = []

    def zones(e, domains):
        asked.append(domains)
        return registrar

    outcome = action.check(env, action.DnsRequest((EXTERNAL,)), client_factory=_never, external_factory=zones)
    assert outcome.exit_code == ExitCode.FAILED
    assert outcome.errors == [f"{EXTERNAL}: dkim tno2026._domainkey.givors.test. TXT is missing"]
    assert asked == [("givors.test",)] and registrar.updates == []
    assert outcome.data["tenants"] == [{"tenant": EXTERNAL, "zone": "external", "ok": False, "error": None}]
    assert {r["zone"] for r in outcome.data["records"]} == {"external"}
    stored = Store(env.state_dir).latest_dns()
    assert stored[(EXTERNAL, "dkim tno2026._domainkey.givors.test. TXT")].ok is False
    assert sum(1 for (slug, _r), rec in stored.items() if slug == EXTERNAL and rec.ok) == len(stored) - 1


def test_check_of_both_kinds_uses_each_zones_servers_and_exits_0_when_all_is_published(inv, tmp_path):
    env = _env(inv, tmp_path / "state")
    platform, registrar = serving(env, ["bron"]), serving(env, [EXTERNAL])
    outcome = action.check(env, action.DnsRequest(("bron", EXTERNAL)), client_factory=lambda e, key: platform,
                           external_factory=lambda e, domains: registrar)
    assert outcome.exit_code == ExitCode.OK, outcome.errors
    assert {name for name, _t in platform.queries} and not [n for n, _t in platform.queries if "givors" in n]
    assert not [n for n, _t in registrar.queries if "bron" in n]


def test_check_of_an_external_zone_without_name_servers_is_that_tenants_error(inv, tmp_path):
    env = _env(inv, tmp_path / "state")

    def unreachable(e, domains):
        raise OperationFailed("zone givors.test: cannot find its name servers (NXDOMAIN)")

    outcome = action.check(env, action.DnsRequest((EXTERNAL, "bron")), client_factory=lambda e, key: serving(
        env, ["bron"]), external_factory=unreachable)
    assert outcome.exit_code == ExitCode.FAILED
    assert outcome.errors == [f"{EXTERNAL}: zone givors.test: cannot find its name servers (NXDOMAIN)"]
    assert [t["ok"] for t in outcome.data["tenants"]] == [False, True]


def _cli(inv: Path, tmp_path: Path, *argv: str) -> tuple[int, str, str]:
    state = tmp_path / "state"
    out, err = io.StringIO(), io.StringIO()
    app = AppContext(inventory=inv, state_dir_override=state, stdout=out, stderr=err)
    app._env = _env(inv, state)
    code = main(["--inventory", str(inv), "--state-dir", str(state), *argv], app=app)
    return code, out.getvalue(), err.getvalue()


def test_cli_check_of_an_external_tenant_needs_no_platform_dns_server(inv, tmp_path, monkeypatch):
    platform = inv / "group_vars" / "all" / "platform.yml"
    platform.write_text("\n".join(line for line in platform.read_text().splitlines()
                                  if not line.startswith(("tno_dns_", "tno_acme_"))) + "\n")
    registrar = serving(_env(inv, tmp_path / "zone-state"), [EXTERNAL])
    monkeypatch.setattr(tenant_dns_sync, "external_client", lambda e, domains: registrar)
    code, out, err = _cli(inv, tmp_path, "dns", "check", "--tenant", EXTERNAL, "--json")
    assert code == 0, err
    assert json.loads(out)["tenants"][0]["zone"] == "external"
    code, out, err = _cli(inv, tmp_path, "dns", "check", "--tenant", "bron")  # a platform zone still needs it
    assert code == 2 and "tno_dns_server: not set" in err


# ------------------------------------------------------------------------------------------------ dns publish
def test_publish_never_updates_an_external_zone_and_says_so_in_one_line(inv, tmp_path):
    env = _env(inv, tmp_path / "state")
    fake = FakeDns()
    outcome = action.publish(env, action.PublishRequest((EXTERNAL, "bron"), confirm=lambda p: True),
                             client_factory=lambda e, key: fake)
    assert outcome.exit_code == ExitCode.OK, outcome.errors
    assert [zone for zone, _d, _a in fake.updates] == ["bron.test"]
    assert not [n for n, _t in fake.queries if "givors" in n]
    assert outcome.lines == [f"{EXTERNAL}: dns.zone is external: its records are the commune's to publish at its "
                             f"DNS host (see: tnoctl dns plan --tenant {EXTERNAL})"]
    assert outcome.data["external"] == [EXTERNAL] and {t["tenant"] for t in outcome.data["tenants"]} == {"bron"}
    [record] = audit.read(env.state_dir)
    assert record["details"]["external"] == [EXTERNAL] and record["tenants"] == ["bron"]


def test_publish_of_external_tenants_only_builds_no_client_and_exits_0(inv, tmp_path):
    env = _env(inv, tmp_path / "state")
    outcome = action.publish(env, action.PublishRequest((EXTERNAL,), confirm=lambda p: pytest.fail("asked")),
                             client_factory=_never)
    assert outcome.exit_code == ExitCode.OK and outcome.data["external"] == [EXTERNAL]
    assert "external" in outcome.message and len(outcome.lines) == 1
    assert audit.read(env.state_dir) == []


def test_cli_publish_json_carries_the_external_tenants(inv, tmp_path, monkeypatch):
    monkeypatch.setattr(tenant_dns_sync, "platform_client", _never)
    code, out, err = _cli(inv, tmp_path, "dns", "publish", "--tenant", EXTERNAL, "--yes", "--json")
    assert code == 0, err
    assert json.loads(out) == {"tenants": [], "records": [], "external": [EXTERNAL]}
    code, out, err = _cli(inv, tmp_path, "dns", "publish", "--tenant", EXTERNAL, "--yes")
    assert code == 0 and out.splitlines() == [tenant_dns_sync.external_line(EXTERNAL)]
    assert "nothing to publish" in err


# ------------------------------------------------------------------------------------------------ deploy
def test_deploy_sends_nothing_for_an_external_zone_says_so_and_audits_both_shapes(inv, tmp_path):
    env = _env(inv, tmp_path / "state")
    fake = FakeDns()
    outcome = deploy.run(env, deploy.DeployRequest(tenants=(EXTERNAL,)), dns_client=lambda e, key: fake)
    assert outcome.exit_code == ExitCode.OK, outcome.errors
    touched = deploy.planned_slugs(deploy.plan_deploy(env.inventory, tenants=(EXTERNAL,), action="deploy"))
    assert EXTERNAL in touched and len(touched) > 1
    assert fake.updates and not [z for z, _d, _a in fake.updates if z == "givors.test"]
    assert not [n for n, _t in fake.queries if n.endswith("givors.test.")]
    [record] = audit.read(env.state_dir)
    assert sorted(record["details"]["dns"]) == sorted(s for s in touched if s != EXTERNAL)
    assert record["details"]["dns_external"] == [EXTERNAL]
    out = env.output.stdout.getvalue() + env.output.stderr.getvalue()
    assert out.count(f"see: tnoctl dns plan --tenant {EXTERNAL}") == 1
    assert "tno_vault_dns_tsig_key" not in json.dumps(record) + out and "PRIVATE KEY" not in out


def test_deploy_of_external_tenants_only_builds_no_dns_client(inv, tmp_path):
    for slug in ("corbas", "feyzin", "saint-fons", "vaulx-en-velin", "venissieux", "bron"):
        external(inv, slug)
    env = _env(inv, tmp_path / "state")
    outcome = deploy.run(env, deploy.DeployRequest(tenants=(EXTERNAL,)), dns_client=_never)
    assert outcome.exit_code == ExitCode.OK, outcome.errors
    [record] = audit.read(env.state_dir)
    assert record["details"]["dns"] == {} and EXTERNAL in record["details"]["dns_external"]


# ------------------------------------------------------------------------------------------------ one path
def test_publish_many_sets_external_tenants_aside_and_keeps_the_others_errors_apart(inv, tmp_path):
    env = _env(inv, tmp_path / "state")

    class Refusing(FakeDns):
        def update(self, zone: str, deletes: list, adds: list) -> None:
            if zone == "bron.test":
                raise OperationFailed("DNS server 198.18.0.1: update of bron.test refused: NOTAUTH")
            super().update(zone, deletes, adds)

    result = tenant_dns_sync.publish_many(env, [EXTERNAL, "bron", "feyzin"], lambda e, key: Refusing())
    assert result.external == [EXTERNAL] and list(result.statuses) == ["feyzin"]
    assert result.problems == ["bron: DNS server 198.18.0.1: update of bron.test refused: NOTAUTH"]
    with pytest.raises(OperationFailed, match="NOTAUTH"):
        tenant_dns_sync.publish_tenant(env, audit_op(), "bron", lambda e, key: Refusing())
    assert tenant_dns_sync.platform_publishes(env, "bron") and not tenant_dns_sync.platform_publishes(env, EXTERNAL)


def audit_op():
    """A stand-in for the caller's operation: only ``details`` is used."""
    from types import SimpleNamespace

    return SimpleNamespace(details={})


def test_publish_tenant_keeps_its_flat_audit_shape(inv, tmp_path):
    env = _env(inv, tmp_path / "state")
    op = audit_op()
    statuses = tenant_dns_sync.publish_tenant(env, op, "bron", lambda e, key: FakeDns())
    assert statuses and op.details["dns"]["office.bron.test. A"] == "published"
    assert all(isinstance(v, str) for v in op.details["dns"].values())


# ------------------------------------------------------------------------------------------------ adapter
def test_zone_servers_client_asks_the_longest_zone_falls_back_and_refuses_updates(monkeypatch):
    asked: list[tuple[str, str, str]] = []

    def query(self, name, rtype):
        asked.append((self.server, name, rtype))
        if self.server == "192.0.2.1":
            raise OperationFailed("DNS server 192.0.2.1: no answer")
        return ["10 mail.b.a.test."]

    monkeypatch.setattr(dnsclient.DnspythonClient, "query", query)
    servers = {"a.test": ["192.0.2.9"], "b.a.test": ["192.0.2.1", "192.0.2.2"]}
    client = dnsclient.ZoneServersClient(("a.test", "b.a.test"), servers=lambda zone: servers[zone])
    assert client.query("b.a.test.", "MX") == ["10 mail.b.a.test."]
    assert client.query("_dmarc.b.a.test.", "TXT") == ["10 mail.b.a.test."]
    assert client.query("a.test.", "MX") == ["10 mail.b.a.test."]
    assert asked == [("192.0.2.1", "b.a.test.", "MX"), ("192.0.2.2", "b.a.test.", "MX"),
                     ("192.0.2.2", "_dmarc.b.a.test.", "TXT"), ("192.0.2.9", "a.test.", "MX")]
    with pytest.raises(OperationFailed, match="is external"):
        client.update("a.test", [], [("a.test.", "MX", "10 x.")])
    with pytest.raises(OperationFailed, match="in none of the zones"):
        client.query("other.test.", "MX")


def test_zone_servers_names_a_zone_without_name_servers(monkeypatch):
    import dns.resolver

    def resolve(self, name, rtype, **kw):
        raise dns.resolver.NXDOMAIN()

    monkeypatch.setattr(dns.resolver.Resolver, "resolve", resolve)
    with pytest.raises(OperationFailed, match=r"^zone nowhere\.test: cannot find its name servers \(NXDOMAIN\)$"):
        dnsclient.zone_servers("nowhere.test")
