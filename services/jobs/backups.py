"""A backup as roost runs it, from the TUI's `b` or `roost backup`: the export of one assistant
of the fleet, with the repair on connect that the native Vellum client does.

When the export of a docker or local assistant fails because nothing answers at its address
(it is asleep), the assistant is woken once and backed up once more, as a new job whose note
says what was done; a failure of that second attempt is reported, never repaired again. Other
failures (401 after a fresh read of the token, 403, a corrupt archive...) are not repairs.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncGenerator
from pathlib import Path

import httpx

from services.core.context import Context
from services.core.errors import RoostError
from services.docker.engines import configured_engines
from services.docker.lifecycle import engine_of
from services.fleet.model import Assistant, AssistantKind, FleetSnapshot, health_target
from services.fleet.sources import FleetSources
from services.health.probes import UNANSWERED
from services.health.probing import Prober
from services.jobs.exports import Exporter, ExportTarget
from services.jobs.repair import Repair, RepairReport, docker_wake, local_wake
from services.jobs.store import Job, JobState
from services.vellum.platform import PlatformClient


def export_target(
    sources: FleetSources, snapshot: FleetSnapshot, assistant: Assistant
) -> ExportTarget:
    """What backing `assistant` up needs: its runtime URL and credentials, as its health probe
    uses them. Raises RoostError when it has no runtime to export from."""
    target = health_target(snapshot, assistant)
    if target is None:
        raise RoostError(f"{assistant.name} has no runtime URL: there is nothing to export from")
    base_url = snapshot.lockfile.platform_base_url if snapshot.lockfile else None

    def platform_now() -> PlatformClient | None:
        sources.connect_platform(base_url)  # reads the token again: a new login counts
        return sources.platform

    return ExportTarget.of(target, assistant.name, sources.context.vellum, platform_now)


def wake_repair(
    context: Context, http: httpx.AsyncClient, snapshot: FleetSnapshot, assistant: Assistant
) -> Repair | None:
    """How to wake `assistant` before a second attempt: docker and local ones only."""
    if assistant.kind is AssistantKind.LOCAL:
        return local_wake(assistant.id)
    if assistant.kind is not AssistantKind.DOCKER:
        return None
    target = health_target(snapshot, assistant)

    async def ready() -> bool:
        """The runtime answers (any answer): the retry can go."""
        if target is None:
            return True
        health = await Prober(http, context.vellum, None)(target)
        return health.status not in UNANSWERED

    async def wake() -> RepairReport:
        engines = configured_engines(context.config, context.environ)
        try:
            engine = await asyncio.to_thread(engine_of, assistant.id, engines, assistant.where)
        except RoostError as error:
            return RepairReport(False, str(error))
        return await docker_wake(engine, assistant.id, ready=ready)()

    return wake


async def backup_with_repair(
    exporter: Exporter, target: ExportTarget, destination: Path, wake: Repair | None
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
        yield dataclasses.replace(last, note=f"not repaired: {report.summary}")
        return
    note = f"the first attempt found nothing listening; {report.summary}, retried"
    async with contextlib.aclosing(exporter.backup(target, destination)) as jobs:
        async for job in jobs:
            yield dataclasses.replace(job, note="; ".join(filter(None, (note, job.note))))
