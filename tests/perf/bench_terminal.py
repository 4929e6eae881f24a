"""Benchmark: terminal emulation and rendering (run: python -m tests.perf.bench_terminal).

`--quick`: 256 KiB workloads, one round, ten keys, no third-party packages.

Prints one JSON object. The same bytes go through every implementation, in 64 KiB chunks cut
without regard to UTF-8 or escape sequences (as reads from a PTY are), on a 200x50 screen:

- (a) `pyte`: stock `pyte.Screen` + `pyte.ByteStream`, the baseline;
- (b) `roost`: roost's `Emulator` (10,000 lines of scrollback, as the app uses it);
- (c) `widget`: the real `TerminalPane` in a headless Textual app (`run_test`), fed by an
  in-memory backend that hands out one chunk per read: from the session's start until the pane
  has emulated every byte and the view has drawn the final screen (every row's `render_line`
  done after its last change). Emulate and render, paced as in the app (at most 60 frames a
  second, a time budget per frame). Headless Textual still lays out and renders every refreshed
  line into segments; it only skips encoding them as escape sequences for a real terminal;
- (d) textual-terminal and textual-tty, each installed from PyPI into a throwaway venv under
  `$TMPDIR/roost-bench-terminal/` (kept between runs, never in roost's dependencies) and
  measured in a subprocess of that venv: the pinned releases (`THIRD_PARTY`), and the newest
  ones, upgraded on every run: `textual_tty_newest` (the newest textual-tty with the newest
  bittty it accepts) and `bittty_newest` (the newest bittty alone, its `Board`: the widget
  figure is null, no textual-tty release accepts it yet). `textual_terminal_mb_s`: its read
  path (one `bytes.decode()` per read, as `TerminalEmulator.on_output` does, its DECSET scan, then
  `pyte.Stream.feed`); `textual_terminal_widget_mb_s`: its widget's `recv()` loop (that plus
  the rebuild of every cell into Rich text per read) in a headless app, until drawn.
  `textual_terminal_chunks_lost`: reads its `decode()` rejects (a UTF-8 character split
  across reads), which it drops; `textual_terminal_feed_errors`: reads on which pyte raised,
  whose rest it drops (it runs on Textual < 0.86, see `THIRD_PARTY`). `textual_tty_mb_s`:
  bittty's `Board` behind an incremental UTF-8 decoder (as its `UnixPTY` reads);
  `textual_tty_widget_mb_s`: its `Monitor` widget fed one read per loop turn in a headless
  app, until its 60 Hz tick has drawn the final state. A package that does not install or
  run gets null figures and `third_party.<name>.error` says why.

MB/s is 10^6 bytes per second. (a) and (b) run interleaved, `Scale.rounds` times, a fresh screen
each time; the best of each is reported and `ratio_vs_pyte` = (b)/(a) from this run.
`screen_matches_pyte` checks that (b) ended on the same cells and cursor as (a), so the two
did the same work. The third-party figures come from their own processes in the same run.

`corpus`: (a) and (b) over the streams of real programs and the tmux oracle's synthetic ones
(tests/terminal/corpus, each at its own size), best of `Scale.rounds` per stream, summed:
`ratio_vs_pyte` over all of it. A stream stock pyte raises on is left out of both sums and
named in `pyte_failed`.

Workloads (seeded, `Scale.workload_bytes` each, CRLF line ends as a tty with onlcr writes them):
- `plain_log`: timestamped log lines, 3% long enough to wrap;
- `sgr_log`: the same lines coloured (dim, bold, 8/256 colours, resets), as structured loggers;
- `redraw`: full-screen frames of an agent TUI: every row cursor-addressed, 256-colour and
  truecolor SGR, erase-in-line, box drawing and bullets, inside synchronized output (2026);
- `cjk_emoji`: log lines mixing ASCII with Chinese, Japanese, Korean, accented Latin and
  single-code-point emoji. Zero-width joiners and variation selectors are left out: pyte
  stops drawing the rest of a run at them, so it would do less work than the others.

Keypress to echo: two `TerminalPane`s side by side (100x50 each) in one headless app; the
left runs `sh` that, once told, cats the SGR log in a loop; the right runs `cat` in a real
PTY, focused. A key event is posted to the app as the driver posts one, and two times are
taken: until the character is in the right pane's emulator (`in_emulator`), and until the
view has drawn that row since (`drawn`, the figure the target is about). Polled every
millisecond. `idle` first (left pane silent), then `during_flood`, in the same app.
`flood_lines_emulated_per_s` is how fast the flooding pane got on while the keys came (typing
comes first: the other panes step aside, see `tui.terminal_pane.Typing`).

Targets (issue 16): ratio_vs_pyte >= 10 on plain logs, 6 on SGR logs, 5 on redraws, 4 on CJK,
and >= 5 over the corpus; roost's emulator ahead of every textual-tty/bittty measured (pinned
and newest) on every workload (`<workload>.vs_<package>`: roost's MB/s over theirs, >= 1), and
its widget ahead of textual-tty's (`<workload>.widget_vs_<package>`) and >= 10 MB/s on plain
logs; keypress to echo (drawn) during the flood: p95 under 16 ms (one frame), and idle too.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pyte
from textual import events
from textual.app import App, ComposeResult
from textual.containers import Horizontal

import tui
from services.core.mode import Mode
from services.terminal.attach import Attachment, HostPlace
from services.terminal.backend import TerminalBackend, TerminalSize
from services.terminal.emulator import Emulator
from services.terminal.local import LocalPty
from tests.perf import runner
from tui.terminal_pane import Connection, TerminalPane
from widgets.terminal_view import TerminalView

COLUMNS, LINES = 200, 50
CHUNK = 64 << 10
SCROLLBACK = 10_000


@dataclass(frozen=True)
class Scale:
    workload_bytes: int
    rounds: int
    """Interleaved runs of (a) and (b), and runs of each third-party emulator."""
    widget_rounds: int
    """Runs of each widget, roost's and the third-party ones."""
    samples: int
    """Keypresses per condition."""
    third_party: bool
    corpus_streams: int | None
    """Corpus streams measured (None: all of them)."""


