"""The terminal emulator against tmux, cell by cell, over every stream of the corpus.

Each stream of `tests/terminal/corpus` (recorded by `python -m tests.terminal.record`) is fed
to the emulator under test (`make_emulator`) and to a tmux pane of the same size
(`tests/terminal/oracle.py`); the screens must agree in text, attributes and cursor, after the
normalisations the oracle documents. One private tmux server serves the whole module.

`KNOWN_STOCK_PYTE_DIVERGENCES` lists the streams stock pyte renders differently, and why: the
list of what an emulator built on pyte has to fix. They are non-strict xfails, so a fixed one
shows as XPASS; when `make_emulator` changes, trim the list to what still fails.

The window title is compared too, for every stream that sets one or uses the title stack
(`TmuxOracle.title`).

Where tmux 3.3a departs from xterm, the emulator follows xterm. A recorded program that shows it
carries a `divergence` in the manifest (why, which rows, whether the cursor may differ): those are
not compared, and `test_each_known_divergence_is_still_needed` checks that exactly they still
differ, so a mark goes as soon as it is not needed. Marked today: BS after a character in the
last column (vttest's margins), DECSTBM homing to the screen's top in origin mode (vttest's
origin test), DCH colouring cells never written since the line was cleared (ncurses' menus),
HPR and VPR, which tmux does not implement (vttest's ISO 6429 boxes).
The synthetic streams stay out of the way of these (tmux is the oracle, so a stream there would
teach an emulator tmux's choice):

- mode 47/1047: tmux clears the alternate screen on every entry; xterm keeps its old content
  for 47. `alt_screen_47` enters 47 only when the alternate screen is blank in both.
- mode 1048 (save/restore the cursor alone) and CHT (CSI n I) are not implemented by tmux.
- IL/DL with the cursor outside the scroll region act on the rows from the cursor to the bottom
  of the screen in tmux; xterm ignores them.
- writing over the right half of a wide character leaves its left half in tmux (and capture-pane
  then prints a row wider than the screen); xterm blanks the whole character.
- after writing in the last column, tmux keeps the cursor at x == cols: BS or a small CUB then
  lands one column further right than in xterm, and BS at column 0 of a row continuing a wrapped
  one goes back up a row (xterm does that only with reverse-wrap, mode 45).
- DECSLRM (left/right margins), DECCOLM (132 columns) and DECSCNM (reverse screen) are ignored
  by tmux.
- emoji with ZWJ or VS16 and other characters whose width depends on the Unicode version:
  tmux takes widths from the C library, pyte from `wcwidth`; the oracle refuses a stream whose
  widths they disagree about.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyte
import pytest

from services.terminal.emulator import Cell, Emulator
from tests.conftest import require
from tests.terminal.oracle import (
    Differences,
    EmulatorScreen,
    TmuxOracle,
    compare,
    differences,
    emulator_grid,
    normalise,
)
from tests.terminal.record import MAX_BYTES


def make_emulator(cols: int, rows: int) -> tuple[Callable[[bytes], None], EmulatorScreen]:
    """The emulator under test: roost's."""
    screen = Emulator(cols, rows)
    return screen.feed, screen


def stock_pyte(cols: int, rows: int) -> tuple[Callable[[bytes], None], EmulatorScreen]:
    """What roost's emulator is built on, as it comes."""
    screen = pyte.Screen(cols, rows)
    stream = pyte.ByteStream(screen)
    return stream.feed, screen


_DIM = "SGR 2 (dim) is ignored"
_NO_ALTERNATE_SCREEN = (
    "no alternate screen: the modes are ignored, so the alternate drawing lands on the primary "
    "screen and nothing is restored"
)
_PRIVATE_SGR = (
    "crashes: vim's CSI ? 4 m reaches select_graphic_rendition with private=True (TypeError)"
)

