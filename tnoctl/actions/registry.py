"""Runbook ``tnoctl`` steps call actions here, never ``tnoctl.cli``.

:data:`ACTIONS` maps a verb path ("deploy", "lock release", ...) to a :class:`Verb`: the options a
step may give (a small, strict argv grammar: what runbooks need, in the CLI's spelling) and an
adapter that turns the parsed argv into the action's request and calls it with the runbook's
environment. :func:`check` validates a step's argv at runbook load time (tnoctl.runbook.refs);
:func:`call` runs it. A step runs without a terminal, so changing verbs need ``--yes`` in the step.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tnoctl.actions.env import Env
from tnoctl.actions.operation import Outcome
from tnoctl.errors import InvalidInput

Parsed = dict[str, Any]


@dataclass(frozen=True)
class Option:
    """One option of a step's argv: ``--name``/``-x``, a flag, one value or a repeatable value."""

    key: str
    names: tuple[str, ...]
    kind: str = "flag"  # flag | value | multi | int

    def default(self) -> Any:
        return {"flag": False, "value": None, "multi": (), "int": None}[self.kind]


@dataclass(frozen=True)
class Verb:
    """A verb runbooks may call: its positional arguments, options and adapter."""

    args: tuple[str, ...]
    options: tuple[Option, ...]
    adapter: Callable[[Env, Parsed], Outcome]
    changes: bool = False  # asks for confirmation in the CLI: a step must give --yes
    optional: tuple[str, ...] = ()  # optional positional arguments, after ``args``
    acts: bool = False  # changes something without asking (backup run, backup drill's verification record)

    @property
    def read_only(self) -> bool:
        """True when the verb only reads: a runbook step calling it is not a fix (``changes: false``)."""
        return not (self.changes or self.acts)


def parse(path: str, verb: Verb, argv: Sequence[str]) -> Parsed:
    """Parse ``argv`` (after the verb path) strictly; InvalidInput naming the verb and the word."""
    by_name = {name: opt for opt in verb.options for name in opt.names}
    parsed: Parsed = {opt.key: opt.default() for opt in verb.options} | dict.fromkeys(verb.optional)
    positional: list[str] = []
    words = list(argv)
    while words:
        word = words.pop(0)
        name, has_value, inline = word.partition("=") if word.startswith("--") else (word, False, "")
        if not word.startswith("-") or word == "-":
            positional.append(word)
            continue
        opt = by_name.get(name)
        if opt is None:
            raise InvalidInput(f"'{path}': No such option '{name}'")
        if opt.kind == "flag":
            parsed[opt.key] = True
            continue
        if not has_value and not words:
            raise InvalidInput(f"'{path}': Option '{name}' requires an argument")
        value = inline if has_value else words.pop(0)
        if opt.kind == "multi":
            parsed[opt.key] = (*parsed[opt.key], value)
        elif opt.kind == "int":
            try:
                parsed[opt.key] = int(value)
            except ValueError:
                raise InvalidInput(f"'{path}': Option '{name}': {value!r} is not an integer") from None
        else:
            parsed[opt.key] = value
    if len(positional) < len(verb.args):
        raise InvalidInput(f"'{path}': Missing argument '{verb.args[len(positional)].upper()}'")
    names = verb.args + verb.optional
    if len(positional) > len(names):
        raise InvalidInput(f"'{path}': Got unexpected extra argument ({positional[len(names)]})")
    parsed.update(zip(names, positional, strict=False))
    if verb.changes and not parsed.get("yes"):
        raise InvalidInput(f"'{path}': a runbook step runs without a terminal: add --yes")
    return parsed


TENANTS = Option("tenants", ("--tenant", "-t"), "multi")
HOSTS = Option("hosts", ("--host", "-H"), "multi")
YES = Option("yes", ("--yes", "-y"))
JSON = Option("as_json", ("--json",))


def _deploy(env: Env, p: Parsed) -> Outcome:
    from tnoctl.actions import deploy

    return deploy.run(env, deploy.DeployRequest(tenants=p["tenants"], hosts=p["hosts"]))


def _plan(env: Env, p: Parsed) -> Outcome:
    from tnoctl.actions import deploy

    return deploy.plan(env, deploy.PlanRequest(tenants=p["tenants"], hosts=p["hosts"], exit_zero=p["exit_zero"]))


def _drift(env: Env, p: Parsed) -> Outcome:
    from tnoctl.actions import drift

    return drift.run(env, drift.DriftRequest(tenants=p["tenants"]))


def _lock_release(env: Env, p: Parsed) -> Outcome:
    from tnoctl.actions.lock import LockReleaseRequest, release

    return release(env, LockReleaseRequest(p["tenant"]))


def _lock_list(env: Env, p: Parsed) -> Outcome:
    from tnoctl.actions.reports import lock_list

    return lock_list(env)


def _history(env: Env, p: Parsed) -> Outcome:
    from tnoctl.actions.reports import history

    tenant = p["tenants"][-1] if p["tenants"] else None
    return history(env, tenant, 50 if p["limit"] is None else p["limit"])


def _status(env: Env, p: Parsed) -> Outcome:
    from tnoctl.actions.reports import StatusRequest, status

    return status(env, StatusRequest(tenants=p["tenants"], roundtrip=p["roundtrip"], queues=not p["no_queue"]))


def _tenant_show(env: Env, p: Parsed) -> Outcome:
    from tnoctl.actions.reports import tenant_show

    return tenant_show(env, p["slug"])


def _tenant_onboard(env: Env, p: Parsed) -> Outcome:
    from tnoctl.actions import tenant_onboard

    return tenant_onboard.run(env, tenant_onboard.OnboardRequest(p["slug"], ignore_windows=p["ignore_windows"],
                                                                 drill=not p["no_drill"]))


