"""A live terminal session in a pane: backend, emulator and view, and the pacing between them.

Output is read as it comes and queued; a frame, at most 60 times a second, feeds the queue to
the emulator in slices for a bounded time and then repaints the changed rows once. When output
arrives faster than that, the pane falls behind instead of freezing the app: the status line
says how far behind it is, each frame works through a bigger share of the queue and draws
only its end state, and once the queue passes `HIGH_WATER` reading stops until it drains (the
program then waits on its PTY, as it would with a slow terminal). Synchronized output (mode
2026) holds the repaint until the program ends its update or `SYNC_TIMEOUT` passes.

Typed input goes straight to the backend. Size changes are sent after the view has kept its new
size for `RESIZE_DEBOUNCE`, so dragging a split does not storm the program with SIGWINCH.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass
from enum import Enum
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.timer import Timer
from textual.widgets import Static

from services.errors import RoostError
from services.terminal.backend import TerminalBackend, TerminalSize
from services.terminal.emulator import Emulator
from widgets.terminal_view import TerminalView

log = logging.getLogger(__name__)

FRAME_SECONDS = 1 / 60
FEED_BUDGET = 0.005
"""Seconds of emulation per frame while keeping up."""
CATCH_UP_BUDGET = 0.012
"""Seconds of emulation per frame while behind and nobody types: one repaint per frame."""
TYPING_BUDGET = 0.005
"""The same while someone typed into any pane within `TYPING_GRACE`: a key waits behind the
flooding panes' frames, so they leave it most of the loop (tests/perf/bench_terminal.py
measures keypress to echo during a flood; 12 ms per frame made it miss 50 ms)."""
TYPING_GRACE = 1.0
SLICE = 1 << 14
HIGH_WATER = 4 << 20
"""Queued bytes at which reading pauses."""
BEHIND_NOTICE = 256 << 10
"""Queued bytes from which the status line says the pane is behind."""
RESIZE_DEBOUNCE = 0.1


class Connection(Enum):
    CONNECTING = "connecting"
    LIVE = "live"
    EXITED = "exited"
    FAILED = "failed"


class TerminalPane(Vertical):
    """One session: a `TerminalView` over its status line."""

    LEAVE = Binding(
        "ctrl+right_square_bracket",
        "leave",
        "Leave pane",
        id="terminal.leave",
        priority=True,
        tooltip="Leave the terminal; every other key goes to the session",
    )
    BINDINGS: ClassVar[list[BindingType]] = [LEAVE]

    @dataclass
    class Left(Message):
        """The user pressed the leave key in this pane."""

        pane: TerminalPane

    @dataclass
    class Ended(Message):
        """The session ended (`status` is its exit code) or failed (`error`)."""

        pane: TerminalPane
        status: int | None
        error: str | None

    def __init__(
        self,
        backend: TerminalBackend,
        *,
        title: str,
        scrollback: int,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self.backend = backend
        self.session_title = title
        self._session_size = TerminalSize(80, 24)  # until the view has its size
        self.emulator = Emulator(80, 24, scrollback=scrollback)
        self.view = TerminalView(self.emulator)
        self.status = Static(classes="terminal-status")
        self.connection = Connection.CONNECTING
        self.detail = ""
        self._queue: deque[bytes] = deque()
        self.queued = 0
        """Bytes received and not yet emulated."""
        self._room = asyncio.Event()
        self._room.set()
        self._frame_timer: asyncio.TimerHandle | None = None
        self._last_frame = 0.0
        self._resize_timer: Timer | None = None
        self._shown_status = ""
        self._started = False

    def compose(self) -> ComposeResult:
        yield self.view
        yield self.status

    def on_mount(self) -> None:
        self._show_status()

    async def _run(self) -> None:
        """Start the session and queue its output until it ends."""
        try:
            await self.backend.start(self._session_size)
            self.connection = Connection.LIVE
            self._show_status()
            while chunk := await self.backend.read():
                self._queue.append(chunk)
                self.queued += len(chunk)
                self._schedule_frame()
                if self.queued >= HIGH_WATER:
                    self._room.clear()
                    await self._room.wait()
        except RoostError as error:
            self._end(None, str(error))
            return
        except Exception as error:  # a backend bug must not take the app down
            log.exception("terminal session %s failed", self.session_title)
            self._end(None, f"the session failed: {error}")
            return
        await self._drain()
        self._end(self.backend.exit_status, None)

    async def _drain(self) -> None:
        """Let the frames work through what the session wrote before it ended."""
        while self.queued and self.is_mounted:
            self._room.clear()
            await self._room.wait()

    def _end(self, status: int | None, error: str | None) -> None:
        self.connection = Connection.FAILED if error else Connection.EXITED
        self.detail = error or f"exited with code {status}"
        self._show_status()
        self.post_message(self.Ended(self, status, error))

    # -- frames ----------------------------------------------------------------------------

    def _schedule_frame(self) -> None:
        """The next frame, at most FRAME_SECONDS after the last one started."""
        if self._frame_timer is None:
            delay = max(0.0, self._last_frame + FRAME_SECONDS - time.monotonic())
            self._frame_timer = asyncio.get_running_loop().call_later(delay, self._frame)

    def _frame(self) -> None:
        """Emulate queued output for a bounded time, answer queries, repaint once."""
        self._frame_timer = None
        self._last_frame = start = time.monotonic()
        budget = FEED_BUDGET
        if self.queued > BEHIND_NOTICE:
            typing = start - TerminalPane.last_input < TYPING_GRACE
            budget = TYPING_BUDGET if typing else CATCH_UP_BUDGET
        feed = self.emulator.feed
        queue = self._queue
        while queue and time.monotonic() - start < budget:
            chunk = queue.popleft()
            if len(chunk) > SLICE:
                queue.appendleft(chunk[SLICE:])
                chunk = chunk[:SLICE]
            self.queued -= len(chunk)
            feed(chunk)
        replies = self.emulator.take_replies()
        if replies:
            self.backend.write(replies)
        if not self.emulator.synchronized:
            self.view.refresh_changes()
        if self.queued < HIGH_WATER // 2:
            self._room.set()
        if queue or self.emulator.synchronized:  # a held update is drawn at its timeout
            self._schedule_frame()
        self._show_status()

    # -- input and size --------------------------------------------------------------------

    last_input: ClassVar[float] = float("-inf")
    """When input was last typed into any pane (monotonic): the panes share one event loop."""

    def on_terminal_view_typed(self, message: TerminalView.Typed) -> None:
        message.stop()
        TerminalPane.last_input = time.monotonic()
        if self.connection is Connection.LIVE:
            self.backend.write(message.data)

    def on_terminal_view_resized(self, message: TerminalView.Resized) -> None:
        message.stop()
        if message.columns < 1 or message.rows < 1:
            return
        self._session_size = TerminalSize(message.columns, message.rows)
        if not self._started:
            # The session starts at the size it will be shown at, never at a guessed 80x24.
            self._started = True
            self.emulator.resize(message.rows, message.columns)
            self.run_worker(self._run(), group="terminal", name=f"session {self.session_title}")
            return
        if self._resize_timer is not None:
            self._resize_timer.stop()
        self._resize_timer = self.set_timer(RESIZE_DEBOUNCE, self._apply_size, name="resize")

    def _apply_size(self) -> None:
        self._resize_timer = None
        size = self._session_size
        self.emulator.resize(size.rows, size.columns)
        self.view.refresh_changes()
        if self.connection is not Connection.FAILED:
            self.backend.resize(size)

    def action_leave(self) -> None:
        self.post_message(self.Left(self))

    # -- status ----------------------------------------------------------------------------

    def _show_status(self) -> None:
        parts = [self.session_title]
        if self.emulator.title:
            parts.append(self.emulator.title)
        state = self.detail if self.connection in (Connection.EXITED, Connection.FAILED) else ""
        parts.append(state or self.connection.value)
        if self.queued >= BEHIND_NOTICE:
            parts.append(f"catching up: {self.queued / (1 << 20):.1f} MiB behind")
        text = " · ".join(parts)
        if text != self._shown_status:
            self._shown_status = text
            # The title comes from the program: never markup. One line high: no layout needed.
            self.status.update(Text(text), layout=False)
            self.status.set_class(self.connection is Connection.FAILED, "-failed")

    async def on_unmount(self) -> None:
        if self._frame_timer is not None:
            self._frame_timer.cancel()
        await self.backend.close()
