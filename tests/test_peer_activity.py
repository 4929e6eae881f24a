"""The loopback Vellum plays docs/protocol.md §7 (tests/peers/activity.py): what the activity
lanes code against, checked here with a plain HTTP client."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
import pytest

from tests.peers.vellum import Runtime, VellumPeer, json_reply

BEARER = "guardian-token"
API_KEY = "vak_activity-7"


@dataclass
class Frame:
    event: str = ""
    id: str = ""
    data: list[str] = field(default_factory=list)

    @property
    def envelope(self) -> dict[str, Any]:
        value = json.loads("\n".join(self.data))
        assert isinstance(value, dict)
        return value

    @property
    def message(self) -> dict[str, Any]:
        message = self.envelope["message"]
        assert isinstance(message, dict)
        return message


class Stream:
    """An open `GET events`, read line by line."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.lines = response.iter_lines()

    def frame(self) -> Frame | None:
        """The next frame (heartbeats skipped); None at the end of the stream."""
        frame = Frame()
        for line in self.lines:
            if line.startswith("event: "):
                frame.event = line.removeprefix("event: ")
            elif line.startswith("id: "):
                frame.id = line.removeprefix("id: ")
            elif line.startswith("data: "):
                frame.data.append(line.removeprefix("data: "))
            elif line == "" and frame.data:
                return frame
        return None

    def heartbeat(self) -> None:
        """Read up to the next heartbeat."""
        for line in self.lines:
            assert not line.startswith("data:"), f"a frame, not a heartbeat: {line}"
            if line == ": heartbeat":
                return
        raise AssertionError("the stream ended")

    def messages(self, count: int) -> list[dict[str, Any]]:
        frames = [self.frame() for _ in range(count)]
        return [frame.message for frame in frames if frame is not None]


@pytest.fixture
def runtime(vellum_peer: VellumPeer) -> Runtime:
    return vellum_peer.runtime("kit", bearer=BEARER)


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {BEARER}"}
    with httpx.Client(headers=headers, timeout=5.0) as client:
        yield client


@pytest.fixture
def stream(runtime: Runtime, http: httpx.Client) -> Iterator[Stream]:
    """An open event stream of `runtime`, registered before the test emits anything."""
    with http.stream("GET", f"{runtime.base_url}/v1/events") as response:
        assert response.status_code == 200
        runtime.activity.wait_for_streams(1)
        yield Stream(response)


def post(http: httpx.Client, runtime: Runtime, endpoint: str, body: object) -> httpx.Response:
    return http.post(f"{runtime.base_url}/v1/{endpoint}", json=body)


def pending(http: httpx.Client, runtime: Runtime, **query: str) -> dict[str, Any]:
    response = http.get(f"{runtime.base_url}/v1/pending-interactions", params=query)
    assert response.status_code == 200, response.text
    value = response.json()
    assert isinstance(value, dict)
    return value


def test_frames_carry_an_envelope_and_idle_streams_get_heartbeats(
    vellum_peer: VellumPeer, runtime: Runtime, http: httpx.Client
) -> None:
    script = runtime.activity
    script.heartbeat_seconds = 0.05
    headers = {"X-Vellum-Client-Id": "c0ffee", "X-Vellum-Interface-Id": "cli"}
    with http.stream("GET", f"{runtime.base_url}/v1/events", headers=headers) as response:
        assert response.headers["content-type"] == "text/event-stream"
        script.wait_for_streams(1)
        stream = Stream(response)
        stream.heartbeat()
        stream.heartbeat()
        script.activity("conv-1", "tool_running", status_text="Running the tests")
        frame = stream.frame()
    assert frame is not None and frame.event == "assistant_event"
    envelope = frame.envelope
    assert envelope["id"] == frame.id
    assert envelope["assistantId"] == "kit" and envelope["conversationId"] == "conv-1"
    assert datetime.fromisoformat(envelope["emittedAt"]).tzinfo is not None
    assert envelope["message"] == {
        "type": "assistant_activity_state",
        "conversationId": "conv-1",
        "activityVersion": 1,
        "phase": "tool_running",
        "anchor": "assistant_turn",
        "reason": "",
        "statusText": "Running the tests",
    }
    [request] = vellum_peer.requests_to(f"{runtime.path}/v1/events")
    assert request.headers["x-vellum-client-id"] == "c0ffee"
    assert request.headers["x-vellum-interface-id"] == "cli"


