"""A panel of labelled facts about whatever is selected."""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table
from rich.text import Text
from textual.widgets import Static


class DetailPanel(Static):
    """Shows a title and (label, value) pairs; values wrap, labels stay in one column."""

    DEFAULT_CSS = """
    DetailPanel { padding: 0 1; }
    """

    _shown: tuple[str, tuple[tuple[str, str | Text], ...]] | None = None
    _height: int | None = None
    """Lines the facts shown take at the width they were drawn at."""

    def show(self, title: str, facts: Sequence[tuple[str, str | Text]]) -> None:
        """Show these facts; showing the same ones again costs nothing (no layout, no redraw).

        Facts that take as many lines as the last ones are drawn without a layout of the
        screen: an age moving on each second would otherwise arrange every widget again, which
        with a thousand assistants costs more than all the rest of a second's work."""
        shown = (title, tuple(facts))
        if shown == self._shown:
            return
        self._shown = shown
        grid = Table.grid(padding=(0, 1))
        grid.add_column(style="dim", no_wrap=True)
        grid.add_column(overflow="fold")
        for label, value in facts:
            grid.add_row(label, value if isinstance(value, Text) else Text(value))
        heading = Text(title, style="bold")
        table = Table.grid()
        table.add_row(heading)
        table.add_row("")
        table.add_row(grid)
        height = self._lines(table)
        self.update(table, layout=height is None or height != self._height)
        self._height = height

    def _lines(self, table: Table) -> int | None:
        """How many lines `table` takes in this panel; None before it has a width."""
        width = self.content_size.width
        if width <= 0:
            return None
        console = self.app.console
        return len(console.render_lines(table, console.options.update_width(width), pad=False))
