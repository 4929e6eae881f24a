"""The command line every benchmark shares: `--quick`, a small run that shows the script still
works end to end (its figures are not worth quoting), and the JSON report on stdout.

`tests/test_perf_quick.py` runs every benchmark this way and checks the keys of its report.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import json
import operator
import os
import platform
import subprocess
import sys
from collections.abc import Callable, Coroutine, Iterator, Sequence
from typing import Any

Report = dict[str, Any]


def run(
    main: Callable[[bool], Report | Coroutine[Any, Any, Report]],
    doc: str | None,
    argv: Sequence[str] | None = None,
) -> None:
    parser = argparse.ArgumentParser(description=doc.splitlines()[0] if doc else None)
    parser.add_argument(
        "--quick", action="store_true", help="a small run that checks the benchmark works"
    )
    arguments = parser.parse_args(argv)
    report = main(arguments.quick)
    if inspect.iscoroutine(report):
        report = asyncio.run(report)
    print(json.dumps(report, indent=2))


@contextlib.contextmanager
def peer_process(module: str, *args: str) -> Iterator[str]:
    """A peer (`python -m module args...`) in its own process, so that its threads or its
    event loop never share roost's interpreter; yields the first line it prints (its URL).
    Closing its standard input tells it to stop."""
    peer = subprocess.Popen(
        [sys.executable, "-m", module, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert peer.stdout is not None
        yield peer.stdout.readline().strip()
    finally:
        assert peer.stdin is not None
        peer.stdin.close()
        peer.wait(timeout=30)


_COMPARISONS = {">=": operator.ge, "<=": operator.le, "<": operator.lt}


def target(value: float, op: str, limit: float) -> dict[str, Any]:
    """One entry of a benchmark's `targets` block: its figure, the target (`op limit`, one of
    `>=`, `<=`, `<`) and whether it is met."""
    return {
        "value": round(value, 3),
        "target": f"{op} {limit:g}",
        "met": _COMPARISONS[op](value, limit),
    }


def machine(load_at_start: float, **versions: str | None) -> dict[str, Any]:
    """What a benchmark ran on: CPUs, Python, platform, the 1-minute load average when it began
    (`os.getloadavg()[0]`) and now, and the versions of what it measured."""
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_1m": {"start": load_at_start, "end": os.getloadavg()[0]},
        **versions,
    }
