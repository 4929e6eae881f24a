"""Rewind and `roost play` against a program with a known timeline: a counter printing `tick N`
every 100 ms in a tmux session, watched by a real pane whose recorder writes the recording and
its index. The screen found at a time is the one the pane showed then (sampled live whenever
the pane had emulated everything recorded), the one a replay from the start finds, and the
counter's own: ticks 1..N in order, N the ticks recorded by then. The index's keyframes and
markers are there, a broken index is reported and rebuilt, and the pane's rewind keys move
through it while the session keeps running underneath."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from services.terminal import recording
from services.terminal.backend import TerminalSize
from services.terminal.emulator import Emulator
from services.terminal.playback import RecordingError, Timeline, screen_text
from services.terminal.recording import Recorder, index_path
from services.terminal.snapshot import screen_bytes
from services.terminal.tmux import TmuxServer
from tests.pilot import SIZE, make_app, wait_until
from tests.test_agents_e2e import session_cell, waits_on_a_dialog
from tests.test_cli import in_a_terminal, roost
from tests.test_cli import screen_text as terminal_text
from tests.test_panes import LEAVE, select_session, start_session
from tui.terminal_pane import Connection
from widgets.terminal_view import TerminalView

COUNTER = (
    f"{sys.executable} -c 'import time\n"
    "for n in range(1, 200):\n"
    '    print(f"tick {n}", flush=True); time.sleep(0.1)\n'
    "time.sleep(3600)'"
)
Samples = list[tuple[float, list[str]]]


def ticks(rows: list[str]) -> list[int]:
    return [int(row.split()[1]) for row in rows if row.startswith("tick ")]


def last_tick_recorded(path: Path, seconds: float) -> int:
    """The highest tick the events up to `seconds` hold: the counter's own timeline."""
    _, *lines = path.read_text().splitlines()
    output = "".join(event[2] for event in map(json.loads, lines) if event[0] <= seconds)
    return max(map(int, re.findall(r"tick (\d+)", output)), default=0)


def shown(view: TerminalView) -> list[str]:
    return [view.render_line(y).text.rstrip() for y in range(view.size.height)]


async def test_the_screen_at_each_time_is_the_one_shown_then(
    tmux_server: TmuxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recording, "KEYFRAME_BYTES", 600)  # keyframes every few ticks
    start_session(tmux_server, "counter", COUNTER, "40x12")
    app = make_app()
    samples: Samples = []
    async with app.run_test(size=SIZE) as pilot:
        await select_session(pilot, app, "counter")
        await pilot.press("w")  # watching: rewind's main use
        await wait_until(pilot, lambda: bool(app.panes_screen.panes), "the pane")
        [pane] = app.panes_screen.panes
        await wait_until(pilot, lambda: pane.connection is Connection.LIVE, "attached")
        recorder = pane.recorder
        assert recorder is not None

        def sample() -> bool:
            """Sample the screen when it shows all that is recorded; True after 4 s of it."""
            if not pane.queued and recorder.path is not None:
                samples.append((recorder.elapsed(), screen_text(pane.emulator)))
            return bool(samples) and samples[-1][0] > 4

        await wait_until(pilot, sample, "four seconds recorded")
        path = recorder.path
        assert path is not None

        # Rewind: the view freezes on the present while the session goes on underneath.
        await pilot.press(LEAVE, "h")
        await wait_until(pilot, lambda: pane.timeline.duration > 0, "the timeline")
        assert pane.rewinding and pane.timeline.has_focus
        still = shown(pane.view)
        later = max(ticks(still)) + 3
        await wait_until(pilot, lambda: max(ticks(screen_text(pane.emulator))) > later, "more")
        assert shown(pane.view) == still
        kinds = {mark.kind for mark in pane.timeline.marks}
        assert "attach" in kinds
        entered = pane.timeline.duration

        await pilot.press("left", "left")
        assert pane.timeline.position == pytest.approx(entered - 2)
        reference = Timeline.load(path, keyframe_bytes=1 << 62, use_index=False)
        expected = screen_text(reference.screen_at(entered - 2))
        await wait_until(
            pilot, lambda: shown(pane.view)[: len(expected)] == expected, "two seconds back"
        )
        await pilot.press("home")
        await wait_until(pilot, lambda: not any(ticks(shown(pane.view))), "the start")
        await pilot.press("shift+right")  # the first marker: the attach
        assert pane.timeline.position == min(mark.seconds for mark in pane.timeline.marks)

        # Underneath, the session went on: live again, the counter is further on.
        await wait_until(pilot, lambda: max(ticks(screen_text(pane.emulator))) > 40, "more")
        await pilot.press("end")
        assert not pane.rewinding and pane.view.still is None
        await wait_until(pilot, lambda: max(ticks(shown(pane.view)), default=0) > 40, "live")
        await pilot.press(LEAVE, "x")
        await wait_until(pilot, lambda: not app.panes_screen.panes, "closed")

    timeline = Timeline.load(path)
    assert timeline.index_problem is None
    assert len(timeline.keyframes) > 3, "the pane handed keyframes to its recorder"
    assert "attach" in {mark.kind for mark in timeline.markers}
    reference = Timeline.load(path, keyframe_bytes=1 << 62, use_index=False)
    assert len(reference.keyframes) == 1
    for seconds, live in samples:
        assert screen_text(timeline.screen_at(seconds)) == live
    for step in range(int(timeline.duration * 10)):
        seconds = step / 10
        screen = screen_text(timeline.screen_at(seconds))
        assert screen == screen_text(reference.screen_at(seconds))
        last = last_tick_recorded(path, seconds)
        seen = ticks(screen)
        # 12 rows: the last is the cursor's, or the newest tick's until its newline comes.
        assert min(last, 11) <= len(seen) <= min(last, 12)
        assert seen == list(range(last - len(seen) + 1, last + 1))


