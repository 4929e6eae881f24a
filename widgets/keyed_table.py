"""A table of keyed rows that draws only the lines on screen, however many rows it holds.

Textual's DataTable measures every cell of every row it is given, so replacing a thousand rows
(as a filter keystroke does) costs a hundred milliseconds or more. This table keeps the rows as
given, computes column widths from the plain text once per row object, and renders a line only
when it is on screen: showing, filtering or re-sorting ten thousand rows costs a few
milliseconds, and the next frame draws only what is visible. A cell of plain text in one style
can be a `Cell` rather than a Text: ten cells to a row and ten thousand rows made 100,000 Text
objects, most of a second of the main screen's first render.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Literal, NamedTuple

from rich.cells import cell_len, set_cell_size
from rich.control import strip_control_codes
from rich.segment import Segment
from rich.style import Style
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
STRIPS_KEPT = 2000
"""Lines drawn for rows no longer shown that are kept, so that deleting a filter's last
character shows its rows again without drawing them anew."""


@dataclass(frozen=True)
class Column:
    """A column: its header, its key, and how it gives way when the table is narrow."""

    label: str
    key: str
    max_width: int | None = None
    """Cells wider than this are cut with an ellipsis (None: as wide as the widest cell)."""
    priority: int | None = None
    """None: always shown. Otherwise, when the columns do not fit the table's width, the column
    of the lowest priority is hidden first, then the next, until they fit."""


class Cell(NamedTuple):
    """A cell of plain text in one style (a Rich style string): drawn as a Text of that text
    and style would be, for a fraction of a Text's cost to make. Never read as markup."""

    plain: str
    style: str = ""
    justify: Literal["left", "right"] = "left"


