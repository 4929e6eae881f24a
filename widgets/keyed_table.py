"""A table of keyed rows that draws only the lines on screen, however many rows it holds.

Textual's DataTable measures every cell of every row it is given, so replacing a thousand rows
(as a filter keystroke does) costs a hundred milliseconds or more. This table keeps the rows as
given, computes column widths from the plain text once per row object, and renders a line only
when it is on screen: showing, filtering or re-sorting a thousand rows costs about a millisecond,
and the next frame draws only what is visible.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import ClassVar

from rich.cells import cell_len
from rich.segment import Segment
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

GAP = 2
"""Blank cells between two columns."""


@dataclass(frozen=True)
class Row:
    """One table row. Cells are Text, never str, so user data is never read as markup."""

    key: str
    cells: tuple[Text, ...]

    @cached_property
    def widths(self) -> tuple[int, ...]:
        """Each cell's width in terminal cells, measured once per row object."""
        return tuple(cell_len(cell.plain) for cell in self.cells)


class KeyedTable(ScrollView, can_focus=True):
    """Rows identified by key; the cursor stays on the same key when the rows change."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "cursor(-1)", "Up", show=False),
        Binding("down", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "cursor_to(0)", "First row", show=False),
        Binding("end", "cursor_to(-1)", "Last row", show=False),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "keyed-table--header",
        "keyed-table--cursor",
        "keyed-table--odd-row",
    }

    DEFAULT_CSS = """
    KeyedTable {
        background: $surface;
        height: 1fr;
        & > .keyed-table--header { text-style: bold; background: $panel; }
        & > .keyed-table--odd-row { background: $surface-lighten-1; }
        & > .keyed-table--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
        }
        &:focus > .keyed-table--cursor {
            background: $block-cursor-background;
            color: $block-cursor-foreground;
            text-style: $block-cursor-text-style;
        }
    }
    """

    cursor_row: reactive[int] = reactive(0, init=False)

    @dataclass
    class RowHighlighted(Message):
        """The cursor moved to another row (or the row under it is a new one)."""

        table: KeyedTable
        key: str | None

        @property
        def control(self) -> KeyedTable:
            return self.table

    @dataclass
    class HeaderSelected(Message):
        """A column's header was clicked."""

        table: KeyedTable
        column: str

        @property
        def control(self) -> KeyedTable:
            return self.table

    def __init__(
        self, columns: Sequence[tuple[str, str]], *, id: str | None = None, classes: str = ""
    ) -> None:
        super().__init__(id=id, classes=classes)
        self.columns = tuple(columns)
        self._labels = tuple(Text(label) for label, _ in self.columns)
        self._rows: list[Row] = []
        self._positions: dict[str, int] = {}
        self._widths: tuple[int, ...] = tuple(cell_len(label) for label, _ in self.columns)
        self._strips: dict[int, tuple[Row, tuple[int, ...], Strip]] = {}

    @property
    def rows_shown(self) -> tuple[Row, ...]:
        return tuple(self._rows)

    @property
    def selected_key(self) -> str | None:
        if not 0 <= self.cursor_row < len(self._rows):
            return None
        return self._rows[self.cursor_row].key

    def show_rows(self, rows: Sequence[Row]) -> None:
        """Show these rows; the cursor follows its key, or stays at its index when it is gone."""
        selected = self.selected_key
        self._rows = list(rows)
        self._positions = {row.key: index for index, row in enumerate(self._rows)}
        shown = {id(row) for row in self._rows}
        self._strips = {k: v for k, v in self._strips.items() if k in shown}
        self._measure()
        index = self._positions.get(selected, self.cursor_row) if selected else self.cursor_row
        self._move_to(index, announce=self.selected_key != selected or selected is None)
        self.refresh()

    def replace_rows(self, rows: Sequence[Row]) -> None:
        """Redraw just these rows (already shown, same keys): no pass over the others."""
        for row in rows:
            index = self._positions[row.key]
            self._strips.pop(id(self._rows[index]), None)
            self._rows[index] = row
            if any(new > old for new, old in zip(row.widths, self._widths, strict=True)):
                self._measure()
            self.refresh(Region(0, index + 1 - int(self.scroll_y), self.size.width, 1))

    def _measure(self) -> None:
        columns = zip(*(row.widths for row in self._rows), strict=True)
        labels = (cell_len(label) for label, _ in self.columns)
        widths = tuple(max(label, *column) for label, column in zip(labels, columns, strict=False))
        widths = widths or tuple(cell_len(label) for label, _ in self.columns)
        if widths != self._widths:
            self._widths = widths
            self._strips.clear()
        total = sum(self._widths) + GAP * len(self._widths)
        self.virtual_size = Size(total, len(self._rows) + 1)

    def _move_to(self, index: int, announce: bool = True) -> None:
        index = max(0, min(index, len(self._rows) - 1))
        changed = index != self.cursor_row
        self.cursor_row = index
        if changed or announce:
            self.post_message(self.RowHighlighted(self, self.selected_key))
        # After the next refresh: new rows change the scrollable height only once laid out.
        self.call_after_refresh(self._scroll_cursor_into_view)

    def _scroll_cursor_into_view(self) -> None:
        height = self.scrollable_content_region.height - 1  # the header stays on top
        if height <= 0:
            return
        top = int(self.scroll_y)
        if self.cursor_row < top:
            self.scroll_to(y=self.cursor_row, animate=False, immediate=True)
        elif self.cursor_row >= top + height:
            self.scroll_to(y=self.cursor_row - height + 1, animate=False, immediate=True)

    def watch_cursor_row(self, old: int, new: int) -> None:
        top = int(self.scroll_y)
        for index in (old, new):
            self.refresh(Region(0, index + 1 - top, self.size.width, 1))

    def action_cursor(self, step: int) -> None:
        self._move_to(self.cursor_row + step)

    def action_page(self, direction: int) -> None:
        self._move_to(self.cursor_row + direction * max(1, self.size.height - 2))

    def action_cursor_to(self, index: int) -> None:
        self._move_to(index if index >= 0 else len(self._rows) - 1)

    def move_cursor(self, row: int) -> None:
        self._move_to(row)

    def on_click(self, event: events.Click) -> None:
        if event.y == 0:
            offset = event.x + int(self.scroll_x)
            for (_, key), width in zip(self.columns, self._widths, strict=True):
                if offset < width + GAP:
                    self.post_message(self.HeaderSelected(self, key))
                    return
                offset -= width + GAP
        else:
            self._move_to(event.y - 1 + int(self.scroll_y))

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        scroll_x, scroll_y = self.scroll_offset
        if y == 0:
            strip = self._line(self._labels)
            strip = strip.apply_style(self.get_component_rich_style("keyed-table--header"))
        else:
            index = y - 1 + scroll_y
            if not 0 <= index < len(self._rows):
                return Strip.blank(width, self.rich_style)
            strip = self._row_strip(self._rows[index])
            # Row styles go under the cells' own colours, the widget's style under both; the
            # cursor's colours go over them, so the selected row reads whatever its cells say.
            if index == self.cursor_row:
                cursor = self.get_component_rich_style("keyed-table--cursor")
                strip = Strip(Segment.apply_style(strip, post_style=cursor), strip.cell_length)
            elif index % 2:
                strip = strip.apply_style(self.get_component_rich_style("keyed-table--odd-row"))
        strip = strip.apply_style(self.rich_style)
        return strip.crop_extend(scroll_x, scroll_x + width, self.rich_style)

    def _row_strip(self, row: Row) -> Strip:
        cached = self._strips.get(id(row))
        if cached is not None and cached[0] is row and cached[1] == self._widths:
            return cached[2]
        strip = self._line(row.cells)
        self._strips[id(row)] = (row, self._widths, strip)
        return strip

    def _line(self, cells: Sequence[Text]) -> Strip:
        """The cells, each cut or padded to its column's width (styles kept, no background)."""
        line = Text(no_wrap=True)
        for cell, width in zip(cells, self._widths, strict=True):
            text = Text()
            text.append_text(cell)  # turns the cell's own style into a span, which render keeps
            text.truncate(width, overflow="ellipsis")
            padding = " " * (width - text.cell_len)
            if cell.justify == "right":
                line.append(padding)
                line.append_text(text)
            else:
                line.append_text(text)
                line.append(padding)
            line.append(" " * GAP)
        return Strip(line.render(self.app.console), line.cell_len)