FULL = Scale(
    workload_bytes=2 << 20,
    rounds=3,
    widget_rounds=2,
    samples=80,
    third_party=True,
    corpus_streams=None,
)
QUICK = Scale(
    workload_bytes=256 << 10,
    rounds=1,
    widget_rounds=1,
    samples=10,
    third_party=False,
    corpus_streams=8,
)
WORKLOAD_BYTES = FULL.workload_bytes
SEED = 20240501
VENV_ROOT = Path(tempfile.gettempdir()) / "roost-bench-terminal"
CORPUS = Path(__file__).resolve().parent.parent / "terminal" / "corpus"


@dataclass(frozen=True)
class ThirdParty:
    venv: str
    """Its directory under `VENV_ROOT`."""
    requirements: tuple[str, ...]
    """What pip installs into it."""
    module: str
    """What must import for the venv to count as made."""
    program: str
    """Its key in `PROGRAMS`."""
    newest: bool = False
    """Upgraded to the newest releases on every run."""


THIRD_PARTY = {
    "textual_terminal": ThirdParty(
        "textual-terminal",
        ("textual-terminal==0.3.0", "textual<0.86"),
        "textual_terminal",
        "textual_terminal",
    ),
    "textual_tty": ThirdParty(
        "textual-tty", ("textual-tty==0.4.0", "bittty==0.1.4"), "textual_tty", "textual_tty"
    ),
    "textual_tty_newest": ThirdParty(
        "textual-tty-newest", ("textual-tty",), "textual_tty", "textual_tty", newest=True
    ),
    "bittty_newest": ThirdParty("bittty-newest", ("bittty",), "bittty", "textual_tty", newest=True),
}
"""JSON key -> its venv. The pinned releases are those the issue's figures were measured with;
textual-terminal 0.3.0 imports `textual.app.DEFAULT_COLORS`, which Textual removed in 0.86."""


# -- workloads ---------------------------------------------------------------------------------

LEVELS = ("INFO",) * 14 + ("DEBUG",) * 3 + ("WARN",) * 2 + ("ERROR",)
LEVEL_SGR = {"INFO": "\x1b[32m", "DEBUG": "\x1b[34m", "WARN": "\x1b[1;33m", "ERROR": "\x1b[1;31m"}
COMPONENTS = (
    "api",
    "scheduler",
    "worker-1",
    "worker-2",
    "db.pool",
    "auth",
    "cache",
    "http.client",
    "agent.loop",
    "tools.bash",
)
WORD_LIST = (
    "request completed started retry connection timeout user session cache miss hit "
    "upstream response queued job finished failed tool call model tokens stream chunk "
    "written read file opened closed commit branch checkout build test passed skipped"
)
WORDS = tuple(WORD_LIST.split())
KEYS = ("id", "user", "path", "status", "latency_ms", "bytes", "attempt", "job", "trace")
CJK_WORDS = (
    "用户",
    "登录成功",
    "数据库连接",
    "超时",
    "请求完成",
    "デプロイ完了",
    "エラーが発生しました",
    "サーバー",
    "한국어",
    "서버 배포",
    "café",
    "naïve",
    "Ωmega",
    "🚀",
    "✅",
    "🔥",
    "📦",
    "🐍",
    "🎉",
)


def timestamps() -> Iterator[str]:
    millis = 0
    while True:
        millis += 7
        seconds, ms = divmod(millis, 1000)
        minutes, sec = divmod(seconds, 60)
        yield f"2024-05-01T12:{minutes % 60:02d}:{sec:02d}.{ms:03d}Z"


