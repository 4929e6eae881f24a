"""What each coding agent on one tmux server is doing, and the prompts it waits on (no I/O).

`AgentWatch` combines the evidence roost has of a pane, best first (../shared/AGENT-SIGNALS.md):

1. the agent's hook events (`AgentEvent`): exact and immediate;
2. the terminal: signals of an attached pane (title, notification, bell) and what tmux lists of
   every pane (title, bell, last output, current command);
3. screen readings (`screens.py`), taken only of the panes `suspects` names: those whose other
   evidence is ambiguous or stale, at most every few seconds and only after new output;
4. liveness: the pane gone or dead, its command back to a shell, no output for minutes.

A state always says which evidence it rests on and how old it is; stale evidence makes it
*unknown*, never *idle*. Nothing fires when a dialog is answered in the terminal itself, so a
prompt waiting in the inbox is cleared by the agent's next event in that pane, or by a screen
reading that no longer shows it.
"""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.activity.events import EventError, json_text
from services.activity.model import (
    Activity,
    ActivityState,
    Choice,
    Confirmation,
    Interaction,
    InteractionKind,
    PaneTarget,
    Question,
    Questions,
    Request,
    TrustOption,
    session_key,
)
from services.agents.model import Agent, AgentEvent
from services.agents.screens import ScreenReading, ScreenState
from services.core.clock import utc_now
from services.core.safe_text import printable
from services.terminal.signals import SignalKind, TerminalSignal
from services.terminal.tmux import TmuxListing, TmuxPane, TmuxState

AGENT_COMMANDS = frozenset({*Agent, "opencode", "aider"})
"""A pane running one of these runs that agent (tmux's `pane_current_command`)."""
_HOSTED_COMMAND = re.compile(r"node|bun|deno|python3?(\.\d+)?|\d+\.\d+\.\d+")
"""Commands an agent may run as (an npm install runs `node`; Claude Code's own binary may show
its version): an agent only with other evidence (a hook event, its title)."""
_TITLE_AGENT = re.compile(r"\b(claude|codex|gemini|opencode|aider)\b", re.IGNORECASE)
SHELLS = frozenset({"bash", "zsh", "fish", "sh", "dash", "ksh", "tcsh", "csh", "nu", "pwsh"})

STALE_AFTER = timedelta(minutes=5)
"""Working, with no hook event and no output for this long: unknown."""
QUIET_HOOKS = timedelta(seconds=30)
"""Working with output but no hook event for this long: worth a look at the screen (an agent
interrupted with Esc fires no hook)."""
SCREEN_GRACE = timedelta(seconds=3)
"""A screen reading outweighs the hooks only when taken this long after their last event (an
agent draws its screen a moment after its hook runs)."""
SCREEN_CURRENT = timedelta(seconds=10)
"""A reading stays current this long, and after that while the pane prints nothing."""
CAPTURE_EVERY = timedelta(seconds=2)
"""At most one capture of a pane this often, when its evidence is ambiguous."""
CHECK_EVERY = timedelta(seconds=15)
"""At most one capture this often to check a state hooks gave (a dialog answered in the
terminal, a turn interrupted)."""
FORGET_UNLISTED = timedelta(seconds=30)
"""A pane with events but absent from tmux's listing is forgotten after this long."""
MAX_PANES = 512
MAX_RETIRED = 512
_DETAIL_CHARS = 120
ASK_TOOL = "AskUserQuestion"
"""Claude Code's tool for a question with choices (PreToolUse names it; it needs no permission)."""
MAX_CHOICES = 16
AGENT_RULE = "agent"
"""The pattern and scope of "always allow" on a coding agent's prompt: the rule its own dialog
offers ("don't ask again for npm test commands in this project"), picked on screen."""
_AGENT_RULE = (
    TrustOption("the one the agent's dialog offers (don't ask again...)", AGENT_RULE),
    TrustOption("as the agent's dialog says (this session or project)", AGENT_RULE),
)

