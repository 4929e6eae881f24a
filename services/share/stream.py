"""What one share shows: the session's output as it comes, and its screen for whoever joins.

A `ShareStream` is fed exactly what its source shows (a pane's output and resizes, or the
output of the share's own read-only attach) and keeps an emulator of it at the session's
size. Each viewer has a queue of ALiS frames (`services/share/alis.py`) encoded as the output
comes, its times relative to that viewer's previous frame. A viewer starts with a reset
carrying `screen_bytes` of the emulator (the current screen), and so does one that fell more
than `BACKLOG` bytes behind: its queue is dropped for a fresh snapshot, so a slow browser
costs a bounded amount of memory and still ends up showing the present.

Everything runs on one event loop: a snapshot and the output after it can never interleave.
Output is cut at UTF-8 character boundaries (the player decodes each frame on its own), and
the emulator is fed the same cut, so a snapshot never ends inside a character.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable

from services.share import alis
from services.terminal.backend import TerminalSize
from services.terminal.emulator import Emulator
from services.terminal.snapshot import screen_bytes

log = logging.getLogger(__name__)

BACKLOG = 1 << 20
"""Bytes queued for one viewer past which it gets a fresh snapshot instead."""


class Viewer:
    """One browser's queue of frames; `take()` waits for the next batch."""

    def __init__(self, stream: ShareStream) -> None:
        self._stream = stream
        self._frames: deque[bytes] = deque()
        self._size = 0
        self._stale = True
        """Its queue no longer leads to the present (it has just joined, or fell behind)."""
        self._last = 0
        self._event = 0
        self._ready = asyncio.Event()
        self._ready.set()
        self.ended = False
        self.done = False
        """The end of the stream (EOT) has been taken: nothing follows."""

    def push(self, frame: Callable[[int, int], bytes], now: int) -> None:
        if self._stale or self.ended:
            return
        self._event += 1
        data = frame(self._event, now - self._last)
        self._last = now
        self._frames.append(data)
        self._size += len(data)
        if self._size > BACKLOG:
            self._frames.clear()
            self._size = 0
            self._stale = True
        self._ready.set()

    def end(self) -> None:
        self.ended = True
        self._ready.set()

    async def take(self) -> list[bytes]:
        """The frames queued since the last call (a reset first when it was stale), waiting
        for at least one; after the end, what was left and then EOT, once."""
        await self._ready.wait()
        self._ready.clear()
        if self._stale and not self.ended:
            self._stale = False
            self._frames.clear()
            self._size = 0
            self._event += 1
            self._last = self._stream.now()
            self._frames.append(self._stream.reset_frame(self._event, self._last))
        frames, self._frames, self._size = list(self._frames), deque(), 0
        if self.ended:
            frames.append(alis.EOT)
            self.done = True
        return frames


class ShareStream:
    """One share's source, its emulator and its viewers (see the module docstring)."""

    def __init__(self, size: TerminalSize, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.emulator = Emulator(size.columns, size.rows, scrollback=0)
        self._clock = clock
        self._start = clock()
        self._tail = b""
        self._viewers: set[Viewer] = set()
        self._failures = 0
        self.ended = False

    def now(self) -> int:
        """Microseconds since the stream started (ALiS times)."""
        return int((self._clock() - self._start) * 1_000_000)

    @property
    def viewers(self) -> int:
        return len(self._viewers)

    def output(self, data: bytes) -> None:
        """What the session wrote, as the source shows it."""
        data, self._tail = alis.utf8_split(self._tail + data)
        if not data or self.ended:
            return
        try:
            self.emulator.feed(data)
        except Exception:  # an emulator bug costs late joiners a cell, never the share
            self._failures += 1
            if self._failures == 1:
                log.exception("the share's terminal emulator failed")
        # Nobody answers the program or reads its signals here: drop them as they come.
        self.emulator.take_replies()
        self.emulator.take_signals()
        now = self.now()
        for viewer in self._viewers:
            viewer.push(lambda event, elapsed: alis.output(event, elapsed, data), now)

    def resize(self, size: TerminalSize) -> None:
        if (size.columns, size.rows) == (self.emulator.columns, self.emulator.lines):
            return
        self.emulator.resize(size.rows, size.columns)
        now = self.now()
        for viewer in self._viewers:
            viewer.push(
                lambda event, elapsed: alis.resize(event, elapsed, size.columns, size.rows), now
            )

    def reset_frame(self, event: int, now: int) -> bytes:
        """A reset to the current screen: what a viewer that joined or fell behind starts on."""
        emulator = self.emulator
        return alis.reset(event, now, emulator.columns, emulator.lines, screen_bytes(emulator))

    def join(self) -> Viewer:
        viewer = Viewer(self)
        if self.ended:
            viewer.end()
        else:
            self._viewers.add(viewer)
        return viewer

    def leave(self, viewer: Viewer) -> None:
        self._viewers.discard(viewer)

    def end(self) -> None:
        """The share stopped or the session ended: every viewer gets the end of the stream."""
        self.ended = True
        for viewer in self._viewers:
            viewer.end()
        self._viewers.clear()
