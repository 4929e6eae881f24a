"""Every open terminal pane: one at a time as tabs, or up to four at once as a grid.

While a pane's view has the focus every key goes to its session except the leave key
(`ctrl+]`), which hands the keys to this screen: move between panes, switch the layout, watch
or drive, detach, close, reconnect, scroll back, or go to the main screen. The panes stay
connected while the main screen is shown (the app keeps this screen installed), and `enter`
returns into the pane. `h` rewinds the pane (its timeline then has the keys until end or esc).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rich.cells import cell_len
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Container
from textual.message import Message
from textual.reactive import var
from textual.screen import Screen
from textual.widgets import Footer, Static

from services.core.mode import Mode
from tui.screens.confirm import ConfirmScreen
from tui.terminal_pane import Connection, TerminalPane
from widgets.terminal_view import TerminalView

GRID = 4
"""Panes shown at once in the grid layout (2x2)."""
MARKER_WIDTH = 5
"""Cells kept for a count of hidden tabs at one end of the tab bar (` ◂12 `)."""

STATE_MARKS = {
    Connection.CONNECTING: "◌",
    Connection.LIVE: "●",
    Connection.RECONNECTING: "◌",
    Connection.EXITED: "■",
    Connection.FAILED: "✖",
    Connection.LOST: "✖",
}


def _go(number: int) -> Binding:
    return Binding(
        str(number),
        f"go({number - 1})",
        f"Pane {number}",
        id=f"panes.go_{number}",
        show=False,
        tooltip=f"Show pane {number}",
    )


def tab_window(widths: list[int], active: int, room: int) -> range:
    """The tabs that fit in `room` cells: the active one always, then its neighbours, nearest
    first. Hidden tabs are counted at either end (` ◂2 `, ` 3▸ `): room is kept for both."""
    if not widths or sum(widths) <= room or room <= 0:
        return range(len(widths))
    room -= 2 * MARKER_WIDTH
    start, stop = active, active + 1
    used = widths[active]
    while True:
        grown = False
        for candidate in (stop, start - 1):
            if 0 <= candidate < len(widths) and used + widths[candidate] <= room:
                used += widths[candidate]
                start, stop = min(start, candidate), max(stop, candidate + 1)
                grown = True
        if not grown:
            return range(start, stop)


def _count(number: int, thing: str) -> str:
    return f"{number} {thing}{'' if number == 1 else 's'}"


class PanesScreen(Screen[None]):
    """The open panes, and the keys that act on them once the leave key was pressed."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter,i", "type", "Type", id="panes.type", tooltip="Back into the pane"),
        Binding(
            "escape,m",
            "main",
            "Main screen",
            id="panes.main",
            tooltip="Show the main screen; the panes stay connected (v comes back)",
        ),
        Binding("tab", "cycle(1)", "Next", id="panes.next", tooltip="The next pane"),
        Binding(
            "shift+tab",
            "cycle(-1)",
            "Previous",
            id="panes.previous",
            show=False,
            tooltip="The previous pane",
        ),
        Binding(
            "left",
            "move(-1, 0)",
            "Left",
            id="panes.left",
            show=False,
            tooltip="The pane to the left (with tabs: the previous one)",
        ),
        Binding(
            "h",
            "rewind",
            "Rewind",
            id="panes.rewind",
            tooltip="Freeze the pane and step back through its recording (end or esc: live)",
        ),
        Binding(
            "right,l",
            "move(1, 0)",
            "Right",
            id="panes.right",
            show=False,
            tooltip="The pane to the right (with tabs: the next one)",
        ),
        Binding("up,k", "move(0, -1)", "Up", id="panes.up", show=False, tooltip="The pane above"),
        Binding(
            "down,j", "move(0, 1)", "Down", id="panes.down", show=False, tooltip="The pane below"
        ),
        Binding(
            "g", "layout", "Grid", id="panes.layout", tooltip="Show one pane, or up to four at once"
        ),
        Binding(
            "D",
            "drive",
            "Drive",
            id="panes.drive",
            tooltip="Take control of a watched session: your keys go to it (asks first)",
        ),
        Binding("w", "watch", "Watch", id="panes.watch", tooltip="Watch only: no key is sent"),
        Binding(
            "d",
            "detach",
            "Detach",
            id="panes.detach",
            tooltip="Close the pane; its tmux session keeps running",
        ),
        Binding(
            "x",
            "close",
            "Close",
            id="panes.close",
            tooltip="Close the pane (a new shell ends with it; asks first while it runs)",
        ),
        Binding(
            "r",
            "reconnect",
            "Reconnect",
            id="panes.reconnect",
            tooltip="Start a session that ended or was lost again",
        ),
        Binding(
            "S",
            "share",
            "Share",
            id="panes.share",
            show=False,
            tooltip="Show the session read-only in a browser (a URL with a token); again: stop",
        ),
        Binding(
            "pageup",
            "scroll(1)",
            "Scroll back",
            id="panes.scroll_back",
            show=False,
            tooltip="A page back through the pane's scrollback",
        ),
        Binding(
            "pagedown",
            "scroll(-1)",
            "Scroll on",
            id="panes.scroll_on",
            show=False,
            tooltip="A page forward, towards the live screen",
        ),
        *(_go(number) for number in range(1, 10)),
    ]

    @dataclass
    class ShareToggled(Message):
        """The share key: share `pane`'s session read-only, or stop sharing it."""

        pane: TerminalPane

    @dataclass
    class Closed(Message):
        """`pane` was closed or detached (its share, if any, stops)."""

        pane: TerminalPane

    grid: var[bool] = var(False, init=False)
    """Up to four panes at once (the current one's group of four), else only the current one."""

    def __init__(self, leave_key: str = "ctrl+]") -> None:
        super().__init__(id="panes-screen")
        self.panes: list[TerminalPane] = []
        self.current = 0
        self.leave_key = leave_key
        """How the leave key is shown (the first key it is bound to, as remapped)."""

    def compose(self) -> ComposeResult:
        yield Static(id="pane-tabs")
        yield Container(id="pane-grid")
        yield Footer()

    @property
    def pane(self) -> TerminalPane | None:
        return self.panes[self.current] if self.panes else None

    async def add(self, pane: TerminalPane) -> None:
        """Show a new pane, current and typing. It is listed once mounted, so that nothing
        (a test, the app shutting down) sees it before it is arranged."""
        await self.query_one("#pane-grid").mount(pane)
        self.panes.append(pane)
        self.current = len(self.panes) - 1
        self._arrange()
        pane.view.focus()

    def quit_question(self) -> str | None:
        """What quitting does to the running panes, as a question (None: no pane runs)."""
        running = [pane for pane in self.panes if not pane.connection.over]
        if not running:
            return None
        shells = sum(pane.attachment.session is None for pane in running)
        sessions = len(running) - shells
        fates = []
        if shells:
            fates.append(f"{_count(shells, 'new shell')} {'ends' if shells == 1 else 'end'}")
        if sessions:
            keeps = "keeps" if sessions == 1 else "keep"
            fates.append(f"{_count(sessions, 'tmux session')} {keeps} running (detached)")
        are = "is" if len(running) == 1 else "are"
        return f"{_count(len(running), 'pane')} {are} open: {', '.join(fates)}. Quit roost?"

    # -- layout ----------------------------------------------------------------------------

    def _shown(self) -> list[TerminalPane]:
        if not self.grid:
            return self.panes[self.current : self.current + 1]
        first = self.current // GRID * GRID
        return self.panes[first : first + GRID]

    def _arrange(self) -> None:
        shown = self._shown()
        grid = self.query_one("#pane-grid")
        grid.styles.grid_size_columns = 1 if len(shown) == 1 else 2
        grid.styles.grid_size_rows = 1 if len(shown) <= 2 else 2
        for pane in self.panes:
            pane.display = pane in shown
        self._show_tabs()

    def _show_tabs(self) -> None:
        tabs = Text(no_wrap=True, overflow="ellipsis")
        shown = self._shown()
        labels = [
            f" {number} {pane.session_title} {'W' if pane.mode is Mode.WATCH else 'D'}"
            f"{STATE_MARKS[pane.connection]} "
            for number, pane in enumerate(self.panes, 1)
        ]
        room = self.query_one("#pane-tabs", Static).size.width
        window = tab_window([cell_len(label) for label in labels], self.current, room)
        if window.start:
            tabs.append(f" ◂{window.start} ", style="dim")
        for index in window:
            pane = self.panes[index]
            if pane is self.pane:
                tabs.append(labels[index], style="reverse bold")
            else:
                tabs.append(labels[index], style="" if pane in shown else "dim")
        if window.stop < len(labels):
            tabs.append(f" {len(labels) - window.stop}▸ ", style="dim")
        layout = "tabs"
        if self.grid:
            pages = -(-len(self.panes) // GRID)
            layout = f"grid, page {self.current // GRID + 1}/{pages}" if pages > 1 else "grid"
        tabs.append(f"  {layout} · {self.leave_key} then ? for the pane keys", style="dim")
        self.query_one("#pane-tabs", Static).update(tabs)

    def on_resize(self) -> None:
        if self.is_mounted:
            self._show_tabs()

    def watch_grid(self) -> None:
        self._arrange()

    def on_terminal_pane_changed(self, message: TerminalPane.Changed) -> None:
        if self.is_mounted:
            self._show_tabs()

    def on_descendant_focus(self) -> None:
        focused = self.focused
        for index, pane in enumerate(self.panes):
            if focused is pane or focused is pane.view:
                if index != self.current:
                    self.current = index
                    self._arrange()
                return

    def _select(self, index: int, *, typing: bool = False) -> None:
        if not self.panes:
            return
        self.current = index % len(self.panes)
        self._arrange()
        pane = self.panes[self.current]
        (pane.view if typing else pane).focus()

    # -- keys ------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """While a pane's view has the focus its keys belong to the session: the pane keys
        are off (and out of the footer) until the leave key."""
        return not isinstance(self.focused, TerminalView)

    def on_terminal_pane_left(self, message: TerminalPane.Left) -> None:
        message.pane.focus()

    def on_terminal_pane_ended(self, message: TerminalPane.Ended) -> None:
        if message.error:
            lost = message.pane.connection is Connection.LOST
            self.notify(
                f"{message.error}; r starts it again" if lost else message.error,
                title=message.pane.session_title,
                severity="warning" if lost else "error",
            )

    def action_type(self) -> None:
        if self.pane is not None:
            self.pane.view.focus()

    def action_main(self) -> None:
        self.app.pop_screen()

    def action_cycle(self, step: int) -> None:
        self._select(self.current + step)

    def action_go(self, index: int) -> None:
        if index < len(self.panes):
            self._select(index)

    def action_move(self, across: int, down: int) -> None:
        """To the neighbouring pane in the grid (with tabs: the previous or next one)."""
        if not self.grid:
            self._select(self.current + (across or down))
            return
        first = self.current // GRID * GRID
        column, row = (self.current - first) % 2, (self.current - first) // 2
        column, row = min(max(column + across, 0), 1), min(max(row + down, 0), 1)
        target = first + row * 2 + column
        if target < len(self.panes):
            self._select(target)

    def action_layout(self) -> None:
        self.grid = not self.grid
        if self.pane is not None:
            self.pane.focus()

    def action_scroll(self, pages: int) -> None:
        if self.pane is not None:
            self.pane.scroll_back(pages * max(1, self.pane.view.size.height - 1))

    def action_rewind(self) -> None:
        if self.pane is not None:
            self.pane.rewind()

    def action_drive(self) -> None:
        pane = self.pane
        if pane is None:
            return
        if pane.mode is Mode.DRIVE:
            self.notify("Already driving: enter types into it.", title=pane.session_title)
            return

        def answered(yes: bool | None) -> None:
            if yes and pane.is_attached:
                pane.switch_mode(Mode.DRIVE)
                self._show_tabs()
                pane.view.focus()

        question = (
            f"Take control of {pane.session_title}? Your keys will go to the session; "
            "anyone watching sees them."
        )
        self.app.push_screen(ConfirmScreen("Drive", question), answered)

    def action_watch(self) -> None:
        pane = self.pane
        if pane is not None:
            pane.switch_mode(Mode.WATCH)
            self._show_tabs()

    def action_reconnect(self) -> None:
        pane = self.pane
        if pane is None:
            return
        if not pane.connection.over:
            self.notify(f"{pane.session_title} is {pane.connection.value}.", timeout=3)
            return
        pane.start(revive=True)

    async def action_detach(self) -> None:
        pane = self.pane
        if pane is None:
            return
        if pane.attachment.session is None:
            self.notify(
                "A new shell has nothing to detach from: x closes it (and ends it).",
                title=pane.session_title,
                severity="warning",
            )
            return
        await self._remove(pane)
        self.notify(f"Detached; tmux session {pane.attachment.session!r} keeps running.")

    async def action_close(self) -> None:
        pane = self.pane
        if pane is None:
            return
        if pane.attachment.session is not None or pane.connection.over:
            await self._remove(pane)
            return

        async def answered(yes: bool | None) -> None:
            if yes and pane.is_attached:
                await self._remove(pane)

        question = f"End the shell in {pane.session_title}? Whatever runs in it ends too."
        self.app.push_screen(ConfirmScreen("Close", question), answered)

    def action_share(self) -> None:
        if self.pane is not None:
            self.post_message(self.ShareToggled(self.pane))

    async def _remove(self, pane: TerminalPane) -> None:
        index = self.panes.index(pane)
        self.post_message(self.Closed(pane))
        self.panes.remove(pane)
        await pane.remove()
        if not self.panes:
            self.app.pop_screen()
            return
        self._select(min(index, len(self.panes) - 1))
