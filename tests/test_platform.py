"""The platform client against the loopback Vellum peer (docs/protocol.md §2)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from services.vellum.environment import KNOWN_ENVIRONMENTS, VellumEnvironment
from services.vellum.platform import (
    AUTHENTICATION_FAILED,
    SEED_PLATFORM_URLS,
    PlatformAssistant,
    PlatformClient,
    PlatformError,
    PlatformListing,
    platform_url,
)
from services.vellum.tokens import PlatformToken
from tests.peers.vellum import Reply, VellumPeer, json_reply, refused_url, text_reply

API_KEY = "vak_api-key-secret"
SESSION = "session-secret-7"
ASSISTANTS: list[object] = [
    {"id": "a-1", "name": "Ada", "status": "active"},
    {"id": "a-2", "name": "Bob", "status": "retired"},
    {"id": "a-3", "status": "active"},
    {"id": 4, "name": "no string id", "status": "active"},
    "not an object",
]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def platform(vellum_peer: VellumPeer) -> VellumPeer:
    vellum_peer.platform.api_keys.add(API_KEY)
    vellum_peer.platform.session_tokens.add(SESSION)
    vellum_peer.platform.assistants.extend(ASSISTANTS)
    return vellum_peer


def token(value: str) -> PlatformToken:
    return PlatformToken(value, Path("/nowhere/platform-token"))


async def listing(
    peer: VellumPeer, value: str | None, *, seconds: float = 10.0, base_url: str | None = None
) -> PlatformListing:
    async with httpx.AsyncClient() as http:
        client = PlatformClient(
            http, base_url or peer.url, token(value) if value else None, timeout=seconds
        )
        return await client.list_assistants()


def environment(name: str) -> VellumEnvironment:
    return VellumEnvironment.resolve({"HOME": "/nowhere", "VELLUM_ENVIRONMENT": name})


def test_the_lockfile_url_wins_then_the_environment_variable_then_the_seed() -> None:
    production = environment("production")
    variable = {"VELLUM_PLATFORM_URL": "http://127.0.0.1:8001/"}

    assert platform_url(" http://127.0.0.1:8002/ ", variable, production) == "http://127.0.0.1:8002"
    assert platform_url(None, variable, production) == "http://127.0.0.1:8001"
    assert platform_url("  ", {"VELLUM_PLATFORM_URL": ""}, production) == (
        "https://platform.vellum.ai"
    )


@pytest.mark.parametrize(
    ("name", "seed"),
    [
        ("production", "https://platform.vellum.ai"),
        ("staging", "https://staging-platform.vellum.ai"),
        ("dev", "https://dev-platform.vellum.ai"),
        ("test", "https://test-platform.vellum.ai"),
        ("local", "http://localhost:8000"),
    ],
)
def test_each_environment_has_the_reference_seed(name: str, seed: str) -> None:
    assert platform_url(None, {}, environment(name)) == seed


def test_every_known_environment_has_a_seed() -> None:
    assert set(SEED_PLATFORM_URLS) == set(KNOWN_ENVIRONMENTS)


async def test_an_api_key_is_a_bearer_and_needs_no_organization(platform: VellumPeer) -> None:
    result = await listing(platform, API_KEY)

    assert result == PlatformListing(
        ok=True, assistants=(PlatformAssistant("a-1", "Ada"), PlatformAssistant("a-3", None))
    )
    [request] = platform.requests
    assert request.path == "/v1/assistants/"
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    assert "x-session-token" not in request.headers


async def test_a_session_token_looks_up_the_organization_first(platform: VellumPeer) -> None:
    platform.platform.organization_id = "org-42"

    result = await listing(platform, SESSION)

    assert result.ok
    lookup, listed = platform.requests
    assert lookup.path == "/v1/organizations/"
    assert {name: lookup.headers.get(name) for name in ("x-session-token", "authorization")} == {
        "x-session-token": SESSION,
        "authorization": None,
    }
    assert "vellum-organization-id" not in lookup.headers
    assert listed.headers["x-session-token"] == SESSION
    assert listed.headers["vellum-organization-id"] == "org-42"


async def test_the_organization_is_cached_for_60_seconds(platform: VellumPeer) -> None:
    clock = FakeClock()
    async with httpx.AsyncClient() as http:
        client = PlatformClient(http, platform.url, token(SESSION), clock=clock)
        await client.list_assistants()
        clock.now += 59
        await client.list_assistants()
        assert len(platform.requests_to("/v1/organizations/")) == 1
        clock.now += 2
        await client.list_assistants()

    assert len(platform.requests_to("/v1/organizations/")) == 2
    assert len(platform.requests_to("/v1/assistants/")) == 3


@pytest.mark.parametrize("status", [401, 403])
async def test_a_refused_organization_lookup_says_log_in_again(
    platform: VellumPeer, status: int
) -> None:
    platform.platform.organizations_override = json_reply({"detail": "no"}, status=status)

    result = await listing(platform, SESSION)

    assert result == PlatformListing(ok=False, error=AUTHENTICATION_FAILED)
    assert platform.requests_to("/v1/assistants/") == []


async def test_unknown_credentials_say_log_in_again(platform: VellumPeer) -> None:
    assert (await listing(platform, "vak_unknown")).error == AUTHENTICATION_FAILED
    assert (await listing(platform, "stale-session")).error == AUTHENTICATION_FAILED


async def test_an_account_without_an_organization_says_so(platform: VellumPeer) -> None:
    platform.platform.organizations_override = json_reply({"results": []})

    result = await listing(platform, SESSION)

    assert result.error == "No organization found for this account."


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (json_reply({"detail": "down"}, status=503), "platform answered 503"),
        (json_reply({"detail": "boom"}, status=500), "platform answered 500"),
        (text_reply("<html>maintenance</html>"), "platform sent invalid JSON"),
        (text_reply("[" * 60_000), "platform sent invalid JSON"),
        (json_reply({"count": 0}), "platform sent no assistant list"),
    ],
)
async def test_a_bad_answer_is_not_ok_with_clear_words(
    platform: VellumPeer, answer: Reply, error: str
) -> None:
    platform.platform.assistants_override = answer

    result = await listing(platform, API_KEY)

    assert result == PlatformListing(ok=False, error=error)


async def test_a_slow_platform_times_out(platform: VellumPeer) -> None:
    platform.platform.assistants_override = json_reply({"results": []}, delay=30)

    result = await listing(platform, API_KEY, seconds=0.2)

    assert result == PlatformListing(ok=False, error="platform timed out after 0.2 s")


async def test_an_unreachable_platform_is_not_ok(platform: VellumPeer) -> None:
    with refused_url() as url:
        result = await listing(platform, API_KEY, base_url=url)

    assert not result.ok
    assert result.error is not None and result.error.startswith("platform unreachable")


async def test_without_a_token_no_request_is_made(platform: VellumPeer) -> None:
    result = await listing(platform, None)

    assert not result.ok and result.error is not None and "vellum login" in result.error
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError):
            await PlatformClient(http, platform.url, None).auth_headers()
    assert platform.requests == ()


async def test_tokens_never_show_in_urls_or_errors(platform: VellumPeer) -> None:
    results = [await listing(platform, API_KEY), await listing(platform, SESSION)]
    platform.platform.assistants_override = text_reply("nope", status=502)
    results += [await listing(platform, API_KEY), await listing(platform, SESSION)]

    for secret in (API_KEY, SESSION):
        assert all(secret not in request.target for request in platform.requests)
        assert all(secret not in repr(result) for result in results)
