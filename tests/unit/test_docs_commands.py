"""Every `tnoctl ...` command the operator guides and the READMEs show exists, with the options they use.

docs/production.md, the READMEs and their French translations are read at 3 a.m.; a command that
was renamed since the guide was written is a trap. Each inline or fenced `tnoctl` command is parsed
by the real CLI with `--help` appended after its last sub-command: click resolves the verb path and
rejects an unknown option before printing the help. The READMEs' table shorthand is expanded first:
`list/show` (one command per sub-command), `[--json]` (the option, brackets dropped),
`office|mail` (the first choice, `\\|` in a table), `...` (dropped).
"""

from __future__ import annotations

import io
import re
import shlex
from pathlib import Path

import pytest

from tnoctl.cli import main
from tnoctl.cli.context import AppContext

ROOT = Path(__file__).resolve().parents[2]
GUIDES = ("docs/production.md", "docs/production.fr.md", "README.md", "README.fr.md")
_ALTERNATIVES = re.compile(r"[a-z-]+(/[a-z-]+)+")
_FENCE = re.compile(r"^```[a-z]*\n(.*?)^```", re.S | re.M)
_INLINE = re.compile(r"`(tnoctl [^`]+)`")


def _commands(name: str) -> list[str]:
    """Inline `tnoctl ...` code spans and `tnoctl` lines of fenced blocks."""
    text = (ROOT / name).read_text(encoding="utf-8")
    found = [m.group(1).strip() for m in _INLINE.finditer(text)]
    for block in _FENCE.findall(text):
        found += [line.split("#")[0].strip() for line in block.splitlines() if line.startswith("tnoctl ")]
    return sorted({c for command in found for c in _expand(command)})


def _expand(command: str) -> list[str]:
    """The table shorthand of a command as plain commands (see the module docstring)."""
    command = command.replace("\\|", "|").replace("[", "").replace("]", "").replace("...", "")
    words = [w.split("|")[0] for w in command.split()]
    for index, word in enumerate(words):
        if word.startswith("-"):
            break  # sub-command alternatives only come before the first option
        if _ALTERNATIVES.fullmatch(word):
            return [c for alt in word.split("/")
                    for c in _expand(" ".join([*words[:index], alt, *words[index + 1:]]))]
    return [" ".join(words)]


def _argv(command: str) -> list[str]:
    """The command's words, placeholders (SLUG, ADDR, URL...) kept as values, plus --help."""
    words = shlex.split(command)[1:]
    return [*words, "--help"]


@pytest.mark.parametrize("guide", GUIDES)
def test_guide_shows_commands(guide: str) -> None:
    assert len(_commands(guide)) >= 10


@pytest.mark.parametrize(("guide", "command"), [(g, c) for g in GUIDES for c in _commands(g)])
def test_guide_command_exists(guide: str, command: str, capsys: pytest.CaptureFixture[str]) -> None:
    err = io.StringIO()
    code = main(_argv(command), app=AppContext(stdout=io.StringIO(), stderr=err))
    assert code == 0, f"{guide}: '{command}' is not a tnoctl command: {err.getvalue().strip()}"
    assert "Usage: tnoctl" in capsys.readouterr().out  # click printed the verb's help
