"""The runtime's event stream read into events (services/activity/events.py): SSE framing, the
envelope of each message type roost uses, tolerance of everything else, and hostile input."""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import AsyncIterator, Mapping

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.activity.events import (
    HEARTBEAT,
    Completed,
    EventError,
    Failed,
    Frame,
    Notified,
    PhaseChanged,
    Requested,
    Resolved,
    SseParser,
    parse_envelope,
    parse_frame,
    request_of,
)
from services.activity.model import (
    Choice,
    Confirmation,
    Diff,
    InteractionKind,
    Question,
    Questions,
    SecretRequest,
    TrustOption,
)
from services.core.http import AnswerTooLarge, sse_lines
from services.core.safe_text import is_printable


def envelope(message: Mapping[str, object], conversation: str | None = "conv-1") -> str:
    body: dict[str, object] = {
        "id": "e1",
        "assistantId": "a1",
        "emittedAt": "2026-12-02T19:00:00Z",
        "message": message,
    }
    if conversation is not None:
        body["conversationId"] = conversation
    return json.dumps(body)


def frames(lines: list[str]) -> list[Frame]:
    parser = SseParser()
    return [frame for frame in map(parser.feed, lines) if frame is not None]


CONFIRMATION = {
    "type": "confirmation_request",
    "requestId": "req-1",
    "toolName": "bash",
    "input": {"command": "rm -rf build", "cwd": "/srv"},
    "riskLevel": "high",
    "riskReason": "deletes files",
    "executionTarget": "host",
    "allowlistOptions": [
        {"label": "rm -rf build", "description": "this command", "pattern": "rm -rf build"},
        {"label": "no pattern"},
    ],
    "scopeOptions": [{"label": "this project", "scope": "/srv"}],
    "diff": {"filePath": "a.txt", "oldContent": "a\n", "newContent": "b\n", "isNewFile": False},
    "persistentDecisionsAllowed": True,
    "toolUseId": "tu-1",
    "somethingNew": {"tolerated": True},
}


# -- framing ---------------------------------------------------------------------------------


def test_an_event_is_its_data_dispatched_by_a_blank_line() -> None:
    lines = ["event: assistant_event", "id: 7", "data: {}", ""]
    assert frames(lines) == [Frame("assistant_event", "7", "{}")]


def test_multi_line_data_is_joined_with_newlines_and_one_leading_space_is_dropped() -> None:
    lines = ["data:one", "data:  two", "data", ""]
    assert frames(lines) == [Frame("message", "", "one\n two\n")]


def test_a_comment_is_a_heartbeat_at_once_and_leaves_the_event_being_read_alone() -> None:
    lines = ["data: a", ": heartbeat", "data: b", ""]
    assert frames(lines) == [HEARTBEAT, Frame("message", "", "a\nb")]


def test_a_blank_line_without_data_dispatches_nothing_and_forgets_the_event_name() -> None:
    lines = ["event: ping", "", "data: x", "", "retry: 10", "unknown: y", ""]
    assert frames(lines) == [Frame("message", "", "x")]


def test_the_last_event_id_persists_and_one_with_a_nul_is_ignored() -> None:
    lines = ["id: 1", "data: a", "", "data: b", "", "id: 2\0", "data: c", ""]
    assert [frame.id for frame in frames(lines)] == ["1", "1", "1"]


def test_only_assistant_events_and_plain_messages_are_parsed() -> None:
    data = envelope({"type": "message_complete"})
    assert parse_frame(Frame("assistant_event", "", data)) == Completed("conv-1")
    assert parse_frame(Frame("message", "", data)) == Completed("conv-1")
    assert parse_frame(Frame("other", "", data)) is None
    assert parse_frame(HEARTBEAT) is None


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(max_size=40), max_size=40))
def test_any_lines_make_frames_and_nothing_else(lines: list[str]) -> None:
    for frame in frames(lines):
        assert isinstance(frame, Frame)


def streamed(chunks: list[bytes]) -> httpx.Response:
    async def body() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield chunk

    return httpx.Response(200, content=body(), request=httpx.Request("GET", "http://127.0.0.1:9"))


async def read_all(chunks: list[bytes]) -> list[object]:
    """Lines, frames and events as the client reads them; only EventError may interrupt."""
    parser = SseParser()
    seen: list[object] = []
    async for line in sse_lines(streamed(chunks), max_line=1 << 20, max_event=4 << 20):
        frame = parser.feed(line)
        if frame is not None:
            try:
                seen.append(parse_frame(frame))
            except EventError:
                seen.append("malformed")
    return seen


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=200), max_size=20))
async def test_any_bytes_are_read_without_an_unexpected_exception(chunks: list[bytes]) -> None:
    with contextlib.suppress(AnswerTooLarge):
        await read_all(chunks)