def test_roost_play_dumps_the_screen_at_a_second_and_refuses_broken_files(tmp_path: Path) -> None:
    now = [0.0]
    recorder = Recorder(
        tmp_path,
        name="counter",
        size=TerminalSize(20, 4),
        title="counter",
        limit_bytes=1 << 20,
        clock=lambda: now[0],
        keyframe_bytes=100,
    )
    for n in range(1, 31):
        now[0] = n / 10
        recorder.output(f"tick {n}\r\n".encode())
    recorder.output("\x1b]2;\x1b[31mtitle\x07\u202eevil\x1b[0m".encode())
    recorder.close()
    path = recorder.path
    assert path is not None

    at_one = roost("play", str(path), "--at", "1.05", "--dump")
    assert at_one.returncode == 0, at_one.stderr
    assert at_one.stdout.splitlines() == ["tick 8", "tick 9", "tick 10", ""]
    at_end = roost("play", str(path), "--dump")
    assert at_end.stdout.splitlines()[-1] == "evil"
    # Plain text only: the bidi override (joined to the cell before it) is made visible.
    assert "\\u202e" in at_end.stdout
    assert "\u202e" not in at_end.stdout and "\x1b" not in at_end.stdout

    missing = roost("play", str(tmp_path / "gone.cast"), "--dump")
    assert missing.returncode == 1
    assert missing.stderr.strip() == f"roost: {tmp_path / 'gone.cast'}: No such file or directory"
    broken = tmp_path / "broken.cast"
    broken.write_text('{"version": 2, "width": 10, "height": 3}\n[0.1, "o", "hi"]\n[1, "o"\n[2]\n')
    refused = roost("play", str(broken), "--at", "5", "--dump")
    assert refused.stderr.strip() == f"roost: {broken}:3: not JSON"
    header = tmp_path / "header.cast"
    header.write_text('{"version": 1}\n')
    assert (
        "header.cast:1: not an asciicast v2 header" in roost("play", str(header), "--dump").stderr
    )

    # Without --dump: the pane-like view at --at, its timeline, end quits.
    output, status = in_a_terminal("play", str(path), "--at", "1", until="tick 10")
    assert status == 0
    assert "REWIND  0:01 / 0:03" in terminal_text(output.encode())


