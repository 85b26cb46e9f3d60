"""The tno_files action plugin + module through real ansible-runner on localhost (issue 19).

Renders exactly as ansible.builtin.template does, is honest in check mode, shows per-file diffs but
never a `diff: false` file's content, notifies its handler only when a file changed, and is idempotent.
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

TEMPLATE = """\
{{ ansible_managed | comment }}
host = {{ inventory_hostname }}
{% for d in domains %}
domain {{ d }}
{% endfor %}
"""

PLAYBOOK = """\
- name: tno_files test
  hosts: all
  gather_facts: false
  tasks:
    - name: Write the service files
      tno_files:
        owner: "{{ me }}"
        group: "{{ my_group }}"
        mode: "0640"
        files:
          - {src: svc.conf.j2, dest: "{{ out_dir }}/etc/svc/svc.conf", validate: "/usr/bin/test -s %s"}
          - {content: "{{ inventory_hostname }}.example\\n", dest: "{{ out_dir }}/etc/svc/name", mode: "0644"}
          - {content: "hash={{ secret }}\\n", dest: "{{ out_dir }}/etc/svc/users", mode: "0600", diff: false}
          - {file: rule.lua, dest: "{{ out_dir }}/etc/svc/rule.lua", mode: "0644"}
      register: written
      notify: Svc changed
    - name: The same template through ansible.builtin.template, for comparison
      ansible.builtin.template:
        src: svc.conf.j2
        dest: "{{ out_dir }}/reference.conf"
        mode: "0640"
      check_mode: false
      diff: false
    - name: Record which files changed
      ansible.builtin.copy:
        dest: "{{ out_dir }}/changed.txt"
        content: "{{ written.changed_files | map('basename') | join(',') }}\\n"
        mode: "0644"
      when: written is changed
  handlers:
    - name: Svc changed
      ansible.builtin.copy:
        dest: "{{ out_dir }}/handler-ran"
        content: "yes\\n"
        mode: "0644"
"""


@pytest.fixture()
def ws(tmp_path: Path) -> dict[str, Path]:
    me, my_group = pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name
    (tmp_path / "hosts.yml").write_text(textwrap.dedent(f"""\
        all:
          vars:
            out_dir: {tmp_path}/out
            me: {me}
            my_group: {my_group}
            secret: s3cr3t-value
            domains: [a.example, b.example]
            ansible_python_interpreter: {sys.executable}
          hosts:
            good: {{ansible_connection: local}}
        """))
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "svc.conf.j2").write_text(TEMPLATE)
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "rule.lua").write_text("local t = {{1}, {2}}  -- {{ not a template }}\n")
    (tmp_path / "pb.yml").write_text(PLAYBOOK)
    (tmp_path / "out").mkdir()
    return {"root": tmp_path, "out": tmp_path / "out"}


def _run(ws: dict[str, Path], run_id: str, check: bool) -> RunResult:
    call = PlaybookCall(playbook=str(ws["root"] / "pb.yml"), check=check, diff=check)
    result = run_playbook(call, inventory=ws["root"] / "hosts.yml", state_dir=ws["root"] / "state", run_id=run_id,
                          redact=lambda text: text.replace("s3cr3t-value", "********"))
    assert result.success, [f.message for f in result.failed_tasks]
    return result


@pytest.mark.parametrize("strategy", ["linear", "mitogen"])
def test_check_apply_idempotence_diffs_and_handler(ws: dict[str, Path], strategy: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The same under Ansible's strategy and the opt-in Mitogen one (run/strategy.py, issue 19)."""
    monkeypatch.setenv("TNO_ANSIBLE_STRATEGY", strategy)
    out = ws["out"]
    checked = _run(ws, "c1", check=True)
    assert not (out / "etc").exists() and not (out / "handler-ran").exists()  # check mode wrote nothing
    [change] = [c for c in checked.changed_tasks if c.task == "Write the service files"]
    assert "host = good" in change.diff and "domain b.example" in change.diff and "good.example" in change.diff
    assert "hash=" not in change.diff and "s3cr3t" not in change.diff  # diff: false

    _run(ws, "a1", check=False)
    conf = out / "etc" / "svc" / "svc.conf"
    assert conf.read_bytes() == (out / "reference.conf").read_bytes()  # rendered as ansible.builtin.template
    assert (out / "etc" / "svc" / "users").read_text() == "hash=s3cr3t-value\n"
    assert oct((out / "etc" / "svc" / "users").stat().st_mode & 0o777) == "0o600"
    assert (out / "etc" / "svc" / "rule.lua").read_text() == "local t = {{1}, {2}}  -- {{ not a template }}\n"
    assert (out / "handler-ran").exists() and (out / "changed.txt").read_text() == "svc.conf,name,users,rule.lua\n"

    (out / "handler-ran").unlink()
    again = _run(ws, "a2", check=False)
    assert again.hosts["good"].changed == 0 and not (out / "handler-ran").exists()

    conf.write_text(conf.read_text() + "# hand edit\n")
    drift = _run(ws, "c2", check=True)
    [change] = [c for c in drift.changed_tasks if c.task == "Write the service files"]
    assert "-# hand edit" in change.diff
    assert str(out / "etc" / "svc" / "name") not in change.diff  # only the edited file is in the diff
    _run(ws, "a3", check=False)
    assert "hand edit" not in conf.read_text() and (out / "handler-ran").exists()
    assert (out / "changed.txt").read_text() == "svc.conf\n"


