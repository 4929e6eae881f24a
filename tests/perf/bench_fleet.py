"""Benchmark: the main screen with 1,000 assistants (run: python -m tests.perf.bench_fleet).

Prints JSON. Each figure is measured side by side, in the same run, with a bare Textual DataTable
holding the same 1,000 rows, so the ratios say what roost adds over Textual itself:
- first_render: app start to the first frame showing every row (the lockfile read included);
- filter_keystroke: a key typed in the filter to the redrawn, narrowed table;
- row_update: one assistant's status changing, through the whole path (snapshot, fleet, filter,
  sort, rows, the table's diff) versus a bare `update_cell`.
Targets on this machine: first render < 1.5 s, filter < 50 ms, row update < 2 ms.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.text import Text
from textual.app import App, ComposeResult
from textual.widgets import DataTable

from services.config import Config
from services.context import Context
from services.health import Health
from tui.app import RoostApp, create_app
from tui.present import ASSISTANT_COLUMNS
from widgets.keyed_table import KeyedTable

COUNT = 1000
SIZE = (200, 60)
KEYSTROKES = "agent-07"


def write_lockfile(directory: Path) -> None:
    """COUNT local assistants whose daemons are not running: nothing to probe, all listed."""
    entries = [
        {
            "assistantId": f"agent-{index:04d}",
            "cloud": "local",
            "runtimeUrl": f"http://127.0.0.1:{20000 + index}",
            "resources": {"instanceDir": str(directory / "none")},
        }
        for index in range(COUNT)
    ]
    (directory / ".vellum.lock.json").write_text(json.dumps({"assistants": entries}))


def roost_app(directory: Path) -> RoostApp:
    environ = {**os.environ, "VELLUM_LOCKFILE_DIR": str(directory)}
    environ.pop("DOCKER_HOST", None)
    context = Context.load(environ, config=Config(tmux_refresh_seconds=3600))
    return create_app(dataclasses.replace(context, hostname="bench"))


class BareTable(App[None]):
    """Textual's own DataTable with the same rows: the baseline."""

    def compose(self) -> ComposeResult:
        yield DataTable()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns(*(label for label, _ in ASSISTANT_COLUMNS))
        for index in range(COUNT):
            table.add_row(
                *(Text(v) for v in (f"agent-{index:04d}", "local", "bench", "◌ sleeping")),
                *(Text("") for _ in range(5)),
                key=str(index),
            )


def rows(app: App[Any]) -> int:
    return len(app.screen.query_one("#assistants", KeyedTable).rows_shown)


async def measure_roost(directory: Path) -> dict[str, float]:
    started = time.perf_counter()
    app = roost_app(directory)
    async with app.run_test(size=SIZE) as pilot:
        while rows(app) < COUNT + 1:
            await pilot.pause(0)
        await pilot.pause()  # the frame is drawn
        first_render = time.perf_counter() - started

        await pilot.press("slash")
        typed: list[float] = []
        for length, key in enumerate(KEYSTROKES, 1):
            t = time.perf_counter()
            await pilot.press("minus" if key == "-" else key)
            while app.main_screen.filter_text != KEYSTROKES[:length]:
                await pilot.pause(0)
            await pilot.pause()  # the narrowed table is drawn
            typed.append(time.perf_counter() - t)
        narrowed = rows(app)
        await pilot.press("escape")
        while rows(app) < COUNT + 1:
            await pilot.pause(0)

        updates: list[float] = []
        for index in range(200):
            changed = {f"lockfile:agent-{index:04d}": Health("error (bench)", "", None, None)}
            t = time.perf_counter()
            app.apply_update(lambda s, changed=changed: dataclasses.replace(s, health=changed))  # type: ignore[misc]
            updates.append(time.perf_counter() - t)
    return {
        "first_render_s": first_render,
        "filter_keystroke_median_ms": statistics.median(typed) * 1000,
        "filter_keystroke_max_ms": max(typed) * 1000,
        "rows_after_filter": narrowed,
        "row_update_median_ms": statistics.median(updates) * 1000,
        "row_update_p95_ms": sorted(updates)[int(len(updates) * 0.95)] * 1000,
    }


async def measure_bare() -> dict[str, float]:
    started = time.perf_counter()
    app = BareTable()
    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one(DataTable)
        while table.row_count < COUNT:
            await pilot.pause(0)
        await pilot.pause()
        first_render = time.perf_counter() - started
        updates: list[float] = []
        for index in range(200):
            t = time.perf_counter()
            table.update_cell(str(index), table.ordered_columns[4].key, Text("✖ error (bench)"))
            updates.append(time.perf_counter() - t)
    return {
        "first_render_s": first_render,
        "row_update_median_ms": statistics.median(updates) * 1000,
    }


async def main() -> dict[str, object]:
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch)
        os.environ.update(
            ROOST_LOG_DIR=f"{scratch}/log",
            ROOST_TMUX_SOCKET=f"{scratch}/no-tmux",
            ROOST_CONFIG_DIR=f"{scratch}/config",
        )
        write_lockfile(directory)
        bare = await measure_bare()
        roost = await measure_roost(directory)
    return {
        "assistants": COUNT,
        "roost": roost,
        "bare_datatable": bare,
        "ratios": {
            "first_render_vs_bare": roost["first_render_s"] / bare["first_render_s"],
            "row_update_vs_bare_update_cell": roost["row_update_median_ms"]
            / bare["row_update_median_ms"],
        },
        "targets": {
            "first_render_s": 1.5,
            "filter_keystroke_ms": 50,
            "row_update_ms": 2,
        },
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main()), indent=2))
    sys.exit(0)