PIECES = [
    b"event: assistant_event\n",
    b"id: 1\r\n",
    b": heartbeat\n",
    b"\n",
    b"data: ",
    envelope({"type": "message_complete"}).encode(),
    envelope(CONFIRMATION).encode(),
    b'{"message": {"type": "error"}}',
    b'{"message": {"type": "assistant_activity_state", "activityVersion": "x"}}',
    b"\r",
    b"\x1b[31m\xff\xfe",
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=40), st.integers(1, 50))
async def test_streams_built_from_real_pieces_yield_events_or_malformed_only(
    pieces: list[bytes], size: int
) -> None:
    data = b"".join(pieces)
    chunks = [data[at : at + size] for at in range(0, len(data), size)]
    for seen in await read_all(chunks):
        assert (
            seen is None or seen == "malformed" or isinstance(seen, Completed | Requested | Failed)
        )


# -- envelopes -------------------------------------------------------------------------------


def test_an_activity_state_is_a_phase_change() -> None:
    message = {
        "type": "assistant_activity_state",
        "conversationId": "conv-2",
        "activityVersion": 12,
        "phase": "tool_running",
        "anchor": "assistant_turn",
        "reason": "tool_use_start",
        "requestId": "r-9",
        "statusText": "Running the test suite",
    }
    assert parse_envelope(envelope(message)) == PhaseChanged(
        "conv-2", 12, "tool_running", "tool_use_start", "Running the test suite", "r-9"
    )


def test_a_confirmation_request_carries_everything_to_decide_on() -> None:
    event = parse_envelope(envelope(CONFIRMATION))
    assert isinstance(event, Requested)
    assert (event.request_id, event.conversation, event.kind) == (
        "req-1",
        "conv-1",
        InteractionKind.CONFIRMATION,
    )
    assert event.request == Confirmation(
        tool="bash",
        input_json='{\n  "command": "rm -rf build",\n  "cwd": "/srv"\n}',
        risk="high",
        risk_reason="deletes files",
        execution_target="host",
        patterns=(TrustOption("rm -rf build", "rm -rf build", "this command"),),
        scopes=(TrustOption("this project", "/srv"),),
        persistent_decisions_allowed=True,
        diff=Diff("a.txt", "a\n", "b\n", False),
    )


def test_a_question_batch_is_read_from_questions_and_the_flat_mirror_is_ignored() -> None:
    message = {
        "type": "question_request",
        "requestId": "q-req",
        "questions": [
            {
                "id": "q1",
                "question": "Which draft?",
                "options": [{"id": "a", "label": "Short"}, {"id": "b", "label": "Long"}],
            },
            {"id": "q2", "question": "Why?", "options": [], "freeTextPlaceholder": "because"},
        ],
        "question": "Which draft?",
        "options": [{"id": "a", "label": "Short"}],
    }
    event = parse_envelope(envelope(message, conversation=None))
    assert isinstance(event, Requested)
    assert event.conversation == ""
    assert event.request == Questions(
        (
            Question("q1", "Which draft?", options=(Choice("a", "Short"), Choice("b", "Long"))),
            Question("q2", "Why?", placeholder="because"),
        )
    )


def test_an_old_runtime_s_flat_question_is_question_q1() -> None:
    request = request_of(
        InteractionKind.QUESTION, {"question": "Go?", "options": [{"id": "y", "label": "Yes"}]}
    )
    assert request == Questions((Question("q1", "Go?", options=(Choice("y", "Yes"),)),))


def test_a_pending_question_s_entries_are_its_questions() -> None:
    request = request_of(
        InteractionKind.QUESTION, {"requestId": "r", "entries": [{"id": "q1", "question": "?"}]}
    )
    assert request == Questions((Question("q1", "?"),))


def test_a_secret_request_names_its_service_and_label() -> None:
    message = {
        "type": "secret_request",
        "requestId": "s-1",
        "service": "github",
        "field": "token",
        "label": "GitHub token",
    }
    event = parse_envelope(envelope(message))
    assert isinstance(event, Requested)
    assert event.request == SecretRequest("github", "token", "GitHub token")


@pytest.mark.parametrize(
    ("message", "event"),
    [
        (
            {"type": "interaction_resolved", "requestId": "r", "state": "approved", "kind": "x"},
            Resolved("r", "conv-1", "approved", "x"),
        ),
        ({"type": "error", "message": "model overloaded"}, Failed("conv-1", "model overloaded")),
        ({"type": "error"}, Failed("conv-1", "error")),
        ({"type": "message_complete"}, Completed("conv-1")),
        (
            {"type": "notification_intent", "title": "Done", "body": "Tests pass"},
            Notified("conv-1", "Done", "Tests pass"),
        ),
        ({"type": "assistant_text_delta", "text": "hello"}, None),
        ({"type": "something_new", "conversationId": "c"}, None),
    ],
)
def test_each_used_type_and_others_ignored(message: dict[str, object], event: object) -> None:
    assert parse_envelope(envelope(message)) == event


