"""Benchmark: health probing (run: python -m tests.perf.bench_health [--quick]). Prints JSON.

- sweep: 10,000 assistants on the loopback peer (its own process), each health answer delayed
  50 ms, probed by the HealthMonitor at its default concurrency (32): time for one full sweep,
  and its ratio to the ideal `10000 x 50 ms / 32` (target <= 1.2);
- idle: roost in a real terminal (tmux) with 200, then 2,000 assistants at the default
  interval, each followed (the peer keeps its event stream open with heartbeats, as an idle
  runtime does); once the first sweep is on screen and the streams had time to open, 60 s
  side by side with an idle bare Textual app: CPU seconds per minute of each (targets: under 1
  with 200 assistants, under 5 with 2,000);
- keys during a sweep: roost in tmux with 1,000 slow assistants, `R` starts a sweep, then
  filter keystrokes are timed from the key sent to the narrowed table on screen; the worst.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from services.core.http import http_client
from services.health.monitor import HealthMonitor, HealthPolicy, HealthScheduler
from services.health.probing import Prober
from services.health.target import HealthTarget
from services.vellum.environment import VellumEnvironment
from services.vellum.lockfile import read_lockfile
from tests.perf import runner
from tests.perf.bench_fleet import LIST_KEYS, Terminal

SWEEP_DELAY = 0.05


@dataclass(frozen=True)
class Scale:
    sweep_count: int
    keys_count: int
    idle_counts: tuple[int, ...]
    idle_settle_seconds: float
    """Waited after the first sweep is on screen: the event streams open a few at a time."""
    idle_seconds: float


FULL = Scale(
    sweep_count=10_000,
    keys_count=1000,
    idle_counts=(200, 2000),
    idle_settle_seconds=20.0,
    idle_seconds=60.0,
)
QUICK = Scale(
    sweep_count=100, keys_count=100, idle_counts=(20,), idle_settle_seconds=1.0, idle_seconds=5.0
)
IDLE_TARGETS = {200: 1.0, 2000: 5.0}
"""CPU seconds per minute, by fleet size."""
SWEEP_TARGET = 1.2
IDLE_APP = "from textual.app import App\nApp().run()\n"


def fleet_peer(count: int, delay: float, directory: Path) -> AbstractContextManager[str]:
    """The peer in its own process (so its threads do not share roost's interpreter)."""
    return runner.peer_process("tests.perf.fleet_peer", str(count), str(delay), str(directory))


def targets(directory: Path) -> list[HealthTarget]:
    environment = VellumEnvironment.resolve(
        {"HOME": str(directory), "VELLUM_LOCKFILE_DIR": str(directory)}
    )
    return [
        HealthTarget(e.assistant_id, e.assistant_id, e.base_url or "", managed=False)
        for e in read_lockfile(environment).entries
    ]


async def sweep(directory: Path, count: int) -> dict[str, float]:
    policy = HealthPolicy()
    done = asyncio.Event()
    answered: set[str] = set()
    wanted = targets(directory)
    async with http_client() as http:
        prober = Prober(http, VellumEnvironment.resolve({"HOME": str(directory)}), None)

        def result(key: str, record: object, change: object) -> None:
            answered.add(key)
            if len(answered) == len(wanted):
                done.set()

        monitor = HealthMonitor(HealthScheduler(policy), prober, result)
        runner = asyncio.create_task(monitor.run())
        started = time.perf_counter()
        monitor.follow(wanted)
        await asyncio.wait_for(done.wait(), max(120.0, count * SWEEP_DELAY))
        elapsed = time.perf_counter() - started
        runner.cancel()  # and wait for its probes to end, before the client closes under them
        await asyncio.gather(runner, return_exceptions=True)
    ideal = count * SWEEP_DELAY / policy.concurrency
    return {"seconds": elapsed, "ideal_seconds": ideal, "ratio_to_ideal": elapsed / ideal}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) and its finished children
    (roost forks tmux to list sessions), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def program_pid(terminal: Terminal) -> int:
    """The program's own process: below the pane's shell (and `env`), if they did not exec."""
    pid = int(terminal.tmux("display-message", "-p", "#{pane_pid}").strip())
    while Path(f"/proc/{pid}/comm").read_text().strip() in ("sh", "dash", "bash", "env"):
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pid = int(children[0])
    return pid