def log_record(rng: random.Random, words: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """(level, component, message, key=value pairs...), 3% with a payload long enough to wrap."""
    level = rng.choice(LEVELS)
    component = rng.choice(COMPONENTS)
    message = " ".join(rng.choices(words, k=rng.randint(3, 14)))
    if rng.random() < 0.03:
        message += " payload=" + "".join(rng.choices("abcdef0123456789", k=rng.randint(150, 400)))
    pairs = tuple(f"{key}={rng.randint(0, 99999)}" for key in rng.sample(KEYS, k=rng.randint(1, 4)))
    return (level, component, message, *pairs)


def log_workload(
    rng: random.Random,
    *,
    coloured: bool,
    words: list[str] | None = None,
    size_wanted: int = WORKLOAD_BYTES,
) -> bytes:
    lines: list[str] = []
    size = 0
    clock = timestamps()
    vocabulary = words or WORDS
    while size < size_wanted:
        level, component, message, *pairs = log_record(rng, vocabulary)
        stamp = next(clock)
        if coloured:
            colour = 16 + COMPONENTS.index(component) * 19
            styled_pairs = []
            for pair in pairs:
                key, value = pair.split("=")
                styled_pairs.append(f"\x1b[36m{key}\x1b[39m=\x1b[1m{value}\x1b[22m")
            line = (
                f"\x1b[2m{stamp}\x1b[0m {LEVEL_SGR[level]}{level:<5}\x1b[0m "
                f"\x1b[38;5;{colour}m{component:<12}\x1b[0m {message} {' '.join(styled_pairs)}\r\n"
            )
        else:
            line = f"{stamp} {level:<5} {component:<12} {message} {' '.join(pairs)}\r\n"
        lines.append(line)
        size += len(line.encode())
    return "".join(lines).encode()


def redraw_workload(rng: random.Random, size_wanted: int) -> bytes:
    """Frames of an agent TUI: a header, a scrolling transcript, an input box and a status bar,
    every row rewritten each frame."""
    transcript: list[str] = []

    def transcript_line() -> str:
        kind = rng.random()
        text = " ".join(rng.choices(WORDS, k=rng.randint(2, 24)))
        if kind < 0.15:
            return f"\x1b[38;2;120;200;255m⏺\x1b[39m \x1b[1m{text}\x1b[22m"
        if kind < 0.3:
            return f"  \x1b[2m⎿  {text}\x1b[22m"
        if kind < 0.6:  # syntax-highlighted code
            tokens = [
                f"\x1b[38;5;{rng.choice((81, 149, 204, 221, 246))}m{word}"
                for word in rng.choices(WORDS, k=rng.randint(2, 12))
            ]
            return f"\x1b[48;2;40;42;54m {rng.randint(1, 999):>4} │ {' '.join(tokens)}\x1b[0m"
        if kind < 0.7:
            return ""
        return text

    transcript.extend(transcript_line() for _ in range(LINES))
    frames: list[str] = []
    size = 0
    frame = 0
    while size < size_wanted:
        frame += 1
        transcript.extend(transcript_line() for _ in range(rng.randint(0, 3)))
        del transcript[: len(transcript) - 42]
        parts = ["\x1b[?2026h\x1b[?25l"]
        title = f" agent · session {frame:05d} · {rng.choice(WORDS)} "
        parts.append(f"\x1b[1;1H\x1b[48;2;30;30;46m\x1b[38;2;205;214;244m{title:<{COLUMNS}}\x1b[0m")
        for row, line in enumerate(transcript, start=2):
            parts.append(f"\x1b[{row};1H{line}\x1b[K")
        spinner = "|/-\\"[frame % 4]
        inner = COLUMNS - 2
        parts.append(f"\x1b[44;1H\x1b[38;5;244m╭{'─' * inner}╮\x1b[0m")
        prompt = f"> {' '.join(rng.choices(WORDS, k=rng.randint(0, 6)))}"
        parts.append(f"\x1b[45;1H\x1b[38;5;244m│\x1b[0m{prompt:<{inner}}\x1b[38;5;244m│\x1b[0m")
        parts.append(f"\x1b[46;1H\x1b[38;5;244m╰{'─' * inner}╯\x1b[0m")
        parts.append(f"\x1b[47;1H\x1b[38;5;208m{spinner} Thinking… ({frame % 97}s)\x1b[0m\x1b[K")
        parts.append("\x1b[48;1H\x1b[2m  ? for shortcuts\x1b[22m\x1b[K\x1b[49;1H\x1b[K")
        status = f" {rng.randint(1000, 99999)} tokens · model · main* "
        parts.append(f"\x1b[50;1H\x1b[48;5;237m\x1b[38;5;250m{status:<{COLUMNS}}\x1b[0m")
        parts.append(f"\x1b[45;{len(prompt) + 2}H\x1b[?25h\x1b[?2026l")
        text = "".join(parts)
        frames.append(text)
        size += len(text.encode())
    return "".join(frames).encode()


def workloads(size: int) -> dict[str, bytes]:
    words = [*WORDS, *CJK_WORDS, *CJK_WORDS]
    return {
        "plain_log": log_workload(random.Random(SEED), coloured=False, size_wanted=size),
        "sgr_log": log_workload(random.Random(SEED), coloured=True, size_wanted=size),
        "redraw": redraw_workload(random.Random(SEED), size),
        "cjk_emoji": log_workload(
            random.Random(SEED), coloured=False, words=words, size_wanted=size
        ),
    }


def chunked(data: bytes) -> list[bytes]:
    return [data[start : start + CHUNK] for start in range(0, len(data), CHUNK)]


# -- (a) and (b): emulation alone ---------------------------------------------------------------


def mb_per_s(size: int, seconds: float) -> float:
    return size / seconds / 1e6


def run_pyte(chunks: list[bytes], columns: int = COLUMNS, lines: int = LINES) -> tuple[float, Any]:
    screen = pyte.Screen(columns, lines)
    stream = pyte.ByteStream(screen)
    feed = stream.feed
    started = time.perf_counter()
    for chunk in chunks:
        feed(chunk)
    return time.perf_counter() - started, screen


def run_roost(chunks: list[bytes], columns: int = COLUMNS, lines: int = LINES) -> tuple[float, Any]:
    emulator = Emulator(columns, lines, scrollback=SCROLLBACK)
    feed = emulator.feed
    started = time.perf_counter()
    for chunk in chunks:
        feed(chunk)
    return time.perf_counter() - started, emulator


def cells(screen: Any) -> tuple[Any, ...]:
    """The visible grid (pyte's nine cell fields) and the cursor."""
    rows = tuple(
        tuple(tuple(screen.buffer[y][x])[:9] for x in range(screen.columns))
        for y in range(screen.lines)
    )
    return rows, screen.cursor.x, screen.cursor.y


def emulation(data: bytes, rounds: int) -> dict[str, Any]:
    chunks = chunked(data)
    times: dict[str, list[float]] = {"pyte": [], "roost": []}
    screens: dict[str, Any] = {}
    for round_ in range(rounds):
        runners = [("pyte", run_pyte), ("roost", run_roost)]
        if round_ % 2:
            runners.reverse()
        for name, run in runners:
            elapsed, screens[name] = run(chunks)
            times[name].append(elapsed)
    pyte_mb_s = mb_per_s(len(data), min(times["pyte"]))
    roost_mb_s = mb_per_s(len(data), min(times["roost"]))
    return {
        "bytes": len(data),
        "pyte_mb_s": pyte_mb_s,
        "roost_mb_s": roost_mb_s,
        "ratio_vs_pyte": roost_mb_s / pyte_mb_s,
        "screen_matches_pyte": cells(screens["pyte"]) == cells(screens["roost"]),
    }


def corpus(rounds: int, streams: int | None) -> dict[str, Any]:
    """(a) and (b) over the oracle's corpus (see the module docstring), each stream at its own
    size; the first `streams` of them by name, or all."""
    manifest = json.loads((CORPUS / "manifest.json").read_text())
    times = {"pyte": 0.0, "roost": 0.0}
    size = 0
    pyte_failed = []
    for name in sorted(manifest)[:streams]:
        entry = manifest[name]
        chunks = chunked((CORPUS / entry["file"]).read_bytes())
        best = {"pyte": float("inf"), "roost": float("inf")}
        try:
            for _ in range(rounds):
                best["pyte"] = min(best["pyte"], run_pyte(chunks, entry["cols"], entry["rows"])[0])
                best["roost"] = min(
                    best["roost"], run_roost(chunks, entry["cols"], entry["rows"])[0]
                )
        except Exception:  # stock pyte's asserts and bugs: the stream is left out
            pyte_failed.append(name)
            continue
        size += sum(map(len, chunks))
        for implementation, seconds in best.items():
            times[implementation] += seconds
    return {
        "streams": len(manifest) if streams is None else min(streams, len(manifest)),
        "bytes": size,
        "pyte_mb_s": mb_per_s(size, times["pyte"]),
        "roost_mb_s": mb_per_s(size, times["roost"]),
        "ratio_vs_pyte": times["pyte"] / times["roost"],
        "pyte_failed": pyte_failed,
    }


# -- (c): the pane in a headless app ------------------------------------------------------------


class Replay:
    """A backend that serves recorded bytes, one chunk per read, then ends."""

    description = "replayed output"

    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = iter(chunks)
        self.started = 0.0
        self._status: int | None = None

    async def start(self, size: TerminalSize) -> None:
        self.started = time.perf_counter()

    async def read(self) -> bytes:
        await asyncio.sleep(0)  # one read per turn of the loop, as a PTY that is always ready
        chunk = next(self._chunks, b"")
        if not chunk:
            self._status = 0
        return chunk

    def write(self, data: bytes) -> None:
        """Replies to queries go nowhere: the recording does not wait for them."""

    def resize(self, size: TerminalSize) -> None:
        """A recording keeps its size."""

    async def close(self) -> None:
        """Nothing to release."""

    @property
    def exit_status(self) -> int | None:
        return self._status


class Panes(App[None]):
    """Terminal panes side by side, one per backend, styled as in roost."""

    CSS_PATH = Path(tui.__file__).with_name("roost.tcss")

    def __init__(self, backends: list[TerminalBackend]) -> None:
        super().__init__()
        self.backends = backends
        self.ended: set[TerminalPane] = set()

    def compose(self) -> ComposeResult:
        with Horizontal():
            for index, backend in enumerate(self.backends):
                attachment = Attachment(f"pane {index}", HostPlace(("bench",)))
                yield TerminalPane(
                    attachment,
                    lambda _attachment, _mode, revive=False, backend=backend: backend,
                    mode=Mode.DRIVE,
                    scrollback=SCROLLBACK,
                )

    def on_terminal_pane_ended(self, message: TerminalPane.Ended) -> None:
        self.ended.add(message.pane)


def row_drawn(view: TerminalView, row: int) -> bool:
    """The view has drawn `row` as it now is: it records what each `render_line` drew
    (line serial, cursor column) and compares it with the row's current key to find work."""
    return view._painted.get(row) == view._row_key(row)


async def until(condition: Callable[[], bool], within: float = 60.0) -> float:
    """Poll every millisecond until `condition` holds; returns when it did."""
    deadline = time.perf_counter() + within
    while not condition():
        if time.perf_counter() > deadline:
            raise TimeoutError("the benchmark's condition never held")
        await asyncio.sleep(0.001)
    return time.perf_counter()


async def widget_run(chunks: list[bytes]) -> tuple[float, tuple[int, int]]:
    backend = Replay(chunks)
    app = Panes([backend])
    async with app.run_test(size=(COLUMNS, LINES + 1)):
        pane = app.query_one(TerminalPane)
        view = pane.view
        await until(lambda: pane in app.ended)
        assert pane.connection is Connection.EXITED, pane.detail
        drawn = await until(lambda: all(row_drawn(view, y) for y in range(view.size.height)))
        return drawn - backend.started, (view.size.width, view.size.height)


async def widget(data: bytes, rounds: int) -> dict[str, Any]:
    chunks = chunked(data)
    times = []
    for _ in range(rounds):
        elapsed, size = await widget_run(chunks)
        times.append(elapsed)
    assert size == (COLUMNS, LINES), f"the view was {size}, not {COLUMNS}x{LINES}"
    return {"widget_mb_s": mb_per_s(len(data), min(times))}


# -- keypress to echo ---------------------------------------------------------------------------


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "median": statistics.median(values),
        "p95": percentile(values, 0.95),
        "max": max(values),
    }