_WORKING_EVENTS = frozenset(
    {
        "UserPromptSubmit",
        "PreToolUse",
        "PostToolUse",
        "PostToolUseFailure",
        "BeforeTool",
        "AfterTool",
        "BeforeAgent",
        "BeforeModel",
        "AfterModel",
        "PreCompact",
        "SubagentStop",
    }
)
_CLEARING_EVENTS = frozenset(
    {
        "PostToolUse",
        "PostToolUseFailure",
        "UserPromptSubmit",
        "Stop",
        "StopFailure",
        "SessionStart",
        "SessionEnd",
        "AfterTool",
        "AfterAgent",
        "BeforeAgent",
        "agent-turn-complete",
    }
)
"""Events after which no earlier prompt of the same session can still be waiting."""
_PERMISSION_TOOL = re.compile(r"permission to use (.+?)\s*$")


@dataclass(frozen=True)
class PaneAgent:
    """A pane running a coding agent: what it does and the prompt it waits on."""

    pane: str
    session_id: str
    """tmux's session id (`$1`); empty until tmux has listed the pane."""
    agent: str
    """An `Agent` value, or `opencode` / `aider` (known from the command only)."""
    activity: Activity
    interaction: Interaction | None


@dataclass(frozen=True)
class _Pending:
    """A prompt the agent waits on, until its next event or a screen without it."""

    request_id: str
    kind: InteractionKind
    since: datetime
    conversation: str
    request: Request | None
    tool: str
    detail: str
    """What the pane's state says of it: `permission: Bash: npm test`."""
    source: str
    """`hook PermissionRequest`, `screen: claude permission dialog`: its evidence."""


@dataclass
class _Pane:
    id: str
    agent: str = ""
    listed: TmuxPane | None = None
    ever_listed: bool = False
    first_seen: datetime | None = None
    shell_since: datetime | None = None
    title_changed: datetime | None = None
    bell_at: datetime | None = None
    signal: TerminalSignal | None = None
    # hooks
    conversation: str = ""
    event: str = ""
    event_at: datetime | None = None
    state: ActivityState | None = None
    detail: str = ""
    since: datetime | None = None
    pending: _Pending | None = None
    # screen
    reading: ScreenReading | None = None
    read_at: datetime | None = None
    captured_at: datetime | None = None
    captured_activity: datetime | None = None
    note: tuple[str, datetime] | None = None
    """How the last prompt ended (`answered in the console`), shown for a while as evidence."""


def by_session(agents: Iterable[PaneAgent]) -> dict[str, Activity]:
    """Each tmux session's most urgent agent among `agents` (needs you first, then the oldest)."""
    best: dict[str, Activity] = {}
    for agent in agents:
        if not agent.session_id:
            continue
        current = best.get(agent.session_id)
        key = (agent.activity.state.triage, agent.activity.since)
        if current is None or key < (current.state.triage, current.since):
            best[agent.session_id] = agent.activity
    return best


