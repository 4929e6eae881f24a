"""One assistant's activity and inbox, from its event stream and pending lists (docs/protocol.md
§7): a plain state machine with no I/O, fed by the follower and tested without a runtime.

The state, first rule that holds:

1. not connected: *unknown* (never idle without live evidence), the reason as its evidence;
   the items already known stay in the inbox (they may still be answered), and the next
   reconcile settles them;
2. an item pending: *needs you*, with the oldest item's summary and age;
3. the newest error (an `error` event or an `error_terminal` phase) is newer than every other
   phase change: *errored*;
4. a conversation thinking, streaming or running a tool (or in a phase roost does not know):
   *working*, with the phase and its status text;
5. a conversation awaiting a confirmation roost has not been told of: *needs you*;
6. otherwise *idle*, with how roost knows.

`since` is when the state began: a new detail (another tool) in the same state keeps it, so the
age says how long the assistant has been working, not how long this tool has run. Each phase
change carries an `activityVersion` per conversation; one older than the newest seen arrived
late and is ignored. Memory is bounded: a fixed timeline, the conversations most recently
active (`MAX_CONVERSATIONS`), and at most `MAX_ITEMS` pending items.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass
from datetime import datetime

from services.activity.client import PendingItem, PendingList
from services.activity.events import (
    Completed,
    Event,
    Failed,
    Notified,
    PhaseChanged,
    Requested,
    Resolved,
)
from services.activity.model import (
    Activity,
    ActivityState,
    Confirmation,
    Interaction,
    Request,
    TimelineEntry,
)
from services.core.clock import utc_now

MAX_CONVERSATIONS = 64
"""Conversations remembered per assistant (their newest version and phase); the least recently
active is forgotten first. An older runtime's pending list is asked for these."""
MAX_ITEMS = 256
"""Pending items per assistant: a runtime that asks without end fills no more memory (items past
this are not kept until earlier ones go; the pending list brings them back then)."""
WORKING_PHASES = frozenset({"thinking", "streaming", "tool_running"})
AWAITING = "awaiting_confirmation"
ERROR_TERMINAL = "error_terminal"
STREAM = "event stream"
QUIET_STREAM = "event stream, nothing since connected"
NO_STREAM = "no stream"


@dataclass(slots=True)
class _Conversation:
    version: int
    phase: str
    status_text: str


