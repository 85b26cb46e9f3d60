"""Every verb and sub-verb has --help with an example, and every module in VERBS loads."""

from __future__ import annotations

import click
import pytest

from tnoctl.cli import VERBS, LazyVerbs, cli


def _walk(group: click.Group, ctx: click.Context, prefix: str = ""):
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None, f"{prefix}{name} does not load"
        yield f"{prefix}{name}", command
        if isinstance(command, click.Group):
            yield from _walk(command, ctx, f"{prefix}{name} ")


def _all_commands():
    ctx = click.Context(cli)
    assert isinstance(cli, LazyVerbs)
    return list(_walk(cli, ctx))


@pytest.mark.parametrize(("path", "command"), _all_commands(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_command_has_an_example(path, command):
    if isinstance(command, click.Group):
        return  # groups list their sub-commands, each checked here
    text = (command.help or "") + (command.epilog or "")
    assert "Example" in text, f"'tnoctl {path} --help' shows no example"
    example = text.split("Example", 1)[1]
    assert "tnoctl" in example and path.split()[-1] in example, f"'tnoctl {path}' example does not show the verb"


def test_verbs_table_covers_every_cli_module():
    import pkgutil

    import tnoctl.cli

    modules = {m.name for m in pkgutil.iter_modules(tnoctl.cli.__path__)}
    registered = {target.split(":")[0].rsplit(".", 1)[1] for target in VERBS.values()}
    # `tenant` sub-verbs and shared verb helpers
    helpers = {"context", "confirm", "options", "plaintable", "tenant_remove", "tenant_dns", "tenant_onboard"}
    assert modules - helpers <= registered, f"cli modules not in VERBS: {sorted(modules - helpers - registered)}"

