"""Health probes against runtimes on the loopback Vellum peer (docs/protocol.md §3)."""

from __future__ import annotations

import httpx
import pytest

from services.health.probes import MAX_REDIRECTS, NOT_LOGGED_IN, Health, probe_direct, probe_managed
from tests.peers.vellum import (
    Reply,
    VellumPeer,
    hanging_reply,
    huge_reply,
    json_reply,
    redirect_to,
    refused_url,
)

GUARDIAN = "guardian-secret-1"


async def probe(base_url: str, bearer: str | None = None, seconds: float = 1.5) -> Health:
    # No httpx timeouts: the probe's own deadline must be what ends a stalled request.
    async with httpx.AsyncClient(timeout=None) as client:
        return await probe_direct(client, base_url, bearer, seconds)


async def test_a_healthy_runtime_gives_its_version_and_no_detail(vellum_peer: VellumPeer) -> None:
    alpha = vellum_peer.runtime(
        "alpha",
        health=json_reply({"status": "healthy", "version": "1.2.3", "message": "all good"}),
    )

    health = await probe(alpha.base_url, GUARDIAN)

    assert (health.status, health.detail, health.version) == ("healthy", "", "1.2.3")
    assert health.latency_ms is not None and health.latency_ms > 0
    [request] = vellum_peer.requests
    assert (request.method, request.target) == ("GET", f"{alpha.path}/v1/health")
    assert request.headers["authorization"] == f"Bearer {GUARDIAN}"


async def test_without_a_bearer_no_authorization_header_is_sent(vellum_peer: VellumPeer) -> None:
    alpha = vellum_peer.runtime("alpha")

    assert (await probe(alpha.base_url + "/")).status == "healthy"
    assert "authorization" not in vellum_peer.requests[0].headers


async def test_a_degraded_runtime_says_why(vellum_peer: VellumPeer) -> None:
    alpha = vellum_peer.runtime(
        "alpha", health=json_reply({"status": "degraded", "message": "db slow"})
    )

    health = await probe(alpha.base_url)

    assert (health.status, health.detail, health.version) == ("degraded", "db slow", None)


@pytest.mark.parametrize("status", [500, 503, 404])
async def test_a_non_2xx_answer_is_an_error_with_its_code(
    vellum_peer: VellumPeer, status: int
) -> None:
    alpha = vellum_peer.runtime("alpha", health=json_reply({"status": "healthy"}, status=status))

    health = await probe(alpha.base_url)

    assert health.status == f"error ({status})"
    assert health.latency_ms is not None


@pytest.mark.parametrize(("given", "missing_with"), [(None, "starting"), ("", "starting"), (7, "")])
async def test_a_missing_or_empty_status_is_unknown(
    vellum_peer: VellumPeer, given: object, missing_with: str
) -> None:
    body = {"message": missing_with} if given is None else {"status": given}
    alpha = vellum_peer.runtime("alpha", health=json_reply(body))

    health = await probe(alpha.base_url)

    assert (health.status, health.detail) == ("unknown", missing_with if given is None else "")


@pytest.mark.parametrize("body", [b"<html>It works!</html>", b"[" * 60_000, b"\xff"])
async def test_an_answer_that_is_not_json_is_unknown(vellum_peer: VellumPeer, body: bytes) -> None:
    alpha = vellum_peer.runtime("alpha", health=Reply(body=body, content_type="text/html"))

    health = await probe(alpha.base_url)

    assert (health.status, health.detail) == ("unknown", "health answer is not JSON")


async def test_json_that_is_not_an_object_is_unknown(vellum_peer: VellumPeer) -> None:
    alpha = vellum_peer.runtime("alpha", health=json_reply(["healthy"]))

    health = await probe(alpha.base_url)

    assert (health.status, health.detail) == ("unknown", "health answer is not a JSON object")


async def test_a_huge_answer_is_cut_off_and_unknown(vellum_peer: VellumPeer) -> None:
    alpha = vellum_peer.runtime("alpha", health=huge_reply(4 << 20))

    health = await probe(alpha.base_url)

    assert (health.status, health.detail) == ("unknown", "health answer larger than 64 KiB")


async def test_an_answer_slower_than_the_timeout_is_a_timeout(vellum_peer: VellumPeer) -> None:
    alpha = vellum_peer.runtime("alpha", health=json_reply({"status": "healthy"}, delay=30))

    health = await probe(alpha.base_url, seconds=0.2)

    assert (health.status, health.detail, health.latency_ms) == (
        "timeout",
        "no answer within 0.2 s",
        None,
    )


