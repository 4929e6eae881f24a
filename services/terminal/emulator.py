"""A terminal emulator built on pyte's `Screen`, made fast and complete enough for agent TUIs.

pyte models the screen well (a grid of immutable `Char`-like cells, and the VT100 operations on
it) but stops short of what a live agent needs, so `Emulator` adds:

- **A parser of its own.** pyte's `Stream` walks every escape sequence through a generator one
  character at a time, and its `Screen.draw` costs a `wcwidth` call and a `namedtuple._replace`
  per character. Here one regular expression splits the input into text runs, complete CSI
  sequences and control characters; text is turned into one code point per column (a table
  filled from pyte's `wcwidth`, `_COLUMNS`) and written a row slice at a time from a cache of
  ready-made cells, and SGR transitions are memoised per attribute set. The result is the same
  grid pyte's own `draw` produces (tests/test_emulator.py checks it against stock pyte).
- **Dense rows, compact scrollback.** A row is a list of exactly `columns` cells and the
  screen a list of rows (pyte's dicts by column and by row cost a dict update per run and a
  re-keying of every row per scroll); a line leaving for the scrollback keeps only its cells
  up to the last one written (`HistoryLine`), read back with `line[x]` all the same.
- **The alternate screen** (modes 47, 1047, 1049; 1049 and 1048 save and restore the cursor),
  **bounded scrollback** (lines scrolled off the top of the main screen, none on the alternate
  screen, as in xterm) without `HistoryScreen`'s per-event wrapping, **synchronized output**
  (mode 2026: `synchronized_since` tells the renderer to hold the frame), bracketed paste, the
  mouse and focus reporting modes, application cursor and keypad modes, the title (OSC 0/2)
  and its stack (`CSI 22 t`, `CSI 23 t`), the bell, DEC line drawing (`ESC ( 0`), `REP`,
  `SU`/`SD`, `CBT`/`CHT`, `SCOSC`/`SCORC`.
- **Signals** of what a coding agent in the pane is doing: desktop notifications (OSC 9, 777
  and 99, parsed by `services/terminal/signals.py`), handed over with title changes and bells
  by `take_signals()`. Only OSC sequences reach that parsing: plain output pays nothing.
- **Change tracking a renderer can trust.** Every line object carries a serial number; `dirty`
  holds the rows whose *content* changed since `take_dirty()`, and a scroll moves those marks
  with the lines instead of marking the whole screen, so a renderer keyed on serials rebuilds
  only what changed.
- **Bounded work and memory on hostile input**: parameters are capped (as pyte does, at 9999),
  repeat counts at one screen, unterminated OSC/DCS strings are dropped past a limit, a cell
  holds at most a few combining marks, one cursor save slot (pyte keeps an unbounded stack),
  and no input raises: unknown or malformed sequences are ignored.

Invariants, whatever the input and the sizes in between (tests/test_emulator.py checks them
over random, generated and mutated streams, fed in arbitrary chunks and resized midway):

- `feed` and `resize` return normally. Should a handler still raise (a bug), only its own
  sequence is lost: the rest of the input is processed, then `EmulatorError` reports it.
- The cursor is inside the screen: `0 <= y < lines` and `0 <= x <= columns`, where
  `x == columns` means the last column was just written and the next character wraps.
- Every cell is on the screen: `buffer` (and the main screen behind the alternate one) holds
  exactly `lines` rows of exactly `columns` cells, each row's cells from its `extent` on its
  own blank. Lines in `history` keep the width they left with; one that comes back is cut to
  the screen.
- `margins`, when set, satisfy `0 <= top < bottom < lines`; `dirty` rows are screen rows.
- `history` holds at most its `maxlen` lines and `history_count >= len(history)`.
- How the input is cut into reads changes nothing (short of the caps on unterminated strings):
  a control character inside a sequence split across reads runs once.

Where pyte and real terminals disagree, this follows xterm and tmux (tmux is the test oracle,
tests/test_terminal_oracle.py); each such fix is named where it is made.
"""

from __future__ import annotations

import codecs
import re
import time
import unicodedata
from collections import deque
from collections.abc import Callable, Iterable
from datetime import datetime
from enum import Enum
from itertools import count
from typing import Any, NamedTuple

from pyte import charsets
from pyte import modes as mo
from pyte.screens import Margins, Screen, wcwidth

from services.core.clock import utc_now
from services.terminal.signals import (
    KittyNotifications,
    SignalKind,
    TerminalSignal,
    osc9_notification,
    osc777_notification,
    signal_text,
)

DEFAULT_SCROLLBACK = 10_000
MAX_PARAMETER = 9999
"""pyte's cap on a numeric parameter; `ESC[99999999H` moves as far as `ESC[9999H`."""
MAX_STRING = 4096
"""Longest OSC/DCS payload kept; longer ones are skipped up to their terminator."""
MAX_TITLE = 256
MAX_COMBINING = 8
"""Combining marks kept on one cell; more are dropped rather than grown without end."""
MAX_REPLIES = 1 << 16
MAX_TITLES = 10
"""Titles kept by XTWINOPS 22 (push), as in xterm; a deeper push drops the oldest."""
SYNC_TIMEOUT = 0.5
"""Seconds a renderer holds a frame for synchronized output before drawing anyway."""
MAX_NOTIFICATIONS = 16
"""Desktop notifications kept until `take_signals()`; a flood keeps the newest."""


class EmulatorError(Exception):
    """A sequence the emulator failed on (a bug); the rest of the input was processed. The
    first failure is the cause (`__cause__`, with its traceback)."""


class Cell(NamedTuple):
    """One cell: pyte's `Char` fields in pyte's order, plus `dim` (SGR 2), which pyte drops."""

    data: str
    fg: str = "default"
    bg: str = "default"
    bold: bool = False
    italics: bool = False
    underscore: bool = False
    strikethrough: bool = False
    reverse: bool = False
    blink: bool = False
    dim: bool = False


_serials = count()


class Line(list[Cell]):
    """A row of the screen: exactly `columns` cells, so a run of text is one slice assignment.
    `serial` identifies it while it lives; `default` is the blank it was made of (a row erased
    or scrolled in with a background colour), which it is padded with when the screen widens.
    Every cell from column `extent` on is `default` itself (what is written moves it right;
    it may be past the last such cell, never before), so the scrollback keeps a line without
    its trailing blanks without looking at them."""

    __slots__ = ("default", "extent", "serial")

    def __init__(self, default: Cell, columns: int) -> None:
        super().__init__((default,) * columns)
        self.default = default
        self.extent = 0
        self.serial = next(_serials)


class HistoryLine:
    """A line in the scrollback, compact: its cells up to the last one that is not its blank
    (a log line rarely fills the screen's width), read back as a `Line` is: `line[x]` for any
    column, its own blank past its end. Keeps the serial it had on the screen."""

    __slots__ = ("cells", "default", "serial")

    def __init__(self, line: Line) -> None:
        default = line.default
        end = min(line.extent, len(line))
        while end and line[end - 1] is default:
            end -= 1
        self.cells = tuple(line[:end])
        self.default = default
        self.serial = line.serial

    def __getitem__(self, x: int) -> Cell:
        cells = self.cells
        return cells[x] if x < len(cells) else self.default

    def __len__(self) -> int:
        return len(self.cells)

    def line(self, columns: int) -> Line:
        """A screen line of `columns` cells with these (a scrollback line coming back)."""
        line = Line(self.default, columns)
        cells = self.cells[:columns]
        line[: len(cells)] = cells
        line.extent = len(cells)
        return line


