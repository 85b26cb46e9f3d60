"""The one environment and the one operation context: audit with own params, locks, windows, exit codes."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest

from tests.unit.fakes import FakePlaybookRunner, FakeSsh, make_env
from tnoctl import paths
from tnoctl.actions.env import AnsiblePlaybookRunner, Env, Output
from tnoctl.actions.operation import Outcome, operation, outcome_of, param_words
from tnoctl.errors import ExitCode, Locked, OperationFailed, Refused
from tnoctl.state import audit, locks

LAB = paths.LAB_INVENTORY


@pytest.fixture()
def env(tmp_path) -> Env:
    return make_env(LAB, tmp_path)


def _records(env: Env) -> list[dict]:
    return audit.read(env.state_dir)


def test_output_writes_info_and_warnings_on_stderr():
    out = Output(stdout=io.StringIO(), stderr=io.StringIO())
    out.info("hello")
    out.warn("careful")
    assert out.stdout.getvalue() == ""
    assert out.stderr.getvalue() == "hello\ntnoctl: warning: careful\n"
    assert out.progress_stream is out.stderr


def test_env_defaults_to_the_real_runner_and_builds_ssh_once(tmp_path):
    built: list[object] = []
    fake = FakeSsh()

    def factory(inventory):
        built.append(inventory)
        return fake

    env = Env.build(LAB, tmp_path, None, ssh_factory=factory)
    assert isinstance(env.playbooks, AnsiblePlaybookRunner)
    assert env.ssh is fake and env.ssh is fake
    assert len(built) == 1 and env.inventory is built[0]
    env.close()
    assert fake.closed
    assert env.store.dir == tmp_path / "store"


def test_param_words_keep_the_operation_own_parameters():
    words = param_words({"tenants": ("givors", "corbas"), "hosts": (), "check": False, "note": None, "n": 2})
    assert words == ["tenants=givors,corbas", "check=false", "n=2"]


def test_operation_records_own_params_not_sys_argv(env, monkeypatch):
    monkeypatch.setattr("sys.argv", ["tnoctl", "runbook", "run", "x"])
    with operation(env, "deploy", {"tenants": ["givors"], "yes": True}, tenants=["givors"]):
        assert locks.list_locks(env.state_dir)[0].tenant == "givors"
    [record] = _records(env)
    assert record["verb"] == "deploy"
    assert record["args"] == ["tenants=givors", "yes=true"]
    assert record["result"] == "ok" and record["exit_code"] == 0
    assert locks.list_locks(env.state_dir) == []


def test_operation_masks_secret_params(env):
    with operation(env, "backup setup", {"passphrase": "hunter2-secret"}, lock=False):
        pass
    assert "hunter2-secret" not in str(_records(env))


def test_op_fail_sets_the_outcome(env):
    with operation(env, "deploy", {}, tenants=["givors"]) as op:
        op.fail(int(ExitCode.FAILED), "mail1 failed")
        outcome = outcome_of(op, message="1 host failed")
    assert outcome.exit_code == ExitCode.FAILED and outcome.result == "failed" and not outcome.ok
    assert _records(env)[0]["details"]["error"] == "mail1 failed"


@pytest.mark.parametrize(
    ("exc", "result", "code"),
    [(OperationFailed("x"), "failed", 1), (KeyboardInterrupt(), "interrupted", 130), (RuntimeError("x"), "failed", 1)],
)
def test_exceptions_are_recorded_and_reraised(env, exc, result, code):
    with pytest.raises(type(exc)), operation(env, "drift", {}, tenants=["givors"]):
        raise exc
    [record] = _records(env)
    assert (record["result"], record["exit_code"]) == (result, code)
    assert locks.list_locks(env.state_dir) == []


def test_a_held_lock_is_exit_3_and_recorded(env):
    with operation(env, "deploy", {}, tenants=["givors"]), pytest.raises(Locked), \
            operation(env, "deploy", {}, tenants=["givors"]):
        pass
    assert [r["result"] for r in _records(env)] == ["locked", "ok"]


def _sunday_window(env: Env) -> None:
    """Give givors the default production window (the lab's tenants are always open)."""
    inv = env.inventory
    inv.tenants = [t.model_copy(update={"maintenance_window": "Sun 02:00-05:00"}) if t.slug == "givors" else t
                   for t in inv.tenants]


def test_closed_maintenance_window_refuses(tmp_path):
    tuesday_noon = datetime(2026, 12, 1, 11, 0, tzinfo=UTC).timestamp()  # 2026-12-01 is a Tuesday
    env = make_env(LAB, tmp_path, clock=lambda: tuesday_noon)
    _sunday_window(env)
    window = env.inventory.tenant("givors").maintenance_window
    with pytest.raises(Refused, match="givors"), operation(env, "upgrade", {}, tenants=["givors"], window="office"):
        pytest.fail(f"must not run outside {window}")
    assert _records(env)[0]["result"] == "refused"
    assert locks.list_locks(tmp_path) == []


def test_open_maintenance_window_runs(tmp_path):
    env = make_env(LAB, tmp_path)
    _sunday_window(env)
    tenant = env.inventory.tenant("givors")
    from tnoctl.config.window import Window

    win = Window.parse(tenant.maintenance_window)
    # find an instant inside the window by walking hours of one week
    start = datetime(2026, 11, 30, 0, 0, tzinfo=UTC).timestamp()
    inside = next(start + h * 1800 for h in range(24 * 14)
                  if win.contains(datetime.fromtimestamp(start + h * 1800, tz=UTC)))
    env.clock = lambda: inside
    ran = []
    with operation(env, "upgrade", {}, tenants=["givors"], window="office"):
        ran.append(True)
    assert ran == [True]


def test_outcome_failed_helper():
    out = Outcome.failed("nope", ExitCode.REFUSED, {"why": "window"})
    assert (out.exit_code, out.result, out.data) == (ExitCode.REFUSED, "refused", {"why": "window"})


def test_fake_runner_records_calls(tmp_path):
    from tnoctl.plan.calls import PlaybookCall

    runner = FakePlaybookRunner()
    result = runner.run(PlaybookCall("site.yml", {"b": 1, "a": 2}, ("mail1",), check=True),
                        run_id="r", hosts=["mail1"], title="t")
    assert result.success
    assert [(p.playbook, p.limit, p.extra_vars, p.check) for p in runner.played] == [
        ("site.yml", ("mail1",), ("a", "b"), True)
    ]
