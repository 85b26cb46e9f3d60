"""Large tables drawn in one pass, in the look of the rich tables of :meth:`AppContext.print_table`.

Why: rich lays a table out cell by cell (measure, wrap, segment, style); at 35,000 communes
`tenant list` spent about 56 CPU seconds there (issue 18). A table of more than :data:`PLAIN_ROWS`
rows is drawn here instead: each column as wide as its widest cell (widths in terminal cells,
measured as rich measures them), the same separators (``┃``, ``━``/``╇``, ``│``), one line per row,
no style. For a table whose rows fit the console, the text equals rich's byte for byte (without
styles; tests/unit/test_plaintable.py compares them); where rich would wrap an over-wide column
inside the console width, this draws each row on one line (a long line a pager or ``grep`` reads
whole). The work is column-wise: an all-ASCII column (the usual case) is measured by ``len`` and
padded by ``str.ljust``; only a column holding other characters is measured cell by cell.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence

from rich.cells import cell_len

PLAIN_ROWS = 1000
"""Tables with more rows than this are drawn by :func:`render` instead of rich."""


def escaped_columns(rows: Sequence[Sequence[object]], ncols: int,
                    escape: Callable[[object], str]) -> list[list[str]]:
    """The cells of ``rows`` column by column as text: ``None`` → ``""``, ``escape`` only on a column that needs it."""
    columns: list[list[str]] = []
    for col in (zip(*rows, strict=True) if rows else [()] * ncols):
        text = ["" if v is None else v if type(v) is str else str(v) for v in col]
        columns.append(text if "".join(text).isprintable() else [escape(v) for v in text])
    return columns


def render(headers: Sequence[str], columns: Sequence[Sequence[str]], title: str | None = None) -> Iterator[str]:
    """The lines (each ending in ``\\n``) of the table: title, header, rule, one line per row.

    ``columns`` holds the (already escaped) cells column by column, all of the same length.
    """
    padded: list[Iterable[str]] = []
    widths: list[int] = []
    for header, col in zip(headers, columns, strict=True):
        if "".join(col).isascii():  # printable ASCII: one cell per character
            width = max(cell_len(header), max(map(len, col), default=0))
            padded.append([c.ljust(width) for c in col])
        else:
            lens = [cell_len(c) for c in col]
            width = max(cell_len(header), max(lens, default=0))
            padded.append([c + " " * (width - n) for c, n in zip(col, lens, strict=True)])
        widths.append(width)
    if title is not None:
        yield title + "\n"
    yield " " + " ┃ ".join(h + " " * (w - cell_len(h)) for h, w in zip(headers, widths, strict=True)) + " \n"
    yield "╇".join("━" * (w + 2) for w in widths) + "\n"
    for row in zip(*padded, strict=True):
        yield " " + " │ ".join(row) + " \n"