class Buffer(list[Line]):
    """The screen's rows, exactly `lines` of them: a scroll is one list operation, not a move
    of every row."""

    __slots__ = ()

    def get(self, y: int) -> Line | None:
        """Row `y` to draw: None outside the screen and for a row nothing was drawn on since
        it was made blank in the default colours (as pyte's rows absent from its dict: a view
        draws its own background there, the same for every such row)."""
        if not 0 <= y < len(self):
            return None
        line = self[y]
        return None if line.extent == 0 and line.default.bg == "default" else line


class TerminalCursor:
    """pyte's `Cursor`, holding our `Cell` attributes."""

    __slots__ = ("attrs", "hidden", "x", "y")

    def __init__(self, attrs: Cell) -> None:
        self.x = 0
        self.y = 0
        self.attrs = attrs
        self.hidden = False


class MouseTracking(Enum):
    """What the application asked to be told about the mouse (xterm modes 9, 1000, 1002, 1003)."""

    OFF = 0
    X10 = 9
    PRESS = 1000
    DRAG = 1002
    ANY = 1003


class _Cells(dict[str, Cell]):
    """The cells of one attribute set by character, made on first use; NUL stands for the
    right half of a wide character (see `_COLUMNS`)."""

    __slots__ = ("after", "attrs")

    def __init__(self, attrs: Cell) -> None:
        super().__init__()
        self.attrs = attrs
        self.after: dict[str, _Cells] = {}
        """SGR parameters -> the cells of the attributes they lead to from these."""
        self["\x00"] = attrs._replace(data="")

    def __missing__(self, data: str) -> Cell:
        cell = self[data] = self.attrs._replace(data=data)
        return cell


class _Columns(dict[int, str]):
    """A `str.translate` table that turns text into one code point per screen column: a
    character one column wide stays as it is, a wide one is followed by NUL (its right half),
    a zero-width one is put after SOH (it joins the cell before), an unprintable one goes.
    Filled per character on first sight, with pyte's `wcwidth`, so it agrees with pyte; a
    text run is then written with slice assignments instead of a loop over its characters."""

    __slots__ = ()

    def __missing__(self, code: int) -> str:
        if len(self) > 1 << 16:  # hostile input: every code point once
            self.clear()
        char = chr(code)
        width = wcwidth(char)
        columns = char if width == 1 else char + "\x00" if width == 2 else ""
        if width == 0:
            columns = "\x01" + char
        self[code] = columns
        return columns


_COLUMNS = _Columns()
_CELL_SETS: dict[Cell, _Cells] = {}
"""The cell cache of each set of attributes, shared by every emulator (cells are immutable:
panes showing the same styles share their cells, and a new emulator starts warm)."""
_NUMBERS: dict[str, tuple[int, ...]] = {}
"""CSI parameter strings as numbers (`_numbers`), shared likewise."""


# Printable text (with the CR LF after it), an SGR sequence with the text it styles, another
# complete CSI sequence, CR LF, or one control character: the shapes that make up nearly all
# output, each handled in one step. Anything else at a position (ESC and other sequences, C1
# controls, an incomplete CSI) goes to `_escape`.
_TOKEN = re.compile(
    r"(?P<text>[^\x00-\x1f\x7f-\x9f]+)(?P<newline>\r\n)?"
    r"|\x1b\[(?P<sgr>[0-9;]*)m(?P<styled>[^\x00-\x1f\x7f-\x9f]*)"
    r"|\x1b\[(?P<params>[0-?]*)(?P<inter>[ -/]*)(?P<final>[@-~])"
    r"|(?P<crlf>\r\n)"
    r"|(?P<control>[\x00-\x1a\x1c-\x1f\x7f])"
)
# Group numbers in `_TOKEN` (a match's `lastindex` says which alternative matched).
_TEXT, _NEWLINE, _SGR, _STYLED, _PARAMS, _INTER, _FINAL, _CRLF, _CONTROL = range(1, 10)
assert _TOKEN.groupindex == {
    "text": _TEXT,
    "newline": _NEWLINE,
    "sgr": _SGR,
    "styled": _STYLED,
    "params": _PARAMS,
    "inter": _INTER,
    "final": _FINAL,
    "crlf": _CRLF,
    "control": _CONTROL,
}
_STRING_END = re.compile(r"\x07|\x1b\\|\x9c")
_CSI_BODY = re.compile(r"[0-?]*[ -/]*")

_NAMES = ("black", "red", "green", "brown", "blue", "magenta", "cyan", "white")
"""pyte's colour names (it calls yellow "brown"), kept so cells compare equal to pyte's."""
_PALETTE = tuple(
    f"{r:02x}{g:02x}{b:02x}"
    for r, g, b in (
        *(
            (0x00, 0x00, 0x00),
            (0xCD, 0x00, 0x00),
            (0x00, 0xCD, 0x00),
            (0xCD, 0xCD, 0x00),
            (0x00, 0x00, 0xEE),
            (0xCD, 0x00, 0xCD),
            (0x00, 0xCD, 0xCD),
            (0xE5, 0xE5, 0xE5),
            (0x7F, 0x7F, 0x7F),
            (0xFF, 0x00, 0x00),
            (0x00, 0xFF, 0x00),
            (0xFF, 0xFF, 0x00),
            (0x5C, 0x5C, 0xFF),
            (0xFF, 0x00, 0xFF),
            (0x00, 0xFF, 0xFF),
            (0xFF, 0xFF, 0xFF),
        ),
        *(
            (
                0 if r == 0 else 55 + 40 * r,
                0 if g == 0 else 55 + 40 * g,
                0 if b == 0 else 55 + 40 * b,
            )
            for r in range(6)
            for g in range(6)
            for b in range(6)
        ),
        *((8 + 10 * level,) * 3 for level in range(24)),
    )
)
"""The xterm 256-colour palette as pyte spells it (`FG_BG_256`): lower-case hex, no `#`."""

_FLAGS: dict[int, dict[str, bool]] = {
    1: {"bold": True},
    2: {"dim": True},
    3: {"italics": True},
    4: {"underscore": True},
    5: {"blink": True},
    6: {"blink": True},
    7: {"reverse": True},
    9: {"strikethrough": True},
    21: {"underscore": True},
    22: {"bold": False, "dim": False},
    23: {"italics": False},
    24: {"underscore": False},
    25: {"blink": False},
    27: {"reverse": False},
    29: {"strikethrough": False},
}


def _colour(code: int) -> tuple[str, str] | None:
    """The (field, value) an SGR colour code sets, None when it sets no colour."""
    if 30 <= code <= 37:
        return "fg", _NAMES[code - 30]
    if 40 <= code <= 47:
        return "bg", _NAMES[code - 40]
    if 90 <= code <= 97:
        return "fg", "bright" + _NAMES[code - 90]
    if 100 <= code <= 107:
        return "bg", "bright" + _NAMES[code - 100]  # pyte misspells 105 "bfightmagenta"
    if code == 39:
        return "fg", "default"
    if code == 49:
        return "bg", "default"
    return None


def _extended_colour(values: list[int]) -> str | None:
    """The colour after a 38 or 48: `5;n` (256 colours) or `2;r;g;b` (24-bit); consumes them."""
    if not values:
        return None
    kind = values.pop()
    if kind == 5 and values:
        index = values.pop()
        return _PALETTE[index] if index < len(_PALETTE) else None
    if kind == 2 and len(values) >= 3:
        red, green, blue = values.pop(), values.pop(), values.pop()
        if max(red, green, blue) > 255:
            return None
        return f"{red:02x}{green:02x}{blue:02x}"
    return None