def test_versions_rise_per_conversation_and_a_stale_one_goes_out_as_given(
    runtime: Runtime, stream: Stream
) -> None:
    script = runtime.activity
    assert script.activity("a", "thinking") == 1
    assert script.activity("a", "streaming") == 2
    assert script.activity("b", "thinking") == 1
    assert script.activity("a", "thinking", version=1) == 1  # late and stale
    assert script.activity("a", "idle", reason="message_complete") == 3
    versions = [(m["conversationId"], m["activityVersion"]) for m in stream.messages(5)]
    assert versions == [("a", 1), ("a", 2), ("b", 1), ("a", 1), ("a", 3)]


def test_a_confirmation_is_pending_announced_and_answered_once(
    runtime: Runtime, http: httpx.Client, stream: Stream
) -> None:
    script = runtime.activity
    diff = {
        "filePath": "a.py",
        "oldContent": "x = 1\n",
        "newContent": "x = 2\n",
        "isNewFile": False,
    }
    request_id = script.confirmation(
        "conv-1",
        "file_edit",
        {"path": "a.py"},
        risk="high",
        risk_reason="writes a file",
        execution_target="host",
        diff=diff,
    )
    request, awaiting = stream.messages(2)
    assert request["type"] == "confirmation_request" and request["requestId"] == request_id
    assert request["input"] == {"path": "a.py"} and request["diff"] == diff
    assert request["riskLevel"] == "high" and request["riskReason"] == "writes a file"
    assert request["executionTarget"] == "host"
    assert request["allowlistOptions"][0]["pattern"] == "file_edit:*"
    assert awaiting["phase"] == "awaiting_confirmation"
    assert awaiting["reason"] == "confirmation_requested"
    assert awaiting["requestId"] == request_id
    assert pending(http, runtime)["interactions"] == [
        {
            "requestId": request_id,
            "conversationId": "conv-1",
            "kind": "confirmation",
            "toolName": "file_edit",
            "riskLevel": "high",
        }
    ]
    view = pending(http, runtime, conversationId="conv-1")
    assert view["pendingConfirmation"]["input"] == {"path": "a.py"}
    assert view["pendingConfirmation"]["diff"] == diff
    assert view["pendingQuestion"] is None and view["pendingSecret"] is None
    assert pending(http, runtime, conversationId="other")["pendingConfirmation"] is None

    bad = post(http, runtime, "confirm", {"requestId": request_id, "decision": "maybe"})
    assert bad.status_code == 400
    answered = post(http, runtime, "confirm", {"requestId": request_id, "decision": "deny"})
    assert answered.status_code == 200 and answered.json() == {"accepted": True}
    resolved, after = stream.messages(2)
    assert resolved == {
        "type": "interaction_resolved",
        "requestId": request_id,
        "conversationId": "conv-1",
        "state": "rejected",
        "kind": "confirmation",
    }
    assert after["reason"] == "confirmation_resolved" and after["phase"] == "thinking"
    assert pending(http, runtime)["interactions"] == []
    again = post(http, runtime, "confirm", {"requestId": request_id, "decision": "allow"})
    assert again.status_code == 404
    [answer] = script.answers
    assert (answer.endpoint, answer.request_id, answer.body["decision"]) == (
        "confirm",
        request_id,
        "deny",
    )


