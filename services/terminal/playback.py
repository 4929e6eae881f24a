"""Seeking in a recording: the screen at any second of an asciicast v2 file, fast.

`Timeline.load(path)` reads a recording's header and its index (`NAME.cast.index`, written by
`recording.Recorder`; docs/protocol.md §5): keyframes, each an emulator's state
(`snapshot.screen_bytes`) with the place in the file it stands for, and markers. `screen_at(t)`
restores the last keyframe at or before `t` in a fresh emulator and replays the events from its
place up to `t`, so a seek costs at most the output between two keyframes
(tests/perf/bench_rewind.py).

Any asciicast v2 file plays, with or without an index: without one, or with one that does not
hold up (not JSON, a keyframe that points outside the file or between two lines, times going
back...), the index is built in memory by one pass over the recording, emulating it and taking a
keyframe every `KEYFRAME_BYTES` of events, and `index_problem` says why the file's was not used
(an index is read, never trusted). A recording that is itself malformed raises `RecordingError`
naming the file, the line and the problem. Everything read is capped: the header and index lines
by `MAX_HEADER` and `MAX_LINE`, the screen by `MAX_SIDE`.
"""

from __future__ import annotations

import json
import logging
import math
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from services.core.errors import RoostError
from services.core.safe_text import printable
from services.terminal.emulator import Emulator, EmulatorError
from services.terminal.recording import (
    INDEX_VERSION,
    KEYFRAME_BYTES,
    MAX_HEADER,
    index_path,
)
from services.terminal.snapshot import screen_bytes

log = logging.getLogger(__name__)

MAX_LINE = 16 << 20
"""Longest line read from a recording or an index (a recorder writes one chunk per line)."""
MAX_SIDE = 2000
"""Widest or tallest screen a recording may ask for."""


class RecordingError(RoostError):
    """A recording that cannot be played: `path`, `line` (1-based; None for the whole file)
    and the problem."""

    def __init__(self, path: Path, line: int | None, problem: str) -> None:
        where = printable(str(path)) if line is None else f"{printable(str(path))}:{line}"
        super().__init__(f"{where}: {problem}")
        self.path = path
        self.line = line
        self.problem = problem


@dataclass(frozen=True)
class Keyframe:
    """The emulator's state (`state`, at `columns` x `rows`) after every event before byte
    `offset` (line `line`) of the recording, at `time` seconds."""

    time: float
    offset: int
    line: int
    columns: int
    rows: int
    state: bytes


@dataclass(frozen=True)
class Marker:
    """Something that happened at `time`: `kind` (attach, resize, reconnect, needs you...)."""

    time: float
    kind: str
    label: str = ""


@dataclass
class Timeline:
    """A recording ready to seek in; see the module docstring."""

    path: Path
    columns: int
    rows: int
    duration: float
    """Seconds to the last event or marker."""
    keyframes: list[Keyframe]
    markers: list[Marker]
    index_problem: str | None = None
    """Why the recording's index was not used (it was rebuilt in memory); None when it was used,
    or when there was none."""
    _times: list[float] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        self._times = [keyframe.time for keyframe in self.keyframes]
        # A marker can come after the last output (an agent answered, nothing printed yet).
        self.duration = max([self.duration, *(marker.time for marker in self.markers)])

    @classmethod
    def load(
        cls, path: Path, *, keyframe_bytes: int = KEYFRAME_BYTES, use_index: bool = True
    ) -> Timeline:
        """The timeline of the recording at `path`; `use_index=False` builds the index even
        when the file has one. Raises RecordingError when the recording is missing,
        unreadable or malformed."""
        try:
            with path.open("rb") as file:
                columns, rows, start = _header(path, file)
                size = file.seek(0, 2)
                first = Keyframe(0.0, start, 2, columns, rows, b"")
                found = _read_index(path, size) if use_index else None
                problem = found if isinstance(found, str) else None
                if isinstance(found, tuple):
                    keyframes, markers = found
                    duration = _last_time(path, file, start, size)
                    return cls(path, columns, rows, duration, [first, *keyframes], markers)
                file.seek(start)
                keyframes, markers, duration = _build(path, file, first, keyframe_bytes)
        except OSError as error:
            raise RecordingError(path, None, error.strerror or str(error)) from error
        return cls(path, columns, rows, duration, keyframes, markers, problem)

    def screen_at(self, seconds: float) -> Emulator:
        """The screen `seconds` into the recording (clamped to it). Raises RecordingError
        when the events after the keyframe used are malformed."""
        keyframe = self.keyframes[max(0, bisect_right(self._times, seconds) - 1)]
        emulator = _restore(keyframe)
        try:
            with self.path.open("rb") as file:
                file.seek(keyframe.offset)
                for _, time, code, data in _events(self.path, file, keyframe.line):
                    if time > seconds:
                        break
                    _apply(emulator, code, data)
        except OSError as error:
            raise RecordingError(self.path, None, error.strerror or str(error)) from error
        return emulator


