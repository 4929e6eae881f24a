"""The emulator: the same grid as stock pyte where pyte is right, and the features pyte lacks.

The differential tests feed identical streams to `pyte.Screen` + `pyte.ByteStream` and to
`Emulator` and compare every cell and the cursor: they cover the fast paths (ASCII runs,
SGR memoisation, the combined tokens) over the part of the language both implement the same
way. Deliberate departures from pyte are tested on their own, against what xterm and tmux do.
"""

from __future__ import annotations

import tracemalloc
from typing import Any

import pyte
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyte.screens import wcwidth

from services.terminal.emulator import (
    MAX_STRING,
    SYNC_TIMEOUT,
    Cell,
    Emulator,
    MouseTracking,
)
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
    right half (pyte leaves an empty placeholder)."""

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


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400), st.integers(1, 40))
def test_random_bytes_never_break_it(data: bytes, chunk: int) -> None:
    screen = Emulator(12, 4, scrollback=20)
    for start in range(0, len(data), chunk):
        screen.feed(data[start : start + chunk])
    screen.take_dirty()
    screen.take_replies()
    assert 0 <= screen.cursor.x <= 12 and 0 <= screen.cursor.y < 4
    assert len(screen.history) <= 20
    for y in range(4):
        for x in range(12):
            assert isinstance(screen.buffer[y][x], Cell)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.sampled_from([b"\x1b[", b"\x1b]", b"\x1bP", b"1;", b"?", b"m", b"\x07", b"\x1b\\"]),
        max_size=200,
    ),
    st.integers(1, 24),
    st.integers(1, 10),
)
def test_resizing_midstream_keeps_the_cursor_inside(
    parts: list[bytes], columns: int, lines: int
) -> None:
    screen = Emulator(10, 5, scrollback=10)
    screen.feed(b"".join(parts) + b"\r\n".join(b"%d" % n for n in range(12)))
    screen.resize(lines, columns)
    screen.feed(b"after")
    assert 0 <= screen.cursor.x <= columns and 0 <= screen.cursor.y < lines
    assert all(x < columns for y in range(lines) for x in screen.buffer[y])


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
