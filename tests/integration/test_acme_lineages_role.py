"""tno_acme's lineage read and site.yml's removal of departed tenants' lineages, run for real on localhost (#15).

A tenant that left a host (offboarded, or moved) kept its certbot lineage there, renewed against the CA
forever. The role's own task files run through ansible-runner as in a deploy: tasks/lineages.yml (what
tasks/deploy.yml imports) and then site.yml's play that includes tasks/prune_lineages.yml, taken verbatim
from playbooks/site.yml, against a fake /etc/letsencrypt, names directory and nginx directory in tmp_path
and a certbot stand-in that logs its argv and deletes the lineage as certbot does. Proved:

* check mode reports the removal (changed) and removes nothing, and so does the health check
  (playbooks/check.yml, tno_action=check, imports site.yml);
* a deploy removes the departed tenant's lineage, names file and nginx snippet through ``certbot delete``,
  keeps the served tenant's and never touches a lineage not named tno-*;
* the next deploy changes nothing and the removal costs no module execution (issue 19: one read per host).
"""

from __future__ import annotations

import json
import runpy
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from tnoctl import paths
from tnoctl.plan.calls import PlaybookCall
from tnoctl.run.ansible import run_playbook

pytestmark = pytest.mark.integration

READ = "Read the tenant lineages, certbot, its timer and the credentials on this host"
PRUNE = "Remove the lineages, names files and nginx snippets of tenants this host no longer serves"
CERTBOT = """#!/bin/sh
echo "$*" >> "$(dirname "$0")/certbot.log"
rm -rf "$4/live/$6" "$4/archive/$6" "$4/renewal/$6.conf"
"""
READ_PLAY = """\
- name: The lineage read, as tno_acme's tasks/deploy.yml imports it
  hosts: mail
  gather_facts: false
  tasks:
    - name: Read the lineages
      ansible.builtin.include_role:
        name: tno_acme
        tasks_from: lineages.yml
"""


def _site_prune_play() -> list[dict[str, Any]]:
    """site.yml's play that removes the lineages of departed tenants, as written there."""
    plays = yaml.safe_load((paths.PROJECT_ROOT / "playbooks" / "site.yml").read_text())
    return [p for p in plays if p["name"].startswith("Certificates of tenants that left")]


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    le = tmp_path / "le"
    for name in ("tno-givors", "tno-bron", "other.example"):  # givors served, bron left, other not ours
        (le / "live" / name).mkdir(parents=True)
        (le / "live" / name / "fullchain.pem").write_text("pem")
        (le / "renewal").mkdir(exist_ok=True)
        (le / "renewal" / f"{name}.conf").write_text("renewal")
    for directory, pattern in (("state", "tno-{}.names"), ("nginx", "tno-acme-{}.conf")):
        (tmp_path / directory).mkdir()
        for slug in ("givors", "bron"):
            (tmp_path / directory / pattern.format(slug)).write_text("x")
    (tmp_path / "certbot").write_text(CERTBOT)
    (tmp_path / "certbot").chmod(0o755)
    hook = le / "renewal-hooks" / "deploy" / "tno-reload"  # the deploy hook: logs how the prune calls it
    hook.parent.mkdir(parents=True)
    hook.write_text(f'#!/bin/sh\necho "$*" >> {tmp_path / "hook.log"}\n')
    hook.chmod(0o755)
    tenant = {"slug": "givors", "services": ["mail"], "domains": ["givors.test"], "placement": {"mail": "mail1"}}
    inventory = {"all": {
        "vars": {"ansible_python_interpreter": sys.executable, "tno_tls_mode": "acme", "tno_tenants": [tenant]},
        "children": {"mail": {"hosts": {"mail1": {"ansible_connection": "local"}}}}}}
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(inventory))
    (tmp_path / "pb.yml").write_text(textwrap.dedent(READ_PLAY) + yaml.safe_dump(_site_prune_play(), sort_keys=False))
    return tmp_path


