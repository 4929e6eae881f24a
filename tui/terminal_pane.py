"""A live terminal session in a pane: backend, emulator and view, and the pacing between them.

Output is read as it comes and queued; a frame, at most 60 times a second, feeds the queue to
the emulator in slices for a bounded time and then repaints the changed rows once. When output
arrives faster than that, the pane falls behind instead of freezing the app: the status line
says how far behind it is, each frame works through a bigger share of the queue and draws
only its end state, and once the queue passes `HIGH_WATER` reading stops until it drains (the
program then waits on its PTY, as it would with a slow terminal). Synchronized output (mode
2026) holds the repaint until the program ends its update or `SYNC_TIMEOUT` passes. Should
the emulator fail on a sequence (a bug), it loses only that sequence: the pane logs the
failure, says so in the status line and keeps going. While someone types, typing comes first
(`Typing`): the echo is drawn at once and the other panes' frames step aside.

Typed input goes straight to the backend while the pane drives its session; while it watches,
nothing is sent (not even the emulator's answers to the program's queries) and the first key
says so. Size changes are sent after the view has kept its new size for `RESIZE_DEBOUNCE`, so
dragging a split does not storm the program with SIGWINCH.

What the output says besides the screen (a new title, bells, desktop notifications: evidence of
what a coding agent in the session is doing) goes up in one `Signals` message per frame at
most, whether the pane drives or watches.

A pane outlives its backends: switching a tmux attach between watching and driving attaches
again in the new mode, and a session that ended or was lost can be started again; the screen
stays in place meanwhile. Every byte shown is also appended to the pane's recording.

Scrollback: a shell's history is the emulator's own. A tmux client's screen has none (tmux keeps
it), so scrolling back in a pane on a tmux session (here, in a container, or in a managed
assistant) reads tmux's history of it with its colours (`Attacher.history`, off the event loop),
emulates it at the pane's size, and the view scrolls through that copy; typing or scrolling back
to the bottom returns to the live screen. A pane that cannot have it says why on its status line.

Rewind: the pane's recording is indexed as it is written (services/terminal/recording.py): after
a frame that fed everything read, the emulator's state goes to the recorder as a keyframe when
it wants one, and attaching, resizing and reconnecting leave markers. `rewind()` freezes the
view on the present (a copy of the screen) and shows a timeline under it; each move on it
finds the screen of that moment in the recording (`playback.Timeline`, off the event loop) and
shows it still, while the session goes on being read, emulated and recorded underneath; leaving
(end, escape) shows the live screen again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import ClassVar, Protocol

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.timer import Timer
from textual.widgets import Static

from services.core.errors import RoostError
from services.core.mode import Mode
from services.share.stream import ShareStream
from services.terminal.attach import Attachment
from services.terminal.backend import (
    LinkNotice,
    SessionLost,
    TerminalBackend,
    TerminalSize,
)
from services.terminal.emulator import Emulator
from services.terminal.playback import RecordingError, Timeline
from services.terminal.recording import Recorder
from services.terminal.signals import TerminalSignal
from services.terminal.snapshot import screen_bytes
from services.terminal.tmux import capture_as_stream
from tui.textual_timer import correct_skipped_ticks
from widgets.rewind_timeline import RewindTimeline, TimelineMark
from widgets.terminal_view import TerminalView

log = logging.getLogger(__name__)

correct_skipped_ticks()  # else an echo typed soon after a repaint waits a frame more (see there)

FRAME_SECONDS = 1 / 60
FEED_BUDGET = 0.005
"""Seconds of emulation per frame while keeping up."""
CATCH_UP_BUDGET = 0.012
"""Seconds of emulation per frame while behind and nobody types: one repaint per frame."""
TYPING_BUDGET = 0.005
"""The same for the pane typed into while behind (a key into a flooding pane)."""
TYPING_GRACE = 1.0
"""Seconds after a key during which the panes count as typed into (see `Typing`)."""
ECHO_WAIT = 0.05
"""Longest the other panes hold their frames back after a key, waiting for its echo."""
BACKGROUND_BUDGET = 0.002
"""Seconds of emulation per frame of a pane nobody types into while someone types elsewhere."""
BACKGROUND_REPAINT = 0.1
"""Seconds between the repaints of such a pane: Textual takes ~10 ms to repaint a 100x50 pane
whose every row moved, so a flood repainted 60 times a second filled the loop and every key's
echo queued behind it (tests/perf/bench_terminal.py measures keypress to echo during a flood)."""
SLICE = 1 << 14
BACKGROUND_SLICE = 1 << 11
"""Bytes emulated at a time in a background frame, so that it overruns its budget by little."""
HIGH_WATER = 4 << 20
"""Queued bytes at which reading pauses."""
BEHIND_NOTICE = 256 << 10
"""Queued bytes from which the status line says the pane is behind."""
RESIZE_DEBOUNCE = 0.1


class Typing:
    """Who typed last, shared by the panes of the app (one event loop draws them all): while
    someone types, typing comes first.

    The pane typed into draws the first output after each key (its echo) at once, not at its
    next frame. The other panes step aside: none starts a frame after a key until its echo is
    drawn (at most `ECHO_WAIT`), and for `TYPING_GRACE` after the last key their frames emulate
    for `BACKGROUND_BUDGET` in small slices and repaint at most every `BACKGROUND_REPAINT`. A
    pane that floods still catches up meanwhile, more slowly, and draws its end state.
    """

    def __init__(self) -> None:
        self.last_key = float("-inf")
        self.pane = 0
        """The id() of the pane typed into last (not the pane: a closed one must not be kept)."""
        self.hold_until = float("-inf")
        """The other panes start no frame before this (monotonic)."""

    def typed(self, pane: object, now: float) -> None:
        self.last_key, self.pane = now, id(pane)
        self.hold_until = now + ECHO_WAIT

    def echo_drawn(self, now: float) -> None:
        """The pane typed into asked for its echo's repaint: Textual draws it within a frame."""
        self.hold_until = min(self.hold_until, now + FRAME_SECONDS)

    def recent(self, now: float) -> bool:
        return now - self.last_key < TYPING_GRACE

    def elsewhere(self, pane: object, now: float) -> bool:
        """Someone types into a pane other than `pane`."""
        return self.pane != id(pane) and self.recent(now)


