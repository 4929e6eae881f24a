"""The runtime's event stream read into typed events (docs/protocol.md §7).

`SseParser` turns the lines of a Server-Sent-Events stream (core/http.py `sse_lines` splits and
caps them) into frames; `parse_envelope` turns one frame's `data:` (an envelope
`{id, assistantId, conversationId?, emittedAt, message: {type, ...}}`) into an `Event`, or None
for the many message types roost does not use. `request_of` reads what an interaction asks,
from a `*_request` message or from the pending list's per-conversation view.

Most of a stream is text deltas roost ignores, so an envelope is parsed as JSON only when one of
the wanted type names appears in it as a JSON string (a runtime that escaped letters of a type
name would not be heard; none does). Unknown fields are tolerated everywhere; a wanted message
without what it must carry raises EventError, which names the type and the problem, never the
data. Every text that may reach a terminal goes through `printable`; ids that roost sends back
(request, question, option ids, trust patterns) are kept exact, so one that is not printable
makes its message malformed (or, for an option, leaves it out) rather than being altered.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

from services.activity.model import (
    Choice,
    Confirmation,
    Diff,
    InteractionKind,
    Question,
    Questions,
    Request,
    SecretRequest,
    TrustOption,
)
from services.core.safe_text import is_printable, printable

MAX_ID = 256
"""Characters in an id roost keeps and sends back (uuids are 36)."""


class EventError(ValueError):
    """A message of a type roost uses, without what it must carry."""


class Frame(NamedTuple):
    """One dispatched SSE frame. Comments (`: heartbeat`) are frames of their own. A tuple:
    one is made per event, and a tuple is made fastest."""

    event: str
    id: str
    data: str


HEARTBEAT = Frame("heartbeat", "", "")


class SseParser:
    """Lines in, frames out, as the SSE specification dispatches them: `data:` lines are joined
    with newlines and dispatched by a blank line (none without data), `event:` names the frame
    (`message` by default), `id:` is the last event id and persists, a single space after the
    colon is dropped, `retry:` and unknown fields are ignored. A comment line is a heartbeat,
    reported at once without disturbing the event being read."""

    __slots__ = ("_data", "_event", "_id", "_more")

    def __init__(self) -> None:
        self._event = ""
        self._id = ""
        self._data: str | None = None
        self._more: list[str] | None = None
        """The second and later data lines of a multi-line event (rare)."""

    def feed(self, line: str) -> Frame | None:
        if not line:
            return self._dispatch()
        if line[0] == ":":
            return HEARTBEAT
        # The three lines of every event first, without splitting them (the hot path).
        if line.startswith("data: "):
            name, value = "data", line[6:]
        elif line.startswith("event: "):
            name, value = "event", line[7:]
        elif line.startswith("id: "):
            name, value = "id", line[4:]
        else:
            name, _, value = line.partition(":")
            if value[:1] == " ":
                value = value[1:]
        if name == "data":
            if self._data is None:
                self._data = value
            elif self._more is None:
                self._more = [value]
            else:
                self._more.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._id = value
        return None

    def _dispatch(self) -> Frame | None:
        data, more, event = self._data, self._more, self._event
        self._data = self._more = None
        self._event = ""
        if data is None:
            return None
        if more is not None:
            data = "\n".join((data, *more))
        return Frame(event or "message", self._id, data)


@dataclass(frozen=True, slots=True)
class PhaseChanged:
    """`assistant_activity_state`: a conversation's phase (`idle`, `thinking`, `streaming`,
    `tool_running`, `awaiting_confirmation`, or one roost does not know yet)."""

    conversation: str
    version: int
    phase: str
    reason: str
    status_text: str
    request_id: str


@dataclass(frozen=True, slots=True)
class Requested:
    """`confirmation_request`, `question_request` or `secret_request`."""

    request_id: str
    conversation: str
    kind: InteractionKind
    request: Request


@dataclass(frozen=True, slots=True)
class Resolved:
    """`interaction_resolved`: the item is gone, whoever answered it."""

    request_id: str
    conversation: str
    state: str
    kind: str


@dataclass(frozen=True, slots=True)
class Failed:
    """`error`: a turn failed."""

    conversation: str
    message: str


@dataclass(frozen=True, slots=True)
class Completed:
    """`message_complete`: a turn ended."""

    conversation: str


@dataclass(frozen=True, slots=True)
class Notified:
    """`notification_intent`: something the assistant wants its user to see."""

    conversation: str
    title: str
    body: str


Event = PhaseChanged | Requested | Resolved | Failed | Completed | Notified

_FRAMES = frozenset({"message", "assistant_event"})
_REQUESTS = {
    "confirmation_request": InteractionKind.CONFIRMATION,
    "question_request": InteractionKind.QUESTION,
    "secret_request": InteractionKind.SECRET,
}
_WANTED = re.compile(
    r'"(?:assistant_activity_state|confirmation_request|question_request|secret_request'
    r'|interaction_resolved|error|message_complete|notification_intent)"'
)


def parse_frame(frame: Frame) -> Event | None:
    """The event a frame carries; None for heartbeats, other frame names and unused types."""
    if frame.event not in _FRAMES:
        return None
    return parse_envelope(frame.data)


def parse_envelope(data: str) -> Event | None:
    """The event in one envelope; None for a message type roost does not use. Raises EventError
    for an envelope that is not one, or a used message without what it must carry."""
    if _WANTED.search(data) is None:
        return None
    try:
        envelope = json.loads(data)
    except (ValueError, RecursionError):
        raise EventError("an event that is not JSON") from None
    if not isinstance(envelope, dict):
        raise EventError("an event that is not a JSON object")
    message = envelope.get("message")
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise EventError("an event without a message type")
    kind = message["type"]
    parse = _PARSERS.get(kind)
    if parse is None:
        return None
    conversation = _id(message, "conversationId", kind, required=False) or _id(
        envelope, "conversationId", kind, required=False
    )
    return parse(message, conversation, kind)


def _phase(message: Mapping[str, object], conversation: str, kind: str) -> Event:
    version = message.get("activityVersion")
    if isinstance(version, float) and version.is_integer():
        version = int(version)
    if not isinstance(version, int) or isinstance(version, bool):
        raise EventError(f"{kind} without an activityVersion")
    phase = message.get("phase")
    if not isinstance(phase, str) or not phase:
        raise EventError(f"{kind} without a phase")
    return PhaseChanged(
        conversation,
        version,
        printable(phase),
        text_field(message, "reason"),
        text_field(message, "statusText"),
        _id(message, "requestId", kind, required=False),
    )


def _request(message: Mapping[str, object], conversation: str, kind: str) -> Event:
    request_id = _id(message, "requestId", kind)
    interaction = _REQUESTS[kind]
    return Requested(request_id, conversation, interaction, request_of(interaction, message))


def _resolved(message: Mapping[str, object], conversation: str, kind: str) -> Event:
    return Resolved(
        _id(message, "requestId", kind),
        conversation,
        text_field(message, "state"),
        text_field(message, "kind"),
    )


def _failed(message: Mapping[str, object], conversation: str, kind: str) -> Event:
    return Failed(conversation, text_field(message, "message") or "error")


def _completed(message: Mapping[str, object], conversation: str, kind: str) -> Event:
    return Completed(conversation)


def _notified(message: Mapping[str, object], conversation: str, kind: str) -> Event:
    return Notified(conversation, text_field(message, "title"), text_field(message, "body"))


_PARSERS = {
    "assistant_activity_state": _phase,
    "confirmation_request": _request,
    "question_request": _request,
    "secret_request": _request,
    "interaction_resolved": _resolved,
    "error": _failed,
    "message_complete": _completed,
    "notification_intent": _notified,
}


def request_of(kind: InteractionKind, payload: Mapping[str, object]) -> Request:
    """What an interaction asks, from its `*_request` message or the pending list's view of a
    conversation (`pendingConfirmation`, `pendingQuestion` with its `entries`, `pendingSecret`).
    Raises EventError when the payload lacks what the kind needs (a tool name, questions, a
    secret's service)."""
    if kind is InteractionKind.CONFIRMATION:
        return _confirmation(payload)
    if kind is InteractionKind.QUESTION:
        return _questions(payload)
    service = text_field(payload, "service")
    if not service:
        raise EventError("a secret request without a service")
    return SecretRequest(service, text_field(payload, "field"), text_field(payload, "label"))


def _confirmation(payload: Mapping[str, object]) -> Confirmation:
    tool = text_field(payload, "toolName")
    if not tool:
        raise EventError("a confirmation request without a toolName")
    allowed = payload.get("persistentDecisionsAllowed")
    return Confirmation(
        tool=tool,
        input_json=json_text(payload.get("input", {})),
        risk=text_field(payload, "riskLevel"),
        risk_reason=text_field(payload, "riskReason"),
        execution_target=text_field(payload, "executionTarget"),
        patterns=_options(payload.get("allowlistOptions"), "pattern"),
        scopes=_options(payload.get("scopeOptions"), "scope"),
        persistent_decisions_allowed=allowed is not False,
        diff=_diff(payload.get("diff")),
    )


def _options(value: object, key: str) -> tuple[TrustOption, ...]:
    """Trust options whose value can be sent back exactly; others are left out."""
    if not isinstance(value, list):
        return ()
    return tuple(
        TrustOption(
            text_field(option, "label") or option[key],
            option[key],
            text_field(option, "description"),
        )
        for option in value
        if isinstance(option, dict) and sendable(option.get(key))
    )


def _diff(value: object) -> Diff | None:
    if not isinstance(value, dict):
        return None
    return Diff(
        text_field(value, "filePath"),
        _lines(value.get("oldContent")),
        _lines(value.get("newContent")),
        value.get("isNewFile") is True,
    )


def _questions(payload: Mapping[str, object]) -> Questions:
    entries = payload.get("questions")
    if not isinstance(entries, list) or not entries:
        entries = payload.get("entries")
    if not isinstance(entries, list) or not entries:
        # The flat fields older runtimes send alone: one question, answered as `q1` as the
        # runtime numbers a batch it synthesizes from them.
        if not isinstance(payload.get("question"), str):
            raise EventError("a question request without questions")
        entries = [{**payload, "id": "q1"}]
    return Questions(tuple(_question(entry) for entry in entries))


def _question(entry: object) -> Question:
    if not isinstance(entry, dict):
        raise EventError("a question that is not an object")
    options = entry.get("options")
    return Question(
        id=_id(entry, "id", "question"),
        question=text_field(entry, "question"),
        description=text_field(entry, "description"),
        options=tuple(
            Choice(option["id"], text_field(option, "label"), text_field(option, "description"))
            for option in (options if isinstance(options, list) else ())
            if isinstance(option, dict) and sendable(option.get("id"))
        ),
        placeholder=text_field(entry, "freeTextPlaceholder"),
    )


def sendable(value: object) -> bool:
    """Whether `value` (an id from the runtime) can be kept, shown and sent back as it is."""
    return isinstance(value, str) and 0 < len(value) <= MAX_ID and is_printable(value)


def _id(payload: Mapping[str, object], key: str, kind: str, *, required: bool = True) -> str:
    value = payload.get(key)
    if value in (None, "") and not required:
        return ""
    if not sendable(value):
        raise EventError(f"{kind} without a usable {key}")
    assert isinstance(value, str)
    return value


def text_field(payload: Mapping[str, object], key: str) -> str:
    """A one-line text field, safe to show; empty when missing or not a string."""
    value = payload.get(key)
    return printable(value) if isinstance(value, str) else ""


def _lines(value: object) -> str:
    """A text of several lines (a file's content), safe to show."""
    return printable(value, keep_newlines=True) if isinstance(value, str) else ""


def json_text(value: object) -> str:
    """A tool's input as indented JSON, whole and safe to show (JSON escapes the controls in
    its strings; `printable` takes care of bidi overrides)."""
    if isinstance(value, str):
        return _lines(value)
    try:
        text = json.dumps(value, indent=2, ensure_ascii=False)
    except RecursionError:
        raise EventError("a tool input nested too deeply") from None
    return printable(text, keep_newlines=True)
