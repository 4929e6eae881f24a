"""A terminal session filling the screen, with the leave key in the footer.

Opened from the main screen (`t`: a shell on this machine). The pane takes every key except its
leave key, which closes the session and returns to the main screen.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer

from services.terminal.backend import TerminalBackend
from tui.terminal_pane import TerminalPane


class TerminalScreen(Screen[None]):
    def __init__(self, backend: TerminalBackend, *, title: str, scrollback: int) -> None:
        super().__init__()
        self.pane = TerminalPane(backend, title=title, scrollback=scrollback)

    def compose(self) -> ComposeResult:
        yield self.pane
        yield Footer()

    def on_mount(self) -> None:
        self.pane.view.focus()

    def on_terminal_pane_left(self, message: TerminalPane.Left) -> None:
        self.dismiss()

    def on_terminal_pane_ended(self, message: TerminalPane.Ended) -> None:
        if message.error:
            self.notify(message.error, title=self.pane.session_title, severity="error")
