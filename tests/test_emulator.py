"""The emulator: the same grid as stock pyte where pyte is right, and the features pyte lacks.

The differential tests feed identical streams to `pyte.Screen` + `pyte.ByteStream` and to
`Emulator` and compare every cell and the cursor: they cover the fast paths (ASCII runs,
SGR memoisation, the combined tokens) over the part of the language both implement the same
way. Deliberate departures from pyte are tested on their own, against what xterm and tmux do.
"""

from __future__ import annotations

import os
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import pyte
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pyte.screens import wcwidth

from services.core.safe_text import is_printable
from services.terminal.emulator import (
    MAX_REPLIES,
    MAX_STRING,
    SYNC_TIMEOUT,
    Cell,
    Emulator,
    EmulatorError,
    MouseTracking,
)
from services.terminal.signals import MAX_SIGNAL_TEXT
from tests.terminal.oracle import Grid, emulator_grid, normalise


def text_of(screen: Any, y: int) -> str:
    return "".join(screen.buffer[y][x].data for x in range(screen.columns)).rstrip()


def grid(screen: Any) -> Grid:
    """Every cell as the oracle compares them: a blank shows only its background, reverse,
    underline and strike (pyte also copies the colour, bold... onto erased cells)."""
    return normalise(emulator_grid(screen, screen.columns, screen.lines))


class PyteWithWideFixes(pyte.Screen):
    """Stock pyte with the two wide-character fixes tmux shows are needed (see the oracle's
    `cjk_emoji` stream): a wide character that does not fit in the last column wraps first
    (pyte writes half of it there), and overwriting a wide character's left half blanks its
    right half (pyte leaves an empty placeholder). And a tab with a wrap pending leaves it
    pending, as xterm and tmux do (the oracle's `tab_at_margin`; pyte moves back a column). And
    a deleted line goes even when the line that moves up into it was never written (pyte then
    leaves it in place; xterm and tmux move every line below the cursor up). And erasing,
    inserting or deleting between the halves of a wide character leaves no right half without
    its left one (xterm erases both halves; pyte leaves an empty placeholder)."""

    def _drop_lone_halves(self) -> None:
        line = self.buffer[self.cursor.y]
        for x in range(self.columns):
            if x in line and line[x].data == "" and not (x and wcwidth(line[x - 1].data[:1]) == 2):
                line[x] = line[x]._replace(data=" ")

    def erase_in_line(self, how: int = 0, private: bool = False) -> None:
        super().erase_in_line(how, private)
        self._drop_lone_halves()

    def erase_characters(self, count: int | None = None) -> None:
        super().erase_characters(count)
        self._drop_lone_halves()

    def insert_characters(self, count: int | None = None) -> None:
        super().insert_characters(count)
        self._drop_lone_halves()

    def delete_characters(self, count: int | None = None) -> None:
        super().delete_characters(count)
        self._drop_lone_halves()

    def delete_lines(self, count: int | None = None) -> None:
        bottom = (self.margins or pyte.screens.Margins(0, self.lines - 1)).bottom
        for row in range(self.cursor.y + (count or 1), bottom + 1):
            self.buffer[row]  # a row read is a row written: pyte moves it up
        super().delete_lines(count)

    def tab(self) -> None:
        if self.cursor.x < self.columns:
            super().tab()

    def draw(self, data: str) -> None:
        for char in data.translate(self.g1_charset if self.charset else self.g0_charset):
            width = wcwidth(char)
            if width == 2 and self.columns - self.cursor.x == 1:
                if pyte.modes.DECAWM in self.mode:
                    self.cursor.x = self.columns
                else:
                    self.cursor.x -= 1
            super().draw(char)
            line = self.buffer[self.cursor.y]
            after = line.get(self.cursor.x)
            if width > 0 and after is not None and not after.data:
                line[self.cursor.x] = self.default_char


def feed_both(data: bytes, columns: int = 20, lines: int = 6, chunk: int = 7) -> tuple[Any, Any]:
    stock = PyteWithWideFixes(columns, lines)
    stream = pyte.ByteStream(stock)
    ours = Emulator(columns, lines)
    for start in range(0, len(data), chunk):
        stream.feed(data[start : start + chunk])
        ours.feed(data[start : start + chunk])
    return stock, ours