def row_text(emulator: Emulator, y: int) -> str:
    line = emulator.buffer[y]
    return "".join(line[x].data for x in range(emulator.columns)).rstrip()


async def new_line(app: Panes, emulator: Emulator, typed: str) -> None:
    """Enter, untimed: the tty echoes the line, then cat prints it; wait for both."""
    app.post_message(events.Key("enter", "\r"))

    def printed() -> bool:
        y = emulator.cursor.y
        return (
            emulator.cursor.x == 0
            and y >= 2
            and row_text(emulator, y - 1) == typed
            and row_text(emulator, y - 2) == typed
        )

    await until(printed)


async def type_and_time(
    app: Panes, pane: TerminalPane, rng: random.Random, samples: int
) -> dict[str, dict[str, float]]:
    """`samples` keys into `pane` (running `cat`), 30 to a line."""
    emulator, view = pane.emulator, pane.view
    in_emulator: list[float] = []
    drawn: list[float] = []
    typed = ""
    for index in range(samples):
        await asyncio.sleep(rng.uniform(0.005, 0.025))  # land at varied points of the frames
        char = "abcdefghijklmnopqrstuvwxyz"[index % 26]
        x, y = emulator.cursor.x, emulator.cursor.y

        def echoed(x: int = x, y: int = y, char: str = char) -> bool:
            return bool(emulator.buffer[y][x].data == char)

        def shown(y: int = y) -> bool:
            return row_drawn(view, y)

        sent = time.perf_counter()
        app.post_message(events.Key(char, char))
        in_emulator.append((await until(echoed) - sent) * 1000)
        drawn.append((await until(shown) - sent) * 1000)
        typed += char
        if len(typed) == 30 or index == samples - 1:
            await new_line(app, emulator, typed)
            typed = ""
    return {"in_emulator": summary(in_emulator), "drawn": summary(drawn)}


