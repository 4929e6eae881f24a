"""Recording a pane's output as asciicast v2 files, so `asciinema play FILE` replays it.

A `Recorder` follows one attached pane: the pane hands it every chunk it reads (`output`) and
every change of size (`resize`), and `close`s it when it detaches. The file, named after the
start time (UTC) and the pane (`20261121-101500-alpha-main.cast`), is created on the first
output, so a pane that never printed leaves nothing behind. It is private (0600, in a 0700
directory): terminal output can hold secrets.

The format (https://docs.asciinema.org/manual/asciicast/v2/) is one JSON header line, then one
`[seconds, code, data]` line per event, seconds counted from the header's start. Output is
decoded with an incremental UTF-8 decoder, as the emulator decodes it, so a character split
across chunks comes out whole and a replay shows what the pane showed.

The pane calls `output` for every chunk, up to megabytes a second, so the hot path only
decodes, escapes and appends to a buffered file, flushed when a write comes at least
`FLUSH_INTERVAL` after the last flush, and on close; nothing is fsynced. A recording must never
break the pane: an I/O error (disk full, directory gone) is logged once, stops the recorder, and
is kept in `error` for the UI to show.

The index: next to each part, `NAME.cast.index` (JSON lines, docs/protocol.md §5) holds
keyframes, each the emulator's state (`snapshot.screen_bytes`) at a place in the part, so a seek
restores the nearest one and replays forward from there, and markers (attach, resize,
reconnect...) for the timeline. The recorder has no emulator of its own (that would emulate
every byte twice): the pane, whose emulator is fed the same output, hands over a keyframe when
`keyframe_due` says one is wanted and its emulator has caught up with everything recorded. One
is wanted after every `KEYFRAME_BYTES` of output: what a seek costs is the output it replays
from the keyframe before it, and tests/perf/bench_rewind.py chose the figure. A new part wants
one at once (it would otherwise replay from a blank screen).

Size rule: every recording in the directory shares one budget, `limit_bytes`; the indexes
count toward it (a part ends when its file and its index together reach the part's share).

- A recording is written in parts of `limit_bytes // PARTS_PER_LIMIT` (a part ends with the
  event that reaches its share, so it passes it by less than one chunk); the next output goes
  to a new file (`...-part2.cast`) with its own header at the current size, so older parts can
  be deleted alone. Each part plays on its own; it starts on a blank screen, so a full-screen
  program shows whole only once it redraws.
- The recorders of a directory in this process keep one running total of its `.cast` files,
  taken from a scan of the directory when a part is created and grown by each write. When it
  passes the limit, the directory is scanned again and files are deleted, oldest (last
  modified) first, until the total is at most `PRUNE_TO` of the limit (so that the next scan
  is a good while off): first the files no recorder here is writing (finished recordings,
  older parts, a crashed roost's files), then, only if nothing else is left, other panes'
  current parts (those panes continue in a new part). The file being written is never
  deleted; if it alone is over the limit, it ends and the next output starts a new part.
- Only `.cast` files and their `.cast.index` files count, and only they are ever deleted (an
  index goes with its recording; one whose recording is gone goes first). Bytes other
  recorders still hold in their buffers are not seen by a scan, so the directory can pass the
  limit by up to two write buffers (`WRITE_BUFFER`, the part's and its index's) per recording
  pane until the next scan.
"""

from __future__ import annotations

import codecs
import contextlib
import errno
import json
import logging
import os
import re
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from services.terminal.backend import TerminalSize

log = logging.getLogger(__name__)

