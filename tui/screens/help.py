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

    def __init__(self, commands: Sequence[Command], config_file: str) -> None:
        super().__init__()
        self.commands = commands
        self.config_file = config_file

    def compose(self) -> ComposeResult:
        table = Table(box=None, padding=(0, 2), expand=True, header_style="bold")
        table.add_column("KEY", no_wrap=True)
        table.add_column("DOES")
        table.add_column(Text("ID (for [keys])"), style="dim", no_wrap=True)
        for command in self.commands:
            does = Text(command.description, style="bold")
            if command.tooltip:
                does.append(f"  {command.tooltip}", style="not bold")
            table.add_row(Text(" ".join(command.keys), style="bold"), does, command.binding_id)
        remap = Text.assemble(
            ("\nRemap a key in ", "dim"),
            (self.config_file, "dim italic"),
            (', e.g.\n  [keys]\n  refresh = "ctrl+r"\n', "dim"),
            ("esc, ? or q closes this help.", "dim"),
        )
        with VerticalScroll(id="help-body") as body:
            body.border_title = "Keys"
            yield Static(table, id="help-keys")
            yield Static(remap, id="help-remap")

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(result)