def environment(scratch: str, directory: Path) -> dict[str, str]:
    return {
        "LANG": "C.UTF-8",
        "TERM": "xterm-256color",
        "HOME": scratch,
        "PATH": os.environ["PATH"],
        "VELLUM_LOCKFILE_DIR": str(directory),
        "ROOST_LOG_DIR": f"{scratch}/log",
        "ROOST_CONFIG_DIR": f"{scratch}/config",
        "ROOST_TMUX_SOCKET": f"{scratch}/no-tmux",
        "PYTHONPATH": str(Path.cwd()),
    }


def idle(scratch: str, directory: Path, settle: float, seconds: float) -> dict[str, float]:
    roost, bare = Terminal(scratch, "idle-roost"), Terminal(scratch, "idle-bare")
    env = environment(scratch, directory)
    try:
        roost.start([str(Path(sys.executable).with_name("roost"))], env)
        bare.start([sys.executable, "-c", IDLE_APP], env)
        roost.wait_for("agent-0000", timeout=120)
        roost.wait_for("healthy", timeout=120)  # the first sweep has run
        time.sleep(settle)  # and the event streams have opened
        pids = {"roost": program_pid(roost), "bare": program_pid(bare)}
        before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        time.sleep(seconds)  # the measurement itself: idling
        used = {name: cpu_seconds(pid) - before[name] for name, pid in pids.items()}
    finally:
        roost.close()
        bare.close()
    per_minute = {name: cpu * 60 / seconds for name, cpu in used.items()}
    return {
        "roost_cpu_seconds_per_minute": per_minute["roost"],
        "bare_textual_cpu_seconds_per_minute": per_minute["bare"],
        "ratio_to_bare": per_minute["roost"] / max(per_minute["bare"], 1e-3),
    }


def keys_during_sweep(scratch: str, directory: Path, count: int) -> dict[str, object]:
    terminal = Terminal(scratch, "sweep")
    total = count + 1
    try:
        terminal.start(
            [str(Path(sys.executable).with_name("roost"))], environment(scratch, directory)
        )
        terminal.wait_for("agent-0000")
        terminal.wait_for(LIST_KEYS)  # the list has the focus
        terminal.tmux("send-keys", "R")
        terminal.tmux("send-keys", "/")
        terminal.wait_for(LIST_KEYS, present=False)
        latencies = terminal.keystrokes(
            count, lambda rows: f"{rows} of {total} shown" if rows < total else f"{total} rows"
        )
    finally:
        terminal.close()
    return {"worst_ms": max(latencies), "each_ms": [round(value, 1) for value in latencies]}


def main(quick: bool) -> dict[str, object]:
    scale = QUICK if quick else FULL
    results: dict[str, Any] = {"idle": {}}
    with tempfile.TemporaryDirectory() as scratch:
        for name, count, delay in (
            ("sweep", scale.sweep_count, SWEEP_DELAY),
            ("keys", scale.keys_count, SWEEP_DELAY),
            *((f"idle-{count}", count, 0.0) for count in scale.idle_counts),
        ):
            directory = Path(scratch, name)
            directory.mkdir()
            with fleet_peer(count, delay, directory):
                if name == "sweep":
                    results["sweep"] = asyncio.run(sweep(directory, count))
                elif name == "keys":
                    results["keys_during_sweep"] = keys_during_sweep(scratch, directory, count)
                else:
                    results["idle"][str(count)] = idle(
                        scratch, directory, scale.idle_settle_seconds, scale.idle_seconds
                    )
    results["scale"] = {"quick": quick, **asdict(scale)}
    results["targets"] = {
        f"sweep_{scale.sweep_count}_ratio_to_ideal": runner.target(
            results["sweep"]["ratio_to_ideal"], "<=", SWEEP_TARGET
        ),
        **{
            f"idle_{count}_cpu_seconds_per_minute": runner.target(
                results["idle"][str(count)]["roost_cpu_seconds_per_minute"], "<", limit
            )
            for count, limit in IDLE_TARGETS.items()
            if str(count) in results["idle"]
        },
    }
    return results


if __name__ == "__main__":
    runner.run(main, __doc__)
