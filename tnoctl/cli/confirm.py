"""What every changing verb shares after parsing: ask for confirmation, render the action's Outcome.

House rule (docs/architecture.md): a verb confirms, an action never asks. Without a terminal and
without ``--yes`` a changing verb exits 2 ("needs --yes") before doing anything; the question goes to
stderr so stdout stays clean for ``--json``; answering no exits 4 (refused), nothing done.
"""

from __future__ import annotations

import sys

import click

from tnoctl.actions.operation import Outcome
from tnoctl.cli.context import AppContext
from tnoctl.errors import ExitCode, InvalidInput


def require_yes(verb: str, yes: bool) -> None:
    """InvalidInput (exit 2) up front when nobody could answer a later question (no terminal, no --yes)."""
    if not yes and not sys.stdin.isatty():
        raise InvalidInput(f"{verb} needs --yes when not run from a terminal (it cannot ask for confirmation)")


def confirm(verb: str, question: str, yes: bool) -> bool:
    """True when the operator said yes (or gave --yes); InvalidInput (exit 2) when nobody can answer."""
    if yes:
        return True
    require_yes(verb, yes)
    return click.confirm(question, default=False, err=True)


def refused(app: AppContext, what: str = "nothing done") -> int:
    """The operator answered no: say so on stderr, exit 4."""
    app.info(what)
    return int(ExitCode.REFUSED)


def render(app: AppContext, outcome: Outcome, as_json: bool = False) -> int:
    """Print the outcome, return its exit code.

    stdout: the table then ``lines``, or ``data`` as JSON; stderr: ``errors``, then ``message``.
    """
    if as_json:
        app.print_json(outcome.data)
    else:
        if outcome.columns:
            app.print_table(outcome.columns, outcome.rows)
        for line in outcome.lines:
            app.stdout.write(line + "\n")
    for line in outcome.errors:
        app.stderr.write(line + "\n")
    if outcome.message:
        app.info(outcome.message)
    return int(outcome.exit_code)
