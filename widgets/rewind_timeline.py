"""The rewind timeline: where in a recording a still pane is, and the markers along it.

The widget does no I/O. It is given the recording's length and markers (`load`), moves its
`position` with the keys (a step of `STEP` seconds, a jump to the next or previous marker, the
start), and posts `Sought` with each new position for its owner to find that screen; `Left`
asks to go back to live (end or escape). It draws one line (it takes the place of its pane's
status line, so the pane keeps its size): the time, a bar with the markers and the position on
it, and the marker at the position.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, NamedTuple

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget

STEP = 1.0
"""Seconds one left or right moves: a second is what a watcher who looked away asks for."""
MARK_GLYPHS = {
    "attach": "◆",
    "resize": "↔",
    "reconnect": "↻",
    "needs you": "!",
    "answered": "✓",
    "error": "✖",
}
"""How a marker of each kind shows on the bar; other kinds show as `▲`."""


class TimelineMark(NamedTuple):
    """A marker: `seconds` into the recording, its `kind` and a few words."""

    seconds: float
    kind: str
    label: str = ""


def clock_text(seconds: float) -> str:
    """`m:ss`, or `h:mm:ss` from an hour."""
    whole = max(0, int(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02}:{secs:02}" if hours else f"{minutes}:{secs:02}"


class RewindTimeline(Widget, can_focus=True):
    """Where a rewound pane is in its recording; its keys move there."""

    DEFAULT_CSS = """
    RewindTimeline { height: 1; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("left", "step(-1)", "Back 1 s", id="rewind.back", tooltip="One second back"),
        Binding("right", "step(1)", "On 1 s", id="rewind.on", tooltip="One second on"),
        Binding(
            "shift+left",
            "mark(-1)",
            "Previous marker",
            id="rewind.previous_marker",
            tooltip="Back to the previous marker (attach, resize, reconnect...)",
        ),
        Binding(
            "shift+right",
            "mark(1)",
            "Next marker",
            id="rewind.next_marker",
            tooltip="On to the next marker",
        ),
        Binding("home", "start", "Start", id="rewind.start", tooltip="The start of the recording"),
        Binding(
            "end,escape",
            "live",
            "Live",
            id="rewind.live",
            tooltip="Leave rewind: back to the live session",
        ),
    ]

    position: reactive[float] = reactive(0.0)

    @dataclass
    class Sought(Message):
        """The timeline moved to `seconds`: show the screen of that moment."""

        timeline: RewindTimeline
        seconds: float

    @dataclass
    class Left(Message):
        """Back to live, please."""

        timeline: RewindTimeline

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.duration = 0.0
        self.marks: tuple[TimelineMark, ...] = ()
        self.note = ""
        """A word from the owner (why the recording's index was rebuilt, a seek that failed)."""

    def load(self, duration: float, marks: Sequence[TimelineMark], *, note: str = "") -> None:
        """A recording `duration` seconds long, with its markers; the position at its end."""
        self.duration = max(0.0, duration)
        self.marks = tuple(sorted(marks))
        self.note = note
        self.set_reactive(RewindTimeline.position, self.duration)
        self.refresh()

    def move_to(self, seconds: float) -> None:
        """Go to `seconds` (kept within the recording) and say so."""
        seconds = min(max(0.0, seconds), self.duration)
        self.position = seconds
        self.post_message(self.Sought(self, seconds))

    def action_step(self, steps: int) -> None:
        self.move_to(self.position + steps * STEP)

    def action_mark(self, direction: int) -> None:
        """To the nearest marker before (-1) or after (1) the position, if there is one."""
        if direction < 0:
            earlier = [mark.seconds for mark in self.marks if mark.seconds < self.position - 1e-6]
            if earlier:
                self.move_to(earlier[-1])
        else:
            later = [mark.seconds for mark in self.marks if mark.seconds > self.position + 1e-6]
            if later:
                self.move_to(later[0])

    def action_start(self) -> None:
        self.move_to(0.0)

    def action_live(self) -> None:
        self.post_message(self.Left(self))

    def render(self) -> Text:
        """One line: the time, the bar with the markers and the position, the marker here."""
        behind = self.duration - self.position
        text = Text(" REWIND ", style="bold reverse", no_wrap=True, overflow="ellipsis")
        text.append(f" {clock_text(self.position)} / {clock_text(self.duration)} ")
        text.append(f"live -{clock_text(behind)} " if behind >= 0.5 else "live ", style="dim")
        here = [mark for mark in self.marks if abs(mark.seconds - self.position) < 0.5]
        words = ""
        if here:
            words = f" {here[-1].kind}{': ' + here[-1].label if here[-1].label else ''}"
        if self.note:
            words += f" · {self.note}"
        width = max(12, self.size.width - text.cell_len - min(len(words), 40) - 2)
        cells = ["─"] * width

        def column(seconds: float) -> int:
            if self.duration <= 0:
                return width - 1
            return min(width - 1, int(seconds / self.duration * (width - 1) + 0.5))

        for mark in self.marks:
            cells[column(mark.seconds)] = MARK_GLYPHS.get(mark.kind, "▲")
        at = column(self.position)
        text.append("├", style="dim")
        text.append("".join(cells[:at]), style="bold")
        text.append("●", style="bold reverse")
        text.append("".join(cells[at + 1 :]), style="dim")
        text.append("┤", style="dim")
        text.append(words, style="bold")
        return text