KNOWN_STOCK_PYTE_DIVERGENCES: dict[str, str] = {
    "agent_tui": f"{_DIM}: the '? for shortcuts' hint",
    "alt_screen_1049": _NO_ALTERNATE_SCREEN,
    "alt_screen_47": _NO_ALTERNATE_SCREEN,
    "cjk_emoji": (
        "a wide character that does not fit in the last column is put there instead of wrapping; "
        "writing over a wide character's left half leaves its placeholder ('') instead of a blank"
    ),
    "cursor_movement": "HPA (CSI n `) is ignored: pyte binds it to CSI n ' instead",
    "cursor_save_restore": (
        "CSI s and CSI u are ignored; DECRC pops the saved state, so a second DECRC restores an "
        "older DECSC; ESC ( 0 is ignored in UTF-8 mode, so the restored charset draws 'q'"
    ),
    "erase": (
        "ED 3 (erase the scrollback) erases the screen; erased cells take the reverse attribute "
        "(tmux and xterm keep only the background colour)"
    ),
    "insert_delete": "lines inserted by IL have the default background, not the current one",
    "line_drawing": (
        "ESC ( 0, ESC ) 0, SO and SI are ignored in UTF-8 mode (pyte's default): lines stay ASCII"
    ),
    "log_flood": f"{_DIM}: the timestamps",
    "origin_mode": (
        "with DECOM set, CUP to a row past the region is ignored instead of clamped to its bottom"
    ),
    "scroll_region": (
        "LF on the last row below the region and RI on the top row above it jump into the region "
        "(they should do nothing); SU and SD (CSI S, CSI T) are ignored; a line scrolled in takes "
        "the default background, not the current one"
    ),
    "sgr_attributes": (
        f"{_DIM}; erased cells take the underline and reverse attributes (tmux and xterm keep "
        "only the background colour)"
    ),
    "tabs": "CBT (CSI Z) is ignored",
    "vim_quit": f"{_PRIVATE_SGR}; and {_NO_ALTERNATE_SCREEN}",
    "vim_scroll": _PRIVATE_SGR,
    "vim_split": _PRIVATE_SGR,
}
"""Stream name -> what stock pyte gets wrong in it (each checked against tmux's screen)."""

CORPUS = Path(__file__).parent / "terminal" / "corpus"
MANIFEST: dict[str, dict[str, Any]] = json.loads((CORPUS / "manifest.json").read_text())


@pytest.fixture(scope="module")
def oracle() -> Iterator[TmuxOracle]:
    require("tmux", "ROOST_REQUIRE_TMUX")
    with TmuxOracle() as oracle:
        yield oracle


def emulator_after(stream: bytes, cols: int, rows: int) -> EmulatorScreen:
    feed, screen = make_emulator(cols, rows)
    feed(stream)
    return screen


NO_DIVERGENCE = Differences(frozenset(), cursor=False)
DIVERGING = [name for name, entry in MANIFEST.items() if "divergence" in entry]


def known_divergence(name: str) -> Differences:
    """The rows (and cursor) a stream's manifest entry allows to differ from tmux's screen."""
    mark = MANIFEST[name].get("divergence")
    if mark is None:
        return NO_DIVERGENCE
    return Differences(frozenset(mark["rows"]), cursor=mark["cursor"])


def differences_from_tmux(
    oracle: TmuxOracle,
    name: str,
    make: Callable[[int, int], tuple[Callable[[bytes], None], Any]],
    allowed: Differences = NO_DIVERGENCE,
) -> list[str]:
    entry = MANIFEST[name]
    stream = (CORPUS / entry["file"]).read_bytes()
    cols, rows = entry["cols"], entry["rows"]
    expected = oracle.render(stream, cols, rows)
    feed, screen = make(cols, rows)
    try:
        feed(stream)
    except Exception as error:  # stock pyte raises on some of the corpus
        return [f"{type(error).__name__}: {error}"]
    found = compare(expected, screen, allowed=allowed)
    if found:
        found.insert(0, f"{name} ({cols}x{rows}): {entry['description']}")
    return found


@pytest.mark.parametrize("name", list(MANIFEST))
def test_stream_renders_as_in_tmux(oracle: TmuxOracle, name: str) -> None:
    """Every cell and the cursor, except where the manifest marks tmux departing from xterm."""
    found = differences_from_tmux(oracle, name, make_emulator, known_divergence(name))
    if found:
        pytest.fail("\n".join(found), pytrace=False)