def test_a_trust_rule_must_name_offered_options_and_leaves_the_confirmation_waiting(
    runtime: Runtime, http: httpx.Client
) -> None:
    script = runtime.activity
    request_id = script.confirmation(
        "c", "bash", {"command": "ls"}, patterns=("bash:ls *",), scopes=("/work", "everywhere")
    )
    rule = {"requestId": request_id, "pattern": "bash:ls *", "scope": "/work", "decision": "allow"}
    assert post(http, runtime, "trust-rules", {**rule, "pattern": "bash:*"}).status_code == 400
    assert post(http, runtime, "trust-rules", {**rule, "scope": "/"}).status_code == 400
    assert post(http, runtime, "trust-rules", rule).status_code == 200
    assert [item.request_id for item in script.pending] == [request_id]
    confirm = {"requestId": request_id, "decision": "allow"}
    assert post(http, runtime, "confirm", confirm).status_code == 200
    assert [answer.endpoint for answer in script.answers] == ["trust-rules", "confirm"]
    assert script.pending == ()


QUESTIONS: list[dict[str, Any]] = [
    {
        "id": "db",
        "question": "Which database?",
        "options": [{"id": "pg", "label": "Postgres"}, {"id": "lite", "label": "SQLite"}],
    },
    {"id": "name", "question": "Its name?", "options": [], "freeTextPlaceholder": "name"},
]


def test_questions_are_answered_with_options_text_and_skips_or_closed(
    runtime: Runtime, http: httpx.Client, stream: Stream
) -> None:
    script = runtime.activity
    first = script.question("conv-2", QUESTIONS)
    [request] = stream.messages(1)
    assert request["questions"] == QUESTIONS
    assert (
        request["question"] == "Which database?" and request["options"] == QUESTIONS[0]["options"]
    )
    view = pending(http, runtime, conversationId="conv-2")
    assert view["pendingQuestion"] == {"requestId": first, "entries": QUESTIONS}
    assert pending(http, runtime)["interactions"] == [
        {"requestId": first, "conversationId": "conv-2", "kind": "question"}
    ]
    for responses in (
        [{"questionId": "db", "kind": "option", "optionId": "mongo"}],
        [{"questionId": "colour", "kind": "skip"}],
        [{"questionId": "name", "kind": "free_text"}],
    ):
        body = {"requestId": first, "kind": "submit", "responses": responses}
        assert post(http, runtime, "question-response", body).status_code == 400
    responses = [
        {"questionId": "db", "kind": "option", "optionId": "pg"},
        {"questionId": "name", "kind": "free_text", "text": "orders"},
    ]
    body = {"requestId": first, "kind": "submit", "responses": responses}
    answered = post(http, runtime, "question-response", body)
    assert answered.status_code == 200 and answered.json() == {"success": True}
    [resolved] = stream.messages(1)
    assert (resolved["state"], resolved["kind"]) == ("answered", "question")

    second = script.question("conv-2")
    stream.messages(1)
    closed = post(http, runtime, "question-response", {"requestId": second, "kind": "close"})
    assert closed.status_code == 200
    [resolved] = stream.messages(1)
    assert (resolved["requestId"], resolved["state"]) == (second, "cancelled")
    assert [answer.body for answer in script.answers] == [
        body,
        {"requestId": second, "kind": "close"},
    ]


def test_a_secret_arrives_and_is_resolved(
    runtime: Runtime, http: httpx.Client, stream: Stream
) -> None:
    script = runtime.activity
    request_id = script.secret("conv-3", "github", "token", "GitHub token")
    [request] = stream.messages(1)
    assert request == {
        "type": "secret_request",
        "requestId": request_id,
        "conversationId": "conv-3",
        "service": "github",
        "field": "token",
        "label": "GitHub token",
    }
    assert pending(http, runtime, conversationId="conv-3")["pendingSecret"]["service"] == "github"
    secret = {"requestId": request_id, "value": "hunter2", "delivery": "store"}
    assert post(http, runtime, "secret", {**secret, "delivery": "email"}).status_code == 400
    answered = post(http, runtime, "secret", secret)
    assert answered.status_code == 200 and answered.json() == {"accepted": True}
    [resolved] = stream.messages(1)
    assert (resolved["state"], resolved["kind"]) == ("answered", "secret")
    [answer] = script.answers
    assert answer.body["value"] == "hunter2"