async def keypress_to_echo(flood_file: Path, samples: int) -> dict[str, Any]:
    environ = dict(os.environ)
    flood = LocalPty(
        ["sh", "-c", f"read go; while :; do cat '{flood_file}'; done"], environ=environ
    )
    echo = LocalPty(["cat"], environ=environ)
    app = Panes([flood, echo])
    rng = random.Random(SEED)
    async with app.run_test(size=(COLUMNS, LINES + 1)):
        flooding, typing = list(app.query(TerminalPane))
        await until(lambda: flooding.connection is typing.connection is Connection.LIVE)
        typing.view.focus()
        await until(lambda: typing.view.has_focus)
        pane_size = [typing.view.size.width, typing.view.size.height]
        idle = await type_and_time(app, typing, rng, samples)

        flood.write(b"go\r")
        await until(lambda: flooding.emulator.history_count > 2000)  # the flood is under way
        lines_before, started = flooding.emulator.history_count, time.perf_counter()
        during = await type_and_time(app, typing, rng, samples)
        flood_lines_per_s = (flooding.emulator.history_count - lines_before) / (
            time.perf_counter() - started
        )
        behind = flooding.queued
    return {
        "samples": samples,
        "pane_size": pane_size,
        "idle": idle,
        "during_flood": {
            **during,
            "flood_lines_emulated_per_s": flood_lines_per_s,
            "flood_bytes_queued_at_end": behind,
        },
    }