def screen_text(emulator: Emulator) -> list[str]:
    """The screen as plain text, one string per row, trailing blanks dropped; made printable
    (a recording is outside data)."""
    rows = []
    for y in range(emulator.lines):
        line = emulator.buffer.get(y)
        if line is None:
            rows.append("")
            continue
        text = "".join(line[x].data for x in range(emulator.columns))
        rows.append(printable(text.rstrip()))
    return rows


# -- reading ------------------------------------------------------------------------------


def _header(path: Path, file: BinaryIO) -> tuple[int, int, int]:
    """(columns, rows, offset of the first event) from the header line."""
    line = file.readline(MAX_HEADER + 1)
    if not line:
        raise RecordingError(path, 1, "empty: not an asciicast recording")
    try:
        header = json.loads(line)
    except (ValueError, RecursionError):
        raise RecordingError(path, 1, "the header is not JSON") from None
    if not isinstance(header, dict) or header.get("version") != 2:
        raise RecordingError(path, 1, "not an asciicast v2 header (version 2 expected)")
    columns, rows = header.get("width"), header.get("height")
    if not _side(columns) or not _side(rows):
        raise RecordingError(path, 1, f"the header's width and height must be 1 to {MAX_SIDE}")
    assert isinstance(columns, int) and isinstance(rows, int)
    return columns, rows, file.tell()


