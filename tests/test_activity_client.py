"""The runtime's activity API (services/activity/client.py) against the loopback peer playing
docs/protocol.md §7: the stream's framing, credentials, caps, the pending list in both forms,
and each answer's body exactly."""

from __future__ import annotations

import contextlib
import logging
import tracemalloc
from collections.abc import AsyncIterator, Callable, Iterator, Mapping

import pytest

from services.activity.client import (
    ActivityClient,
    ActivityError,
    AnswerRefused,
    PendingItem,
    StreamError,
)
from services.activity.events import Completed, Event, PhaseChanged, Requested
from services.activity.model import (
    Allow,
    Confirmation,
    Decision,
    Interaction,
    InteractionKind,
    OptionAnswer,
    Outcome,
    Questions,
    Reply,
    Request,
    Secret,
    TextAnswer,
)
from services.core.http import http_client
from services.vellum.auth import BearerAuth, RuntimeEndpoint
from tests.peers.activity import ActivityScript
from tests.peers.vellum import Reply as PeerReply
from tests.peers.vellum import Runtime, VellumPeer, flood_reply, json_reply, refused_url
from tests.test_activity_tracker import T0

TOKEN = "guardian-token-123"
SECRET_VALUE = "hunter2-very-secret-value"


def endpoint_of(
    runtime: Runtime, tokens: Callable[[], str | None] = lambda: TOKEN
) -> RuntimeEndpoint:
    return RuntimeEndpoint(runtime.name, runtime.name, runtime.base_url, False, BearerAuth(tokens))


@pytest.fixture
def runtime(vellum_peer: VellumPeer) -> Runtime:
    return vellum_peer.runtime("kit", bearer=TOKEN)


@pytest.fixture
async def client() -> AsyncIterator[ActivityClient]:
    async with http_client() as http:
        yield ActivityClient(http)


class Reader:
    """An open event stream read one item at a time."""

    def __init__(self, events: AsyncIterator[Event | None]) -> None:
        self.events = events

    async def next_event(self) -> Event:
        """The next event, past heartbeats and ignored frames."""
        while True:
            item = await anext(self.events)
            if item is not None:
                return item


@contextlib.asynccontextmanager
async def reading(
    client: ActivityClient, endpoint: RuntimeEndpoint, script: ActivityScript, **caps: int
) -> AsyncIterator[Reader]:
    events = client.events(endpoint, "client-1", **caps)
    async with contextlib.aclosing(events):
        assert await anext(events) is None  # open
        script.wait_for_streams(1)
        yield Reader(events)


def interaction(
    request_id: str, kind: InteractionKind, request: Request | None = None
) -> Interaction:
    return Interaction("local:kit", "kit", "kit", request_id, kind, "c1", T0, request)


# -- the event stream ------------------------------------------------------------------------


async def test_events_come_framed_between_heartbeats_with_the_client_s_headers(
    vellum_peer: VellumPeer, runtime: Runtime, client: ActivityClient
) -> None:
    script = runtime.activity
    script.heartbeat_seconds = 0.05
    async with reading(client, endpoint_of(runtime), script) as reader:
        assert await anext(reader.events) is None  # a heartbeat
        script.activity("c1", "thinking")
        script.emit({"type": "assistant_text_delta", "text": "hi"}, "c1")
        script.complete("c1")
        assert await reader.next_event() == PhaseChanged("c1", 1, "thinking", "", "", "")
        assert await reader.next_event() == Completed("c1")
    [request] = vellum_peer.requests_to(runtime.path + "/v1/events")
    assert request.headers["x-vellum-client-id"] == "client-1"
    assert request.headers["x-vellum-interface-id"] == "cli"
    assert request.headers["authorization"] == f"Bearer {TOKEN}"


