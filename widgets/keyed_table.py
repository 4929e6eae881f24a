"""A DataTable whose rows are replaced as a whole, and redrawn only where they changed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.text import Text
from textual.widgets import DataTable


@dataclass(frozen=True)
class Row:
    """One table row. Cells are Text, never str, so user data is never read as markup."""

    key: str
    cells: tuple[Text, ...]


class KeyedTable(DataTable[Text]):
    """Rows identified by key; `show_rows` keeps the cursor on the same key across updates.

    When the keys are unchanged only the changed cells are updated, and a row given as the very
    same object as last time is not even compared: callers that reuse unchanged rows make a
    refresh of a large, mostly unchanged table cost one identity check per row.
    """

    def __init__(
        self, columns: Sequence[tuple[str, str]], *, id: str | None = None, classes: str = ""
    ) -> None:
        super().__init__(id=id, classes=classes, cursor_type="row", zebra_stripes=True)
        self._column_spec = tuple(columns)
        self._rows: list[Row] = []
        self._positions: dict[str, int] = {}

    def on_mount(self) -> None:
        for label, key in self._column_spec:
            self.add_column(label, key=key)

    @property
    def rows_shown(self) -> tuple[Row, ...]:
        return tuple(self._rows)

    @property
    def selected_key(self) -> str | None:
        if not self._rows or not 0 <= self.cursor_row < len(self._rows):
            return None
        return self._rows[self.cursor_row].key

    def show_rows(self, rows: Sequence[Row]) -> None:
        if [row.key for row in rows] == [row.key for row in self._rows]:
            for new, old in zip(rows, self._rows, strict=True):
                if new is not old:
                    self._update(new, old)
        else:
            selected = self.selected_key
            self.clear()
            for row in rows:
                self.add_row(*row.cells, key=row.key)
            keys = [row.key for row in rows]
            if selected in keys:
                self.move_cursor(row=keys.index(selected), animate=False)
        self._rows = list(rows)
        self._positions = {row.key: index for index, row in enumerate(self._rows)}

    def replace_rows(self, rows: Sequence[Row]) -> None:
        """Redraw just these rows (already shown, same keys): no pass over the others."""
        for row in rows:
            index = self._positions[row.key]
            self._update(row, self._rows[index])
            self._rows[index] = row

    def _update(self, new: Row, old: Row) -> None:
        for (_, column), cell, previous in zip(
            self._column_spec, new.cells, old.cells, strict=True
        ):
            if cell != previous:
                self.update_cell(new.key, column, cell, update_width=True)
