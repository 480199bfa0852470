"""Tables that fit the width they are printed in, names never cut.

A table is offered as layouts, richest first. Every column but one is as wide as its widest
cell, so a name (a job class, a queue, a jid) is shown whole or the layout is passed over for a
narrower one. The one flexible column takes the width the others leave, and cuts (arguments)
or wraps (reasons) its text there. When no layout fits, each row is printed as a card: its
lines one under the other, across the whole width.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from rich import box
from rich.cells import cell_len
from rich.console import Group, JustifyMethod
from rich.table import Table
from rich.text import Text


@dataclass(frozen=True)
class Column:
    """A column as wide as its widest cell; a cell may hold several lines."""

    header: str
    cell: Callable[[Any], Text]
    justify: JustifyMethod = "left"


@dataclass(frozen=True)
class Flexible:
    """The column that takes the width the others leave, at least ``min_width`` (or its widest
    cell when narrower): its text is cut with an ellipsis, or wrapped when ``wrap``."""

    header: str
    cell: Callable[[Any], Text]
    min_width: int
    wrap: bool = False


@dataclass(frozen=True)
class Layout:
    """Columns ``before`` the flexible one, then those ``after``; boxed, or plain and unframed."""

    before: tuple[Column, ...]
    flexible: Flexible
    after: tuple[Column, ...] = ()
    boxed: bool = True

    def overhead(self) -> int:
        """Padding and rules: a space each side of every column and a rule between them, plus
        the two edges when boxed."""
        count = len(self.before) + 1 + len(self.after)
        return 3 * count + 1 if self.boxed else 3 * count - 1

    def plus(self, column: Column) -> Layout:
        """The same layout with ``column`` last."""
        return Layout(self.before, self.flexible, (*self.after, column), self.boxed)


# A card is a row's lines, each a Text that says itself how it overflows.
Card = Callable[[Any], list[Text]]


def fitted(
    rows: Sequence[Any],
    layouts: Sequence[Layout],
    card: Card,
    width: int,
    *,
    title: str,
    caption: str | None = None,
    card_header: str = "job",
) -> Table:
    """The first of ``layouts`` that fits ``rows`` in ``width`` columns, else a card per row."""
    for layout in layouts:
        table = _laid_out(rows, layout, width, title, caption)
        if table is not None:
            return table
    return _cards(rows, card, width, title, caption, card_header)


def text_width(text: Text | str) -> int:
    """Terminal cells taken by the widest line of ``text``."""
    plain = text.plain if isinstance(text, Text) else text
    return max(cell_len(line) for line in plain.split("\n"))


def _laid_out(
    rows: Sequence[Any], layout: Layout, width: int, title: str, caption: str | None
) -> Table | None:
    columns = (*layout.before, *layout.after)
    cells = [[column.cell(row) for column in columns] for row in rows]
    widths = [
        max([text_width(column.header), *(text_width(row[index]) for row in cells)])
        for index, column in enumerate(columns)
    ]
    flexible = layout.flexible
    flexible_cells = [flexible.cell(row) for row in rows]
    natural = max([text_width(flexible.header), *map(text_width, flexible_cells)])
    left = width - sum(widths) - layout.overhead()
    if left < min(flexible.min_width, natural):
        return None
    several_lines = flexible.wrap or any("\n" in cell.plain for row in cells for cell in row)
    table = Table(
        title=title,
        caption=caption,
        title_justify="left",
        box=box.HEAVY_HEAD if layout.boxed else box.SIMPLE_HEAD,
        show_edge=layout.boxed,
        # Rows of several lines need a rule (or, unframed, a blank line) to tell them apart.
        show_lines=several_lines,
    )
    split = len(layout.before)
    for column, column_width in zip(columns[:split], widths[:split], strict=True):
        _add(table, column, column_width)
    table.add_column(
        flexible.header,
        width=min(left, natural),
        no_wrap=not flexible.wrap,
        overflow="fold" if flexible.wrap else "ellipsis",
    )
    for column, column_width in zip(columns[split:], widths[split:], strict=True):
        _add(table, column, column_width)
    for row, flexible_cell in zip(cells, flexible_cells, strict=True):
        table.add_row(*row[:split], flexible_cell, *row[split:])
    return table


def _add(table: Table, column: Column, width: int) -> None:
    table.add_column(column.header, width=width, no_wrap=True, overflow="ellipsis", justify=column.justify)


def _cards(
    rows: Sequence[Any], card: Card, width: int, title: str, caption: str | None, header: str
) -> Table:
    table = Table(
        title=title,
        caption=caption,
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        show_lines=True,
    )
    table.add_column(header, width=max(width - 2, 1))
    for row in rows:
        table.add_row(Group(*card(row)))
    return table