class AgentWatch:
    """Everything known of the coding agents on one tmux server (socket path)."""

    def __init__(
        self, server: str, host_key: str, *, clock: Callable[[], datetime] = utc_now
    ) -> None:
        self.server = server
        self.host_key = host_key
        self._clock = clock
        self._panes: OrderedDict[str, _Pane] = OrderedDict()
        self._session_names: dict[str, str] = {}
        self._retired: OrderedDict[str, str] = OrderedDict()
        self._last_event_id = 0

    # evidence in

    def feed(self, events: Iterable[AgentEvent]) -> None:
        """Take the hook events of this server's panes (others are ignored), oldest first. An
        event recorded before (by its database id) or older than the pane's latest is skipped."""
        latest = self._clock()
        for event in events:
            if event.server != self.server or not event.pane:
                continue
            if event.id and event.id <= self._last_event_id:
                continue
            self._last_event_id = max(self._last_event_id, event.id)
            at = min(event.at, latest)  # a container's clock running ahead
            pane = self._pane(event.pane, at)
            if pane.event_at is not None and at < pane.event_at:
                continue
            self._apply(pane, event, at)

    def observe(self, listing: TmuxListing, now: datetime) -> None:
        """Take one listing of the server's panes: new ones, gone ones, titles and bells."""
        if listing.socket_path and self.server and listing.socket_path != self.server:
            return
        if listing.state is TmuxState.NO_SERVER:  # every agent of it ended with it
            self._panes.clear()
            return
        if listing.state is not TmuxState.RUNNING:
            return  # a failed listing says nothing of the panes
        self._session_names = {session.id: session.name for session in listing.sessions}
        current = {pane.id: pane for pane in listing.panes}
        for pane_id, pane in list(self._panes.items()):
            if pane_id in current:
                continue
            if pane.ever_listed or (pane.first_seen and now - pane.first_seen > FORGET_UNLISTED):
                del self._panes[pane_id]
        for listed in listing.panes:
            known = self._panes.get(listed.id)
            if known is None and not self._agent_of(listed):
                continue
            pane = known or self._pane(listed.id, now)
            before = pane.listed
            if before is not None and before.title != listed.title:
                pane.title_changed = now
            if listed.bell and not (before and before.bell):
                pane.bell_at = now
            pane.shell_since = (pane.shell_since or now) if listed.command in SHELLS else None
            pane.listed = listed
            pane.ever_listed = True
            if pane.event_at is None and pane.reading is None:
                pane.agent = self._agent_of(listed)  # known by its command only, while it runs
            if listed.dead or pane.shell_since:
                self._end_pending(pane, "the agent exited", now)

    def signal(self, pane: str, signal: TerminalSignal, now: datetime) -> None:
        """Take a title, notification or bell from an attached pane's stream."""
        known = self._panes.get(pane)
        if known is None:
            return
        known.signal = signal
        if signal.kind is SignalKind.BELL:
            known.bell_at = signal.at
        elif signal.kind is SignalKind.TITLE:
            known.title_changed = signal.at

    def screen(self, pane: str, reading: ScreenReading | None, now: datetime) -> None:
        """Take a screen reading of `pane` (None: no rule matched). A prompt from the hooks
        that the screen no longer shows is retired; one the hooks never reported (no hooks
        installed) enters the inbox."""
        known = self._panes.get(pane)
        if known is None:
            return
        known.reading = reading
        known.read_at = now
        if reading is None:
            return  # no rule matched: perhaps a new version's dialog, so nothing is retired
        if known.shell_since or (known.listed is not None and known.listed.dead):
            return  # what an exited agent left on screen asks nothing
        if not known.agent:
            known.agent = reading.agent
        pending = known.pending
        if reading.state not in (ScreenState.PERMISSION, ScreenState.QUESTION):
            if pending is not None and now - pending.since > SCREEN_GRACE:
                self._end_pending(known, "the dialog is no longer on screen", now)
            return
        from_screen = pending is None or pending.source.startswith("screen")
        if from_screen and self._screen_leads(known, now):
            shown = _screen_pending(known, reading, now)
            if pending is not None and pending.request_id == shown.request_id:
                return
            if not self._is_retired(known, shown):
                known.pending = shown

    def retire(self, interaction_id: str, note: str, now: datetime) -> None:
        """The prompt `interaction_id` is over (answered, or its dialog was gone): it leaves
        the inbox and `note` shows as evidence for a while. It is not raised again from the
        same event."""
        for pane in self._panes.values():
            if pane.pending and self._interaction(pane, pane.pending).id == interaction_id:
                self._end_pending(pane, note, now)
                return

    # what is known

    def suspects(self, now: datetime) -> list[str]:
        """Panes worth one `capture-pane` now: an agent whose evidence is ambiguous or stale,
        a signal the hooks did not explain, or a state to check; each at most every few
        seconds, and only when its window printed something since the last capture."""
        chosen = []
        for pane in self._panes.values():
            listed = pane.listed
            if not pane.agent or listed is None or listed.dead or pane.shell_since:
                continue
            if pane.captured_at is not None:
                if pane.captured_activity is not None and listed.activity <= pane.captured_activity:
                    continue
                every = CAPTURE_EVERY if self._ambiguous(pane, now) else CHECK_EVERY
                if now - pane.captured_at < every:
                    continue
            if self._ambiguous(pane, now) or self._worth_checking(pane, now):
                pane.captured_at = now
                pane.captured_activity = listed.activity
                chosen.append(pane.id)
        return chosen

    def agent_of(self, pane: str) -> str:
        """The agent known to run in `pane` (empty when none is)."""
        known = self._panes.get(pane)
        return known.agent if known is not None else ""

    def panes(self, now: datetime) -> dict[str, PaneAgent]:
        """Every pane known to run an agent, with its state and its pending prompt."""
        result = {}
        for pane in self._panes.values():
            if not pane.agent:
                continue
            interaction = self._interaction(pane, pane.pending) if pane.pending else None
            session_id = pane.listed.session_id if pane.listed else ""
            result[pane.id] = PaneAgent(
                pane.id, session_id, pane.agent, self._activity(pane, now), interaction
            )
        return result

    def sessions(self, now: datetime) -> dict[str, Activity]:
        """Each tmux session's most urgent agent (`by_session` of `panes`)."""
        return by_session(self.panes(now).values())

    def inbox(self) -> tuple[Interaction, ...]:
        """The prompts agents wait on, oldest first."""
        items = [self._interaction(p, p.pending) for p in self._panes.values() if p.pending]
        return tuple(sorted(items, key=lambda item: item.since))

    # hook events

    def _apply(self, pane: _Pane, event: AgentEvent, at: datetime) -> None:
        name, payload = event.name, event.payload
        if event.agent:
            pane.agent = event.agent
        pending = pane.pending
        same_session = not (event.session and pending and pending.conversation) or (
            event.session == pending.conversation
        )
        if pending is not None and name in _CLEARING_EVENTS and same_session:
            pane.pending = None
        pane.conversation = event.session or pane.conversation
        pane.event, pane.event_at = name, at
        if pane.shell_since is not None and at > pane.shell_since:
            pane.shell_since = None  # a hook ran in it since: the agent is back
        if name == "SessionStart":
            if event.text("source") != "compact":
                self._set(pane, ActivityState.IDLE, "session started", at)
        elif name == "UserPromptSubmit" or name == "BeforeAgent":
            self._set(pane, ActivityState.WORKING, _line("prompt: " + _raw(event, "prompt")), at)
        elif name == "PreToolUse" and (questions := _asked(event)) is not None:
            self._set(pane, ActivityState.WORKING, "asking a question", at, keep=True)
            detail = _line(f"question: {questions.questions[0].question}")
            self._ask(pane, event, at, InteractionKind.QUESTION, questions, "", detail)
        elif name in _WORKING_EVENTS:
            tool = event.text("tool_name")
            self._set(
                pane,
                ActivityState.WORKING,
                _tool_detail(tool, payload) if tool else pane.detail,
                at,
                keep=True,
            )
        elif name == "PermissionRequest":
            tool = event.text("tool_name")
            self._set(pane, ActivityState.WORKING, _tool_detail(tool, payload), at, keep=True)
            request = _confirmation(tool, payload.get("tool_input"))
            detail = _line("permission: " + _tool_detail(tool, payload))
            self._ask(pane, event, at, InteractionKind.CONFIRMATION, request, tool, detail)
        elif name == "Notification":
            self._notification(pane, event, at)
        elif name == "Stop" or name == "AfterAgent":
            said = _raw(event, "last_assistant_message") or _raw(event, "prompt_response")
            self._set(pane, ActivityState.IDLE, _line("done: " + said) if said else "done", at)
        elif name == "agent-turn-complete":
            said = _raw(event, "last-assistant-message")
            self._set(pane, ActivityState.IDLE, _line("done: " + said) if said else "done", at)
        elif name == "StopFailure":
            error = event.text("error") or "failed"
            message = _raw(event, "error_details") or _raw(event, "message")
            self._set(
                pane, ActivityState.ERRORED, _line(f"{error}: {message}" if message else error), at
            )
        elif name == "SessionEnd":
            reason = event.text("reason")
            self._set(
                pane,
                ActivityState.STOPPED,
                _line(f"session ended ({reason})" if reason else "session ended"),
                at,
            )

    def _notification(self, pane: _Pane, event: AgentEvent, at: datetime) -> None:
        kind = event.text("notification_type")
        message = _raw(event, "message") or _raw(event, "title")
        if kind in ("permission_prompt", "ToolPermission"):
            if pane.pending is None:
                match = _PERMISSION_TOOL.search(message)
                tool = match[1] if match else _line(message) or "permission"
                details = event.payload.get("details")  # Gemini CLI's ToolPermission
                request = _confirmation(tool, details if isinstance(details, Mapping) else None)
                detail = _line(f"permission: {tool}")
                self._ask(pane, event, at, InteractionKind.CONFIRMATION, request, tool, detail)
        elif kind == "elicitation_dialog":
            if pane.pending is None:
                question = Question("answer", _line(message) or "a question", "")
                detail = _line(f"question: {question.question}")
                self._ask(
                    pane, event, at, InteractionKind.QUESTION, Questions((question,)), "", detail
                )
        elif kind == "idle_prompt":
            pane.pending = None
            if pane.state is not ActivityState.IDLE:
                self._set(pane, ActivityState.IDLE, "waiting for a prompt", at)

    def _ask(
        self,
        pane: _Pane,
        event: AgentEvent,
        at: datetime,
        kind: InteractionKind,
        request: Request | None,
        tool: str,
        detail: str,
    ) -> None:
        """A prompt the event reports. Its id is the tool call's when the agent names it,
        else the event's (the same in every roost process reading the same record)."""
        use = event.text("tool_use_id")
        request_id = use or f"{event.pane}:{event.id or int(at.timestamp() * 1000)}"
        source = f"hook {event.name}"
        pending = _Pending(request_id, kind, at, pane.conversation, request, tool, detail, source)
        exited = pane.shell_since or (pane.listed is not None and pane.listed.dead)
        if not exited and not self._is_retired(pane, pending):
            pane.pending = pending

    def _set(
        self, pane: _Pane, state: ActivityState, detail: str, at: datetime, keep: bool = False
    ) -> None:
        """A new state from a hook; `keep` keeps `since` when the state stays the same (a new
        tool while working)."""
        if not (keep and pane.state is state and pane.since is not None):
            pane.since = at
        pane.state, pane.detail = state, detail

    # states

    def _activity(self, pane: _Pane, now: datetime) -> Activity:
        listed = pane.listed
        evidence = self._evidence(pane, now)
        if listed is not None and listed.dead:
            return Activity(
                ActivityState.STOPPED, "pane dead: its command exited", listed.activity, evidence
            )
        if pane.shell_since is not None and (pane.event_at or pane.reading):
            assert listed is not None
            return Activity(
                ActivityState.STOPPED, f"back to {listed.command}", pane.shell_since, evidence
            )
        if pane.pending is not None:
            pending = pane.pending
            return Activity(ActivityState.NEEDS_YOU, pending.detail, pending.since, evidence)
        if pane.state is ActivityState.STOPPED:
            assert pane.since is not None
            return Activity(pane.state, pane.detail, pane.since, evidence)
        reading = self._current_reading(pane, now)
        if reading is not None and self._screen_leads(pane, now):
            state = _SCREEN_STATES[reading.state]
            assert pane.read_at is not None
            since = pane.since if pane.state is state and pane.since else pane.read_at
            detail = _line(reading.detail or reading.rule)
        elif pane.state is not None and pane.since is not None:
            state, detail, since = pane.state, pane.detail, pane.since
        else:
            why = "screen not read yet" if pane.read_at is None else "no rule matched the screen"
            return Activity(
                ActivityState.UNKNOWN, f"no hook events; {why}", pane.first_seen or now, evidence
            )
        if state is ActivityState.WORKING and self._stale(pane, now):
            last = self._last_sign(pane)
            why = f"working {_age(now - last)} ago, no hook event or output since"
            return Activity(ActivityState.UNKNOWN, why, last, evidence)
        return Activity(state, detail, since, evidence)

    def _evidence(self, pane: _Pane, now: datetime) -> str:
        parts = []
        if pane.event_at is not None:
            parts.append(f"hook {pane.event or 'event'} {_age(now - pane.event_at)} ago")
        if pane.pending is not None and not pane.pending.source.startswith("hook"):
            parts.append(pane.pending.source)
        if pane.read_at is not None and now - pane.read_at < STALE_AFTER:
            if pane.reading is None:
                parts.append(f"screen: no rule matched {_age(now - pane.read_at)} ago")
            elif pane.pending is not None and pane.reading.state in (
                ScreenState.PERMISSION,
                ScreenState.QUESTION,
            ):
                parts.append("screen shows the dialog")
            else:
                parts.append(f"screen: {pane.reading.rule} {_age(now - pane.read_at)} ago")
        if pane.signal is not None and now - pane.signal.at < STALE_AFTER:
            text = f" {_line(pane.signal.text)!r}" if pane.signal.text else ""
            parts.append(f"{pane.signal.kind}{text} {_age(now - pane.signal.at)} ago")
        listed = pane.listed
        if listed is None:
            parts.append("not listed by tmux yet")
        elif listed.dead:
            parts.append("pane dead")
        else:
            output = _age(now - listed.activity)
            parts.append(f"{listed.command or 'no command'}, output {output} ago")
            if listed.bell:
                parts.append("bell")
        if pane.note is not None and now - pane.note[1] < STALE_AFTER:
            parts.append(f"{pane.note[0]} {_age(now - pane.note[1])} ago")
        return "; ".join(parts)

    def _last_sign(self, pane: _Pane) -> datetime:
        """The latest hook event or output of the pane."""
        times = [t for t in (pane.event_at, pane.listed.activity if pane.listed else None) if t]
        return max(times) if times else (pane.first_seen or self._clock())

    def _stale(self, pane: _Pane, now: datetime) -> bool:
        return now - self._last_sign(pane) > STALE_AFTER

    def _current_reading(self, pane: _Pane, now: datetime) -> ScreenReading | None:
        """The last screen reading while it still stands: recent, or nothing printed since."""
        if pane.reading is None or pane.read_at is None:
            return None
        if now - pane.read_at <= SCREEN_CURRENT:
            return pane.reading
        if pane.listed is not None and pane.listed.activity <= pane.read_at:
            return pane.reading
        return None

    def _screen_leads(self, pane: _Pane, now: datetime) -> bool:
        """The screen outweighs the hooks: none came, or it was read well after their last
        event (the agent did something they did not report, as when Esc interrupts it)."""
        if pane.event_at is None or pane.read_at is None:
            return True
        return pane.read_at - pane.event_at > SCREEN_GRACE

    def _ambiguous(self, pane: _Pane, now: datetime) -> bool:
        """Only a screen can say more: no hook events yet, a stale state, or a signal since the
        last hook event."""
        if pane.event_at is None:
            return True
        if pane.state is ActivityState.WORKING and self._stale(pane, now):
            return True
        signs = [
            t
            for t in (pane.bell_at, pane.title_changed, pane.signal.at if pane.signal else None)
            if t
        ]
        return any(t - pane.event_at > SCREEN_GRACE for t in signs) and not (
            pane.read_at is not None and pane.read_at >= max(signs)
        )

    def _worth_checking(self, pane: _Pane, now: datetime) -> bool:
        """A state the hooks gave that the terminal may have ended without a hook: a prompt
        answered in the terminal, a turn interrupted, a prompt typed with hooks gone."""
        assert pane.event_at is not None and pane.listed is not None
        if pane.pending is not None:
            return pane.listed.activity - pane.pending.since > SCREEN_GRACE
        if pane.state is ActivityState.WORKING:
            return now - pane.event_at > QUIET_HOOKS
        return pane.listed.activity - pane.event_at > QUIET_HOOKS

    # items

    def _interaction(self, pane: _Pane, pending: _Pending) -> Interaction:
        session_id = pane.listed.session_id if pane.listed else ""
        name = self._session_names.get(session_id, "")
        assistant_id = f"tmux:{name or session_id or pane.id}"
        return Interaction(
            assistant_key=session_key(self.host_key, session_id),
            assistant_id=assistant_id,
            assistant=name or pane.id,
            request_id=pending.request_id,
            kind=pending.kind,
            conversation=pending.conversation,
            since=pending.since,
            request=pending.request,
            tool=pending.tool,
            pane=PaneTarget(self.server, pane.id, pane.agent),
        )

    def _end_pending(self, pane: _Pane, note: str, now: datetime) -> None:
        if pane.pending is None:
            return
        self._retired[self._interaction(pane, pane.pending).id] = note
        while len(self._retired) > MAX_RETIRED:
            self._retired.popitem(last=False)
        pane.pending = None
        pane.note = (note, now)

    def _is_retired(self, pane: _Pane, pending: _Pending) -> bool:
        """Whether this prompt was retired before (its event read again, its dialog still
        drawn while the answer is typed)."""
        return self._interaction(pane, pending).id in self._retired

    # panes

    def _pane(self, pane_id: str, now: datetime) -> _Pane:
        pane = self._panes.get(pane_id)
        if pane is None:
            pane = self._panes[pane_id] = _Pane(pane_id, first_seen=now)
            while len(self._panes) > MAX_PANES:
                self._panes.popitem(last=False)
        return pane

    @staticmethod
    def _agent_of(listed: TmuxPane) -> str:
        """The agent a pane runs, by its command, or by its title when the command is one an
        agent runs as (`node`)."""
        if listed.command in AGENT_COMMANDS:
            return listed.command
        if _HOSTED_COMMAND.fullmatch(listed.command):
            match = _TITLE_AGENT.search(listed.title)
            if match:
                return match[1].lower()
        return ""