SUFFIX = ".cast"
INDEX_SUFFIX = ".cast.index"
INDEX_VERSION = 1
MAX_WAITING_MARKS = 64
"""Markers kept for a part not begun yet (a pane that never printed: its attaches)."""
KEYFRAME_BYTES = 64 << 10
"""Recorded bytes between keyframes: a seek replays at most this much. tests/perf/bench_rewind.py
(an hour of a busy agent at 120x40, 12 KiB/s, 42 MiB; 300 random seeks; a 2-core machine
shared with other test runs): at 64 KiB, a keyframe every ~6 s there, seeks took 12 ms at the
median and 51 ms at worst on the quietest run (p95 29 ms), up to 130 ms when the machine ran
at half speed, for an index of 5-6% of the recording. 128 KiB doubled the worst case (past
100 ms even on the quiet run); 32 KiB doubled the index for no seek that needed it."""
PARTS_PER_LIMIT = 4
PRUNE_TO = 7 / 8
FLUSH_INTERVAL = 0.5
"""A write this long after the last flush flushes: while a pane prints, the file lags it by
about this much; the last output before a pane goes quiet waits for its next write or close."""
WRITE_BUFFER = 64 * 1024
MAX_HEADER = 4096
"""Longest first line `list_recordings` reads for the header."""
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_encode = json.JSONEncoder(ensure_ascii=False).encode
"""JSON text; control characters are escaped, the rest stays UTF-8 (smaller than `\\uXXXX`)."""


@dataclass(frozen=True)
class Recording:
    """One recording file, as `list_recordings` found it."""

    path: Path
    size: int
    started_at: datetime
    """The header's timestamp (UTC); the file's modification time when it has none."""
    title: str
    """The header's title; the file name without `.cast` when it has none."""


def index_path(recording: Path) -> Path:
    """Where the index of `recording` (a part) is kept."""
    return recording.with_name(recording.name.removesuffix(SUFFIX) + INDEX_SUFFIX)


def list_recordings(directory: Path) -> list[Recording]:
    """The `.cast` files in `directory`, newest first; none when it does not exist. Raises
    OSError when it cannot be read."""
    recordings = []
    for path, size, modified_ns in _scan(directory):
        if not path.name.endswith(SUFFIX):
            continue
        header = _read_header(path)
        title = header.get("title")
        recordings.append(
            Recording(
                path=path,
                size=size,
                started_at=_start_time(header.get("timestamp"), modified_ns),
                title=title if isinstance(title, str) and title else path.stem,
            )
        )
    recordings.sort(key=lambda recording: (recording.started_at, recording.path), reverse=True)
    return recordings


def _start_time(timestamp: object, modified_ns: int) -> datetime:
    if isinstance(timestamp, int | float) and not isinstance(timestamp, bool):
        try:
            return datetime.fromtimestamp(timestamp, UTC)
        except (OverflowError, ValueError, OSError):
            pass  # not a time: the file's own is the next best
    return datetime.fromtimestamp(modified_ns / 1e9, UTC)