PER_FILE_VARS = """\
- name: tno_files per-file template variables
  hosts: all
  gather_facts: false
  vars:
    tenants: [{slug: givors, n: 1}, {slug: bron, n: 2}]
    per_tenant: >-
      {%- set files = [] -%}
      {%- for t in tenants -%}
      {%-   set _ = files.append({'src': 'tenant.conf.j2', 'dest': out_dir ~ '/t/' ~ t.slug ~ '.conf',
                                  'vars': {'tenant': t}}) -%}
      {%- endfor -%}
      {{ files }}
    # as roles/tno_backup/vars/main.yml: the contents read from the vault inside the Jinja loop
    vaulted_givors: !vault |
      $ANSIBLE_VAULT;1.1;AES256
      39353731666563666539666131336562333330626335643839353737356232663866633830646232
      3634656663393032343866306162333732313561333736360a623962333963656536373239313738
      63393166623163663963363436643132393338656663373334366363343734653032363662623761
      3432636635613461330a613235373639626336343234656436663762663861313732663862393835
      6536
    secret_files: >-
      {%- set files = [] -%}
      {%- for t in tenants[:1] -%}
      {%-   set _ = files.append({'dest': out_dir ~ '/t/' ~ t.slug ~ '.vaulted', 'diff': false,
                                  'content': lookup('ansible.builtin.vars', 'vaulted_' ~ t.slug)}) -%}
      {%- endfor -%}
      {{ files }}
  tasks:
    - name: One call renders the template once per tenant
      tno_files:
        owner: "{{ me }}"
        group: "{{ my_group }}"
        files: "{{ per_tenant }}"
    - name: A secret file set, no_log and without diff
      tno_files:
        owner: "{{ me }}"
        group: "{{ my_group }}"
        mode: "0600"
        files: "{{ [{'content': secret, 'dest': out_dir ~ '/t/givors.passphrase', 'diff': false}] + secret_files }}"
      no_log: true
      diff: false
"""


def test_per_file_vars_render_one_template_per_tenant_and_secrets_stay_hidden(ws: dict[str, Path]) -> None:
    root, out = ws["root"], ws["out"]
    (root / "vault-password").write_text("pw-for-test\n")
    (root / "templates" / "tenant.conf.j2").write_text("slug={{ tenant.slug }} n={{ tenant.n }} host={{ me }}\n")
    (root / "pb.yml").write_text(PER_FILE_VARS)
    call = PlaybookCall(playbook=str(root / "pb.yml"), check=True, diff=True)
    vault = {"vault_password_file": root / "vault-password"}
    checked = run_playbook(call, inventory=root / "hosts.yml", state_dir=root / "state", run_id="v1", **vault)
    assert checked.success, [f.message for f in checked.failed_tasks]
    [change] = [c for c in checked.changed_tasks if c.task == "One call renders the template once per tenant"]
    assert "slug=givors n=1" in change.diff and "slug=bron n=2" in change.diff
    assert not (out / "t").exists()
    applied = run_playbook(PlaybookCall(playbook=str(root / "pb.yml")), inventory=root / "hosts.yml",
                           state_dir=root / "state", run_id="v2", **vault)
    assert applied.success, [f.message for f in applied.failed_tasks]
    assert (out / "t" / "givors.vaulted").read_text() == "v4ulted-secret"  # decrypted, as copy content was
    assert oct((out / "t" / "givors.vaulted").stat().st_mode & 0o777) == "0o600"
    assert (out / "t" / "bron.conf").read_text() == f"slug=bron n=2 host={pwd.getpwuid(os.getuid()).pw_name}\n"
    assert (out / "t" / "givors.passphrase").read_text() == "s3cr3t-value"
    assert oct((out / "t" / "givors.passphrase").stat().st_mode & 0o777) == "0o600"
    (out / "t" / "givors.passphrase").write_text("hand-edited")
    drift = run_playbook(call, inventory=root / "hosts.yml", state_dir=root / "state", run_id="v3", **vault)
    assert drift.success and drift.hosts["good"].changed == 1  # the secret file's drift is counted ...
    for path in (root / "state").rglob("*"):  # ... but neither value reaches an event, a diff or a log
        if path.is_file():
            text = path.read_text(errors="replace")
            assert not [v for v in ("s3cr3t-value", "hand-edited", "v4ulted-secret") if v in text], path
