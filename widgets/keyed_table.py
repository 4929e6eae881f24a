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

    When the keys are unchanged only the changed cells are updated, so a periodic refresh of an
    unchanged fleet costs a comparison per cell and no redraw.
    """

    def __init__(
        self, columns: Sequence[tuple[str, str]], *, id: str | None = None, classes: str = ""
    ) -> None:
        super().__init__(id=id, classes=classes, cursor_type="row", zebra_stripes=True)
        self._column_spec = tuple(columns)
        self._rows: list[Row] = []

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
                for (_, column), cell, previous in zip(
                    self._column_spec, new.cells, old.cells, strict=True
                ):
                    if cell != previous:
                        self.update_cell(new.key, column, cell, update_width=True)
        else:
            selected = self.selected_key
            self.clear()
            for row in rows:
                self.add_row(*row.cells, key=row.key)
            keys = [row.key for row in rows]
            if selected in keys:
                self.move_cursor(row=keys.index(selected), animate=False)
        self._rows = list(rows)
