"""The injectable environment every verb receives (httpie's `Environment` idea).

Verbs never read `os.environ`, `sys.stdout` or global paths directly: they use the
:class:`AppContext` built by the root command, so tests run verbs in-process with
their own inventory, state dir and captured streams.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from tnoctl import paths
from tnoctl.cli import plaintable

if TYPE_CHECKING:
    from tnoctl.actions.env import Env

_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def untrusted(value: object) -> str:
    """``value`` as one line of inert text: control and format characters escaped (``\\x1b``, ``\\n``).

    Tenant names, slugs, audit fields and file names come from files anyone with write access to
    the inventory or the state dir may have edited; printed raw, an escape sequence rewrites the
    operator's terminal (clear screen, fake lines, OSC 52 clipboard writes). Use it for every such
    string printed outside a table too (tables escape their cells themselves).
    """
    text = str(value)
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if ch.isprintable() or ch == " ":
            out.append(ch)
        elif ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) <= 0xFF:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(f"\\u{ord(ch):04x}" if ord(ch) <= 0xFFFF else f"\\U{ord(ch):08x}")
    return "".join(out)


def _width(stream: IO[str]) -> int | None:
    """Terminals get their real width; pipes and files a wide one so tables are not squeezed."""
    isatty = getattr(stream, "isatty", None)
    return None if isatty is not None and isatty() else 200


@dataclass
class AppContext:
    """Options shared by every verb, resolved once by the root command."""

    inventory: Path = field(default_factory=paths.default_inventory)
    state_dir_override: Path | None = None
    vault_password_file: Path | None = None
    vault_password_explicit: bool = False  # given by option or environment: a later --inventory keeps it
    debug: bool = False
    json: bool = False  # `tnoctl --json VERB`: the verb's --json default
    verbose: int = 0
    assume_yes: bool = False
    stdout: IO[str] = field(default_factory=lambda: sys.stdout)
    stderr: IO[str] = field(default_factory=lambda: sys.stderr)
    _env: Env | None = field(default=None, repr=False)

    @property
    def env(self) -> Env:
        """The one environment of this process (inventory, state, vault, SSH, playbook runner), built once."""
        if self._env is None:
            from tnoctl.actions.env import Env, Output

            self._env = Env.build(self.inventory, self.state_dir, self.vault_password_file,
                                  Output(stdout=self.stdout, stderr=self.stderr))
        return self._env

    def close(self) -> None:
        """Release what the environment opened (SSH connections); the CLI calls it once at exit."""
        if self._env is not None:
            self._env.close()

    @property
    def state_dir(self) -> Path:
        """Where audit log, locks, journals and run artifacts live."""
        return self.state_dir_override or paths.state_dir(self.inventory)

    @property
    def is_lab(self) -> bool:
        """True when the inventory in use is the embedded lab inventory."""
        try:
            return self.inventory.resolve() == paths.LAB_INVENTORY.resolve()
        except OSError:
            return False

    @property
    def console(self) -> Console:
        """Rich console on stdout (tables, results)."""
        return Console(file=self.stdout, highlight=False, soft_wrap=True, width=_width(self.stdout))

    @property
    def err_console(self) -> Console:
        """Rich console on stderr (progress, warnings)."""
        return Console(file=self.stderr, highlight=False, soft_wrap=True, width=_width(self.stderr))

    def print_json(self, data: Any) -> None:
        """Machine-readable output of read verbs (`--json`)."""
        json.dump(data, self.stdout, indent=2, sort_keys=False, default=str)
        self.stdout.write("\n")

    def print_table(self, columns: list[str], rows: list[list[Any]], title: str | None = None) -> None:
        """Human output: one rich table; every cell is untrusted text (escaped, never rich markup).

        More than :data:`tnoctl.cli.plaintable.PLAIN_ROWS` rows (`tenant list` at 35,000 communes):
        the same look drawn in one pass, one line per row, no style (cli/plaintable.py; issue 18).
        """
        if len(rows) > plaintable.PLAIN_ROWS:
            cells = plaintable.escaped_columns(rows, len(columns), untrusted)
            self.stdout.writelines(plaintable.render([untrusted(c) for c in columns], cells, title))
            return
        table = Table(title=title, show_edge=False, header_style="bold")
        for col in columns:
            table.add_column(col)
        for row in rows:
            table.add_row(*(Text("" if v is None else untrusted(v)) for v in row))
        self.console.print(table)

    def warn(self, message: str) -> None:
        """One-line warning on stderr."""
        self.stderr.write(f"tnoctl: warning: {message}\n")

    def info(self, message: str) -> None:
        """One-line progress note on stderr (keeps stdout clean for --json)."""
        self.stderr.write(f"{message}\n")
