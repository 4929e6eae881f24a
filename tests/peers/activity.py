"""An assistant runtime's activity and interactions (docs/protocol.md §7) for the loopback Vellum
peer: the event stream, the pending list and the answer endpoints, scripted per test.

    script = vellum_peer.runtime("alpha", bearer="t").activity  # or peer.managed_activity(id)
    script.wait_for_streams(1, timeout=5)  # a client follows GET <rt>/v1/events
    script.activity("conv-1", "tool_running", status_text="Running the tests")
    request_id = script.confirmation("conv-1", "bash", {"command": "ls"}, risk="high")
    ...  # the client answers with POST <rt>/v1/confirm
    [answer] = script.answers

It behaves as the runtime does: a confirmation is pending AND announced on every stream (with an
`awaiting_confirmation` activity state); an accepted answer, or `resolve` (someone else answered),
removes the item and announces `interaction_resolved` to every stream. Nothing is replayed: a
stream opened later sees only what is emitted after it opened. Each stream has a bounded queue
(`queue_size` events): a subscriber whose queue is full when an event comes is dropped, as
upstream drops a slow reader. Every method is safe to call from the test's thread while handler
threads serve streams and answers; `close` ends every stream at once.
"""

from __future__ import annotations

import itertools
import json
import threading
import uuid
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from tests.peers.terminal import json_object

if TYPE_CHECKING:
    from tests.peers.vellum import Reply

HEARTBEAT = b": heartbeat\n\n"


@dataclass(frozen=True)
class ActivityAnswer:
    """What one request gets: a scripted `reply` as is, else JSON `body`, or `events` (SSE)."""

    status: int = 200
    body: object = None
    events: Generator[bytes, None, None] | None = None
    reply: Reply | None = None


@dataclass(frozen=True)
class ReceivedAnswer:
    """One answer the runtime accepted (or a trust rule it stored), as it arrived."""

    endpoint: str
    """`confirm`, `trust-rules`, `question-response` or `secret`."""
    request_id: str
    body: Mapping[str, Any]
    """The whole JSON body: a secret's `value` too (tests check that it arrived)."""


@dataclass(frozen=True)
class Pending:
    """One interaction waiting for a human."""

    request_id: str
    conversation: str
    kind: str
    """`confirmation`, `question` or `secret`."""
    message: Mapping[str, Any]
    """The request as announced on the stream (`type` included)."""


@dataclass(eq=False)
class _Subscriber:
    queue: list[bytes] = field(default_factory=list)
    closed: bool = False