@pytest.mark.parametrize(
    "damage",
    [
        lambda text: text.replace('"offset": ', '"offset": 1'),  # a keyframe off a line start
        lambda text: text.replace('"roost_index": 1', '"roost_index": 9'),
        lambda text: text[: len(text) // 2] + "{not json\n" + text[len(text) // 2 :],
        lambda text: text.replace('"t": ', '"t": -'),
    ],
)
def test_a_broken_index_is_reported_and_rebuilt_from_the_recording(
    tmp_path: Path, damage: Callable[[str], str]
) -> None:
    now = [0.0]
    recorder = Recorder(
        tmp_path,
        name="x",
        size=TerminalSize(20, 4),
        title="x",
        limit_bytes=1 << 20,
        clock=lambda: now[0],
        keyframe_bytes=100,
    )
    emulator = Emulator(20, 4)
    for n in range(1, 41):
        now[0] = n / 10
        chunk = f"\x1b[3{n % 8}mtick {n}\r\n".encode()
        recorder.output(chunk)
        emulator.feed(chunk)
        if recorder.keyframe_due:
            recorder.keyframe(screen_bytes(emulator, partial_character=False))
    recorder.close()
    path = recorder.path
    assert path is not None
    good = Timeline.load(path)
    assert good.index_problem is None and len(good.keyframes) > 5
    index = index_path(path)
    index.write_text(damage(index.read_text()))
    rebuilt = Timeline.load(path)
    assert rebuilt.index_problem is not None and str(index) in rebuilt.index_problem
    for step in range(45):
        assert screen_text(rebuilt.screen_at(step / 10)) == screen_text(good.screen_at(step / 10))


def test_a_malformed_event_after_the_keyframe_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "x.cast"
    path.write_text('{"version": 2, "width": 10, "height": 3}\n[0.1, "o", "hi"]\n[0.2, 5, 6]\n')
    with pytest.raises(RecordingError, match=r"x\.cast:3: not an event"):
        Timeline.load(path)


async def test_an_agent_that_needs_you_and_is_answered_leaves_markers_on_the_pane(
    tmux_server: TmuxServer, tmp_path: Path, isolated_env: Path
) -> None:
    agent = waits_on_a_dialog(tmux_server, tmp_path, isolated_env)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: "needs you" in session_cell(app, "activity"), "needs you")
        await select_session(pilot, app, "0")
        await pilot.press("w")
        await wait_until(pilot, lambda: bool(app.panes_screen.panes), "the pane")
        [pane] = app.panes_screen.panes
        await wait_until(pilot, lambda: pane.connection is Connection.LIVE, "attached")
        agent.server.send_keys(agent.pane, "3")  # someone at the terminal denied it
        await wait_until(pilot, lambda: "idle" in session_cell(app, "activity"), "answered")
        await pilot.press(LEAVE, "h")
        await wait_until(pilot, lambda: pane.rewound is not None, "the timeline")
        marks = [(mark.kind, mark.label) for mark in pane.timeline.marks]
        assert ("attach", "watch") in marks
        assert ("answered", "done: denied") in marks
        # From the start, shift+right visits every marker in order, the answer among them.
        times = sorted({mark.seconds for mark in pane.timeline.marks})
        await pilot.press("home")
        visited = []
        for _ in times:
            await pilot.press("shift+right")
            visited.append(pane.timeline.position)
        assert visited == times
        await pilot.press("shift+left")
        assert pane.timeline.position == (times[-2] if len(times) > 1 else times[-1])


def test_indexes_count_toward_the_budget_and_go_with_their_recording(tmp_path: Path) -> None:
    now = [0.0]
    recorder = Recorder(
        tmp_path,
        name="x",
        size=TerminalSize(20, 4),
        title="x",
        limit_bytes=40_000,
        clock=lambda: now[0],
        keyframe_bytes=100,
    )
    emulator = Emulator(20, 4)
    for n in range(2000):
        now[0] = n / 10
        chunk = f"\x1b[3{n % 8}mtick {n}\r\n".encode()
        recorder.output(chunk)
        emulator.feed(chunk)
        if recorder.keyframe_due:
            recorder.keyframe(screen_bytes(emulator, partial_character=False))
        casts = {path.name.removesuffix(".cast") for path in tmp_path.glob("*.cast")}
        indexes = {path.name.removesuffix(".cast.index") for path in tmp_path.glob("*.index")}
        assert indexes <= casts, "an index outlived its recording"
        # The budget, passed by at most the buffers not yet written of the part and its index.
        on_disk = sum(path.stat().st_size for path in tmp_path.glob("*.cast*"))
        assert on_disk <= 40_000 + 2 * recording.WRITE_BUFFER
    recorder.close()
    assert sum(path.stat().st_size for path in tmp_path.glob("*.cast*")) <= 40_000
    assert any(index_path(path).stat().st_size > 1000 for path in tmp_path.glob("*.cast"))
    for path in tmp_path.glob("*.cast"):
        assert Timeline.load(path).index_problem is None
