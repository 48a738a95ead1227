"""Tables that fit the terminal: the least useful columns narrow or go first, never the id.

Piped output (no terminal) is never narrowed: scripts and grep get every cell whole.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass

GAP = 2  # spaces between columns
OPTIONAL = 9  # a column ranked this or higher is dropped whole before others are narrowed


@dataclass(frozen=True)
class Column:
    """A column: its header, how useful it is (lower = more), how narrow it may get."""

    header: str
    rank: int = 5          # columns with the highest rank narrow first and are dropped first
    min_width: int = 8     # narrower than this it is dropped instead
    keep: bool = False     # the id: never narrowed, never dropped
    short: str | None = None  # a shorter header, used when the table does not fit


def echo_table(headers: list[str | Column], rows: list[list[object]],
               width: int | None | bool = True, compact: list[list[object]] | None = None
               ) -> None:
    """Print aligned columns fitted to the terminal (whole when piped); headers or Columns."""
    import click
    columns = [h if isinstance(h, Column) else Column(h, keep=(i == 0))
               for i, h in enumerate(headers)]
    for line in render(columns, rows, terminal_width() if width is True else width or None,
                       compact):
        click.echo(line)


def natural_key(text: str) -> tuple:
    """Sort key that puts client-2 before client-10 (digits compare as numbers)."""
    return tuple(int(p) if p.isdigit() else p.lower() for p in re.split(r"(\d+)", text or ""))


def terminal_width() -> int | None:
    """The terminal's width, or None when output is piped (never narrowed then)."""
    if not sys.stdout.isatty():
        return None
    import shutil  # (only on a terminal: it imports bz2 and lzma)
    return shutil.get_terminal_size((120, 20)).columns


def fit(columns: list[Column], rows: list[list[str]], width: int | None
        ) -> tuple[list[int], list[int]]:
    """(indexes of the columns shown, their widths) so that a line fits in `width`."""
    natural = [max([len(c.header)] + [len(r[i]) for r in rows]) for i, c in enumerate(columns)]
    shown = list(range(len(columns)))
    widths = dict(enumerate(natural))
    if width is None:
        return shown, natural

    def total() -> int:
        return sum(widths[i] for i in shown) + GAP * (len(shown) - 1)

    by_use = sorted((i for i, c in enumerate(columns) if not c.keep),
                    key=lambda i: (-columns[i].rank, -i))
    for i in by_use:  # columns of rank 9 and up are extras: dropped before any is narrowed
        if total() <= width or columns[i].rank < OPTIONAL:
            break
        shown.remove(i)
    by_use = [i for i in by_use if i in shown]
    for i in by_use:  # narrow the least useful first, down to their minimum
        if total() <= width:
            break
        widths[i] = max(min(natural[i], columns[i].min_width), natural[i] - (total() - width))
    for i in by_use:  # still too wide: drop the least useful, giving their room back
        if total() <= width:
            break
        shown.remove(i)
        for j in sorted(shown, key=lambda j: columns[j].rank):
            widths[j] = min(natural[j], widths[j] + max(0, width - total()))
    return shown, [widths[i] for i in shown]


def _natural_total(columns: list[Column], rows: list[list[str]]) -> int:
    return sum(max([len(c.header)] + [len(r[i]) for r in rows]) for i, c in enumerate(columns)
               ) + GAP * (len(columns) - 1)


def render(columns: list[Column], rows: list[list[object]], width: int | None,
           compact: list[list[object]] | None = None) -> list[str]:
    """The table's lines: header, rule, rows; cells cut with '…' only where narrowed.

    When the table does not fit, short headers and the `compact` rows (the same cells in
    fewer characters) are tried before anything is narrowed or dropped.
    """
    cells = [["" if c is None else str(c) for c in r] for r in rows]
    if width is not None and _natural_total(columns, cells) > width:
        columns = [Column(c.short or c.header, c.rank, c.min_width, c.keep) for c in columns]
        if compact is not None:
            cells = [["" if c is None else str(c) for c in r] for r in compact]
    shown, widths = fit(columns, cells, width)
    lines = []
    for n, row in enumerate([[c.header for c in columns]] + cells):
        lines.append("  ".join(_cut(row[i], w).ljust(w) for i, w in zip(shown, widths,
                                                                          strict=True)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return lines


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"
