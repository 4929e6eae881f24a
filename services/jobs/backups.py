"""A backup of one assistant of the fleet, from the TUI's `b` or `roost backup`: what to export
from (its runtime URL and credentials) and how to wake it for the repair on connect
(services/jobs/repair.py, which also holds the policy).
"""

from __future__ import annotations

import asyncio

import httpx

from services.core.context import Context
from services.core.errors import RoostError
from services.docker.engines import configured_engines
from services.docker.lifecycle import engine_of
from services.fleet.builder import health_target
from services.fleet.model import Assistant, FleetSnapshot
from services.fleet.sources import FleetSources
from services.health.probes import UNANSWERED
from services.health.probing import Prober
from services.jobs.exports import ExportTarget
from services.jobs.repair import Repair, RepairReport, docker_wake, local_wake
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
    if assistant.kind == "local":
        return local_wake(assistant.id)
    if assistant.kind != "docker":
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
