"""Record the terminal-emulator corpus: `python -m tests.terminal.record [NAME ...]`.

Writes `corpus/<name>.bin` (exactly the bytes a program wrote to its terminal) and
`corpus/manifest.json` (per stream: cols, rows, a description and how it was made). With names,
only those streams are recorded again; the others keep their files and manifest entries.

Real programs run under a PTY of the stream's size with TERM=xterm-256color and LANG=C.UTF-8,
in a scratch directory that is also their HOME, driven by keystrokes; each step waits for the
output to go quiet (or for an expected text). Nobody answers their terminal queries (DA, DSR,
OSC 10/11), as if the terminal did not support them; vttest, which waits for its DA answer, gets
a VT100's typed in. One session can give several streams: each is everything written up to a
step, so a stream ends in the state worth comparing (vim's split windows, not the shell after
vim). `session` registers such a script as `Step`s. Nothing that varies between machines may
reach a stream: fixed prompts, file times, authors and dates; no host or user names (mc's title
is turned off), no scratch paths on screen. The programs: vim, less, top, htop, bash, vttest,
dialog, whiptail, mc, emacs-nox, nano, tig, ncurses-examples, screen and tmux (apt), rich and
textual (the venv); one missing is reported and its streams are kept as they are.

The targeted features come from synthetic streams built here; they stay within what xterm and
tmux agree on (see the test module's docstring for the places where they do not). Where a
program's stream shows tmux departing from xterm, its `Stream` carries a `Divergence` (the
reason, the rows that differ), written to the manifest.

The recordings are committed: the tests need neither the programs nor this script. Recording
again gives different bytes (clocks, process lists, timing), which is fine.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import select
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from ptyprocess import PtyProcess

CORPUS = Path(__file__).parent / "corpus"
MANIFEST = CORPUS / "manifest.json"
MAX_BYTES = 200_000
"""A stream stays small enough to read in a diff and to feed quickly."""

ESC = "\x1b"
CSI = "\x1b["


@dataclass(frozen=True)
class Divergence:
    """Where the emulator follows xterm and tmux does not: these rows (and the cursor, when
    `cursor`) may differ from tmux's screen, and at least one of them must."""

    reason: str
    rows: tuple[int, ...]
    cursor: bool = False


@dataclass(frozen=True)
class Stream:
    name: str
    cols: int
    rows: int
    description: str
    how: str
    divergence: Divergence | None = None


@dataclass(frozen=True)
class Recording:
    """One way of making streams: a synthetic builder, or a program session with checkpoints."""

    streams: tuple[Stream, ...]
    make: Callable[[Path], dict[str, bytes]]
    """Given a scratch directory, the bytes of every stream it makes, by name."""
    needs: str | None = None
    """A program that must be installed to record it."""


RECORDINGS: list[Recording] = []


def cup(row: int, col: int) -> str:
    """Cursor position, 1-based as on the wire."""
    return f"{CSI}{row};{col}H"


def synthetic(
    name: str, cols: int, rows: int, description: str
) -> Callable[[Callable[[int, int], str]], Callable[[int, int], str]]:
    """Register a builder of a synthetic stream (text; encoded as UTF-8)."""

    def register(build: Callable[[int, int], str]) -> Callable[[int, int], str]:
        how = f"synthetic: {build.__name__}({cols}, {rows}) in tests/terminal/record.py"
        RECORDINGS.append(
            Recording(
                (Stream(name, cols, rows, description, how),),
                lambda _scratch: {name: build(cols, rows).encode()},
            )
        )
        return build

    return register


# -- synthetic streams ------------------------------------------------------------------------


@synthetic(
    "sgr_attributes",
    80,
    24,
    "SGR: each attribute alone and combined, resets (22-29, 39, 49, 0), 16, 256 and 24-bit colours",
)
def sgr_attributes(cols: int, rows: int) -> str:
    lines = [
        f"plain {CSI}1mbold{CSI}0m {CSI}2mdim{CSI}0m {CSI}3mitalic{CSI}0m {CSI}4munderline{CSI}0m "
        f"{CSI}5mblink{CSI}0m {CSI}7mreverse{CSI}0m {CSI}9mstrike{CSI}0m {CSI}mempty-reset",
        f"{CSI}1;2mbold+dim{CSI}22m normal {CSI}1;3;4;7;9mall{CSI}23m-it{CSI}24m-ul{CSI}27m-rev"
        f"{CSI}29m-strike{CSI}22m-bold {CSI}5mblink{CSI}25m-blink{CSI}m",
        "fg: "
        + "".join(f"{CSI}{30 + n}m{n}" for n in range(8))
        + f"{CSI}39m|"
        + "".join(f"{CSI}{90 + n}m{n}" for n in range(8))
        + f"{CSI}m bold: "
        + "".join(f"{CSI}1;{30 + n}m{n}" for n in range(8))
        + f"{CSI}m",
        "bg: "
        + "".join(f"{CSI}{40 + n}m {n}" for n in range(8))
        + f"{CSI}49m|"
        + "".join(f"{CSI}{100 + n}m {n}" for n in range(8))
        + f"{CSI}m",
        "256 fg: "
        + "".join(
            f"{CSI}38;5;{n}m#"
            for n in [*range(16), 16, 52, 88, 124, 160, 196, 202, 208, 226, 231, 232, 244, 255]
        )
        + f"{CSI}m",
        "256 bg: "
        + "".join(f"{CSI}48;5;{n}m " for n in [*range(16), 17, 54, 91, 128, 165, 214, 236, 250])
        + f"{CSI}m",
        "24-bit: "
        + "".join(f"{CSI}48;2;{n * 8};{255 - n * 8};128m " for n in range(32))
        + f"{CSI}m",
        f"{CSI}38;2;255;128;0morange {CSI}38;2;0;0;0;48;2;255;255;255mblack on white{CSI}m "
        f"{CSI}38;5;9mA{CSI}91mB{CSI}38;2;255;0;0mC{CSI}31mD{CSI}1;31mE{CSI}m",
        f"{CSI}31;42mcolours{CSI}39mdefault-fg{CSI}49mdefault-bg{CSI}0m "
        f"{CSI}7;31;44mreverse colours{CSI}27m plain{CSI}m",
        f"{CSI}1;4;38;5;202;48;2;10;20;30mone SGR, many{CSI}0m {CSI};1mempty-first{CSI}m "
        f"{CSI}3;2;38;5;2mdim italic, colour 2 is not dim{CSI}m",
        f"{CSI}44merase{CSI}K{CSI}m",
        f"{CSI}4;43munderlined erase{CSI}K{CSI}m",
        f"{CSI}7mreverse erase{CSI}K{CSI}m",
        f"{CSI}1;35mbold magenta erase{CSI}K{CSI}m",
    ]
    return f"{CSI}H{CSI}2J" + "\r\n".join(lines) + f"\r\n{CSI}1;32mstill bold green"


@synthetic("tabs", 60, 8, "tab stops: defaults, HTS, TBC 0 and 3, CBT, tabs at the margin")
def tabs(cols: int, rows: int) -> str:
    return "".join(
        [
            "a\tb\tc\td\te\tf\tg\th",
            "\r\n" + "X" * 40 + "\r\tY\tZ",  # tabs move without erasing
            f"\r\n{CSI}3g",  # clear every stop
            *(f"{CSI}{column}G{ESC}H" for column in (5, 13, 30)),
            "\rq\tr\ts\tt\tu",  # past the last stop: the right margin
            f"\r\n{CSI}13G{CSI}0g\rv\tw\tx",  # clear the stop at column 13
            f"\r\n\tA\tB\tC{CSI}ZD{CSI}2ZE",  # CBT: back one stop, then two
            f"\r\n{CSI}3g\tno-stops-left",  # no stop at all: straight to the margin
            "\r\nend\t",
        ]
    )