_EXTENDED = {"38", "48", "58"}
"""SGR codes followed by a colour (`5;n` or `2;r;g;b`): foreground, background, underline."""


def _sgr_values(params: str) -> list[int]:
    """SGR parameters in reverse order (popped from the end). Colon sub-parameters
    (`38:2::r:g:b`, `38:5:n`, `4:3`) are flattened to their semicolon equivalents."""
    values: list[int] = []
    for part in params.split(";"):
        if ":" in part:
            head, *rest = part.split(":")
            if head in _EXTENDED and rest and rest[0] == "2" and len(rest) == 5:
                rest = [rest[0], *rest[2:]]  # drop the colour-space id
            elif head not in _EXTENDED:
                rest = []  # e.g. 4:3 (curly underline) is an underline
            part_values = [head, *rest]
        else:
            part_values = [part]
        values.extend(
            min(int(value), MAX_PARAMETER) if value.isdigit() else 0 for value in part_values
        )
    values.reverse()
    return values


class Emulator(Screen):
    """A pyte screen fed with bytes: `feed()`, then read `buffer`, `history`, `cursor`, and the
    modes below; `take_dirty()` and `take_replies()` hand over what changed and what the
    terminal must answer the application (cursor position reports and the like)."""

    history: deque[HistoryLine]
    # pyte types cells as its `Char`; ours are `Cell`, the same fields plus `dim`.
    cursor: TerminalCursor  # type: ignore[assignment]
    buffer: Buffer  # type: ignore[assignment]

    def __init__(self, columns: int, lines: int, *, scrollback: int = DEFAULT_SCROLLBACK) -> None:
        self.columns = max(1, columns)
        self.lines = max(1, lines)
        self.history = deque(maxlen=max(0, scrollback))
        self.history_count = 0
        """Lines ever moved into `history`, counting those since dropped off its far end."""
        self.dirty: set[int] = set()
        self.savepoints: list[Any] = []  # pyte's attribute; unused: one save slot below
        self.margins: Margins | None = None
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._pending = ""
        self._skipping_string = False
        self._replies: list[str] = []
        self._reply_size = 0
        self._cells_attrs: Cell | None = None
        self._cells_of_cursor = _Cells(Cell(" "))
        self.bells = 0
        """Bells rung since the start (a reset does not unring them)."""
        self._notifications: deque[str] = deque(maxlen=MAX_NOTIFICATIONS)
        self._kitty = KittyNotifications()
        self._signalled: tuple[str, int] = ("", 0)
        """The title and the bell count as `take_signals()` last handed them over."""
        self._control = {
            "\r": self.carriage_return,
            "\n": self.linefeed,
            "\x0b": self.linefeed,
            "\x0c": self.linefeed,
            "\b": self.backspace,
            "\t": self.tab,
            "\x07": self.bell,
            "\x0e": self.shift_out,
            "\x0f": self.shift_in,
        }
        self._escape_table: dict[str, Callable[[], None]] = {
            "c": self.reset,
            "D": self.index,
            "E": self.next_line,
            "M": self.reverse_index,
            "H": self.set_tab_stop,
            "7": self.save_cursor,
            "8": self.restore_cursor,
            "=": lambda: setattr(self, "application_keypad", True),
            ">": lambda: setattr(self, "application_keypad", False),
        }
        # final byte -> (handler, how many parameters it takes)
        self._csi_table: dict[str, tuple[Callable[..., None], int]] = {
            "@": (self.insert_characters, 1),
            "A": (self.cursor_up, 1),
            "B": (self.cursor_down, 1),
            "C": (self.cursor_forward, 1),
            "D": (self.cursor_back, 1),
            "E": (self.cursor_down1, 1),
            "F": (self.cursor_up1, 1),
            "G": (self.cursor_to_column, 1),
            "H": (self.cursor_position, 2),
            "I": (self.forward_tab, 1),
            "J": (self.erase_in_display, 1),
            "K": (self.erase_in_line, 1),
            "L": (self.insert_lines, 1),
            "M": (self.delete_lines, 1),
            "P": (self.delete_characters, 1),
            "S": (self.scroll_up, 1),
            "T": (self.scroll_down, 1),
            "X": (self.erase_characters, 1),
            "Z": (self.back_tab, 1),
            "`": (self.cursor_to_column, 1),
            "a": (self.cursor_forward, 1),
            "b": (self.repeat_last, 1),
            "c": (self.report_device_attributes, 1),
            "d": (self.cursor_to_line, 1),
            "e": (self.cursor_down, 1),
            "f": (self.cursor_position, 2),
            "g": (self.clear_tab_stop, 1),
            "h": (self.set_mode, MAX_PARAMETER),
            "l": (self.reset_mode, MAX_PARAMETER),
            "n": (self.report_device_status, 1),
            "r": (self.set_margins, 2),
            "s": (self.save_cursor, 0),
            "t": (self.window_operation, 2),
            "u": (self.restore_cursor, 0),
        }
        self.reset()

    # -- state -----------------------------------------------------------------------------

    def reset(self) -> None:
        """RIS: the state of a new terminal; the scrollback is kept."""
        self._default_cell = Cell(" ")
        self._erased_cells: dict[str, Cell] = {}
        """Background colour -> an erased cell in it."""
        self._blank_row = (self._default_cell,) * self.columns
        """A blank line's cells (to blank a line with)."""
        self.mode = {mo.DECAWM, mo.DECTCEM}
        self.reverse_screen = False
        """DECSCNM (a visual bell): the view shows the whole screen inverted; no cell changes."""
        self.buffer = self._new_buffer()
        self._main_buffer: Buffer | None = None
        self._alternate_saved: tuple[int, int, Cell] | None = None
        self.dirty.update(range(self.lines))
        self.margins = None
        self.title = ""
        self.icon_name = ""
        self._titles: deque[tuple[str | None, str | None]] = deque(maxlen=MAX_TITLES)
        self.charset = 0
        self.g0_charset = charsets.LAT1_MAP
        self.g1_charset = charsets.LAT1_MAP
        self._charset_map: str | None = None
        self.tabstops = set(range(8, self.columns, 8))
        self.cursor = TerminalCursor(self._default_cell)
        self._saved: tuple[Any, ...] | None = None
        self._last_drawn = ""
        """The last text drawn (REP repeats its last character)."""
        self._inserting = False
        """IRM (mode 4) is set: text shifts the line right instead of overwriting it."""
        self.saved_columns = None
        self.application_cursor = False
        self.application_keypad = False
        self.bracketed_paste = False
        self.mouse_tracking = MouseTracking.OFF
        self.mouse_sgr = False
        self.focus_events = False
        self.synchronized_since: float | None = None

    @property
    def default_char(self) -> Cell:  # type: ignore[override]  # a Cell, not pyte's Char
        """A blank cell, made once, not per call."""
        return self._default_cell

    def _new_buffer(self) -> Buffer:
        return Buffer(Line(self._default_cell, self.columns) for _ in range(self.lines))

    def _renew(self, line: Line) -> None:
        """Make `line` blank in the current background, as what scrolling, IL/DL or erasing
        brings in: a new line (its serial too), without making one."""
        if self.cursor.attrs.bg == "default":
            line[:] = self._blank_row
            line.default = self._default_cell
        else:
            line.default = blank = self._erased()
            line[:] = (blank,) * self.columns
        line.extent = 0
        line.serial = next(_serials)

    @property
    def mouse_reporting(self) -> bool:
        """True when the application wants mouse events (so the wheel is not for scrollback)."""
        return self.mouse_tracking is not MouseTracking.OFF

    @property
    def alternate(self) -> bool:
        """True while the alternate screen is shown."""
        return self._main_buffer is not None

    @property
    def synchronized(self) -> bool:
        """True while the application holds output back (mode 2026), up to `SYNC_TIMEOUT`."""
        since = self.synchronized_since
        return since is not None and time.monotonic() - since < SYNC_TIMEOUT

    def take_dirty(self) -> set[int]:
        """The rows whose content changed since the last call."""
        dirty, self.dirty = self.dirty, set()
        return dirty

    def take_replies(self) -> bytes:
        """What the terminal answers the application (DA, DSR), in order, since the last call."""
        replies, self._replies, self._reply_size = self._replies, [], 0
        return "".join(replies).encode()

    def take_signals(self, clock: Callable[[], datetime] = utc_now) -> tuple[TerminalSignal, ...]:
        """What the output said besides the screen since the last call: the title if it changed
        (the latest), one bell however many rang, then the notifications in order. A renderer
        asks every frame: when nothing happened this is two comparisons."""
        title, bells = self.title, self.bells
        if (title, bells) == self._signalled and not self._notifications:
            return ()
        at = clock()
        signals = []
        if title != self._signalled[0]:
            signals.append(TerminalSignal(SignalKind.TITLE, signal_text(title), at))
        if bells != self._signalled[1]:
            signals.append(TerminalSignal(SignalKind.BELL, "", at))
        signals.extend(
            TerminalSignal(SignalKind.NOTIFICATION, text, at) for text in self._notifications
        )
        self._notifications.clear()
        self._signalled = (title, bells)
        return tuple(signals)

    def write_process_input(self, data: str) -> None:
        if self._reply_size + len(data) <= MAX_REPLIES:
            self._replies.append(data)
            self._reply_size += len(data)

    def report_device_status(self, mode: int = 0) -> None:
        """DSR 5 (status) and 6 (cursor position: the row relative to the region in origin
        mode, the last column while a wrap is pending, as xterm answers). pyte requires the
        parameter, asserts that origin mode has margins, and answers a column past the edge."""
        if mode == 5:
            self.write_process_input("\x1b[0n")
        elif mode == 6:
            row = self.cursor.y - self._origin_row(0) + 1
            column = min(self.cursor.x, self.columns - 1) + 1
            self.write_process_input(f"\x1b[{row};{column}R")

    def bell(self, *args: Any) -> None:
        self.bells += 1

    def set_title(self, param: str) -> None:
        self.title = param[:MAX_TITLE]

    def set_icon_name(self, param: str) -> None:
        self.icon_name = param[:MAX_TITLE]

    def window_operation(self, operation: int = 0, which: int = 0) -> None:
        """XTWINOPS: only 22 and 23, which push and pop the title (`which` 2), the icon name
        (1) or both (0), as vim, less and dialog do around their session; the rest would
        resize or move a window roost does not own, or report it."""
        title, icon = which in (0, 2), which in (0, 1)
        if operation == 22:
            self._titles.append((self.title if title else None, self.icon_name if icon else None))
        elif operation == 23 and self._titles:
            saved_title, saved_icon = self._titles.pop()
            if title and saved_title is not None:
                self.title = saved_title
            if icon and saved_icon is not None:
                self.icon_name = saved_icon

    # -- input -----------------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        """Process bytes as they arrive; a character or sequence split across calls is fine."""
        text = self._decoder.decode(data)
        if self._skipping_string:
            end = _STRING_END.search(text)
            if end is None:
                return
            self._skipping_string = False
            text = text[end.end() :]
        if self._pending:
            text, self._pending = self._pending + text, ""
        self._feed(text)

    def _feed(self, text: str) -> None:
        match = _TOKEN.match
        draw = self.draw
        csi = self._csi
        sgr = self._sgr
        index = self.index
        control = self._control
        position, end = 0, len(text)
        failed: Exception | None = None
        failures = 0
        while position < end:
            # `position` is past each token (or the first character of an escape sequence)
            # before it is handled, so one that raises is skipped and the loop goes on with
            # the next; the try costs nothing until then.
            try:
                while position < end:
                    token = match(text, position)
                    if token is None:
                        start, position = position, position + 1
                        after = self._escape(text, start)
                        if after < 0:  # incomplete: parsed again with the next read
                            self._pending = self._pending or text[start:]
                            position = end
                        else:
                            position = after
                            self._last_drawn = ""
                        continue
                    position = token.end()
                    kind = token.lastindex  # which alternative matched: see `_TOKEN`'s groups
                    if kind == _TEXT:
                        draw(token.group())
                        continue
                    if kind == _STYLED:
                        params, styled = token.group(_SGR, _STYLED)
                        sgr(params)
                        if styled:
                            draw(styled)
                            continue
                    elif kind == _NEWLINE:
                        draw(token.group(_TEXT))
                        self.cursor.x = 0  # CR, and so LF whatever LNM says
                        index()
                    elif kind == _FINAL:
                        csi(*token.group(_PARAMS, _INTER, _FINAL))
                    elif kind == _CRLF:
                        self.cursor.x = 0
                        index()
                    else:
                        handler = control.get(token.group())
                        if handler is not None:
                            handler()
                    # REP repeats a character only right after it: any control or sequence in
                    # between, a REP included, leaves nothing to repeat (tmux; vttest's REP
                    # test expects it).
                    self._last_drawn = ""
            except Exception as error:
                failed = failed or error
                failures += 1
        if failed is not None:
            raise EmulatorError(f"{failures} sequence(s) failed; the first: {failed!r}") from failed

    def _escape(self, text: str, start: int) -> int:
        """Handle the sequence at `start` (not a plain token); return where the next begins, or
        -1 when the sequence is incomplete and must wait for more input."""
        char = text[start]
        if char == "\x9b":
            return self._csi_slow(text, start + 1)
        if char == "\x9d":
            return self._string(text, start + 1, osc=True)
        if char != "\x1b":
            return start + 1  # other C1 controls: ignored, as in a UTF-8 xterm
        if start + 1 >= len(text):
            return -1
        kind = text[start + 1]
        if kind == "[":
            return self._csi_slow(text, start + 2)
        if kind == "]":
            return self._string(text, start + 2, osc=True)
        if kind in "PX^_":  # DCS, SOS, PM, APC: consumed, not shown
            return self._string(text, start + 2, osc=False)
        if kind in "()*+#% ":
            if start + 2 >= len(text):
                return -1
            argument = text[start + 2]
            if kind in "()":
                self.define_charset(argument, kind)
            elif kind == "#" and argument == "8":
                self.alignment_display()
            return start + 3
        if kind < " ":
            return start + 1  # a control character cancels the escape and is executed
        handler = self._escape_table.get(kind)
        if handler is not None:
            handler()
        return start + 2

    def _csi_slow(self, text: str, start: int) -> int:
        """A CSI sequence the fast token did not match: incomplete, or with control characters
        inside (executed as they come, as xterm and tmux do), or malformed (dropped)."""
        position = start
        body: list[str] = []
        while position < len(text):
            part = _CSI_BODY.match(text, position)
            assert part is not None  # the pattern matches the empty string
            body.append(part.group())
            position = part.end()
            if position >= len(text):
                break
            char = text[position]
            if "@" <= char <= "~":
                params = "".join(body)
                inter_at = len(params.rstrip(" !\"#$%&'()*+,-./"))
                self._csi(params[:inter_at], params[inter_at:], char)
                return position + 1
            if char in "\x18\x1a":  # CAN, SUB: abandon the sequence
                return position + 1
            if char == "\x1b":
                return position  # a new sequence starts; this one is abandoned
            handler = self._control.get(char)
            if handler is not None:
                handler()
            elif char >= " ":
                return position + 1  # not a CSI character: drop the sequence
            position += 1
        if position - start > MAX_STRING:
            return position  # runaway parameters: drop what came
        # Kept without the controls just run, which must not run again with the next read.
        self._pending = "\x1b[" + "".join(body)
        return -1

    def _string(self, text: str, start: int, *, osc: bool) -> int:
        """An OSC (title) or other string sequence up to its terminator (BEL, ST)."""
        end = _STRING_END.search(text, start)
        if end is None:
            if len(text) - start > MAX_STRING:
                self._skipping_string = True
                return len(text)
            return -1
        if osc:
            self._osc(text[start : end.start()])
        return end.end()

    def _osc(self, body: str) -> None:
        code, _, param = body.partition(";")
        if code in {"0", "1"}:
            self.set_icon_name(param)
        if code in {"0", "2"}:
            self.set_title(param)
        elif code == "9":
            self._notify(osc9_notification(param))
        elif code == "777":
            self._notify(osc777_notification(param))
        elif code == "99":
            self._notify(self._kitty.feed(param))

    def _notify(self, text: str | None) -> None:
        """Keep a desktop notification's text for `take_signals()`; one without is none."""
        if text is not None and (text := signal_text(text)):
            self._notifications.append(text)

    def _csi(self, params: str, inter: str, final: str) -> None:
        if inter:
            if inter == "!" and final == "p":
                self.soft_reset()
            return  # other intermediates (cursor style, DECRQM...): nothing to show
        private = bool(params) and params[0] in "?<=>"
        if private:
            if params[0] != "?":
                return  # secondary DA and kin: answered by nobody, as pyte does
            params = params[1:]
            if final not in "hlJK":
                return
        if final == "m":
            if not private:
                self._sgr(params)
            return
        entry = self._csi_table.get(final)
        if entry is None:
            return
        handler, arity = entry
        numbers = _NUMBERS.get(params)
        if numbers is None:
            if len(_NUMBERS) > 4096:
                _NUMBERS.clear()
            numbers = _NUMBERS[params] = _numbers(params)
        if private:
            handler(*numbers[:arity], private=True)
        else:
            handler(*numbers[:arity])

    def _sgr(self, params: str) -> None:
        """Set the cursor's attributes: memoised with their cell cache, since output repeats a
        few styles (the text that follows then finds its cells without hashing them)."""
        cursor = self.cursor
        cells = self._cells_of_cursor if cursor.attrs is self._cells_attrs else self._cells()
        after = cells.after.get(params)
        if after is None:
            if len(cells.after) > 256:
                cells.after.clear()
            cursor.attrs = self._graphic_rendition(params)
            after = cells.after[params] = self._cells()
        cursor.attrs = self._cells_attrs = after.attrs
        self._cells_of_cursor = after

    # -- drawing ---------------------------------------------------------------------------

    def draw(self, data: str) -> None:
        """Write printable text at the cursor, as pyte's `Screen.draw` does."""
        if self._charset_map is not None:
            data = data.translate(self._charset_map)
        if not data:
            return
        self._last_drawn = data
        if not data.isascii():
            data = data.translate(_COLUMNS)
            if "\x01" in data:
                self._draw_joining(data)
                return
        cursor = self.cursor
        x = cursor.x
        end = x + len(data)
        if end > self.columns or self._inserting:
            self._draw_columns(data)
            return
        # The common case, a run that fits on the line: one slice of the row.
        cells = self._cells_of_cursor if cursor.attrs is self._cells_attrs else self._cells()
        line = self.buffer[cursor.y]
        line[x:end] = map(cells.__getitem__, data)
        if end > line.extent:
            line.extent = end
        if end < self.columns and not line[end].data:
            line[end] = self._default_cell  # the right half of a wide character just overwritten
            line.extent = max(line.extent, end + 1)
        cursor.x = end
        self.dirty.add(cursor.y)

    def _cells(self) -> _Cells:
        """The cell cache for the cursor's attributes (kept while they stay the same object)."""
        attrs = self.cursor.attrs
        cells = _CELL_SETS.get(attrs)
        if cells is None:
            if len(_CELL_SETS) > 1024:
                _CELL_SETS.clear()
            cells = _CELL_SETS[attrs] = _Cells(attrs)
        self._cells_attrs, self._cells_of_cursor = attrs, cells
        return cells

    def _draw_joining(self, columns: str) -> None:
        """Text translated by `_COLUMNS` with zero-width characters in it: each joins the cell
        before it (`_combine`)."""
        first, *rest = columns.split("\x01")
        self._draw_columns(first)
        for part in rest:
            self._combine(part[0])
            self._draw_columns(part[1:])

    def _draw_columns(self, text: str) -> None:
        """Write `text`, one code point per column (NUL: the right half of the wide character
        before it), from the cursor, wrapping as pyte does, with two fixes: a wide character
        that does not fit in the last column wraps first (pyte cuts it in half), and one wider
        than the screen is not drawn (nor by tmux). Without autowrap each character past the
        right margin overwrites the last column(s); in insert mode (IRM) each one pushes the
        rest of the line right."""
        if not text:
            return
        wrap = mo.DECAWM in self.mode
        if self._inserting or self.columns < 2 or not (wrap or "\x00" not in text):
            self._draw_each(text)
            return
        cursor = self.cursor
        columns = self.columns
        cell_of = self._cells().__getitem__
        buffer = self.buffer
        position, end = 0, len(text)
        while position < end:
            x = cursor.x
            take = min(end - position, columns - x)
            if take > 0 and position + take < end and text[position + take] == "\x00":
                take -= 1  # a wide character does not fit in the last column: it wraps whole
            if take <= 0:
                if not wrap:  # each further character overwrites the last column
                    line = buffer[cursor.y]
                    line[columns - 1] = cell_of(text[-1])
                    line.extent = columns
                    break
                self.dirty.add(cursor.y)
                self.carriage_return()
                self.linefeed()
                continue
            stop = x + take
            line = buffer[cursor.y]
            line[x:stop] = map(cell_of, text[position : position + take])
            extent = stop
            if stop < columns and not line[stop].data:
                line[stop] = self._default_cell
                extent += 1
            if extent > line.extent:
                line.extent = extent
            position += take
            cursor.x = stop
        self.dirty.add(cursor.y)

    def _draw_each(self, text: str) -> None:
        """`_draw_columns` a character at a time: in insert mode, on a screen one column wide,
        or for wide characters without autowrap."""
        cursor = self.cursor
        columns = self.columns
        wrap = mo.DECAWM in self.mode
        cells = self._cells()
        for position, char in enumerate(text):
            if char == "\x00":
                continue  # drawn with its wide character
            width = 2 if text[position + 1 : position + 2] == "\x00" else 1
            if cursor.x + width > columns:
                if width > columns:
                    continue  # wider than the screen: nowhere to show it (nor does tmux)
                if wrap:
                    self.dirty.add(cursor.y)
                    self.carriage_return()
                    self.linefeed()
                else:
                    cursor.x = columns - width
            if self._inserting:
                self.insert_characters(width)
            line = self.buffer[cursor.y]
            x = cursor.x
            line[x] = cells[char]
            if width == 2:
                line[x + 1] = cells["\x00"]
            if x + width < columns and not line[x + width].data:
                line[x + width] = self._default_cell
            line.extent = max(line.extent, x + width + 1)
            cursor.x = min(x + width, columns)
        self.dirty.add(cursor.y)

    def _combine(self, char: str) -> None:
        """Attach a zero-width character to the cell before the cursor (pyte's rule: on this
        line, else the last cell of the line above)."""
        cursor = self.cursor
        if cursor.x:
            y, x = cursor.y, cursor.x - 1
        elif cursor.y:
            y, x = cursor.y - 1, self.columns - 1
        else:
            return
        line = self.buffer[y]
        last = line[x]
        if x and last.data == "":  # the stub of a wide character: combine with the character
            x -= 1
            last = line[x]
        if len(last.data) > MAX_COMBINING:
            return
        joined = last.data + char
        if unicodedata.combining(char):
            joined = unicodedata.normalize("NFC", joined)
        line[x] = last._replace(data=joined)
        line.extent = max(line.extent, x + 1)
        self.dirty.add(y)

    def alignment_display(self) -> None:
        """DECALN: the screen filled with E's."""
        self.dirty.update(range(self.lines))
        e_of: dict[Cell, Cell] = {}
        for line in self.buffer:
            for x, cell in enumerate(line):
                e = e_of.get(cell)
                line[x] = e_of[cell] = cell._replace(data="E") if e is None else e
            line.extent = len(line)

    def repeat_last(self, count: int | None = None) -> None:
        """REP: the character drawn just before again, at most a screenful of times."""
        if self._last_drawn:
            times = min(count or 1, self.columns * self.lines)
            self.draw(self._last_drawn[-1] * times)

    # -- scrolling -------------------------------------------------------------------------

    def index(self) -> None:
        """Down one line; at the bottom margin the region scrolls up. A line leaving the top of
        the main screen goes to the scrollback; dirty marks move with their lines."""
        cursor = self.cursor
        margins = self.margins
        top, bottom = (0, self.lines - 1) if margins is None else margins
        if cursor.y != bottom:
            if cursor.y < self.lines - 1:  # below the region too (pyte jumps into it)
                cursor.y += 1
            return
        buffer = self.buffer
        line = buffer.pop(top)
        if top == 0 and self._main_buffer is None and self.history.maxlen:
            self.history.append(HistoryLine(line))
            self.history_count += 1
        self._renew(line)  # the line that left comes back as the new one: cheaper
        buffer.insert(bottom, line)
        dirty = self.dirty
        if len(dirty) < self.lines:  # else every row stays dirty
            if len(dirty) == 1 and bottom in dirty:  # a log: the line just written moves up
                dirty.add(bottom - 1)
            else:
                self.dirty = dirty = {y - 1 if top < y <= bottom else y for y in dirty if y != top}
                dirty.add(bottom)

    def reverse_index(self) -> None:
        """Up one line; at the top margin the region scrolls down."""
        top, bottom = self.margins or (0, self.lines - 1)
        if self.cursor.y != top:
            if self.cursor.y > 0:  # above the region too (pyte jumps into it)
                self.cursor.y -= 1
            return
        buffer = self.buffer
        line = buffer.pop(bottom)
        self._renew(line)
        buffer.insert(top, line)
        if len(self.dirty) < self.lines:
            self.dirty = {y + 1 if top <= y < bottom else y for y in self.dirty if y != bottom}
            self.dirty.add(top)

    def linefeed(self) -> None:
        self.index()
        if mo.LNM in self.mode:
            self.cursor.x = 0

    def next_line(self) -> None:
        """NEL is a carriage return and a line feed (pyte forgets the carriage return)."""
        self.cursor.x = 0
        self.index()

    def scroll_up(self, count: int | None = None) -> None:
        """SU: the region scrolls up `count` lines; the cursor stays."""
        self._scroll(count, self.index, at_top=False)

    def scroll_down(self, count: int | None = None) -> None:
        """SD: the region scrolls down `count` lines; the cursor stays."""
        self._scroll(count, self.reverse_index, at_top=True)

    def _scroll(self, count: int | None, step: Callable[[], None], *, at_top: bool) -> None:
        top, bottom = self.margins or (0, self.lines - 1)
        x, y = self.cursor.x, self.cursor.y
        self.cursor.y = top if at_top else bottom
        for _ in range(min(count or 1, bottom - top + 1)):
            step()
        self.cursor.x, self.cursor.y = x, y

    def set_margins(self, top: int | None = None, bottom: int | None = None) -> None:
        """DECSTBM; the cursor goes home whenever the region is set (pyte skips that when the
        parameters are omitted)."""
        super().set_margins(top, bottom)
        self.cursor_position()

    # -- erasing ---------------------------------------------------------------------------

    def _erased(self) -> Cell:
        """What erasing leaves: a blank in the current background colour and nothing else (the
        xterm and tmux rule; pyte copies every attribute, underline and reverse included)."""
        bg = self.cursor.attrs.bg
        if bg == "default":
            return self._default_cell
        erased = self._erased_cells.get(bg)
        if erased is None:
            if len(self._erased_cells) > 256:
                self._erased_cells.clear()
            erased = self._erased_cells[bg] = self._default_cell._replace(bg=bg)
        return erased

    def _cut_stub(self, line: Line, x: int) -> None:
        """Column `x` was just cut from its left neighbour (an erase ended before it, or an
        insert or a delete moved it): the right half of a wide character there has lost its
        left half, and goes as well, as erasing half of a wide character erases it in xterm.
        Left alone it would show as a blank until a character drawn before it wiped it (the
        rule in `draw`), a state no redraw of the screen could make again."""
        if x < self.columns and not line[x].data:
            line[x] = self._erased()
            line.extent = max(line.extent, x + 1)

    def erase_in_display(self, how: int = 0, *args: Any, **kwargs: Any) -> None:
        """ED 0/1/2; ED 3 clears the scrollback only (xterm); others are ignored (pyte raises
        on them)."""
        if how == 3:
            self.history.clear()
            return
        if how == 0:
            rows = range(self.cursor.y + 1, self.lines)
        elif how == 1:
            rows = range(self.cursor.y)
        elif how == 2:
            rows = range(self.lines)
        else:
            return
        self.dirty.update(rows)
        for y in rows:
            self._renew(self.buffer[y])
        if how != 2:
            self.erase_in_line(how)

    def erase_in_line(self, how: int = 0, private: bool = False) -> None:
        x = self.cursor.x
        if how == 0:
            start, stop = x, self.columns
        elif how == 1:
            start, stop = 0, min(x + 1, self.columns)
        elif how == 2:
            start, stop = 0, self.columns
        else:
            return
        self._erase(start, stop)

    def erase_characters(self, count: int | None = None) -> None:
        x = self.cursor.x
        self._erase(x, min(x + (count or 1), self.columns))

    def _erase(self, start: int, stop: int) -> None:
        """Blank columns `start` to `stop` of the cursor's row in the current background."""
        self.dirty.add(self.cursor.y)
        line = self.buffer[self.cursor.y]
        if start < stop:
            erased = self._erased()
            line[start:stop] = [erased] * (stop - start)
            if stop == self.columns and erased is line.default:
                line.extent = min(line.extent, start)
            else:
                line.extent = max(line.extent, stop)
        self._cut_stub(line, stop)

    def insert_characters(self, count: int | None = None) -> None:
        """ICH (and IRM's insert): blanks at the cursor push the rest of the line right, and
        what passes the right edge is gone (pyte keeps it one column past the edge, where a
        wider screen showed it again)."""
        x, columns = self.cursor.x, self.columns
        if x >= columns:
            return
        count = min(count or 1, columns - x)
        line = self.buffer[self.cursor.y]
        line[x:x] = [self._erased()] * count
        del line[columns:]
        line.extent = columns
        self._cut_stub(line, x + count)
        self.dirty.add(self.cursor.y)

    def delete_characters(self, count: int | None = None) -> None:
        """DCH: the rest of the line moves left, blanks in the current background come in."""
        x, columns = self.cursor.x, self.columns
        self.dirty.add(self.cursor.y)
        if x >= columns:
            return
        count = min(count or 1, columns - x)
        line = self.buffer[self.cursor.y]
        del line[x : x + count]
        erased = self._erased()
        line.extend([erased] * count)
        if erased is not line.default:
            line.extent = columns
        self._cut_stub(line, x)

    def insert_lines(self, count: int | None = None) -> None:
        """IL: lines from the cursor's down move down `count` rows inside the scrolling region,
        blank ones in the current background come in, the cursor goes to the first column."""
        top, bottom = self.margins or (0, self.lines - 1)
        y = self.cursor.y
        if not top <= y <= bottom:
            return
        count = min(count or 1, bottom - y + 1)
        self.dirty.update(range(y, self.lines))
        buffer = self.buffer
        lines = buffer[bottom - count + 1 : bottom + 1]
        del buffer[bottom - count + 1 : bottom + 1]
        for line in lines:
            self._renew(line)
        buffer[y:y] = lines
        self.carriage_return()

    def delete_lines(self, count: int | None = None) -> None:
        """DL: every line from the cursor down moves up `count` rows. pyte leaves a line in
        place when the one `count` below it was never written (a row absent from its buffer)."""
        top, bottom = self.margins or (0, self.lines - 1)
        y = self.cursor.y
        if not top <= y <= bottom:
            return
        count = min(count or 1, bottom - y + 1)
        self.dirty.update(range(y, self.lines))
        buffer = self.buffer
        lines = buffer[y : y + count]
        del buffer[y : y + count]
        for line in lines:
            self._renew(line)
        buffer[bottom - count + 1 : bottom - count + 1] = lines
        self.carriage_return()

    # -- cursor ----------------------------------------------------------------------------

    def save_cursor(self) -> None:
        """DECSC, SCOSC: one save slot (pyte stacks every save, without bound)."""
        self._saved = (
            self.cursor.x,
            self.cursor.y,
            self.cursor.attrs,
            self.g0_charset,
            self.g1_charset,
            self.charset,
            mo.DECOM in self.mode,
            mo.DECAWM in self.mode,
        )

    def restore_cursor(self) -> None:
        """DECRC, SCORC: back to the saved state, which stays saved; home when none was."""
        if self._saved is None:
            self.mode.discard(mo.DECOM)
            self.cursor_position()
            return
        x, y, attrs, g0, g1, charset, origin, wrap = self._saved
        self.g0_charset, self.g1_charset, self.charset = g0, g1, charset
        self._update_charset_map()
        for flag, mode in ((origin, mo.DECOM), (wrap, mo.DECAWM)):
            if flag:
                self.mode.add(mode)
            else:
                self.mode.discard(mode)
        self.cursor.x, self.cursor.y, self.cursor.attrs = x, y, attrs
        self.ensure_hbounds()
        self.ensure_vbounds(use_margins=True)

    def _origin_row(self, row: int) -> int:
        """The screen row of an application's 0-based `row`: in origin mode (DECOM) counted
        from the top of the scrolling region, or of the screen when no region is set, and
        stopping at the region's bottom."""
        if mo.DECOM not in self.mode:
            return row
        top, bottom = self.margins or (0, self.lines - 1)
        return min(row + top, bottom)

    def cursor_position(self, line: int | None = None, column: int | None = None) -> None:
        """CUP; in origin mode a row past the region stops at its bottom (pyte ignores it)."""
        cursor = self.cursor
        if mo.DECOM in self.mode:
            cursor.x, cursor.y = (column or 1) - 1, self._origin_row((line or 1) - 1)
            self.ensure_hbounds()
            self.ensure_vbounds()
            return
        cursor.x = min((column or 1) - 1, self.columns - 1)
        cursor.y = min((line or 1) - 1, self.lines - 1)

    def cursor_to_line(self, line: int | None = None) -> None:
        """VPA, with CUP's origin rule (pyte asserts that origin mode has margins, and moves
        below the region)."""
        self.cursor.y = self._origin_row((line or 1) - 1)
        self.ensure_vbounds()

    def cursor_down(self, count: int | None = None) -> None:
        """CUD: stops at the bottom margin, or at the last row when already below it."""
        _, bottom = self.margins or (0, self.lines - 1)
        limit = bottom if self.cursor.y <= bottom else self.lines - 1
        self.cursor.y = min(self.cursor.y + (count or 1), limit)

    def cursor_up(self, count: int | None = None) -> None:
        """CUU: stops at the top margin, or at the first row when already above it."""
        top, _ = self.margins or (0, self.lines - 1)
        limit = top if self.cursor.y >= top else 0
        self.cursor.y = max(self.cursor.y - (count or 1), limit)

    def tab(self) -> None:
        """HT: to the next tab stop, or the right margin. From the last column, or past it with a
        wrap pending, nothing moves (xterm, tmux): pyte moved back onto the last column, so the
        next character overwrote it instead of wrapping."""
        x, last = self.cursor.x, self.columns - 1
        if x >= last:
            return
        for stop in sorted(self.tabstops):
            if stop > x:
                self.cursor.x = min(stop, last)  # HTS with a wrap pending sets one past it
                return
        self.cursor.x = last

    def forward_tab(self, count: int | None = None) -> None:
        for _ in range(min(count or 1, self.columns)):
            self.tab()

    def back_tab(self, count: int | None = None) -> None:
        """CBT: back to the previous tab stop, `count` times."""
        for _ in range(min(count or 1, self.columns)):
            stops = [stop for stop in self.tabstops if stop < self.cursor.x]
            self.cursor.x = max(stops, default=0)

    def soft_reset(self) -> None:
        """DECSTR: modes, margins, attributes and the saved cursor back to their defaults."""
        self.mode.discard(mo.IRM)
        self._inserting = False
        self.mode.discard(mo.DECOM)
        self.mode.add(mo.DECAWM)
        self.mode.add(mo.DECTCEM)
        self.cursor.hidden = False
        self.margins = None
        self.cursor.attrs = self.default_char
        self.application_cursor = self.application_keypad = False
        self._saved = None

    # -- character sets --------------------------------------------------------------------

    def define_charset(self, code: str, mode: str) -> None:
        """G0/G1 designation. pyte ignores it in UTF-8 mode; xterm and tmux honour DEC line
        drawing (`0`) and ASCII (`B`), which full-screen programs use for box edges."""
        table = {"0": charsets.VT100_MAP, "B": charsets.LAT1_MAP}.get(code)
        if table is None:
            return
        if mode == "(":
            self.g0_charset = table
        else:
            self.g1_charset = table
        self._update_charset_map()

    def shift_in(self) -> None:
        self.charset = 0
        self._update_charset_map()

    def shift_out(self) -> None:
        self.charset = 1
        self._update_charset_map()

    def _update_charset_map(self) -> None:
        table = self.g1_charset if self.charset else self.g0_charset
        self._charset_map = None if table is charsets.LAT1_MAP else table

    # -- modes -----------------------------------------------------------------------------

    def set_mode(self, *modes: int, **kwargs: Any) -> None:
        self._modes(modes, True, private=bool(kwargs.get("private")))

    def reset_mode(self, *modes: int, **kwargs: Any) -> None:
        self._modes(modes, False, private=bool(kwargs.get("private")))

    def _modes(self, modes: Iterable[int], on: bool, *, private: bool) -> None:
        for mode in modes:
            if private:
                self._private_mode(mode, on)
            elif mode in (4, 20):  # IRM, LNM
                if on:
                    self.mode.add(mode)
                else:
                    self.mode.discard(mode)
                self._inserting = mo.IRM in self.mode

    def _private_mode(self, mode: int, on: bool) -> None:
        if mode == 1:
            self.application_cursor = on
        elif mode == 3:
            # DECCOLM: tmux and xterm (by default) keep the width but clear and home.
            self.margins = None
            self.erase_in_display(2)
            self.cursor_position()
        elif mode == 5:
            # DECSCNM inverts the display, not the cells (xterm): pyte marks every cell and the
            # cursor's attributes reverse on set and clears reverse from all of them on reset,
            # so a visual bell stripped reverse video from the whole screen.
            self.reverse_screen = on
            self.dirty.update(range(self.lines))
        elif mode in (6, 7, 25):
            if on:
                Screen.set_mode(self, mode, private=True)
            else:
                Screen.reset_mode(self, mode, private=True)
        elif mode in (47, 1047, 1049):
            if on:
                self._enter_alternate(save_cursor=mode == 1049)
            else:
                self._leave_alternate(restore_cursor=mode == 1049)
        elif mode == 1048:
            if on:
                self.save_cursor()
            else:
                self.restore_cursor()
        elif mode in (9, 1000, 1002, 1003):
            if on:
                self.mouse_tracking = MouseTracking(mode)
            elif self.mouse_tracking is MouseTracking(mode):
                self.mouse_tracking = MouseTracking.OFF
        elif mode == 1006:
            self.mouse_sgr = on
        elif mode == 1004:
            self.focus_events = on
        elif mode == 2004:
            self.bracketed_paste = on
        elif mode == 2026:
            self.synchronized_since = time.monotonic() if on else None

    def _enter_alternate(self, *, save_cursor: bool) -> None:
        """Switch to a clear alternate screen (tmux clears it on every entry). Entering again
        changes nothing: the cursor saved on the first entry is the one restored (xterm saves
        the second in the alternate screen's own slot, tmux ignores it)."""
        if self._main_buffer is not None:
            return
        if save_cursor:
            self._alternate_saved = (self.cursor.x, self.cursor.y, self.cursor.attrs)
        self._main_buffer = self.buffer
        self.buffer = self._new_buffer()
        self.dirty.update(range(self.lines))

    def _leave_alternate(self, *, restore_cursor: bool) -> None:
        if self._main_buffer is not None:
            self.buffer, self._main_buffer = self._main_buffer, None
            self.dirty.update(range(self.lines))
        if restore_cursor and self._alternate_saved is not None:
            # The save stays: leaving again (dialog does) restores it again, as in xterm and
            # tmux; forgetting it left the cursor wherever the program had put it.
            self.cursor.x, self.cursor.y, self.cursor.attrs = self._alternate_saved
            self.ensure_hbounds()
            self.ensure_vbounds()

    # -- attributes ------------------------------------------------------------------------

    def _graphic_rendition(self, params: str) -> Cell:
        """The attributes after SGR `params` (pyte's rules, plus dim and colon forms)."""
        if params in {"", "0"}:
            return self.default_char
        values = _sgr_values(params)
        changes: dict[str, Any] = {}
        while values:
            code = values.pop()
            if code == 0:
                changes = dict(self.default_char._asdict())
            elif code in _FLAGS:
                changes.update(_FLAGS[code])
            elif code in (38, 48):
                colour = _extended_colour(values)
                if colour is not None:
                    changes["fg" if code == 38 else "bg"] = colour
            elif code == 58:
                # The underline colour: its values are skipped, not read as attributes (2 would
                # be dim, 5 blink). Cells keep none: the view's styles cannot draw one.
                _extended_colour(values)
            else:
                found = _colour(code)
                if found is not None:
                    changes[found[0]] = found[1]
        attrs: Cell = self.cursor.attrs._replace(**changes)
        return attrs

    def select_graphic_rendition(self, *attrs: int) -> None:
        """pyte's entry point, for callers that drive the screen directly."""
        self.cursor.attrs = self._graphic_rendition(";".join(map(str, attrs)))

    # -- size ------------------------------------------------------------------------------

    def resize(self, lines: int | None = None, columns: int | None = None) -> None:
        """A new size. Fewer lines first drops blank lines below the cursor, then moves lines
        from the top into the scrollback (as tmux does); more lines bring scrollback back.
        Columns are clipped, not reflowed (pyte's rule; tmux reflows wrapped lines)."""
        lines = max(1, lines or self.lines)
        columns = max(1, columns or self.columns)
        if (lines, columns) == (self.lines, self.columns):
            return
        if lines != self.lines:
            self.cursor.y = self._fit(self.buffer, lines, self.cursor.y, self._main_buffer is None)
            if self._main_buffer is not None:
                self._fit(self._main_buffer, lines, self.lines - 1, keep=True)
        if columns != self.columns:
            for buffer in filter(None, (self.buffer, self._main_buffer)):
                for line in buffer:
                    if columns < len(line):
                        del line[columns:]
                        line.extent = min(line.extent, columns)
                    else:
                        line.extend([line.default] * (columns - len(line)))
        if columns > self.columns:
            self.tabstops.update(range((self.columns + 7) // 8 * 8, columns, 8))
        self.tabstops = {stop for stop in self.tabstops if stop < columns}
        self.lines, self.columns = lines, columns
        self._blank_row = (self._default_cell,) * columns
        self.margins = None
        self.ensure_hbounds()
        self.ensure_vbounds()
        self.dirty = set(range(lines))

    def _fit(self, buffer: Buffer, lines: int, cursor_y: int, keep: bool) -> int:
        """Make `buffer` `lines` tall; returns the cursor's new row. `keep` sends lines that
        leave the top to the scrollback and takes them back when growing."""
        old = self.lines
        if lines < old:
            excess = old - lines
            while excess and len(buffer) - 1 > cursor_y and _unwritten(buffer[-1]):
                buffer.pop()
                excess -= 1
            leaving = buffer[:excess]
            del buffer[:excess]
            if keep and self.history.maxlen:
                self.history.extend(map(HistoryLine, leaving))
                self.history_count += len(leaving)
            return max(0, cursor_y - excess)
        grow = min(lines - old, len(self.history)) if keep else 0
        # The scrollback keeps lines as wide as they left; `resize` fits them to the screen.
        back = [self.history.pop().line(self.columns) for _ in range(grow)]
        buffer[0:0] = reversed(back)
        buffer.extend(Line(self._default_cell, self.columns) for _ in range(lines - len(buffer)))
        return cursor_y + grow


def _unwritten(line: Line) -> bool:
    """Nothing was drawn on `line` (every cell is still the blank it was made of)."""
    default = line.default
    return all(cell is default for cell in line)


def _numbers(params: str) -> tuple[int, ...]:
    """CSI parameters as numbers: empty ones are 0, sub-parameters after `:` ignored, each
    capped at `MAX_PARAMETER`."""
    if not params:
        return ()
    numbers = []
    for part in params.split(";"):
        head = part.split(":", 1)[0]
        numbers.append(min(int(head), MAX_PARAMETER) if head.isdigit() else 0)
    return tuple(numbers)
