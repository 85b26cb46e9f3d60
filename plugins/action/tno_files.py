"""Action plugin tno_files: render a service's files on the controller, converge them in ONE module call.

Why (issue 19): `template`/`copy` cost two remote module executions per file. This action renders
every `src` template exactly as `ansible.builtin.template` does (same templar, search path,
`ansible_managed`, trim_blocks) or takes `content` as given, then runs the `tno_files` module once
with the whole list. The task is changed when any file changed, so `notify` fires as before; the
result lists per-file `changed` (`files`, `changed_files`) for registered follow-ups. `diff: false`
(task or file) and `no_log` keep secret contents out of diffs and events; the module's `invocation`
(the contents) is dropped from the result.

Task arguments::

    tno_files:
      owner: root          # defaults for every file (owner, group, mode, validate)
      group: root
      mode: "0644"
      directories:         # converged first (root, root, 0755 unless given)
        - {path: /etc/rspamd/tno, group: _rspamd, mode: "0750"}
        - {path: /srv/vmail/a.example, label: a.example}           # changes attributed to a.example
      files:
        - {src: postfix/main.cf.j2, dest: /etc/postfix/main.cf}     # a template from the role's templates/
        - {file: tno_from_alignment.lua, dest: /etc/rspamd/x.lua}   # verbatim from files/ (or absolute)
        - {content: "{{ x }}\\n", dest: /etc/mailname, mode: "0644", validate: "cmd %s", diff: false}
        - {src: unit.j2, dest: /etc/a.conf, vars: {tenant: "{{ t }}"}}  # extra variables of this template

A file's or directory's ``label`` (e.g. the tenant's domain) names what the entry belongs to: the result's
``changed_labels`` lists the labels of the changed entries (null for an unlabelled one), and tnoctl's
event collector turns one changed call into one change per label, so `plan`/`drift` attribute a
tenant's entries to that tenant as they did the items of a per-domain loop (tnoctl/run/ansible.py).

A file's ``vars`` are added to the task's variables when its ``src`` is rendered, so one call can render
the same template once per tenant (the list of files built by a Jinja loop in the role's vars).
"""

from __future__ import annotations

import os
from typing import Any

from ansible.errors import AnsibleActionFail, AnsibleError
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase
from ansible.template import trust_as_template

try:  # ansible-core 2.19: what ansible.builtin.template adds (ansible_managed, template_path, ...)
    from ansible._internal._templating import _template_vars
except ImportError:  # pragma: no cover - other ansible-core lines
    _template_vars = None

FILE_KEYS = {"src", "file", "content", "dest", "owner", "group", "mode", "validate", "diff", "vars", "label"}
SOURCES = ("src", "file", "content")
DIR_KEYS = {"path", "owner", "group", "mode", "label"}
DEFAULT_KEYS = ("owner", "group", "mode", "validate")


class ActionModule(ActionBase):
    """Render on the controller, then one `tno_files` module execution on the host."""

    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("files", "directories", *DEFAULT_KEYS))

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        args = self._task.args
        files = args.get("files") or []
        directories = args.get("directories") or []
        if not isinstance(files, list) or not isinstance(directories, list) or not (files or directories):
            raise AnsibleActionFail("tno_files: give a non-empty list of 'files' and/or 'directories'")
        defaults = {k: args[k] for k in DEFAULT_KEYS if args.get(k) is not None}
        specs = [self._spec(entry, index, defaults, task_vars) for index, entry in enumerate(files)]
        dirs = [self._directory(entry, index) for index, entry in enumerate(directories)]
        module_result = self._execute_module(module_name=self._task.action,
                                             module_args={"files": specs, "directories": dirs},
                                             task_vars=task_vars)
        module_result.pop("invocation", None)  # the rendered contents: never in events
        if not self._task.diff:
            module_result.pop("diff", None)
        result.update(module_result)
        return result

    def _spec(self, entry: Any, index: int, defaults: dict[str, Any], task_vars: dict[str, Any]) -> dict[str, Any]:
        """One file's module arguments, its content rendered."""
        if not isinstance(entry, dict):
            raise AnsibleActionFail(f"tno_files: files[{index}] must be a mapping")
        unknown = set(entry) - FILE_KEYS
        if unknown:
            raise AnsibleActionFail(f"tno_files: files[{index}]: unknown key(s) {sorted(unknown)}")
        if not entry.get("dest"):
            raise AnsibleActionFail(f"tno_files: files[{index}]: 'dest' is required")
        if sum(key in entry for key in SOURCES) != 1:
            raise AnsibleActionFail(f"tno_files: files[{index}] ({entry['dest']}): give one of src, file, content")
        spec = {**defaults,
                **{k: v for k, v in entry.items() if k in FILE_KEYS - {"src", "file", "vars"} and v is not None}}
        extra = entry.get("vars") or {}
        if not isinstance(extra, dict) or (extra and "src" not in entry):
            raise AnsibleActionFail(
                f"tno_files: files[{index}] ({entry['dest']}): 'vars' must be a mapping, given only with 'src'")
        if "src" in entry:
            spec["content"] = self._render(str(entry["src"]), str(entry["dest"]), {**task_vars, **extra})
        elif "file" in entry:
            spec["content"] = self._verbatim(str(entry["file"]))
        else:
            spec["content"] = to_text(entry["content"])
        spec["dest"] = str(entry["dest"])
        if "mode" in spec:
            spec["mode"] = str(spec["mode"])
        return spec

    @staticmethod
    def _directory(entry: Any, index: int) -> dict[str, Any]:
        """One directory's module arguments (the module's defaults: root, root, 0755)."""
        if not isinstance(entry, dict) or not entry.get("path"):
            raise AnsibleActionFail(f"tno_files: directories[{index}] must be a mapping with a 'path'")
        unknown = set(entry) - DIR_KEYS
        if unknown:
            raise AnsibleActionFail(f"tno_files: directories[{index}]: unknown key(s) {sorted(unknown)}")
        return {k: str(v) for k, v in entry.items() if v is not None}

    def _verbatim(self, name: str) -> str:
        """A file from the role's files/ (or an absolute controller path), not templated (as copy src)."""
        try:
            source = self._find_needle("files", name)
        except AnsibleError as exc:
            raise AnsibleActionFail(to_text(exc)) from exc
        with open(source, "rb") as handle:
            data = handle.read()
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise AnsibleActionFail(f"tno_files: {name} is not UTF-8 text") from exc

    def _render(self, src: str, dest: str, task_vars: dict[str, Any]) -> str:
        """Render ``src`` from the role's templates/ as ansible.builtin.template does (its defaults)."""
        try:
            source = self._find_needle("templates", src)
        except AnsibleError as exc:
            raise AnsibleActionFail(to_text(exc)) from exc
        template_data = trust_as_template(self._loader.get_text_file_contents(source))
        searchpath = list(task_vars.get("ansible_search_path", []))
        searchpath.extend([self._loader._basedir, os.path.dirname(source)])
        paths: list[str] = []
        for path in searchpath:
            paths.extend([os.path.join(path, "templates"), path])
        temp_vars = task_vars.copy()
        if _template_vars is not None:
            temp_vars.update(_template_vars.generate_ansible_template_vars(
                path=src, fullpath=source, dest_path=dest,
                include_ansible_managed="ansible_managed" not in temp_vars))
        templar = self._templar.copy_with_new_env(searchpath=paths, available_variables=temp_vars)
        rendered = templar.template(template_data, escape_backslashes=False,
                                    overrides={"trim_blocks": True, "lstrip_blocks": False, "newline_sequence": "\n"})
        return "" if rendered is None else to_text(rendered)