@synthetic(
    "autowrap",
    20,
    8,
    "autowrap: writing in the last column, CR after it, DECAWM off, wrap at the bottom scrolls",
)
def autowrap(cols: int, rows: int) -> str:
    return "".join(
        [
            "ABCDEFGHIJKLMNOPQRST",  # exactly the width: the next character wraps
            "uv",
            cup(3, cols) + "Z\ry",  # CR clears the pending wrap
            cup(4, cols - 1) + "12",  # fills the row; the pending wrap is dropped by CUP
            cup(5, 1) + "row five",
            cup(6, 1) + f"{CSI}?7l" + "abcdefghijklmnopqrstuvwxyz" + f"{CSI}?7h",
            cup(7, 15) + "wrap-around",
            cup(8, cols) + "EF",  # wraps on the last row: the screen scrolls
        ]
    )


@synthetic(
    "cursor_save_restore",
    40,
    10,
    "DECSC/DECRC (position, attributes, charset) and CSI s/u, saved twice, restored twice",
)
def cursor_save_restore(cols: int, rows: int) -> str:
    return "".join(
        [
            f"{CSI}2J" + cup(2, 5) + f"{CSI}1;32mSaved{ESC}7",
            f"{CSI}0m" + cup(8, 1) + "other text",
            f"{ESC}8R",  # bold green, right after "Saved"
            cup(4, 4) + f"{CSI}4;35m{CSI}s",
            f"{CSI}0m" + cup(9, 30) + "xx",
            f"{CSI}uU",
            f"{CSI}0m" + cup(6, 1) + f"{ESC}(0{ESC}7{ESC}(B" + cup(6, 20) + "ascii",
            f"{ESC}8qqq{ESC}(B",  # the saved charset draws lines
            cup(7, 1) + f"{ESC}7" + cup(7, 10) + f"{ESC}7" + cup(1, 1) + f"{ESC}8second",
            f"{ESC}8again",
        ]
    )


@synthetic(
    "erase",
    40,
    12,
    "EL 0/1/2, ED 0/1 and 3, ECH (with counts 0 and past the margin), each with a background",
)
def erase(cols: int, rows: int) -> str:
    fill = "".join(cup(row, 1) + chr(ord("a") + row - 1) * cols for row in range(1, rows + 1))
    return "".join(
        [
            fill,
            f"{CSI}43m" + cup(3, 20) + f"{CSI}1J",  # rows 1-2 and row 3 up to column 20
            f"{CSI}46m" + cup(10, 25) + f"{CSI}0J",  # from row 10 column 25 to the end
            f"{CSI}44m" + cup(4, 10) + f"{CSI}K",
            f"{CSI}42m" + cup(5, 10) + f"{CSI}1K",
            f"{CSI}0;7m" + cup(6, 10) + f"{CSI}2K",
            f"{CSI}0;45m" + cup(7, 5) + f"{CSI}5X",
            f"{CSI}41m" + cup(8, 35) + f"{CSI}20X",
            f"{CSI}0m" + cup(9, 3) + f"{CSI}0X",
            f"{CSI}3J",  # scrollback only: the screen stays
            cup(9, 12) + "end",
        ]
    )


@synthetic(
    "scroll_region",
    40,
    12,
    "DECSTBM: LF at the bottom margin, RI at the top, SU/SD, a coloured scrolled-in line, "
    "LF and RI outside the region",
)
def scroll_region(cols: int, rows: int) -> str:
    fill = "".join(
        cup(row, 1) + f"{CSI}{31 + row % 6}mline {row:02d}{CSI}m" for row in range(1, rows + 1)
    )
    return "".join(
        [
            fill,
            f"{CSI}4;9r",
            cup(9, 1) + "\n\nfirst-new\r\nsecond-new",
            cup(4, 1) + f"{ESC}Mreverse-indexed",
            f"{CSI}2S{CSI}1T",
            f"{CSI}41m" + cup(9, 1) + f"\n{CSI}0mred line above",
            cup(12, 1) + "\n\nbottom",  # below the region: no scrolling
            cup(1, 1) + f"{ESC}Mtop",  # above the region: no scrolling
            f"{CSI}r",
            cup(2, 30) + "end",
        ]
    )


@synthetic(
    "insert_delete",
    40,
    10,
    "IL/DL (also inside a region, with a background), ICH/DCH/ECH, insert mode (IRM)",
)
def insert_delete(cols: int, rows: int) -> str:
    fill = "".join(
        cup(row, 1) + f"row {row} " + "abcdefghijklmnopqrstuvwxyz" for row in range(1, rows + 1)
    )
    return "".join(
        [
            fill,
            cup(3, 1) + f"{CSI}44m{CSI}2L{CSI}0m",
            cup(6, 1) + f"{CSI}M",
            cup(8, 5) + f"{CSI}3@",
            cup(9, 5) + f"{CSI}42m{CSI}2P{CSI}0m",
            cup(10, 3) + f"{CSI}4X",
            cup(1, 5) + f"{CSI}4hINS{CSI}4l",
            f"{CSI}2;5r" + cup(3, 1) + f"{CSI}Linserted in region{CSI}r",
            cup(9, 1) + f"{CSI}5M",
            cup(10, 30) + "end",
        ]
    )


@synthetic(
    "alt_screen_1049",
    40,
    10,
    "1049: the alternate screen is drawn, then left: the primary text, cursor and attributes "
    "come back",
)
def alt_screen_1049(cols: int, rows: int) -> str:
    primary = "".join(
        cup(row, 1) + f"{CSI}3{row % 8}mprimary line {row}{CSI}m" for row in range(1, rows + 1)
    )
    return "".join(
        [
            primary,
            cup(6, 8) + f"{CSI}1;33m",
            f"{CSI}?1049h",
            f"{CSI}0;44m{CSI}H{CSI}2J" + cup(3, 5) + "ALTERNATE SCREEN",
            cup(9, 1) + f"{CSI}0mstatus{CSI}K",
            f"{CSI}?1049l",
            "back",
        ]
    )


@synthetic(
    "alt_screen_47",
    40,
    10,
    "1047 entered and left (no cursor restore), then 47 entered: ends on the alternate screen",
)
def alt_screen_47(cols: int, rows: int) -> str:
    primary = "".join(cup(row, 1) + f"primary {row}" for row in range(1, rows + 1))
    return "".join(
        [
            primary,
            cup(3, 12),
            f"{CSI}?1047h",
            "alt-1047" + cup(5, 5) + "moved",
            f"{CSI}?1047l",
            "after-1047",
            f"{CSI}?47h",
            cup(2, 2) + f"{CSI}7min 47{CSI}m",  # blank: 1047 cleared it on leaving
        ]
    )


@synthetic(
    "underline_colours",
    40,
    6,
    "SGR 58 (underline colour) in its 256, 24-bit and colon forms and 59, as neovim and kitty "
    "programs send them, between other attributes that must survive them",
)
def underline_colours(cols: int, rows: int) -> str:
    return "\r\n".join(
        [
            f"{CSI}4;58;2;255;0;0;31mcurly red{CSI}59m same{CSI}m plain",
            f"{CSI}58;5;196;1mbold only{CSI}m {CSI}4:3;58:2::0:128:255mcolon{CSI}m",
            f"{CSI}58:5:2;3mitalic only{CSI}m {CSI}58;2;1;2;3mnothing{CSI}m",
            f"{CSI}38;5;58;48;5;59mcolours 58 and 59{CSI}m",
        ]
    )


@synthetic(
    "tab_at_margin",
    20,
    6,
    "HT from the last column and after it (a wrap pending), with autowrap on and off, and "
    "from the column before the last",
)
def tab_at_margin(cols: int, rows: int) -> str:
    return "".join(
        [
            "0123456789abcdefghij\tX",  # the wrap stays pending: X starts the next row
            cup(3, cols) + "L\tM",
            cup(4, cols - 1) + "\tN",
            f"{CSI}?7l" + cup(5, 1) + "0123456789abcdefghij\tO" + f"{CSI}?7h",
            cup(6, 5) + "end",
        ]
    )


