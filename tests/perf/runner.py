"""The command line every benchmark shares: `--quick`, a small run that shows the script still
works end to end (its figures are not worth quoting), and the JSON report on stdout.

`tests/test_perf_quick.py` runs every benchmark this way and checks the keys of its report.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
from collections.abc import Callable, Coroutine, Sequence
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