async def test_a_refused_bearer_is_read_again_once(
    vellum_peer: VellumPeer, runtime: Runtime, client: ActivityClient
) -> None:
    tokens = iter(["stale-token-000", TOKEN])
    async with reading(client, endpoint_of(runtime, lambda: next(tokens)), runtime.activity):
        pass
    sent = [
        r.headers["authorization"] for r in vellum_peer.requests_to(runtime.path + "/v1/events")
    ]
    assert sent == ["Bearer stale-token-000", f"Bearer {TOKEN}"]


async def test_a_second_refusal_ends_in_one_line(runtime: Runtime, client: ActivityClient) -> None:
    with pytest.raises(StreamError, match=r"^kit: the event stream was refused \(401"):
        async for _ in client.events(endpoint_of(runtime, lambda: "wrong-token-0"), "c"):
            pass


async def test_too_many_connections_is_a_stream_error(
    runtime: Runtime, client: ActivityClient
) -> None:
    runtime.activity.stream_replies.append(
        json_reply({"error": "Too many concurrent connections"}, status=503)
    )
    with pytest.raises(StreamError, match=r"\(503: Too many concurrent connections\)$"):
        async for _ in client.events(endpoint_of(runtime), "c"):
            pass


async def test_a_closed_stream_says_so(runtime: Runtime, client: ActivityClient) -> None:
    with pytest.raises(StreamError, match="the runtime closed the event stream"):
        async with reading(client, endpoint_of(runtime), runtime.activity) as reader:
            runtime.activity.drop_streams()
            await reader.next_event()


@pytest.mark.parametrize(
    ("data", "cap"),
    [
        (b"data: " + b"x" * 5000 + b"\n", "line larger than 4 KiB"),
        ((b"data: " + b"x" * 1000 + b"\n") * 20 + b"\n", "event larger than 16 KiB"),
        (b"data: " + b"x" * 100_000, "line larger than 4 KiB"),  # never ended at all
    ],
)
async def test_a_line_or_an_event_past_its_cap_ends_the_stream(
    runtime: Runtime, client: ActivityClient, data: bytes, cap: str
) -> None:
    caps = {"max_line": 4096, "max_event": 16384}
    with pytest.raises(StreamError, match=f"the event stream was cut: .*{cap}"):
        async with reading(client, endpoint_of(runtime), runtime.activity, **caps) as reader:
            runtime.activity.raw(data)
            await reader.next_event()


async def test_a_malformed_event_is_counted_logged_once_and_skipped(
    runtime: Runtime, client: ActivityClient, caplog: pytest.LogCaptureFixture
) -> None:
    script = runtime.activity
    async with reading(client, endpoint_of(runtime), script) as reader:
        for _ in range(3):
            script.emit({"type": "confirmation_request", "toolName": "bash"}, "c1")
        script.complete("c1")
        assert await reader.next_event() == Completed("c1")
    assert client.malformed == 3
    [record] = [r for r in caplog.records if "malformed" in r.getMessage()]
    assert "confirmation_request without a usable requestId" in record.getMessage()


async def test_a_request_comes_with_its_details(runtime: Runtime, client: ActivityClient) -> None:
    script = runtime.activity
    async with reading(client, endpoint_of(runtime), script) as reader:
        request_id = script.confirmation("c1", "bash", {"command": "ls"}, risk="high")
        event = await reader.next_event()
    assert isinstance(event, Requested)
    assert event.request_id == request_id
    assert isinstance(event.request, Confirmation)
    assert event.request.tool == "bash"


# -- the pending list ------------------------------------------------------------------------


async def test_the_pending_list_reads_details_only_for_items_the_caller_lacks(
    vellum_peer: VellumPeer, runtime: Runtime, client: ActivityClient
) -> None:
    script = runtime.activity
    known = script.confirmation("c1", "bash", {"command": "ls"}, risk="high")
    unknown = script.question("c2")
    listing = await client.pending(endpoint_of(runtime), (), known={known})
    assert listing.complete
    assert not listing.per_conversation
    by_id = {item.request_id: item for item in listing.items}
    assert by_id[known] == PendingItem(known, "c1", InteractionKind.CONFIRMATION, "bash", "high")
    assert isinstance(by_id[unknown].request, Questions)
    asked = [r.query for r in vellum_peer.requests_to(runtime.path + "/v1/pending-interactions")]
    assert asked == [{}, {"conversationId": "c2"}]