def assert_same(stock: Any, ours: Any) -> None:
    assert grid(ours) == grid(stock)
    assert (ours.cursor.x, ours.cursor.y) == (stock.cursor.x, stock.cursor.y)


# The language both speak alike: printable text (ASCII, Latin-1, wide), CR, LF, BS, TAB and the
# common CSI sequences with in-range parameters. Left out: combining marks (after a wide
# character pyte puts them on its empty second cell, where they vanish) and the attributes an
# erased cell shows (background, reverse, underline, strike: pyte copies them all onto erased
# and inserted cells; xterm and tmux only the background, see the oracle's `erase` stream).
_text = st.text(
    alphabet=st.sampled_from([*"abcXYZ 019.,-", "é", "日", "本", "ｱ"]),
    min_size=1,
    max_size=30,
)
_controls = st.sampled_from(["\r", "\n", "\b", "\t", "\r\n"])
_csi = st.one_of(
    st.tuples(st.integers(0, 8), st.integers(0, 25), st.sampled_from("HfABCDGdEF")).map(
        lambda t: f"\x1b[{t[0]};{t[1]}{t[2]}" if t[2] in "Hf" else f"\x1b[{t[0]}{t[2]}"
    ),
    st.sampled_from(["\x1b[K", "\x1b[0K", "\x1b[1K", "\x1b[2K", "\x1b[J", "\x1b[1J", "\x1b[2J"]),
    st.sampled_from(["\x1b[L", "\x1b[2M", "\x1b[3P", "\x1b[2@", "\x1b[4X", "\x1b[3L", "\x1b[M"]),
    st.lists(
        st.sampled_from([0, 1, 3, 5, 22, 23, 25, 31, 35, 39, 49, 91, 97]),
        max_size=4,
    ).map(lambda codes: "\x1b[" + ";".join(map(str, codes)) + "m"),
    st.integers(0, 255).map(lambda n: f"\x1b[38;5;{n}m"),
    st.tuples(st.integers(0, 255), st.integers(0, 255)).map(
        lambda t: f"\x1b[38;2;{t[0]};{t[1]};7m"
    ),
    st.sampled_from(["\x1b[?7l", "\x1b[?7h", "\x1b[4h", "\x1b[4l", "\x1b[?25l", "\x1b[?25h"]),
)
streams = st.lists(st.one_of(_text, _controls, _csi), max_size=60).map(
    lambda parts: "".join(parts).encode()
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams, st.integers(1, 13))
@example("\t日\r\t\x1b[1K".encode(), 1)  # the left half of a wide character erased
def test_the_grid_is_the_one_pyte_draws(data: bytes, chunk: int) -> None:
    assert_same(*feed_both(data, chunk=chunk))


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=300))
def test_ascii_runs_wrap_as_pyte_wraps(text: str) -> None:
    assert_same(*feed_both(b"\x1b[3;15H" + text.encode(), columns=17, lines=5))


def test_without_autowrap_the_last_column_takes_each_character() -> None:
    stock, ours = feed_both(b"\x1b[?7l" + b"abcdefghijklmnopqrstuvwxyz", columns=10)
    assert_same(stock, ours)
    assert text_of(ours, 0) == "abcdefghiz"


def test_a_long_log_is_the_same_grid_fed_in_one_piece_or_byte_by_byte() -> None:
    log = b"".join(b"\x1b[32mINFO\x1b[0m line %d of the log\r\n" % n for n in range(200))
    whole, single = Emulator(30, 8), Emulator(30, 8)
    whole.feed(log)
    for byte in log:
        single.feed(bytes([byte]))
    assert grid(whole) == grid(single)
    assert text_of(whole, 6) == "INFO line 199 of the log"
    assert whole.buffer[6][0].fg == "green"


# -- what pyte lacks -----------------------------------------------------------------------


def test_utf8_split_across_reads_and_invalid_bytes() -> None:
    screen = Emulator(10, 2)
    encoded = "日本".encode()
    screen.feed(encoded[:2])
    screen.feed(encoded[2:4])
    screen.feed(encoded[4:] + b"\xff!")
    assert text_of(screen, 0) == "日本\ufffd!"