class Recorder:
    """Records one pane into `directory`; see the module docstring for the files it makes.

    One recorder is used from one thread at a time; recorders of one directory may be in
    different threads.
    """

    def __init__(
        self,
        directory: Path,
        *,
        name: str,
        size: TerminalSize,
        title: str,
        limit_bytes: int,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        keyframe_bytes: int | None = None,
    ) -> None:
        if limit_bytes < 1:
            raise ValueError(f"a recording limit must be positive, not {limit_bytes}")
        # Absolute, so every recorder of the directory names its files the same way.
        self.directory = directory.absolute()
        self.title = title
        self.limit_bytes = limit_bytes
        self.part_limit = max(1, limit_bytes // PARTS_PER_LIMIT)
        self.keyframe_bytes = keyframe_bytes or KEYFRAME_BYTES
        self.error: str | None = None
        """Why recording stopped, when an I/O error stopped it."""
        self._size = size
        self._clock = clock
        self._wall_clock = wall_clock
        self._started = wall_clock()
        self._stem = f"{time.strftime('%Y%m%d-%H%M%S', time.gmtime(self._started))}-"
        self._stem += _UNSAFE.sub("-", name).strip("-.")[:80] or "pane"
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._stopped = False
        self._file: BinaryIO | None = None
        self._index: BinaryIO | None = None
        self._since_keyframe = 0
        """Output bytes (as written) since the part's last keyframe."""
        self._part_lines = 0
        self._marks: list[tuple[float, str, str]] = []
        """Markers made before the part they belong to began: (clock, kind, label)."""
        self._path: Path | None = None
        self._shelf: _Shelf | None = None
        self._part = 0
        self._part_start = clock()
        self._part_bytes = 0
        self._flushed_at = self._part_start
        # Set when the current part must end at the next event: it was deleted to keep the
        # directory under its limit, or alone passes the limit.
        self._end_part_soon = False

    @property
    def path(self) -> Path | None:
        """The file written last (the current part), None before the first output."""
        return self._path

    def output(self, data: bytes) -> None:
        """Record a chunk of the pane's output; never raises."""
        if self._stopped:
            return
        text = self._decoder.decode(data)
        if text:
            self._event("o", text)

    def resize(self, size: TerminalSize) -> None:
        """Record that the pane's terminal is now `size`; never raises."""
        if self._stopped or size == self._size:
            return
        self._size = size
        # Before a part's first event the size goes in its header instead.
        if self._file is not None:
            self._event("r", f"{size.columns}x{size.rows}")
            self.mark("resize", f"{size.columns}x{size.rows}")

    @property
    def keyframe_due(self) -> bool:
        """Whether the index wants a keyframe now (see the module docstring)."""
        return self._index is not None and self._since_keyframe >= self.keyframe_bytes

    def keyframe(self, state: bytes) -> None:
        """Index `state`: the emulator's state (`screen_bytes(..., partial_character=False)`)
        after exactly the output recorded so far; never raises."""
        if self._stopped or self._index is None or self._file is None:
            return
        entry = {
            "t": round(self.elapsed(), 6),
            "offset": self._file.tell(),
            "line": self._part_lines + 1,
            "size": [self._size.columns, self._size.rows],
            "keyframe": state.decode(errors="replace"),
        }
        self._since_keyframe = 0
        self._write_index(entry)

    def mark(self, kind: str, label: str = "") -> None:
        """A marker on the timeline now (`kind`: attach, resize, reconnect...); never raises.
        Before the first output it waits for the part to begin."""
        if self._stopped:
            return
        if self._index is None:
            if len(self._marks) < MAX_WAITING_MARKS:
                self._marks.append((self._clock(), kind, label))
            return
        self._write_index({"t": round(self.elapsed(), 6), "mark": kind, "label": label})

    def elapsed(self) -> float:
        """Seconds into the current part: the time an event written now would carry."""
        return self._clock() - self._part_start

    def flush(self) -> None:
        """Put what is buffered on the disk (before the file is read back); never raises."""
        for handle in (self._file, self._index):
            if handle is None:
                continue
            try:
                handle.flush()
            except OSError as error:
                self._fail(f"cannot write {self._path}", error)
                return

    def close(self) -> None:
        """Write what is buffered and close the file; safe to repeat, never raises."""
        if self._stopped:
            return
        text = self._decoder.decode(b"", final=True)
        if text:
            self._event("o", text)
        if not self._stopped:
            self._end_part()
        self._stopped = True

    # -- writing ---------------------------------------------------------------------------

    def _event(self, code: str, data: str) -> None:
        if self._end_part_soon:
            self._end_part_soon = False
            self._end_part()
            if self._stopped:
                return
        now = self._clock()
        if self._file is None and not self._begin_part(now):
            return
        assert self._file is not None and self._shelf is not None
        line = f'[{now - self._part_start:.6f}, "{code}", {_encode(data)}]\n'.encode()
        try:
            self._file.write(line)
            if now - self._flushed_at >= FLUSH_INTERVAL:
                self._file.flush()
                self._flushed_at = now
        except OSError as error:
            self._fail(f"cannot write {self._path}", error)
            return
        self._since_keyframe += len(line)
        self._part_lines += 1
        self._count(len(line))

    def _write_index(self, entry: dict[str, object]) -> None:
        assert self._index is not None
        line = (_encode(entry) + "\n").encode()
        try:
            self._index.write(line)
        except OSError as error:
            self._fail(f"cannot write {self._path}{INDEX_SUFFIX.removeprefix(SUFFIX)}", error)
            return
        self._count(len(line))

    def _count(self, written: int) -> None:
        """Account for bytes just written to the part or its index: the directory's limit,
        then the part's."""
        assert self._shelf is not None
        self._part_bytes += written
        shelf, problem = self._shelf, None
        with shelf.lock:
            shelf.total += written
            if shelf.total > self.limit_bytes:
                problem = self._recount(shelf)
        if problem is not None:
            self._fail(*problem)
        elif self._part_bytes >= self.part_limit:
            self._end_part()

    def _begin_part(self, now: float) -> bool:
        """Create the next part and write its header; False (recording stopped) if it fails."""
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            if stat.S_IMODE(self.directory.stat().st_mode) & 0o077:
                self.directory.chmod(0o700)
            path, handle = self._create_file()
        except OSError as error:
            self._fail(f"cannot create a recording in {self.directory}", error)
            return False
        try:
            index = _open_index(index_path(path))
        except OSError as error:
            handle.close()
            self._fail(f"cannot create a recording in {self.directory}", error)
            return False
        self._file, self._path, self._index = handle, path, index
        self._part += 1
        if self._part > 1:
            self._part_start = now
        header = {
            "version": 2,
            "width": self._size.columns,
            "height": self._size.rows,
            "timestamp": int(self._started if self._part == 1 else self._wall_clock()),
            "title": self.title,
        }
        line = (_encode(header) + "\n").encode()
        index_header = {"roost_index": INDEX_VERSION, "recording": path.name}
        index_line = (_encode(index_header) + "\n").encode()
        try:
            handle.write(line)
            index.write(index_line)
        except OSError as error:
            self._fail(f"cannot write {path}", error)
            return False
        self._part_bytes = len(line) + len(index_line)
        self._part_lines = 1
        # A part after the first starts from the screen the last left: a keyframe at once.
        self._since_keyframe = self.keyframe_bytes if self._part > 1 else 0
        shelf = self._join_shelf(path)
        # A new part is the moment to see what others (or the user) did to the directory.
        with shelf.lock:
            problem = self._recount(shelf)
        if problem is not None:
            self._fail(*problem)
            return False
        marks, self._marks = self._marks, []
        for at, kind, label in marks:
            if self._index is None:
                break  # a tiny part already ended (or recording stopped)
            at = max(0.0, at - self._part_start)
            self._write_index({"t": round(at, 6), "mark": kind, "label": label})
        return True

    def _create_file(self) -> tuple[Path, BinaryIO]:
        """A new file for the next part, never an existing one: two panes with one name that
        start in the same second get `-2`, `-3`..."""
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
        stem = self._stem if self._part == 0 else f"{self._stem}-part{self._part + 1}"
        for candidate in [stem, *(f"{stem}-{n}" for n in range(2, 1000))]:
            path = self.directory / f"{candidate}{SUFFIX}"
            try:
                fd = os.open(path, flags, 0o600)
            except FileExistsError:
                continue
            if self._part == 0:
                self._stem = candidate
            return path, os.fdopen(fd, "wb", buffering=WRITE_BUFFER)
        raise FileExistsError(errno.EEXIST, f"too many recordings named {stem}")

    def _end_part(self) -> None:
        """Flush and close the current part (if any); the next event starts a new one."""
        handle, self._file = self._file, None
        index, self._index = self._index, None
        self._leave_shelf()
        if handle is None:
            return
        for opened in (handle, index):
            try:
                if opened is not None:
                    opened.close()
            except OSError as error:
                self._fail(f"cannot write {self._path}", error)

    def _recount(self, shelf: _Shelf) -> tuple[str, OSError] | None:
        """Take the directory's total from a scan, and when it is over the limit delete the
        oldest files (see the module docstring for which). Called with `shelf.lock` held, so
        a problem is returned for the caller to report once the lock is released."""
        try:
            for handle in (self._file, self._index):
                if handle is not None:
                    handle.flush()
        except OSError as error:
            return f"cannot write {self._path}", error
        try:
            files = _scan(self.directory)
        except OSError as error:
            return f"cannot read {self.directory}", error
        total = sum(size for _, size, _ in files)
        if total > self.limit_bytes:
            target = int(self.limit_bytes * PRUNE_TO)
            sizes = {path: size for path, size, _ in files}
            recordings = [file for file in files if file[0].name.endswith(SUFFIX)]
            oldest_first = sorted(recordings, key=lambda file: (file[2], file[0]))
            orphans = [
                (path, size, 0)
                for path, size, _ in files
                if path.name.endswith(INDEX_SUFFIX)
                and path.with_name(path.name.removesuffix(INDEX_SUFFIX) + SUFFIX) not in sizes
            ]
            idle = [file for file in oldest_first if file[0] not in shelf.live]
            others = [file for file in oldest_first if file[0] in shelf.live]
            for path, size, _ in orphans + idle + others:
                if total <= target:
                    break
                if path == self._path:
                    continue
                index = index_path(path) if path.name.endswith(SUFFIX) else None
                try:
                    path.unlink()
                    if index is not None and index in sizes:
                        index.unlink(missing_ok=True)
                except FileNotFoundError:
                    pass
                except OSError as error:
                    return f"cannot remove {path} to keep recordings under their limit", error
                total -= size + (sizes.get(index, 0) if index is not None else 0)
                writer = shelf.live.get(path)
                if writer is not None:
                    writer._end_part_soon = True
        shelf.total = total
        if total > self.limit_bytes:
            self._end_part_soon = True
        return None

    def _fail(self, what: str, error: OSError) -> None:
        self.error = f"{what} ({error.strerror or error})"
        log.warning("not recording %s: %s", self.title, self.error)
        self._stopped = True
        handle, self._file = self._file, None
        index, self._index = self._index, None
        self._leave_shelf()
        for opened in (handle, index):
            if opened is not None:
                # Already failing: the first error is the one worth reporting.
                with contextlib.suppress(OSError):
                    opened.close()

    def _join_shelf(self, path: Path) -> _Shelf:
        with _shelves_lock:
            shelf = _shelves.setdefault(self.directory, _Shelf())
            with shelf.lock:
                shelf.live[path] = self
        self._shelf = shelf
        return shelf

    def _leave_shelf(self) -> None:
        """Stop counting the current part as being written; a shelf goes with its last file
        (the next recorder to begin a part scans the directory anyway)."""
        shelf, self._shelf = self._shelf, None
        if shelf is None or self._path is None:
            return
        with _shelves_lock, shelf.lock:
            shelf.live.pop(self._path, None)
            if not shelf.live:
                _shelves.pop(self.directory, None)


# -- the shared account of a directory ------------------------------------------------------


class _Shelf:
    """What the recorders writing into one directory share: the running total of its `.cast`
    files, and which files are being written (by which recorder)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.total = 0
        self.live: dict[Path, Recorder] = {}


_shelves: dict[Path, _Shelf] = {}
_shelves_lock = threading.Lock()


def _open_index(path: Path) -> BinaryIO:
    """A part's index, private, emptied: one left by a crash under the new part's name (made
    afresh, so never its own) would describe another recording."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW
    fd = os.open(path, flags, 0o600)
    os.fchmod(fd, 0o600)
    return os.fdopen(fd, "wb", buffering=WRITE_BUFFER)


def _scan(directory: Path) -> list[tuple[Path, int, int]]:
    """(path, size, modification time in ns) of each `.cast` file and index; none if the
    directory is gone."""
    files = []
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return []
    for entry in entries:
        if not entry.name.endswith((SUFFIX, INDEX_SUFFIX)) or entry.name.startswith("."):
            continue
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            info = entry.stat(follow_symlinks=False)
        except FileNotFoundError:
            continue
        files.append((Path(entry.path), info.st_size, info.st_mtime_ns))
    return files


def _read_header(path: Path) -> dict[str, object]:
    """The first line as a JSON object; empty when it is not one or cannot be read."""
    try:
        with path.open("rb") as file:
            line = file.readline(MAX_HEADER)
        header = json.loads(line)
    except (OSError, ValueError, RecursionError):
        return {}
    return header if isinstance(header, dict) else {}