# -- (d): textual-terminal and textual-tty in their own venvs -----------------------------------

TEXTUAL_TERMINAL_PROGRAM = r'''
"""textual-terminal on recorded output: argv = columns lines rounds widget_rounds chunk paths"""
import asyncio, json, re, sys, time
from importlib.metadata import version
from textual.app import App
from textual_terminal._terminal import DECSET_PREFIX, Terminal, _re_ansi_sequence

columns, lines, rounds, widget_rounds, chunk_size = map(int, sys.argv[1:6])


def read_path(chunk):
    """TerminalEmulator.on_output: a read is decoded on its own; a split character drops it."""
    try:
        return chunk.decode()
    except UnicodeDecodeError:
        return None


def terminal():
    widget = Terminal(command="true")
    widget._screen.resize(lines, columns)  # what on_resize does once started
    widget.ncol, widget.nrow = columns, lines
    return widget


def emulate(chunks):
    """Terminal.recv up to and including stream.feed, without the rebuild of the display."""
    widget = terminal()
    lost = failed = fed = 0
    started = time.perf_counter()
    for chunk in chunks:
        chars = read_path(chunk)
        if chars is None:
            lost += 1
            continue
        for match in re.finditer(_re_ansi_sequence, chars):
            sequence = match.group(0)
            if sequence.startswith(DECSET_PREFIX):
                sequence.removeprefix(DECSET_PREFIX).split(";")
        try:
            widget.stream.feed(chars)
        except TypeError:  # as recv() does: logged, and the rest of the read is dropped
            failed += 1
        fed += len(chunk)
    return fed / (time.perf_counter() - started) / 1e6, lost, failed


class Host(App):
    CSS = f"Terminal {{ width: {columns}; height: {lines}; }}"

    def compose(self):
        yield terminal()


async def widget_run(chunks):
    """Its recv() loop in an app, one read per loop turn, until the final display is drawn."""
    app = Host()
    async with app.run_test(size=(columns, lines)):
        widget = app.query_one(Terminal)
        done = asyncio.Event()
        widget.stop = done.set  # "disconnect" ends the session: stop() runs
        requested, rendered = [0.0], [0.0]
        refresh, render = widget.refresh, widget.render

        def timed_refresh(*args, **kwargs):
            requested[0] = time.perf_counter()
            return refresh(*args, **kwargs)

        def timed_render():
            rendered[0] = time.perf_counter()
            return render()

        widget.refresh, widget.render = timed_refresh, timed_render
        widget.recv_queue, widget.send_queue = asyncio.Queue(), asyncio.Queue()
        fed = 0
        started = time.perf_counter()
        task = asyncio.create_task(widget.recv())
        for chunk in chunks:
            chars = read_path(chunk)
            if chars is not None:
                fed += len(chunk)
                await widget.recv_queue.put(["stdout", chars])
            await asyncio.sleep(0)
        await widget.recv_queue.put(["disconnect", 1])
        await done.wait()
        while rendered[0] <= requested[0]:  # drawn since the last repaint it asked for
            await asyncio.sleep(0.001)
        task.cancel()
        return fed / (rendered[0] - started) / 1e6


results = {
    "version": version("textual-terminal"),
    "textual": version("textual"),
    "pyte": version("pyte"),
    "workloads": {},
}
for path in sys.argv[6:]:
    data = open(path, "rb").read()
    chunks = [data[i : i + chunk_size] for i in range(0, len(data), chunk_size)]
    runs = [emulate(chunks) for _ in range(rounds)]
    widget_best = max(asyncio.run(widget_run(chunks)) for _ in range(widget_rounds))
    results["workloads"][path] = {
        "mb_s": max(mb_s for mb_s, _, _ in runs),
        "chunks_lost": runs[0][1],
        "feed_errors": runs[0][2],
        "widget_mb_s": widget_best,
    }
print(json.dumps(results))
'''