def test_someone_else_answering_resolves_the_item_and_later_answers_get_404(
    runtime: Runtime, http: httpx.Client, stream: Stream
) -> None:
    script = runtime.activity
    request_id = script.confirmation("c", "bash", {"command": "make"})
    stream.messages(2)
    script.resolve(request_id)
    resolved, running = stream.messages(2)
    assert (resolved["requestId"], resolved["state"]) == (request_id, "approved")
    assert running["phase"] == "tool_running"
    confirm = {"requestId": request_id, "decision": "allow"}
    assert post(http, runtime, "confirm", confirm).status_code == 404
    unknown = {"requestId": "req-nobody", "value": "v", "delivery": "store"}
    assert post(http, runtime, "secret", unknown).status_code == 404
    # An answer of the wrong kind names nothing pending either.
    assert post(http, runtime, "secret", {**unknown, "requestId": request_id}).status_code == 404
    assert script.answers == []


def test_only_the_guardian_may_answer_and_only_with_its_bearer(
    runtime: Runtime, http: httpx.Client
) -> None:
    script = runtime.activity
    request_id = script.confirmation("c", "bash", {"command": "rm -rf build"})
    script.guardian = False
    confirm = {"requestId": request_id, "decision": "allow"}
    for endpoint in ("confirm", "trust-rules", "question-response", "secret"):
        assert post(http, runtime, endpoint, confirm).status_code == 403
    script.guardian = True
    stranger = httpx.post(f"{runtime.base_url}/v1/confirm", json=confirm, timeout=5.0)
    assert stranger.status_code == 401
    events = httpx.get(f"{runtime.base_url}/v1/events", timeout=5.0)
    assert events.status_code == 401
    assert script.answers == [] and len(script.pending) == 1


def test_an_older_runtime_lists_pending_items_per_conversation_only(
    runtime: Runtime, http: httpx.Client
) -> None:
    script = runtime.activity
    script.legacy = True
    request_id = script.question("conv-9")
    unfiltered = http.get(f"{runtime.base_url}/v1/pending-interactions")
    assert unfiltered.status_code == 400
    view = pending(http, runtime, conversationId="conv-9")
    assert view["pendingQuestion"]["requestId"] == request_id


def test_scripted_replies_come_first(runtime: Runtime, http: httpx.Client) -> None:
    script = runtime.activity
    busy = json_reply({"error": "Too many concurrent connections"}, status=503)
    script.stream_replies.append(busy)
    script.pending_replies.append(json_reply({}, status=500))
    script.answer_replies.append(json_reply({}, status=502))
    assert http.get(f"{runtime.base_url}/v1/events").status_code == 503
    assert http.get(f"{runtime.base_url}/v1/pending-interactions").status_code == 500
    assert post(http, runtime, "confirm", {"requestId": "x"}).status_code == 502
    assert pending(http, runtime) == {"interactions": []}


def test_the_per_assistant_path_form_serves_the_same_script(
    runtime: Runtime, http: httpx.Client
) -> None:
    script = runtime.activity
    base = f"{runtime.base_url}/v1/assistants/kit"
    with http.stream("GET", f"{base}/events") as response:
        script.wait_for_streams(1)
        request_id = script.confirmation("c", "bash", {"command": "ls"})
        assert Stream(response).messages(1)[0]["requestId"] == request_id
        listed = http.get(f"{base}/pending-interactions").json()["interactions"]
        assert [item["requestId"] for item in listed] == [request_id]
        confirm = {"requestId": request_id, "decision": "allow"}
        assert http.post(f"{base}/confirm", json=confirm).status_code == 200