_SCREEN_STATES = {
    ScreenState.PERMISSION: ActivityState.NEEDS_YOU,
    ScreenState.QUESTION: ActivityState.NEEDS_YOU,
    ScreenState.WORKING: ActivityState.WORKING,
    ScreenState.IDLE: ActivityState.IDLE,
    ScreenState.ERROR: ActivityState.ERRORED,
}


def _screen_pending(pane: _Pane, reading: ScreenReading, now: datetime) -> _Pending:
    """A prompt known from the screen only. Its id comes from what the screen shows, so
    every roost process reading the same dialog names it alike."""
    shown = "\0".join([pane.id, reading.rule, reading.detail, *(o.label for o in reading.options)])
    request_id = "screen:" + hashlib.sha256(shown.encode()).hexdigest()[:12]
    source = f"screen: {reading.rule}"
    if reading.state is ScreenState.QUESTION:
        question = Question("answer", reading.detail or "a question")
        request = Questions((question,))
        detail = _line(f"question: {question.question}")
        return _Pending(request_id, InteractionKind.QUESTION, now, pane.conversation, request,
                        "", detail, source)  # fmt: skip
    tool = reading.detail or "permission"
    asked = _confirmation(tool, None)
    return _Pending(request_id, InteractionKind.CONFIRMATION, now, pane.conversation, asked,
                    tool, _line(f"permission: {tool}"), source)  # fmt: skip