async def test_an_older_runtime_is_asked_per_conversation(
    runtime: Runtime, client: ActivityClient
) -> None:
    script = runtime.activity
    script.legacy = True
    first = script.confirmation("c1", "bash", {"command": "ls"})
    script.secret("c2", "github", "token", "GitHub token")
    listing = await client.pending(endpoint_of(runtime), ["c1"])
    assert (listing.complete, listing.per_conversation) == (True, True)
    [item] = listing.items
    assert item.request_id == first
    assert isinstance(item.request, Confirmation)
    assert item.request.input_json == '{\n  "command": "ls"\n}'


async def test_a_conversation_that_fails_makes_the_list_incomplete(
    runtime: Runtime, client: ActivityClient
) -> None:
    script = runtime.activity
    script.legacy = True
    script.confirmation("c2", "bash", {})
    script.pending_replies.append(json_reply({"error": "conversationId is required"}, status=400))
    script.pending_replies.append(json_reply({"error": "boom"}, status=500))
    listing = await client.pending(endpoint_of(runtime), ["c1", "c2"])
    assert not listing.complete
    assert [item.conversation for item in listing.items] == ["c2"]


async def test_a_garbled_pending_list_is_an_error(runtime: Runtime, client: ActivityClient) -> None:
    runtime.activity.pending_replies.append(json_reply({"interactions": "many"}))
    with pytest.raises(ActivityError, match="list of interactions"):
        await client.pending(endpoint_of(runtime), ())


# -- answers ---------------------------------------------------------------------------------


async def test_allow_and_deny_send_exactly_the_decision(
    runtime: Runtime, client: ActivityClient
) -> None:
    script = runtime.activity
    first = script.confirmation("c1", "bash", {})
    second = script.confirmation("c1", "bash", {})
    endpoint = endpoint_of(runtime)
    kind = InteractionKind.CONFIRMATION
    assert await client.answer(endpoint, interaction(first, kind), Allow(Decision.ALLOW)) is (
        Outcome.ACCEPTED
    )
    assert await client.answer(endpoint, interaction(second, kind), Allow(Decision.DENY)) is (
        Outcome.ACCEPTED
    )
    assert [(a.endpoint, dict(a.body)) for a in script.answers] == [
        ("confirm", {"requestId": first, "decision": "allow"}),
        ("confirm", {"requestId": second, "decision": "deny"}),
    ]


async def test_always_allow_posts_the_trust_rule_then_the_confirmation(
    runtime: Runtime, client: ActivityClient
) -> None:
    script = runtime.activity
    request_id = script.confirmation("c1", "bash", {}, patterns=["bash:npm *"], scopes=["/srv"])
    listing = await client.pending(endpoint_of(runtime), ())
    [item] = listing.items
    asked = interaction(request_id, InteractionKind.CONFIRMATION, item.request)
    answer = Allow(Decision.ALLOW, pattern="bash:npm *", scope="/srv")
    assert await client.answer(endpoint_of(runtime), asked, answer) is Outcome.ACCEPTED
    assert [(a.endpoint, dict(a.body)) for a in script.answers] == [
        (
            "trust-rules",
            {
                "requestId": request_id,
                "pattern": "bash:npm *",
                "scope": "/srv",
                "decision": "allow",
            },
        ),
        ("confirm", {"requestId": request_id, "decision": "allow"}),
    ]


async def test_a_pattern_the_request_does_not_offer_is_refused_before_sending(
    runtime: Runtime, client: ActivityClient
) -> None:
    request = Confirmation(tool="bash", input_json="{}")
    asked = interaction("r1", InteractionKind.CONFIRMATION, request)
    with pytest.raises(AnswerRefused, match="is not among its patterns"):
        await client.answer(endpoint_of(runtime), asked, Allow(Decision.ALLOW, pattern="*"))
    assert runtime.activity.answers == []


