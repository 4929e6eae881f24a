"""Health probes of assistant runtimes (docs/protocol.md §3).

A probe never raises: every outcome, timeouts and garbage answers included, becomes a `Health`
whose status is the word the UI shows. One deadline bounds the whole request, body included, so
a runtime that sends its headers and then stalls still costs at most `timeout` seconds. The
probes take that timeout themselves (hence the ASYNC109 exemptions) because running out of time
is an answer, the `timeout` status, not an exception for the caller. Redirects are followed
(a few) by services/core/http.py `send`, which keeps the credentials within the first origin.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote

import httpx

from services.core.http import (
    AnswerError,
    AnswerTooLarge,
    NotJson,
    TooManyRedirects,
    read_json,
    same_origin,
    send,
    size_text,
    timeout,
)
from services.core.safe_text import error_text, printable

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


_parsed = functools.lru_cache(maxsize=16384)(httpx.URL)
"""Each runtime's URL parsed once, not on every probe (a tenth of a probe's CPU)."""


async def _probe(
    client: httpx.AsyncClient, url: str, headers: Mapping[str, str], seconds: float
) -> Health:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(seconds):
            request = client.build_request(
                "GET", _parsed(url), headers=headers, timeout=timeout(seconds)
            )
            response = await send(client, request, redirects=MAX_REDIRECTS)
            async with contextlib.aclosing(response):
                return await _read(response, request.url, started)
    except (TimeoutError, httpx.TimeoutException):
        return Health("timeout", f"no answer within {seconds:g} s", None, None)
    except TooManyRedirects:
        detail = f"more than {MAX_REDIRECTS} redirects"
        return Health("error (redirects)", detail, None, _since(started))
    except (httpx.HTTPError, httpx.InvalidURL) as error:
        return Health("unreachable", error_text(error), None, None)


async def _read(response: httpx.Response, asked: httpx.URL, started: float) -> Health:
    if not response.is_success:
        moved = not same_origin(response.url, asked)
        # Credentials stay with the first origin, so a refusal elsewhere needs saying why.
        detail = f"redirected to {response.url.host}, which gets no credentials" if moved else ""
        return Health(f"error ({response.status_code})", detail, None, _since(started))
    try:
        answer = await read_json(response, MAX_HEALTH_BODY)
    except AnswerTooLarge:
        detail = f"health answer larger than {size_text(MAX_HEALTH_BODY)}"
        return Health("unknown", detail, None, _since(started))
    except NotJson:
        return Health("unknown", "health answer is not JSON", None, _since(started))
    except AnswerError as error:
        return Health("unknown", str(error), None, _since(started))
    latency = _since(started)
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
