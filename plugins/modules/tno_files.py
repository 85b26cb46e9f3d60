#!/usr/bin/python
"""Module tno_files: converge a set of files in ONE remote module execution (issue 19).

Why: each `template`/`copy` task costs two module executions per file (stat, then copy or file), each
with its AnsiballZ start-up; a service's dozen configuration files cost two dozen. The `tno_files`
action plugin renders the files on the controller and calls this module once: per file it compares
content (sha1), mode, owner and group, and writes only what differs (temporary file in the same
directory, optional `validate` command on it, rename: atomic), creating missing parent directories.
Check mode reports without writing; `--diff` gets one before/after per changed file.
"""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: tno_files
short_description: Converge several files (content, mode, owner, group) in one module execution
description:
  - Called by the C(tno_files) action plugin with the rendered contents; use the action (task keyword
    C(tno_files)) rather than this module directly.
  - Per file, compares the sha1 of the content, the mode, owner and group; writes atomically (temporary
    file, optional I(validate) command, rename) only what differs; creates missing parent directories
    (mode 0755, owned by root).
  - Supports check mode and diff mode.
options:
  directories:
    description: Directories to converge first (created when missing; mode, owner and group enforced).
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: Absolute path of the directory.
        type: path
        required: true
      owner:
        description: Owner (name).
        type: str
        default: root
      group:
        description: Group (name).
        type: str
        default: root
      mode:
        description: Octal mode as a string, e.g. C("0755").
        type: str
        default: "0755"
      label:
        description: What the entry belongs to (e.g. a tenant's domain); listed in C(changed_labels) when it changed.
        type: str
  files:
    description: The files to converge.
    type: list
    elements: dict
    default: []
    suboptions:
      dest:
        description: Absolute path of the file.
        type: path
        required: true
      content:
        description: The full content (text) of the file.
        type: str
        required: true
      owner:
        description: Owner (name).
        type: str
        default: root
      group:
        description: Group (name).
        type: str
        default: root
      mode:
        description: Octal mode as a string, e.g. C("0644").
        type: str
        default: "0644"
      validate:
        description: Command run on the temporary file before it replaces I(dest); C(%s) is its path.
        type: str
      diff:
        description: Include this file's content in the diff (false for secrets).
        type: bool
        default: true
      label:
        description: What the entry belongs to (e.g. a tenant's domain); listed in C(changed_labels) when it changed.
        type: str
author: tnoctl maintainers
"""

RETURN = r"""
files:
  description: One entry per directory then per file, in the order given.
  type: list
  elements: dict
  returned: always
  sample: [{"dest": "/etc/postfix/main.cf", "changed": true, "content_changed": true, "attributes_changed": false}]
changed_files:
  description: The I(dest) of every directory and file that changed (or would, in check mode).
  type: list
  elements: str
  returned: always
changed_labels:
  description: The distinct I(label)s of the changed entries in order, null for a changed entry without one.
  type: list
  elements: str
  returned: always
"""

# Ansible module layout: DOCUMENTATION and RETURN come before the imports.
import grp  # noqa: E402
import hashlib  # noqa: E402
import os  # noqa: E402
import pwd  # noqa: E402
import stat  # noqa: E402
import tempfile  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

DIFF_LIMIT = 256 * 1024
"""Larger files get no content diff (as Ansible's own max_diff_size)."""


def _sha1(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def _text(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return "(binary content)\n"


def _ids(module: AnsibleModule, owner: str, group: str) -> tuple[int, int]:
    """The owner's uid and the group's gid. An unknown one fails, except in check mode, where an earlier
    task (e.g. `user`) would have created it: then -1, which no file has, so the file shows as changed."""
    try:
        uid = pwd.getpwnam(owner).pw_uid
    except KeyError:
        if not module.check_mode:
            module.fail_json(msg=f"tno_files: unknown owner {owner!r}")
        uid = -1
    try:
        gid = grp.getgrnam(group).gr_gid
    except KeyError:
        if not module.check_mode:
            module.fail_json(msg=f"tno_files: unknown group {group!r}")
        gid = -1
    return uid, gid


def _attrs(st: os.stat_result | None) -> dict[str, str]:
    if st is None:
        return {}
    owner = pwd.getpwuid(st.st_uid).pw_name if _known_uid(st.st_uid) else str(st.st_uid)
    group = grp.getgrgid(st.st_gid).gr_name if _known_gid(st.st_gid) else str(st.st_gid)
    return {"mode": f"{stat.S_IMODE(st.st_mode):04o}", "owner": owner, "group": group}


def _known_uid(uid: int) -> bool:
    try:
        pwd.getpwuid(uid)
        return True
    except KeyError:
        return False


def _known_gid(gid: int) -> bool:
    try:
        grp.getgrgid(gid)
        return True
    except KeyError:
        return False


def _make_parents(path: str) -> list[str]:
    """Create the missing parent directories of ``path`` (0755, the caller's owner: root); return them."""
    missing: list[str] = []
    parent = os.path.dirname(path)
    while parent and not os.path.isdir(parent):
        missing.append(parent)
        parent = os.path.dirname(parent)
    for directory in reversed(missing):
        os.mkdir(directory, 0o755)
    return list(reversed(missing))


def _write(module: AnsibleModule, spec: dict, data: bytes, uid: int, gid: int, mode: int) -> None:
    """Temporary file next to dest, content + mode + owner, validate, rename (atomic)."""
    dest = spec["dest"]
    fd, tmp = tempfile.mkstemp(prefix=".tno_files.", dir=os.path.dirname(dest))
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chown(tmp, uid, gid)
        os.chmod(tmp, mode)
        if spec.get("validate"):
            if "%s" not in spec["validate"]:
                module.fail_json(msg=f"tno_files: validate for {dest} must contain %s")
            rc, out, err = module.run_command(spec["validate"] % tmp)
            if rc != 0:
                module.fail_json(msg=f"tno_files: validation of {dest} failed (rc {rc})",
                                 stdout=out, stderr=err, dest=dest)
        os.rename(tmp, dest)
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)


def converge_file(module: AnsibleModule, spec: dict) -> tuple[dict, list[dict], list[str]]:
    """One file: (its result, its diff entries, directories created)."""
    dest = spec["dest"]
    data = spec["content"].encode("utf-8")
    try:
        mode = int(spec["mode"], 8)
    except (TypeError, ValueError):
        module.fail_json(msg=f"tno_files: mode of {dest} must be an octal string such as '0644'")
    uid, gid = _ids(module, spec["owner"], spec["group"])
    if os.path.isdir(dest):
        module.fail_json(msg=f"tno_files: {dest} is a directory")
    st = os.lstat(dest) if os.path.lexists(dest) else None
    if st is not None and stat.S_ISLNK(st.st_mode):
        st = os.stat(dest) if os.path.exists(dest) else None
    before = _read(dest) if st is not None else None
    content_changed = before is None or _sha1(before) != _sha1(data)
    wanted = {"mode": f"{mode:04o}", "owner": spec["owner"], "group": spec["group"]}
    current = _attrs(st)
    attributes_changed = st is not None and (
        stat.S_IMODE(st.st_mode) != mode or st.st_uid != uid or st.st_gid != gid)
    changed = content_changed or attributes_changed
    created: list[str] = []
    if changed and not module.check_mode:
        created = _make_parents(dest)
        if content_changed:
            _write(module, spec, data, uid, gid, mode)
        else:
            os.chown(dest, uid, gid)
            os.chmod(dest, mode)
    diffs: list[dict] = []
    if changed and module._diff:
        if content_changed:
            show = spec.get("diff", True) and len(data) <= DIFF_LIMIT and (before is None or len(before) <= DIFF_LIMIT)
            diffs.append({
                "before_header": dest if before is not None else f"{dest} (absent)",
                "after_header": dest,
                "before": (_text(before) if before is not None else "") if show else "(content hidden)\n",
                "after": spec["content"] if show else "(content changed)\n",
            })
        if attributes_changed:
            diffs.append({"before_header": f"{dest} (attributes)", "after_header": f"{dest} (attributes)",
                          "before": current, "after": wanted})
    result = {"dest": dest, "changed": changed, "content_changed": content_changed,
              "attributes_changed": attributes_changed, "label": spec.get("label")}
    return result, diffs, created


def converge_directory(module: AnsibleModule, spec: dict) -> tuple[dict, list[dict]]:
    """One directory: (its result, its diff entries)."""
    path = spec["path"]
    try:
        mode = int(spec["mode"], 8)
    except (TypeError, ValueError):
        module.fail_json(msg=f"tno_files: mode of {path} must be an octal string such as '0755'")
    uid, gid = _ids(module, spec["owner"], spec["group"])
    if os.path.lexists(path) and not os.path.isdir(path):
        module.fail_json(msg=f"tno_files: {path} exists and is not a directory")
    st = os.stat(path) if os.path.isdir(path) else None
    wanted = {"mode": f"{mode:04o}", "owner": spec["owner"], "group": spec["group"], "state": "directory"}
    changed = st is None or stat.S_IMODE(st.st_mode) != mode or st.st_uid != uid or st.st_gid != gid
    if changed and not module.check_mode:
        if st is None:
            _make_parents(path)
            os.mkdir(path, mode)
        os.chown(path, uid, gid)
        os.chmod(path, mode)
    diffs: list[dict] = []
    if changed and module._diff:
        before = {**_attrs(st), "state": "directory"} if st is not None else {"state": "absent"}
        diffs.append({"before_header": path, "after_header": path, "before": before, "after": wanted})
    return ({"dest": path, "changed": changed, "content_changed": False, "attributes_changed": changed,
             "label": spec.get("label")}, diffs)


def run_module(module: AnsibleModule) -> dict:
    """All directories, then all files, in order; the module's result."""
    results: list[dict] = []
    diffs: list[dict] = []
    created: list[str] = []
    for spec in module.params["directories"]:
        result, dir_diffs = converge_directory(module, spec)
        results.append(result)
        diffs.extend(dir_diffs)
    if not module.params["files"] and not module.params["directories"]:
        module.fail_json(msg="tno_files: nothing to do (no files, no directories)")
    for spec in module.params["files"]:
        result, file_diffs, dirs = converge_file(module, spec)
        results.append(result)
        diffs.extend(file_diffs)
        created.extend(dirs)
    changed = [r["dest"] for r in results if r["changed"]]
    labels: list = []
    for r in results:
        if r["changed"] and r["label"] not in labels:
            labels.append(r["label"])
    out: dict = {"changed": bool(changed), "files": results, "changed_files": changed, "changed_labels": labels}
    if created:
        out["created_directories"] = created
    if module._diff and diffs:
        out["diff"] = diffs
    return out


ARGUMENT_SPEC = dict(
    directories=dict(type="list", elements="dict", default=[], options=dict(
        path=dict(type="path", required=True),
        owner=dict(type="str", default="root"),
        group=dict(type="str", default="root"),
        mode=dict(type="str", default="0755"),
        label=dict(type="str"),
    )),
    files=dict(type="list", elements="dict", default=[], options=dict(
        dest=dict(type="path", required=True),
        content=dict(type="str", required=True),
        owner=dict(type="str", default="root"),
        group=dict(type="str", default="root"),
        mode=dict(type="str", default="0644"),
        validate=dict(type="str"),
        diff=dict(type="bool", default=True),
        label=dict(type="str"),
    )),
)


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    module.exit_json(**run_module(module))


if __name__ == "__main__":
    main()