async def test_questions_get_one_response_each_in_order_with_skips(
    runtime: Runtime, client: ActivityClient
) -> None:
    script = runtime.activity
    request_id = script.question(
        "c1",
        [
            {"id": "q1", "question": "Which?", "options": [{"id": "a", "label": "A"}]},
            {"id": "q2", "question": "Why?", "options": []},
            {"id": "q3", "question": "When?", "options": []},
        ],
    )
    [item] = (await client.pending(endpoint_of(runtime), ())).items
    asked = interaction(request_id, InteractionKind.QUESTION, item.request)
    reply = Reply((TextAnswer("q3", "now"), OptionAnswer("q1", "a")))
    assert await client.answer(endpoint_of(runtime), asked, reply) is Outcome.ACCEPTED
    [answer] = script.answers
    assert dict(answer.body) == {
        "requestId": request_id,
        "kind": "submit",
        "responses": [
            {"questionId": "q1", "kind": "option", "optionId": "a"},
            {"questionId": "q2", "kind": "skip"},
            {"questionId": "q3", "kind": "free_text", "text": "now"},
        ],
    }


async def test_closing_a_question_batch(runtime: Runtime, client: ActivityClient) -> None:
    script = runtime.activity
    request_id = script.question("c1")
    asked = interaction(request_id, InteractionKind.QUESTION)
    assert await client.answer(endpoint_of(runtime), asked, Reply(close=True)) is Outcome.ACCEPTED
    assert dict(script.answers[0].body) == {"requestId": request_id, "kind": "close"}


async def test_a_secret_is_sent_with_its_delivery(runtime: Runtime, client: ActivityClient) -> None:
    script = runtime.activity
    request_id = script.secret("c1", "github", "token", "GitHub token")
    asked = interaction(request_id, InteractionKind.SECRET)
    answer = Secret(SECRET_VALUE, "transient_send")
    assert await client.answer(endpoint_of(runtime), asked, answer) is Outcome.ACCEPTED
    assert dict(script.answers[0].body) == {
        "requestId": request_id,
        "value": SECRET_VALUE,
        "delivery": "transient_send",
    }


async def test_an_answer_someone_else_gave_first_is_already_answered(
    runtime: Runtime, client: ActivityClient
) -> None:
    script = runtime.activity
    request_id = script.confirmation("c1", "bash", {})
    script.resolve(request_id)
    asked = interaction(request_id, InteractionKind.CONFIRMATION)
    outcome = await client.answer(endpoint_of(runtime), asked, Allow(Decision.ALLOW))
    assert outcome is Outcome.ALREADY_ANSWERED


async def test_not_the_guardian_is_refused_in_one_line(
    runtime: Runtime, client: ActivityClient
) -> None:
    script = runtime.activity
    script.guardian = False
    asked = interaction(script.confirmation("c1", "bash", {}), InteractionKind.CONFIRMATION)
    with pytest.raises(AnswerRefused, match=r"^kit: refused: roost is not the guardian here: Only"):
        await client.answer(endpoint_of(runtime), asked, Allow(Decision.ALLOW))


async def test_an_answer_of_the_wrong_kind_is_refused_before_sending(
    runtime: Runtime, client: ActivityClient
) -> None:
    asked = interaction("r1", InteractionKind.QUESTION)
    with pytest.raises(AnswerRefused, match="is a question: it is not answered with allow or deny"):
        await client.answer(endpoint_of(runtime), asked, Allow(Decision.ALLOW))