def test_the_alternate_screen_comes_and_goes_with_the_cursor() -> None:
    screen = Emulator(20, 5)
    screen.feed(b"shell prompt\r\nls output\x1b[2;4H")
    screen.feed(b"\x1b[?1049h\x1b[Hvim here")
    assert screen.alternate
    assert text_of(screen, 0) == "vim here"
    assert text_of(screen, 1) == ""
    screen.feed(b"\x1b[?1049l")
    assert not screen.alternate
    assert [text_of(screen, 0), text_of(screen, 1)] == ["shell prompt", "ls output"]
    assert (screen.cursor.x, screen.cursor.y) == (3, 1)


@pytest.mark.parametrize("mode", [47, 1047])
def test_modes_47_and_1047_switch_screens_without_moving_the_cursor(mode: int) -> None:
    screen = Emulator(20, 5)
    screen.feed(b"main")
    screen.feed(b"\x1b[?%dhalt" % mode)
    assert screen.alternate and text_of(screen, 0) == "    alt"
    screen.feed(b"\x1b[?%dl" % mode)
    assert text_of(screen, 0) == "main"
    assert screen.cursor.x == 7


def test_scrollback_keeps_what_scrolled_off_the_main_screen_only() -> None:
    screen = Emulator(10, 3, scrollback=5)
    screen.feed(b"\r\n".join(b"line %d" % n for n in range(10)))
    assert [text_of_line(line) for line in screen.history] == [f"line {n}" for n in range(2, 7)]
    assert screen.history_count == 7
    screen.feed(b"\x1b[?1049h" + b"\r\n" * 10 + b"\x1b[?1049l")
    assert screen.history_count == 7  # the alternate screen has none


def text_of_line(line: Any) -> str:
    return "".join(line[x].data for x in range(10)).rstrip()


def test_a_scroll_region_does_not_feed_the_scrollback() -> None:
    screen = Emulator(10, 5)
    screen.feed(b"\x1b[2;4r\x1b[4;1H" + b"x\r\n" * 5)
    assert screen.history_count == 0
    screen.feed(b"\x1b[3J")
    assert len(screen.history) == 0


def test_dirty_rows_follow_their_lines_when_the_screen_scrolls() -> None:
    screen = Emulator(10, 4)
    screen.feed(b"a\r\nb\r\nc\r\nd")
    serials = [screen.buffer[y].serial for y in range(4)]
    screen.take_dirty()
    screen.feed(b"\x1b[2;1HB\x1b[4;1H\r\n")  # change row 1, then scroll one line
    assert [screen.buffer[y].serial for y in range(3)] == serials[1:]
    assert screen.take_dirty() == {0, 3}  # "B" moved up to row 0; row 3 is new
    assert text_of(screen, 0) == "B"


def test_synchronized_output_holds_until_the_end_mark_or_the_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [100.0]
    monkeypatch.setattr("services.terminal.emulator.time.monotonic", lambda: clock[0])
    screen = Emulator(10, 2)
    screen.feed(b"\x1b[?2026hframe")
    assert screen.synchronized
    clock[0] += SYNC_TIMEOUT + 0.01
    assert not screen.synchronized  # a program that never ends its update is drawn anyway
    screen.feed(b"\x1b[?2026h")
    assert screen.synchronized
    screen.feed(b"\x1b[?2026l")
    assert not screen.synchronized


def test_modes_the_view_needs_to_know() -> None:
    screen = Emulator(10, 2)
    screen.feed(b"\x1b[?1h\x1b[?2004h\x1b[?1002h\x1b[?1006h\x1b=")
    assert screen.application_cursor and screen.bracketed_paste and screen.application_keypad
    assert screen.mouse_tracking is MouseTracking.DRAG and screen.mouse_sgr
    assert screen.mouse_reporting
    screen.feed(b"\x1b[?1l\x1b[?2004l\x1b[?1002l\x1b>")
    assert not (screen.application_cursor or screen.bracketed_paste or screen.mouse_reporting)


def test_title_bell_and_replies() -> None:
    screen = Emulator(10, 3)
    screen.feed(b"\x1b]0;first\x07\x1b]2;agent: busy\x1b\\\x07\x07\x1b[2;3H\x1b[6n\x1b[c")
    assert screen.title == "agent: busy"
    assert screen.icon_name == "first"
    assert screen.bells == 2
    assert screen.take_replies() == b"\x1b[2;3R\x1b[?6c"
    assert screen.take_replies() == b""