@synthetic(
    "alt_screen_twice",
    40,
    10,
    "1049 entered twice (the second entry changes nothing) and left twice (each leave restores "
    "the cursor saved on the first entry), DECSC in between, then 1047 left while not entered",
)
def alt_screen_twice(cols: int, rows: int) -> str:
    primary = "".join(cup(row, 1) + f"primary {row}" for row in range(1, rows + 1))
    return "".join(
        [
            primary,
            cup(4, 6) + f"{CSI}1;34m",
            f"{CSI}?1049h",
            "first" + cup(7, 20) + f"{CSI}0;32m",
            f"{CSI}?1049h",  # already there: neither the cursor nor the screen is touched
            "second",
            f"{CSI}?1049l",
            "back",
            cup(9, 30) + f"{CSI}0m",
            f"{CSI}?1049l",  # not on the alternate screen: the cursor is restored again
            "again",
            cup(2, 15) + f"{ESC}7" + cup(10, 1),
            f"{CSI}?1047l",  # neither screen nor cursor changes
            "end",
        ]
    )


@synthetic(
    "title_stack",
    40,
    6,
    "titles and icon names set (OSC 0, 1, 2), pushed and popped (CSI 22/23 t with 0, 1, 2) "
    "around an alternate-screen session, one pop too many; the title is compared too",
)
def title_stack(cols: int, rows: int) -> str:
    bel = "\x07"
    return "".join(
        [
            f"{ESC}]0;shell{bel}prompt$ vim",
            f"{CSI}22;0t{ESC}]2;vim - notes.txt{bel}{CSI}?1049h{CSI}Hediting",
            f"{CSI}22;2t{ESC}]2;vim - help{bel}\r\nhelp window{CSI}23;2t",
            f"{CSI}22;1t{ESC}]1;icon{bel}{CSI}23;1t",  # tmux has no icon name: a no-op there
            f"{CSI}?1049l{CSI}23;0t{CSI}23;0t",
            "\r\nprompt$ ",
        ]
    )


@synthetic(
    "origin_mode",
    40,
    12,
    "DECOM: addressing relative to the region, clamping to it, VPA, scrolling, leaving it",
)
def origin_mode(cols: int, rows: int) -> str:
    fill = "".join(cup(row, 1) + f"{row:02d}" + "." * 20 for row in range(1, rows + 1))
    return "".join(
        [
            fill,
            f"{CSI}4;9r{CSI}?6h",
            cup(1, 1) + "O1",
            cup(3, 10) + "O2",
            cup(20, 5) + "B\nscrolled",
            f"{CSI}2dV",
            f"{CSI}?6l" + "top",
            f"{CSI}r",
            cup(12, 1) + "last",
        ]
    )


@synthetic(
    "line_drawing",
    40,
    10,
    "DEC special graphics: ESC ( 0 boxes, ESC ) 0 with SO/SI, the whole table, back to ASCII",
)
def line_drawing(cols: int, rows: int) -> str:
    box = ["lqqqqwqqqqk", "x    x    x", "tqqqqnqqqqu", "x    x    x", "mqqqqvqqqqj"]
    return "".join(
        [
            f"{ESC}(0" + "\r\n".join(box) + f"{ESC}(B ascii again",
            f"\r\n{ESC})0\x0elqk\x0fabc\x0exqx\x0f",
            f"\r\n{ESC}(0`afgjklmnopqrstuvwxyz{{|}}~{ESC}(B",
            "\r\nqqq (plain q)",
        ]
    )


@synthetic(
    "cjk_emoji",
    21,
    8,
    "wide characters wrapping at the right margin (even and odd), emoji, combining marks, "
    "a wide character overwritten on its left half, half-width and full-width forms",
)
def cjk_emoji(cols: int, rows: int) -> str:
    return "".join(
        [
            "a中文字符漢字テスト日",  # 1 + 20 columns: fills the row exactly
            "本語",  # wraps to the next row
            cup(3, 1) + "中" * 10 + "文",  # column 21 is left empty: 文 wraps
            cup(5, 1) + "😀 🎉 🚀 ok",
            cup(6, 1) + "e\u0301 a\u0308 n\u0303 o\u0302 done",
            cup(7, 1) + "中文字" + cup(7, 3) + "y",  # over the left half of 文
            cup(8, 1) + "ｶﾀｶﾅＡＢ end",
        ]
    )


@synthetic(
    "cursor_movement",
    40,
    10,
    "CUU/CUD/CUF/CUB/CNL/CPL/CHA/VPA/HPA/HVP with counts, 0 and clamping; CUP with missing "
    "parameters; BS",
)
def cursor_movement(cols: int, rows: int) -> str:
    return "".join(
        [
            cup(5, 10) + "*",
            f"{CSI}2Aa{CSI}Bb{CSI}3Cc{CSI}2Dd{CSI}Ee{CSI}2Ff{CSI}30Gg{CSI}8dh{CSI}15`i",
            f"{CSI}0Aj{CSI}99Ak{CSI}99Bl{CSI}99Dn",
            f"{CSI};5Ho{CSI}3;Hp{CSI}Hq{CSI}5;5fr{CSI}50;50Hs",
            cup(7, 1) + "\bt",
            cup(8, 5) + "u\b\bv",
            cup(10, 20),
        ]
    )


@synthetic(
    "log_flood",
    80,
    24,
    "a coloured log of 1,100 lines scrolling through the screen, some lines wrapping",
)
def log_flood(cols: int, rows: int) -> str:
    rng = random.Random(7)
    levels = [("INFO ", "32"), ("DEBUG", "2;37"), ("WARN ", "1;33"), ("ERROR", "1;37;41")]
    lines = []
    for n in range(1100):
        level, colour = levels[0 if n % 7 else rng.randrange(4)]
        path = "/".join(rng.choice(["api", "v1", "items", "users", "orders"]) for _ in range(3))
        line = (
            f"{CSI}2m12:{n // 600:02d}:{n // 10 % 60:02d}.{n * 37 % 1000:03d}{CSI}0m "
            f"{CSI}{colour}m{level}{CSI}0m {CSI}36mworker-{n % 4}{CSI}0m "
            f"GET /{path}/{rng.randrange(10_000)} -> {rng.choice([200, 200, 201, 404, 500])} "
            f"in {rng.randrange(1, 900)}ms"
        )
        if n % 53 == 0:
            line += " payload=" + "".join(rng.choice("abcdef0123456789") for _ in range(90))
        lines.append(line)
    return "\r\n".join(lines)


