"""The tno_files module (plugins/modules/tno_files.py), run in-process on a temp dir: check, diff, apply.

Issue 19: one module execution converges a service's file set; it must keep check mode (nothing
written), diffs (per changed file, none for `diff: false`), validation and precise per-file changed.
"""

from __future__ import annotations

import grp
import importlib.util
import io
import json
import os
import pwd
import stat
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import pytest
from ansible.module_utils.testing import patch_module_args

from tnoctl import paths

MODULE_PATH = paths.PROJECT_ROOT / "plugins" / "modules" / "tno_files.py"
OWNER = pwd.getpwuid(os.getuid()).pw_name
GROUP = grp.getgrgid(os.getgid()).gr_name


def _module() -> Any:
    spec = importlib.util.spec_from_file_location("tno_files_module", MODULE_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(files: list[dict[str, Any]], *, check: bool = False, diff: bool = False,
        directories: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Run the module like AnsiballZ would; its JSON result."""
    args = {"files": [{"owner": OWNER, "group": GROUP, **f} for f in files], "directories": directories or [],
            "_ansible_check_mode": check, "_ansible_diff": diff}
    out = io.StringIO()
    with patch_module_args(args), redirect_stdout(out), pytest.raises(SystemExit):
        _module().main()
    return json.loads(out.getvalue())


def test_check_mode_reports_new_files_and_writes_nothing(tmp_path: Path) -> None:
    dest = tmp_path / "etc" / "svc" / "main.cf"
    result = run([{"dest": str(dest), "content": "a = 1\n"}], check=True, diff=True)
    assert result["changed"] is True and result["changed_files"] == [str(dest)]
    assert not dest.parent.exists()  # check mode creates nothing, not even the parent directory
    [entry] = result["diff"]
    assert entry["after"] == "a = 1\n" and entry["before"] == ""


def test_apply_writes_atomically_with_mode_and_parents_then_is_idempotent(tmp_path: Path) -> None:
    dest = tmp_path / "etc" / "svc" / "main.cf"
    result = run([{"dest": str(dest), "content": "a = 1\n", "mode": "0640"}])
    assert result["changed"] is True and result["created_directories"] == [str(tmp_path / "etc"), str(dest.parent)]
    assert dest.read_text() == "a = 1\n" and stat.S_IMODE(dest.stat().st_mode) == 0o640
    assert sorted(p.name for p in dest.parent.iterdir()) == ["main.cf"]  # no temporary file left
    again = run([{"dest": str(dest), "content": "a = 1\n", "mode": "0640"}], diff=True)
    assert again["changed"] is False and again["changed_files"] == [] and "diff" not in again


def test_diff_names_only_the_changed_file_and_mode_changes_alone(tmp_path: Path) -> None:
    same, edited, moded = tmp_path / "same", tmp_path / "edited", tmp_path / "moded"
    for path in (same, edited, moded):
        path.write_text("x\n")
        path.chmod(0o644)
    result = run([{"dest": str(same), "content": "x\n"},
                  {"dest": str(edited), "content": "y\n"},
                  {"dest": str(moded), "content": "x\n", "mode": "0600"}], check=True, diff=True)
    assert result["changed_files"] == [str(edited), str(moded)]
    assert [f["changed"] for f in result["files"]] == [False, True, True]
    assert [(f["content_changed"], f["attributes_changed"]) for f in result["files"][1:]] == [(True, False),
                                                                                               (False, True)]
    content, attrs = result["diff"]
    assert (content["before"], content["after"], content["after_header"]) == ("x\n", "y\n", str(edited))
    assert attrs["before"]["mode"] == "0644" and attrs["after"]["mode"] == "0600"
    assert edited.read_text() == "x\n" and stat.S_IMODE(moded.stat().st_mode) == 0o644  # check mode


def test_diff_false_hides_a_secret_files_content(tmp_path: Path) -> None:
    dest = tmp_path / "users"
    dest.write_text("old-hash\n")
    result = run([{"dest": str(dest), "content": "new-hash\n", "diff": False}], check=True, diff=True)
    assert result["changed"] is True
    result.pop("invocation")  # the module's arguments: the action plugin drops them from every result
    text = json.dumps(result)
    assert "old-hash" not in text and "new-hash" not in text


def test_failed_validation_leaves_the_file_and_no_temporary(tmp_path: Path) -> None:
    dest = tmp_path / "main.cf"
    dest.write_text("good\n")
    result = run([{"dest": str(dest), "content": "bad\n", "validate": "/bin/false %s"}])
    assert result.get("failed") is True and "validation of" in result["msg"]
    assert dest.read_text() == "good\n" and [p.name for p in tmp_path.iterdir()] == ["main.cf"]
    ok = run([{"dest": str(dest), "content": "bad\n", "validate": "/usr/bin/test -s %s"}])
    assert ok["changed"] is True and dest.read_text() == "bad\n"


def test_unknown_owner_fails_with_a_message(tmp_path: Path) -> None:
    result = run([{"dest": str(tmp_path / "f"), "content": "x\n", "owner": "no-such-user-tno"}])
    assert result.get("failed") is True and "unknown owner" in result["msg"]


def test_unknown_owner_in_check_mode_reports_a_change(tmp_path: Path) -> None:
    """Check mode on a fresh host: an earlier task (`user`) would create the account, so no failure."""
    dest = tmp_path / "f"
    dest.write_text("x\n")
    result = run([{"dest": str(dest), "content": "x\n", "owner": "no-such-user-tno", "group": "no-such-group-tno"}],
                 check=True, diff=True, directories=[{"path": str(tmp_path / "d"), "owner": "no-such-user-tno"}])
    assert not result.get("failed") and result["changed_files"] == [str(tmp_path / "d"), str(dest)]
    assert not (tmp_path / "d").exists() and dest.read_text() == "x\n"


def test_directories_are_created_and_their_mode_enforced_before_the_files(tmp_path: Path) -> None:
    data = tmp_path / "etc" / "tno"
    spec = {"path": str(data), "owner": OWNER, "group": GROUP, "mode": "0750"}
    checked = run([{"dest": str(data / "t.json"), "content": "{}\n"}], check=True, diff=True, directories=[spec])
    assert checked["changed_files"] == [str(data), str(data / "t.json")] and not data.exists()
    assert checked["diff"][0]["before"] == {"state": "absent"}
    applied = run([{"dest": str(data / "t.json"), "content": "{}\n"}], directories=[spec])
    assert applied["changed"] is True and stat.S_IMODE(data.stat().st_mode) == 0o750
    data.chmod(0o755)
    fixed = run([], directories=[spec], diff=True)
    assert fixed["changed_files"] == [str(data)] and stat.S_IMODE(data.stat().st_mode) == 0o750
    assert run([], directories=[spec])["changed"] is False


def test_changed_labels_name_the_changed_entries_once_and_null_for_unlabelled_ones(tmp_path: Path) -> None:
    dirs = [{"path": str(tmp_path / "vmail" / d), "owner": OWNER, "group": GROUP, "mode": "0750", "label": d}
            for d in ("a.example", "b.example")]
    files = [{"dest": str(tmp_path / "vmail" / "a.example" / "x"), "content": "1\n", "label": "a.example"},
             {"dest": str(tmp_path / "host.conf"), "content": "h\n"}]
    checked = run(files, check=True, directories=dirs)
    assert checked["changed_labels"] == ["a.example", "b.example", None]
    assert [entry["label"] for entry in checked["files"]] == ["a.example", "b.example", "a.example", None]
    run(files, directories=dirs)
    (tmp_path / "vmail" / "b.example").chmod(0o700)
    drift = run(files, check=True, directories=dirs)
    assert drift["changed_labels"] == ["b.example"]
    assert drift["changed_files"] == [str(tmp_path / "vmail" / "b.example")]
    assert run(files, directories=dirs)["changed_labels"] == ["b.example"]
    assert run(files, directories=dirs)["changed_labels"] == []
