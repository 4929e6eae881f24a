"""The bytes that redraw an emulator's screen on a fresh terminal: a late joiner's first frame
and a recording's keyframe.

`screen_bytes(emulator)` written to a fresh terminal of the same size reproduces what the
emulator shows (every cell's character and attributes, wide characters, the cursor's position
and visibility, a reverse-video screen) *and* the state that decides where later output lands:
the scrolling region, the current attributes, the cursor save slot, the character sets, tab
stops, the insert, wrap and origin modes, the input modes (application keys, mouse, bracketed
paste), the title, the main screen behind an alternate one, and an escape sequence or UTF-8
character cut off at the end of the last read. So the same output fed after it to both
terminals draws the same screen (tests/test_snapshot.py holds both properties): a
browser fed the snapshot then the live stream shows what the pane shows, and rewind restores a
keyframe and replays the recording forward from it.

What it does not carry: the scrollback (a viewer starts with none), bells and notifications
already handed over, the title stack, the character a REP right after it would repeat, and
two states no byte sequence reaches from a fresh
terminal: a cursor outside the scrolling region while origin mode is on (it lands on the
region's nearest row), and a right half of a wide character whose left half is gone (drawn as
a blank, as the view draws it). Synchronized output (mode 2026) is not resumed: a snapshot is a
whole frame.

Everything it writes comes from the emulator's cells, which hold no control characters; the
title is made printable (`safe_text.printable`).
"""

from __future__ import annotations

from pyte import charsets
from pyte import modes as mo
from pyte.screens import wcwidth

from services.core.safe_text import printable
from services.terminal.emulator import Buffer, Cell, Emulator, MouseTracking

_BLANK = Cell(" ")
_NAMES = ("black", "red", "green", "brown", "blue", "magenta", "cyan", "white")
_FLAG_CODES = (
    ("bold", 1),
    ("dim", 2),
    ("italics", 3),
    ("underscore", 4),
    ("blink", 5),
    ("reverse", 7),
    ("strikethrough", 9),
)


def screen_bytes(emulator: Emulator, *, partial_character: bool = True) -> bytes:
    """What redraws `emulator`'s screen and state on a fresh terminal of its size (see the
    module docstring). Reads the emulator without changing it.

    `partial_character=False` leaves out the start of a UTF-8 character cut off at the end of
    the last read: for a stream of decoded text after it (a recording's events), whose next
    piece holds the whole character."""
    out: list[str] = ["\x1b[0m\x1b[2J"]
    main = emulator._main_buffer
    if main is None and emulator._alternate_saved is not None:
        # The cursor a later `CSI ? 1049 l` restores: saved by entering and leaving again.
        x, y, attrs = emulator._alternate_saved
        _place_cursor(out, emulator, emulator.buffer, x, y, origin=None)
        out.append(sgr(attrs) + "\x1b[?1049h\x1b[?47l")
    if main is not None:
        _draw_rows(out, emulator, main)
        saved = emulator._alternate_saved
        if saved is None:
            out.append("\x1b[?1047h")
        else:
            x, y, attrs = saved
            _place_cursor(out, emulator, main, x, y, origin=None)
            out.append(sgr(attrs) + "\x1b[?1049h")
    _draw_rows(out, emulator, emulator.buffer)
    _tab_stops(out, emulator)
    if emulator.margins is not None:
        out.append(f"\x1b[{emulator.margins.top + 1};{emulator.margins.bottom + 1}r")
    if emulator._saved is not None:
        x, y, attrs, g0, g1, charset, origin, wrap = emulator._saved
        if origin:
            out.append("\x1b[?6h")
        _place_cursor(out, emulator, emulator.buffer, x, y, origin=origin)
        _charsets(out, g0, g1, charset)
        out.append(sgr(attrs) + ("" if wrap else "\x1b[?7l") + "\x1b7")
        out.append("\x1b[?6l\x1b[?7h\x1b(B\x1b)B\x0f")
    origin = mo.DECOM in emulator.mode
    if origin:
        out.append("\x1b[?6h")
    cursor = emulator.cursor
    _place_cursor(out, emulator, emulator.buffer, cursor.x, cursor.y, origin=origin)
    # After the cursor, which may draw a cell: the cells hold characters already translated.
    _charsets(out, emulator.g0_charset, emulator.g1_charset, emulator.charset)
    out.append(sgr(cursor.attrs))
    out.append(_modes(emulator))
    title = printable(emulator.title)
    icon = printable(emulator.icon_name)
    if title:
        out.append(f"\x1b]2;{title}\x07")
    if icon:
        out.append(f"\x1b]1;{icon}\x07")
    out.append(emulator._pending)
    partial = emulator._decoder.getstate()[0] if partial_character else b""
    return "".join(out).encode() + partial


def sgr(attrs: Cell) -> str:
    """The SGR sequence that sets exactly `attrs` (from a reset)."""
    key = attrs[1:]
    found = _SGR_MEMO.get(key)
    if found is None:
        if len(_SGR_MEMO) > 4096:
            _SGR_MEMO.clear()
        found = _SGR_MEMO[key] = _sgr(attrs)
    return found


_SGR_MEMO: dict[tuple[object, ...], str] = {}
"""Screens repeat a few styles: each one's sequence is worked out once."""