def test_a_managed_assistant_is_served_at_the_platform_root(vellum_peer: VellumPeer) -> None:
    vellum_peer.platform.api_keys.add(API_KEY)
    script = vellum_peer.managed_activity("asst-7")
    assert vellum_peer.managed_activity("asst-7") is script
    base = f"{vellum_peer.url}/v1/assistants/asst-7"
    with httpx.Client(headers={"Authorization": f"Bearer {API_KEY}"}, timeout=5.0) as http:
        with http.stream("GET", f"{base}/events") as response:
            script.wait_for_streams(1)
            script.notify("Build finished", "all green")
            [message] = Stream(response).messages(1)
        assert message == {
            "type": "notification_intent",
            "title": "Build finished",
            "body": "all green",
        }
        assert http.get(f"{vellum_peer.url}/v1/assistants/asst-8/events").status_code == 404
    assert httpx.get(f"{base}/pending-interactions", timeout=5.0).status_code == 401


def test_errors_completions_unknown_messages_and_raw_bytes_go_out_as_scripted(
    runtime: Runtime, stream: Stream
) -> None:
    script = runtime.activity
    script.error("c", "model overloaded")
    script.complete("d")
    script.emit({"type": "mystery", "x": 1}, "c")
    script.raw(b"data: {broken\n\n")
    error, terminal, complete, idle, mystery = stream.messages(5)
    assert error == {"type": "error", "conversationId": "c", "message": "model overloaded"}
    assert (terminal["phase"], terminal["reason"]) == ("idle", "error_terminal")
    assert complete == {"type": "message_complete", "conversationId": "d"}
    assert (idle["phase"], idle["reason"]) == ("idle", "message_complete")
    assert mystery == {"type": "mystery", "x": 1}
    broken = stream.frame()
    assert broken is not None and broken.data == ["{broken"]


def test_dropped_streams_end_and_nothing_is_replayed(
    runtime: Runtime, http: httpx.Client, stream: Stream
) -> None:
    script = runtime.activity
    script.drop_streams()
    assert script.streams == 0
    assert stream.frame() is None
    script.activity("c", "thinking")  # while no stream is open: lost
    with http.stream("GET", f"{runtime.base_url}/v1/events") as response:
        script.wait_for_streams(1)
        script.activity("c", "streaming")
        [message] = Stream(response).messages(1)
    assert (message["phase"], message["activityVersion"]) == ("streaming", 2)
    assert script.opened == 2


def test_a_reader_that_keeps_up_gets_a_whole_flood(runtime: Runtime, stream: Stream) -> None:
    script = runtime.activity
    script.queue_size = 8
    flood = threading.Thread(target=script.flood, args=(200,), kwargs={"size": 64})
    flood.start()
    try:
        messages = stream.messages(200)
    finally:
        flood.join()
    assert [message["seq"] for message in messages] == list(range(200))
    assert script.dropped == 0 and script.streams == 1


def test_a_reader_too_slow_is_dropped(runtime: Runtime, stream: Stream) -> None:
    script = runtime.activity
    script.queue_size = 4
    script.drain_seconds = 0.05
    script.flood(400, size=128 * 1024)  # more than the socket buffers hold: the queue fills
    assert script.dropped == 1 and script.streams == 0
    received = 0
    while stream.frame() is not None:
        received += 1
    assert received < 400


def test_closing_the_peer_ends_every_open_stream() -> None:
    peer = VellumPeer()
    peer.start()
    runtime = peer.runtime("kit")
    managed = peer.managed_activity("asst-1")
    peer.platform.api_keys.add(API_KEY)
    headers = {"Authorization": f"Bearer {API_KEY}"}
    with (
        httpx.Client(timeout=5.0) as http,
        http.stream("GET", f"{runtime.base_url}/v1/events") as direct,
        http.stream("GET", f"{peer.url}/v1/assistants/asst-1/events", headers=headers) as platform,
    ):
        runtime.activity.wait_for_streams(1)
        managed.wait_for_streams(1)
        peer.close()  # returns only once every handler thread has ended
        assert Stream(direct).frame() is None and Stream(platform).frame() is None
    assert runtime.activity.streams == 0 and managed.streams == 0
