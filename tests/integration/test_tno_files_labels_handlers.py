"""tno_files labels and handler gating through real ansible-runner on localhost (issue 19).

Two patterns the roles use to merge tasks without changing what plan/drift and handlers see:
- entries labelled with a tenant's domain come out of the event collector as one change per label
  (what a per-domain loop's items were), each with its own diff, in check + diff mode too;
- one call notifies several handlers, each gated on its own files in the registered ``changed_files``,
  so a handler runs (or would, in check mode) only when its file changed.
"""

from __future__ import annotations

import grp
import os
import pwd
import sys
import textwrap
from pathlib import Path

import pytest

from tnoctl.plan.calls import PlaybookCall
from tnoctl.run.ansible import RunResult, run_playbook

pytestmark = pytest.mark.integration

TASK = "Write the directories and both services' files"

PLAYBOOK = """\
- name: tno_files labels and gated handlers
  hosts: all
  gather_facts: false
  vars:
    domain_dirs: >-
      {%- set out = [] -%}
      {%- for d in domains -%}{%- set _ = out.append({'path': out_dir ~ '/vmail/' ~ d, 'label': d}) -%}{%- endfor -%}
      {{ out }}
  tasks:
    - name: Write the directories and both services' files
      tno_files:
        owner: "{{ me }}"
        group: "{{ my_group }}"
        directories: "{{ [{'path': out_dir ~ '/vmail'}] + domain_dirs }}"
        files:
          - {content: "a={{ a_value }}\\n", dest: "{{ out_dir }}/a.conf", validate: "/usr/bin/test -s %s"}
          - {content: "b=1\\n", dest: "{{ out_dir }}/b.conf"}
      register: written
      notify: [A changed, B changed]
  handlers:
    - name: Restart A
      ansible.builtin.copy:
        dest: "{{ out_dir }}/../a-restarted"
        content: "yes\\n"
        mode: "0644"
      listen: A changed
      when: (out_dir ~ '/a.conf') in written.changed_files
    - name: Restart B
      ansible.builtin.copy:
        dest: "{{ out_dir }}/../b-restarted"
        content: "yes\\n"
        mode: "0644"
      listen: B changed
      when: (out_dir ~ '/b.conf') in written.changed_files
"""


@pytest.fixture()
def ws(tmp_path: Path) -> Path:
    me, my_group = pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name
    (tmp_path / "hosts.yml").write_text(textwrap.dedent(f"""\
        all:
          vars:
            out_dir: {tmp_path}/out
            me: {me}
            my_group: {my_group}
            a_value: one
            domains: [a.example, b.example]
            ansible_python_interpreter: {sys.executable}
          hosts:
            good: {{ansible_connection: local}}
        """))
    (tmp_path / "pb.yml").write_text(PLAYBOOK)
    return tmp_path


def _run(root: Path, run_id: str, check: bool, a_value: str = "one") -> RunResult:
    call = PlaybookCall(playbook=str(root / "pb.yml"), check=check, diff=check, extra_vars={"a_value": a_value})
    result = run_playbook(call, inventory=root / "hosts.yml", state_dir=root / "state", run_id=run_id)
    assert result.success, [f.message for f in result.failed_tasks]
    return result


def _changes(result: RunResult) -> dict[str | None, str]:
    """item -> diff of the merged task's changes."""
    return {c.item: c.diff for c in result.changed_tasks if c.task == TASK}


def _handlers(result: RunResult) -> set[str]:
    return {c.task for c in result.changed_tasks if c.task.startswith("Restart")}


def test_one_change_per_label_and_handlers_gated_on_their_files(ws: Path) -> None:
    out = ws / "out"
    checked = _run(ws, "c1", check=True)
    changes = _changes(checked)
    assert set(changes) == {None, "a.example", "b.example"}  # the unlabelled entries stay one host-wide change
    assert f"{out}/vmail/a.example" in changes["a.example"] and "b.example" not in changes["a.example"]
    assert "a=one" in changes[None] and "b=1" in changes[None] and "a.example" not in changes[None]
    assert _handlers(checked) == {"Restart A", "Restart B"}  # both would run
    assert not out.exists() and not (ws / "a-restarted").exists()  # check mode wrote nothing

    _run(ws, "a1", check=False)
    assert (out / "vmail" / "b.example").is_dir() and (out / "a.conf").read_text() == "a=one\n"
    assert (ws / "a-restarted").exists() and (ws / "b-restarted").exists()
    (ws / "a-restarted").unlink()
    (ws / "b-restarted").unlink()

    again = _run(ws, "a2", check=False)
    assert again.hosts["good"].changed == 0 and not _changes(again)
    assert not (ws / "a-restarted").exists() and not (ws / "b-restarted").exists()

    (out / "vmail" / "b.example").chmod(0o700)  # drift of one tenant's directory ...
    drift = _run(ws, "c2", check=True, a_value="two")  # ... and a changed file of service A
    changes = _changes(drift)
    assert set(changes) == {None, "b.example"}
    assert "0700" in changes["b.example"] and "a=two" in changes[None] and "b=1" not in changes[None]
    assert _handlers(drift) == {"Restart A"}  # B's file did not change: its handler is skipped

    _run(ws, "a3", check=False, a_value="two")
    assert (ws / "a-restarted").exists() and not (ws / "b-restarted").exists()
    assert oct((out / "vmail" / "b.example").stat().st_mode & 0o777) == "0o755"
