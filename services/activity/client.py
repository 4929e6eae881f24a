"""The runtime's activity API (docs/protocol.md §7) over a `RuntimeEndpoint`: the event stream,
the pending list and the answers.

- `events` opens `GET /v1/events` and yields what it carries: an `Event`, or None for a
  heartbeat or a frame roost ignores (so the reader knows the stream is alive); the first None
  says the stream is open. It ends by raising StreamError with one line saying why (refused,
  closed, broke, too large). Lines and events are capped (`sse_lines`); a 401 reads the
  credentials again once. A malformed event of a used type is logged (the first of a stream)
  and counted in `malformed`, and the stream goes on.
- `pending` asks for the unfiltered pending list; an older runtime refuses it (400), and then
  each conversation's view is read instead. Items whose details the caller does not know are
  read from their conversation's view (`details`).
- `answer` sends an answer: 404 means someone else answered (ALREADY_ANSWERED); anything else
  but a 2xx raises AnswerRefused. "Always allow" posts the trust rule, then the confirmation.

Credentials travel only in headers, and a secret's value only in its request's body: httpx's
errors (which hold the request) are re-raised `from None`, error texts name statuses and the
runtime's words (with the secret cut out, should a runtime echo it), and nothing here logs a
body.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Collection, Iterable, Mapping
from dataclasses import dataclass

import httpx

from services.activity.events import (
    Event,
    EventError,
    SseParser,
    parse_frame,
    request_of,
    sendable,
    text_field,
)
from services.activity.model import (
    Allow,
    Answer,
    Confirmation,
    Interaction,
    InteractionKind,
    Outcome,
    Questions,
    Reply,
    Request,
    Secret,
    SkipAnswer,
    TextAnswer,
)
from services.core.errors import RoostError
from services.core.http import (
    AnswerError,
    answer_detail,
    error_body,
    parse_json,
    read_body,
    send,
    sse_lines,
    timeout,
)
from services.core.safe_text import HIDDEN, error_text, printable
from services.vellum.auth import AuthUnavailable, RuntimeEndpoint

log = logging.getLogger(__name__)

REQUEST_TIMEOUT = 10.0
"""Each pending-list read and each answer, whole; opening the event stream (its reads then
wait for ever: silence between heartbeats is normal, and the follower watches for it)."""
MAX_ANSWER = 1 << 20
"""A pending list or a conversation's view (a confirmation's input comes whole)."""
MAX_LINE = 1 << 20
MAX_EVENT = 4 << 20
CLIENT_INTERFACE = "cli"
"""`X-Vellum-Interface-Id`: roost presents itself as the CLI does."""
EVERYWHERE = "everywhere"
"""The only scope a trust rule may name for a tool that offers no scope options."""


class ActivityError(RoostError):
    """A call of the activity API failed; the message says which and why, in one line."""


class StreamError(ActivityError):
    """The event stream could not be opened, or ended."""


class AnswerRefused(ActivityError):
    """An answer was not accepted (not the guardian, refused, unreachable)."""


@dataclass(frozen=True)
class PendingItem:
    """One item of a pending list."""

    request_id: str
    conversation: str
    kind: InteractionKind
    tool: str = ""
    risk: str = ""
    request: Request | None = None
    """What it asks, when the list carried it (a conversation's view does)."""


@dataclass(frozen=True)
class PendingList:
    items: tuple[PendingItem, ...]
    complete: bool
    """Every item the caller may hold is accounted for: the unfiltered list, or every
    conversation asked for answered. When False, items missing from it may still be pending."""
    per_conversation: bool = False
    """The runtime lists only per conversation (an older one): it named only what is pending in
    the conversations asked for."""


class ActivityClient:
    """Calls a runtime's activity API: requests through `http`, event streams through
    `streams` (default: `http` too).

    A follower of many streams gives them a client of their own (`core/http.py`'s
    `stream_client()`): httpcore looks at every connection of its pool on each new request, so
    a pending list asked through the pool that holds a thousand open streams costs a thousand
    checks (about 25 ms of CPU each, measured by tests/perf/bench_activity.py), and opening the
    streams of a large fleet grows with its square."""

    def __init__(self, http: httpx.AsyncClient, streams: httpx.AsyncClient | None = None) -> None:
        self.http = http
        self.streams = streams or http
        self.malformed = 0
        """Malformed events seen on every stream (each was skipped)."""

    async def events(
        self,
        endpoint: RuntimeEndpoint,
        client_id: str,
        *,
        max_line: int = MAX_LINE,
        max_event: int = MAX_EVENT,
    ) -> AsyncGenerator[Event | None, None]:
        """The stream's events, None first (it is open) and for each heartbeat or ignored frame.
        Raises StreamError when it cannot be opened or ends."""
        who = _who(endpoint)
        headers = {
            "Accept": "text/event-stream",
            "X-Vellum-Client-Id": client_id,
            "X-Vellum-Interface-Id": CLIENT_INTERFACE,
        }
        response = await self._open_stream(endpoint, headers, who)
        async with contextlib.aclosing(response):
            yield None
            parser = SseParser()
            feed = parser.feed
            complained = False
            try:
                async for line in sse_lines(response, max_line=max_line, max_event=max_event):
                    frame = feed(line)
                    if frame is None:
                        continue
                    try:
                        yield parse_frame(frame)
                    except EventError as error:
                        self.malformed += 1
                        if not complained:
                            complained = True
                            log.warning("%s: skipped a malformed event: %s", who, error)
                        yield None
            except httpx.HTTPError as error:
                raise StreamError(f"{who}: the event stream broke ({error_text(error)})") from None
            except AnswerError as error:
                raise StreamError(f"{who}: the event stream was cut: {error}") from None
        raise StreamError(f"{who}: the runtime closed the event stream")

    async def _open_stream(
        self, endpoint: RuntimeEndpoint, headers: Mapping[str, str], who: str
    ) -> httpx.Response:
        url = endpoint.url("events")
        for attempt in (1, 2):
            try:
                credentials = await (
                    endpoint.auth.headers() if attempt == 1 else endpoint.auth.refresh()
                )
            except AuthUnavailable as error:
                raise StreamError(f"{who}: no credentials: {error}") from None
            request = self.streams.build_request(
                "GET",
                url,
                headers={**credentials, **headers},
                timeout=timeout(REQUEST_TIMEOUT, endless_reads=True),
            )
            try:
                async with asyncio.timeout(REQUEST_TIMEOUT):
                    response = await send(self.streams, request)
            except (TimeoutError, httpx.TimeoutException):
                raise StreamError(
                    f"{who}: no answer within {REQUEST_TIMEOUT:g} s to the event stream"
                ) from None
            except (httpx.HTTPError, httpx.InvalidURL) as error:
                raise StreamError(f"{who}: unreachable ({error_text(error)})") from None
            if response.is_success:
                return response
            body = parse_json(await error_body(response, MAX_ANSWER))
            await response.aclose()
            if response.status_code == 401 and attempt == 1:
                continue
            raise StreamError(
                f"{who}: the event stream was refused ({response.status_code}{answer_detail(body)})"
            )
        raise AssertionError("unreachable")  # pragma: no cover

    async def pending(
        self,
        endpoint: RuntimeEndpoint,
        conversations: Iterable[str],
        *,
        known: Collection[str] = (),
    ) -> PendingList:
        """What is pending now. `conversations`: those to ask an older runtime about (it lists
        only per conversation); `known`: request ids whose details the caller has (the others
        are read from their conversation's view). Raises ActivityError."""
        who = _who(endpoint)
        status, answer = await self._get(endpoint, "pending-interactions", who)
        if status == 400:
            return await self._per_conversation(endpoint, tuple(conversations))
        if not 200 <= status < 300:
            raise ActivityError(
                f"{who}: the pending list was refused ({status}{answer_detail(answer)})"
            )
        entries = answer.get("interactions") if isinstance(answer, dict) else None
        if not isinstance(entries, list):
            raise ActivityError(f"{who}: the pending list is not a list of interactions")
        items = tuple(item for item in map(_listed, entries) if item is not None)
        missing = {
            item.conversation
            for item in items
            if item.request is None and item.conversation and item.request_id not in known
        }
        if missing:
            views = await self._views(endpoint, sorted(missing))
            detailed = {
                detail.request_id: detail
                for view in views
                if not isinstance(view, ActivityError)
                for detail in view
            }
            items = tuple(_with_details(item, detailed.get(item.request_id)) for item in items)
        return PendingList(items, complete=True)

    async def _per_conversation(
        self, endpoint: RuntimeEndpoint, conversations: tuple[str, ...]
    ) -> PendingList:
        views = await self._views(endpoint, conversations)
        items = [item for view in views if not isinstance(view, ActivityError) for item in view]
        complete = not any(isinstance(view, ActivityError) for view in views)
        return PendingList(tuple(items), complete=complete, per_conversation=True)

    async def _views(
        self, endpoint: RuntimeEndpoint, conversations: Iterable[str]
    ) -> list[tuple[PendingItem, ...] | ActivityError]:
        """Each conversation's view, read at once; a view that failed is its error (anything
        else than an ActivityError is a bug, and raised)."""
        views = await asyncio.gather(
            *(self.details(endpoint, conversation) for conversation in conversations),
            return_exceptions=True,
        )
        results: list[tuple[PendingItem, ...] | ActivityError] = []
        for view in views:
            if isinstance(view, BaseException) and not isinstance(view, ActivityError):
                raise view
            results.append(view)
        return results

    async def details(
        self, endpoint: RuntimeEndpoint, conversation: str
    ) -> tuple[PendingItem, ...]:
        """One conversation's view: what is pending there, with what each item asks. Raises
        ActivityError."""
        who = _who(endpoint)
        status, answer = await self._get(
            endpoint, "pending-interactions", who, params={"conversationId": conversation}
        )
        if not 200 <= status < 300 or not isinstance(answer, dict):
            detail = answer_detail(answer) if isinstance(answer, dict) else ""
            raise ActivityError(
                f"{who}: the pending view of conversation {printable(conversation)} was refused"
                f" ({status}{detail})"
            )
        items = []
        for key, kind in _VIEW_KEYS:
            payload = answer.get(key)
            if isinstance(payload, dict):
                item = _viewed(kind, conversation, payload)
                if item is not None:
                    items.append(item)
        return tuple(items)

    async def answer(
        self, endpoint: RuntimeEndpoint, interaction: Interaction, answer: Answer
    ) -> Outcome:
        """Send `answer`: ACCEPTED, or ALREADY_ANSWERED when nothing is pending with that id any
        more (404). Raises AnswerRefused for anything else, in one line."""
        who = _who(endpoint)
        secret = answer.value if isinstance(answer, Secret) else None
        calls = _answer_calls(interaction, answer)
        for path, body in calls:
            outcome = await self._post(endpoint, path, body, who, secret)
            if outcome is Outcome.ALREADY_ANSWERED:
                return outcome
        return Outcome.ACCEPTED

    async def _post(
        self,
        endpoint: RuntimeEndpoint,
        path: str,
        body: Mapping[str, object],
        who: str,
        secret: str | None,
    ) -> Outcome:
        try:
            status, answer = await self._call(endpoint, "POST", path, body=body)
        except ActivityError as error:
            raise AnswerRefused(_hide(f"{who}: the answer was not sent: {error}", secret)) from None
        if status == 404:
            return Outcome.ALREADY_ANSWERED
        if status == 403:
            raise AnswerRefused(
                _hide(
                    f"{who}: refused: roost is not the guardian here{answer_detail(answer)}", secret
                )
            )
        if not 200 <= status < 300:
            raise AnswerRefused(_hide(f"{who}: refused ({status}{answer_detail(answer)})", secret))
        if isinstance(answer, dict) and (
            answer.get("accepted") is False or answer.get("success") is False
        ):
            raise AnswerRefused(_hide(f"{who}: not accepted{answer_detail(answer)}", secret))
        return Outcome.ACCEPTED

    async def _get(
        self,
        endpoint: RuntimeEndpoint,
        path: str,
        who: str,
        *,
        params: Mapping[str, str] | None = None,
    ) -> tuple[int, object]:
        try:
            return await self._call(endpoint, "GET", path, params=params)
        except ActivityError as error:
            raise ActivityError(f"{who}: {error}") from None

    async def _call(
        self,
        endpoint: RuntimeEndpoint,
        method: str,
        path: str,
        *,
        body: Mapping[str, object] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> tuple[int, object]:
        """One request within REQUEST_TIMEOUT, a 401 answered by fresh credentials once: the
        status and the answer parsed (None when not JSON). Raises ActivityError naming no
        credential and no body."""
        url = endpoint.url(path)
        for attempt in (1, 2):
            try:
                headers = await (
                    endpoint.auth.headers() if attempt == 1 else endpoint.auth.refresh()
                )
            except AuthUnavailable as error:
                raise ActivityError(f"no credentials: {error}") from None
            request = self.http.build_request(
                method,
                url,
                headers=headers,
                params=params,
                json=body,
                timeout=timeout(REQUEST_TIMEOUT),
            )
            try:
                async with asyncio.timeout(REQUEST_TIMEOUT):
                    response = await send(self.http, request)
                    async with contextlib.aclosing(response):
                        status = response.status_code
                        content = await read_body(response, MAX_ANSWER)
            except (TimeoutError, httpx.TimeoutException):
                raise ActivityError(f"no answer within {REQUEST_TIMEOUT:g} s") from None
            except (httpx.HTTPError, httpx.InvalidURL) as error:
                raise ActivityError(f"unreachable ({error_text(error)})") from None
            except AnswerError as error:
                raise ActivityError(str(error)) from None
            if status == 401 and attempt == 1:
                continue
            return status, parse_json(content)
        raise AssertionError("unreachable")  # pragma: no cover


_KINDS = frozenset(InteractionKind)
_VIEW_KEYS = (
    ("pendingConfirmation", InteractionKind.CONFIRMATION),
    ("pendingQuestion", InteractionKind.QUESTION),
    ("pendingSecret", InteractionKind.SECRET),
)


def _who(endpoint: RuntimeEndpoint) -> str:
    return printable(endpoint.name or endpoint.assistant_id)


def _listed(entry: object) -> PendingItem | None:
    """An item of the unfiltered list; None for one roost cannot use (another kind, no id)."""
    if not isinstance(entry, dict):
        return None
    request_id, kind, conversation = (
        entry.get("requestId"),
        entry.get("kind"),
        entry.get("conversationId"),
    )
    if not isinstance(request_id, str) or not sendable(request_id) or kind not in _KINDS:
        return None
    return PendingItem(
        request_id,
        conversation if isinstance(conversation, str) and sendable(conversation) else "",
        InteractionKind(str(kind)),
        text_field(entry, "toolName"),
        text_field(entry, "riskLevel"),
    )


def _viewed(
    kind: InteractionKind, conversation: str, payload: Mapping[str, object]
) -> PendingItem | None:
    request_id = payload.get("requestId")
    if not isinstance(request_id, str) or not sendable(request_id):
        return None
    try:
        request: Request | None = request_of(kind, payload)
    except EventError:
        request = None  # a secret's view names only its id; the summary says "secret"
    tool, risk = (request.tool, request.risk) if isinstance(request, Confirmation) else ("", "")
    return PendingItem(request_id, conversation, kind, tool, risk, request)


def _with_details(item: PendingItem, detailed: PendingItem | None) -> PendingItem:
    if detailed is None or detailed.request is None:
        return item
    return PendingItem(
        item.request_id,
        item.conversation,
        item.kind,
        item.tool or detailed.tool,
        item.risk or detailed.risk,
        detailed.request,
    )


def _answer_calls(
    interaction: Interaction, answer: Answer
) -> list[tuple[str, Mapping[str, object]]]:
    """The requests that send `answer` (docs/protocol.md §7), in order. Raises AnswerRefused
    for an answer that does not fit the interaction, before anything is sent."""
    request_id = interaction.request_id
    if isinstance(answer, Allow):
        _expect(interaction, InteractionKind.CONFIRMATION, "allow or deny")
        confirm: tuple[str, Mapping[str, object]] = (
            "confirm",
            {"requestId": request_id, "decision": str(answer.decision)},
        )
        if answer.pattern is None and answer.scope is None:
            return [confirm]
        rule = _trust_rule(interaction, answer)
        return [("trust-rules", {"requestId": request_id, **rule}), confirm]
    if isinstance(answer, Reply):
        _expect(interaction, InteractionKind.QUESTION, "options or text")
        if answer.close:
            return [("question-response", {"requestId": request_id, "kind": "close"})]
        return [
            (
                "question-response",
                {
                    "requestId": request_id,
                    "kind": "submit",
                    "responses": _responses(interaction, answer),
                },
            )
        ]
    _expect(interaction, InteractionKind.SECRET, "a secret")
    return [
        ("secret", {"requestId": request_id, "value": answer.value, "delivery": answer.delivery})
    ]


def _expect(interaction: Interaction, kind: InteractionKind, what: str) -> None:
    if interaction.kind is not kind:
        raise AnswerRefused(
            f"{interaction.id} is a {interaction.kind}: it is not answered with {what}"
        )


def _trust_rule(interaction: Interaction, answer: Allow) -> dict[str, object]:
    """The trust rule of an "always allow": a pattern and a scope among the request's options
    (a tool that offers no scope takes `everywhere`), checked here when the details are known
    so a mistake is one clear line rather than the runtime's 403."""
    request = interaction.request
    if answer.pattern is None:
        raise AnswerRefused("a trust rule needs a pattern")
    scope = answer.scope
    if isinstance(request, Confirmation):
        if not request.persistent_decisions_allowed:
            raise AnswerRefused(f"{interaction.id}: the runtime allows no trust rule for this")
        if answer.pattern not in {option.value for option in request.patterns}:
            raise AnswerRefused(
                f"{interaction.id}: {printable(answer.pattern)} is not among its patterns"
            )
        scopes = {option.value for option in request.scopes}
        scope = scope or (EVERYWHERE if not scopes else None)
        if scope is None or scope not in (scopes or {EVERYWHERE}):
            raise AnswerRefused(f"{interaction.id}: choose a scope among its options")
    return {
        "pattern": answer.pattern,
        "scope": scope or EVERYWHERE,
        "decision": str(answer.decision),
    }


def _responses(interaction: Interaction, reply: Reply) -> list[dict[str, object]]:
    """One response per question: those given, in the request's order, and a skip for each
    question left unanswered."""
    given: dict[str, dict[str, object]] = {}
    for response in reply.responses:
        if isinstance(response, TextAnswer):
            given[response.question_id] = {
                "questionId": response.question_id,
                "kind": "free_text",
                "text": response.text,
            }
        elif isinstance(response, SkipAnswer):
            given[response.question_id] = {"questionId": response.question_id, "kind": "skip"}
        else:
            given[response.question_id] = {
                "questionId": response.question_id,
                "kind": "option",
                "optionId": response.option_id,
            }
    request = interaction.request
    if not isinstance(request, Questions):
        return list(given.values())
    ordered = [
        given.pop(question.id, {"questionId": question.id, "kind": "skip"})
        for question in request.questions
    ]
    return ordered + list(given.values())


def _hide(text: str, secret: str | None) -> str:
    return text.replace(secret, HIDDEN) if secret else text