def test_dim_and_the_colon_forms_of_colour() -> None:
    screen = Emulator(10, 1)
    screen.feed(b"\x1b[2;38:2::10:20:30;48:5:196ma\x1b[22mb")
    first, second = screen.buffer[0][0], screen.buffer[0][1]
    assert first.dim and first.fg == "0a141e" and first.bg == "ff0000"
    assert not second.dim and not second.bold


def test_dec_line_drawing() -> None:
    screen = Emulator(10, 1)
    screen.feed(b"\x1b(0lqk\x1b(Bx")
    assert text_of(screen, 0) == "┌─┐x"


def test_combining_marks_join_the_character_before_them() -> None:
    stock, ours = feed_both("e\u0301 x\u0308".encode())
    assert_same(stock, ours)
    assert ours.buffer[0][0].data == "é"
    ours.feed("\r\n日\u0301".encode())
    assert ours.buffer[1][0].data == "日\u0301"  # pyte puts it on the wide character's stub


def test_zero_width_joiners_stay_with_their_character() -> None:
    screen = Emulator(10, 1)
    screen.feed("a\u200db!".encode())
    assert [screen.buffer[0][x].data for x in range(3)] == ["a\u200d", "b", "!"]


def test_a_wide_character_in_the_last_column_wraps_whole() -> None:
    screen = Emulator(5, 2)
    screen.feed("abcd日".encode())
    assert text_of(screen, 0) == "abcd"
    assert screen.buffer[1][0].data == "日" and screen.buffer[1][1].data == ""


def test_one_cursor_save_slot_restored_many_times() -> None:
    screen = Emulator(10, 3)
    screen.feed(b"\x1b[2;5H\x1b7" * 1000 + b"\x1b[H\x1b8x\x1b[H\x1b8y")
    assert screen._saved is not None
    assert text_of(screen, 1) == "    y"


def test_repeat_is_capped_at_a_screenful() -> None:
    screen = Emulator(10, 3)
    screen.feed(b"x\x1b[999999999b")  # one x, then 30 more: one screenful
    assert [text_of(screen, y) for y in range(3)] == ["x" * 10, "x" * 10, "x"]
    assert screen.history_count == 1


# -- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"\x1b[99999999;99999999H@",
        b"\x1b[99999999@\x1b[99999999P\x1b[99999999L\x1b[99999999M\x1b[99999999X",
        b"\x1b[99999999S\x1b[99999999T\x1b[99999999Z\x1b[99999999I\x1b[99999999b",
        b"\x1b[5J\x1b[9K\x1b[1;2;3A\x1b[n\x1b[?1;2K\x1b[>c\x1b[!p\x1b[ q",
        b"\x1b[38;5;999m\x1b[38;2;999;0;0m\x1b[38;5m\x1b[48;2m\x1b[38:2m",
        b"\x1b[?99999h\x1b[?3h\x1b[?5h\x1b[?6h\x1b[?1048h\x1b[?1048l\x1b[?5l",
        b"\x1b(\x1b)\x1b#\x1b%\x1b",
        b"\x9b31m\x9d0;t\x07\xc2\x85\xc2\x9b",
        "e\u0301".encode() + "\u0301".encode() * 10_000,
    ],
)
def test_absurd_and_broken_sequences_are_survived(data: bytes) -> None:
    screen = Emulator(20, 5)
    for start in range(0, len(data), 3):
        screen.feed(data[start : start + 3])
    screen.feed(b"\x1b[H\x1b[0mok")
    assert text_of(screen, 0).startswith("ok")
    assert 0 <= screen.cursor.x <= 20 and 0 <= screen.cursor.y < 5
    assert all(len(screen.buffer[y][x].data) <= 10 for y in range(5) for x in range(20))


