"""tmux as a correctness oracle for terminal emulators.

`TmuxOracle.render(stream, cols, rows)` feeds a byte stream, unchanged, to a detached tmux pane of
exactly `cols` x `rows` and returns what tmux then holds: every cell (text and attributes), the
cursor, and whether the alternate screen is on. `compare(expected, screen)` lists, readably,
where an emulator's screen disagrees.

The server is private: its own socket in a temporary directory, its own configuration file
(`CONFIG`: no status line, so the pane is the whole window), a UTF-8 locale (tmux measures
character widths with the C library). Sessions are created detached with `-x`/`-y` and no
client ever attaches, so nothing resizes them; `window-size manual` would say so explicitly but
makes tmux 3.3a's server crash at the next `new-session -x -y`, so instead every render checks
`#{pane_width}x#{pane_height}`.

How a stream is fed: the pane runs `sh -c 'stty raw -echo -opost; cat FILE; exec sleep ...'`, so
no byte is translated on the way (no CR added to LF), and `remain-on-exit` keeps a failed pane
visible. FILE ends with an OSC 2 title naming the render; tmux parses a pane's output in order,
so once `#{pane_title}` shows that marker every byte before it has been applied. The oracle polls
for that condition (with a deadline), never sleeps a fixed time.

How the cells are read: `capture-pane -p -e -N` prints each row with SGR sequences (and SO/SI
around line-drawing cells). The text is fed, rows joined by CR LF, to a fresh stock
`pyte.Screen`, so tmux's screen and the emulator's are compared in one cell model: pyte's
`Char` fields plus `dim`, which stock pyte ignores and `_CaptureScreen` adds (SGR 2 sets it,
0 and 22 clear it).

tmux 3.3a's capture-pane stops at the last cell written on each row: cells erased with a
background colour after it (EL, ED, ECH, IL, scrolled-in lines) are not printed, so their colour
would be lost. Two more panes, fed the same stream followed by a probe, reveal them:

- `last_column` writes `X` in the last column of every row, so the row is printed up to there
  and columns 0..cols-2 are exact;
- `shifted` writes `X` in column 0 (so no wide character is split later), deletes that cell (DCH,
  which shifts the row left with its erased cells) and writes `X` in the last column, so the old
  last column is printed at cols-2.

A row that the `plain` pane already prints to its full width is taken from it (`last_column`
would split a wide character in the last two columns). Each probe starts by resetting SGR,
charsets, insert mode, origin mode and margins, which the stream may have left set. Every probed
row must parse to exactly `cols` cells: otherwise tmux and `wcwidth` disagree about a character's
width, and `render` raises `OracleError` rather than guessing.

Normalisations (`normalise`, applied to both sides before comparing), and why:

1. A blank cell (a space without reverse, underline or strikethrough) keeps only its
   background. pyte fills erased cells with every cursor attribute (fg, bold, italics...); tmux
   and xterm keep only the background colour. On a blank cell none of the others can be seen.
2. The cell after a wide character is a placeholder, whatever it holds: pyte stores "", other
   emulators a space or nothing at all.
3. Text is compared in NFC: tmux keeps a base character and its combining marks as received,
   pyte composes them (`e` + U+0301 becomes `é`).
4. Colour names are spelled alike: pyte 0.8.2's table names SGR 105 "bfightmagenta"; it is
   read as "brightmagenta" on both sides, so an emulator may spell it right.
5. The cursor column is clamped to `cols - 1`. After writing in the last column, tmux and pyte
   report x == cols (a pending wrap); xterm keeps x == cols - 1 and a flag; with autowrap off
   tmux reports cols - 1 and pyte cols. The position shown is the same.

Colours need nothing more: tmux stores and prints each colour in the form received (`31`,
`38;5;1`, `38;2;128;0;0`, `91`, `38;5;9` stay distinct), and pyte names each form its own way
(`red`, `cd0000`, `800000`, `brightred`, `ff0000`), so both sides agree whenever the emulator
keeps the form it was given, as xterm does. Line-drawing cells are stored by tmux as ASCII with a
charset flag and printed between SO and SI; the capture parser honours SO/SI, so they come out
as the Unicode characters of pyte's VT100 table (`q` becomes `─`).

Not compared: the underline colour (SGR 58: the cell model has none, and the capture parser
drops it so that stock pyte does not read its values as attributes), `alternate_on` (the
emulator API has no such attribute yet; `OracleScreen` reports it), and the primary screen hidden
behind the alternate one (`primary_text`, text only: the probes reveal the visible screen only).

Known divergences: where tmux departs from xterm, the emulator follows xterm, and `compare`
skips the rows (and cursor) a stream's manifest entry marks (`Differences`); the test module
checks that each mark is still exactly what differs.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import tempfile
import time
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Protocol

import pyte
from wcwidth import wcwidth

from services.terminal.emulator import Cell  # pyte's cell model, plus `dim`
from services.terminal.tmux import TmuxServer, TmuxSocket
from widgets.terminal_view import CursorLike

CONFIG = """\
set -g exit-empty off
set -g status off
set -g remain-on-exit on
set -g history-limit 0
set -g default-shell /bin/sh
setw -g alternate-screen on
"""
"""The server's whole configuration: it stays up between renders, no status line (the pane is the
whole window), dead panes stay, nothing kept above the screen, the alternate screen honoured."""

PANE_COMMAND = "stty raw -echo -opost; cat {path}; exec sleep 1000000"
"""What each pane runs: the file's bytes reach tmux untranslated, then the pane idles."""

