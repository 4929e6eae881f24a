"""The rewind timeline widget on its own: its keys move its position within the recording and
say where (a second, a marker, the start), end and escape ask for live, and it draws the time
and the marker it is on."""

from __future__ import annotations

from textual.app import App, ComposeResult

from widgets.rewind_timeline import RewindTimeline, TimelineMark, clock_text


class TimelineApp(App[None]):
    def __init__(self) -> None:
        super().__init__()
        self.sought: list[float] = []
        self.left = 0

    def compose(self) -> ComposeResult:
        yield RewindTimeline()

    def on_mount(self) -> None:
        timeline = self.query_one(RewindTimeline)
        marks = [TimelineMark(30.0, "reconnect"), TimelineMark(5.0, "attach", "watch")]
        timeline.load(65.5, marks)
        timeline.focus()

    def on_rewind_timeline_sought(self, message: RewindTimeline.Sought) -> None:
        self.sought.append(message.seconds)

    def on_rewind_timeline_left(self) -> None:
        self.left += 1


async def test_the_keys_step_jump_to_markers_and_stay_within_the_recording() -> None:
    app = TimelineApp()
    async with app.run_test(size=(120, 3)) as pilot:
        timeline = app.query_one(RewindTimeline)
        await pilot.press("right")  # already at the end: stays there
        await pilot.press("left", "left", "shift+left", "shift+left", "shift+left")
        await pilot.press("home", "left", "shift+right", "right")
        await pilot.pause()
        assert app.sought == [65.5, 64.5, 63.5, 30.0, 5.0, 0.0, 0.0, 5.0, 6.0]
        assert timeline.position == 6.0
        timeline.position = 5.0
        text = timeline.render().plain
        assert "0:05 / 1:05" in text and "live -1:00" in text and "attach: watch" in text
        await pilot.press("end", "escape")
        await pilot.pause()
        assert app.left == 2


def test_clock_text() -> None:
    assert [clock_text(s) for s in (0, 59.9, 61, 3600, 3725)] == [
        "0:00",
        "0:59",
        "1:01",
        "1:00:00",
        "1:02:05",
    ]
