"""What an assistant is doing and what it waits for, as roost's plain values (no I/O).

`Activity` is one assistant's state with its evidence and age; `Interaction` is one item of the
needs-you inbox (a confirmation, a question batch or a secret request) with everything an
operator needs to answer it; `Answer` is what roost sends back. The runtime's wire shapes are
parsed into these in activity/events.py (docs/protocol.md §7).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class ActivityState(StrEnum):
    """What an assistant is doing, as far as live evidence shows. The value is what the ACTIVITY
    column, `roost ps` and an `activity:` filter show."""

    NEEDS_YOU = "needs you"
    ERRORED = "errored"
    WORKING = "working"
    IDLE = "idle"
    STOPPED = "stopped"
    """The agent's process has ended (its session closed, or the pane's command exited)."""
    UNKNOWN = "unknown"
    """No live evidence: the stream is down or was never up. Never shown as idle."""

    @property
    def symbol(self) -> str:
        """A mark readable without colour, shown before the state."""
        return _SYMBOLS[self]

    @property
    def triage(self) -> int:
        """Sort order: what needs a human first."""
        return list(ActivityState).index(self)


_SYMBOLS = {
    ActivityState.NEEDS_YOU: "!",
    ActivityState.ERRORED: "✗",
    ActivityState.WORKING: "▶",
    ActivityState.IDLE: "·",
    ActivityState.STOPPED: "■",
    ActivityState.UNKNOWN: "?",
}


@dataclass(frozen=True)
class Activity:
    """One assistant's state, what it rests on and since when.

    `detail` says what (`tool_running · Running the test suite`, `bash (high risk)`);
    `evidence` says how roost knows (`event stream`, `pending list`, `stream down: <why>`)."""

    state: ActivityState
    detail: str
    since: datetime
    evidence: str


UNFOLLOWED = "not followed"
"""The evidence of an assistant roost does not follow (no runtime, asleep)."""


class InteractionKind(StrEnum):
    CONFIRMATION = "confirmation"
    QUESTION = "question"
    SECRET = "secret"


@dataclass(frozen=True)
class TrustOption:
    """One way to "always allow" a confirmation: a pattern (`allowlistOptions`) or a scope
    (`scopeOptions`); a trust rule names one of each."""

    label: str
    value: str
    """The pattern, or the scope."""
    description: str = ""


@dataclass(frozen=True)
class Diff:
    file_path: str
    old: str
    new: str
    is_new_file: bool = False


@dataclass(frozen=True)
class Confirmation:
    """A tool waiting for permission (`confirmation_request`)."""

    tool: str
    input_json: str
    """The tool's input as indented JSON text, whole (it is what the operator decides on)."""
    risk: str = ""
    """Free text from the runtime (`low`, `medium`, `high`, ...)."""
    risk_reason: str = ""
    execution_target: str = ""
    """`sandbox`, `host`, or empty when the runtime did not say."""
    patterns: tuple[TrustOption, ...] = ()
    scopes: tuple[TrustOption, ...] = ()
    persistent_decisions_allowed: bool = True
    diff: Diff | None = None
    subject: str = ""
    """What the tool acts on, one line (`npm test`, `src/cart.py`): a coding agent's prompt
    says; a runtime's does not."""

    @property
    def high_risk(self) -> bool:
        """An answer to this is confirmed before it is sent."""
        return self.risk.strip().lower() in ("high", "critical")


@dataclass(frozen=True)
class Choice:
    id: str
    label: str
    description: str = ""


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    description: str = ""
    options: tuple[Choice, ...] = ()
    placeholder: str = ""
    """The free-text field's placeholder; any question may be answered in free text."""


@dataclass(frozen=True)
class Questions:
    """A batch of questions answered together (`question_request`)."""

    questions: tuple[Question, ...]


@dataclass(frozen=True)
class SecretRequest:
    """A secret the assistant asks for (`secret_request`); the value is never kept."""

    service: str
    field: str
    label: str


Request = Confirmation | Questions | SecretRequest


@dataclass(frozen=True)
class PaneTarget:
    """Where a coding agent's prompt is answered: by typing into its tmux pane (services/agents),
    not over HTTP."""

    server: str
    """The tmux server's socket path."""
    pane: str
    """tmux's pane id (`%3`)."""
    agent: str
    """Which agent asks (`claude`, `codex`, `gemini`): it decides the keys that answer."""


