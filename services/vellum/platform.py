"""The Vellum platform: its URL, the headers that log roost in, and the assistants it manages.

docs/protocol.md §2. HTTP trouble comes back as words for the user, never as a traceback; the
token travels only in request headers, never in a URL, a message or a log line.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import httpx

from services.core.errors import RoostError
from services.core.http import AnswerError, NotJson, read_json, send, timeout
from services.core.safe_text import error_text
from services.vellum.environment import VellumEnvironment
from services.vellum.tokens import PlatformToken, token_problem

SEED_PLATFORM_URLS: Mapping[str, str] = {
    # From cli/src/lib/environments/seeds.ts in vellum-ai/vellum-assistant.
    "production": "https://platform.vellum.ai",
    "staging": "https://staging-platform.vellum.ai",
    "dev": "https://dev-platform.vellum.ai",
    "test": "https://test-platform.vellum.ai",
    "local": "http://localhost:8000",
}
PLATFORM_TIMEOUT = 10.0
MAX_PLATFORM_ANSWER = 4 << 20
"""An assistant list of a few thousand entries fits many times over; past it the answer is cut
off and the listing fails."""
ORGANIZATION_CACHE_SECONDS = 60.0
AUTHENTICATION_FAILED = "Authentication failed. Run 'vellum login' to refresh."
NOT_LOGGED_IN = "not logged in to the Vellum platform: run 'vellum login'"


def platform_url(
    lockfile_platform_base_url: str | None,
    environ: Mapping[str, str],
    environment: VellumEnvironment,
) -> str:
    """The lockfile's `platformBaseUrl`, else `VELLUM_PLATFORM_URL`, else the environment's seed."""
    for candidate in (lockfile_platform_base_url, environ.get("VELLUM_PLATFORM_URL")):
        if candidate and candidate.strip():
            return candidate.strip().rstrip("/")
    return SEED_PLATFORM_URLS[environment.name]


class PlatformError(RoostError):
    """A platform request failed; the message says why, in words for the user."""


@dataclass(frozen=True)
class PlatformAssistant:
    id: str
    name: str | None


@dataclass(frozen=True)
class PlatformListing:
    """One look at the platform. Not ok means "no answer", never "no assistants"."""

    ok: bool
    assistants: tuple[PlatformAssistant, ...] = ()
    """The active ones only, in the platform's order."""
    error: str | None = None


class PlatformClient:
    """Requests to one platform with one token. The organization id is cached for 60 s."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str,
        token: PlatformToken | None,
        *,
        timeout: float = PLATFORM_TIMEOUT,
        max_answer: int = MAX_PLATFORM_ANSWER,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._http = http
        self.base_url = base_url.rstrip("/")
        self._token = token
        self.timeout = timeout
        self.max_answer = max_answer
        self._clock = clock
        self._organization: tuple[str, float] | None = None
        """The organization id and the clock reading when it was fetched."""

    async def auth_headers(self) -> dict[str, str]:
        """The headers every platform request carries.

        Raises PlatformError when not logged in or when the organization lookup fails.
        """
        if self._token is None:
            raise PlatformError(NOT_LOGGED_IN)
        if self._token.is_api_key:
            return {"Authorization": f"Bearer {self._token.value}"}
        session = {"X-Session-Token": self._token.value}
        return {**session, "Vellum-Organization-Id": await self._organization_id(session)}

    async def list_assistants(self) -> PlatformListing:
        """The platform's active managed assistants; failures come back as `ok=False`."""
        try:
            answer = await self._get_json("/v1/assistants/", await self.auth_headers())
        except PlatformError as error:
            return PlatformListing(ok=False, error=str(error))
        results = answer.get("results") if isinstance(answer, dict) else None
        if not isinstance(results, list):
            return PlatformListing(ok=False, error="platform sent no assistant list")
        return PlatformListing(
            ok=True,
            assistants=tuple(
                PlatformAssistant(item["id"], _text(item.get("name")))
                for item in results
                if isinstance(item, dict)
                and item.get("status") == "active"
                and isinstance(item.get("id"), str)
            ),
        )

    async def _organization_id(self, session_headers: Mapping[str, str]) -> str:
        now = self._clock()
        if self._organization and now - self._organization[1] < ORGANIZATION_CACHE_SECONDS:
            return self._organization[0]
        answer = await self._get_json("/v1/organizations/", session_headers)
        results = answer.get("results") if isinstance(answer, dict) else None
        first = results[0] if isinstance(results, list) and results else None
        organization = _text(first.get("id")) if isinstance(first, dict) else None
        if not organization:
            raise PlatformError("No organization found for this account.")
        if token_problem(organization):  # it goes back in a header: a line break must not
            raise PlatformError("the platform sent an organization id that is not a token")
        self._organization = (organization, now)
        return organization

    async def _get_json(self, path: str, headers: Mapping[str, str]) -> object:
        # `from None` below: an httpx error holds the request, and so the token in its headers.
        request = self._http.build_request(
            "GET", self.base_url + path, headers=headers, timeout=timeout(self.timeout)
        )
        try:
            async with asyncio.timeout(self.timeout):
                response = await send(self._http, request)
                async with contextlib.aclosing(response):
                    if response.status_code in (401, 403):
                        raise PlatformError(AUTHENTICATION_FAILED)
                    if not response.is_success:
                        raise PlatformError(f"platform answered {response.status_code}")
                    return await read_json(response, self.max_answer)
        except (TimeoutError, httpx.TimeoutException):
            raise PlatformError(f"platform timed out after {self.timeout:g} s") from None
        except httpx.HTTPError as error:
            raise PlatformError(f"platform unreachable ({error_text(error)})") from None
        except NotJson:
            raise PlatformError("platform sent invalid JSON") from None
        except AnswerError as error:
            raise PlatformError(f"platform answer refused: {error}") from None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None