def _inventory_validate(env: Env, p: Parsed) -> Outcome:
    from tnoctl.actions.reports import inventory_validate

    return inventory_validate(env)


def _backup_run(env: Env, p: Parsed) -> Outcome:
    from tnoctl.actions import backup

    return backup.run(env, backup.BackupRunRequest(p["tenants"], p["tag"], p["components"]))


def _backup_verify(env: Env, p: Parsed) -> Outcome:
    from tnoctl.actions import backup_checks

    return backup_checks.verify(env, backup_checks.VerifyRequest(p["tenants"]))


def _backup_drill(env: Env, p: Parsed) -> Outcome:
    from tnoctl.actions import backup_checks

    return backup_checks.drill(env, backup_checks.DrillRequest(p["tenants"], p["archive"]))


def _restore(env: Env, p: Parsed) -> Outcome:
    from tnoctl.actions import restore

    if not p["tenant"]:
        raise InvalidInput("'restore': Missing option '--tenant'")
    return restore.run(env, restore.RestoreRequest(p["tenant"], p["mailbox"], None, p["archive"]))


def _dns_check(env: Env, p: Parsed) -> Outcome:
    from tnoctl.actions import dns

    return dns.check(env, dns.DnsRequest(p["tenants"]))


def _dns_publish(env: Env, p: Parsed) -> Outcome:
    from tnoctl.actions import dns

    return dns.publish(env, dns.PublishRequest(p["tenants"]))


def _upgrade_status(env: Env, p: Parsed) -> Outcome:
    from tnoctl.actions import upgrade

    return upgrade.status(env, upgrade.StatusRequest(operation_id=p["operation_id"]))


ACTIONS: dict[str, Verb] = {
    "deploy": Verb((), (TENANTS, HOSTS, YES), _deploy, changes=True),
    "plan": Verb((), (TENANTS, HOSTS, Option("exit_zero", ("--exit-zero",))), _plan),
    "drift": Verb((), (TENANTS, JSON), _drift),
    "dns check": Verb((), (TENANTS, JSON), _dns_check),
    "dns publish": Verb((), (TENANTS, YES, JSON), _dns_publish, changes=True),
    "lock release": Verb(("tenant",), (YES,), _lock_release, changes=True),
    "lock list": Verb((), (JSON,), _lock_list),
    "history": Verb((), (Option("tenants", ("--tenant", "-t"), "multi"), Option("limit", ("--limit", "-n"), "int"),
                         JSON), _history),
    "status": Verb((), (TENANTS, JSON, Option("no_queue", ("--no-queue",)), Option("roundtrip", ("--roundtrip",))),
                   _status),
    "tenant show": Verb(("slug",), (JSON,), _tenant_show),
    "tenant onboard": Verb(("slug",), (YES, Option("ignore_windows", ("--ignore-windows",)),
                                        Option("no_drill", ("--no-drill",))), _tenant_onboard, changes=True),
    "inventory validate": Verb((), (JSON,), _inventory_validate),
    "upgrade status": Verb((), (JSON,), _upgrade_status, optional=("operation_id",)),
    "backup run": Verb((), (TENANTS, Option("tag", ("--tag",), "value"),
                            Option("components", ("--component",), "multi"), JSON), _backup_run, acts=True),
    "backup verify": Verb((), (TENANTS, JSON), _backup_verify),
    "backup drill": Verb((), (TENANTS, Option("archive", ("--archive",), "value"), JSON), _backup_drill, acts=True),
    "restore": Verb((), (Option("tenant", ("--tenant", "-t"), "value"), Option("mailbox", ("--mailbox", "-m"), "value"),
                         Option("archive", ("--archive",), "value"), YES), _restore, changes=True),
}
"""Every verb a runbook ``tnoctl`` step may call (a test checks each runbook's steps against it)."""


def resolve(argv: Sequence[str]) -> tuple[str, Verb, list[str]]:
    """(verb path, verb, remaining argv) of a step's argv; InvalidInput for an unknown verb."""
    words = list(argv)
    for size in (2, 1):
        path = " ".join(words[:size])
        if len(words) >= size and path in ACTIONS:
            return path, ACTIONS[path], words[size:]
    groups = sorted({name.split(" ")[0] for name in ACTIONS if " " in name})
    if words and words[0] in groups:
        subs = ", ".join(sorted(n.split(" ", 1)[1] for n in ACTIONS if n.startswith(words[0] + " ")))
        raise InvalidInput(f"'tnoctl {words[0]}' needs a sub-command (one of: {subs})")
    known = ", ".join(sorted(ACTIONS))
    shown = words[0] if words else ""
    raise InvalidInput(f"unknown verb '{shown}' (known: {known})")


def check(argv: Sequence[str]) -> str | None:
    """The error of a step's argv (placeholders such as ``{tenant}`` count as values), else None."""
    try:
        path, verb, rest = resolve(argv)
        parse(path, verb, rest)
    except InvalidInput as exc:
        return exc.message
    return None


def call(env: Env, argv: Sequence[str]) -> Outcome:
    """Run a step's argv through its action with the runbook's environment."""
    path, verb, rest = resolve(argv)
    return verb.adapter(env, parse(path, verb, rest))


def outcome_lines(outcome: Outcome) -> list[str]:
    """Plain text of an Outcome for the runbook transcript: table, lines, errors, message."""
    lines: list[str] = []
    if outcome.columns:
        table = [[str(c) for c in outcome.columns]] + [["" if v is None else str(v) for v in row]
                                                       for row in outcome.rows]
        widths = [max(len(row[i]) for row in table) for i in range(len(outcome.columns))]
        lines += ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in table]
    return lines + list(outcome.lines) + list(outcome.errors) + ([outcome.message] if outcome.message else [])
