"""Probing many assistants' health at once: bounded concurrency, tokens found per assistant.

Shared by `roost ps` (one sweep) and the TUI's health poller (a sweep per interval).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from pathlib import Path

import httpx

from services.fleet import HealthTarget
from services.health import Health, probe_direct, probe_managed
from services.platform import PlatformClient, PlatformError
from services.tokens import TokenFileError, read_guardian_token, read_token_file
from services.vellum import VellumEnvironment

DEFAULT_CONCURRENCY = 32

log = logging.getLogger(__name__)


def bearer_for(target: HealthTarget, environment: VellumEnvironment) -> str | None:
    """A configured token file, else the guardian token the Vellum CLI leased, else the
    lockfile's `bearerToken` (PROTOCOL.md section 2)."""
    if target.token_file:
        try:
            return read_token_file(Path(target.token_file))
        except TokenFileError as error:
            log.warning("%s: %s", target.assistant_id, error)
            return None
    guardian = read_guardian_token(environment, target.assistant_id)
    return guardian.access_token if guardian else target.inline_token


async def probe_all(
    http: httpx.AsyncClient,
    targets: Sequence[HealthTarget],
    environment: VellumEnvironment,
    platform: PlatformClient | None,
    concurrency: int = DEFAULT_CONCURRENCY,
) -> dict[str, Health]:
    """Every target's health by key; at most `concurrency` requests in flight."""
    headers: dict[str, str] | None = None
    if platform is not None and any(target.managed for target in targets):
        try:
            headers = await platform.auth_headers()
        except PlatformError as error:
            log.info("managed health without platform headers: %s", error)
    gate = asyncio.Semaphore(concurrency)

    async def probe(target: HealthTarget) -> tuple[str, Health]:
        async with gate:
            if target.managed:
                health = await probe_managed(http, target.url, target.assistant_id, headers)
            else:
                health = await probe_direct(http, target.url, bearer_for(target, environment))
        return target.key, health

    return dict(await asyncio.gather(*(probe(target) for target in targets)))