TEXTUAL_TTY_PROGRAM = r'''
"""textual-tty (bittty) on recorded output: argv = columns lines rounds widget_rounds chunk paths.
Without textual-tty (bittty alone) only its Board is measured."""
import asyncio, codecs, json, sys, time
from importlib.metadata import PackageNotFoundError, version
from bittty import Board

try:
    from textual.app import App
    from textual_tty.monitor import Monitor
except ImportError:
    App = object
    Monitor = None

columns, lines, rounds, widget_rounds, chunk_size = map(int, sys.argv[1:6])


def decoder():
    """As bittty's UnixPTY reads: one incremental decoder holds split characters."""
    return codecs.getincrementaldecoder("utf-8")(errors="replace").decode


def emulate(chunks):
    board = Board(width=columns, height=lines)
    feed, decode = board.parser.feed, decoder()
    started = time.perf_counter()
    for chunk in chunks:
        feed(decode(chunk, False))
    return sum(map(len, chunks)) / (time.perf_counter() - started) / 1e6


class Host(App):
    def compose(self):
        yield Monitor(size=(columns, lines))


async def widget_run(chunks):
    """Its Monitor fed one read per loop turn (as its host port delivers reads), until its
    tick has repainted the final state."""
    app = Host()
    async with app.run_test(size=(columns, lines)):
        monitor = app.query_one(Monitor)
        requested, drawn = [0.0], [0.0]
        refresh, render_line = monitor.refresh, monitor.render_line

        def timed_refresh(*args, **kwargs):
            requested[0] = time.perf_counter()
            return refresh(*args, **kwargs)

        def timed_render_line(y):
            drawn[0] = time.perf_counter()
            return render_line(y)

        monitor.refresh, monitor.render_line = timed_refresh, timed_render_line
        decode = decoder()
        started = time.perf_counter()
        for chunk in chunks:
            monitor.feed(decode(chunk, False))
            await asyncio.sleep(0)
        # The tick takes the dirty flag and asks for a repaint; then that repaint is drawn.
        while monitor._dirty or drawn[0] <= requested[0]:
            await asyncio.sleep(0.001)
        return sum(map(len, chunks)) / (drawn[0] - started) / 1e6


def installed(distribution):
    try:
        return version(distribution)
    except PackageNotFoundError:
        return None


results = {
    "version": installed("textual-tty"),
    "bittty": installed("bittty"),
    "textual": installed("textual"),
    "workloads": {},
}
for path in sys.argv[6:]:
    data = open(path, "rb").read()
    chunks = [data[i : i + chunk_size] for i in range(0, len(data), chunk_size)]
    results["workloads"][path] = {
        "mb_s": max(emulate(chunks) for _ in range(rounds)),
        "widget_mb_s": (
            max(asyncio.run(widget_run(chunks)) for _ in range(widget_rounds)) if Monitor else None
        ),
    }
print(json.dumps(results))
'''

PROGRAMS = {"textual_terminal": TEXTUAL_TERMINAL_PROGRAM, "textual_tty": TEXTUAL_TTY_PROGRAM}


