"""Benchmark: seeking in a recording (run: python -m tests.perf.bench_rewind [--quick]).

Prints JSON.

A synthetic hour of a busy coding agent at 120x40 is recorded the way a pane records it: a
`Recorder` on a moved clock, an emulator fed the same chunks handing it a keyframe whenever
`keyframe_due` (so the file's index is the real thing). The agent streams coloured lines of its
work, redraws a status line with a spinner ten times a second, rewrites a diff box with cursor
moves, now and then dumps a file of a few hundred lines, and redraws the whole screen (about
10 KB/s on average, 40 MB in the hour).

For a few keyframe intervals (bytes of output between keyframes) the index is built in memory
by `Timeline.load`'s one pass, and for each:

- `seek_ms`: p50, p95 and max of `screen_at(t)` over random seconds `t` of the hour (fresh
  emulator, restore the keyframe, replay the file from its offset);
- `overhead_percent`: the index's bytes (keyframes and markers, as the recorder writes them) as a
  share of the recording's.

`replay_from_start_ms` is the same seek with no keyframes (a replay from the first event), over a
few random seconds: what seeking costs without an index. `recorder_index` is the file's own
index at the chosen `KEYFRAME_BYTES` (its overhead, and its seeks through `Timeline.load`, which
reads it), and `build_seconds` what a recording without an index costs to open. The target: any
seek under 100 ms. Every seek is checked against the replay from the start for a few seconds.
"""

from __future__ import annotations

import json
import random
import statistics
import tempfile
import time
from pathlib import Path

from services.terminal.backend import TerminalSize
from services.terminal.emulator import Emulator
from services.terminal.playback import Timeline, screen_text
from services.terminal.recording import KEYFRAME_BYTES, Recorder, index_path
from services.terminal.snapshot import screen_bytes
from tests.perf import runner

COLUMNS, ROWS = 120, 40
HOUR, QUICK_SECONDS = 3600.0, 120.0
INTERVALS = (16 << 10, 32 << 10, 64 << 10, 128 << 10, 256 << 10)
SEEKS, QUICK_SEEKS = 300, 20
BASELINE_SEEKS = 3
Screen = list[str]
WORDS = [
    "the",
    "agent",
    "reads",
    "files",
    "runs",
    "tests",
    "edits",
    "code",
    "and",
    "explains",
    "what",
    "it",
    "found",
]


def agent_output(rng: random.Random, tick: int) -> str:
    """One 100 ms chunk of a busy agent's output."""
    parts = []
    spinner = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"[tick % 10]
    parts.append(f"\x1b7\x1b[{ROWS};1H\x1b[2K\x1b[36m{spinner}\x1b[0m working · {tick // 10}s\x1b8")
    for _ in range(rng.randint(0, 20)):
        colour = rng.choice((31, 32, 33, 34, 35, 90))
        words = " ".join(rng.choices(WORDS, k=rng.randint(3, 18)))
        parts.append(f"\x1b[{colour}m●\x1b[0m {words}\r\n")
    if rng.random() < 0.2:
        top = rng.randint(2, ROWS - 12)
        for row in range(top, top + 8):
            sign = rng.choice("+- ")
            colour = {"+": 32, "-": 31, " ": 0}[sign]
            text = " ".join(rng.choices(WORDS, k=8))
            parts.append(f"\x1b[{row};4H\x1b[{colour}m{sign} {text}\x1b[K\x1b[0m")
        parts.append(f"\x1b[{ROWS - 1};1H")
    if rng.random() < 0.005:
        parts.extend(f"{n:5} │ {' '.join(rng.choices(WORDS, k=12))}\r\n" for n in range(300))
    if rng.random() < 0.01:
        parts.append("\x1b[H\x1b[2J")
        parts.extend(
            f"\x1b[{row};1H\x1b[1;3{row % 8}m{' '.join(rng.choices(WORDS, k=14))}\x1b[0m"
            for row in range(1, ROWS)
        )
    return "".join(parts)


