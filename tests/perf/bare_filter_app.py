"""The baseline for bench_fleet: a plain Textual app filtering a DataTable of the same rows the
obvious way (clear, then add the matching rows on every keystroke). Run by the benchmark in tmux.
"""

from __future__ import annotations

import sys

from rich.text import Text
from textual.app import App, ComposeResult
from textual.widgets import DataTable, Input, Static

COLUMNS = ("NAME", "KIND", "WHERE", "STATUS", "HEALTH", "LATENCY", "VERSION", "SESSIONS", "SEEN")


class BareFilter(App[None]):
    def __init__(self, names: list[str]) -> None:
        super().__init__()
        self.names = names

    def compose(self) -> ComposeResult:
        yield Input(id="filter")
        yield Static(id="count")
        yield DataTable(id="table")

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns(*COLUMNS)
        self.show("")

    def on_input_changed(self, event: Input.Changed) -> None:
        self.show(event.value)

    def show(self, query: str) -> None:
        table = self.query_one(DataTable)
        table.clear()
        shown = [name for name in self.names if query.lower() in name.lower()]
        for name in shown:
            cells = (name, "local", "bench", "◌ sleeping", "", "", "", "", "")
            table.add_row(*(Text(cell) for cell in cells), key=name)
        self.query_one("#count", Static).update(f"{len(shown)} of {len(self.names)} shown")


if __name__ == "__main__":
    count = int(sys.argv[1])
    BareFilter(["this machine", *(f"agent-{i:04d}" for i in range(count))]).run()