TYPING = Typing()


class Connection(Enum):
    CONNECTING = "connecting"
    LIVE = "live"
    RECONNECTING = "reconnecting"
    EXITED = "exited"
    FAILED = "failed"
    LOST = "lost"

    @property
    def over(self) -> bool:
        """No session behind the pane any more (it may be started again)."""
        return self in (Connection.EXITED, Connection.FAILED, Connection.LOST)


BADGES = {Mode.WATCH: " WATCHING ", Mode.DRIVE: " DRIVING "}


class OpenBackend(Protocol):
    """`Attacher.backend`: a backend for an attachment in a mode; `revive` makes a tmux
    session that has ended again."""

    def __call__(
        self, attachment: Attachment, mode: Mode, *, revive: bool = False
    ) -> TerminalBackend: ...


ReadHistory = Callable[[Attachment, int], Awaitable[bytes]]
"""`Attacher.history`: the pane's tmux history, as tmux prints it."""
StartRecording = Callable[[Attachment, TerminalSize], Recorder]


class TerminalPane(Vertical, can_focus=True):
    """One session: a `TerminalView` over its status line (mode badge and connection).

    The pane itself takes the focus when the user leaves the view with the leave key: the
    screen's pane keys (move, close, drive...) then apply to it.
    """

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
        """The session ended (`status` is its exit code), failed or was lost (`error`)."""

        pane: TerminalPane
        status: int | None
        error: str | None

    @dataclass
    class Changed(Message):
        """The pane's mode or connection changed (for the tab bar)."""

        pane: TerminalPane

    @dataclass
    class Signals(Message):
        """The session's output changed the title, rang the bell or sent desktop notifications
        in the last frame (coalesced: one bell however many rang, the latest title)."""

        pane: TerminalPane
        signals: tuple[TerminalSignal, ...]

        @property
        def attachment(self) -> Attachment:
            """Which session said it: the assistant, its place and the tmux session."""
            return self.pane.attachment

    def __init__(
        self,
        attachment: Attachment,
        open_backend: OpenBackend,
        *,
        mode: Mode,
        scrollback: int,
        record: StartRecording | None = None,
        history: ReadHistory | None = None,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self.attachment = attachment
        self.mode = mode
        self._open = open_backend
        self._history = history
        self._scrollback = scrollback
        self._record = record
        self.recorder: Recorder | None = None
        self._tap: ShareStream | None = None
        """The share that is shown what this pane shows (`tap`)."""
        self.backend: TerminalBackend | None = None
        self._session_size = TerminalSize(80, 24)  # until the view has its size
        self.emulator = Emulator(80, 24, scrollback=scrollback)
        self.view = TerminalView(self.emulator)
        self.timeline = RewindTimeline(classes="terminal-timeline")
        self.timeline.display = False
        self._rewind: Timeline | None = None
        self.badge = Static(classes="terminal-badge")
        self.status = Static(classes="terminal-status")
        self._status_line = Horizontal(classes="terminal-status-line")
        self.connection = Connection.CONNECTING
        self.detail = ""
        self.note = ""
        """About the scrollback (reading tmux's, or why there is none), until typing."""
        self._told_watching = False
        self._queue: deque[bytes] = deque()
        self.queued = 0
        """Bytes received and not yet emulated."""
        self._room = asyncio.Event()
        self._room.set()
        self._frame_timer: asyncio.TimerHandle | None = None
        self._last_frame = 0.0
        self._last_repaint = 0.0
        self._unpainted = False
        """A frame emulated output and left its repaint to a later one (`Typing`)."""
        self._echo_due = False
        """A key was sent: the next output read is drawn at once."""
        self._resize_timer: Timer | None = None
        self._shown_status = ""
        self._started = False
        self._emulator_failures = 0

    @property
    def session_title(self) -> str:
        return self.attachment.title

    def compose(self) -> ComposeResult:
        yield self.view
        yield self.timeline
        with self._status_line:
            yield self.badge
            yield self.status

    def on_mount(self) -> None:
        self._show_badge()
        self._show_status()

    def start(self, *, revive: bool = False) -> None:
        """(Re)start the session: a new backend in the current mode replaces the old one;
        `revive` makes its tmux session again if it has ended."""
        self.run_worker(
            self._run(revive), group="session", exclusive=True, name=f"session {self.session_title}"
        )

    def switch_mode(self, mode: Mode) -> None:
        """Watch or drive from now on; a tmux attach attaches again in the new mode."""
        if mode is self.mode:
            return
        self.mode = mode
        self._told_watching = False
        if self.attachment.reopens_on_mode_change and self._started:
            self.start()
        self._changed()

    async def _run(self, revive: bool) -> None:
        """Open the session and queue its output until it ends."""
        previous, self.backend = self.backend, None
        if previous is not None:
            await previous.close()
        self.detail = ""
        self._set_connection(Connection.CONNECTING)
        try:
            self.backend = backend = self._open(self.attachment, self.mode, revive=revive)
            await backend.start(self._session_size)
            self._set_connection(Connection.LIVE)
            if self.recorder is not None:
                self.recorder.mark("attach", self.mode.value)
            while item := await backend.read():
                if isinstance(item, LinkNotice):
                    self._link_changed(item)
                    continue
                self._queue.append(item)
                self.queued += len(item)
                if self.recorder is not None:
                    self.recorder.output(item)
                if self._tap is not None:
                    self._tap.output(item)
                if self._echo_due:
                    self._echo_due = False
                    self._frame_now()
                else:
                    self._schedule_frame()
                if self.queued >= HIGH_WATER:
                    self._room.clear()
                    await self._room.wait()
                else:
                    await asyncio.sleep(0)  # a read is ready at once in a flood: let others in
        except SessionLost as error:
            self._end(Connection.LOST, None, str(error))
            return
        except RoostError as error:
            self._end(Connection.FAILED, None, str(error))
            return
        except Exception as error:  # a backend bug must not take the app down
            log.exception("terminal session %s failed", self.session_title)
            self._end(Connection.FAILED, None, f"the session failed: {error}")
            return
        await self._drain()
        self._end(Connection.EXITED, backend.exit_status, None)

    def _link_changed(self, notice: LinkNotice) -> None:
        if notice.live:
            self.detail = ""
            if self.recorder is not None and self.connection is Connection.RECONNECTING:
                self.recorder.mark("reconnect")
            self._set_connection(Connection.LIVE)
        else:
            self.detail = f"reconnecting {notice.attempt}/{notice.attempts}"
            if notice.reason:
                self.detail += f" ({notice.reason})"
            self._set_connection(Connection.RECONNECTING)

    def _set_connection(self, connection: Connection) -> None:
        self.connection = connection
        self._changed()

    def _changed(self) -> None:
        self._show_badge()
        self._show_status()
        self.post_message(self.Changed(self))

    async def _drain(self) -> None:
        """Let the frames work through what the session wrote before it ended."""
        while self.queued and self.is_mounted:
            self._room.clear()
            await self._room.wait()

    def _end(self, connection: Connection, status: int | None, error: str | None) -> None:
        if connection is Connection.LOST:
            self.detail = f"lost: {error}"
        else:
            ended = "ended" if status is None else f"exited with code {status}"
            self.detail = error or ended
        self._set_connection(connection)
        self.post_message(self.Ended(self, status, error))

    # -- frames ----------------------------------------------------------------------------

    def _schedule_frame(self) -> None:
        """The next frame, at most FRAME_SECONDS after the last one started."""
        if self._frame_timer is None:
            delay = max(0.0, self._last_frame + FRAME_SECONDS - time.monotonic())
            self._frame_timer = asyncio.get_running_loop().call_later(delay, self._frame)

    def _frame_now(self) -> None:
        if self._frame_timer is not None:
            self._frame_timer.cancel()
        self._frame(echo=True)

    def _frame(self, *, echo: bool = False) -> None:
        """Emulate queued output for a bounded time, answer queries, repaint once (`echo`: the
        first output after a key)."""
        self._frame_timer = None
        start = time.monotonic()
        background = TYPING.elsewhere(self, start)
        if background and start < TYPING.hold_until:
            delay = TYPING.hold_until - start
            self._frame_timer = asyncio.get_running_loop().call_later(delay, self._frame)
            return
        self._last_frame = start
        budget, piece = FEED_BUDGET, SLICE
        if background:
            budget, piece = BACKGROUND_BUDGET, BACKGROUND_SLICE
        elif self.queued > BEHIND_NOTICE:
            budget = TYPING_BUDGET if TYPING.recent(start) else CATCH_UP_BUDGET
        feed = self.emulator.feed
        queue = self._queue
        while queue and time.monotonic() - start < budget:
            chunk = queue.popleft()
            if len(chunk) > piece:
                queue.appendleft(chunk[piece:])
                chunk = chunk[:piece]
            self.queued -= len(chunk)
            try:
                feed(chunk)
            except Exception as error:  # an emulator bug: the output around it still shows
                self._emulator_failed(error)
        recorder = self.recorder
        if not queue and recorder is not None and recorder.keyframe_due:
            # Fed everything recorded: the emulator's state is the recording's at its end.
            recorder.keyframe(screen_bytes(self.emulator, partial_character=False))
        replies = self.emulator.take_replies()
        if replies and self.mode is Mode.DRIVE and self.backend is not None:
            self.backend.write(replies)  # a watcher answers nothing: that would be input
        signals = self.emulator.take_signals()
        if signals:  # a watcher reports them too: watching is reading
            self.post_message(self.Signals(self, signals))
        held = self.emulator.synchronized  # a held update is drawn at its timeout
        self._unpainted = held or (background and start - self._last_repaint < BACKGROUND_REPAINT)
        if not self._unpainted:
            self._last_repaint = start
            self.view.refresh_changes()
            self._show_status()
            if echo:
                TYPING.echo_drawn(time.monotonic())
        if self.queued < HIGH_WATER // 2:
            self._room.set()
        if queue or self._unpainted:
            self._schedule_frame()

    def _emulator_failed(self, error: Exception) -> None:
        """Log the first failure with its traceback (a stream that trips a bug tends to trip
        it again: the rest are counted), and say so in the status line."""
        self._emulator_failures += 1
        if self._emulator_failures == 1:
            log.error("the terminal emulator failed in %s", self.session_title, exc_info=error)

    # -- scrollback ------------------------------------------------------------------------

    def scroll_back(self, lines: int) -> None:
        """Scroll `lines` back (or forward, when negative): through tmux's history for a pane
        on a tmux session, else through the emulator's own."""
        view = self.view
        if lines > 0 and view.archive is None and self.attachment.tmux_session is not None:
            self._want_history(lines)
        else:
            view.scroll_history(lines)

    def on_terminal_view_history_wanted(self, message: TerminalView.HistoryWanted) -> None:
        message.stop()
        if self.attachment.tmux_session is not None:
            self._want_history(message.lines)

    def _want_history(self, lines: int) -> None:
        if self._history is None:
            self._set_note("no scrollback: this pane cannot read tmux's history")
            return
        self.run_worker(self._load_history(lines, self._history), group="history", exclusive=True)

    async def _load_history(self, lines: int, read: ReadHistory) -> None:
        """Read tmux's history of the session, emulate it at the pane's size (in a thread:
        10,000 lines take a while), and scroll `lines` back through it."""
        self._set_note("reading tmux's history…")
        live = self.emulator
        archive = Emulator(live.columns, live.lines, scrollback=self._scrollback)
        try:
            captured = await read(self.attachment, self._scrollback)
            await asyncio.to_thread(archive.feed, capture_as_stream(captured))
        except RoostError as error:
            if not self.emulator.history:
                self._set_note(f"no scrollback: {error}")
                return
            # A shell whose container has no tmux runs bare: its history is the pane's own.
            self._set_note(f"the pane's own scrollback ({error})")
            self.view.scroll_history(lines, ask_for_more=False)
            return
        except Exception:  # a bug costs the scrollback, never the pane
            log.exception("reading tmux's history of %s failed", self.session_title)
            self._set_note("no scrollback: it could not be read (the log says why)")
            return
        self.view.show_archive(archive, lines)
        self._set_note("" if self.view.archive else "tmux holds no lines above the screen")

    # -- rewind ----------------------------------------------------------------------------

    def mark(self, kind: str, label: str = "") -> None:
        """A marker on the pane's recording now (what the agent in it did: `needs you`...)."""
        if self.recorder is not None:
            self.recorder.mark(kind, label[:80])

    @property
    def rewinding(self) -> bool:
        return self.timeline.display

    @property
    def rewound(self) -> Timeline | None:
        """The recording being rewound through, once read."""
        return self._rewind

    def rewind(self) -> None:
        """Freeze the view on the present and show the timeline of the pane's recording."""
        if self.rewinding:
            self.timeline.focus()
            return
        recorder = self.recorder
        if recorder is None or recorder.path is None:
            why = "recording is off" if self._record is None else "nothing recorded yet"
            self.notify(f"Nothing to rewind: {why}.", title=self.session_title, timeout=4)
            return
        if recorder.error:
            self.notify(f"Cannot rewind: {recorder.error}", title=self.session_title)
            return
        present = Emulator(self.emulator.columns, self.emulator.lines, scrollback=0)
        present.feed(screen_bytes(self.emulator))
        self.view.show_still(present)
        self.timeline.load(0.0, ())
        self._status_line.display = False  # the timeline takes its row: the size stays
        self.timeline.display = True
        self.timeline.focus()
        recorder.flush()
        self.run_worker(self._load_timeline(recorder.path), group="rewind", exclusive=True)

    async def _load_timeline(self, path: Path) -> None:
        try:
            timeline = await asyncio.to_thread(Timeline.load, path)
        except RecordingError as error:
            self.notify(f"Cannot rewind: {error}", title=self.session_title, severity="error")
            self.leave_rewind()
            return
        if not self.rewinding:
            return
        self._rewind = timeline
        marks = [TimelineMark(mark.time, mark.kind, mark.label) for mark in timeline.markers]
        problem = timeline.index_problem
        note = "" if problem is None else f"index rebuilt: {problem}"
        self.timeline.load(timeline.duration, marks, note=note)

    def on_rewind_timeline_sought(self, message: RewindTimeline.Sought) -> None:
        message.stop()
        if self._rewind is not None:
            self.run_worker(
                self._show_moment(self._rewind, message.seconds), group="rewind", exclusive=True
            )

    async def _show_moment(self, timeline: Timeline, seconds: float) -> None:
        try:
            screen = await asyncio.to_thread(timeline.screen_at, seconds)
        except RecordingError as error:
            self.timeline.note = f"cannot show this moment: {error}"
            self.timeline.refresh()
            return
        if self.rewinding and self._rewind is timeline:
            self.view.show_still(screen)

    def on_rewind_timeline_left(self, message: RewindTimeline.Left) -> None:
        message.stop()
        self.leave_rewind()

    def leave_rewind(self) -> None:
        """Back to the live screen."""
        self._rewind = None
        self.timeline.display = False
        self._status_line.display = True
        self.view.show_still(None)
        self.focus()

    def _set_note(self, note: str) -> None:
        self.note = note
        self._show_status()

    # -- input and size --------------------------------------------------------------------

    def on_terminal_view_typed(self, message: TerminalView.Typed) -> None:
        message.stop()
        if self.note:
            self._set_note("")
        if self.mode is Mode.WATCH:
            if not self._told_watching:
                self._told_watching = True
                self.notify(
                    "Watching: keys are not sent. Leave the pane and press D to drive.",
                    title=self.session_title,
                    timeout=4,
                )
            return
        if self.connection is Connection.LIVE and self.backend is not None:
            TYPING.typed(self, time.monotonic())
            self._echo_due = True
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
            if self._record is not None:
                self.recorder = self._record(self.attachment, self._session_size)
            self.start()
            return
        if self._resize_timer is not None:
            self._resize_timer.stop()
        self._resize_timer = self.set_timer(RESIZE_DEBOUNCE, self._apply_size, name="resize")

    def _apply_size(self) -> None:
        self._resize_timer = None
        size = self._session_size
        if self.view.archive is not None:
            self.view.scrolled_back = 0  # the copy of tmux's history was made at the old size
        self.emulator.resize(size.rows, size.columns)
        self.view.refresh_changes()
        if self.recorder is not None:
            self.recorder.resize(size)
        if self._tap is not None:
            self._tap.resize(size)
        if self.backend is not None and not self.connection.over:
            self.backend.resize(size)

    # -- sharing ---------------------------------------------------------------------------

    @property
    def shown_size(self) -> TerminalSize:
        return TerminalSize(self.emulator.columns, self.emulator.lines)

    def tap(self, stream: ShareStream | None) -> None:
        """Show `stream` what this pane shows from now on (None: stop): the screen as it is,
        then every byte and resize, the output queued and not yet drawn included, so the share
        and the pane agree through reconnects and catching up."""
        self._tap = stream
        if stream is not None:
            stream.resize(self.shown_size)
            stream.output(screen_bytes(self.emulator) + b"".join(self._queue))

    def action_leave(self) -> None:
        self.post_message(self.Left(self))

    # -- status ----------------------------------------------------------------------------

    def _show_badge(self) -> None:
        self.badge.update(BADGES[self.mode])
        self.badge.set_class(self.mode is Mode.WATCH, "-watch")

    def _show_status(self) -> None:
        """The status line, when it changed (called every frame)."""
        parts = [self.session_title, self.attachment.transport.value]
        if self.attachment.shell_session:
            parts.append(f"in tmux session {self.attachment.shell_session}")
        parts.append(self.detail or self.connection.value)
        if self.note:
            parts.append(self.note)
        if self.recorder is not None and self.recorder.error:
            parts.append(f"not recording: {self.recorder.error}")
        if self._emulator_failures:
            parts.append(f"display errors: {self._emulator_failures}, details in the log")
        if self.emulator.title:
            parts.append(self.emulator.title)
        if self.queued >= BEHIND_NOTICE:
            parts.append(f"catching up: {self.queued / (1 << 20):.1f} MiB behind")
        text = " · ".join(parts)
        if text != self._shown_status:
            self._shown_status = text
            # The title comes from the program: never markup. One line high: no layout needed.
            self.status.update(Text(text), layout=False)
            failed = self.connection in (Connection.FAILED, Connection.LOST)
            self.status.set_class(failed, "-failed")

    async def on_unmount(self) -> None:
        if self._frame_timer is not None:
            self._frame_timer.cancel()
        if self.recorder is not None:
            self.recorder.close()
        if self.backend is not None:
            await self.backend.close()
