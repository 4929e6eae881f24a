"""The repair on connect, as the native Vellum client does it: when a backup of a docker or
local assistant finds nothing listening at its address (it is asleep), wake it once and back it
up once more, as a new job whose note says what was done.

Never more: a failure of the second attempt is reported, not repaired again, so nothing loops.
Other failures (401 after a fresh read of the token, 403, a corrupt archive...) are not repairs.
A repair is an async callable returning a `RepairReport` (did it work, what it did):
`docker_wake` and `local_wake` build the ones roost has.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path

from services.docker.engines import Engine
from services.docker.lifecycle import Outcome, Step, summarize, wake_docker, wake_local
from services.jobs.exports import Exporter
from services.jobs.record import Job, JobState
from services.vellum.auth import RuntimeEndpoint

READY_TIMEOUT = 60.0
"""How long a woken docker assistant gets to answer before the retry goes ahead anyway (the
Vellum CLI waits about as long for the gateway after `docker start`)."""


@dataclass(frozen=True)
class RepairReport:
    """What a repair did: `woke alpha (started alpha-assistant, alpha-gateway)`."""

    ok: bool
    """False when the repair did not happen or failed: the operation is then not retried."""
    summary: str
    steps: tuple[Step, ...] = ()


Repair = Callable[[], Awaitable[RepairReport]]


def docker_wake(
    engine: Engine,
    name: str,
    *,
    ready: Callable[[], Awaitable[bool]] | None = None,
    ready_timeout: float = READY_TIMEOUT,
    poll_interval: float = 0.25,
) -> Repair:
    """A repair that starts the assistant's containers (`docker.lifecycle.wake_docker`, in a
    thread) and then, if `ready` is given, polls it until it says True or `ready_timeout`
    passes: a started container takes a moment before its runtime listens. `ready` answers,
    never raises (`services.health.probes.probe_direct(...)` turned into a bool, say)."""

    async def wake() -> RepairReport:
        steps = await asyncio.to_thread(lambda: tuple(wake_docker(engine, name)))
        report = _woke(name, steps)
        if not report.ok or ready is None:
            return report
        if await _until(ready, ready_timeout, poll_interval):
            return report
        return replace(report, summary=f"{report.summary}; not ready within {ready_timeout:g} s")

    return wake


def local_wake(assistant_id: str, *, vellum: str | None = None) -> Repair:
    """A repair that wakes a local assistant with `vellum wake <id>` (in a thread); the CLI
    waits for the daemon to be ready before it returns."""

    async def wake() -> RepairReport:
        steps = await asyncio.to_thread(lambda: tuple(wake_local(assistant_id, vellum)))
        return _woke(assistant_id, steps)

    return wake


def _woke(name: str, steps: tuple[Step, ...]) -> RepairReport:
    """The report of a wake's steps: ok when nothing failed and something exists to wake."""
    ok = not any(step.failed for step in steps) and any(
        step.outcome is not Outcome.ABSENT for step in steps
    )
    verb = "woke" if ok else "could not wake"
    return RepairReport(ok, f"{verb} {name} ({summarize(steps)})", steps)


async def _until(ready: Callable[[], Awaitable[bool]], seconds: float, interval: float) -> bool:
    """Poll `ready` (a remote condition: there is no event to wait on) until it holds."""
    try:
        async with asyncio.timeout(seconds):
            while True:
                if await ready():
                    return True
                await asyncio.sleep(interval)
    except TimeoutError:
        return False


async def backup_with_repair(
    exporter: Exporter, target: RuntimeEndpoint, destination: Path, wake: Repair | None
) -> AsyncGenerator[Job, None]:
    """The export's snapshots; after a failure because nothing answered, and only then, wake
    the assistant once and yield a second export's snapshots (to the same destination: the
    first left nothing there), each noting what was done."""
    last: Job | None = None
    async with contextlib.aclosing(exporter.backup(target, destination)) as jobs:
        async for last in jobs:
            yield last
    if wake is None or last is None or last.state is not JobState.FAILED or not last.unreachable:
        return
    report = await wake()
    if not report.ok:
        yield replace(last, note=f"not repaired: {report.summary}")
        return
    note = f"the first attempt found nothing listening; {report.summary}, retried"
    async with contextlib.aclosing(exporter.backup(target, destination)) as jobs:
        async for job in jobs:
            yield replace(job, note="; ".join(filter(None, (note, job.note))))