TITLE_MARKS = (b"\x1b]0;", b"\x1b]2;", b"\x1b[22;", b"\x1b[23;")
TITLED = [
    name
    for name, entry in MANIFEST.items()
    if any(mark in (CORPUS / entry["file"]).read_bytes() for mark in TITLE_MARKS)
]


@pytest.mark.parametrize("name", TITLED)
def test_title_as_in_tmux(oracle: TmuxOracle, name: str) -> None:
    """The window title after every stream that sets one or uses the title stack."""
    entry = MANIFEST[name]
    stream = (CORPUS / entry["file"]).read_bytes()
    screen = Emulator(entry["cols"], entry["rows"])
    screen.feed(stream)
    assert screen.title == oracle.title(stream, entry["cols"], entry["rows"])


@pytest.mark.parametrize("name", DIVERGING)
def test_each_known_divergence_is_still_needed(oracle: TmuxOracle, name: str) -> None:
    """A marked stream differs from tmux in exactly the rows (and cursor) marked: a mark that
    is no longer needed, or no longer enough, is corrected in tests/terminal/record.py."""
    entry = MANIFEST[name]
    stream = (CORPUS / entry["file"]).read_bytes()
    expected = oracle.render(stream, entry["cols"], entry["rows"])
    found = differences(expected, emulator_after(stream, entry["cols"], entry["rows"]))
    assert found == known_divergence(name), entry["divergence"]["reason"]


@pytest.mark.parametrize("name", sorted(KNOWN_STOCK_PYTE_DIVERGENCES))
def test_stock_pyte_gets_these_wrong(oracle: TmuxOracle, name: str) -> None:
    """Why roost does not use pyte as it comes: each of these really differs from tmux."""
    assert differences_from_tmux(oracle, name, stock_pyte), KNOWN_STOCK_PYTE_DIVERGENCES[name]


def test_corpus_is_complete_and_small() -> None:
    files = {path.name for path in CORPUS.glob("*.bin")}
    assert files == {entry["file"] for entry in MANIFEST.values()}
    assert len(MANIFEST) >= 20
    for name, entry in MANIFEST.items():
        assert entry["file"] == f"{name}.bin"
        assert entry["cols"] >= 3 and entry["rows"] >= 1
        assert entry["description"] and entry["how"]
        assert (CORPUS / entry["file"]).stat().st_size <= MAX_BYTES
        if "divergence" in entry:
            mark = entry["divergence"]
            assert mark["reason"].startswith("tmux departs from xterm here: ")
            assert mark["rows"] or mark["cursor"]
            assert all(0 <= row < entry["rows"] for row in mark["rows"])
    assert set(KNOWN_STOCK_PYTE_DIVERGENCES) <= set(MANIFEST)


# -- the oracle itself ------------------------------------------------------------------------


def test_oracle_reads_text_and_attributes(oracle: TmuxOracle) -> None:
    screen = oracle.render(b"\x1b[1;31mhi", 10, 3)
    assert screen.lines[0][:3] == (
        Cell("h", fg="red", bold=True),
        Cell("i", fg="red", bold=True),
        Cell(" "),
    )
    assert screen.text() == ["hi        ", " " * 10, " " * 10]
    assert (screen.cursor.x, screen.cursor.y, screen.cursor.hidden) == (2, 0, False)
    assert not screen.alternate_on


def test_oracle_reads_dim_and_each_colour_form(oracle: TmuxOracle) -> None:
    stream = b"\x1b[2;38;2;1;2;3mA\x1b[22;38;5;196mB\x1b[31mC\x1b[38;5;1mD\x1b[91;48;5;2mE"
    cells = oracle.render(stream, 10, 2).lines[0]
    assert cells[:5] == (
        Cell("A", fg="010203", dim=True),
        Cell("B", fg="ff0000"),
        Cell("C", fg="red"),
        Cell("D", fg="cd0000"),
        Cell("E", fg="brightred", bg="00cd00"),
    )


def test_oracle_sees_erased_cells_to_the_last_column(oracle: TmuxOracle) -> None:
    """tmux 3.3a's capture stops at the last written cell; the probes reveal the rest."""
    screen = oracle.render(b"\x1b[44m\x1b[2J\x1b[2;3H\x1b[0mx\x1b[43m\x1b[K", 12, 3)
    blue, yellow = Cell(" ", bg="blue"), Cell(" ", bg="brown")
    assert screen.lines[0] == (blue,) * 12
    assert screen.lines[1] == (blue, blue, Cell("x"), *(yellow,) * 9)
    assert screen.lines[2] == (blue,) * 12


