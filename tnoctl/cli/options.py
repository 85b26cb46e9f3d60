"""What every verb shares without declaring it: global options after the verb, root --json, completion.

Why here and not in each verb module: a verb written tomorrow gets the same behaviour for free.
:func:`prepare` walks a verb's command tree once (``LazyVerbs.get_command`` calls it) and

- adds the global options (``--inventory/-i``, ``--state-dir``, ``--vault-password-file``,
  ``-v/--verbose``, ``--debug``) as hidden options of every sub-command, so
  ``tnoctl inventory validate --inventory DIR`` works like ``tnoctl --inventory DIR inventory validate``
  (a value given after the verb wins over one given before it);
- lets ``tnoctl --json VERB`` mean ``tnoctl VERB --json``; a verb without ``--json`` refuses it
  (exit 2) instead of ignoring it;
- completes tenant, host and runbook names in bash and zsh (click's shell completion:
  ``eval "$(_TNOCTL_COMPLETE=bash_source tnoctl)"``); names come from the inventory's files, read
  cheaply (no validation, no vault).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from click.shell_completion import CompletionItem

from tnoctl import paths
from tnoctl.cli.context import AppContext

_PREPARED = "_tno_prepared"
TENANT_PARAMS = frozenset({"tenant", "tenants", "slug"})
HOST_PARAMS = frozenset({"host", "hosts", "to_host", "mail_host", "office_host"})


# --------------------------------------------------------------------------- global options
def _app(ctx: click.Context) -> AppContext:
    return ctx.ensure_object(AppContext)


def set_inventory(ctx: click.Context, _param: click.Parameter, value: Path | None) -> None:
    """``--inventory``: the directory in use; the default vault password file follows it."""
    if value is None or ctx.resilient_parsing:
        return
    app = _app(ctx)
    app.inventory = value
    if not app.vault_password_explicit:
        candidate = value / "vault-password"
        app.vault_password_file = candidate if candidate.is_file() else None


def set_state_dir(ctx: click.Context, _param: click.Parameter, value: Path | None) -> None:
    """``--state-dir``."""
    if value is not None and not ctx.resilient_parsing:
        _app(ctx).state_dir_override = value


def set_vault_password_file(ctx: click.Context, _param: click.Parameter, value: Path | None) -> None:
    """``--vault-password-file``: explicit, so a later --inventory keeps it."""
    if value is not None and not ctx.resilient_parsing:
        app = _app(ctx)
        app.vault_password_file = value
        app.vault_password_explicit = True


def add_verbose(ctx: click.Context, _param: click.Parameter, value: int) -> None:
    """``-v`` (repeatable) adds to what was given before the verb."""
    if value and not ctx.resilient_parsing:
        _app(ctx).verbose += value


def set_debug(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    """``--debug``: tracebacks on errors (main() also spots it early, for errors while parsing)."""
    if value and not ctx.resilient_parsing:
        _app(ctx).debug = True


def global_options(hidden: bool) -> list[click.Option]:
    """The global options; the root shows them, sub-commands accept them hidden (after the verb)."""
    path = click.Path(path_type=Path)
    common: dict[str, Any] = {"expose_value": False, "hidden": hidden}
    return [
        click.Option(["--inventory", "-i"], type=path, callback=set_inventory, **common,
                     help="Inventory directory (default: $TNO_INVENTORY, else the embedded lab inventory)."),
        click.Option(["--state-dir"], type=path, callback=set_state_dir, **common,
                     help="State directory: audit log, locks, run artifacts (default: <inventory>/.tno)."),
        click.Option(["--vault-password-file"], type=path, callback=set_vault_password_file, **common,
                     help="Ansible-vault password file (default: $TNO_VAULT_PASSWORD_FILE, else "
                          "<inventory>/vault-password when present)."),
        click.Option(["-v", "--verbose"], count=True, callback=add_verbose, **common,
                     help="More output (repeat for more)."),
        click.Option(["--debug"], is_flag=True, callback=set_debug, **common, help="Show tracebacks on errors."),
    ]


# --------------------------------------------------------------------------- --json before the verb
def _json_default(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
    return bool(value) or bool(ctx.find_object(AppContext) and ctx.find_object(AppContext).json)  # type: ignore[union-attr]


def _no_json(ctx: click.Context, _param: click.Parameter, _value: Any) -> None:
    app = ctx.find_object(AppContext)
    if app is not None and app.json and not ctx.resilient_parsing:
        raise click.UsageError(f"'{ctx.command_path}' has no --json output", ctx=ctx)


# --------------------------------------------------------------------------- completion
def _inventory_of(ctx: click.Context) -> Path:
    """The inventory the command line names so far (root or verb --inventory), else the default."""
    found = None
    node: click.Context | None = ctx
    while node is not None:
        app = node.obj if isinstance(node.obj, AppContext) else None
        if app is not None and found is None:
            found = app.inventory
        node = node.parent
    return found or paths.default_inventory()


def tenant_names(inventory: Path) -> list[str]:
    """Tenant slugs: the inventory's ``tenants/*.yml`` file names (the schema makes slug == file name)."""
    return sorted(p.stem for p in (inventory / "tenants").glob("*.yml"))


