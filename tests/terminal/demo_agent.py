"""A stand-in for an agent's terminal UI, drawn once and then idle: the terminal pane's demo.

Run in a pane by the snapshot tests and screenshots/ (tests/demo.py): colours in all three
depths, attributes, box drawing, wide characters and a hidden cursor, always the same bytes.
"""

from __future__ import annotations

import sys

ESC = "\x1b"


def sgr(*codes: int | str) -> str:
    return f"{ESC}[{';'.join(map(str, codes))}m"


RESET = sgr(0)
WIDTH = 60
EDGE = sgr(38, 5, 75)


def boxed(mark: str, colour: int, text: str, styled: str) -> str:
    """One line inside the box: a coloured mark, then `styled` (which shows as `text`)."""
    padding = " " * (WIDTH - 4 - len(text))
    return f"{EDGE}│{RESET} {sgr(colour)}{mark}{RESET} {styled}{padding}{EDGE}│{RESET}"


TITLE = " agent · refactor the parser "
LINES = [
    f"{sgr(1, 38, 5, 75)}╭─{TITLE}{'─' * (WIDTH - 1 - len(TITLE))}╮{RESET}",
    boxed("✓", 32, "read services/terminal/emulator.py", "read services/terminal/emulator.py"),
    boxed("✓", 32, "ran the tests: 83 passed", f"ran the tests: {sgr(1)}83 passed{RESET}"),
    boxed(
        "●",
        33,
        "editing widgets/terminal_view.py",
        f"editing {sgr(4)}widgets/terminal_view.py{RESET}",
    ),
    f"{sgr(1, 38, 5, 75)}╰{'─' * WIDTH}╯{RESET}",
    "",
    f"{sgr(2)}@@ -41,3 +41,4 @@{RESET}",
    f"{sgr(31)}-    return pyte.Screen(columns, lines){RESET}",
    f"{sgr(32)}+    screen = Emulator(columns, lines){RESET}",
    f"{sgr(32)}+    return screen{RESET}",
    "",
    f"{sgr(38, 2, 255, 135, 0)}truecolour{RESET} {sgr(48, 5, 24)} 256 colours {RESET} "
    f"{sgr(7)}reverse{RESET} {sgr(3)}italic{RESET} {sgr(9)}struck{RESET} 日本語 🚀",
    "",
    f"{sgr(1, 35)}>{RESET} waiting for input {sgr(5)}▌{RESET}",
]


def main() -> None:
    sys.stdout.write(f"{ESC}[?25l{ESC}]2;agent: waiting{ESC}\\" + "\r\n".join(LINES))
    sys.stdout.flush()
    sys.stdin.read()


if __name__ == "__main__":
    main()
