"""Benchmark: what `roost hook` costs an agent (run: python -m tests.perf.bench_hook [--quick]).

Prints JSON.

A coding agent waits for its hook on every event (Claude Code before each tool), so the hook's
wall time is added to the agent's. Each figure is the wall time from starting the process to
its exit, p50 and p95 over the rounds, every kind run in turn within a round so that they see
the same machine, after one run of each that writes the bytecode (as an install does, whatever
`$PYTHONDONTWRITEBYTECODE` says):

- `hook`: the installed `roost` console script, `roost hook claude` with a realistic PreToolUse
  payload on stdin and an empty spool (the default spool dir, under `$XDG_STATE_HOME`: the paths
  module is loaded, platformdirs is not);
- `hook_spool_variable`: the same with `$ROOST_AGENT_SPOOL` set (the paths module not loaded);
- `hook_5000_files`: the same as `hook` with 5,000 files already waiting in the spool;
- `python` and `python_no_site`: `python -c pass` and `python -S -c pass` from the same
  environment, the floor any Python hook stands on.

`ratios` divide the hook's p50 by python's; the target is a hook well under 100 ms. In a
development venv, `pip install -e` leaves an import hook (a .pth file) that loads pathlib and re
into every Python at start-up, `python` included: there both floors are higher and the hook
pays less above them than in an installed roost, where its own imports (re, json, pathlib) count.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from services.agents.hook import SPOOL_DIR_NAME, SPOOL_VARIABLE, spool_name
from tests.perf import runner

ROOST = Path(sys.executable).parent / "roost"
ROUNDS, QUICK_ROUNDS = 60, 3
QUEUED = 5000
PAYLOAD = json.dumps(
    {
        "session_id": "9f2c1c4e-5d2a-4c7e-9a55-3f0e6b1d2a10",
        "transcript_path": "/home/u/.claude/projects/-home-u-src-roost/9f2c1c4e.jsonl",
        "cwd": "/home/u/src/roost",
        "permission_mode": "default",
        "hook_event_name": "PreToolUse",
        "tool_name": "Edit",
        "tool_input": {
            "file_path": "/home/u/src/roost/services/agents/hook.py",
            "old_string": "def main(argv):\n    return 0\n" * 20,
            "new_string": "def main(argv: list[str]) -> int:\n    return 0\n" * 20,
        },
        "tool_use_id": "toolu_01HJ2kZ8VqN4mX7sQ9wE3rT5",
    }
).encode()


def environment(root: Path, **extra: str) -> dict[str, str]:
    """An isolated environment: every path roost would use under `root`."""
    home = root / "home"
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("ROOST_", "XDG_", "TMUX")) and key != "PYTHONDONTWRITEBYTECODE"
    }
    env.update(
        HOME=str(home),
        XDG_STATE_HOME=str(home / ".local/state"),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_CACHE_HOME=str(home / ".cache"),
        TMUX="/run/tmux-1000/default,4242,0",
        TMUX_PANE="%3",
        **extra,
    )
    return env


def wall_ms(argv: list[str], env: dict[str, str], payload: bytes = b"") -> float:
    start = time.perf_counter()
    subprocess.run(argv, input=payload, env=env, check=True, timeout=30)
    return (time.perf_counter() - start) * 1000


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"p50": round(statistics.median(ordered), 1), "p95": round(p95, 1)}


def main(quick: bool) -> runner.Report:
    rounds = QUICK_ROUNDS if quick else ROUNDS
    with tempfile.TemporaryDirectory() as temp:
        root = Path(temp)
        default = environment(root / "default")
        variable = environment(root / "variable", **{SPOOL_VARIABLE: str(root / "spool")})
        queued = environment(root / "queued", ROOST_STATE_DIR=str(root / "queued-state"))
        queue = root / "queued-state" / SPOOL_DIR_NAME
        queue.mkdir(parents=True)
        for number in range(QUEUED):
            (queue / f"{number}-1.json").write_bytes(PAYLOAD)
        python = [sys.executable]
        kinds = {
            "hook": ([str(ROOST), "hook", "claude"], default, PAYLOAD),
            "hook_spool_variable": ([str(ROOST), "hook", "claude"], variable, PAYLOAD),
            "hook_5000_files": ([str(ROOST), "hook", "claude"], queued, PAYLOAD),
            "python": ([*python, "-c", "pass"], default, b""),
            "python_no_site": ([*python, "-S", "-c", "pass"], default, b""),
        }
        samples: dict[str, list[float]] = {kind: [] for kind in kinds}
        for argv, env, payload in kinds.values():  # writes the bytecode, as an install does
            wall_ms(argv, env, payload)
        for _ in range(rounds):
            for kind, (argv, env, payload) in kinds.items():
                samples[kind].append(wall_ms(argv, env, payload))
        written = sum(
            1
            for spool in (root / "default", root / "spool")
            for path in spool.rglob("*.json")
            if spool_name(path.name)
        )
        expected = 2 * (rounds + 1)
        assert written == expected, f"the hooks wrote {written} events, not {expected}"
    report = {kind: summary(values) for kind, values in samples.items()}
    p50 = {kind: figures["p50"] for kind, figures in report.items()}
    return {
        **report,
        "ratios": {
            "hook_over_python": round(p50["hook"] / p50["python"], 2),
            "hook_spool_variable_over_python": round(p50["hook_spool_variable"] / p50["python"], 2),
            "hook_5000_files_over_hook": round(p50["hook_5000_files"] / p50["hook"], 2),
        },
        "targets": {"hook_p50_ms": "well under 100"},
        "rounds": rounds,
        "quick": quick,
    }


if __name__ == "__main__":
    runner.run(main, __doc__)