def _confirmation(tool: str, tool_input: object) -> Confirmation:
    """A prompt's request: its input as sent (none when only a notification or the screen told
    of it), and "always allow" as the agent's dialog offers it."""
    try:
        text = json_text(tool_input) if tool_input is not None else ""
    except EventError:
        text = "{}"
    subject = _line(_subject(tool_input))
    pattern, scope = _AGENT_RULE
    return Confirmation(tool, text, patterns=(pattern,), scopes=(scope,), subject=subject)


def _asked(event: AgentEvent) -> Questions | None:
    """The question Claude Code's question menu shows first (its AskUserQuestion tool asks up
    to four, one screen each: the inbox offers the one on screen), with its choices; None for
    any other tool."""
    tool_input = event.payload.get("tool_input")
    if event.text("tool_name") != ASK_TOOL or not isinstance(tool_input, Mapping):
        return None
    asked = tool_input.get("questions")
    first = asked[0] if isinstance(asked, list) and asked else None
    if not isinstance(first, Mapping) or not isinstance(first.get("question"), str):
        return None
    options = first.get("options")
    choices = tuple(
        Choice(_line(option["label"]), _line(option["label"]), _line(_text(option, "description")))
        for option in (options if isinstance(options, list) else [])[:MAX_CHOICES]
        if isinstance(option, Mapping) and isinstance(option.get("label"), str)
    )
    header = _line(_text(first, "header"))  # the menu's tab: `Deploy`
    return Questions((Question("answer", _line(first["question"]), header, choices),))


