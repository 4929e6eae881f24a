"""The help screen: every key of the screen it was opened from, generated from the bindings."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.dom import DOMNode
from textual.screen import ModalScreen
from textual.widgets import Static

from tui.commands import Command

Section = tuple[str, Sequence[Command]]
"""A heading (where these keys work) and its commands."""


def bound_commands(
    app: App[Any], bindings: Iterable[BindingType], keymap: Mapping[str, str], node: DOMNode
) -> list[Command]:
    """The commands of bindings that are not active yet (another panel's, another screen's),
    with the keys `keymap` (config.toml's [keys]) gives them."""
    found: list[Command] = []
    for binding in bindings:
        if not isinstance(binding, Binding) or binding.id is None:
            continue
        keys = keymap.get(binding.id, binding.key).split(",")
        shown = tuple(app.get_key_display(binding.with_key(key.strip())) for key in keys)
        found.append(
            Command(
                binding.id,
                shown,
                binding.description,
                binding.tooltip,
                binding.action,
                node,
                enabled=True,
            )
        )
    return found


class HelpScreen(ModalScreen[None]):
    """Lists each binding's keys, what it does, and the id to remap it in config.toml; then,
    under their own headings, keys that work once the focus is elsewhere (`sections`)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,q", "dismiss", "Close help", id="close_help"),
    ]

    def __init__(
        self,
        commands: Sequence[Command],
        *,
        terminal_leave_key: str,
        sections: Sequence[Section] = (),
    ) -> None:
        super().__init__()
        self.commands = commands
        self.terminal_leave_key = terminal_leave_key
        self.sections = sections

    def compose(self) -> ComposeResult:
        table = Table(box=None, padding=(0, 1), expand=True, header_style="bold")
        table.add_column("KEY", no_wrap=True, style="bold")
        table.add_column("COMMAND", no_wrap=True, style="bold")
        table.add_column("WHAT IT DOES", min_width=24)
        table.add_column(Text("ID (for [keys])"), style="dim", overflow="fold", min_width=12)
        for heading, commands in (("", self.commands), *self.sections):
            if heading:  # in the column that wraps, so a long heading widens nothing
                table.add_row("")
                table.add_row("", "", Text(heading, style="bold italic"), "")
            for command in commands:
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
