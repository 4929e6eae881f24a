"""Confirmations: a yes/no question, and a typed one for actions that destroy data."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static


class ConfirmScreen(ModalScreen[bool]):
    """Asks one question; `y` confirms, `n` or `esc` declines."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes", id="confirm_yes"),
        Binding("n,escape", "answer(False)", "No", id="confirm_no"),
    ]

    def __init__(self, title: str, question: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.title_text = title
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog") as dialog:
            dialog.border_title = self.title_text
            yield Static(Text(self.question))
            yield Static(Text("y: yes    n or esc: no", style="dim"))

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


class TypedConfirmScreen(ModalScreen[bool]):
    """States exactly what will be destroyed; proceeds only when `word` is typed back."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="confirm_cancel"),
    ]

    def __init__(self, title: str, lines: Sequence[str], word: str) -> None:
        super().__init__()
        self.title_text = title
        self.lines = lines
        self.word = word

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog -danger") as dialog:
            dialog.border_title = self.title_text
            yield Static(Text("\n".join(self.lines)))
            yield Static(
                Text(f"This cannot be undone. Type {self.word} and press enter; esc cancels.")
            )
            yield Input(placeholder=self.word, id="confirm-word")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.value.strip() == self.word:
            self.dismiss(True)
        else:
            self.notify(f"Type {self.word} exactly, or press esc.", severity="warning")

    def action_cancel(self) -> None:
        self.dismiss(False)
