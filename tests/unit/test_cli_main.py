"""main() is the one place exceptions become exit codes: one line on stderr, never a traceback."""

from __future__ import annotations

import io

import click
import pytest

from tnoctl import cli
from tnoctl.cli import main
from tnoctl.cli.context import AppContext
from tnoctl.errors import ExitCode, InvalidInput, Locked, OperationFailed, Refused


def _app() -> AppContext:
    return AppContext(stdout=io.StringIO(), stderr=io.StringIO())


@pytest.fixture()
def raising_verb(monkeypatch):
    """Register a throw-away verb that raises what the test asks for."""
    box: dict[str, BaseException] = {}

    @click.command("boom")
    def boom() -> None:
        raise box["exc"]

    monkeypatch.setitem(cli.VERBS, "boom", "tests.unit.test_cli_main:_BOOM")
    monkeypatch.setattr(__import__("tests.unit.test_cli_main", fromlist=["_BOOM"]), "_BOOM", boom, raising=False)
    return box


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (OperationFailed("x failed"), ExitCode.FAILED),
        (InvalidInput("bad", details=["tenants/a.yml: slug: bad"]), ExitCode.INVALID),
        (Locked("tenant a is locked by deploy"), ExitCode.LOCKED),
        (Refused("outside maintenance window"), ExitCode.REFUSED),
        (KeyboardInterrupt(), ExitCode.INTERRUPTED),
        (RuntimeError("unexpected"), ExitCode.FAILED),
    ],
)
def test_exceptions_map_to_exit_codes(raising_verb, exc, code):
    raising_verb["exc"] = exc
    app = _app()
    assert main(["boom"], app=app) == code
    err = app.stderr.getvalue()
    assert "Traceback" not in err
    assert err.startswith("tnoctl: ")
    if isinstance(exc, InvalidInput):
        assert "  tenants/a.yml: slug: bad" in err


def test_debug_shows_traceback(raising_verb):
    raising_verb["exc"] = RuntimeError("unexpected")
    with pytest.raises(RuntimeError):
        main(["--debug", "boom"], app=_app())


def test_usage_error_is_exit_2():
    app = _app()
    assert main(["no-such-verb"], app=app) == ExitCode.INVALID
    assert "No such command" in app.stderr.getvalue()


def test_help_lists_exit_codes_and_examples():
    app = _app()
    out = io.StringIO()
    import contextlib

    with contextlib.redirect_stdout(out):
        assert main(["--help"], app=app) == 0
    text = out.getvalue()
    assert "Exit codes:" in text and "130" in text and "Examples:" in text