def _run(root: Path, run_id: str, *, check: bool = False, action: str = "deploy") -> tuple[Any, list[dict[str, Any]]]:
    extra = {"tno_acme_config_dir": str(root / "le"), "tno_acme_state_dir": str(root / "state"),
             "__tno_acme_nginx_dir": str(root / "nginx"), "__tno_acme_certbot": str(root / "certbot"),
             "tno_action": action}
    call = PlaybookCall(playbook=str(root / "pb.yml"), extra_vars=extra, check=check)
    result = run_playbook(call, inventory=root / "hosts.yml", state_dir=root / "state-run", run_id=run_id)
    assert result.success, [f.message for f in result.failed_tasks]
    events_dir = next((root / "state-run" / "runs" / run_id).rglob("job_events"))
    return result, [json.loads(p.read_text()) for p in sorted(events_dir.glob("*.json"))]


def _res(events: list[dict[str, Any]], task: str, kind: str = "runner_on_ok") -> dict[str, Any] | None:
    """The result of ``task`` (one host) in events of ``kind``; skipped events carry no result: {}."""
    found = [e["event_data"].get("res", {}) for e in events
             if e.get("event") == kind and (e.get("event_data") or {}).get("task") == task]
    assert len(found) <= 1, found
    return found[0] if found else None


def _executions(root: Path, run_id: str) -> int:
    module_executions = runpy.run_path(str(paths.PROJECT_ROOT / "bench" / "deploy_overhead.py"))["module_executions"]
    return module_executions(next((root / "state-run" / "runs" / run_id).rglob("job_events")))["mail1"]


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for d in ("le", "state", "nginx") for p in (root / d).rglob("*")
                  if p.is_file())


def test_a_departed_tenants_lineage_is_removed_honestly_in_check_mode_and_once(root: Path) -> None:
    assert len(_site_prune_play()) == 1
    before = _files(root)
    check, events = _run(root, "c1", check=True)
    read = _res(events, READ)
    assert read is not None and read["changed"] is False
    state = json.loads(read["stdout"])
    assert {k: state[k] for k in ("live", "stale", "deleted")} == {"live": ["tno-givors"], "stale": ["tno-bron"],
                                                                  "deleted": []}
    assert state["names"] == {"tno-givors": "x"} and set(state) >= {"timer_ready", "files",
                                                                     "dovecot_version", "sni_map_pending"}
    pruned = _res(events, PRUNE)
    assert pruned is not None and pruned["changed"] is True  # would remove ...
    assert json.loads(pruned["stdout"])["deleted"] == ["tno-bron"]
    assert _files(root) == before and not (root / "certbot.log").exists()  # ... and removed nothing
    assert not (root / "hook.log").exists()  # nor rewrote the metrics
    assert check.hosts["mail1"].changed == 1

    health, events = _run(root, "h1", action="check")  # playbooks/check.yml imports site.yml: removes nothing
    assert health.hosts["mail1"].changed == 0 and _res(events, PRUNE) is None
    assert _files(root) == before and not (root / "certbot.log").exists()

    deploy, events = _run(root, "d1")
    assert deploy.hosts["mail1"].changed == 1 and _executions(root, "d1") == 3  # read, prune, metrics
    assert (root / "certbot.log").read_text() == f"delete --non-interactive --config-dir {root / 'le'} " \
                                                 "--cert-name tno-bron\n"
    assert (root / "hook.log").read_text() == "metrics\n"  # the expiry metrics rewritten without tno-bron
    assert _files(root) == ["le/live/other.example/fullchain.pem", "le/live/tno-givors/fullchain.pem",
                            "le/renewal-hooks/deploy/tno-reload",
                            "le/renewal/other.example.conf", "le/renewal/tno-givors.conf",
                            "nginx/tno-acme-givors.conf", "state/tno-givors.names"]

    again, events = _run(root, "d2")
    assert again.hosts["mail1"].changed == 0
    assert _res(events, PRUNE) is None and _res(events, PRUNE, "runner_on_skipped") is not None
    assert _executions(root, "d2") == 1  # one read per host; nothing runs when no lineage is stale