async def test_headers_then_silence_is_a_timeout(vellum_peer: VellumPeer) -> None:
    alpha = vellum_peer.runtime("alpha", health=hanging_reply())

    health = await probe(alpha.base_url, seconds=0.2)

    assert health.status == "timeout"


async def test_a_closed_port_is_unreachable() -> None:
    with refused_url() as url:
        health = await probe(url)

    assert health.status == "unreachable"
    assert health.latency_ms is None


@pytest.mark.parametrize("sent", [None, "wrong-token"])
async def test_a_missing_or_wrong_bearer_is_a_401(
    vellum_peer: VellumPeer, sent: str | None
) -> None:
    alpha = vellum_peer.runtime("alpha", bearer=GUARDIAN)

    assert (await probe(alpha.base_url, sent)).status == "error (401)"
    assert (await probe(alpha.base_url, GUARDIAN)).status == "healthy"


async def test_a_redirect_is_followed(vellum_peer: VellumPeer) -> None:
    moved = vellum_peer.runtime("moved", health=redirect_to("/rt/alpha/v1/health"))
    vellum_peer.runtime("alpha", health=json_reply({"status": "healthy", "version": "2.0"}))

    health = await probe(moved.base_url)

    assert (health.status, health.version) == ("healthy", "2.0")
    assert [request.path for request in vellum_peer.requests] == [
        "/rt/moved/v1/health",
        "/rt/alpha/v1/health",
    ]


async def test_endless_redirects_stop_after_a_few(vellum_peer: VellumPeer) -> None:
    loop = vellum_peer.runtime("loop", health=redirect_to("/rt/loop/v1/health"))

    health = await probe(loop.base_url)

    assert (health.status, health.detail) == (
        "error (redirects)",
        f"more than {MAX_REDIRECTS} redirects",
    )
    assert len(vellum_peer.requests) == MAX_REDIRECTS + 1


async def test_managed_health_without_platform_headers_sends_nothing(
    vellum_peer: VellumPeer,
) -> None:
    managed = vellum_peer.runtime("managed")
    async with httpx.AsyncClient() as client:
        health = await probe_managed(client, managed.base_url, "asst-1", None)

    assert health == NOT_LOGGED_IN == Health("error (auth)", "not logged in", None, None)
    assert vellum_peer.requests == ()


async def test_managed_health_sends_the_platform_headers_to_the_healthz_path(
    vellum_peer: VellumPeer,
) -> None:
    managed = vellum_peer.runtime(
        "managed", managed_health=json_reply({"status": "degraded", "message": "db slow"})
    )
    headers = {"X-Session-Token": "session-secret", "Vellum-Organization-Id": "org-1"}
    async with httpx.AsyncClient() as client:
        health = await probe_managed(client, managed.base_url, "asst 1/x", headers)

    assert (health.status, health.detail) == ("degraded", "db slow")
    [request] = vellum_peer.requests
    assert request.target == "/rt/managed/v1/assistants/asst%201%2Fx/healthz/"
    assert request.headers["x-session-token"] == "session-secret"
    assert request.headers["vellum-organization-id"] == "org-1"


async def test_managed_health_maps_answers_like_direct_health(vellum_peer: VellumPeer) -> None:
    managed = vellum_peer.runtime("managed", bearer="vak_good")
    async with httpx.AsyncClient() as client:
        refused = await probe_managed(
            client, managed.base_url, "a", {"Authorization": "Bearer vak_bad"}
        )
        managed.managed_health = Reply(status=200, body=b"not json")
        garbled = await probe_managed(
            client, managed.base_url, "a", {"Authorization": "Bearer vak_good"}
        )
        managed.managed_health = hanging_reply()
        stalled = await probe_managed(
            client, managed.base_url, "a", {"Authorization": "Bearer vak_good"}, timeout=0.2
        )

    assert [refused.status, garbled.status, stalled.status] == ["error (401)", "unknown", "timeout"]


async def test_tokens_travel_in_headers_never_in_urls(vellum_peer: VellumPeer) -> None:
    alpha = vellum_peer.runtime("alpha", bearer=GUARDIAN)
    await probe(alpha.base_url, GUARDIAN)
    async with httpx.AsyncClient() as client:
        await probe_managed(client, alpha.base_url, "a", {"Authorization": f"Bearer {GUARDIAN}"})

    assert len(vellum_peer.requests) == 2
    assert all(GUARDIAN not in request.target for request in vellum_peer.requests)
