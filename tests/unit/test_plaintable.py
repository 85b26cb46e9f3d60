"""cli/plaintable.py draws large tables in one pass: same text as rich where rows fit, one line per row."""

from __future__ import annotations

import io

import pytest
from rich.console import Console
from rich.table import Table
from rich.text import Text

from tnoctl.cli import plaintable
from tnoctl.cli.context import AppContext, untrusted


def _rich(columns: list[str], rows: list[list[object]], title: str | None = None) -> str:
    """The text of AppContext.print_table's rich path (a pipe: width 200, no style)."""
    out = io.StringIO()
    table = Table(title=title, show_edge=False, header_style="bold")
    for col in columns:
        table.add_column(col)
    for row in rows:
        table.add_row(*(Text("" if v is None else untrusted(v)) for v in row))
    Console(file=out, highlight=False, soft_wrap=True, width=200).print(table)
    return out.getvalue()


def _plain(columns: list[str], rows: list[list[object]], title: str | None = None) -> str:
    return "".join(plaintable.render(columns, plaintable.escaped_columns(rows, len(columns), untrusted), title))


CASES = [
    (["slug", "name", "boxes"], [["a", "Zoé 中文", 3], ["bb-long-slug", "", None]], None),
    (["slug", "name"], [], None),
    (["s"], [["a  "], [" b"], ["\x1b[2J"]], "a title wider than the whole table"),
    (["slug", "domains", "pilot"], [[f"t{i}", ", ".join(f"d{j}.fr" for j in range(i % 4)), "yes" if i % 3 else ""]
                                    for i in range(40)], "mailboxes"),
]


@pytest.mark.parametrize(("columns", "rows", "title"), CASES)
def test_plain_text_equals_rich_when_rows_fit(columns: list[str], rows: list[list[object]], title: str | None) -> None:
    assert _plain(columns, rows, title) == _rich(columns, rows, title)


def test_a_large_table_is_drawn_plain_one_line_per_row_never_wrapped() -> None:
    wide = "x" * 150
    rows = [[f"t{i:05}", wide, wide] for i in range(plaintable.PLAIN_ROWS + 1)]
    out = io.StringIO()
    AppContext(stdout=out).print_table(["slug", "a", "b"], rows)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 + len(rows)  # header, rule, one line per row although wider than the 200 columns
    assert lines[2] == f" t00000 │ {wide} │ {wide} "
    assert out.getvalue() == _plain(["slug", "a", "b"], rows)


def test_at_the_threshold_the_rich_table_is_kept() -> None:
    rows = [[f"t{i}", "n"] for i in range(plaintable.PLAIN_ROWS)]
    out = io.StringIO()
    AppContext(stdout=out).print_table(["slug", "name"], rows)
    assert out.getvalue() == _rich(["slug", "name"], rows)  # same text as the plain drawing: the rows fit
    assert out.getvalue() == _plain(["slug", "name"], rows)


def test_cells_of_a_large_table_are_escaped() -> None:
    rows = [["\x1b]52;c;evil\x07", None]] * (plaintable.PLAIN_ROWS + 1)
    out = io.StringIO()
    AppContext(stdout=out).print_table(["slug", "name"], rows)
    assert "\x1b" not in out.getvalue() and "\x07" not in out.getvalue()
    assert out.getvalue().splitlines()[2] == " \\x1b]52;c;evil\\x07 │      "