def _text(mapping: Mapping[str, object], key: str) -> str:
    value = mapping.get(key)
    return value if isinstance(value, str) else ""


def _subject(tool_input: object) -> str:
    """What a tool acts on (its command, file, URL...), as sent; empty when it does not say."""
    if isinstance(tool_input, Mapping):
        for key in ("command", "file_path", "path", "url", "pattern", "query", "description"):
            value = tool_input.get(key)
            if isinstance(value, str) and value.strip():
                return value
    return ""


def _tool_detail(tool: str, payload: Mapping[str, object]) -> str:
    """`Bash: npm test`, `Edit: src/cart.py`: the tool and what it acts on, one line."""
    subject = _subject(payload.get("tool_input"))
    return _line(f"{tool}: {subject}" if subject else tool)


def _raw(event: AgentEvent, key: str) -> str:
    """A payload text as sent, lines and all (`_line` makes it safe to show)."""
    value = event.payload.get(key)
    return value if isinstance(value, str) else ""


def _line(text: str) -> str:
    """The first line of `text`, printable and short."""
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    first = printable(first)
    return first if len(first) <= _DETAIL_CHARS else first[: _DETAIL_CHARS - 1] + "…"


def _age(delta: timedelta) -> str:
    seconds = max(0, int(delta.total_seconds()))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h"