TITLE_COMMAND = "stty raw -echo -opost; cat {path}; exec cat"
"""The pane that reads a title: after the file, what is typed into the pane is played too."""
_PUSH_TITLE, _POP_TITLE = b"\x1b[22;2t", b"\x1b[23;2t"

_PROBE_RESET = "\x1b[0m\x1b(B\x1b)B\x0f\x1b[4l\x1b[?6l\x1b[r"
"""Default SGR, ASCII in G0 and G1 with G0 selected, replace mode, origin mode off, no margins."""

_STATE_FORMAT = (
    "#{pane_width},#{pane_height},#{cursor_x},#{cursor_y},#{cursor_flag},#{alternate_on}"
)


def _probes(cols: int, rows: int) -> dict[str, str]:
    """What each of the three panes gets after the stream (see the module docstring)."""
    every_row = range(1, rows + 1)
    return {
        "plain": "",
        "last_column": _PROBE_RESET + "".join(f"\x1b[{y};{cols}HX" for y in every_row),
        "shifted": _PROBE_RESET
        + "".join(f"\x1b[{y};1HX\x1b[{y};1H\x1b[P\x1b[{y};{cols}HX" for y in every_row),
    }


class OracleError(RuntimeError):
    """tmux could not render a stream, or its answer cannot be read as cells."""


Grid = tuple[tuple[Cell, ...], ...]
"""Rows of cells, `rows` x `cols`."""


@dataclass(frozen=True)
class CursorState:
    x: int
    y: int
    hidden: bool


@dataclass(frozen=True)
class OracleScreen:
    """What tmux holds after a stream."""

    cols: int
    rows: int
    lines: Grid
    """The visible screen (the alternate one when it is on)."""
    cursor: CursorState
    alternate_on: bool
    primary_text: tuple[str, ...] | None
    """While the alternate screen is on: the text of the primary screen behind it."""

    def text(self) -> list[str]:
        return grid_text(self.lines)


class CharLike(Protocol):
    """What `compare` reads from an emulator's cell (`dim` too, when the cell has it)."""

    @property
    def data(self) -> str: ...
    @property
    def fg(self) -> str: ...
    @property
    def bg(self) -> str: ...
    @property
    def bold(self) -> bool: ...
    @property
    def italics(self) -> bool: ...
    @property
    def underscore(self) -> bool: ...
    @property
    def strikethrough(self) -> bool: ...
    @property
    def reverse(self) -> bool: ...
    @property
    def blink(self) -> bool: ...


class RowLike(Protocol):
    def __getitem__(self, x: int, /) -> CharLike: ...


class RowsLike(Protocol):
    def __getitem__(self, y: int, /) -> RowLike: ...


class EmulatorScreen(Protocol):
    """A `pyte.Screen`-like screen: `buffer[y][x]` and `cursor`."""

    @property
    def buffer(self) -> RowsLike: ...
    @property
    def cursor(self) -> CursorLike: ...