def _sgr(attrs: Cell) -> str:
    codes = ["0"]
    codes.extend(str(code) for field, code in _FLAG_CODES if getattr(attrs, field))
    for colour, base in ((attrs.fg, 30), (attrs.bg, 40)):
        if colour == "default":
            continue
        if colour in _NAMES:
            codes.append(str(base + _NAMES.index(colour)))
        elif colour.startswith("bright") and colour[6:] in _NAMES:
            codes.append(str(base + 60 + _NAMES.index(colour[6:])))
        else:
            red, green, blue = (int(colour[i : i + 2], 16) for i in (0, 2, 4))
            codes.append(f"{base + 8};2;{red};{green};{blue}")
    return f"\x1b[{';'.join(codes)}m"


def _draw_rows(out: list[str], emulator: Emulator, buffer: Buffer) -> None:
    """Every cell of `buffer`, with the default character sets and modes (the cells hold what
    was drawn, already translated). A row starts as the blank it was made of (its `default`,
    see `_line_defaults`): only the cells that differ from it are drawn."""
    columns = emulator.columns
    _line_defaults(out, emulator, buffer)
    attrs = _BLANK[1:]  # the attributes in force
    for y, line in enumerate(buffer):
        blank = line.default
        written = [x for x, cell in enumerate(line) if cell != blank]
        if not written:
            continue
        out.append(f"\x1b[{y + 1}H")
        at = 0  # the cursor's column
        last = line[columns - 1]
        if not last.data.isascii() and wcwidth(last.data[0]) == 2:
            # A wide character in the last column (an insert pushed it there) would wrap if
            # drawn there: draw it one column left, then insert a blank before it.
            out.append(f"\x1b[{columns - 1}G{sgr(last)}{last.data}\x1b[{columns - 1}G\x1b[0m\x1b[@")
            written.pop()
            attrs = _BLANK[1:]
            at = columns - 2
        wide_until = -1
        for x in written:
            cell = line[x]
            data = cell.data
            if not data and x == wide_until:
                continue  # the right half of the wide character just drawn
            if at != x:
                out.append(f"\x1b[{x + 1}G")
            style = cell[1:]
            if style != attrs:
                attrs = style
                out.append(sgr(cell))
            data = data or " "
            out.append(data)
            if data.isascii() or wcwidth(data[0]) != 2:
                at = x + 1
            else:
                wide_until, at = x + 1, x + 2
    out.append("\x1b[0m")


def _line_defaults(out: list[str], emulator: Emulator, buffer: Buffer) -> None:
    """Give each row the blank it was made of. Erasing in a background colour makes rows of
    blanks in it (and a wider screen pads them with it). A reverse index at the top inserts
    such a row, in the background in force, pushing the others down: one per row from the
    lowest that needs one, bottom first, leaves each in place (without touching the
    scrollback, which a scroll up would fill)."""
    lowest = max((y for y, line in enumerate(buffer) if line.default != _BLANK), default=-1)
    if lowest < 0:
        out.append("\x1b[0m")
        return
    out.append("\x1b[H")
    for y in range(lowest, -1, -1):
        out.append(sgr(buffer[y].default) + "\x1bM")
    out.append("\x1b[0m")


def _place_cursor(
    out: list[str],
    emulator: Emulator,
    buffer: Buffer,
    x: int,
    y: int,
    *,
    origin: bool | None,
) -> None:
    """Move the cursor to (`x`, `y`). Column `columns` (a wrap pending after the last column)
    is reached by drawing the last cell again; in origin mode rows count from the region's top.
    """
    row = y
    if origin:
        top, bottom = emulator.margins or (0, emulator.lines - 1)
        row = min(max(y, top), bottom) - top
    if x < emulator.columns:
        out.append(f"\x1b[{row + 1};{x + 1}H")
        return
    line = buffer[y]
    last = line[emulator.columns - 1]
    if last.data == "" and emulator.columns > 1:
        left = line[emulator.columns - 2]
        if wcwidth(left.data[:1]) == 2:
            out.append(f"\x1b[{row + 1};{emulator.columns - 1}H{sgr(left)}{left.data}")
            return
    out.append(f"\x1b[{row + 1};{emulator.columns}H{sgr(last)}{last.data or ' '}")


def _charsets(out: list[str], g0: str, g1: str, charset: int) -> None:
    designation = {id(charsets.VT100_MAP): "0", id(charsets.LAT1_MAP): "B"}
    out.append(f"\x1b({designation.get(id(g0), 'B')}\x1b){designation.get(id(g1), 'B')}")
    out.append("\x0e" if charset else "\x0f")


def _tab_stops(out: list[str], emulator: Emulator) -> None:
    if emulator.tabstops == set(range(8, emulator.columns, 8)):
        return
    out.append("\x1b[3g")
    out.extend(f"\x1b[{stop + 1}G\x1bH" for stop in sorted(emulator.tabstops))


def _modes(emulator: Emulator) -> str:
    """The modes that differ from a fresh terminal's, set."""
    mode = emulator.mode
    sets = [
        ("\x1b[4h", mo.IRM in mode),
        ("\x1b[20h", mo.LNM in mode),
        ("\x1b[?7l", mo.DECAWM not in mode),
        ("\x1b[?25l", emulator.cursor.hidden),
        ("\x1b[?5h", emulator.reverse_screen),
        ("\x1b[?1h", emulator.application_cursor),
        ("\x1b=", emulator.application_keypad),
        ("\x1b[?2004h", emulator.bracketed_paste),
        ("\x1b[?1006h", emulator.mouse_sgr),
        ("\x1b[?1004h", emulator.focus_events),
    ]
    tracking = emulator.mouse_tracking
    if tracking is not MouseTracking.OFF:
        sets.append((f"\x1b[?{tracking.value}h", True))
    return "".join(sequence for sequence, on in sets if on)