def test_the_message_s_conversation_wins_over_the_envelope_s() -> None:
    data = envelope({"type": "message_complete", "conversationId": "inner"}, "outer")
    assert parse_envelope(data) == Completed("inner")


def test_text_deltas_are_not_parsed_at_all() -> None:
    # Not JSON, but no wanted type name in it: dropped unread, not malformed.
    assert (
        parse_envelope('{"message": {"type": "assistant_text_delta", "text": "\\"error\\"') is None
    )


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ('{"message": {"type": "error"', "not JSON"),
        ('["error"]', "not a JSON object"),
        ('{"message": "error"}', "without a message type"),
        ('{"message": {"type": "confirmation_request", "toolName": "x"}}', "requestId"),
        ('{"message": {"type": "confirmation_request", "requestId": "r"}}', "toolName"),
        ('{"message": {"type": "secret_request", "requestId": "r"}}', "service"),
        ('{"message": {"type": "question_request", "requestId": "r"}}', "questions"),
        (
            '{"message": {"type": "question_request", "requestId": "r", "questions": [{}]}}',
            "usable id",
        ),
        (
            '{"message": {"type": "assistant_activity_state", "phase": "idle",'
            ' "activityVersion": true}}',
            "activityVersion",
        ),
        ('{"message": {"type": "assistant_activity_state", "activityVersion": 1}}', "phase"),
        ('{"message": {"type": "interaction_resolved", "requestId": "a\\u001bb"}}', "requestId"),
        ('{"message": {"type": "message_complete", "conversationId": 5}}', "conversationId"),
    ],
)
def test_a_malformed_message_of_a_used_type_is_an_event_error(data: str, problem: str) -> None:
    with pytest.raises(EventError, match=problem):
        parse_envelope(data)


def test_outside_text_is_made_printable_but_ids_sent_back_are_kept_exact() -> None:
    message = {
        **CONFIRMATION,
        "toolName": "ba\x1b]0;pwned\x07sh",
        "riskLevel": "high\u202e",
        "input": {"cmd": "echo \u202eevil"},
        "allowlistOptions": [
            {"label": "x", "pattern": "ok*"},
            {"label": "bad", "pattern": "a\x1bb"},
        ],
    }
    event = parse_envelope(envelope(message))
    assert isinstance(event, Requested)
    request = event.request
    assert isinstance(request, Confirmation)
    assert request.tool == "ba\\e]0;pwned\\x07sh"
    assert request.risk == "high\\u202e"
    assert "\u202e" not in request.input_json
    assert request.patterns == (TrustOption("x", "ok*"),)


def test_a_version_that_is_a_whole_float_is_an_integer() -> None:
    message = {"type": "assistant_activity_state", "activityVersion": 3.0, "phase": "idle"}
    event = parse_envelope(envelope(message))
    assert isinstance(event, PhaseChanged)
    assert event.version == 3


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
TYPES = st.sampled_from(
    [
        "assistant_activity_state",
        "confirmation_request",
        "question_request",
        "secret_request",
        "interaction_resolved",
        "error",
        "message_complete",
        "notification_intent",
        "other",
    ]
)
FIELDS = st.sampled_from(
    [
        "requestId",
        "conversationId",
        "activityVersion",
        "phase",
        "toolName",
        "input",
        "questions",
        "entries",
        "question",
        "options",
        "service",
        "allowlistOptions",
        "scopeOptions",
        "diff",
        "title",
        "message",
    ]
)


@settings(max_examples=500, deadline=None)
@given(TYPES, st.dictionaries(FIELDS, JSON, max_size=8), JSON)
def test_any_message_of_any_type_parses_or_raises_event_error_only(
    kind: str, fields: dict[str, object], conversation: object
) -> None:
    data = json.dumps(
        {"conversationId": conversation, "message": {**fields, "type": kind}}, allow_nan=True
    )
    try:
        event = parse_envelope(data)
    except EventError:
        return
    assert all(is_printable(text.replace("\n", "")) for text in texts(event))


def texts(value: object) -> list[str]:
    """Every string in a value made of dataclasses and tuples."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, tuple):
        return [text for item in value for text in texts(item)]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [
            text
            for field in dataclasses.fields(value)
            for text in texts(getattr(value, field.name))
        ]
    return []


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_any_text_parses_or_raises_event_error_only(data: str) -> None:
    with contextlib.suppress(EventError):
        parse_envelope(data)


def test_deep_nesting_is_malformed_not_a_crash() -> None:
    deep = "[" * 100_000 + "]" * 100_000
    with pytest.raises(EventError):
        parse_envelope('{"message": {"type": "error"}, "x": ' + deep + "}")