class TmuxOracle:
    """A private tmux server (its own socket, no user configuration) that renders streams.

    One server serves many renders; each render uses three sessions of its own, killed after.
    """

    def __init__(self, *, executable: str = "tmux", timeout: float = 20.0) -> None:
        # A short directory: socket paths are limited to about 100 bytes.
        self.directory = Path(tempfile.mkdtemp(prefix="roost-oracle-"))
        self.server = TmuxServer(TmuxSocket(str(self.directory / "sock")), executable)
        self.timeout = timeout
        self._config = self.directory / "tmux.conf"
        self._config.write_text(CONFIG)
        self._renders = 0
        # tmux measures characters with the C library, which needs a UTF-8 locale.
        self._env = {**os.environ, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
        self._env.pop("TMUX", None)

    def __enter__(self) -> TmuxOracle:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Kill the server and remove its directory."""
        subprocess.run(
            self.server.argv("kill-server"), capture_output=True, check=False, env=self._env
        )
        shutil.rmtree(self.directory, ignore_errors=True)

    def render(self, stream: bytes, cols: int, rows: int) -> OracleScreen:
        """Feed `stream` to a `cols` x `rows` pane and read back what tmux holds."""
        if cols < 3 or rows < 1:
            raise ValueError(f"the oracle needs at least 3x1 cells, not {cols}x{rows}")
        self._renders += 1
        name = f"r{self._renders}"
        panes: dict[str, str] = {}
        try:
            for kind, probe in _probes(cols, rows).items():
                panes[kind] = self._start(f"{name}{kind}", stream + probe.encode(), cols, rows)
            self._wait_for_markers(name, panes)
            state = self._tmux("display-message", "-p", "-t", panes["plain"], _STATE_FORMAT)
            width, height, x, y, cursor_shown, alternate = map(int, state.split(","))
            if (width, height) != (cols, rows):
                raise OracleError(f"the pane is {width}x{height}, not {cols}x{rows}")
            captured = {kind: self._capture(pane, cols, rows) for kind, pane in panes.items()}
            primary = None
            if alternate:
                grid, _ = self._capture(panes["plain"], cols, rows, "-a")
                primary = tuple(line.rstrip() for line in grid_text(grid))
        finally:
            for kind, pane in panes.items():
                self._tmux("kill-session", "-t", pane, check=False)
                (self.directory / f"{name}{kind}.bin").unlink(missing_ok=True)
        return OracleScreen(
            cols=cols,
            rows=rows,
            lines=_merge(captured["plain"], captured["last_column"], captured["shifted"], cols),
            cursor=CursorState(x, y, hidden=not cursor_shown),
            alternate_on=bool(alternate),
            primary_text=primary,
        )

    def title(self, stream: bytes, cols: int, rows: int) -> str:
        """The window title tmux holds after `stream` (OSC 0/2 and the title stack).

        The end marker is a title itself, so it goes on top of a pushed one; once it shows,
        the pop is typed into the pane, whose `cat` plays it, and the title it brings back
        is read. tmux's first title is the host name: the stream starts by setting none.
        """
        self._renders += 1
        session = f"t{self._renders}"
        stream = b"\x1b]2;\x07" + stream + _PUSH_TITLE
        pane = self._start(session, stream, cols, rows, TITLE_COMMAND)
        try:
            self._wait_for_markers(session, {"": pane})
            self._tmux("send-keys", "-t", pane, "-H", *(f"{byte:02x}" for byte in _POP_TITLE))
            deadline = time.monotonic() + self.timeout
            while True:
                title = self._tmux("display-message", "-p", "-t", pane, "#{pane_title}")[:-1]
                if title != _marker(session):
                    return title
                if time.monotonic() > deadline:
                    raise OracleError("tmux did not pop the title typed into the pane")
                time.sleep(0.005)
        finally:
            self._tmux("kill-session", "-t", pane, check=False)
            (self.directory / f"{session}.bin").unlink(missing_ok=True)

    def _start(
        self, session: str, stream: bytes, cols: int, rows: int, command: str = PANE_COMMAND
    ) -> str:
        """Start a detached session whose pane plays `stream`; returns the pane id."""
        path = self.directory / f"{session}.bin"
        path.write_bytes(stream + f"\x1b]2;{_marker(session)}\x07".encode())
        command = command.format(path=shlex.quote(str(path)))
        return self._tmux(
            "new-session",
            "-d",
            "-P",
            "-F",
            "#{pane_id}",
            "-s",
            session,
            "-x",
            str(cols),
            "-y",
            str(rows),
            "sh",
            "-c",
            command,
        ).strip()

    def _wait_for_markers(self, name: str, panes: Mapping[str, str]) -> None:
        """Wait until every pane's title is its marker: tmux has then applied all its bytes."""
        expected = {pane: _marker(f"{name}{kind}") for kind, pane in panes.items()}
        deadline = time.monotonic() + self.timeout
        while True:
            listing = self._tmux(
                "list-panes", "-a", "-F", "#{pane_id}\t#{pane_dead}\t#{pane_title}"
            )
            titles = {}
            for line in listing.splitlines():
                pane, dead, title = line.split("\t", 2)
                if pane in expected and dead == "1":
                    raise OracleError(f"the pane playing {expected[pane]} exited early")
                titles[pane] = title
            if all(titles.get(pane) == marker for pane, marker in expected.items()):
                return
            if time.monotonic() > deadline:
                raise OracleError(
                    f"tmux did not reach the end of the stream within {self.timeout:g} s "
                    "(does it end inside an unfinished escape sequence?)"
                )
            time.sleep(0.005)

    def _capture(self, pane: str, cols: int, rows: int, *flags: str) -> tuple[Grid, list[int]]:
        text = self._tmux("capture-pane", "-p", "-e", "-N", *flags, "-t", pane)
        return parse_capture(text, cols, rows)

    def _tmux(self, *args: str, check: bool = True) -> str:
        argv = self.server.argv("-f", str(self._config), *args)
        result = subprocess.run(
            argv,
            capture_output=True,
            encoding="utf-8",
            env=self._env,
            stdin=subprocess.DEVNULL,
            timeout=self.timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise OracleError(f"{shlex.join(argv)} failed: {result.stderr.strip()}")
        return result.stdout


def _marker(session: str) -> str:
    return f"roost-oracle-done-{session}"


def _merge(
    plain: tuple[Grid, list[int]],
    last_column: tuple[Grid, list[int]],
    shifted: tuple[Grid, list[int]],
    cols: int,
) -> Grid:
    """The visible screen from the plain capture and the two probed ones (see the docstring)."""
    (lines, widths), (probed, probed_widths), (moved, moved_widths) = plain, last_column, shifted
    rows = []
    for y, line in enumerate(lines):
        if widths[y] == cols:
            rows.append(line)
            continue
        if probed_widths[y] != cols or moved_widths[y] != cols:
            raise OracleError(
                f"row {y} of a probed capture is not {cols} cells wide: tmux and wcwidth "
                f"disagree about a character's width in {grid_text((probed[y],))[0]!r}"
            )
        rows.append((*probed[y][: cols - 1], moved[y][cols - 2]))
    return tuple(rows)


class _CaptureScreen(pyte.Screen):
    """A stock pyte screen that also keeps SGR 2 (dim), which stock pyte ignores."""

    def __init__(self, columns: int, lines: int) -> None:
        self.dim = False
        self.dim_cells: set[tuple[int, int]] = set()
        super().__init__(columns, lines)

    def select_graphic_rendition(self, *attrs: int) -> None:
        self.dim = _dim_after(self.dim, attrs)
        kept = _without_underline_colour(attrs)
        if kept or not attrs:  # no parameters at all is a reset; none left is nothing
            super().select_graphic_rendition(*kept)

    def draw(self, data: str) -> None:
        # Captured rows never wrap, so everything drawn lies between the two cursor columns.
        y, start = self.cursor.y, self.cursor.x
        super().draw(data)
        for x in range(start, self.cursor.x):
            if self.dim:
                self.dim_cells.add((x, y))
            else:
                self.dim_cells.discard((x, y))


_SGR_WITH_COLONS = re.compile(r"\x1b\[([0-9;]*:[0-9:;]*)m")


def _without_colons(match: re.Match[str]) -> str:
    """An SGR sequence with sub-parameters as stock pyte reads it: tmux prints underline
    styles as `4:n` (21, double, is `4:2`), which are an underline (`4:0` none)."""
    parts = []
    for part in match.group(1).split(";"):
        head, _, style = part.partition(":")
        if head == "4" and style:
            parts.append("24" if style == "0" else "4")
        else:
            parts.append(part)  # tmux prints colours with semicolons
    return "\x1b[" + ";".join(parts) + "m"


def _without_underline_colour(attrs: Sequence[int]) -> list[int]:
    """SGR `attrs` without an underline colour (`58;5;n`, `58;2;r;g;b`, 59), which tmux prints
    and stock pyte would read as attributes (2 dim, 5 blink...); the cell model has none."""
    kept: list[int] = []
    index = 0
    while index < len(attrs):
        attr = attrs[index]
        size = 1
        if attr in (38, 48, 58) and index + 1 < len(attrs):
            size = {5: 3, 2: 5}.get(attrs[index + 1], 2)  # the colour's values come along
        if attr not in (58, 59):
            kept.extend(attrs[index : index + size])
        index += size
    return kept


def _dim_after(dim: bool, attrs: Sequence[int]) -> bool:
    """Whether text is dim after SGR `attrs`; colour parameters (38;5;2...) are skipped."""
    if not attrs:
        return False
    index = 0
    while index < len(attrs):
        attr = attrs[index]
        if attr in (38, 48, 58) and index + 1 < len(attrs):
            index += {5: 3, 2: 5}.get(attrs[index + 1], 2)
            continue
        if attr in (0, 22):
            dim = False
        elif attr == 2:
            dim = True
        index += 1
    return dim


def parse_capture(text: str, cols: int, rows: int) -> tuple[Grid, list[int]]:
    """Cells from `capture-pane -p -e` output, and how many cells each row printed."""
    lines = _SGR_WITH_COLONS.sub(_without_colons, text).split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if len(lines) != rows:
        raise OracleError(f"capture-pane printed {len(lines)} rows, not {rows}")
    screen = _CaptureScreen(cols, rows)
    stream = pyte.Stream(screen)
    # Outside its UTF-8 mode pyte honours SO/SI, which tmux prints around line-drawing cells; the
    # text is already decoded, so nothing else changes.
    stream.use_utf8 = False
    widths = []
    for y, line in enumerate(lines):
        if y:
            stream.feed("\r\n")
        stream.feed(line)
        widths.append(screen.cursor.x)
    grid = tuple(
        tuple(_cell(screen.buffer[y][x], (x, y) in screen.dim_cells) for x in range(cols))
        for y in range(rows)
    )
    return grid, widths


def _cell(char: CharLike, dim: bool) -> Cell:
    return Cell(
        data=char.data,
        fg=char.fg,
        bg=char.bg,
        bold=char.bold,
        italics=char.italics,
        underscore=char.underscore,
        strikethrough=char.strikethrough,
        reverse=char.reverse,
        blink=char.blink,
        dim=dim,
    )


def emulator_grid(screen: EmulatorScreen, cols: int, rows: int) -> Grid:
    """An emulator's screen as cells; `dim` is read when its cells have it, else False."""
    return tuple(
        tuple(
            _cell(char, bool(getattr(char, "dim", False)))
            for char in (screen.buffer[y][x] for x in range(cols))
        )
        for y in range(rows)
    )


_PLACEHOLDER = Cell("")
_COLOUR_SPELLINGS = {"bfightmagenta": "brightmagenta"}


def normalise(grid: Grid) -> Grid:
    """Cells as compared: see "Normalisations" in the module docstring."""
    return tuple(_normalise_row(row) for row in grid)


def _normalise_row(row: Sequence[Cell]) -> tuple[Cell, ...]:
    cells = []
    after_wide = False
    for cell in row:
        if after_wide:
            cells.append(_PLACEHOLDER)
            after_wide = False
            continue
        data = unicodedata.normalize("NFC", cell.data)
        after_wide = bool(data) and wcwidth(data[0]) == 2
        fg = _COLOUR_SPELLINGS.get(cell.fg, cell.fg)
        bg = _COLOUR_SPELLINGS.get(cell.bg, cell.bg)
        if data == " " and not (cell.reverse or cell.underscore or cell.strikethrough):
            cells.append(Cell(" ", bg=bg))
        else:
            cells.append(cell._replace(data=data, fg=fg, bg=bg))
    return tuple(cells)


def grid_text(grid: Grid) -> list[str]:
    """Each row as text; a wide character's placeholder adds nothing."""
    return ["".join(cell.data for cell in row) for row in grid]


def normalised_cursor(cursor: CursorLike, cols: int) -> tuple[int, int, bool]:
    return min(cursor.x, cols - 1), cursor.y, cursor.hidden


_FIELDS = Cell._fields[1:]


@dataclass(frozen=True)
class Differences:
    """Which rows, and whether the cursor, differ from tmux's screen."""

    rows: frozenset[int]
    cursor: bool


def differences(expected: OracleScreen, screen: EmulatorScreen) -> Differences:
    want = normalise(expected.lines)
    got = normalise(emulator_grid(screen, expected.cols, expected.rows))
    return Differences(
        rows=frozenset(y for y in range(expected.rows) if want[y] != got[y]),
        cursor=normalised_cursor(expected.cursor, expected.cols)
        != normalised_cursor(screen.cursor, expected.cols),
    )


def compare(
    expected: OracleScreen,
    screen: EmulatorScreen,
    *,
    limit: int = 12,
    allowed: Differences = Differences(frozenset(), cursor=False),
) -> list[str]:
    """Where `screen` differs from tmux's, as readable lines; empty when they agree.

    At most `limit` rows are described; each differing row shows both texts and its differing
    cells, runs of neighbouring cells with the same difference merged. The rows and cursor in
    `allowed` (a known divergence) are not compared.
    """
    want = normalise(expected.lines)
    got = normalise(emulator_grid(screen, expected.cols, expected.rows))
    report = []
    rows_differing = [
        y for y in range(expected.rows) if want[y] != got[y] and y not in allowed.rows
    ]
    for y in rows_differing[:limit]:
        report.append(f"row {y}:")
        report.append(f"  tmux:     {grid_text((want[y],))[0]!r}")
        report.append(f"  emulator: {grid_text((got[y],))[0]!r}")
        report.extend(f"    {run}" for run in _cell_differences(want[y], got[y]))
    if len(rows_differing) > limit:
        report.append(f"... and {len(rows_differing) - limit} more rows differ")
    tmux_cursor = normalised_cursor(expected.cursor, expected.cols)
    emulator_cursor = normalised_cursor(screen.cursor, expected.cols)
    if tmux_cursor != emulator_cursor and not allowed.cursor:
        report.append(
            f"cursor: tmux {_describe_cursor(tmux_cursor)}, "
            f"emulator {_describe_cursor(emulator_cursor)}"
        )
    return report


def _describe_cursor(cursor: tuple[int, int, bool]) -> str:
    x, y, hidden = cursor
    return f"x={x} y={y} {'hidden' if hidden else 'shown'}"


def _cell_differences(want: Sequence[Cell], got: Sequence[Cell], limit: int = 8) -> list[str]:
    """Runs of neighbouring cells that differ in the same way, text differences joined."""
    runs: list[tuple[int, int, tuple[str, ...], str, str]] = []
    for x, (expected, actual) in enumerate(zip(want, got, strict=True)):
        if expected == actual:
            continue
        attributes = tuple(
            f"{field} {getattr(expected, field)!r} != {getattr(actual, field)!r}"
            for field in _FIELDS
            if getattr(expected, field) != getattr(actual, field)
        )
        texts = ("", "") if expected.data == actual.data else (expected.data, actual.data)
        if (
            runs
            and runs[-1][1] == x - 1
            and runs[-1][2] == attributes
            and bool(runs[-1][3]) == bool(texts[0] or texts[1])
        ):
            start, _, _, tmux_text, emulator_text = runs[-1]
            runs[-1] = (start, x, attributes, tmux_text + texts[0], emulator_text + texts[1])
        else:
            runs.append((x, x, attributes, *texts))
    lines = []
    for start, end, attributes, tmux_text, emulator_text in runs[:limit]:
        what = [f"text {tmux_text!r} != {emulator_text!r}"] if tmux_text or emulator_text else []
        span = f"x={start}" if start == end else f"x={start}..{end}"
        lines.append(f"{span}: {', '.join([*what, *attributes])} (tmux != emulator)")
    if len(runs) > limit:
        lines.append(f"... and {len(runs) - limit} more differences")
    return lines