@pytest.mark.parametrize(
    "refusal",
    [
        lambda: json_reply({"error": f"bad value {SECRET_VALUE}"}, status=400),
        lambda: json_reply({"detail": SECRET_VALUE}, status=403),
        lambda: json_reply({"accepted": False, "message": SECRET_VALUE}),
        lambda: PeerReply(delay=30.0),
    ],
)
async def test_a_secret_s_value_is_in_no_error_and_no_log_record(
    runtime: Runtime,
    client: ActivityClient,
    caplog: pytest.LogCaptureFixture,
    refusal: Callable[[], PeerReply],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("services.activity.client.REQUEST_TIMEOUT", 0.5)
    caplog.set_level(logging.DEBUG)
    script = runtime.activity
    script.answer_replies.append(refusal())
    asked = interaction(script.secret("c1", "github", "token", "t"), InteractionKind.SECRET)
    with pytest.raises(AnswerRefused) as raised:
        await client.answer(endpoint_of(runtime), asked, Secret(SECRET_VALUE))
    assert SECRET_VALUE not in str(raised.value)
    assert SECRET_VALUE not in repr(raised.value)
    assert SECRET_VALUE not in "".join(_chain(raised.value))
    assert SECRET_VALUE not in caplog.text


def _chain(error: BaseException | None) -> Iterator[str]:
    """The texts of an exception and every one it was raised from or during."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield str(error)
        yield repr(error)
        error = error.__cause__ or (None if error.__suppress_context__ else error.__context__)


async def test_an_unreachable_runtime_is_an_answer_refused(client: ActivityClient) -> None:
    with refused_url() as url:
        endpoint = RuntimeEndpoint("a", "gone", url, False, BearerAuth(lambda: None))
        asked = interaction("r1", InteractionKind.CONFIRMATION)
        with pytest.raises(AnswerRefused, match=r"^gone: the answer was not sent: unreachable"):
            await client.answer(endpoint, asked, Allow(Decision.ALLOW))


async def test_an_endless_line_costs_no_more_than_its_cap(
    runtime: Runtime, client: ActivityClient
) -> None:
    """32 MiB without a line end: the stream ends at the 1 MiB cap, holding about that much."""
    flood = flood_reply(b"data: ", b"x" * 4096, content_type="text/event-stream")
    runtime.activity.stream_replies.append(flood)
    tracemalloc.start()
    try:
        with pytest.raises(StreamError, match="line larger than 1 MiB"):
            async for _ in client.events(endpoint_of(runtime), "c"):
                pass
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20


async def test_requests_read_a_refused_bearer_again_once(
    vellum_peer: VellumPeer, runtime: Runtime, client: ActivityClient
) -> None:
    tokens = iter(["stale-token-000", TOKEN])
    listing = await client.pending(endpoint_of(runtime, lambda: next(tokens)), ())
    assert listing.items == ()
    sent = [
        r.headers["authorization"]
        for r in vellum_peer.requests_to(runtime.path + "/v1/pending-interactions")
    ]
    assert sent == ["Bearer stale-token-000", f"Bearer {TOKEN}"]


class ApiKey:
    """Platform headers for a managed assistant: an API key."""

    async def headers(self) -> Mapping[str, str]:
        return {"Authorization": "Bearer vak_test_key"}

    async def refresh(self) -> Mapping[str, str]:
        return await self.headers()


async def test_a_managed_assistant_is_reached_through_its_per_assistant_paths(
    vellum_peer: VellumPeer, client: ActivityClient
) -> None:
    vellum_peer.platform.api_keys.add("vak_test_key")
    script = vellum_peer.managed_activity("asst-9")
    endpoint = RuntimeEndpoint("asst-9", "cloudy", vellum_peer.url, True, ApiKey())
    async with reading(client, endpoint, script) as reader:
        script.complete("c1")
        assert await reader.next_event() == Completed("c1")
    request_id = script.confirmation("c1", "bash", {})
    asked = interaction(request_id, InteractionKind.CONFIRMATION)
    assert await client.answer(endpoint, asked, Allow(Decision.ALLOW)) is Outcome.ACCEPTED
    paths = {request.path for request in vellum_peer.requests}
    assert {"/v1/assistants/asst-9/events", "/v1/assistants/asst-9/confirm"} <= paths
