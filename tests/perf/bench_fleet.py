"""Benchmark: the main screen with 10,000 assistants.

Run: python -m tests.perf.bench_fleet [--quick] (100 assistants).

Prints JSON. Each figure is measured side by side, in the same run, with a bare Textual app
holding the same rows, so the ratios say what roost adds over Textual itself:
- first_render: in process (pilot), app start to the first frame with every row (lockfile read
  included; the garbage collector tuned as `roost` tunes it); and end to end in a real terminal
  (tmux), process start to the rows on screen, with roost's start-up alone beside it (one
  assistant: Python, imports and the first frame, whatever the fleet's size);
- filter_keystroke: end to end in tmux, a key sent to the terminal until the narrowed table is on
  screen (polled with capture-pane, ~2 ms granularity); the baseline filters by clearing and
  re-adding rows, the obvious way;
- row_update: one assistant's status changing, through the whole path (snapshot, fleet, rows,
  the table) versus a bare `update_cell`.
Targets (issue 16, target 5): first render of 10,000 assistants < 1.5 s and a filter keystroke
< 50 ms (median, end to end in tmux); a row update < 2 ms (median).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.text import Text
from textual.app import App, ComposeResult
from textual.widgets import DataTable

from services.context import Context
from services.core.config import Config
from services.health.probes import Health, HealthRecord
from tests.perf import runner
from tui.app import RoostApp, collect_garbage_less_often, create_app
from tui.present import ASSISTANT_COLUMNS
from widgets.keyed_table import KeyedTable

COUNT, QUICK_COUNT = 10_000, 100
UPDATES = 200
"""Row updates timed (one assistant each, at most one per assistant)."""
LIST_KEYS = "Re-probe"
"""In the footer while the list has the focus (and gone while the filter has it)."""
SIZE = (200, 60)


def write_lockfile(directory: Path, count: int) -> None:
    """`count` local assistants whose daemons are not running: nothing to probe, all listed."""
    entries = [
        {
            "assistantId": f"agent-{index:04d}",
            "cloud": "local",
            "runtimeUrl": f"http://127.0.0.1:{20000 + index}",
            "resources": {"instanceDir": str(directory / "none")},
        }
        for index in range(count)
    ]
    (directory / ".vellum.lock.json").write_text(json.dumps({"assistants": entries}))


def roost_app(directory: Path) -> RoostApp:
    environ = {**os.environ, "VELLUM_LOCKFILE_DIR": str(directory)}
    environ.pop("DOCKER_HOST", None)
    context = Context.load(environ, config=Config(tmux_refresh_seconds=3600))
    return create_app(dataclasses.replace(context, hostname="bench"))


class BareTable(App[None]):
    """Textual's own DataTable with the same rows: the baseline."""

    def __init__(self, count: int) -> None:
        super().__init__()
        self.count = count

    def compose(self) -> ComposeResult:
        yield DataTable()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns(*(column.label for column in ASSISTANT_COLUMNS))
        for index in range(self.count):
            table.add_row(
                *(Text(v) for v in (f"agent-{index:04d}", "local", "bench", "◌ sleeping")),
                *(Text("") for _ in range(5)),
                key=str(index),
            )


def rows(app: App[Any]) -> int:
    return len(app.screen.query_one("#assistants", KeyedTable).rows_shown)


async def measure_roost(directory: Path, count: int) -> dict[str, float]:
    started = time.perf_counter()
    app = roost_app(directory)
    async with app.run_test(size=SIZE) as pilot:
        while rows(app) < count + 1:
            await pilot.pause(0)
        await pilot.pause()  # the frame is drawn
        first_render = time.perf_counter() - started

        updates: list[float] = []
        for index in range(min(UPDATES, count)):
            changed = {
                f"lockfile:agent-{index:04d}": HealthRecord.single(
                    Health("error (bench)", "", None, None)
                )
            }
            t = time.perf_counter()
            app.apply_update(lambda s, changed=changed: dataclasses.replace(s, health=changed))  # type: ignore[misc]
            updates.append(time.perf_counter() - t)
    return {
        "first_render_s": first_render,
        "row_update_median_ms": statistics.median(updates) * 1000,
        "row_update_p95_ms": sorted(updates)[int(len(updates) * 0.95)] * 1000,
    }


async def measure_bare(count: int) -> dict[str, float]:
    started = time.perf_counter()
    app = BareTable(count)
    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one(DataTable)
        while table.row_count < count:
            await pilot.pause(0)
        await pilot.pause()
        first_render = time.perf_counter() - started
        updates: list[float] = []
        for index in range(min(UPDATES, count)):
            t = time.perf_counter()
            table.update_cell(str(index), table.ordered_columns[4].key, Text("✖ error (bench)"))
            updates.append(time.perf_counter() - t)
    return {
        "first_render_s": first_render,
        "row_update_median_ms": statistics.median(updates) * 1000,
    }


def filter_steps(count: int) -> list[tuple[str, int]]:
    """Keys typed into the filter, each changing what is shown: (tmux key, rows then shown).

    Typing 9, 99, 999 then deleting them; this machine's row never matches, so with nothing
    typed one more row shows than there are assistants."""
    names = [f"agent-{index:04d}" for index in range(count)]
    shown = [sum(typed in name for name in names) for typed in ("9", "99", "999")]
    return [
        *(("9", rows) for rows in shown),
        ("BSpace", shown[1]),
        ("BSpace", shown[0]),
        ("BSpace", count + 1),
    ]


