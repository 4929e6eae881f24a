"""Probing assistants' health: the right request for each, with the credentials
services/vellum/auth.py finds for it.

Shared by `roost ps` (one bounded sweep, `probe_all`) and the TUI's health monitor (a `Prober`
called per assistant on its own schedule).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import httpx

from services.health.probes import Health, probe_direct, probe_managed
from services.health.target import HealthTarget
from services.vellum.auth import bearer_token
from services.vellum.environment import VellumEnvironment
from services.vellum.platform import PlatformClient, PlatformError
from services.vellum.tokens import TokenFileError

DEFAULT_CONCURRENCY = 32

log = logging.getLogger(__name__)


class Prober:
    """Probes one target at a time: direct `/v1/health`, or managed with platform headers."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        environment: VellumEnvironment,
        platform: PlatformClient | None,
    ) -> None:
        self.http = http
        self.environment = environment
        self.platform = platform

    async def __call__(self, target: HealthTarget) -> Health:
        if target.managed:
            return await probe_managed(
                self.http, target.url, target.assistant_id, await self._platform_headers()
            )
        try:
            bearer = bearer_token(target, self.environment)
        except TokenFileError as error:
            return Health("error (token)", str(error), None, None)
        return await probe_direct(self.http, target.url, bearer)

    async def _platform_headers(self) -> dict[str, str] | None:
        """None when not logged in (the probe then says so without a request)."""
        if self.platform is None:
            return None
        try:
            return await self.platform.auth_headers()  # the organization id is cached
        except PlatformError as error:
            log.info("managed health without platform headers: %s", error)
            return None


async def probe_all(
    prober: Prober, targets: Sequence[HealthTarget], concurrency: int = DEFAULT_CONCURRENCY
) -> dict[str, Health]:
    """Every target's health by key; at most `concurrency` requests in flight."""
    gate = asyncio.Semaphore(concurrency)

    async def probe(target: HealthTarget) -> tuple[str, Health]:
        async with gate:
            return target.key, await prober(target)

    return dict(await asyncio.gather(*(probe(target) for target in targets)))