def last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def third_party_venv(key: str) -> Path:
    """A venv with the package installed (made once, reused; the newest releases upgraded to
    on every call); raises RuntimeError if pip fails."""
    package = THIRD_PARTY[key]
    venv = VENV_ROOT / package.venv
    python = venv / "bin" / "python"
    upgrade = ["--upgrade"] if package.newest else []
    ready = python.exists() and (
        subprocess.run([python, "-c", f"import {package.module}"], capture_output=True).returncode
        == 0
    )
    if ready and not package.newest:
        return venv
    if not ready:
        made = subprocess.run(
            [sys.executable, "-m", "venv", "--clear", str(venv)], capture_output=True, text=True
        )
        if made.returncode != 0:
            raise RuntimeError(f"venv: {last_line(made.stderr)}")
    installed = subprocess.run(
        [python, "-m", "pip", "install", "--quiet", *upgrade, *package.requirements],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if installed.returncode != 0:
        requirements = " ".join(package.requirements)
        raise RuntimeError(f"pip install {requirements}: {last_line(installed.stderr)}")
    return venv


def third_party(key: str, paths: dict[str, Path], scale: Scale) -> dict[str, Any]:
    """The package's figures per workload name, or {"error": why}."""
    try:
        venv = third_party_venv(key)
        measured = subprocess.run(
            [
                venv / "bin" / "python",
                "-I",  # isolated: neither the working directory nor PYTHON* variables
                "-c",
                PROGRAMS[THIRD_PARTY[key].program],
                *map(str, (COLUMNS, LINES, scale.rounds, scale.widget_rounds, CHUNK)),
                *map(str, paths.values()),
            ],
            capture_output=True,
            text=True,
            timeout=1800,
        )
    except (RuntimeError, subprocess.TimeoutExpired, OSError) as error:
        return {"error": str(error)}
    if measured.returncode != 0:
        return {"error": f"measuring: {last_line(measured.stderr)}"}
    result: dict[str, Any] = json.loads(measured.stdout)
    by_path = result.pop("workloads")
    result["venv"] = str(VENV_ROOT / THIRD_PARTY[key].venv)
    result["workloads"] = {name: by_path[str(path)] for name, path in paths.items()}
    return result


# -- report -------------------------------------------------------------------------------------


PYTE_RATIOS = {"plain_log": 10, "sgr_log": 6, "redraw": 5, "cjk_emoji": 4}
"""The emulator's ratio to stock pyte wanted on each workload."""


def ahead_of_third_party(report: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """roost's emulator over each third-party one measured, and its widget over each
    textual-tty widget measured: at least 1 on every workload."""
    targets = {}
    for name, figures in report.items():
        for key in THIRD_PARTY:
            if THIRD_PARTY[key].program != "textual_tty":
                continue  # textual-terminal is pyte underneath: the pyte ratios cover it
            if figures.get(f"{key}_mb_s"):
                ahead = figures["roost_mb_s"] / figures[f"{key}_mb_s"]
                targets[f"{name}.vs_{key}"] = runner.target(ahead, ">=", 1)
            if figures.get(f"{key}_widget_mb_s"):
                ahead = figures["widget_mb_s"] / figures[f"{key}_widget_mb_s"]
                targets[f"{name}.widget_vs_{key}"] = runner.target(ahead, ">=", 1)
    return targets


async def main(quick: bool) -> dict[str, Any]:
    scale = QUICK if quick else FULL
    load_before = os.getloadavg()
    data = workloads(scale.workload_bytes)
    report: dict[str, dict[str, Any]] = {}
    for name, payload in data.items():
        report[name] = emulation(payload, scale.rounds)
    real_programs = corpus(scale.rounds, scale.corpus_streams)
    for name, payload in data.items():
        report[name].update(await widget(payload, scale.widget_rounds))
    with tempfile.TemporaryDirectory() as scratch:
        paths = {name: Path(scratch, f"{name}.bin") for name in data}
        for name, path in paths.items():
            path.write_bytes(data[name])
        skipped: dict[str, Any] = {"skipped": "--quick"}
        others = {
            key: third_party(key, paths, scale) if scale.third_party else dict(skipped)
            for key in THIRD_PARTY
        }
        echo = await keypress_to_echo(paths["sgr_log"], scale.samples)
    for key, result in others.items():
        for name, figures in report.items():
            measured = result.get("workloads", {}).get(name)
            figures[f"{key}_mb_s"] = measured["mb_s"] if measured else None
            figures[f"{key}_widget_mb_s"] = measured["widget_mb_s"] if measured else None
            for count in ("chunks_lost", "feed_errors"):
                if measured and count in measured:
                    figures[f"{key}_{count}"] = measured[count]
        result.pop("workloads", None)
    flood = echo["during_flood"]["drawn"]
    return {
        "workloads": report,
        "corpus": real_programs,
        "keypress_to_echo_ms": echo,
        "third_party": others,
        "targets": {
            **{
                f"{name}.ratio_vs_pyte": runner.target(report[name]["ratio_vs_pyte"], ">=", ratio)
                for name, ratio in PYTE_RATIOS.items()
            },
            "corpus.ratio_vs_pyte": runner.target(real_programs["ratio_vs_pyte"], ">=", 5),
            **ahead_of_third_party(report),
            "plain_log.widget_mb_s": runner.target(report["plain_log"]["widget_mb_s"], ">=", 10),
            "echo_during_flood.p95_ms": runner.target(flood["p95"], "<", 16),
            "echo_idle.p95_ms": runner.target(echo["idle"]["drawn"]["p95"], "<", 16),
        },
        "machine": runner.machine(load_before[0], pyte=version("pyte"), textual=version("textual")),
        "setup": {
            "screen": f"{COLUMNS}x{LINES}",
            "chunk_bytes": CHUNK,
            "quick": quick,
            **asdict(scale),
        },
    }


if __name__ == "__main__":
    runner.run(main, __doc__)