@synthetic(
    "agent_tui",
    100,
    30,
    "an agent TUI redrawing its live area in place: spinner, boxed prompt, progress bar, diff "
    "lines, 256 and 24-bit colours, synchronized output marks, cursor shown at the prompt",
)
def agent_tui(cols: int, rows: int) -> str:
    spinner = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
    grey = f"{CSI}38;5;244m"
    reset = f"{CSI}0m"

    def live(frame: int) -> list[str]:
        done = frame * (cols - 30) // 59
        bar = (
            "".join(f"{CSI}38;2;{80 + x * 2};{200 - x};255m█" for x in range(done))
            + f"{CSI}48;5;236m"
            + " " * (cols - 30 - done)
        )
        prompt = "refactor the parser" if frame > 40 else ""
        return [
            f"{CSI}38;2;215;119;87m{spinner[frame % len(spinner)]} Thinking… {reset}"
            f"{grey}({frame // 4}s · ↓ {frame * 37} tokens · esc to interrupt){reset}",
            "",
            f"{grey}╭{'─' * (cols - 2)}╮{reset}",
            f"{grey}│{reset} > {prompt}{CSI}{cols}G{grey}│{reset}",
            f"{grey}╰{'─' * (cols - 2)}╯{reset}",
            f"  {CSI}2m? for shortcuts{reset}{CSI}{cols - 16}G{CSI}38;5;141m● high effort{reset}",
            f"  {bar}{reset} {frame * 100 // 59:3d}%",
        ]

    def draw(frame: int) -> str:
        return "\r\n".join(f"{CSI}2K{line}" for line in live(frame))

    messages = [
        [f"{CSI}1m● Read{reset}(src/parser.py)", f"  ⎿  Read {CSI}1m412{reset} lines"],
        [
            f"{CSI}1m● Update{reset}(src/parser.py)",
            f"  {CSI}48;2;20;60;20m+    tokens = list(lex(source)){CSI}K{reset}",
            f"  {CSI}48;2;70;20;20m-    tokens = lex(source){CSI}K{reset}",
            f"  {CSI}3;38;5;110m  context line, italic{reset}",
        ],
        [f"{CSI}1m● Bash{reset}(pytest -q)", f"  ⎿  {CSI}32m128 passed{reset} in 2.31s"],
        ["I changed the parser to materialise the tokens once; the tests pass."],
        [f"{CSI}38;5;208m⚠{reset} one warning: unused import {CSI}4mre{reset}"],
    ]
    height = len(live(0))
    out = [f"{CSI}?25l{CSI}H{CSI}2J", f"{CSI}1;38;5;39m✻ Welcome to the agent{reset}\r\n\r\n"]
    out.append(draw(0))
    for frame in range(1, 60):
        out.append(f"{CSI}?2026h\r{CSI}{height - 1}A")
        if frame % 12 == 0:
            out.append(f"{CSI}J" + "\r\n".join(messages[frame // 12 - 1]) + "\r\n\r\n")
        out.append(draw(frame) + f"{CSI}?2026l")
    out.append(f"{CSI}3A{CSI}{5 + len('refactor the parser')}G{CSI}?25h")
    return "".join(out)


# -- programs under a PTY ---------------------------------------------------------------------


class Terminal:
    """A program under a PTY of a fixed size; keeps every byte it writes."""

    def __init__(
        self, argv: list[str], cols: int, rows: int, scratch: Path, **extra_env: str
    ) -> None:
        env = {
            "TERM": "xterm-256color",
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "HOME": str(scratch),
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "LESSHISTFILE": "-",
            "HISTFILE": "",
            **extra_env,
        }
        self.process = PtyProcess.spawn(argv, cwd=str(scratch), env=env, dimensions=(rows, cols))
        self.output = bytearray()
        self.ended = False

    def _read(self, timeout: float) -> bool:
        """Read what is available within `timeout`; False when nothing came."""
        if self.ended:
            return False
        ready, _, _ = select.select([self.process.fd], [], [], timeout)
        if not ready:
            return False
        try:
            data = os.read(self.process.fd, 65536)
        except OSError:  # EIO: the program has gone and the PTY is closed
            data = b""
        if not data:
            self.ended = True
            return False
        self.output += data
        return True

    def settle(self, quiet: float = 0.4, limit: float = 15.0) -> None:
        """Read until the program has written nothing for `quiet` seconds."""
        deadline = time.monotonic() + limit
        while self._read(quiet):
            if time.monotonic() > deadline:
                raise RuntimeError("the program never went quiet")

    def wait_for(self, text: bytes, count: int = 1, limit: float = 15.0) -> None:
        """Read until `text` has appeared `count` times in everything written, then settle."""
        deadline = time.monotonic() + limit
        while self.output.count(text) < count:
            if time.monotonic() > deadline or self.ended:
                raise RuntimeError(f"{text!r} did not appear {count} times")
            self._read(0.1)
        self.settle()

    def run_for(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not self.ended:
            self._read(0.05)

    def keys(self, keys: str) -> None:
        self.process.write(keys.encode())
        self.settle()

    def wait_exit(self, limit: float = 15.0) -> None:
        deadline = time.monotonic() + limit
        while not self.ended:
            if time.monotonic() > deadline:
                raise RuntimeError("the program did not exit")
            self._read(0.1)

    def close(self) -> None:
        if self.process.isalive():
            self.process.terminate(force=True)

    def recorded(self) -> bytes:
        return bytes(self.output)


PTY_NOTE = "under a {cols}x{rows} PTY (TERM=xterm-256color, LANG=C.UTF-8), queries unanswered"


def program(
    needs: str, streams: Iterable[Stream]
) -> Callable[[Callable[[Path], dict[str, bytes]]], Callable[[Path], dict[str, bytes]]]:
    def register(make: Callable[[Path], dict[str, bytes]]) -> Callable[[Path], dict[str, bytes]]:
        RECORDINGS.append(Recording(tuple(streams), make, needs))
        return make

    return register


SAMPLE_PY = "\n".join(
    line
    for n in range(40)
    for line in (
        f"def handler_{n}(request: dict[str, int]) -> int:",
        f'    """Handle request number {n}."""',
        f"    total = request.get('count', {n}) * {n + 1}  # running total",
        "    return total",
        "",
    )
)

VIM_SCRIPT = (
    r'printf "\033[1mbefore vim\033[0m\n"; exec vim -u NONE -i NONE -N -n '
    '-c "syntax on" -c "set number laststatus=2 ruler" sample.py'
)
VIM = f"sh -c {shlex.quote(VIM_SCRIPT)}"


@program(
    "vim",
    (
        Stream(
            "vim_scroll",
            80,
            24,
            "vim on a Python file with syntax colours and line numbers, scrolled",
            f"{VIM} {PTY_NOTE.format(cols=80, rows=24)}; keys <C-f> <C-d> 10j zz; cut there",
        ),
        Stream(
            "vim_split",
            80,
            24,
            "vim after inserting lines, :split, :vsplit and a window move",
            f"{VIM} {PTY_NOTE.format(cols=80, rows=24)}; after vim_scroll's keys: "
            "o<text><Esc> :split :vsplit <C-w>l; cut there",
        ),
        Stream(
            "vim_quit",
            80,
            24,
            "a whole vim session to :qa!: the primary screen and cursor come back",
            f"{VIM} {PTY_NOTE.format(cols=80, rows=24)}; after vim_split's keys: :qa!; "
            "until vim exits",
        ),
    ),
)
def record_vim(scratch: Path) -> dict[str, bytes]:
    (scratch / "sample.py").write_text(SAMPLE_PY)
    terminal = Terminal(["sh", "-c", VIM_SCRIPT], 80, 24, scratch)
    try:
        terminal.wait_for(b"Top")
        for keys in ("\x06", "\x04", "10j", "zz"):
            terminal.keys(keys)
        scroll = terminal.recorded()
        terminal.keys("o# inserted by the recorder\r# a second line\x1b")
        for keys in (":split\r", ":vsplit\r", "\x17l"):
            terminal.keys(keys)
        split = terminal.recorded()
        terminal.process.write(b":qa!\r")
        terminal.wait_exit()
        return {"vim_scroll": scroll, "vim_split": split, "vim_quit": terminal.recorded()}
    finally:
        terminal.close()


def sample_log(colour: bool = True) -> str:
    rng = random.Random(3)
    lines = []
    for n in range(400):
        level = rng.choice(["INFO", "INFO", "INFO", "WARN", "ERROR"])
        sgr = {"INFO": "32", "WARN": "33", "ERROR": "1;31"}[level]
        shown = f"\x1b[{sgr}m{level:<5}\x1b[0m" if colour else f"{level:<5}"
        lines.append(
            f"{n:04d} {shown} job-{rng.randrange(100):02d} "
            f"{rng.choice(['started', 'finished', 'retried', 'timed out'])} "
            f"after {rng.randrange(1, 5000)} ms"
        )
    return "\n".join(lines) + "\n"


LESS = "less -R app.log"


@program(
    "less",
    (
        Stream(
            "less_page",
            80,
            24,
            "less -R on a coloured log, paged forward twice",
            f"{LESS} {PTY_NOTE.format(cols=80, rows=24)}; keys <Space> <Space>; cut there",
        ),
        Stream(
            "less_search",
            80,
            24,
            "less -R after a search: highlighted matches (reverse video)",
            f"{LESS} {PTY_NOTE.format(cols=80, rows=24)}; after less_page's keys: /timed out<CR> n;"
            " cut there",
        ),
    ),
)
def record_less(scratch: Path) -> dict[str, bytes]:
    (scratch / "app.log").write_text(sample_log())
    terminal = Terminal(LESS.split(), 80, 24, scratch)
    try:
        terminal.wait_for(b"app.log")
        terminal.keys(" ")
        terminal.keys(" ")
        page = terminal.recorded()
        terminal.keys("/timed out\r")
        terminal.keys("n")
        search = terminal.recorded()
        terminal.process.write(b"q")
        terminal.wait_exit()
        return {"less_page": page, "less_search": search}
    finally:
        terminal.close()


class Sleeper:
    """A quiet process for top and htop to watch, so their lists show no one's commands."""

    def __enter__(self) -> int:
        self.process = subprocess.Popen(["sleep", "600"])
        return self.process.pid

    def __exit__(self, *_: object) -> None:
        self.process.kill()
        self.process.wait()


@program(
    "top",
    (
        Stream(
            "top",
            80,
            24,
            "top refreshing three times (bold and reverse header, cursor addressing, EL)",
            "top -d 0.5 -p <pid of a sleep> "
            + PTY_NOTE.format(cols=80, rows=24)
            + "; cut after the third refresh",
        ),
    ),
)
def record_top(scratch: Path) -> dict[str, bytes]:
    with Sleeper() as pid:
        terminal = Terminal(["top", "-d", "0.5", "-p", str(pid)], 80, 24, scratch)
        try:
            terminal.wait_for(b"top - ", count=3)
            return {"top": terminal.recorded()}
        finally:
            terminal.close()


@program(
    "htop",
    (
        Stream(
            "htop",
            80,
            24,
            "htop refreshing for two seconds (meters, colours, function-key bar)",
            "htop -d 5 -p <pid of a sleep> "
            + PTY_NOTE.format(cols=80, rows=24)
            + "; cut after two seconds",
        ),
    ),
)
def record_htop(scratch: Path) -> dict[str, bytes]:
    with Sleeper() as pid:
        terminal = Terminal(["htop", "-d", "5", "-p", str(pid)], 80, 24, scratch)
        try:
            terminal.wait_for(b"F10")
            terminal.run_for(2.0)
            return {"htop": terminal.recorded()}
        finally:
            terminal.close()


PS1 = r"\[\e[1;32m\]dev@roost\[\e[0m\]:\[\e[1;34m\]\W\[\e[0m\]\$ "
BASH_COMMANDS = [
    "ls --color=always",
    "ls --color=always -F bin src",
    "grep --color=always -n -m 5 -E 'ERROR|WARN' app.log",
    r"printf '\e[1;31mred\e[0m \e[42mgreen bg\e[0m \e[38;5;208morange\e[0m\n'",
    "echo {1..40}",
    "cat notes.txt",
    "seq 1 8",
]


@program(
    "bash",
    (
        Stream(
            "bash_colors",
            80,
            24,
            "bash with a coloured prompt running ls --color, grep --color, printf colours, a "
            "wrapping echo and a file with tabs",
            "bash --norc --noprofile -i with PS1=" + shlex.quote(PS1) + " in a scratch 'project' "
            "directory "
            + PTY_NOTE.format(cols=80, rows=24)
            + "; commands: "
            + " ; ".join(BASH_COMMANDS)
            + "; cut at the last prompt",
        ),
    ),
)
def record_bash(scratch: Path) -> dict[str, bytes]:
    project = scratch / "project"
    (project / "src").mkdir(parents=True)
    (project / "bin").mkdir()
    (project / "src" / "main.py").write_text("print('hi')\n")
    (project / "bin" / "run.sh").write_text("#!/bin/sh\necho run\n")
    (project / "bin" / "run.sh").chmod(0o755)
    (project / "README.md").write_text("# project\n")
    (project / "archive.tar.gz").write_bytes(b"")
    (project / "link").symlink_to("README.md")
    (project / "app.log").write_text(sample_log(colour=False))
    (project / "notes.txt").write_text("name\tsize\tkind\nparser\t412\tcode\ntests\t128\tcode\n")
    terminal = Terminal(["bash", "--norc", "--noprofile", "-i"], 80, 24, project, PS1=PS1)
    try:
        terminal.wait_for(b"dev@roost")
        for n, command in enumerate(BASH_COMMANDS, start=2):
            terminal.process.write(command.encode() + b"\r")
            terminal.wait_for(b"dev@roost", count=n)
        return {"bash_colors": terminal.recorded()}
    finally:
        terminal.close()


# -- scripted sessions ------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """Keys for the program; then wait for `wait` to appear once more (or for quiet), or for
    the program to end (`exits`). `cut` names the stream that ends after this step."""

    keys: str
    wait: str | None = None
    cut: str | None = None
    exits: bool = False
    label: str | None = None
    """How the keys read in the manifest (for function keys and other sequences)."""


_KEY_NAMES = {"\r": "<CR>", "\x1b": "<Esc>", "\t": "<Tab>"}


def key_names(step: Step) -> str:
    if step.label is not None:
        return step.label
    return "".join(
        _KEY_NAMES.get(char) or (f"<C-{chr(ord(char) + 96)}>" if char < " " else char)
        for char in step.keys
    )


def session(
    needs: str,
    argv: list[str],
    cols: int,
    rows: int,
    steps: list[Step],
    descriptions: dict[str, str],
    *,
    setup: Callable[[Path], None] | None = None,
    start: str | None = None,
    env: dict[str, str] | None = None,
    divergences: dict[str, Divergence] | None = None,
    command: str | None = None,
) -> None:
    """Register a program driven by `steps` under a `cols` x `rows` PTY, in a scratch
    directory prepared by `setup`, once `start` has appeared; each step with a `cut` ends a
    stream of that name (everything written up to there)."""
    shown = command or shlex.join(argv)
    streams = []
    for index, step in enumerate(steps):
        if step.cut is None:
            continue
        keys = " ".join(key_names(earlier) for earlier in steps[: index + 1] if earlier.keys)
        how = f"{shown} {PTY_NOTE.format(cols=cols, rows=rows)}; keys: {keys or 'none'}; "
        how += "until it exits" if step.exits else "cut there"
        divergence = (divergences or {}).get(step.cut)
        streams.append(Stream(step.cut, cols, rows, descriptions[step.cut], how, divergence))

    def make(scratch: Path) -> dict[str, bytes]:
        if setup is not None:
            setup(scratch)
        terminal = Terminal(argv, cols, rows, scratch, **(env or {}))
        made = {}
        try:
            if start is None:
                terminal.settle()
            else:
                terminal.wait_for(start.encode())
            for step in steps:
                if step.wait is not None:
                    seen = terminal.output.count(step.wait.encode())
                    terminal.process.write(step.keys.encode())
                    terminal.wait_for(step.wait.encode(), count=seen + 1)
                elif step.exits:
                    terminal.process.write(step.keys.encode())
                    terminal.wait_exit()
                else:
                    terminal.keys(step.keys)
                if step.cut is not None:
                    made[step.cut] = terminal.recorded()
            return made
        finally:
            terminal.close()

    RECORDINGS.append(Recording(tuple(streams), make, needs))


TMUX_BS_AFTER_LAST_COLUMN = (
    "tmux departs from xterm here: after a character in the last column tmux keeps the cursor "
    "past it, so a BS lands on the last column instead of the one before it (xterm and this "
    "emulator keep the cursor on the last column with a wrap pending); vttest's margins come "
    "out wrong in tmux"
)
TMUX_DECSTBM_IGNORES_ORIGIN = (
    "tmux departs from xterm here: DECSTBM sends the cursor to the top of the screen even in "
    "origin mode; xterm (and this emulator) sends it to the top of the region, and vttest's "
    "'this line should be at the bottom of the screen' is at the bottom"
)
VT100_DA = Step("\x1b[?1;2c", label="<ESC[?1;2c: the DA reply of a VT100 with AVO>")
"""vttest waits for the answer to its device-attributes query; the recorder types it."""


def vttest(
    steps: list[Step],
    descriptions: dict[str, str],
    divergences: dict[str, Divergence] | None = None,
) -> None:
    """A vttest session at 80x24: the answer to its device-attributes query, then `steps`."""
    session("vttest", ["vttest"], 80, 24, [VT100_DA, *steps], descriptions, divergences=divergences)


vttest(
    [
        Step("1\r", cut="vttest_cursor_box"),
        Step("\r", cut="vttest_cursor_box_132"),
        Step("\r", cut="vttest_autowrap"),
    ],
    {
        "vttest_cursor_box": "vttest's cursor-movement test in 80 columns: a frame of E's "
        "inside borders of *'s and +'s drawn with CUP, CUF, CUB, IND, RI, NEL and BS",
        "vttest_cursor_box_132": "the same frame for 132 columns, which the 80-column screen "
        "keeps (DECCOLM is ignored): CUP and BS clamped at the right margin",
        "vttest_autowrap": "vttest's autowrap test: letters written at both margins mixed with "
        "CR, BS, LF and tabs, wrapping and scrolling in a region",
    },
    divergences={
        "vttest_cursor_box_132": Divergence(
            TMUX_BS_AFTER_LAST_COLUMN, (2, 3, 4, 5, 6, 7, 8, 10, *range(14, 22))
        ),
        "vttest_autowrap": Divergence(TMUX_BS_AFTER_LAST_COLUMN, tuple(range(2, 20))),
    },
)

vttest(
    [
        Step("2\r", cut="vttest_wrap_around"),
        Step("\r", cut="vttest_tab_stops"),
        Step("\r"),
        Step("\r", cut="vttest_reverse_screen_80"),
        Step("\r"),
        Step("\r"),
        Step("\r", cut="vttest_soft_scroll_region"),
        Step("\r"),
        Step("\r"),
        Step("\r", cut="vttest_jump_scroll"),
        Step("\r", cut="vttest_origin_mode_bottom"),
        Step("\r", cut="vttest_origin_mode_top"),
        Step("\r", cut="vttest_rendition"),
        Step("\r", cut="vttest_rendition_reverse_screen"),
    ],
    {
        "vttest_wrap_around": "vttest: three rows of *'s written with autowrap set and reset",
        "vttest_tab_stops": "vttest: tab stops set, cleared and used on two rows",
        "vttest_reverse_screen_80": "vttest: staircase text after DECCOLM and DECSCNM (the "
        "light background): the cells keep their own attributes",
        "vttest_soft_scroll_region": "vttest: a two-line scroll region scrolled down with RI "
        "many times (smooth scroll set)",
        "vttest_jump_scroll": "vttest: the whole screen as a region, scrolled down with RI",
        "vttest_origin_mode_bottom": "vttest: DECSTBM 23;24 in origin mode, then CUP 1;1",
        "vttest_origin_mode_top": "vttest: origin mode reset, CUP to the top and the bottom",
        "vttest_rendition": "vttest: the SGR pattern (bold, underline, blink, negative) on a "
        "dark background",
        "vttest_rendition_reverse_screen": "vttest: the same pattern with DECSCNM set (a light "
        "background): every cell keeps its own attributes (before issue 12 the emulator "
        "turned reverse video on everywhere)",
    },
    divergences={
        "vttest_origin_mode_bottom": Divergence(TMUX_DECSTBM_IGNORES_ORIGIN, (1, 23)),
    },
)

vttest(
    [
        Step("8\r", cut="vttest_accordion"),
        Step("\r", cut="vttest_accordion_end"),
        Step("\r", cut="vttest_insert_mode"),
        Step("\r", cut="vttest_delete_character"),
        Step("\r", cut="vttest_staggered_dch"),
        Step("\r", cut="vttest_staggered_ich"),
        Step("\r", cut="vttest_insert_spaced"),
    ],
    {
        "vttest_accordion": "vttest's VT102 test: the screen filled with letters, then "
        "opened and closed by IL and DL in a scroll region (the accordion)",
        "vttest_accordion_end": "the accordion's end: top line A's, bottom line X's",
        "vttest_insert_mode": "insert mode (IRM): the top line should be 'A*** ... ***B'",
        "vttest_delete_character": "DCH: the top line should be 'AB'",
        "vttest_staggered_dch": "DCH on every row: the right column staggered by one",
        "vttest_staggered_ich": "ICH on every row: the right column staggered by one",
        "vttest_insert_spaced": "characters inserted between others in insert mode",
    },
)

vttest(
    [Step("3\r", cut="vttest_character_sets")],
    {
        "vttest_character_sets": "vttest's table of character sets (ASCII, British, DEC "
        "special graphics, the alternate ROMs) selected into G0 with SI and G1 with SO",
    },
)


TMUX_LACKS_RELATIVE_POSITION = (
    "tmux departs from xterm here: it does not implement {name}, so its part of vttest's "
    "box is missing; xterm (and this emulator) moves the cursor"
)


def vttest_iso6429(
    menu: str, tests: dict[str, tuple[str, str]], divergences: dict[str, Divergence]
) -> None:
    """One vttest session through menu 11.`menu`: each test's screen a stream, RETURN back."""
    steps = [Step("11\r"), Step(f"{menu}\r")]
    for choice, (name, _) in tests.items():
        steps += [Step(f"{choice}\r", cut=name), Step("\r")]
    vttest(
        steps,
        {name: f"vttest, menu 11.{menu}: {what}" for name, what in tests.values()},
        divergences,
    )


vttest_iso6429(
    "5",
    {
        "1": ("vttest_hpa", "a box drawn with HPA (CSI n `)"),
        "2": ("vttest_cbt", "a box drawn with CBT (back tab)"),
        "3": ("vttest_cha", "a box drawn with CHA (CSI n G)"),
        "5": ("vttest_hpr", "a box drawn with HPR (CSI n a)"),
        "6": ("vttest_vpa", "a box drawn with VPA (CSI n d)"),
        "7": ("vttest_cnl", "a box drawn with CNL (CSI n E)"),
        "8": ("vttest_cpl", "a box drawn with CPL (CSI n F)"),
        "9": ("vttest_vpr", "a box drawn with VPR (CSI n e)"),
    },
    {
        "vttest_hpr": Divergence(
            TMUX_LACKS_RELATIVE_POSITION.format(name="HPR"), tuple(range(5, 18))
        ),
        "vttest_vpr": Divergence(
            TMUX_LACKS_RELATIVE_POSITION.format(name="VPR"), tuple(range(6, 18))
        ),
    },
)
vttest_iso6429(
    "6",
    {
        "2": ("vttest_colour_pattern", "the 8-colour test pattern"),
        "3": ("vttest_sgr0_colour_reset", "SGR 0 resetting colours"),
        "4": ("vttest_bce_erase", "erasing with a background colour (ED, EL)"),
        "5": ("vttest_bce_ech_index", "erasing (ECH) and scrolling with a background colour"),
    },
    {},
)
vttest_iso6429(
    "7",
    {
        "2": ("vttest_rep", "REP: a diagonal of two +'s (a REP does not repeat a REP)"),
        "3": ("vttest_sd", "SD (scroll down)"),
        "6": ("vttest_su", "SU (scroll up)"),
    },
    {},
)


ALTERNATE_STEPS = [Step("11\r"), Step("8\r"), Step("7\r")]
for choice, mode in (("3", "47"), ("4", "1047"), ("5", "1049")):
    ALTERNATE_STEPS += [
        Step(f"{choice}\r"),
        Step("\r", cut=f"vttest_alternate_{mode}_filled"),
        Step("\r"),
        Step("\r", cut=f"vttest_alternate_{mode}_restored"),
        Step("\r"),
    ]
vttest(
    ALTERNATE_STEPS,
    {
        f"vttest_alternate_{mode}_{state}": f"vttest, menu 11.8.7: mode {mode}, {what}"
        for mode in ("47", "1047", "1049")
        for state, what in (
            ("filled", "the alternate screen filled with E's"),
            (
                "restored",
                "back on the original screen, one line rewritten (and vttest's note that "
                "its cursor-position query went unanswered)",
            ),
        )
    },
)


DOWN = "\x1bOB"
"""The down arrow with application cursor keys set (ncurses programs set them)."""

DIALOG_MENU = [
    "dialog",
    "--backtitle",
    "roost corpus",
    "--title",
    "Pick one",
    "--checklist",
    "Which assistants should be backed up tonight?",
    "15",
    "60",
    "6",
    "ada",
    "the planner",
    "on",
    "bob",
    "the reviewer",
    "off",
    "cy",
    "the tester",
    "on",
    "dee",
    "the documenter",
    "off",
    "eve",
    "the auditor",
    "off",
]
session(
    "dialog",
    DIALOG_MENU,
    80,
    24,
    [
        Step(DOWN * 2, label="<Down> <Down>", cut="dialog_checklist"),
        Step(" \t", label="<Space> <Tab>", cut="dialog_checklist_toggled"),
        Step("\r", exits=True, cut="dialog_exit"),
    ],
    {
        "dialog_checklist": "dialog --checklist with a back title and shadows, moved two "
        "items down (line drawing, colours, cursor addressing)",
        "dialog_checklist_toggled": "the same after <Space> (an item toggled) and <Tab> (the "
        "focus on the buttons)",
        "dialog_exit": "dialog to its exit: it leaves the alternate screen twice (?1049l), "
        "and the cursor saved on entry is restored both times",
    },
    start="the auditor",
)

session(
    "whiptail",
    [
        "whiptail",
        "--title",
        "Retire ada?",
        "--yesno",
        "This stops the container and removes its volume. The backup stays.",
        "10",
        "60",
    ],
    80,
    24,
    [Step("\t", cut="whiptail_yesno")],
    {"whiptail_yesno": "whiptail --yesno (newt): a shadowed box, buttons, <Tab> to No"},
    start="backup",
)


def write_sample(scratch: Path) -> None:
    (scratch / "sample.py").write_text(SAMPLE_PY)


session(
    "nano",
    ["nano", "--ignorercfiles", "sample.py"],
    80,
    24,
    [
        Step(
            "\x1b[B" * 6 + "# edited in nano\r",
            label="<Down> x6 # edited in nano<CR>",
            cut="nano_edit",
        ),
        Step("\x17total\r", cut="nano_search"),
        Step("\x18", cut="nano_quit_prompt"),
        Step("n", exits=True, cut="nano_quit"),
    ],
    {
        "nano_edit": "nano on a Python file: title bar, help lines, a line typed in",
        "nano_search": "nano after ^W search: the status line and the cursor on the match",
        "nano_quit_prompt": "nano asking whether to save the modified buffer",
        "nano_quit": "a whole nano session to its exit: the alternate screen left",
    },
    setup=write_sample,
    start="sample.py",
)

EMACS = ["emacs", "-nw", "-Q", "--eval", "(setq inhibit-startup-screen t)", "sample.py"]
session(
    "emacs",
    EMACS,
    80,
    24,
    [
        Step("\x16", label="<C-v>", cut="emacs_page"),
        Step("\x182\x18o", label="<C-x> 2 <C-x> o", cut="emacs_split"),
        Step("\x1bxcolumn-number-mode\r", label="<M-x> column-number-mode<CR>"),
        Step("\x13handler_3\r", label="<C-s> handler_3<CR>", cut="emacs_search"),
        Step("\x18\x03", label="<C-x> <C-c>", exits=True, cut="emacs_quit"),
    ],
    {
        "emacs_page": "emacs -nw -Q on a Python file (font-lock colours, mode line), a page on",
        "emacs_split": "emacs with the window split in two, the other one selected",
        "emacs_search": "emacs after M-x column-number-mode and an incremental search",
        "emacs_quit": "a whole emacs session to its exit",
    },
    setup=write_sample,
    start="sample.py",
)


def ncurses_example(name: str) -> str:
    return f"/usr/libexec/ncurses-examples/{name}"


for test, name, description in (
    ("b", "ncurses_attributes", "test b: every video attribute on the alphabet, in a box"),
    ("c", "ncurses_colours", "test c: the pattern of 8-colour pairs"),
    ("f", "ncurses_acs", "test f: the alternate character set (line drawing) table"),
):
    session(
        ncurses_example("ncurses"),
        [ncurses_example("ncurses")],
        80,
        24,
        [Step(test + "\r", cut=name)],
        {name: f"ncurses' own test program, {description}"},
        start="command summary",
    )


session(
    ncurses_example("demo_menus"),
    [ncurses_example("demo_menus")],
    80,
    24,
    [
        Step(DOWN, label="<Down>"),
        Step("\x1bOC", label="<Right>"),
        Step(DOWN, label="<Down>", cut="ncurses_menus"),
    ],
    {
        "ncurses_menus": "ncurses' menu library demo: a menu bar, a boxed pull-down with the "
        "selection in colour, a status line rewritten with DCH",
    },
    start="File",
)
session(
    ncurses_example("demo_forms"),
    [ncurses_example("demo_forms")],
    80,
    24,
    [Step("hello", cut="ncurses_forms")],
    {"ncurses_forms": "ncurses' form library demo: its boxed list of editing keys"},
)
session(
    ncurses_example("inserts"),
    [ncurses_example("inserts")],
    80,
    24,
    [Step("abc"), Step("\x0e", label="<C-n>"), Step("xyz", cut="ncurses_inserts")],
    {
        "ncurses_inserts": "ncurses' inserts test: characters inserted into a row of tab "
        "marks, in windows and boxes, repeated on the next line",
    },
    start="ESC to exit",
)


def write_mc_tree(scratch: Path) -> None:
    """A project with fixed names, sizes and times; mc without hints, the free-space line
    (this machine's disk) or the window title (user and host names)."""
    project = scratch / "project"
    for relative, text in {
        "src/parser.py": "print('parser')\n" * 40,
        "src/lexer.py": "print('lexer')\n" * 12,
        "README.md": "# project\n",
        "notes.txt": "name\tsize\n",
        "run.sh": "#!/bin/sh\necho run\n",
    }.items():
        path = project / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (project / "run.sh").chmod(0o755)
    (project / "docs").mkdir()
    config = scratch / ".config" / "mc"
    config.mkdir(parents=True)
    (config / "ini").write_text(
        "[Midnight-Commander]\nconfirm_exit=false\n"
        "[Layout]\nfree_space=false\nmessage_visible=false\nxterm_title=false\n"
    )
    for cache in (".cache", ".local/share"):
        (scratch / cache).mkdir(parents=True)
    stamp = 1_700_000_000  # the listing shows times: fixed ones, the parent's included
    for path in [scratch, project, *project.rglob("*")]:
        os.utime(path, (stamp, stamp))


F9, F10 = "\x1b[20~", "\x1b[21~"
session(
    "mc",
    ["mc", "--nosubshell", "project", "project/src"],
    100,
    30,
    [
        Step(DOWN * 2, label="<Down> <Down>", cut="mc_panels"),
        Step(F9, label="<F9>"),
        Step(DOWN * 3, label="<Down> x3", cut="mc_menu"),
        Step("\x1b\x1b", label="<Esc> <Esc>"),
        Step(F10, label="<F10>", exits=True, cut="mc_quit"),
    ],
    {
        "mc_panels": "Midnight Commander's two panels (line drawing, colours), the selection "
        "moved down",
        "mc_menu": "mc with the pull-down menu open over the panels",
        "mc_quit": "a whole mc session to its exit: the alternate screen left",
    },
    setup=write_mc_tree,
    start="PullDn",
)


def write_git_repository(scratch: Path) -> None:
    """A repository whose commits have fixed authors and dates, hence fixed hashes."""
    repository = scratch / "repository"
    repository.mkdir()
    env = {
        **os.environ,
        "HOME": str(scratch),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "Ada Lovelace",
        "GIT_AUTHOR_EMAIL": "ada@example.com",
        "GIT_COMMITTER_NAME": "Ada Lovelace",
        "GIT_COMMITTER_EMAIL": "ada@example.com",
    }

    def git(*args: str, date: int = 0) -> None:
        stamp = f"{1_700_000_000 + date * 3600} +0000"
        subprocess.run(
            ["git", *args],
            cwd=repository,
            env={**env, "GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp},
            check=True,
            capture_output=True,
        )

    git("init", "-q", "-b", "main")
    for n in range(12):
        (repository / "parser.py").write_text(SAMPLE_PY[: 200 * (n + 1)])
        git("add", "parser.py")
        git("commit", "-q", "-m", f"Parser step {n}: handle case {n}", date=n)


session(
    "tig",
    ["tig", "-C", "repository"],
    100,
    30,
    [
        Step("\r", cut="tig_diff"),
        Step("q"),
        Step("q", exits=True, cut="tig_quit"),
    ],
    {
        "tig_diff": "tig's main view (graph, dates, authors, 256 colours) with the diff of the "
        "newest commit below it",
        "tig_quit": "a whole tig session to its exit",
    },
    setup=lambda scratch: write_git_repository(scratch),
    start="Parser step 0",
    command="tig (in a repository of 12 commits with fixed authors and dates)",
)

session(
    "python3",
    [sys.executable, "-m", "rich"],
    100,
    50,
    [Step("", cut="rich_demo")],
    {
        "rich_demo": "rich's own demo card: 24-bit colour gradients, tables, markdown, "
        "syntax highlighting, emoji and CJK text (truecolor: COLORTERM=truecolor)",
    },
    start="Rich",
    env={"COLORTERM": "truecolor"},
    command="python -m rich",
)

TEXTUAL_APP = """
from textual.app import App
from textual.widgets import DataTable, Footer, Input, Label


class Fleet(App):
    BINDINGS = [("q", "quit", "Quit")]

    def compose(self):
        yield Label("[b]Fleet[/b] of assistants")
        yield Input(placeholder="filter")
        yield DataTable()
        yield Footer()

    def on_mount(self):
        table = self.query_one(DataTable)
        table.add_columns("name", "status", "place")
        for n, name in enumerate(["ada", "bob", "cy", "dee", "eve"]):
            table.add_row(name, ["awake", "asleep"][n % 2], ["local", "docker"][n % 2])
        table.focus()


Fleet().run()
"""


def write_textual_app(scratch: Path) -> None:
    (scratch / "fleet.py").write_text(TEXTUAL_APP)


session(
    "python3",
    [sys.executable, "fleet.py"],
    80,
    24,
    [
        Step(DOWN * 2, label="<Down> <Down>", cut="textual_table"),
        Step("\t", label="<Tab>"),
        Step("\tbo", label="<Tab> bo", cut="textual_input"),
        Step("\t\tq", label="<Tab> <Tab> q", exits=True, cut="textual_quit"),
    ],
    {
        "textual_table": "a small Textual app (label, input, data table, footer): 24-bit "
        "colours, synchronized output, the cursor moved down the table",
        "textual_input": "the same app with text typed in the input",
        "textual_quit": "the app to its exit: mouse and paste modes off, the alternate screen left",
    },
    setup=write_textual_app,
    start="Quit",
    command="python fleet.py (a Textual app written by tests/terminal/record.py)",
)

INNER_TMUX_CONFIG = """\
set -g default-shell /bin/sh
set -g default-command sh
set -g status-left '[inner] '
set -g status-right 'roost corpus'
set -g status-style bg=colour24,fg=colour255
set -g pane-active-border-style fg=colour208
"""


def write_inner_tmux(scratch: Path) -> None:
    (scratch / "tmux.conf").write_text(INNER_TMUX_CONFIG)


SHELL_PROMPT = "corpus$ "
session(
    "tmux",
    ["tmux", "-S", "inner.sock", "-f", "tmux.conf", "new-session", "sh"],
    80,
    24,
    [
        Step("printf '\\033[1;31mred\\033[0m \\033[44mblue\\033[0m\\n'; seq 1 5\r"),
        Step("\x02%", label="<C-b> %"),
        Step("ls -a; echo {1..30}\r", cut="tmux_nested"),
        Step("exit\r"),
        Step("exit\r", exits=True, cut="tmux_nested_exit"),
    ],
    {
        "tmux_nested": "tmux inside the pane (its own server and configuration): a coloured "
        "status line, a vertical split, output in both panes",
        "tmux_nested_exit": "the inner tmux to its exit: both shells ended, the screen given back",
    },
    setup=write_inner_tmux,
    start=SHELL_PROMPT,
    env={"PS1": SHELL_PROMPT, "ENV": ""},
    command="tmux -S inner.sock -f tmux.conf new-session sh (its own server)",
)

SCREENRC = """\
startup_message off
hardstatus alwayslastline '%{= kG}[screen] %{= kW}%-w%{= bW}%n %t%{-}%+w'
shell /bin/sh
"""


def write_screenrc(scratch: Path) -> None:
    (scratch / "screenrc").write_text(SCREENRC)


session(
    "screen",
    ["screen", "-c", "screenrc"],
    80,
    24,
    [
        Step(
            "printf '\\033[1;32mgreen\\033[0m \\033[7mreverse\\033[0m\\n'; seq 1 5\r",
        ),
        Step("\x01c", label="<C-a> c"),
        Step("echo {1..40}\r", cut="screen_windows"),
        Step("\x01S", label="<C-a> S", cut="screen_split"),
    ],
    {
        "screen_windows": "GNU screen with a coloured hardstatus line, a second window and "
        "a wrapping echo",
        "screen_split": "screen after a horizontal split (<C-a> S): the region line drawn",
    },
    setup=write_screenrc,
    start=SHELL_PROMPT,
    env={"PS1": SHELL_PROMPT, "ENV": ""},
    command="screen -c screenrc (startup message off, a fixed hardstatus)",
)


# -- the command line -------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="streams to record again (default: all)")
    names = set(parser.parse_args(argv).names)
    known = {stream.name for recording in RECORDINGS for stream in recording.streams}
    if unknown := names - known:
        parser.error(f"unknown streams: {', '.join(sorted(unknown))}")
    manifest = json.loads(MANIFEST.read_text()) if MANIFEST.exists() else {}
    manifest = {name: entry for name, entry in manifest.items() if name in known}
    CORPUS.mkdir(exist_ok=True)
    failed = False
    for recording in RECORDINGS:
        wanted = [s for s in recording.streams if not names or s.name in names]
        if not wanted:
            continue
        if recording.needs and shutil.which(recording.needs) is None:
            print(f"skipped {', '.join(s.name for s in wanted)}: {recording.needs} is missing")
            failed = True
            continue
        with tempfile.TemporaryDirectory(prefix="roost-record-") as scratch:
            try:
                made = recording.make(Path(scratch))
            except RuntimeError as error:  # a program that did not do what its script expects
                print(f"failed {', '.join(s.name for s in wanted)}: {error}", file=sys.stderr)
                failed = True
                continue
        for stream in wanted:
            data = made[stream.name]
            if len(data) > MAX_BYTES:
                print(f"{stream.name}: {len(data)} bytes, more than {MAX_BYTES}", file=sys.stderr)
                failed = True
                continue
            (CORPUS / f"{stream.name}.bin").write_bytes(data)
            manifest[stream.name] = {
                "file": f"{stream.name}.bin",
                "cols": stream.cols,
                "rows": stream.rows,
                "description": stream.description,
                "how": stream.how,
            }
            if stream.divergence is not None:
                manifest[stream.name]["divergence"] = {
                    "reason": stream.divergence.reason,
                    "rows": list(stream.divergence.rows),
                    "cursor": stream.divergence.cursor,
                }
            print(f"{stream.name}: {len(data)} bytes")
    MANIFEST.write_text(json.dumps(dict(sorted(manifest.items())), indent=2) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
