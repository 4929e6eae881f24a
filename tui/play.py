"""`roost play FILE`: a recording in a pane-like view, moved through with the rewind timeline.

The screen of each moment comes from `playback.Timeline` (a keyframe and a short replay, off the
event loop), drawn still by a `TerminalView`; the timeline's keys move (a second, a marker, the
start), `space` plays on from where it is in real time, and end or escape quits.
"""

from __future__ import annotations

import asyncio
import time
from typing import ClassVar

from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.timer import Timer

from services.terminal.emulator import Emulator
from services.terminal.playback import RecordingError, Timeline
from widgets.rewind_timeline import RewindTimeline, TimelineMark
from widgets.terminal_view import TerminalView

PLAY_TICK = 0.1
"""Seconds between two screens while playing."""


class PlayApp(App[None]):
    """One recording, still at a moment or playing."""

    CSS = """
    TerminalView { height: 1fr; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "space", "play", "Play/pause", id="play.play", tooltip="Play on from here, or stop"
        ),
    ]

    def __init__(self, timeline: Timeline, at: float) -> None:
        super().__init__()
        self.recording = timeline
        self.start_at = at
        self.view = TerminalView(Emulator(timeline.columns, timeline.rows, scrollback=0))
        self.timeline = RewindTimeline()
        self._playing: Timer | None = None
        self._played_from = (0.0, 0.0)
        """(monotonic time, position) when playing started."""

    def compose(self) -> ComposeResult:
        yield self.view
        yield self.timeline

    def on_mount(self) -> None:
        self.title = f"roost play {self.recording.path.name}"
        recording = self.recording
        marks = [TimelineMark(mark.time, mark.kind, mark.label) for mark in recording.markers]
        problem = recording.index_problem
        note = "" if problem is None else f"index rebuilt: {problem}"
        self.timeline.load(recording.duration, marks, note=note)
        self.timeline.focus()
        self.timeline.move_to(self.start_at)

    async def on_rewind_timeline_sought(self, message: RewindTimeline.Sought) -> None:
        self.run_worker(self._show(message.seconds), group="seek", exclusive=True)

    async def _show(self, seconds: float) -> None:
        try:
            screen = await asyncio.to_thread(self.recording.screen_at, seconds)
        except RecordingError as error:
            self.timeline.note = str(error)
            self.timeline.refresh()
            return
        self.view.show_still(screen)

    def on_rewind_timeline_left(self, message: RewindTimeline.Left) -> None:
        self.exit()

    def action_play(self) -> None:
        if self._playing is not None:
            self._playing.stop()
            self._playing = None
            return
        self._played_from = (time.monotonic(), self.timeline.position)
        self._playing = self.set_interval(PLAY_TICK, self._tick, name="play")

    def _tick(self) -> None:
        started, position = self._played_from
        seconds = position + time.monotonic() - started
        self.timeline.move_to(seconds)
        if seconds >= self.recording.duration and self._playing is not None:
            self._playing.stop()
            self._playing = None