def test_oracle_reads_line_drawing_wide_characters_and_combining_marks(
    oracle: TmuxOracle,
) -> None:
    screen = oracle.render("\x1b(0lqk\x1b(B中e\u0301".encode(), 10, 2)
    assert screen.text()[0] == "┌─┐中é    "
    assert screen.lines[0][4] == Cell("")
    assert screen.cursor.x == 6


def test_oracle_reads_the_title_and_its_stack(oracle: TmuxOracle) -> None:
    assert oracle.title(b"no title", 10, 2) == ""
    assert oracle.title(b"\x1b]2;one\x07\x1b[22;0t\x1b]0;two\x07", 10, 2) == "two"
    assert oracle.title(b"\x1b]2;one\x07\x1b[22;0t\x1b]0;two\x07\x1b[23;0t", 10, 2) == "one"


def test_oracle_reports_the_alternate_screen_and_the_hidden_cursor(oracle: TmuxOracle) -> None:
    screen = oracle.render(b"primary\x1b[?1049h\x1b[?25lALT", 12, 2)
    assert screen.alternate_on
    assert screen.text()[0] == "       ALT  "
    assert screen.primary_text == ("primary", "")
    assert screen.cursor.hidden


def test_compare_describes_each_difference(oracle: TmuxOracle) -> None:
    expected = oracle.render(b"hello \x1b[1mworld", 12, 2)
    differences = compare(expected, emulator_after(b"hellO world\r\n", 12, 2))
    assert differences == [
        "row 0:",
        "  tmux:     'hello world '",
        "  emulator: 'hellO world '",
        "    x=4: text 'o' != 'O' (tmux != emulator)",
        "    x=6..10: bold True != False (tmux != emulator)",
        "cursor: tmux x=11 y=0 shown, emulator x=0 y=1 shown",
    ]


def test_normalise_ignores_what_a_blank_cell_cannot_show() -> None:
    row = (Cell(" ", fg="red", bg="blue", bold=True), Cell(" ", fg="red", underscore=True))
    assert normalise((row,)) == ((Cell(" ", bg="blue"), row[1]),)


def test_normalise_compares_text_composed_and_ignores_placeholders() -> None:
    row = (Cell("e\u0301"), Cell("中", bg="bfightmagenta"), Cell(" ", fg="red", underscore=True))
    assert normalise((row,)) == ((Cell("é"), Cell("中", bg="brightmagenta"), Cell("")),)


def test_emulator_grid_reads_dim_when_cells_have_it() -> None:
    screen = pyte.Screen(2, 1)
    screen.buffer[0][0] = Cell("a", dim=True)  # type: ignore[assignment]
    assert emulator_grid(screen, 2, 1) == ((Cell("a", dim=True), Cell(" ")),)


def test_oracle_reads_underline_colours_as_nothing(oracle: TmuxOracle) -> None:
    """tmux prints SGR 58 in captures; its values are not attributes, and 58 or 59 as a colour
    index (38;5;58) is a colour."""
    stream = b"\x1b[4;58;2;1;2;3;31mu\x1b[58;5;196mv\x1b[59;24;38;5;58mw\x1b[48;5;59mx"
    cells = oracle.render(stream, 10, 2).lines[0]
    assert cells[:4] == (
        Cell("u", fg="red", underscore=True),
        Cell("v", fg="red", underscore=True),
        Cell("w", fg="5f5f00"),
        Cell("x", fg="5f5f00", bg="5f5f5f"),
    )


def test_oracle_reads_underline_styles(oracle: TmuxOracle) -> None:
    """tmux prints curly and double underlines as `4:3` and `4:2`; they are underlines."""
    cells = oracle.render(b"\x1b[4:3ma\x1b[4:0mb\x1b[21mc", 10, 2).lines[0]
    assert cells[:3] == (Cell("a", underscore=True), Cell("b"), Cell("c", underscore=True))