def host_names(inventory: Path) -> list[str]:
    """Host names of ``hosts.yml`` (every ``hosts:`` mapping of the group tree); [] when unreadable."""
    import yaml

    try:
        doc = yaml.safe_load((inventory / "hosts.yml").read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return []
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "hosts" and isinstance(value, dict):
                    found.update(str(k) for k in value)
                else:
                    walk(value)

    walk(doc)
    return sorted(found)


def runbook_names() -> list[str]:
    """Runbook names: ``runbooks/*.yml`` of the checkout."""
    return sorted(p.stem for p in (paths.PROJECT_ROOT / "runbooks").glob("*.yml"))


def _completer(names: Callable[[click.Context], list[str]]):
    def complete(ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[CompletionItem]:
        return [CompletionItem(n) for n in names(ctx) if n.startswith(incomplete)]

    return complete


complete_tenants = _completer(lambda ctx: tenant_names(_inventory_of(ctx)))
complete_hosts = _completer(lambda ctx: host_names(_inventory_of(ctx)))
complete_runbooks = _completer(lambda _ctx: runbook_names())


def _completion_for(path: str, param: click.Parameter):
    if path.startswith("runbook ") and param.name == "name":
        return complete_runbooks
    if path.startswith("lab "):
        return None  # lab hosts are fixed names; lab verbs take no tenant
    if param.name in TENANT_PARAMS:
        return complete_tenants
    if param.name in HOST_PARAMS:
        return complete_hosts
    return None


# --------------------------------------------------------------------------- the walk
def prepare(command: click.Command, path: str) -> click.Command:
    """Give ``command`` and its sub-commands the shared behaviour above (once; see the module docstring)."""
    if getattr(command, _PREPARED, False):
        return command
    setattr(command, _PREPARED, True)
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            prepare(sub, f"{path} {name}")
        return command
    names = {name for p in command.params for name in getattr(p, "opts", [])}
    if not command.context_settings.get("ignore_unknown_options"):  # `lab ssh` passes its words through
        command.params += [o for o in global_options(hidden=True) if not set(o.opts) & names]
    for param in command.params:
        if param.name == "as_json" and param.callback is None:
            param.callback = _json_default
        completer = _completion_for(path, param)
        if completer is not None and getattr(param, "_custom_shell_complete", None) is None:
            param._custom_shell_complete = completer  # click's hook behind Parameter(shell_complete=...)
    if not any(p.name == "as_json" for p in command.params):
        command.params.append(click.Option(["--tno-no-json"], hidden=True, expose_value=False, callback=_no_json))
    return command
