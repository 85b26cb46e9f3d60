"""`deploy` publishes the touched tenants' DNS records where the platform manages the zones (issue 15, item 5).

Why: inter-commune mail is routed by MX, so a fleet brought up by `deploy` alone (`make demo`, the e2e
fleet) must end with its MX records published; a publishing problem must not pass as a successful deploy,
must say how to retry, and the audit record must show what was published without the TSIG secret. The
step runs the `dns publish` path against an in-memory DNS server (tests/unit/dnsfakes.py).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.unit.dnsfakes import FakeDns, dkim_reply
from tests.unit.fakes import FakePlaybookRunner, FakeSsh, failed_result, make_env, ok_result, without_dns_updates
from tnoctl import paths
from tnoctl.actions import deploy
from tnoctl.errors import ExitCode
from tnoctl.state import audit


@pytest.fixture()
def inv(tmp_path) -> Path:
    """A copy of the lab inventory (its platform names the lab DNS server and TSIG key)."""
    dest = tmp_path / "inv"
    shutil.copytree(paths.LAB_INVENTORY, dest, ignore=shutil.ignore_patterns(".tno"))
    return dest


def _env(inv: Path, state: Path, runner: FakePlaybookRunner | None = None):
    ssh = FakeSsh(results={(h, "grep"): dkim_reply() for h in ("mail1", "mail2", "mail3")})
    return make_env(inv, state, playbooks=runner or FakePlaybookRunner(), ssh=ssh)


def _touched(env) -> list[str]:
    plan = deploy.plan_deploy(env.inventory, tenants=("givors",), action="deploy")
    return deploy.planned_slugs(plan)


def test_a_deploy_publishes_every_touched_tenants_records_and_audits_their_states(inv, tmp_path):
    env = _env(inv, tmp_path / "state")
    dns = FakeDns()
    outcome = deploy.run(env, deploy.DeployRequest(tenants=("givors",)), dns_client=lambda e, with_key: dns)
    assert outcome.exit_code == ExitCode.OK, outcome.errors
    touched = _touched(env)
    assert "givors" in touched and len(touched) > 1  # every tenant of the deployed hosts
    assert dns.records[("givors.test.", "MX")] == ["10 mail.givors.test."]
    published = {name for (name, _rtype) in dns.records}
    [record] = audit.read(env.state_dir)
    assert record["result"] == "ok" and sorted(record["details"]["dns"]) == touched
    assert record["details"]["dns"]["givors"]["givors.test. MX"] == "published"
    assert all(name.split(" ")[0] in published for states in record["details"]["dns"].values() for name in states)
    assert "tno_vault_dns_tsig_key" not in json.dumps(record) and "secret" not in json.dumps(record).lower()


def test_a_record_left_unpublished_fails_the_deploy_and_says_how_to_retry(inv, tmp_path):
    env = _env(inv, tmp_path / "state")
    outcome = deploy.run(env, deploy.DeployRequest(tenants=("givors",)),
                         dns_client=lambda e, with_key: FakeDns(frozen=True))  # accepts updates, applies none
    assert outcome.exit_code == ExitCode.FAILED
    assert "dns: givors: mx givors.test. MX is missing" in outcome.errors
    assert [row[0] for row in outcome.rows] == list(deploy.plan_deploy(env.inventory, tenants=("givors",),
                                                                       action="deploy").hosts)  # the site summary
    stderr = env.output.stderr.getvalue()
    assert "retry with: tnoctl dns publish --yes" in stderr and "--tenant givors" in stderr
    [record] = audit.read(env.state_dir)
    assert record["result"] == "failed" and record["details"]["error"].startswith("DNS: ")
    assert record["details"]["dns"]["givors"]["givors.test. MX"] == "missing"


def test_a_zone_the_server_refuses_is_named_and_the_other_tenants_still_get_theirs(inv, tmp_path):
    from tnoctl.errors import OperationFailed

    class Refusing(FakeDns):
        def update(self, zone: str, deletes: list, adds: list) -> None:
            if zone == "givors.test":
                raise OperationFailed("the DNS server refused the update of givors.test (NOTAUTH)")
            super().update(zone, deletes, adds)

    env = _env(inv, tmp_path / "state")
    dns = Refusing()
    outcome = deploy.run(env, deploy.DeployRequest(tenants=("givors",)), dns_client=lambda e, with_key: dns)
    assert outcome.exit_code == ExitCode.FAILED
    assert [e for e in outcome.errors if e.startswith("dns: givors")] == [
        "dns: givors: the DNS server refused the update of givors.test (NOTAUTH)"]
    others = [slug for slug in _touched(env) if slug != "givors"]
    assert others and all(slug in audit.read(env.state_dir)[0]["details"]["dns"] for slug in others)


def test_a_dns_server_without_tsig_key_is_only_checked_so_deploy_sends_nothing(inv, tmp_path):
    env = _env(without_dns_updates(inv), tmp_path / "state")
    outcome = deploy.run(env, deploy.DeployRequest(tenants=("givors",)),
                         dns_client=lambda e, with_key: pytest.fail("a DNS client was built"))
    assert outcome.exit_code == ExitCode.OK and "dns" not in audit.read(env.state_dir)[0]["details"]


def test_a_failed_site_run_publishes_nothing(inv, tmp_path):
    runner = FakePlaybookRunner(lambda call: failed_result(call, "mail2", "Render main.cf"))
    env = _env(inv, tmp_path / "state", runner)
    outcome = deploy.run(env, deploy.DeployRequest(tenants=("givors",)),
                         dns_client=lambda e, with_key: pytest.fail("a DNS client was built"))
    assert outcome.exit_code == ExitCode.FAILED and "dns" not in audit.read(env.state_dir)[0]["details"]


def test_plan_never_publishes(inv, tmp_path):
    runner = FakePlaybookRunner(lambda call: ok_result(call))
    env = _env(inv, tmp_path / "state", runner)
    outcome = deploy.plan(env, deploy.PlanRequest(tenants=("givors",)))
    assert outcome.exit_code == ExitCode.OK and "dns" not in audit.read(env.state_dir)[0]["details"]