def record(directory: Path, seconds: float) -> Path:
    """The synthetic recording, written as a pane writes one; returns its path."""
    now = [0.0]
    recorder = Recorder(
        directory,
        name="busy-agent",
        size=TerminalSize(COLUMNS, ROWS),
        title="busy agent",
        limit_bytes=1 << 40,
        clock=lambda: now[0],
        wall_clock=lambda: 1_700_000_000.0,
    )
    emulator = Emulator(COLUMNS, ROWS)
    rng = random.Random(19)
    recorder.mark("attach")
    for tick in range(int(seconds * 10)):
        now[0] = tick / 10
        chunk = agent_output(rng, tick).encode()
        recorder.output(chunk)
        emulator.feed(chunk)
        if recorder.keyframe_due:
            recorder.keyframe(screen_bytes(emulator, partial_character=False))
        if tick % 6000 == 3000:
            recorder.mark("reconnect")
    recorder.close()
    assert recorder.path is not None
    return recorder.path


def seek_times(timeline: Timeline, seconds: list[float]) -> tuple[dict[str, float], list[Screen]]:
    """Milliseconds per seek (p50, p95, max), and the screens found."""
    took, screens = [], []
    for second in seconds:
        start = time.perf_counter()
        screen = timeline.screen_at(second)
        took.append((time.perf_counter() - start) * 1000)
        screens.append(screen_text(screen))
    took.sort()
    figures = {
        "p50": round(statistics.median(took), 2),
        "p95": round(took[min(len(took) - 1, int(len(took) * 0.95))], 2),
        "max": round(took[-1], 2),
    }
    return figures, screens


def index_bytes(timeline: Timeline) -> int:
    """What the timeline's keyframes and markers take as the recorder writes them."""
    total = 0
    for keyframe in timeline.keyframes[1:]:
        entry = {
            "t": keyframe.time,
            "offset": keyframe.offset,
            "line": keyframe.line,
            "size": [keyframe.columns, keyframe.rows],
            "keyframe": keyframe.state.decode(),
        }
        total += len(json.dumps(entry, ensure_ascii=False).encode()) + 1
    return total + sum(60 for _ in timeline.markers)


def main(quick: bool) -> dict[str, object]:
    seconds = QUICK_SECONDS if quick else HOUR
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as scratch:
        started = time.perf_counter()
        path = record(Path(scratch), seconds)
        record_seconds = time.perf_counter() - started
        size = path.stat().st_size
        targets = sorted(rng.uniform(0, seconds) for _ in range(QUICK_SEEKS if quick else SEEKS))

        from_start = Timeline.load(path, keyframe_bytes=1 << 62, use_index=False)
        checked = rng.sample(targets, min(BASELINE_SEEKS, len(targets)))
        baseline, truth = seek_times(from_start, checked)
        ordered = checked + targets  # the checked seconds first: their screens are compared

        intervals: dict[str, object] = {}
        for interval in INTERVALS:
            started = time.perf_counter()
            timeline = Timeline.load(path, keyframe_bytes=interval, use_index=False)
            build = time.perf_counter() - started
            figures, screens = seek_times(timeline, ordered)
            assert screens[: len(truth)] == truth, "a seek found another screen"
            intervals[f"{interval >> 10}KiB"] = {
                "keyframes": len(timeline.keyframes) - 1,
                "seconds_between_keyframes": round(seconds / len(timeline.keyframes), 1),
                "seek_ms": figures,
                "overhead_percent": round(100 * index_bytes(timeline) / size, 2),
                "build_seconds": round(build, 2),
            }

        own = Timeline.load(path)
        assert own.index_problem is None, own.index_problem
        own_figures, screens = seek_times(own, ordered)
        assert screens[: len(truth)] == truth, "a seek found another screen"
        return {
            "recording": {
                "seconds": seconds,
                "mib": round(size / (1 << 20), 1),
                "kib_per_second": round(size / 1024 / seconds, 1),
                "screen": f"{COLUMNS}x{ROWS}",
                "record_seconds": round(record_seconds, 1),
            },
            "replay_from_start_ms": baseline,
            "intervals": intervals,
            "recorder_index": {
                "keyframe_bytes": KEYFRAME_BYTES,
                "keyframes": len(own.keyframes) - 1,
                "markers": len(own.markers),
                "overhead_percent": round(100 * index_path(path).stat().st_size / size, 2),
                "seek_ms": own_figures,
            },
            "targets": {"seek_ms_max": 100},
            "quick": quick,
        }


if __name__ == "__main__":
    runner.run(main, __doc__)