class Row:
    """One table row. Cells are Text or Cell, never str, so user data is never read as markup.
    A plain class with slots, as it is made ten thousand times in a first render; never
    changed once made (the table caches what it drew by row object)."""

    __slots__ = ("cells", "key", "widths")

    def __init__(self, key: str, cells: tuple[Text | Cell, ...]) -> None:
        self.key = key
        self.cells = cells
        # cell_len, at once for printable ASCII (nearly every cell).
        self.widths = tuple(
            [
                len(plain) if plain.isascii() and plain.isprintable() else cell_len(plain)
                for plain in [cell.plain for cell in cells]
            ]
        )
        """Each cell's width in terminal cells."""

    def __repr__(self) -> str:
        return f"Row({self.key!r}, {self.cells!r})"


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
        self,
        columns: Sequence[Column | tuple[str, str]],
        *,
        id: str | None = None,
        classes: str = "",
    ) -> None:
        super().__init__(id=id, classes=classes)
        self.columns = tuple(c if isinstance(c, Column) else Column(*c) for c in columns)
        self._labels = tuple(Text(column.label) for column in self.columns)
        self._rows: list[Row] = []
        self._positions: dict[str, int] = {}
        self._natural: tuple[int, ...] = tuple(cell_len(c.label) for c in self.columns)
        """Each column's width with room for every cell (up to its max_width)."""
        self._widths: tuple[int, ...] = self._natural
        """The widths drawn: the natural ones, 0 for a column hidden to fit the table."""
        self._strips: dict[int, tuple[Row, tuple[int, ...], Strip]] = {}
        self._style = Style()
        """The widget's Rich style for the frame being drawn (`render_lines`)."""

    @property
    def columns_shown(self) -> tuple[str, ...]:
        """The keys of the columns drawn (the others are hidden to fit the width)."""
        return tuple(c.key for c, width in zip(self.columns, self._widths, strict=True) if width)

    @property
    def rows_shown(self) -> tuple[Row, ...]:
        return tuple(self._rows)

    @property
    def rows_in_view(self) -> tuple[Row, ...]:
        """The rows the table shows now, below its header (scrolled to)."""
        top = int(self.scroll_y)
        return tuple(self._rows[top : top + max(0, self.size.height - 1)])

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
        if len(self._strips) > len(self._rows) + STRIPS_KEPT:
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
            capped = self._capped(row.widths)
            if any(new > old for new, old in zip(capped, self._natural, strict=True)):
                self._measure()
            self.refresh(Region(0, index + 1 - int(self.scroll_y), self.size.width, 1))

    def _measure(self) -> None:
        cells = zip(*(row.widths for row in self._rows), strict=True)
        widths = tuple(
            max(cell_len(column.label), *widths)
            for column, widths in zip(self.columns, cells, strict=False)
        ) or tuple(cell_len(column.label) for column in self.columns)
        self._natural = self._capped(widths)
        self._fit()

    def _capped(self, widths: Sequence[int]) -> tuple[int, ...]:
        """`widths` held to each column's max_width (never below its label)."""
        return tuple(
            min(width, max(column.max_width, cell_len(column.label))) if column.max_width else width
            for column, width in zip(self.columns, widths, strict=True)
        )

    def _fit(self) -> None:
        """Hide the columns of lowest priority until the rest fit the width (when known)."""
        widths = list(self._natural)
        region = self.scrollable_content_region
        available = region.width + GAP  # the last gap may be cut
        if not self.show_vertical_scrollbar and len(self._rows) + 1 > region.height > 0:
            available -= self.styles.scrollbar_size_vertical  # the one these rows will bring
        if available > GAP:
            hideable = sorted(
                (column.priority, index)
                for index, column in enumerate(self.columns)
                if column.priority is not None
            )
            for _, index in hideable:
                if sum(width + GAP for width in widths if width) <= available:
                    break
                widths[index] = 0
        if tuple(widths) != self._widths:
            self._widths = tuple(widths)
            self._strips.clear()
            self.refresh()
        total = sum(width + GAP for width in self._widths if width) - GAP  # none after the last
        self._set_virtual_size(Size(max(total, 0), len(self._rows) + 1))

    def _set_virtual_size(self, size: Size) -> None:
        """Setting `virtual_size` lays the whole screen out again (30 ms or more of a filter
        keystroke). When only the number of rows changed and the table's height does not
        follow them (not `height: auto`), its place on screen stays: its scrollbars are
        updated (shown or hidden, which does lay out), no more."""
        old = self.virtual_size
        if size == old:
            return
        height = self.styles.height
        if size.width != old.width or not self.container_size or height is None or height.is_auto:
            self.virtual_size = size
            return
        self.set_reactive(KeyedTable.virtual_size, size)
        self._scroll_update(size)
        self.refresh()

    def on_resize(self) -> None:
        self._fit()

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
            for column, width in zip(self.columns, self._widths, strict=True):
                if not width:
                    continue
                if offset < width + GAP:
                    self.post_message(self.HeaderSelected(self, column.key))
                    return
                offset -= width + GAP
        else:
            self._move_to(event.y - 1 + int(self.scroll_y))

    def render_lines(self, crop: Region) -> list[Strip]:
        # The widget's style is worked out from its ancestors' on every call: once a frame.
        self._style = self.rich_style
        return super().render_lines(crop)

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        scroll_x, scroll_y = self.scroll_offset
        style = self._style
        if y == 0:
            strip = self._line(self._labels)
            strip = strip.apply_style(self.get_component_rich_style("keyed-table--header"))
        else:
            index = y - 1 + scroll_y
            if not 0 <= index < len(self._rows):
                return Strip.blank(width, style)
            strip = self._row_strip(self._rows[index])
            # Row styles go under the cells' own colours, the widget's style under both; the
            # cursor's colours go over them, so the selected row reads whatever its cells say.
            if index == self.cursor_row:
                cursor = self.get_component_rich_style("keyed-table--cursor")
                strip = Strip(Segment.apply_style(strip, post_style=cursor), strip.cell_length)
            elif index % 2:
                strip = strip.apply_style(self.get_component_rich_style("keyed-table--odd-row"))
        strip = strip.apply_style(style)
        return strip.crop_extend(scroll_x, scroll_x + width, style)

    def _row_strip(self, row: Row) -> Strip:
        cached = self._strips.get(id(row))
        if cached is not None and cached[0] is row and cached[1] == self._widths:
            return cached[2]
        strip = self._line(row.cells)
        self._strips[id(row)] = (row, self._widths, strip)
        return strip

    def _line(self, cells: Sequence[Text | Cell]) -> Strip:
        """The cells, each cut or padded to its column's width (styles kept, no background)."""
        line = Text(no_wrap=True)
        gap = " " * GAP
        for cell, width in zip(cells, self._widths, strict=True):
            if not width:
                continue
            if isinstance(cell, Cell):
                # What the Text below would make, without making it: the text in its style
                # (a span, which render keeps), cut with an ellipsis, padded unstyled.
                plain = cell.plain if cell.plain.isprintable() else strip_control_codes(cell.plain)
                used = cell_len(plain)
                if used > width:
                    plain = set_cell_size(plain, width - 1) + "…"
                    used = width
                padding = " " * (width - used)
                if cell.justify == "right":
                    line.append(padding)
                    line.append(plain, cell.style or None)
                    line.append(gap)
                else:
                    line.append(plain, cell.style or None)
                    line.append(padding + gap)
                continue
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
            line.append(gap)
        return Strip(line.render(self.app.console), line.cell_len)