@dataclass(frozen=True)
class Interaction:
    """One item of the needs-you inbox."""

    assistant_key: str
    """The fleet row's key."""
    assistant_id: str
    assistant: str
    """The assistant's name, as the fleet shows it."""
    request_id: str
    kind: InteractionKind
    conversation: str
    """The conversation id; empty when the runtime did not say."""
    since: datetime
    """When roost first learned of it (the runtime does not say when it was asked)."""
    request: Request | None = None
    """What it asks; None while roost knows of it only from the pending list's summary."""
    tool: str = ""
    """A confirmation's tool, known even before its details (the pending list names it)."""
    risk: str = ""
    pane: PaneTarget | None = None
    """Set for a coding agent's prompt: answered by typing into this pane."""

    @property
    def id(self) -> str:
        """Stable across roost processes: what `roost inbox` prints and `roost answer` takes."""
        return interaction_id(self.assistant_id, self.request_id)

    @property
    def summary(self) -> str:
        """What it asks, in one line (no secrets: a secret request names only its service)."""
        request = self.request
        if isinstance(request, Confirmation):
            risk = f" ({request.risk} risk)" if request.risk else ""
            subject = f": {request.subject}" if request.subject else ""
            return f"{request.tool}{subject}{risk}"
        if isinstance(request, Questions):
            first = request.questions[0].question if request.questions else "questions"
            more = len(request.questions) - 1
            return first + (f" (+{more} more)" if more > 0 else "")
        if isinstance(request, SecretRequest):
            return f"secret for {request.service}: {request.label or request.field}"
        if self.kind is InteractionKind.CONFIRMATION and self.tool:
            return f"{self.tool} ({self.risk} risk)" if self.risk else self.tool
        return str(self.kind)


def interaction_id(assistant_id: str, request_id: str) -> str:
    """A short id for one request of one assistant: 10 hex digits of their digest."""
    digest = hashlib.sha256(f"{assistant_id}\0{request_id}".encode()).hexdigest()
    return digest[:10]


class Decision(StrEnum):
    ALLOW = "allow"
    DENY = "deny"


@dataclass(frozen=True)
class Allow:
    """Answer a confirmation: allow or deny it, and optionally trust it from now on (a
    pattern and a scope among the request's options; allow only)."""

    decision: Decision
    pattern: str | None = None
    scope: str | None = None


@dataclass(frozen=True)
class OptionAnswer:
    question_id: str
    option_id: str


@dataclass(frozen=True)
class TextAnswer:
    question_id: str
    text: str


@dataclass(frozen=True)
class SkipAnswer:
    question_id: str


@dataclass(frozen=True)
class Reply:
    """Answer a question batch: one response per question (unanswered ones are skipped), or
    `close` to dismiss it."""

    responses: tuple[OptionAnswer | TextAnswer | SkipAnswer, ...] = ()
    close: bool = False


@dataclass(frozen=True)
class Secret:
    """Answer a secret request. `value` lives only as long as this object: never logged,
    recorded or shown (its repr hides it)."""

    value: str = ""
    delivery: str = "store"
    """`store` (the assistant keeps it) or `transient_send` (used once)."""

    def __repr__(self) -> str:
        return f"Secret(value=<hidden>, delivery={self.delivery!r})"


Answer = Allow | Reply | Secret


class Outcome(StrEnum):
    """How an answer ended (what the history records)."""

    ACCEPTED = "accepted"
    ALREADY_ANSWERED = "already answered"
    """404: nothing pending with that id any more; someone else answered it."""
    REFUSED = "refused"
    FAILED = "failed"


@dataclass(frozen=True)
class AnswerRecord:
    """One answer roost sent, as the history keeps it (never a secret's value)."""

    at: datetime
    assistant_id: str
    assistant: str
    request_id: str
    kind: InteractionKind
    asked: str
    """The interaction's summary."""
    answered: str
    """What was answered, in words (`allow`, `always allow: npm test (project)`, `option b`,
    `secret (not recorded)`)."""
    front_end: str
    """`console` or `command line`."""
    outcome: Outcome
    detail: str = ""
    """The runtime's refusal or the error, when not accepted."""


@dataclass(frozen=True)
class TimelineEntry:
    """One line of an assistant's recent events (the detail panel's timeline)."""

    at: datetime
    text: str
    """Safe for a terminal (activity/events.py makes it so)."""


def session_key(assistant_key: str, session_id: str) -> str:
    """The key of the row of tmux session `session_id` shown under `assistant_key`: the table's,
    and the fleet snapshot's `activity` key for what the agents in it are doing."""
    return f"{assistant_key}{SESSION_MARK}{session_id}"


SESSION_MARK = "/session:"


def session_owner(key: str) -> str:
    """The assistant key a `session_key` belongs to (any other key is its own)."""
    return key.partition(SESSION_MARK)[0]
