"""`tnoctl lock list|release` and `tnoctl history` run in-process: exit codes, output, audit records."""

from __future__ import annotations

import io
import json
import os

import click
import pytest

from tnoctl import cli
from tnoctl.cli import main
from tnoctl.cli.context import AppContext
from tnoctl.errors import ExitCode
from tnoctl.state import audit, current_host, locks


def _run(tmp_path, *argv: str) -> tuple[int, str, str]:
    app = AppContext(stdout=io.StringIO(), stderr=io.StringIO(), state_dir_override=tmp_path)
    code = main(list(argv), app=app)
    return code, app.stdout.getvalue(), app.stderr.getvalue()


def _plant(tmp_path, tenant: str, host: str = "bastion1") -> None:
    path = locks.lock_path(tmp_path, tenant)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = {"owner": "alice", "pid": 4242, "host": host, "verb": "deploy",
            "operation_id": "20261129T153000Z-abcdef", "started": "2026-11-29T15:30:00Z"}
    path.write_text(json.dumps(lock))


@click.command("hold-test")
@click.argument("tenant")
@click.pass_obj
def _hold_cmd(app: AppContext, tenant: str) -> None:
    """A verb that does what real verbs do: audit the operation and hold the tenant's lock."""
    argv = ["hold-test", tenant]
    with (
        audit.operation(app.state_dir, "hold-test", argv, tenants=[tenant]) as op,
        locks.hold(app.state_dir, [tenant], "hold-test", op.id),
    ):
        pass


@pytest.fixture()
def hold_verb(monkeypatch):
    monkeypatch.setitem(cli.VERBS, "hold-test", f"{__name__}:_hold_cmd")


def test_lock_list_empty_and_json(tmp_path):
    assert _run(tmp_path, "lock", "list", "--json")[:2] == (0, "[]\n")
    code, out, err = _run(tmp_path, "lock", "list")
    assert (code, out) == (0, "") and "no tenant is locked" in err


def test_lock_list_shows_the_holder(tmp_path):
    _plant(tmp_path, "givors")
    code, out, _ = _run(tmp_path, "lock", "list", "--json")
    [row] = json.loads(out)
    assert code == 0
    assert row | {"path": None} == {
        "tenant": "givors", "state": "held", "verb": "deploy", "operator": "alice", "pid": 4242,
        "host": "bastion1", "since": "2026-11-29T15:30:00Z", "operation_id": "20261129T153000Z-abcdef",
        "path": None, "error": None,
    }  # fmt: skip
    code, out, _ = _run(tmp_path, "lock", "list")
    assert code == 0 and "givors" in out and "alice" in out


def test_locked_tenant_exits_3_naming_the_holder_and_is_audited(tmp_path, hold_verb):
    _plant(tmp_path, "givors")
    code, _, err = _run(tmp_path, "hold-test", "givors")
    assert code == ExitCode.LOCKED
    assert "tenant givors is locked by deploy (pid 4242 on bastion1, operator alice" in err
    assert "Traceback" not in err
    [rec] = audit.read(tmp_path)
    assert (rec["verb"], rec["result"], rec["exit_code"]) == ("hold-test", "locked", 3)
    assert _run(tmp_path, "hold-test", "corbas")[0] == 0
    assert locks.list_locks(tmp_path)[0].tenant == "givors"  # corbas was released at exit


def test_release_without_yes_when_not_interactive_is_refused(tmp_path):
    _plant(tmp_path, "givors")
    code, _, err = _run(tmp_path, "lock", "release", "givors")
    assert code == ExitCode.INVALID
    assert "lock release needs --yes when not run from a terminal" in err
    assert [s.tenant for s in locks.list_locks(tmp_path)] == ["givors"]
    assert not (tmp_path / "audit.jsonl").exists() or audit.read(tmp_path) == []  # refused before anything


def test_release_with_yes_removes_and_audits(tmp_path):
    _plant(tmp_path, "givors")
    code, _, err = _run(tmp_path, "lock", "release", "givors", "--yes")
    assert code == 0 and "released givors's lock held by deploy (pid 4242 on bastion1" in err
    assert locks.list_locks(tmp_path) == []
    [rec] = audit.read(tmp_path, tenant="givors")
    assert (rec["verb"], rec["result"]) == ("lock release", "ok")
    assert rec["args"] == ["tenant=givors", "yes=true"]  # the operation's own parameters, not argv
    assert rec["details"]["released"] is True and rec["details"]["holder"]["pid"] == 4242


@pytest.mark.parametrize(("answer", "code", "left"), [("y\n", 0, []), ("n\n", ExitCode.REFUSED, ["givors"])])
def test_release_asks_when_interactive(tmp_path, monkeypatch, answer, code, left):
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr("sys.stdin", Terminal(answer))
    _plant(tmp_path, "givors")
    assert _run(tmp_path, "lock", "release", "givors")[0] == code
    assert [s.tenant for s in locks.list_locks(tmp_path)] == left


def test_release_warns_when_holder_still_runs_here(tmp_path):
    path = locks.lock_path(tmp_path, "givors")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"owner": "me", "pid": os.getpid(), "host": current_host(), "verb": "deploy",
                                "operation_id": "x", "started": "2026-11-29T15:30:00Z"}))
    code, _, err = _run(tmp_path, "lock", "release", "givors", "--yes")
    assert code == 0 and f"pid {os.getpid()}, is still running on this host" in err


def test_release_of_unlocked_tenant_and_bad_slug(tmp_path):
    code, _, err = _run(tmp_path, "lock", "release", "givors", "--yes")
    assert code == 0 and "not locked" in err
    code, _, err = _run(tmp_path, "lock", "release", "../etc", "--yes")
    assert code == ExitCode.INVALID and "not a tenant slug" in err
    assert [r["tenants"] for r in audit.read(tmp_path)] == [["givors"]]


def test_history_table_json_filter_limit(tmp_path):
    for tenants in (["givors"], ["corbas"], ["givors", "corbas"]):
        with audit.operation(tmp_path, "deploy", ["deploy"], tenants=tenants):
            pass
    code, out, _ = _run(tmp_path, "history", "--json")
    assert code == 0
    assert [r["tenants"] for r in json.loads(out)] == [["givors"], ["corbas"], ["corbas", "givors"]]
    code, out, _ = _run(tmp_path, "history", "--tenant", "givors", "--limit", "1", "--json")
    assert [r["tenants"] for r in json.loads(out)] == [["corbas", "givors"]]
    code, out, _ = _run(tmp_path, "history", "--tenant", "givors")
    header = out.splitlines()[0]
    assert code == 0 and all(c in header for c in ("time", "id", "operator", "verb", "tenants", "result"))
    assert out.count("deploy") == 2
    assert _run(tmp_path, "history", "--limit", "-1")[0] == ExitCode.INVALID


def test_history_warns_about_a_truncated_line(tmp_path):
    with audit.operation(tmp_path, "deploy", ["deploy"]):
        pass
    with open(audit.audit_path(tmp_path), "ab") as fh:
        fh.write(b'{"time": "20')
    code, out, err = _run(tmp_path, "history", "--json")
    assert code == 0 and len(json.loads(out)) == 1 and "skipped 1 unreadable line" in err


@pytest.mark.parametrize("argv", [["lock"], ["lock", "list"], ["lock", "release"], ["history"]])
def test_help_shows_an_example(tmp_path, capsys, argv):
    code, _, _ = _run(tmp_path, *argv, "--help")
    out = capsys.readouterr().out  # click prints help on the process stdout
    assert code == 0 and "Example:" in out and "tnoctl " in out.split("Example:")[1]