class Terminal:
    """A private tmux server running one program at SIZE, read with capture-pane."""

    def __init__(self, scratch: str, name: str) -> None:
        self.socket = f"{scratch}/{name}.sock"

    def tmux(self, *args: str) -> str:
        result = subprocess.run(
            ["tmux", "-S", self.socket, *args], capture_output=True, text=True, check=False
        )
        return result.stdout

    def start(self, command: list[str], env: dict[str, str]) -> float:
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        width, height = SIZE
        started = time.perf_counter()
        self.tmux(
            "new-session",
            "-d",
            "-x",
            str(width),
            "-y",
            str(height),
            # Only `env`: the tmux server's own environment may hold COLUMNS and LINES (pytest
            # sets them), which Textual would take over the terminal's real size.
            f"env -i {exports} {shlex.join(command)}",
        )
        return started

    def wait_for(self, text: str, timeout: float = 30, present: bool = True) -> float:
        deadline = time.perf_counter() + timeout
        while (text in self.tmux("capture-pane", "-p")) != present:
            if time.perf_counter() > deadline:
                raise TimeoutError(f"{text!r} never appeared:\n{self.tmux('capture-pane', '-p')}")
        return time.perf_counter()

    def keystrokes(self, count: int, shown: Callable[[int], str]) -> list[float]:
        latencies = []
        for key, rows in filter_steps(count):
            sent = time.perf_counter()
            self.tmux("send-keys", key)
            latencies.append((self.wait_for(shown(rows)) - sent) * 1000)
        return latencies

    def close(self) -> None:
        self.tmux("kill-server")


def terminal_env(scratch: str, directory: Path) -> dict[str, str]:
    return {
        "LANG": "C.UTF-8",
        "TERM": "xterm-256color",
        "VELLUM_LOCKFILE_DIR": str(directory),
        "ROOST_LOG_DIR": f"{scratch}/log",
        "ROOST_CONFIG_DIR": f"{scratch}/config",
        "ROOST_TMUX_SOCKET": f"{scratch}/no-tmux",
        "HOME": scratch,
        "PATH": os.environ["PATH"],
    }


ROOST = [str(Path(sys.executable).with_name("roost"))]


def one_assistant(scratch: str) -> dict[str, float]:
    """roost with one assistant in a real terminal, process start to its row on screen: what
    start-up costs whatever the fleet's size (Python, imports, the app's first frame)."""
    directory = Path(scratch) / "one"
    directory.mkdir()
    write_lockfile(directory, 1)
    terminal = Terminal(scratch, "one")
    try:
        started = terminal.start(ROOST, terminal_env(scratch, directory))
        return {"first_render_s": terminal.wait_for("agent-0000") - started}
    finally:
        terminal.close()


def end_to_end(scratch: str, directory: Path, count: int) -> dict[str, dict[str, float]]:
    """Both apps in a real terminal: start-up to the rows on screen, and filter keystrokes."""
    env = terminal_env(scratch, directory)
    total = count + 1
    results = {"roost_one_assistant": one_assistant(scratch)}
    programs = {
        "roost": (ROOST, "/", f"{total} rows"),
        "bare": (
            [sys.executable, "-m", "tests.perf.bare_filter_app", str(count)],
            None,
            f"{total} of {total} shown",
        ),
    }
    for name, (command, focus_key, everything) in programs.items():
        terminal = Terminal(scratch, name)
        try:
            started = terminal.start(command, env)
            first = terminal.wait_for("agent-0000") - started
            if focus_key:
                # The footer lists the table's keys once the app is ready for them, and drops
                # them once the filter has the focus.
                terminal.wait_for(LIST_KEYS)
                terminal.tmux("send-keys", focus_key)
                terminal.wait_for(LIST_KEYS, present=False)
            latencies = terminal.keystrokes(
                count,
                lambda rows: f"{rows} of {total} shown" if rows < total else everything,  # noqa: B023
            )
        finally:
            terminal.close()
        results[name] = {
            "first_render_s": first,
            "filter_keystroke_median_ms": statistics.median(latencies),
            "filter_keystroke_max_ms": max(latencies),
        }
    return results


async def main(quick: bool) -> dict[str, object]:
    count = QUICK_COUNT if quick else COUNT
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch)
        os.environ.update(
            ROOST_LOG_DIR=f"{scratch}/log",
            ROOST_TMUX_SOCKET=f"{scratch}/no-tmux",
            ROOST_CONFIG_DIR=f"{scratch}/config",
        )
        write_lockfile(directory, count)
        bare = await measure_bare(count)
        collect_garbage_less_often()  # as `roost` does before it runs the console
        roost = await measure_roost(directory, count)
        terminal = end_to_end(scratch, directory, count)
    return {
        "assistants": count,
        "quick": quick,
        "in_process": {"roost": roost, "bare_datatable": bare},
        "end_to_end_tmux": terminal,
        "ratios": {
            "first_render_vs_bare": roost["first_render_s"] / bare["first_render_s"],
            "first_render_end_to_end_vs_bare": terminal["roost"]["first_render_s"]
            / terminal["bare"]["first_render_s"],
            "filter_keystroke_vs_bare": terminal["roost"]["filter_keystroke_median_ms"]
            / terminal["bare"]["filter_keystroke_median_ms"],
            "row_update_vs_bare_update_cell": roost["row_update_median_ms"]
            / bare["row_update_median_ms"],
        },
        "targets": {
            "first_render_end_to_end_s": runner.target(
                terminal["roost"]["first_render_s"], "<", 1.5
            ),
            "first_render_in_process_s": runner.target(roost["first_render_s"], "<", 1.5),
            "filter_keystroke_median_ms": runner.target(
                terminal["roost"]["filter_keystroke_median_ms"], "<", 50
            ),
            "row_update_median_ms": runner.target(roost["row_update_median_ms"], "<", 2),
        },
    }


if __name__ == "__main__":
    runner.run(main, __doc__)
    sys.exit(0)