def test_unterminated_strings_are_dropped_without_growing() -> None:
    screen = Emulator(20, 2)
    tracemalloc.start()
    try:
        for _ in range(200):
            screen.feed(b"\x1b]2;" + b"t" * 50_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2 * 1024 * 1024
    assert len(screen._pending) <= MAX_STRING + 8
    screen.feed(b"\x07visible")
    assert text_of(screen, 0) == "visible"


def test_origin_mode_without_a_region_counts_from_the_top_of_the_screen() -> None:
    screen = Emulator(10, 6)
    screen.feed(b"\x1b[?6h\x1b[5dX\x1b[6n")  # pyte asserted that origin mode has margins
    assert text_of(screen, 4) == "X"
    assert screen.take_replies() == b"\x1b[5;2R"


def test_origin_mode_with_a_region_counts_from_its_top_and_stops_at_its_bottom() -> None:
    screen = Emulator(10, 6)
    screen.feed(b"\x1b[2;4r\x1b[?6h\x1b[2dY\x1b[6n\x1b[9dZ")
    assert [text_of(screen, y) for y in (2, 3)] == ["Y", " Z"]
    assert screen.take_replies() == b"\x1b[2;2R"


def test_a_position_report_after_the_last_column_names_the_last_column() -> None:
    screen = Emulator(5, 2)
    screen.feed(b"abcde\x1b[6n")  # the wrap is pending: xterm answers column 5, pyte 6
    assert screen.take_replies() == b"\x1b[1;5R"


@pytest.mark.parametrize("insert", [b"\x1b[@", b"\x1b[4h "], ids=["ICH", "IRM"])
def test_a_character_pushed_off_the_right_edge_is_gone_for_good(insert: bytes) -> None:
    screen = Emulator(5, 2)
    screen.feed(b"abcde\r" + insert)
    assert text_of(screen, 0) == " abcd"
    assert len(screen.buffer[0]) == 5
    screen.resize(2, 10)  # pyte kept the `e` one column past the edge, and showed it now
    assert text_of(screen, 0) == " abcd"


@pytest.mark.parametrize("autowrap", [b"", b"\x1b[?7l"], ids=["wrap", "nowrap"])
def test_a_character_wider_than_the_screen_is_not_drawn(autowrap: bytes) -> None:
    screen = Emulator(1, 3)
    screen.feed(autowrap + "日x".encode())
    assert [screen.buffer[y][0] for y in range(3)] == [Cell("x"), Cell(" "), Cell(" ")]


def test_scrollback_coming_back_to_a_narrower_screen_is_cut_to_it() -> None:
    screen = Emulator(12, 2, scrollback=10)
    screen.feed(b"abcdefghijkl\r\n" * 3)
    screen.resize(2, 6)
    screen.resize(4, 6)  # two lines come back from the scrollback, 12 cells wide
    assert [text_of(screen, y) for y in range(2)] == ["abcdef", "abcdef"]
    assert all(len(screen.buffer[y]) == 6 for y in range(4))


def test_a_control_inside_a_csi_split_across_reads_runs_once() -> None:
    screen = Emulator(10, 4)
    for read in (b"\x1b[", b"\n", b"2", b"CX"):  # LF inside CUF 2, as xterm executes it
        screen.feed(read)
    assert text_of(screen, 1) == "  X"  # the LF ran once, not once per read


def test_a_failing_sequence_costs_only_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_bell(self: Emulator) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(Emulator, "bell", broken_bell)
    screen = Emulator(10, 2)
    with pytest.raises(EmulatorError) as failed:
        screen.feed(b"ab\x07cd\x07ef\x1b[2")
    assert isinstance(failed.value.__cause__, RuntimeError)
    assert "2 sequence(s) failed" in str(failed.value)
    screen.feed(b";1Hgh")  # the sequence split across reads was kept
    assert [text_of(screen, 0), text_of(screen, 1)] == ["abcdef", "gh"]


# -- whatever it is fed --------------------------------------------------------------------
#
# The emulator's invariants (its module docstring) must hold after every read and every
# resize, for pure random bytes, for streams built from a grammar of CSI, OSC, DCS and ESC
# pieces with extreme parameters, and for the corpus recordings with bytes inserted, deleted,
# replaced and sequences spliced in; without resizes, the screen must be the one the same
# stream draws in one read. `ROOST_FUZZ_EXAMPLES` sets how many examples each kind gets (CI
# runs the default; DEVELOPERS.md gives a longer run).

FUZZ_EXAMPLES = int(os.environ.get("ROOST_FUZZ_EXAMPLES", "200"))
RECORDINGS = [
    path.read_bytes() for path in sorted((Path(__file__).parent / "terminal/corpus").glob("*.bin"))
]

_numbers = st.one_of(
    st.integers(0, 12),
    st.sampled_from([24, 80, 255, 256, 9999, 10_000, 65_535, 2**31, 2**32 + 1, 10**30]),
).map(str)
_parameters = st.lists(
    st.one_of(_numbers, st.just(""), st.lists(_numbers, min_size=2, max_size=5).map(":".join)),
    max_size=7,
).map(";".join)
_csi_piece = st.builds(
    lambda prefix, parameters, inter, final: f"\x1b[{prefix}{parameters}{inter}{final}",
    st.sampled_from(["", "", "?", ">", "<", "=", "!"]),
    _parameters,
    st.sampled_from(["", "", "", " ", "!", "$", '"', "'"]),
    st.characters(min_codepoint=0x40, max_codepoint=0x7E),
)
_MODES = [1, 3, 4, 5, 6, 7, 9, 20, 25, 47, 1000, 1002, 1003, 1004, 1006, 1047, 1048, 1049, 2004]
_mode_piece = st.builds(
    lambda private, mode, on: f"\x1b[{private}{mode}{on}",
    st.sampled_from(["?", "?", ""]),
    st.sampled_from(_MODES),
    st.sampled_from("hl"),
)
_escape_piece = st.sampled_from(
    [
        *("\x1b7", "\x1b8", "\x1bc", "\x1bD", "\x1bE", "\x1bM", "\x1bH", "\x1b=", "\x1b>"),
        *("\x1b#8", "\x1b(0", "\x1b(B", "\x1b)0", "\x0e", "\x0f", "\x1b", "\x1b[", "\x1b]"),
    ]
)
_string_piece = st.builds(
    lambda opener, body, end: opener + body + end,
    st.sampled_from(
        [
            *("\x1b]0;", "\x1b]2;", "\x1b]8;;", "\x1b]52;c;", "\x1bP", "\x1b_", "\x9d"),
            *("\x1b]9;", "\x1b]777;notify;", "\x1b]99;;", "\x1b]99;i=1:d=0;", "\x1b]99;e=1;"),
        ]
    ),
    st.text(max_size=40),
    st.sampled_from(["\x07", "\x1b\\", "\x9c", ""]),
)
_text_piece = st.one_of(
    st.text(
        alphabet=st.sampled_from(
            [*"ab Z~", "é", "日", "ｱ", "😀", "\u0301", "\u200d", "\ufe0f", "\x00", "\x7f"]
        ),
        max_size=30,
    ),
    st.text(max_size=10),
)
_control_piece = st.sampled_from(
    ["\r", "\n", "\r\n", "\t", "\b", "\x07", "\x0b", "\x0c", "\x85", "\x9b", "\x18", "\x1a"]
)
_piece = st.one_of(
    _csi_piece, _mode_piece, _escape_piece, _string_piece, _text_piece, _control_piece
)
generated_streams = st.lists(_piece, max_size=120).map(lambda parts: "".join(parts).encode())


@st.composite
def mutated_recordings(draw: st.DrawFn) -> bytes:
    """A stretch of a corpus recording with bytes inserted, deleted and replaced, and pieces of
    the grammar spliced in."""
    recording = draw(st.sampled_from(RECORDINGS))
    start = draw(st.one_of(st.just(0), st.integers(0, len(recording))))
    data = bytearray(recording[start : start + draw(st.integers(0, 4096))])
    for _ in range(draw(st.integers(0, 12))):
        at = draw(st.integers(0, len(data)))
        edit = draw(st.sampled_from(["insert", "delete", "replace", "splice"]))
        if edit == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif edit == "delete":
            del data[at : at + draw(st.integers(1, 16))]
        elif edit == "replace":
            data[at : at + 1] = draw(st.binary(min_size=1, max_size=1))
        else:
            data[at:at] = draw(_piece).encode()
    return bytes(data)


class Resize(NamedTuple):
    lines: int
    columns: int


_sizes = st.tuples(st.integers(1, 30), st.integers(1, 10))
# Read sizes and resizes, applied in turn (and again from the start) until the stream is fed.
_plans = st.lists(
    st.one_of(st.integers(1, 200), st.builds(Resize, st.integers(1, 10), st.integers(1, 30))),
    max_size=12,
)


def assert_invariants(screen: Emulator) -> None:
    """What the emulator's module docstring promises, whatever it was fed."""
    columns, lines = screen.columns, screen.lines
    assert 0 <= screen.cursor.x <= columns and 0 <= screen.cursor.y < lines
    for buffer in filter(None, (screen.buffer, screen._main_buffer)):
        assert len(buffer) == lines
        assert all(len(line) == columns for line in buffer)
        # What the scrollback leaves out of a line (past its `extent`) is its own blank.
        assert all(cell is line.default for line in buffer for cell in line[line.extent :])
    if screen.margins is not None:
        assert 0 <= screen.margins.top < screen.margins.bottom < lines
    assert all(0 <= y < lines for y in screen.dirty)
    maxlen = screen.history.maxlen
    assert maxlen is not None and len(screen.history) <= maxlen
    assert screen.history_count >= len(screen.history)


SIGNALLED_AT = datetime(2026, 1, 1, tzinfo=UTC)


def feed_in_turn(data: bytes, size: tuple[int, int], scrollback: int, plan: list[Any]) -> None:
    """Feed `data` to a new emulator of `size` by `plan`, checking the invariants each step."""
    columns, lines = size
    screen = Emulator(columns, lines, scrollback=scrollback)
    if not any(isinstance(step, int) for step in plan):
        plan = [*plan, 64]
    fed = 0
    while fed < len(data):
        for step in plan:
            if isinstance(step, Resize):
                screen.resize(step.lines, step.columns)
            else:
                screen.feed(data[fed : fed + step])
                fed += step
            assert_invariants(screen)
    screen.take_dirty()
    replies = screen.take_replies()
    assert len(replies) <= MAX_REPLIES
    signals = screen.take_signals(lambda: SIGNALLED_AT)
    assert all(is_printable(signal.text) for signal in signals)
    assert all(len(signal.text) <= MAX_SIGNAL_TEXT for signal in signals)
    assert all(isinstance(cell, Cell) for line in screen.buffer for cell in line)
    if len(data) <= MAX_STRING and not any(isinstance(step, Resize) for step in plan):
        # How the input was cut into reads changes nothing (below the cap on strings).
        whole = Emulator(columns, lines, scrollback=scrollback)
        whole.feed(data)
        assert grid(whole) == grid(screen)
        assert (whole.cursor.x, whole.cursor.y) == (screen.cursor.x, screen.cursor.y)
        assert (whole.take_replies(), whole.history_count) == (replies, screen.history_count)
        assert whole.take_signals(lambda: SIGNALLED_AT) == signals


fuzz_settings = settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@fuzz_settings
@given(st.binary(max_size=2000), _sizes, st.integers(0, 20), _plans)
def test_random_bytes_keep_every_invariant(
    data: bytes, size: tuple[int, int], scrollback: int, plan: list[Any]
) -> None:
    feed_in_turn(data, size, scrollback, plan)


@fuzz_settings
@given(generated_streams, _sizes, st.integers(0, 20), _plans)
def test_generated_sequences_keep_every_invariant(
    data: bytes, size: tuple[int, int], scrollback: int, plan: list[Any]
) -> None:
    feed_in_turn(data, size, scrollback, plan)


@fuzz_settings
@given(mutated_recordings(), _sizes, st.integers(0, 20), _plans)
def test_mutated_recordings_keep_every_invariant(
    data: bytes, size: tuple[int, int], scrollback: int, plan: list[Any]
) -> None:
    feed_in_turn(data, size, scrollback, plan)


# -- what real programs showed (issue 12, item 7) ------------------------------------------


def test_a_visual_bell_leaves_every_cell_as_it_was() -> None:
    """vim's visual bell is DECSCNM on then off: the whole screen is shown inverted for a
    moment (xterm), while every cell keeps its own attributes, reverse video included."""
    screen = Emulator(20, 3)
    screen.feed(b"\x1b[7mselected\x1b[27m plain\x1b[7m")
    before = grid(screen)
    screen.feed(b"\x1b[?5h")
    assert screen.reverse_screen
    assert grid(screen) == before
    screen.feed(b"\x1b[?5l")
    assert not screen.reverse_screen
    assert grid(screen) == before
    screen.feed(b"on\r\n\x1b[K")  # the cursor's attributes are the program's, not the bell's
    assert screen.buffer[0][14] == Cell("o", reverse=True)
    assert screen.buffer[1][0] == Cell(" ")


@pytest.mark.parametrize(
    "underline_colour",
    [b"58;2;1;2;3", b"58;5;196", b"58:2::1:2:3", b"58:5:196", b"59"],
)
def test_underline_colours_set_nothing_else(underline_colour: bytes) -> None:
    """SGR 58 (underline colour, 24-bit or 256) and 59 (its default) carry colour values that
    must not be read as attributes (2 is dim, 5 blink, 1 bold, 3 italics...)."""
    screen = Emulator(10, 1)
    screen.feed(b"\x1b[4;" + underline_colour + b";31mu")
    assert screen.buffer[0][0] == Cell("u", fg="red", underscore=True)


def test_a_tab_after_the_last_column_keeps_the_pending_wrap() -> None:
    """After the last column the next character wraps; HT there does not move the cursor back
    into the row (xterm and tmux), so that character is not written over the last one."""
    screen = Emulator(10, 3)
    screen.feed(b"0123456789\tX")
    assert text_of(screen, 0) == "0123456789"
    assert text_of(screen, 1) == "X"


def test_entering_or_leaving_the_alternate_screen_twice() -> None:
    """dialog leaves with ?1049l twice; xterm and tmux restore the cursor saved on the first
    entry each time, and a second entry saves nothing."""
    screen = Emulator(20, 5)
    screen.feed(b"\x1b[2;3H\x1b[?1049h\x1b[5;1H\x1b[?1049h\x1b[?1049l")
    assert (screen.cursor.x, screen.cursor.y) == (2, 1)
    screen.feed(b"\x1b[4;7H\x1b[?1049l")
    assert (screen.cursor.x, screen.cursor.y) == (2, 1)


def test_titles_are_pushed_and_popped() -> None:
    """vim and dialog push the title on entry (CSI 22;0 t) and pop it on exit (CSI 23;0 t)."""
    screen = Emulator(10, 1)
    screen.feed(b"\x1b]0;shell\x07\x1b[22;0t\x1b]2;vim\x07\x1b[22;2t\x1b]2;help\x07")
    assert (screen.title, screen.icon_name) == ("help", "shell")
    screen.feed(b"\x1b[23;2t")
    assert screen.title == "vim"
    screen.feed(b"\x1b[23;0t\x1b[23;0t")  # one pop too many changes nothing
    assert (screen.title, screen.icon_name) == ("shell", "shell")
    screen.feed(b"\x1b]1;icon\x07\x1b[22;1t\x1b]1;other\x07\x1b]2;kept\x07\x1b[23;0t")
    assert (screen.title, screen.icon_name) == ("kept", "icon")  # only the icon was pushed
    for n in range(20):
        screen.feed(b"\x1b]2;%d\x07\x1b[22;2t" % n)
    screen.feed(b"\x1b[23;2t" * 20)
    assert screen.title == "10"  # the ten newest were kept


@pytest.mark.parametrize(
    ("data", "shown"),
    [
        (b"a\x1b[3b", "aaaa"),
        (b"a\x1b[3b\x1b[2b", "aaaa"),  # a REP is not a character to repeat
        (b"ab\x1b[2bc\x1b[2b", "abbbccc"),
        (b"a\x1b[31m\x1b[3b", "a"),  # nor is what comes before a control or a sequence
        (b"a\r\x1b[3b", "a"),
        (b"a\x1b7\x1b[3b", "a"),
        (b"a\x1b]2;title\x07\x1b[3b", "a"),
        (b"\x1b[31ma\x1b[2b", "aaa"),
    ],
)
def test_repeat_repeats_only_the_character_just_before(data: bytes, shown: str) -> None:
    """As tmux does, and vttest's REP test expects ("a diagonal of 2 +'s")."""
    screen = Emulator(20, 2)
    screen.feed(data)
    assert text_of(screen, 0) == shown


@pytest.mark.parametrize(
    ("cut", "cursor"),
    [
        ("\x1b[1K", "\x1b[1;1H"),  # erase to the cursor: the left half only
        ("\x1b[1X", "\x1b[1;1H"),  # erase one character: the left half only
        ("\x1b[1P", "\x1b[1;1H"),  # delete the left half: the right one moves under the cursor
        ("\x1b[1@", "\x1b[1;2H"),  # insert between the halves
    ],
)
def test_a_wide_character_cut_in_two_leaves_no_half_behind(cut: str, cursor: str) -> None:
    screen = Emulator(6, 1)
    screen.feed(f"\x1b[44m日\x1b[0m{cursor}{cut}".encode())
    line = screen.buffer[0]
    halves = [x for x in range(1, screen.columns) if not line[x].data]
    # A right half only where its wide character still stands: nothing that the next character
    # drawn before it would wipe, which no redraw of this screen could reproduce.
    assert all(wcwidth(line[x - 1].data) == 2 for x in halves)