class ActivityScript:
    """One assistant's §7 side. Attributes script it; tests may change them at any time."""

    def __init__(self, assistant_id: str) -> None:
        self.assistant_id = assistant_id
        """Sent as every envelope's `assistantId`."""
        self.heartbeat_seconds = 5.0
        """A `: heartbeat` comment goes to a stream that has had nothing else for this long."""
        self.queue_size = 4096
        """Events a stream may have waiting; one more drops the subscriber."""
        self.drain_seconds = 0.5
        """`flood` waits up to this long for the streams to read a slice before sending more."""
        self.legacy = False
        """An older runtime: the unfiltered pending list answers 400 (ask per conversation)."""
        self.guardian = True
        """False: every answer is refused with 403 (the caller is not the guardian)."""
        self.stream_replies: list[Reply] = []
        """`GET events` answers these first, one per request (e.g. 503, 401)."""
        self.pending_replies: list[Reply] = []
        """`GET pending-interactions` answers these first, one per request."""
        self.answer_replies: list[Reply] = []
        """Every answer endpoint answers these first, one per request, accepting nothing."""
        self.answers: list[ReceivedAnswer] = []
        """Every answer accepted, in order."""
        self.opened = 0
        """Streams opened so far: a client that reconnects opens another."""
        self.dropped = 0
        """Streams dropped for reading too slowly."""
        self._changed = threading.Condition()
        """Guards everything here; notified when a stream has something to do."""
        self._subscribers: set[_Subscriber] = set()
        self._pending: dict[str, Pending] = {}
        self._versions: dict[str, int] = {}
        self._serials = itertools.count(1)
        self._stopping = False

    # -- scripting ------------------------------------------------------------------------------

    def activity(
        self,
        conversation: str,
        phase: str,
        *,
        reason: str = "",
        status_text: str | None = None,
        version: int | None = None,
        request_id: str | None = None,
    ) -> int:
        """Emit `assistant_activity_state`; returns its `activityVersion`. Without `version` the
        conversation's next one; an explicit older one (a stale event) leaves the count alone."""
        with self._changed:
            newest = self._versions.get(conversation, 0)
            version = newest + 1 if version is None else version
            self._versions[conversation] = max(newest, version)
        message: dict[str, Any] = {
            "type": "assistant_activity_state",
            "conversationId": conversation,
            "activityVersion": version,
            "phase": phase,
            "anchor": "assistant_turn",
            "reason": reason,
        }
        if request_id is not None:
            message["requestId"] = request_id
        if status_text is not None:
            message["statusText"] = status_text
        self.emit(message, conversation)
        return version

    def confirmation(
        self,
        conversation: str,
        tool: str,
        input: Mapping[str, Any],
        *,
        risk: str = "low",
        risk_reason: str = "",
        execution_target: str | None = None,
        patterns: Sequence[str] | None = None,
        scopes: Sequence[str] = ("everywhere",),
        diff: Mapping[str, Any] | None = None,
    ) -> str:
        """A tool asks for permission: pending, announced, and the conversation
        `awaiting_confirmation`. `patterns` default to `<tool>:*`; `diff` is sent as is
        (`{filePath, oldContent, newContent, isNewFile}`). Returns the request id."""
        request_id = self._request_id()
        message: dict[str, Any] = {
            "type": "confirmation_request",
            "requestId": request_id,
            "conversationId": conversation,
            "toolName": tool,
            "input": dict(input),
            "riskLevel": risk,
            "allowlistOptions": [
                {"label": pattern, "description": f"Always allow {pattern}", "pattern": pattern}
                for pattern in ((f"{tool}:*",) if patterns is None else patterns)
            ],
            "scopeOptions": [{"label": scope, "scope": scope} for scope in scopes],
            "persistentDecisionsAllowed": True,
            "toolUseId": f"toolu_{request_id}",
        }
        if risk_reason:
            message["riskReason"] = risk_reason
        if execution_target is not None:
            message["executionTarget"] = execution_target
        if diff is not None:
            message["diff"] = dict(diff)
        self._request(Pending(request_id, conversation, "confirmation", message))
        self.activity(
            conversation,
            "awaiting_confirmation",
            reason="confirmation_requested",
            request_id=request_id,
        )
        return request_id

    def question(
        self, conversation: str, questions: Sequence[Mapping[str, Any]] | None = None
    ) -> str:
        """A batch of questions (`{id, question, description?, options[{id, label}],
        freeTextPlaceholder?}`; by default one yes/no question `q1`). Returns the request id."""
        if questions is None:
            questions = [
                {
                    "id": "q1",
                    "question": "Proceed?",
                    "options": [{"id": "yes", "label": "Yes"}, {"id": "no", "label": "No"}],
                }
            ]
        request_id = self._request_id()
        entries = [dict(question) for question in questions]
        message: dict[str, Any] = {
            "type": "question_request",
            "requestId": request_id,
            "conversationId": conversation,
            "questions": entries,
        }
        if entries:  # the flat mirror of the first question, for old clients
            message["question"] = entries[0].get("question")
            message["options"] = entries[0].get("options", [])
        self._request(Pending(request_id, conversation, "question", message))
        return request_id

    def secret(self, conversation: str, service: str, field: str, label: str) -> str:
        """The assistant asks for a secret. Returns the request id."""
        request_id = self._request_id()
        message = {
            "type": "secret_request",
            "requestId": request_id,
            "conversationId": conversation,
            "service": service,
            "field": field,
            "label": label,
        }
        self._request(Pending(request_id, conversation, "secret", message))
        return request_id

    def resolve(self, request_id: str, state: str = "approved") -> None:
        """Someone else answered: the item leaves, every stream hears `interaction_resolved`."""
        self._resolved(request_id, state)

    def emit(self, message: Mapping[str, Any], conversation: str | None = None) -> None:
        """Any message (unknown types and malformed ones too), in an envelope, to every stream."""
        self.raw(self._event(message, conversation))

    def error(self, conversation: str, message: str) -> None:
        """The turn fails, as the runtime reports it: `error`, then the conversation goes idle
        with reason `error_terminal`."""
        self.emit(
            {"type": "error", "conversationId": conversation, "message": message}, conversation
        )
        self.activity(conversation, "idle", reason="error_terminal")

    def complete(self, conversation: str) -> None:
        """The turn ends: `message_complete`, then idle with reason `message_complete`."""
        self.emit({"type": "message_complete", "conversationId": conversation}, conversation)
        self.activity(conversation, "idle", reason="message_complete")

    def notify(self, title: str, body: str, conversation: str | None = None) -> None:
        message = {"type": "notification_intent", "title": title, "body": body}
        self.emit(message, conversation)

    def flood(self, count: int, size: int = 256, conversation: str = "flood") -> None:
        """A burst of `count` `assistant_text_delta` events of about `size` bytes each (a type
        roost ignores). Sent in slices of half a queue; before each slice it waits up to
        `drain_seconds` for the streams to catch up, so a reader that keeps up gets them all
        and one that does not is dropped."""
        step = max(1, self.queue_size // 2)
        for start in range(0, count, step):
            frames = [
                self._event(
                    {
                        "type": "assistant_text_delta",
                        "conversationId": conversation,
                        "seq": index,
                        "text": "x" * size,
                    },
                    conversation,
                )
                for index in range(start, min(count, start + step))
            ]
            with self._changed:
                self._changed.wait_for(
                    lambda: (
                        self._stopping
                        or all(len(s.queue) + step <= self.queue_size for s in self._subscribers)
                    ),
                    self.drain_seconds,
                )
                for frame in frames:
                    self._publish(frame)

    def raw(self, data: bytes) -> None:
        """These bytes, as they are, to every stream (broken framing, over-long lines...)."""
        with self._changed:
            self._publish(data)

    def drop_streams(self) -> None:
        """Every open stream hangs up now; what was waiting for it is lost (no replay)."""
        with self._changed:
            for subscriber in self._subscribers:
                subscriber.closed = True
            self._subscribers.clear()
            self._changed.notify_all()

    @property
    def streams(self) -> int:
        """Streams open now."""
        with self._changed:
            return len(self._subscribers)

    @property
    def pending(self) -> tuple[Pending, ...]:
        """What waits for a human now, oldest first."""
        with self._changed:
            return tuple(self._pending.values())

    def wait_for_streams(self, count: int, timeout: float = 5.0) -> None:
        """Until exactly `count` streams are open (events emitted after this reach them)."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._subscribers) == count, timeout):
                open_now = len(self._subscribers)
                raise AssertionError(f"{open_now} streams open, not {count}, after {timeout} s")

    def close(self) -> None:
        """Every stream ends now (the peer is closing)."""
        with self._changed:
            self._stopping = True
            self._changed.notify_all()

    # -- requests -------------------------------------------------------------------------------

    def answer(self, endpoint: str, query: Mapping[str, str], body: bytes) -> ActivityAnswer:
        """The answer to one authorized §7 request (`endpoint`: the path after `/v1/`)."""
        if endpoint == "events":
            scripted = self._take(self.stream_replies)
            return (
                ActivityAnswer(reply=scripted)
                if scripted
                else ActivityAnswer(events=self._stream())
            )
        if endpoint == "pending-interactions":
            scripted = self._take(self.pending_replies)
            return ActivityAnswer(reply=scripted) if scripted else self._pending_list(query)
        scripted = self._take(self.answer_replies)
        if scripted is not None:
            return ActivityAnswer(reply=scripted)
        if not self.guardian:
            return ActivityAnswer(403, {"error": "Only the guardian may answer"})
        request = json_object(body)
        request_id = request.get("requestId")
        if not isinstance(request_id, str):
            return ActivityAnswer(400, {"error": "requestId is required"})
        with self._changed:
            item = self._pending.get(request_id)
            if item is None or item.kind != _KIND_OF[endpoint]:
                return ActivityAnswer(404, {"error": f"No pending interaction {request_id}"})
            refusal = _refusal(endpoint, request, item)
            if refusal:
                return ActivityAnswer(400, {"error": refusal})
            self.answers.append(ReceivedAnswer(endpoint, request_id, request))
        if endpoint == "trust-rules":  # the rule is stored; the confirmation still waits
            return ActivityAnswer(200, {"success": True})
        self._resolved(request_id, _resolution(endpoint, request))
        return ActivityAnswer(
            200, {"success": True} if endpoint == "question-response" else {"accepted": True}
        )

    def _pending_list(self, query: Mapping[str, str]) -> ActivityAnswer:
        conversation = query.get("conversationId")
        with self._changed:
            items = list(self._pending.values())
        if conversation is None:
            if self.legacy:
                return ActivityAnswer(400, {"error": "conversationId is required"})
            listed = []
            for item in items:
                entry = {
                    "requestId": item.request_id,
                    "conversationId": item.conversation,
                    "kind": item.kind,
                }
                if item.kind == "confirmation":
                    entry["toolName"] = item.message["toolName"]
                    entry["riskLevel"] = item.message["riskLevel"]
                listed.append(entry)
            return ActivityAnswer(200, {"interactions": listed})
        view: dict[str, Any] = {
            "pendingConfirmation": None,
            "pendingSecret": None,
            "pendingQuestion": None,
        }
        for item in items:  # the oldest of each kind, as the runtime keeps one per conversation
            key = _VIEW_KEY[item.kind]
            if item.conversation != conversation or view[key] is not None:
                continue
            details = {name: value for name, value in item.message.items() if name != "type"}
            if item.kind == "question":
                details = {"requestId": item.request_id, "entries": item.message["questions"]}
            view[key] = details
        return ActivityAnswer(200, view)

    # -- streams --------------------------------------------------------------------------------

    def _stream(self) -> Generator[bytes, None, None]:
        """Events as they are published, a heartbeat when idle, until dropped or closed. The
        subscriber joins when the stream starts (after the headers went out)."""
        subscriber = _Subscriber()
        with self._changed:
            if self._stopping:
                return
            self._subscribers.add(subscriber)
            self.opened += 1
            self._changed.notify_all()
        try:
            while True:
                with self._changed:
                    self._changed.wait_for(
                        lambda: subscriber.queue or subscriber.closed or self._stopping,
                        self.heartbeat_seconds,
                    )
                    if subscriber.closed or self._stopping:
                        return
                    chunks, subscriber.queue = subscriber.queue, []
                    self._changed.notify_all()  # a flood may be waiting for the queues to drain
                yield b"".join(chunks) if chunks else HEARTBEAT
        finally:
            with self._changed:
                self._subscribers.discard(subscriber)
                self._changed.notify_all()

    def _event(self, message: Mapping[str, Any], conversation: str | None) -> bytes:
        """One SSE frame: `message` in an envelope whose `id` is also the frame's."""
        event_id = str(uuid.uuid4())
        envelope: dict[str, Any] = {"id": event_id, "assistantId": self.assistant_id}
        if conversation is not None:
            envelope["conversationId"] = conversation
        envelope["emittedAt"] = datetime.now(UTC).isoformat(timespec="milliseconds")
        envelope["message"] = message
        data = json.dumps(envelope, separators=(",", ":"))
        return f"event: assistant_event\nid: {event_id}\ndata: {data}\n\n".encode()

    def _publish(self, data: bytes) -> None:
        """Queue `data` for every stream, dropping those already full (the lock is held)."""
        for subscriber in list(self._subscribers):
            if len(subscriber.queue) >= self.queue_size:
                subscriber.closed = True
                self._subscribers.discard(subscriber)
                self.dropped += 1
            else:
                subscriber.queue.append(data)
        self._changed.notify_all()

    # -- interactions ---------------------------------------------------------------------------

    def _request_id(self) -> str:
        with self._changed:
            return f"req-{self.assistant_id}-{next(self._serials)}"

    def _request(self, item: Pending) -> None:
        with self._changed:
            self._pending[item.request_id] = item
        self.emit(item.message, item.conversation)

    def _resolved(self, request_id: str, state: str) -> None:
        with self._changed:
            item = self._pending.pop(request_id)
        message = {
            "type": "interaction_resolved",
            "requestId": request_id,
            "conversationId": item.conversation,
            "state": state,
            "kind": item.kind,
        }
        self.emit(message, item.conversation)
        if item.kind == "confirmation":  # the turn goes on: the tool runs, or the model rethinks
            phase = "tool_running" if state == "approved" else "thinking"
            self.activity(
                item.conversation, phase, reason="confirmation_resolved", request_id=request_id
            )

    def _take(self, script: list[Reply]) -> Reply | None:
        with self._changed:
            return script.pop(0) if script else None


_KIND_OF = {
    "confirm": "confirmation",
    "trust-rules": "confirmation",
    "question-response": "question",
    "secret": "secret",
}
_VIEW_KEY = {
    "confirmation": "pendingConfirmation",
    "secret": "pendingSecret",
    "question": "pendingQuestion",
}


def _refusal(endpoint: str, request: Mapping[str, Any], item: Pending) -> str:
    """Why the runtime refuses this answer with 400, or "" when it accepts it."""
    message = item.message
    if endpoint == "confirm":
        return (
            "" if request.get("decision") in ("allow", "deny") else "decision must be allow or deny"
        )
    if endpoint == "trust-rules":
        patterns = {option["pattern"] for option in message["allowlistOptions"]}
        scopes = {option["scope"] for option in message["scopeOptions"]}
        if request.get("pattern") not in patterns or request.get("scope") not in scopes:
            return "pattern and scope must be among the request's options"
        return (
            "" if request.get("decision") in ("allow", "deny") else "decision must be allow or deny"
        )
    if endpoint == "secret":
        if not isinstance(request.get("value"), str):
            return "value is required"
        delivery = request.get("delivery")
        return (
            ""
            if delivery in ("store", "transient_send")
            else "delivery must be store or transient_send"
        )
    if request.get("kind") == "close":
        return ""
    if request.get("kind") != "submit" or not isinstance(request.get("responses"), list):
        return "kind must be submit (with responses) or close"
    questions = {question.get("id"): question for question in message["questions"]}
    for response in request["responses"]:
        if not isinstance(response, dict) or response.get("questionId") not in questions:
            return "a response names an unknown question"
        options = {
            option.get("id") for option in questions[response["questionId"]].get("options", [])
        }
        kind = response.get("kind")
        if kind == "option" and response.get("optionId") not in options:
            return "a response names an unknown option"
        if kind == "free_text" and not isinstance(response.get("text"), str):
            return "a free_text response needs text"
        if kind not in ("option", "free_text", "skip"):
            return "a response's kind must be option, free_text or skip"
    return ""


def _resolution(endpoint: str, request: Mapping[str, Any]) -> str:
    """`interaction_resolved.state` for an accepted answer."""
    if endpoint == "confirm":
        return "approved" if request["decision"] == "allow" else "rejected"
    if endpoint == "question-response" and request["kind"] == "close":
        return "cancelled"
    return "answered"