class AssistantActivity:
    """What one assistant is doing and what it waits for."""

    def __init__(
        self,
        key: str,
        assistant_id: str,
        name: str,
        *,
        timeline: int = 20,
        since: datetime | None = None,
    ) -> None:
        """`since`: when roost started following it (now by default)."""
        self.key = key
        self.assistant_id = assistant_id
        self.name = name
        self._connected = False
        self._why = "not connected yet"
        """Why the stream is not up (the evidence of *unknown*)."""
        self._heard = False
        """Whether a phase change came since the stream connected."""
        self._conversations: OrderedDict[str, _Conversation] = OrderedDict()
        self._working: str = ""
        """The conversation whose working phase is shown (the latest to start working)."""
        self._error: str | None = None
        """The newest error, while no other phase change came after it."""
        self._items: dict[str, Interaction] = {}
        self._listed: set[str] = set()
        """Items learned from a pending list rather than the stream (their evidence)."""
        self._inbox: tuple[Interaction, ...] = ()
        self._timeline: deque[TimelineEntry] = deque(maxlen=timeline)
        self._activity = Activity(ActivityState.UNKNOWN, NO_STREAM, since or utc_now(), self._why)

    @property
    def activity(self) -> Activity:
        return self._activity

    @property
    def inbox(self) -> tuple[Interaction, ...]:
        """The pending items, oldest first."""
        return self._inbox

    @property
    def timeline(self) -> tuple[TimelineEntry, ...]:
        """The latest events, oldest first."""
        return tuple(self._timeline)

    @property
    def conversations(self) -> tuple[str, ...]:
        """The conversations seen (on the stream or in the inbox), most recent last."""
        known = dict.fromkeys(self._conversations)
        known.update(dict.fromkeys(item.conversation for item in self._inbox))
        known.pop("", None)
        return tuple(known)

    def connected(self, now: datetime) -> None:
        """The stream is open. What the phases were before is no evidence now (nothing is
        replayed), so they are forgotten, their versions kept to drop late events."""
        self._connected, self._heard, self._error = True, False, None
        for conversation in self._conversations.values():
            conversation.phase = conversation.status_text = ""
        self._note(now, "stream connected")
        self._settle(now)

    def disconnected(self, now: datetime, why: str) -> None:
        """The stream is down (or could not be opened): unknown until it is back."""
        if self._connected or why != self._why:
            self._note(now, f"stream down: {why}")
        self._connected, self._why = False, why
        self._settle(now)

    def apply(self, event: Event, now: datetime) -> None:
        if isinstance(event, PhaseChanged):
            if not self._phase(event, now):
                return
        elif isinstance(event, Requested):
            known = self._items.get(event.request_id)
            since = known.since if known is not None else now
            self._listed.discard(event.request_id)
            item = Interaction(
                self.key,
                self.assistant_id,
                self.name,
                event.request_id,
                event.kind,
                event.conversation or (known.conversation if known else ""),
                since,
                event.request,
                *_tool_and_risk(event.request),
            )
            if not self._add(item):
                return
            self._note(now, f"asks: {item.summary}")
        elif isinstance(event, Resolved):
            resolved = self._items.pop(event.request_id, None)
            if resolved is None:
                return
            self._listed.discard(event.request_id)
            self._note(now, f"{event.state or 'resolved'}: {resolved.summary}")
        elif isinstance(event, Failed):
            self._error = event.message
            self._note(now, f"error: {event.message}")
        elif isinstance(event, Completed):
            self._error = None
            self._note(now, "message complete")
        elif isinstance(event, Notified):
            self._note(now, f"notification: {': '.join(filter(None, (event.title, event.body)))}")
        self._settle(now)

    def reconcile(self, pending: PendingList, now: datetime) -> None:
        """Take what the runtime lists as pending: new items join the inbox (with details when
        the list has them), and when the list is complete, items it lacks are gone."""
        listed = {item.request_id for item in pending.items}
        if pending.complete:
            for request_id in [key for key in self._items if key not in listed]:
                gone = self._items.pop(request_id)
                self._listed.discard(request_id)
                self._note(now, f"no longer pending: {gone.summary}")
        for entry in pending.items:
            known = self._items.get(entry.request_id)
            if known is None:
                item = self._interaction(entry, now)
                if self._add(item):
                    self._listed.add(entry.request_id)
                    self._note(now, f"asks: {item.summary}")
            elif known.request is None and entry.request is not None:
                self._add(self._interaction(entry, known.since))
        self._settle(now)

    def _interaction(self, entry: PendingItem, since: datetime) -> Interaction:
        return Interaction(
            self.key,
            self.assistant_id,
            self.name,
            entry.request_id,
            entry.kind,
            entry.conversation,
            since,
            entry.request,
            entry.tool,
            entry.risk,
        )

    def _add(self, item: Interaction) -> bool:
        """Keep `item`; False when it is new and the inbox is full."""
        if item.request_id not in self._items and len(self._items) >= MAX_ITEMS:
            return False
        self._items[item.request_id] = item
        if item.conversation:
            self._conversation(item.conversation)
        return True

    def _phase(self, event: PhaseChanged, now: datetime) -> bool:
        """Take a phase change; False when it is stale (an older version arriving late)."""
        conversation = self._conversations.get(event.conversation)
        if conversation is not None and event.version < conversation.version:
            return False
        if conversation is None:
            conversation = self._conversation(event.conversation, event.version)
        self._conversations.move_to_end(event.conversation)
        changed = (conversation.phase, conversation.status_text) != (
            event.phase,
            event.status_text,
        )
        conversation.version = event.version
        conversation.phase = event.phase
        conversation.status_text = event.status_text
        self._heard = True
        if event.reason == ERROR_TERMINAL:
            if self._error is None:
                self._error = ERROR_TERMINAL
        else:
            self._error = None
        if _working(event.phase):
            self._working = event.conversation
        if changed:
            detail = " · ".join(filter(None, (event.phase, event.status_text)))
            reason = f" ({event.reason})" if event.reason and not _working(event.phase) else ""
            self._note(now, detail + reason)
        return True

    def _conversation(self, conversation_id: str, version: int = -1) -> _Conversation:
        conversation = self._conversations.get(conversation_id)
        if conversation is None:
            conversation = self._conversations[conversation_id] = _Conversation(version, "", "")
            while len(self._conversations) > MAX_CONVERSATIONS:
                self._conversations.popitem(last=False)
        return conversation

    def _note(self, now: datetime, text: str) -> None:
        self._timeline.append(TimelineEntry(now, text))

    def _settle(self, now: datetime) -> None:
        """Work out the state again (the rules in the module docstring)."""
        if len(self._inbox) != len(self._items) or any(
            self._items.get(item.request_id) is not item for item in self._inbox
        ):
            self._inbox = tuple(sorted(self._items.values(), key=lambda item: item.since))
        state, detail, since, evidence = self._state()
        current = self._activity
        if since is None:
            since = current.since if state is current.state else now
        if (state, detail, since, evidence) != (
            current.state,
            current.detail,
            current.since,
            current.evidence,
        ):
            self._activity = Activity(state, detail, since, evidence)

    def _state(self) -> tuple[ActivityState, str, datetime | None, str]:
        """The state, its detail, when it began (None: when the state did, or now) and its
        evidence."""
        if not self._connected:
            return ActivityState.UNKNOWN, NO_STREAM, None, self._why
        if self._inbox:
            oldest = self._inbox[0]
            evidence = "pending list" if oldest.request_id in self._listed else STREAM
            return ActivityState.NEEDS_YOU, oldest.summary, oldest.since, evidence
        if self._error is not None:
            return ActivityState.ERRORED, self._error, None, STREAM
        working = self._conversations.get(self._working)
        if working is None or not _working(working.phase):
            working = next(
                (c for c in reversed(self._conversations.values()) if _working(c.phase)), None
            )
        if working is not None:
            detail = " · ".join(filter(None, (working.phase, working.status_text)))
            return ActivityState.WORKING, detail, None, STREAM
        if any(c.phase == AWAITING for c in self._conversations.values()):
            return ActivityState.NEEDS_YOU, "awaiting confirmation", None, STREAM
        return ActivityState.IDLE, "", None, STREAM if self._heard else QUIET_STREAM


def _tool_and_risk(request: Request) -> tuple[str, str]:
    if isinstance(request, Confirmation):
        return request.tool, request.risk
    return "", ""


def _working(phase: str) -> bool:
    """Thinking, streaming, running a tool, or a phase roost does not know (not idle, since
    nothing says so)."""
    return phase in WORKING_PHASES or phase not in ("", "idle", AWAITING)
