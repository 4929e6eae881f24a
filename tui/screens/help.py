"""The help screen: every key of the screen it was opened from, generated from the bindings."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from tui.commands import Command


class HelpScreen(ModalScreen[None]):
    """Lists each binding's keys, what it does, and the id to remap it in config.toml."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,q", "dismiss", "Close help", id="close_help"),
    ]

    def __init__(self, commands: Sequence[Command], *, terminal_leave_key: str) -> None:
        super().__init__()
        self.commands = commands
        self.terminal_leave_key = terminal_leave_key

    def compose(self) -> ComposeResult:
        table = Table(box=None, padding=(0, 2), expand=True, header_style="bold")
        table.add_column("KEY", no_wrap=True, style="bold")
        table.add_column("COMMAND", no_wrap=True, style="bold")
        table.add_column("WHAT IT DOES")
        table.add_column(Text("ID (for [keys])"), style="dim", no_wrap=True)
        for command in self.commands:
            table.add_row(
                Text(" ".join(command.keys)),
                Text(command.description),
                Text(command.tooltip),
                Text(command.binding_id),
            )
        remap = Text(
            f"\nIn a terminal pane every key goes to the program in it, except "
            f"{self.terminal_leave_key} (id terminal.leave), which leaves the pane.\n"
            "\nRemap a key in config.toml (`roost paths` shows where it is), e.g.\n"
            '  [keys]\n  refresh = "ctrl+r"\n'
            "esc, ? or q closes this help.",
            style="dim",
        )
        with VerticalScroll(id="help-body") as body:
            body.border_title = "Keys"
            yield Static(table, id="help-keys")
            yield Static(remap, id="help-remap")

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(result)
