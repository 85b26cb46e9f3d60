"""`tnoctl` entry point: the verb table, global options and the one place exceptions become exit codes.

Where does a verb live? Look it up in :data:`VERBS` below: each entry names the module
(under ``tnoctl/cli/``) and the click command in it. Modules are imported lazily so
that `tnoctl --help` and quick verbs stay fast.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import click

from tnoctl import __version__
from tnoctl.cli.context import AppContext
from tnoctl.errors import ExitCode, InvalidInput, TnoError

VERBS: dict[str, str] = {
    # verb           module:command
    "inventory": "tnoctl.cli.inventory:inventory",
    "tenant": "tnoctl.cli.tenant:tenant",
    "lab": "tnoctl.cli.lab:lab",
    "lock": "tnoctl.cli.lock:lock",
    "history": "tnoctl.cli.history:history",
    "plan": "tnoctl.cli.deploy:plan",
    "deploy": "tnoctl.cli.deploy:deploy",
    "upgrade": "tnoctl.cli.upgrade:upgrade",
    "status": "tnoctl.cli.status:status",
    "exporter": "tnoctl.cli.exporter:exporter",
    "monitoring": "tnoctl.cli.monitoring:monitoring",
    "backup": "tnoctl.cli.backup:backup",
    "restore": "tnoctl.cli.restore:restore",
    "runbook": "tnoctl.cli.runbook:runbook",
    "drift": "tnoctl.cli.drift:drift",
    "dns": "tnoctl.cli.dns:dns",
}

EXIT_CODES_HELP = """\b
Exit codes:
  0    success
  1    the operation failed on some tenant or host (or something is critical)
  2    invalid input or usage (inventory, tenant file, arguments; no terminal and no --yes)
  3    a tenant is locked by another operation
  4    refused by a guard (maintenance window, root required, wrong inventory)
  130  interrupted (Ctrl-C); rerun to converge
"""


class LazyVerbs(click.Group):
    """A click group whose sub-commands come from :data:`VERBS`, imported on first use.

    Each verb is prepared once by :func:`tnoctl.cli.options.prepare` (global options after the verb,
    root ``--json``, name completion); a mistyped verb gets click's "Did you mean" suggestion.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(VERBS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        from tnoctl.cli.options import prepare

        target = VERBS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        command = getattr(importlib.import_module(module_name), attr)
        assert isinstance(command, click.Command), target
        return prepare(command, cmd_name)

    def resolve_command(self, ctx: click.Context,
                        args: list[str]) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0]
        if name not in VERBS and not name.startswith("-") and not ctx.resilient_parsing:
            raise click.exceptions.NoSuchCommand(name, possibilities=sorted(VERBS), ctx=ctx)
        return super().resolve_command(ctx, args)


@click.group(
    cls=LazyVerbs,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=EXIT_CODES_HELP
    + "\n\b\nExamples:\n  tnoctl inventory validate\n  tnoctl --inventory inventories/example tenant list --json\n"
    "  tnoctl lab up && tnoctl deploy --yes",
)
@click.option(
    "--inventory",
    "-i",
    type=click.Path(path_type=Path),
    envvar="TNO_INVENTORY",
    default=None,
    help="Inventory directory (default: $TNO_INVENTORY, else the embedded lab inventory).",
)
@click.option(
    "--state-dir",
    type=click.Path(path_type=Path),
    envvar="TNO_STATE_DIR",
    default=None,
    help="State directory: audit log, locks, run artifacts (default: <inventory>/.tno).",
)
@click.option(
    "--vault-password-file",
    type=click.Path(path_type=Path),
    envvar="TNO_VAULT_PASSWORD_FILE",
    default=None,
    help="Ansible-vault password file (default: $TNO_VAULT_PASSWORD_FILE, else <inventory>/vault-password "
    "when present).",
)
@click.option("-v", "--verbose", count=True, help="More output (repeat for more).")
@click.option("--debug", is_flag=True, help="Show tracebacks on errors.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (same as the verb's --json).")
@click.version_option(__version__, prog_name="tnoctl")
@click.pass_context
def cli(
    ctx: click.Context,
    inventory: Path | None,
    state_dir: Path | None,
    vault_password_file: Path | None,
    verbose: int,
    debug: bool,
    as_json: bool,
) -> None:
    """Deploy, upgrade, back up and watch the communes' mail and online office.

    Global options may also come after the verb: `tnoctl inventory validate --inventory DIR`.
    Shell completion (verbs, options, tenant, host and runbook names), bash:
    `eval "$(_TNOCTL_COMPLETE=bash_source tnoctl)"`, zsh: `eval "$(_TNOCTL_COMPLETE=zsh_source tnoctl)"`.
    """
    app = ctx.ensure_object(AppContext)
    if inventory is not None:
        app.inventory = inventory
    if state_dir is not None:
        app.state_dir_override = state_dir
    app.vault_password_explicit = vault_password_file is not None
    if vault_password_file is None:
        candidate = app.inventory / "vault-password"
        vault_password_file = candidate if candidate.is_file() else None
    app.vault_password_file = vault_password_file
    app.verbose = verbose
    app.debug = debug or app.debug
    app.json = as_json


def _print_error(err: TnoError, stderr) -> None:
    stderr.write(f"tnoctl: error: {err.message}\n")
    for line in err.details:
        stderr.write(f"  {line}\n")


def main(argv: list[str] | None = None, app: AppContext | None = None) -> int:
    """Run the CLI; return the exit status. The only place exceptions become exit codes."""
    args = list(sys.argv[1:] if argv is None else argv)
    app = app or AppContext()
    app.debug = app.debug or "--debug" in args or os.environ.get("TNO_DEBUG") == "1"
    try:
        code = _run(args, app)
    finally:
        try:
            app.close()
        except KeyboardInterrupt:  # a second Ctrl-C while SSH connections close: still no traceback
            code = int(ExitCode.INTERRUPTED)
    return code


def _run(args: list[str], app: AppContext) -> int:
    """Run the click group and map its outcome or exception to an exit status."""
    try:
        result = cli.main(args=args, prog_name="tnoctl", standalone_mode=False, obj=app)
    except click.exceptions.Exit as exc:  # --help, --version
        return int(exc.exit_code)
    except click.exceptions.Abort:
        app.stderr.write("tnoctl: aborted\n")
        return int(ExitCode.INTERRUPTED)
    except click.ClickException as exc:
        if app.debug:
            raise
        app.stderr.write(f"tnoctl: error: {exc.format_message()}\n")
        if isinstance(exc, click.UsageError) and exc.ctx is not None:
            app.stderr.write(f"  see '{exc.ctx.command_path} --help'\n")
        return int(ExitCode.INVALID)
    except KeyboardInterrupt:
        app.stderr.write("tnoctl: interrupted; rerun the same command to converge\n")
        return int(ExitCode.INTERRUPTED)
    except TnoError as exc:
        if app.debug:
            raise
        _print_error(exc, app.stderr)
        return int(exc.exit_code)
    except Exception as exc:  # last resort: one line, no traceback without --debug
        if app.debug:
            raise
        app.stderr.write(f"tnoctl: internal error: {type(exc).__name__}: {exc} (rerun with --debug)\n")
        return int(ExitCode.FAILED)
    if isinstance(result, int):
        return result
    return int(ExitCode.OK)


def pass_app(func):
    """Decorator: give a verb the :class:`AppContext` as its first argument."""
    return click.pass_obj(func)


__all__ = ["VERBS", "AppContext", "InvalidInput", "cli", "main", "pass_app"]
