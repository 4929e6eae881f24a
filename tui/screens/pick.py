"""Choosing one of an assistant's tmux sessions, or a new shell, before attaching."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from services.core.safe_text import printable

NEW_SHELL = ""
"""The answer for a new shell (no tmux session is ever named so); None means cancelled."""


class SessionPicker(ModalScreen[str | None]):
    """The sessions by name (and a new shell first when offered); `enter` picks, `esc` cancels."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="pick_cancel"),
    ]

    def __init__(self, title: str, sessions: Sequence[str], *, new_shell: bool) -> None:
        super().__init__()
        self.title_text = title
        self.sessions = sessions
        self.new_shell = new_shell

    def compose(self) -> ComposeResult:
        options = [Option(Text("a new shell", style="italic"), id=NEW_SHELL)] * self.new_shell
        options += [Option(Text(printable(name)), id=name) for name in self.sessions]
        with Vertical(classes="dialog") as dialog:
            dialog.border_title = self.title_text
            yield OptionList(*options, id="sessions")
            yield Static(Text("enter: attach    esc: cancel", style="dim"))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