def _side(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_SIDE


def _events(path: Path, file: BinaryIO, line_number: int) -> Iterator[tuple[int, float, str, str]]:
    """(line number, time, code, data) of each event from the file's position on."""
    for number, line in enumerate(_lines(file), line_number):
        if not line.strip():
            continue
        if not line.endswith(b"\n") and len(line) > MAX_LINE:
            raise RecordingError(path, number, f"a line longer than {MAX_LINE} bytes")
        try:
            event = json.loads(line)
        except (ValueError, RecursionError):
            if not line.endswith(b"\n"):
                return  # the last line, still being written
            raise RecordingError(path, number, "not JSON") from None
        if (
            not isinstance(event, list)
            or len(event) != 3
            or not isinstance(event[0], int | float)
            or isinstance(event[0], bool)
            or not math.isfinite(event[0])
            or not isinstance(event[1], str)
            or not isinstance(event[2], str)
        ):
            raise RecordingError(path, number, "not an event ([seconds, code, data] expected)")
        yield number, float(event[0]), event[1], event[2]


def _lines(file: BinaryIO) -> Iterator[bytes]:
    while line := file.readline(MAX_LINE + 1):
        yield line


def _apply(emulator: Emulator, code: str, data: str) -> None:
    """Play one event: output, or a resize (`COLSxROWS`); others show nothing."""
    if code == "o":
        try:
            emulator.feed(data.encode())
        except EmulatorError:
            log.exception("the terminal emulator failed on a recording")
    elif code == "r":
        size = _size(data)
        if size is not None:
            emulator.resize(size[1], size[0])


def _size(text: str) -> tuple[int, int] | None:
    columns, _, rows = text.partition("x")
    if not (columns.isdigit() and rows.isdigit()):
        return None
    size = int(columns), int(rows)
    return size if all(1 <= side <= MAX_SIDE for side in size) else None


def _restore(keyframe: Keyframe) -> Emulator:
    emulator = Emulator(keyframe.columns, keyframe.rows, scrollback=0)
    emulator.feed(keyframe.state)
    return emulator


def _build(
    path: Path, file: BinaryIO, first: Keyframe, keyframe_bytes: int
) -> tuple[list[Keyframe], list[Marker], float]:
    """Keyframes and markers by one pass over the events, and the last event's time."""
    emulator = _restore(first)
    keyframes, markers = [first], []
    since, time, offset = 0, 0.0, first.offset
    for number, time, code, data in _events(path, file, first.line):
        _apply(emulator, code, data)
        if code == "r":
            markers.append(Marker(time, "resize", printable(data[:32])))
        elif code == "m":
            markers.append(Marker(time, "marker", printable(data[:80])))
        since += file.tell() - offset  # the event's line, as the recorder counts it
        offset = file.tell()
        if since >= keyframe_bytes:
            since = 0
            state = screen_bytes(emulator, partial_character=False)
            size = emulator.columns, emulator.lines
            keyframes.append(Keyframe(time, offset, number + 1, *size, state))
    return keyframes, markers, time


def _last_time(path: Path, file: BinaryIO, start: int, size: int) -> float:
    """The time of the last complete event, read from the end of the file."""
    window = 1 << 16
    while True:
        begin = max(start, size - window)
        file.seek(begin)
        tail = file.read(size - begin)
        lines = tail.split(b"\n")[1 if begin > start else 0 : -1]
        for line in reversed(lines):
            try:
                event = json.loads(line)
            except (ValueError, RecursionError):
                continue
            if isinstance(event, list) and event and isinstance(event[0], int | float):
                return float(event[0])
        if begin == start or window > MAX_LINE:
            return 0.0
        window *= 4


def _read_index(path: Path, size: int) -> tuple[list[Keyframe], list[Marker]] | str | None:
    """The keyframes and markers of `path`'s index, why it cannot be used, or None when there
    is none."""
    where = index_path(path)
    try:
        file = where.open("rb")
    except FileNotFoundError:
        return None
    with file:
        keyframes: list[Keyframe] = []
        markers: list[Marker] = []
        last = 0.0
        with path.open("rb") as recording:
            for number, line in enumerate(_lines(file), 1):
                if not line.endswith(b"\n"):
                    break  # the last entry, still being written (or cut): the rest is kept
                try:
                    entry = json.loads(line)
                except (ValueError, RecursionError):
                    return f"{where}:{number}: not JSON"
                if not isinstance(entry, dict):
                    return f"{where}:{number}: not an object"
                if number == 1:
                    if entry != {"roost_index": INDEX_VERSION, "recording": path.name}:
                        return f"{where}:1: not the index of {path.name} (version {INDEX_VERSION})"
                    continue
                problem = _index_entry(entry, keyframes, markers, size, recording)
                if problem is None and keyframes and keyframes[-1].time < last:
                    problem = "keyframes out of order"
                if problem is not None:
                    return f"{where}:{number}: {problem}"
                if keyframes:
                    last = keyframes[-1].time
    return keyframes, markers


def _index_entry(
    entry: dict[str, object],
    keyframes: list[Keyframe],
    markers: list[Marker],
    size: int,
    recording: BinaryIO,
) -> str | None:
    """Check one index entry and add it; what is wrong with it, None when nothing is."""
    time = entry.get("t")
    if not isinstance(time, int | float) or isinstance(time, bool) or not 0 <= time < math.inf:
        return "no time"
    if "mark" in entry:
        kind, label = entry.get("mark"), entry.get("label", "")
        if not isinstance(kind, str) or not isinstance(label, str):
            return "a marker without a kind"
        markers.append(Marker(float(time), printable(kind[:32]), printable(label[:80])))
        return None
    offset, line, sides, state = (entry.get(key) for key in ("offset", "line", "size", "keyframe"))
    if not (isinstance(offset, int) and isinstance(line, int) and isinstance(state, str)):
        return "neither a marker nor a keyframe"
    if not (isinstance(sides, list) and len(sides) == 2 and all(map(_side, sides))):
        return "a keyframe without a size"
    if not 0 < offset <= size or line < 2:
        return "a keyframe outside the recording"
    recording.seek(offset - 1)
    if recording.read(1) != b"\n":
        return "a keyframe that is not at the start of a line"
    keyframes.append(Keyframe(float(time), offset, line, sides[0], sides[1], state.encode()))
    return None
