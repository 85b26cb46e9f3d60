"""The ansible-runner adapter against real Ansible on localhost: stats, changes, diffs, failures."""

from __future__ import annotations

import io
import textwrap
from pathlib import Path

import pytest

from tnoctl.plan.calls import PlaybookCall
from tnoctl.run.ansible import run_playbook
from tnoctl.run.progress import RunProgress

pytestmark = pytest.mark.integration

PLAYBOOK = """\
- name: Adapter test
  hosts: all
  gather_facts: false
  tasks:
    - name: Write a file
      ansible.builtin.copy:
        dest: "{{ out_dir }}/{{ inventory_hostname }}.txt"
        content: "hello {{ inventory_hostname }} secret=s3cr3t-value\\n"
        mode: "0600"
    - name: Loop over tenants
      ansible.builtin.copy:
        dest: "{{ out_dir }}/{{ inventory_hostname }}-{{ item.slug }}.txt"
        content: "{{ item.slug }}\\n"
        mode: "0600"
      loop: [{slug: givors}, {slug: corbas}]
    - name: Fail on the broken host
      ansible.builtin.fail:
        msg: "broken on purpose"
      when: inventory_hostname == 'broken'
"""


@pytest.fixture()
def workspace(tmp_path: Path) -> dict[str, Path]:
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        textwrap.dedent(
            f"""\
            all:
              vars:
                out_dir: {tmp_path}/out
                ansible_python_interpreter: {__import__('sys').executable}
              hosts:
                good: {{ansible_connection: local}}
                broken: {{ansible_connection: local}}
                gone: {{ansible_host: 127.0.0.1, ansible_port: 1, ansible_user: nobody}}
            """
        )
    )
    (tmp_path / "out").mkdir()
    playbook = tmp_path / "pb.yml"
    playbook.write_text(PLAYBOOK)
    return {"inventory": inventory, "playbook": playbook, "state": tmp_path / "state", "out": tmp_path / "out"}


def _run(ws: dict[str, Path], check: bool, run_id: str, events: list | None = None):
    call = PlaybookCall(playbook=str(ws["playbook"]), check=check, diff=check)
    return run_playbook(
        call,
        inventory=ws["inventory"],
        state_dir=ws["state"],
        run_id=run_id,
        on_event=(events.append if events is not None else None),
        redact=lambda text: text.replace("s3cr3t-value", "********"),
    )


def test_stats_failures_unreachable_and_artifacts(workspace):
    events: list = []
    result = _run(workspace, check=False, run_id="r1", events=events)
    assert not result.success
    assert result.hosts["good"].success and result.hosts["good"].changed == 2
    assert result.hosts["broken"].failed == 1
    assert result.hosts["gone"].unreachable == 1
    assert result.failed_hosts == ["broken", "gone"]
    assert {f.host for f in result.failed_tasks} == {"broken", "gone"}
    assert any(f.message == "broken on purpose" for f in result.failed_tasks)
    assert (workspace["out"] / "good.txt").exists()
    assert result.artifacts_dir.is_dir() and (result.artifacts_dir / "job_events").is_dir()
    assert any(e.get("event") == "playbook_on_stats" for e in events)
    items = sorted(c.item for c in result.changed_tasks if c.host == "good" and c.item)
    assert items == ["corbas", "givors"]


def test_check_mode_reports_diffs_redacted_and_changes_nothing(workspace):
    result = _run(workspace, check=True, run_id="r2")
    assert not (workspace["out"] / "good.txt").exists()
    diffs = [c.diff for c in result.changed_tasks if c.host == "good" and c.task == "Write a file"]
    assert diffs and "hello good" in diffs[0]
    assert "s3cr3t-value" not in diffs[0] and "********" in diffs[0]


def test_second_run_reports_zero_changed(workspace):
    _run(workspace, check=False, run_id="r3")
    again = _run(workspace, check=False, run_id="r4")
    assert again.hosts["good"].changed == 0


def test_progress_lines_without_terminal(workspace):
    stream = io.StringIO()
    call = PlaybookCall(playbook=str(workspace["playbook"]))
    with RunProgress(stream, ["good", "broken", "gone"], "test", live=False) as progress:
        run_playbook(call, inventory=workspace["inventory"], state_dir=workspace["state"], run_id="r5",
                     on_event=progress)
    text = stream.getvalue()
    assert "broken: FAILED: Fail on the broken host" in text
    assert "gone: UNREACHABLE" in text
