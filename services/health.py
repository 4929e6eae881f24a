"""Health probes of assistant runtimes (PROTOCOL.md section 3).

A probe never raises: every outcome, timeouts and garbage answers included, becomes a `Health`
whose status is the word the UI shows. One deadline bounds the whole request, body included, so
a runtime that sends its headers and then stalls still costs at most `timeout` seconds. The
probes take that timeout themselves (hence the ASYNC109 exemptions) because running out of time
is an answer, the `timeout` status, not an exception for the caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote

import httpx

from services.safe_text import error_text, printable

HEALTH_TIMEOUT = 1.5
MAX_HEALTH_BODY = 64 * 1024
"""A health answer is a few dozen bytes; anything past this is not one."""
MAX_REDIRECTS = 3


@dataclass(frozen=True)
class Health:
    status: str
    """`healthy`, `degraded`, ... as the runtime says it, or `error (<code>)`, `timeout`,
    `unreachable`, `unknown`."""
    detail: str
    """Why, in words for the user; empty when healthy or when there is nothing to add."""
    version: str | None
    latency_ms: float | None
    """From sending the request to the end of the answer; None when no answer came."""

    @property
    def failed(self) -> bool:
        """Nobody answered, or the answer was an error."""
        return self.status in UNANSWERED or self.status.startswith("error")


UNANSWERED = frozenset({"unreachable", "timeout"})
"""Statuses that mean nobody answered (these back off); an error status is an answer."""


@dataclass(frozen=True)
class HealthRecord:
    """Everything known of one assistant's health, as the screen and the log show it."""

    health: Health
    latencies: tuple[float | None, ...]
    """The last probes' latencies, oldest first; None where nobody answered."""
    failures: int
    """Unanswered probes in a row."""
    last_error: str
    flapping: bool

    @classmethod
    def single(cls, health: Health) -> HealthRecord:
        """The record of one probe with no history (`roost ps`)."""
        failures = int(health.status in UNANSWERED)
        error = health.detail if health.failed else ""
        return cls(health, (health.latency_ms,), failures, error, False)


NOT_LOGGED_IN = Health("error (auth)", "not logged in", None, None)


async def probe_direct(
    client: httpx.AsyncClient,
    base_url: str,
    bearer: str | None,
    timeout: float = HEALTH_TIMEOUT,  # noqa: ASYNC109
) -> Health:
    """`GET <base>/v1/health`: every kind of assistant but the platform-managed ones."""
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    return await _probe(client, f"{base_url.rstrip('/')}/v1/health", headers, timeout)


async def probe_managed(
    client: httpx.AsyncClient,
    runtime_url: str,
    assistant_id: str,
    headers: Mapping[str, str] | None,
    timeout: float = HEALTH_TIMEOUT,  # noqa: ASYNC109
) -> Health:
    """`GET <runtimeUrl>/v1/assistants/<id>/healthz/` with the platform headers.

    Without platform headers (not logged in) no request is made.
    """
    if headers is None:
        return NOT_LOGGED_IN
    url = f"{runtime_url.rstrip('/')}/v1/assistants/{quote(assistant_id, safe='')}/healthz/"
    return await _probe(client, url, headers, timeout)


async def _probe(
    client: httpx.AsyncClient, url: str, headers: Mapping[str, str], seconds: float
) -> Health:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(seconds):
            return await _follow(client, client.build_request("GET", url, headers=headers), started)
    except (TimeoutError, httpx.TimeoutException):
        return Health("timeout", f"no answer within {seconds:g} s", None, None)
    except (httpx.HTTPError, httpx.InvalidURL) as error:
        return Health("unreachable", error_text(error), None, None)


async def _follow(client: httpx.AsyncClient, request: httpx.Request, started: float) -> Health:
    # Redirects are followed here rather than by the client, so the limit does not depend on how
    # the caller configured it; httpx still drops the Authorization header across origins.
    for _ in range(MAX_REDIRECTS + 1):
        response = await client.send(request, stream=True, follow_redirects=False)
        async with contextlib.aclosing(response):
            if response.next_request is None:
                return await _read(response, started)
            request = response.next_request
    return Health(
        "error (redirects)", f"more than {MAX_REDIRECTS} redirects", None, _since(started)
    )


async def _read(response: httpx.Response, started: float) -> Health:
    if not response.is_success:
        return Health(f"error ({response.status_code})", "", None, _since(started))
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > MAX_HEALTH_BODY:
            return Health("unknown", "health answer larger than 64 KiB", None, _since(started))
    latency = _since(started)
    try:
        answer = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: deeply nested arrays
        return Health("unknown", "health answer is not JSON", None, latency)
    if not isinstance(answer, dict):
        return Health("unknown", "health answer is not a JSON object", None, latency)
    status = answer.get("status")
    status = status if isinstance(status, str) and status else "unknown"
    message, version = answer.get("message"), answer.get("version")
    detail = message if isinstance(message, str) and status != "healthy" else ""
    version = printable(version) if isinstance(version, str) else None
    return Health(printable(status), printable(detail), version, latency)


def _since(started: float) -> float:
    return (time.perf_counter() - started) * 1000
