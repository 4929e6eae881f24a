"""Benchmark: terminal panes full of scrollback (run: python -m tests.perf.bench_memory).

`--quick`: 1,000 lines per pane.

Prints one JSON object. Eight `TerminalPane`s side by side in one headless Textual app (100x50
each, 10,000 lines of scrollback, as `bench_terminal`'s `Panes` app builds them), each fed
10,000 lines (plus a screenful) of `bench_terminal`'s coloured log through its real path: a
backend that hands out one 64 KiB chunk per read, the pane's queue and frames, the emulator,
the view, until every pane has emulated everything and drawn its last screen. Then a full
garbage collection and the process's resident size (`rss_mib`).

The baseline is the same app in the same run with eight idle panes (their sessions live and
silent), with the same workload bytes generated and held: `scrollback_mib` is the difference,
`bytes_per_scrollback_line` that over the lines in the panes' histories. Each app runs in a
fresh process of its own, so neither measure carries the other's leftovers.

`pane_holds` is what the panes keep besides the emulator (cached strips, queued bytes), summed.

Targets (issue 16): 8 panes with 10,000 lines of coloured scrollback each under 250 MiB RSS.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

from services.terminal.backend import TerminalSize
from tests.perf import runner
from tests.perf.bench_terminal import (
    CHUNK,
    LINES,
    SCROLLBACK,
    SEED,
    Panes,
    Replay,
    chunked,
    log_workload,
    row_drawn,
    until,
)
from tui.terminal_pane import Connection, TerminalPane

PANES = 8
PANE_COLUMNS = 100
FULL_LINES = 10_000
QUICK_LINES = 1_000
TARGET_MIB = 250


class Silent:
    """A live session that never writes: an idle pane."""

    description = "a silent session"

    def __init__(self) -> None:
        self._closed = asyncio.Event()

    async def start(self, size: TerminalSize) -> None:
        """Nothing to start."""

    async def read(self) -> bytes:
        await self._closed.wait()
        return b""

    def write(self, data: bytes) -> None:
        """Typed input goes nowhere."""

    def resize(self, size: TerminalSize) -> None:
        """Nothing is drawn at any size."""

    async def close(self) -> None:
        self._closed.set()

    @property
    def exit_status(self) -> int | None:
        return 0 if self._closed.is_set() else None


def coloured_log(lines: int) -> bytes:
    """`lines` lines of bench_terminal's coloured log."""
    per_line = 200  # generous: the log's lines average ~150 bytes
    data = log_workload(random.Random(SEED), coloured=True, size_wanted=lines * per_line)
    return b"\r\n".join(data.split(b"\r\n")[:lines]) + b"\r\n"


def rss_bytes() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def measure(fed: bool, lines: int) -> dict[str, Any]:
    """Child: the app with fed or idle panes; its RSS after a full collection."""
    chunks = chunked(coloured_log(lines + LINES))  # held in both cases
    backends: list[Any] = [Replay(chunks) if fed else Silent() for _ in range(PANES)]
    app = Panes(backends)
    async with app.run_test(size=(PANE_COLUMNS * PANES, LINES + 1)):
        panes = list(app.query(TerminalPane))
        if fed:
            await until(lambda: len(app.ended) == PANES and not any(p.queued for p in panes), 600)
        else:
            await until(lambda: all(p.connection is Connection.LIVE for p in panes), 120)
        await until(
            lambda: all(row_drawn(p.view, y) for p in panes for y in range(p.view.size.height)),
            120,
        )
        gc.collect()
        return {
            "rss_bytes": rss_bytes(),
            "history_lines": sum(len(pane.emulator.history) for pane in panes),
            "pane_size": [panes[0].view.size.width, panes[0].view.size.height],
            "pane_holds": {
                "strips": sum(len(pane.view._strips) for pane in panes),
                "queued_bytes": sum(pane.queued for pane in panes),
            },
            "workload_bytes": sum(map(len, chunks)),
        }


def child(kind: str, lines: int) -> dict[str, Any]:
    ran = subprocess.run(
        [sys.executable, "-m", "tests.perf.bench_memory", "--child", kind, str(lines)],
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    if ran.returncode != 0:
        raise RuntimeError(f"the {kind} app failed: {ran.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(ran.stdout)
    return result


def main(quick: bool) -> dict[str, Any]:
    lines = QUICK_LINES if quick else FULL_LINES
    idle = child("idle", lines)
    fed = child("fed", lines)
    mib = 1 << 20
    grown = fed["rss_bytes"] - idle["rss_bytes"]
    history = fed["history_lines"]
    rss_mib = fed["rss_bytes"] / mib
    return {
        "panes": PANES,
        "lines_fed_per_pane": lines + LINES,
        "pane_size": fed["pane_size"],
        "history_lines": history,
        "rss_mib": round(rss_mib, 1),
        "idle_rss_mib": round(idle["rss_bytes"] / mib, 1),
        "scrollback_mib": round(grown / mib, 1),
        "bytes_per_scrollback_line": round(grown / max(history, 1)),
        "ratio_vs_idle": round(fed["rss_bytes"] / idle["rss_bytes"], 2),
        "pane_holds": fed["pane_holds"],
        "workload_bytes": fed["workload_bytes"],
        "targets": {"rss_mib": runner.target(rss_mib, "<", TARGET_MIB)},
        "setup": {"quick": quick, "scrollback": SCROLLBACK, "chunk_bytes": CHUNK},
    }


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        kind, count = sys.argv[2], int(sys.argv[3])
        print(json.dumps(asyncio.run(measure(kind == "fed", count))))
    else:
        runner.run(main, __doc__)
