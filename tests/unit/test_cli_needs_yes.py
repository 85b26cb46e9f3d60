"""Every changing verb, run without a terminal and without --yes, exits 2 "needs --yes" and does nothing.

The verbs come from the CLI itself (the click tree, as `tnoctl --help` shows it): a verb with a
`--yes` option is a changing verb and is run here; every other verb must be listed below as read-only
or as changing-without-confirmation (with the reason), so a new verb cannot escape this test.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import click
import pytest

from tests.unit.fakes import FakePlaybookRunner, FakeSsh, make_env
from tnoctl import paths
from tnoctl.cli import cli, main
from tnoctl.cli.context import AppContext

# Arguments that get a changing verb past its argument checks (valid for the lab inventory), so
# the only thing missing is --yes.
ARGS: dict[str, list[str]] = {
    "backup recover-deleted": ["--tenant", "givors", "--transaction", "42"],
    "backup shred": ["oldcommune"],
    "lock release": ["givors"],
    "restore": ["--tenant", "givors", "--mailbox", "dgs@givors.test"],
    "runbook run": ["TnoTenantEndpointDown", "--tenant", "givors"],
    "tenant dns": ["givors", "--publish"],  # changing only with --publish (plain and --check are read-only)
    "tenant remove": ["givors"],
    "tenant onboard": ["givors"],
    "upgrade run": ["office", "--to", "99.0"],
}

READ_ONLY = {
    "backup list", "backup verify", "drift", "history", "inventory show", "inventory validate",
    "lab credentials", "lab smoke", "lab ssh", "lab ssh-config", "lab status", "lock list", "plan",
    "runbook list", "runbook show", "runbook validate", "status", "tenant list", "dns plan", "dns check",
    "tenant show", "upgrade status", "monitoring alertmanager", "monitoring dashboards",
    "monitoring rules", "monitoring targets", "runbook render", "inventory export", "exporter",
}
"""Verbs that change no host and no data (the monitoring/render/export verbs write only the files
the operator names with --out; the exporter serves metrics; drift and dns check record their result in
the state store)."""

CHANGES_WITHOUT_CONFIRMATION = {
    "backup run": "adds an archive, like the hourly timer; never removes anything",
    "backup drill": "restores into a scratch directory on the backup host; live mail untouched",
    "tenant add": "writes the tenant file and vault entries of the local inventory only (reviewed in git, "
                  "applied by a confirmed deploy)",
    "inventory secrets": "adds missing per-host vault entries of the local inventory only, never replaces one "
                         "(reviewed in git, applied by a confirmed deploy)",
    "lab up": "the throw-away local lab",
    "lab down": "the throw-away local lab",
    "lab restart-host": "the throw-away local lab",
    "lab prepare": "builds the lab's cached base image; boots nothing",
}


def _leaves(group: click.Group, ctx: click.Context, prefix: str = ""):
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None
        if isinstance(command, click.Group):
            yield from _leaves(command, ctx, f"{prefix}{name} ")
        else:
            yield f"{prefix}{name}", command


LEAVES = dict(_leaves(cli, click.Context(cli)))
CHANGING = sorted(path for path, command in LEAVES.items() if any(p.name == "yes" for p in command.params))


def test_every_verb_is_classified() -> None:
    others = set(LEAVES) - set(CHANGING)
    unclassified = others - READ_ONLY - set(CHANGES_WITHOUT_CONFIRMATION)
    assert not unclassified, f"new verb(s) {sorted(unclassified)}: give them --yes (changing) or classify them here"
    assert not (READ_ONLY | set(CHANGES_WITHOUT_CONFIRMATION)) - others, "stale entries in the lists above"
    assert len(CHANGING) >= 10


@pytest.fixture()
def lab_copy(tmp_path: Path) -> Path:
    inv = tmp_path / "inv"
    shutil.copytree(paths.LAB_INVENTORY, inv, ignore=shutil.ignore_patterns(".tno"))
    return inv


@pytest.mark.parametrize("path", CHANGING)
def test_changing_verb_without_terminal_and_yes_exits_2(path: str, lab_copy: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    ssh, runner = FakeSsh(), FakePlaybookRunner()
    err = io.StringIO()
    app = AppContext(inventory=lab_copy, state_dir_override=state, stdout=io.StringIO(), stderr=err)
    app._env = make_env(lab_copy, state, playbooks=runner, ssh=ssh)
    argv = [*path.split(), *ARGS.get(path, [])]
    code = main(["--inventory", str(lab_copy), "--state-dir", str(state), *argv], app=app)
    assert code == 2, f"tnoctl {' '.join(argv)}: exit {code}: {err.getvalue()}"
    assert "needs --yes when not run from a terminal" in err.getvalue(), err.getvalue()
    assert ssh.commands == [] and runner.played == [], f"tnoctl {path} touched a host before asking"
    assert not (state / "audit.jsonl").exists() and not list(state.rglob("*.lock"))
