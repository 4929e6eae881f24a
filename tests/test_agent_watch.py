"""The agent watch (services/agents/watch.py): hook events with the agents' real payload field
names, tmux listings and screen readings combined into each pane's state, its evidence and its
inbox item; liveness and staleness; which panes are worth a capture; and, under Hypothesis,
any order of events, listings and readings leaves valid states (and tmux's pane listing parser
never raises)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from services.activity.model import (
    ActivityState,
    Choice,
    Confirmation,
    Decision,
    InteractionKind,
    PaneTarget,
    Question,
    Questions,
)
from services.agents.model import AgentEvent
from services.agents.screens import MenuOption, ScreenReading, ScreenState
from services.agents.watch import AGENT_RULE, MAX_PANES, AgentWatch
from services.terminal.signals import SignalKind, TerminalSignal
from services.terminal.tmux import (
    PANE_FORMAT,
    TmuxListing,
    TmuxPane,
    TmuxSession,
    TmuxState,
    parse_panes,
)

SERVER = "/run/user/1000/tmux-1000/default"
HOST = "local"
T0 = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def pane(
    pane_id: str = "%1",
    command: str = "claude",
    *,
    session: str = "$1",
    output: float = 0,
    dead: bool = False,
    bell: bool = False,
    title: str = "box",
) -> TmuxPane:
    return TmuxPane(pane_id, session, 4242, dead, at(output), bell, False, command, title)


def listing(*panes: TmuxPane) -> TmuxListing:
    sessions = tuple(
        TmuxSession(sid, {"$1": "work", "$2": "docs"}.get(sid, sid), 1, 0, T0, T0)
        for sid in sorted({p.session_id for p in panes})
    )
    return TmuxListing(TmuxState.RUNNING, sessions, panes=panes, socket_path=SERVER)


_ids = iter(range(1, 1_000_000))


def hook(
    seconds: float,
    name: str,
    *,
    pane_id: str = "%1",
    agent: str = "claude",
    session: str = "s1",
    server: str = SERVER,
    **fields: Any,
) -> AgentEvent:
    """An event as `roost hook` records it, with Claude Code's / Gemini CLI's field names."""
    payload: dict[str, Any] = {
        "session_id": session,
        "transcript_path": f"/home/ada/.claude/projects/shop/{session}.jsonl",
        "cwd": "/home/ada/shop",
        "hook_event_name": name,
        **fields,
    }
    return AgentEvent(at(seconds), agent, server, pane_id, payload, next(_ids))


def codex_turn_complete(seconds: float, message: str) -> AgentEvent:
    payload = {
        "type": "agent-turn-complete",
        "thread-id": "t-1",
        "turn-id": "1",
        "cwd": "/home/ada/shop",
        "input-messages": ["fix the test"],
        "last-assistant-message": message,
    }
    return AgentEvent(at(seconds), "codex", SERVER, "%1", payload, next(_ids))


def watch_with(*panes: TmuxPane, now: float = 0) -> AgentWatch:
    watch = AgentWatch(SERVER, HOST, clock=lambda: at(10_000))
    watch.observe(listing(*panes), at(now))
    return watch


BASH_INPUT = {"command": "npm test", "description": "Run the tests"}


def test_a_claude_turn_with_a_permission_dialog() -> None:
    watch = watch_with(pane())
    watch.feed([hook(0, "SessionStart", source="startup")])
    assert watch.panes(at(1))["%1"].activity.state is ActivityState.IDLE

    watch.feed([hook(10, "UserPromptSubmit", prompt="fix the failing cart test\nplease")])
    working = watch.panes(at(11))["%1"].activity
    assert (working.state, working.detail, working.since) == (
        ActivityState.WORKING,
        "prompt: fix the failing cart test",
        at(10),
    )

    watch.feed(
        [hook(12, "PreToolUse", tool_name="Bash", tool_input=BASH_INPUT, tool_use_id="toolu_1")]
    )
    working = watch.panes(at(13))["%1"].activity
    assert (working.detail, working.since) == ("Bash: npm test", at(10))  # since kept

    watch.feed(
        [
            hook(
                13,
                "PermissionRequest",
                tool_name="Bash",
                tool_input=BASH_INPUT,
                permission_suggestions=[{"type": "addRules"}],
                permission_mode="default",
            )
        ]
    )
    agent = watch.panes(at(25))["%1"]
    assert (agent.activity.state, agent.activity.detail, agent.activity.since) == (
        ActivityState.NEEDS_YOU,
        "permission: Bash: npm test",
        at(13),
    )
    assert "hook PermissionRequest 12s ago" in agent.activity.evidence
    item = agent.interaction
    assert item is not None and watch.inbox() == (item,)
    assert item.kind is InteractionKind.CONFIRMATION
    assert isinstance(item.request, Confirmation)
    assert (item.request.tool, item.request.subject) == ("Bash", "npm test")
    assert item.request.input_json == json.dumps(BASH_INPUT, indent=2)
    rule = (item.request.patterns[0].value, item.request.scopes[0].value)
    assert rule == (AGENT_RULE, AGENT_RULE)  # always allow: what the dialog offers
    assert item.tool == "Bash" and item.summary == "Bash: npm test"
    assert item.pane == PaneTarget(SERVER, "%1", "claude")
    assert item.conversation == "s1"
    assert (item.assistant_key, item.assistant_id, item.assistant) == (
        "local/session:$1",
        "tmux:work",
        "work",
    )
    assert watch.sessions(at(25)) == {"$1": agent.activity}

    watch.feed([hook(30, "PostToolUse", tool_name="Bash", tool_input=BASH_INPUT, tool_response={})])
    after = watch.panes(at(31))["%1"]
    assert after.interaction is None and watch.inbox() == ()
    assert after.activity.state is ActivityState.WORKING

    watch.feed(
        [
            hook(
                40,
                "Stop",
                stop_hook_active=False,
                last_assistant_message="All 14 tests pass.\nMore",
            )
        ]
    )
    done = watch.panes(at(41))["%1"].activity
    assert (done.state, done.detail, done.since) == (
        ActivityState.IDLE,
        "done: All 14 tests pass.",
        at(40),
    )


def test_the_interaction_id_is_the_same_in_every_process() -> None:
    events = [hook(5, "PermissionRequest", tool_name="Bash", tool_input=BASH_INPUT)]
    ids = set()
    for _ in range(2):
        watch = watch_with(pane())
        watch.feed(events)
        ids.add(watch.inbox()[0].id)
    assert len(ids) == 1


def test_a_permission_notification_without_a_request_makes_an_item() -> None:
    watch = watch_with(pane())
    watch.feed(
        [
            hook(
                6,
                "Notification",
                notification_type="permission_prompt",
                message="Claude needs your permission to use Bash",
                title="Claude Code",
            )
        ]
    )
    (item,) = watch.inbox()
    assert (item.kind, item.tool) == (InteractionKind.CONFIRMATION, "Bash")
    assert isinstance(item.request, Confirmation) and item.request.input_json == ""  # not said
    # the PermissionRequest's notification, 6 s after it, adds nothing
    watch.feed([hook(7, "PermissionRequest", tool_name="Bash", tool_input=BASH_INPUT)])
    watch.feed([hook(13, "Notification", notification_type="permission_prompt", message="x")])
    assert len(watch.inbox()) == 1


def test_an_elicitation_is_a_question_and_idle_prompt_is_idle() -> None:
    watch = watch_with(pane())
    watch.feed(
        [
            hook(
                3,
                "Notification",
                notification_type="elicitation_dialog",
                message="Which account should the deploy use?",
            )
        ]
    )
    (item,) = watch.inbox()
    assert item.kind is InteractionKind.QUESTION
    assert isinstance(item.request, Questions)
    assert [q.question for q in item.request.questions] == ["Which account should the deploy use?"]
    asking = watch.panes(at(4))["%1"].activity
    assert (asking.state, asking.detail) == (
        ActivityState.NEEDS_YOU,
        "question: Which account should the deploy use?",
    )

    watch.feed([hook(70, "Notification", notification_type="idle_prompt", message="waiting")])
    assert watch.inbox() == ()
    assert watch.panes(at(71))["%1"].activity.state is ActivityState.IDLE


def test_claude_question_menu_is_a_question_with_its_choices() -> None:
    """AskUserQuestion (PreToolUse, no permission asked): the first question with its options;
    its elicitation notification adds nothing, its PostToolUse clears it."""
    asked = {
        "questions": [
            {
                "question": "Which branch should I deploy?",
                "header": "Deploy",
                "options": [
                    {"label": "main", "description": "The release branch"},
                    {"label": "staging"},
                    {"description": "no label: left out"},
                ],
                "multiSelect": False,
            },
            {"question": "And then?", "header": "Next", "options": []},
        ]
    }
    watch = watch_with(pane())
    ask = hook(3, "PreToolUse", tool_name="AskUserQuestion", tool_input=asked, tool_use_id="t1")
    told = hook(4, "Notification", notification_type="elicitation_dialog", message="Claude needs…")
    watch.feed([ask, told])
    (item,) = watch.inbox()
    assert (item.kind, item.request_id) == (InteractionKind.QUESTION, "t1")
    assert item.request == Questions(
        (
            Question(
                "answer",
                "Which branch should I deploy?",
                "Deploy",
                (Choice("main", "main", "The release branch"), Choice("staging", "staging")),
            ),
        )
    )
    assert watch.panes(at(5))["%1"].activity.detail == "question: Which branch should I deploy?"
    answered = {"answers": {"Which branch should I deploy?": "main"}}
    done = hook(9, "PostToolUse", tool_name="AskUserQuestion", tool_response=answered)
    watch.feed([done])
    assert watch.inbox() == ()


def test_a_question_menu_without_questions_is_no_item() -> None:
    watch = watch_with(pane())
    for number, tool_input in enumerate(({}, {"questions": []}, {"questions": ["x"]}, "x"), 1):
        watch.feed([hook(number, "PreToolUse", tool_name="AskUserQuestion", tool_input=tool_input)])
    assert watch.inbox() == ()
    assert watch.panes(at(5))["%1"].activity.state is ActivityState.WORKING


def test_stop_failure_is_errored_and_session_end_is_stopped() -> None:
    watch = watch_with(pane())
    watch.feed(
        [hook(1, "UserPromptSubmit", prompt="go"), hook(2, "StopFailure", error="rate_limit")]
    )
    errored = watch.panes(at(3))["%1"].activity
    assert (errored.state, errored.detail) == (ActivityState.ERRORED, "rate_limit")
    watch.feed([hook(4, "SessionEnd", reason="prompt_input_exit")])
    stopped = watch.panes(at(5))["%1"].activity
    assert (stopped.state, stopped.detail) == (
        ActivityState.STOPPED,
        "session ended (prompt_input_exit)",
    )


def test_an_event_of_another_session_does_not_clear_a_prompt() -> None:
    watch = watch_with(pane())
    watch.feed([hook(1, "PermissionRequest", tool_name="Bash", tool_input=BASH_INPUT)])
    watch.feed([hook(2, "PostToolUse", session="other", tool_name="Read")])
    assert len(watch.inbox()) == 1
    watch.feed([hook(3, "UserPromptSubmit", prompt="never mind")])
    assert watch.inbox() == ()


def test_codex_turn_complete_is_idle_with_its_last_message() -> None:
    watch = watch_with(pane(command="codex"))
    watch.feed([codex_turn_complete(5, "Fixed the cart total; tests pass.")])
    agent = watch.panes(at(6))["%1"]
    assert agent.agent == "codex"
    assert (agent.activity.state, agent.activity.detail) == (
        ActivityState.IDLE,
        "done: Fixed the cart total; tests pass.",
    )


def test_a_gemini_session() -> None:
    watch = watch_with(pane(command="node"))
    run = {"command": "npm install left-pad"}
    watch.feed(
        [
            hook(1, "BeforeTool", agent="gemini", tool_name="run_shell_command", tool_input=run),
            hook(
                2,
                "Notification",
                agent="gemini",
                notification_type="ToolPermission",
                message="Tool run_shell_command requires permission",
                details={"type": "exec", "command": "npm install left-pad"},
            ),
        ]
    )
    agent = watch.panes(at(3))["%1"]
    assert agent.agent == "gemini" and agent.activity.state is ActivityState.NEEDS_YOU
    assert agent.interaction is not None
    assert isinstance(agent.interaction.request, Confirmation)
    assert '"command": "npm install left-pad"' in agent.interaction.request.input_json
    watch.feed([hook(5, "AfterTool", agent="gemini", tool_name="run_shell_command")])
    assert watch.inbox() == ()
    watch.feed([hook(9, "AfterAgent", agent="gemini", prompt_response="Installed left-pad.")])
    assert watch.panes(at(9))["%1"].activity.detail == "done: Installed left-pad."
    watch.feed([hook(12, "SessionEnd", agent="gemini", reason="exit")])
    assert watch.panes(at(12))["%1"].activity.state is ActivityState.STOPPED


def test_a_dead_pane_is_stopped_and_its_prompt_leaves_the_inbox() -> None:
    watch = watch_with(pane())
    watch.feed([hook(1, "PermissionRequest", tool_name="Bash", tool_input=BASH_INPUT)])
    watch.observe(listing(pane(dead=True, output=2)), at(3))
    activity = watch.panes(at(4))["%1"].activity
    assert activity.state is ActivityState.STOPPED and "pane dead" in activity.evidence
    assert watch.inbox() == ()


def test_a_pane_back_to_its_shell_after_hooks_is_stopped() -> None:
    watch = watch_with(pane())
    watch.feed([hook(1, "UserPromptSubmit", prompt="go")])
    watch.observe(listing(pane(command="bash", output=5)), at(6))
    activity = watch.panes(at(7))["%1"].activity
    assert (activity.state, activity.detail, activity.since) == (
        ActivityState.STOPPED,
        "back to bash",
        at(6),
    )
    assert watch.suspects(at(8)) == []


def test_vanished_panes_are_forgotten_and_a_stopped_server_ends_all() -> None:
    watch = watch_with(pane("%1"), pane("%2", session="$2"))
    watch.feed([hook(1, "UserPromptSubmit", prompt="go", pane_id="%2")])
    watch.observe(listing(pane("%1")), at(2))
    assert set(watch.panes(at(2))) == {"%1"}
    watch.observe(TmuxListing(TmuxState.ERROR, detail="timed out"), at(3))
    assert set(watch.panes(at(3))) == {"%1"}  # a failed listing changes nothing
    watch.observe(TmuxListing(TmuxState.NO_SERVER), at(4))
    assert watch.panes(at(4)) == {}


def test_events_of_panes_not_listed_yet_wait_for_a_listing() -> None:
    watch = watch_with(pane("%1"))
    watch.feed([hook(1, "UserPromptSubmit", prompt="go", pane_id="%9")])
    early = watch.panes(at(2))["%9"]
    assert early.session_id == "" and "not listed by tmux yet" in early.activity.evidence
    assert set(watch.sessions(at(2))) == {"$1"}  # %1's session; %9's is not known yet
    watch.observe(listing(pane("%1")), at(5))
    assert "%9" in watch.panes(at(5))  # still young: tmux may list it next time
    watch.observe(listing(pane("%1")), at(60))
    assert "%9" not in watch.panes(at(60))


def test_agents_known_by_their_command_only_wait_for_the_screen() -> None:
    watch = watch_with(
        pane("%1", "claude"),
        pane("%2", "node"),
        pane("%3", "bash"),
        pane("%4", "node", title="✳ Claude Code"),
        pane("%5", "aider"),
    )
    found = watch.panes(at(1))
    assert {p: a.agent for p, a in found.items()} == {"%1": "claude", "%4": "claude", "%5": "aider"}
    unknown = found["%1"].activity
    assert (unknown.state, unknown.detail) == (
        ActivityState.UNKNOWN,
        "no hook events; screen not read yet",
    )
    assert sorted(watch.suspects(at(1))) == ["%1", "%4", "%5"]

    spinner = ScreenReading("claude", ScreenState.WORKING, "claude spinner", "Pondering…")
    watch.screen("%1", spinner, at(2))
    working = watch.panes(at(3))["%1"].activity
    assert (working.state, working.detail) == (ActivityState.WORKING, "Pondering…")
    assert "screen: claude spinner 1s ago" in working.evidence

    watch.screen("%5", None, at(2))
    assert watch.panes(at(3))["%5"].activity.detail == "no hook events; no rule matched the screen"

    # the agent exits: one known by its command only is no agent any more, one whose screen
    # was read has stopped
    watch.observe(listing(pane("%1", "zsh", output=4), pane("%4", "bash")), at(5))
    exited = watch.panes(at(5))
    assert set(exited) == {"%1"}
    assert (exited["%1"].activity.state, exited["%1"].activity.detail) == (
        ActivityState.STOPPED,
        "back to zsh",
    )


def test_working_without_news_for_minutes_is_unknown_never_idle() -> None:
    watch = watch_with(pane(output=12))
    watch.feed([hook(12, "PreToolUse", tool_name="Bash", tool_input=BASH_INPUT)])
    assert watch.panes(at(200))["%1"].activity.state is ActivityState.WORKING
    stale = watch.panes(at(12 + 6 * 60))["%1"].activity
    assert stale.state is ActivityState.UNKNOWN
    assert stale.detail == "working 6 min ago, no hook event or output since"
    assert "%1" in watch.suspects(at(12 + 6 * 60))


def test_output_keeps_a_long_tool_run_working() -> None:
    watch = watch_with(pane(output=12))
    watch.feed([hook(12, "PreToolUse", tool_name="Bash", tool_input=BASH_INPUT)])
    watch.observe(listing(pane(output=12 + 9 * 60)), at(12 + 9 * 60))
    assert watch.panes(at(12 + 10 * 60))["%1"].activity.state is ActivityState.WORKING


def test_captures_are_debounced_and_wait_for_new_output() -> None:
    watch = watch_with(pane(output=0))
    assert watch.suspects(at(1)) == ["%1"]
    assert watch.suspects(at(1.5)) == []
    assert watch.suspects(at(10)) == []  # nothing printed since the capture


def test_a_capture_is_taken_again_two_seconds_after_new_output() -> None:
    watch = watch_with(pane(output=0))
    assert watch.suspects(at(1)) == ["%1"]
    watch.observe(listing(pane(output=2)), at(2))
    assert watch.suspects(at(2)) == []  # within 2 s of the last capture
    assert watch.suspects(at(3.5)) == ["%1"]


def test_a_bell_or_title_the_hooks_did_not_explain_makes_a_suspect() -> None:
    watch = watch_with(pane(output=5))
    watch.feed([hook(5, "Stop", last_assistant_message="done")])
    assert watch.suspects(at(6)) == []
    watch.observe(listing(pane(output=20, bell=True)), at(20))
    assert watch.suspects(at(20)) == ["%1"]
    assert "bell" in watch.panes(at(20))["%1"].activity.evidence

    titled = watch_with(pane(output=5))
    titled.feed([hook(5, "Stop", last_assistant_message="done")])
    titled.observe(listing(pane(output=30)), at(30))
    titled.signal("%1", TerminalSignal(SignalKind.TITLE, "✳ Fixing the cart", at(30)), at(30))
    assert titled.suspects(at(30)) == ["%1"]
    assert "title '✳ Fixing the cart' 0s ago" in titled.panes(at(30))["%1"].activity.evidence


PERMISSION_ON_SCREEN = ScreenReading(
    "claude",
    ScreenState.PERMISSION,
    "claude permission dialog",
    "Bash command: npm test",
    (
        MenuOption("1", "Yes", Decision.ALLOW),
        MenuOption("2", "Yes, and don't ask again for npm test commands", None),
        MenuOption("3", "No, and tell Claude what to do differently (esc)", Decision.DENY),
    ),
)
IDLE_ON_SCREEN = ScreenReading("claude", ScreenState.IDLE, "claude prompt box")


def test_a_dialog_answered_in_the_terminal_leaves_the_inbox() -> None:
    watch = watch_with(pane(output=1))
    watch.feed([hook(1, "PermissionRequest", tool_name="Bash", tool_input=BASH_INPUT)])
    watch.screen("%1", PERMISSION_ON_SCREEN, at(3))
    assert "screen shows the dialog" in watch.panes(at(3))["%1"].activity.evidence
    watch.observe(listing(pane(output=9)), at(9))
    assert watch.suspects(at(20)) == ["%1"]  # printed since the dialog: worth a look
    watch.screen("%1", None, at(20))  # no rule matched (a new layout?): nothing retired
    assert len(watch.inbox()) == 1
    watch.screen("%1", IDLE_ON_SCREEN, at(21))
    assert watch.inbox() == ()
    activity = watch.panes(at(22))["%1"].activity
    assert activity.state is ActivityState.IDLE
    assert "the dialog is no longer on screen 1s ago" in activity.evidence


def test_a_dialog_seen_only_on_screen_enters_the_inbox_with_a_stable_id() -> None:
    ids = set()
    for _ in range(2):
        watch = watch_with(pane(output=1))
        watch.screen("%1", PERMISSION_ON_SCREEN, at(2))
        (item,) = watch.inbox()
        assert item.request_id.startswith("screen:")
        assert (item.tool, item.pane) == (
            "Bash command: npm test",
            PaneTarget(SERVER, "%1", "claude"),
        )
        ids.add(item.id)
        agent = watch.panes(at(3))["%1"]
        assert agent.activity.state is ActivityState.NEEDS_YOU
        assert "screen: claude permission dialog" in agent.activity.evidence
    assert len(ids) == 1


def test_retire_ends_a_prompt_and_the_same_event_does_not_raise_it_again() -> None:
    recorded = hook(1, "PermissionRequest", tool_name="Bash", tool_input=BASH_INPUT)
    unrecorded = AgentEvent(recorded.at, "claude", SERVER, "%1", recorded.payload)  # read_spool's
    for request in (recorded, unrecorded):
        watch = watch_with(pane())
        watch.feed([request])
        (item,) = watch.inbox()
        watch.retire(item.id, "answered in the console", at(4))
        assert watch.inbox() == ()
        assert "answered in the console 1s ago" in watch.panes(at(5))["%1"].activity.evidence
        watch.feed([request])
        assert watch.inbox() == ()
        watch.retire("no-such-id", "x", at(6))


def test_other_servers_events_are_ignored_and_future_times_clamped() -> None:
    watch = AgentWatch(SERVER, HOST, clock=lambda: at(100))
    watch.observe(listing(pane()), at(0))
    watch.feed(
        [hook(1, "UserPromptSubmit", prompt="elsewhere", server="/run/user/1000/tmux-1000/other")]
    )
    assert watch.panes(at(2))["%1"].activity.state is ActivityState.UNKNOWN
    watch.feed([hook(5_000, "UserPromptSubmit", prompt="from a fast clock")])
    assert watch.panes(at(101))["%1"].activity.since == at(100)


def test_a_session_shows_its_most_urgent_pane() -> None:
    watch = watch_with(pane("%1"), pane("%2"), pane("%3", session="$2"))
    watch.feed(
        [
            hook(1, "Stop", pane_id="%1", last_assistant_message="ok"),
            hook(2, "PermissionRequest", pane_id="%2", session="s2", tool_name="Edit"),
            hook(3, "UserPromptSubmit", pane_id="%3", session="s3", prompt="docs"),
        ]
    )
    sessions = watch.sessions(at(4))
    assert sessions["$1"].state is ActivityState.NEEDS_YOU
    assert sessions["$2"].state is ActivityState.WORKING


def test_memory_is_bounded() -> None:
    watch = AgentWatch(SERVER, HOST, clock=lambda: at(10_000))
    watch.feed(
        hook(1, "UserPromptSubmit", pane_id=f"%{n}", prompt="go") for n in range(2 * MAX_PANES)
    )
    assert len(watch.panes(at(2))) == MAX_PANES


_NAMES = [
    "SessionStart",
    "UserPromptSubmit",
    "PreToolUse",
    "PostToolUse",
    "PostToolUseFailure",
    "PermissionRequest",
    "Notification",
    "Stop",
    "StopFailure",
    "SessionEnd",
    "BeforeTool",
    "AfterTool",
    "AfterAgent",
    "agent-turn-complete",
    "SubagentStop",
    "Whatever",
]
_VALUES = st.one_of(
    st.text(max_size=30),
    st.integers(),
    st.none(),
    st.lists(st.text(max_size=5), max_size=3),
    st.dictionaries(st.text(max_size=5), st.text(max_size=20), max_size=3),
)
_PAYLOADS = st.fixed_dictionaries(
    {"hook_event_name": st.sampled_from(_NAMES)},
    optional={
        "session_id": st.sampled_from(["s1", "s2", ""]),
        "notification_type": st.sampled_from(
            ["permission_prompt", "idle_prompt", "elicitation_dialog", "ToolPermission", "x"]
        ),
        "tool_name": _VALUES,
        "tool_input": _VALUES,
        "tool_use_id": _VALUES,
        "message": _VALUES,
        "prompt": _VALUES,
        "error": _VALUES,
        "last_assistant_message": _VALUES,
        "details": _VALUES,
        "source": st.sampled_from(["startup", "compact"]),
    },
)
_STEPS = st.lists(
    st.one_of(
        st.tuples(
            st.just("event"),
            st.integers(0, 900),
            st.sampled_from(["%1", "%2", ""]),
            st.sampled_from(["claude", "codex", "gemini", "x"]),
            _PAYLOADS,
            st.integers(0, 50),
        ),
        st.tuples(
            st.just("list"),
            st.integers(0, 900),
            st.sampled_from(["claude", "node", "bash", "codex"]),
            st.booleans(),
            st.booleans(),
            st.booleans(),
        ),
        st.tuples(
            st.just("screen"),
            st.integers(0, 900),
            st.sampled_from(["%1", "%2"]),
            st.one_of(st.none(), st.sampled_from([PERMISSION_ON_SCREEN, IDLE_ON_SCREEN])),
        ),
        st.tuples(st.just("signal"), st.integers(0, 900), st.sampled_from(list(SignalKind))),
        st.tuples(st.just("retire"), st.integers(0, 900)),
    ),
    max_size=25,
)


@settings(max_examples=200, deadline=None)
@given(steps=_STEPS)
def test_any_order_of_evidence_leaves_valid_states(steps: list[tuple[Any, ...]]) -> None:
    watch = AgentWatch(SERVER, HOST, clock=lambda: at(1_000))
    for step in steps:
        kind, now = step[0], at(step[1])
        if kind == "event":
            _, _, pane_id, agent, payload, event_id = step
            watch.feed([AgentEvent(now, agent, SERVER, pane_id, payload, event_id)])
        elif kind == "list":
            _, _, command, dead, bell, both = step
            panes = [pane("%1", command, output=step[1], dead=dead, bell=bell)]
            if both:
                panes.append(pane("%2", "claude", session="$2", output=step[1]))
            watch.observe(listing(*panes), now)
        elif kind == "screen":
            watch.screen(step[2], step[3], now)
        elif kind == "signal":
            watch.signal("%1", TerminalSignal(step[2], "t", now), now)
        else:
            for item in watch.inbox():
                watch.retire(item.id, "answered", now)
        watch.suspects(now)
        for agent_pane in watch.panes(now).values():
            activity = agent_pane.activity
            assert activity.state in ActivityState
            assert "\n" not in activity.detail and "\x1b" not in activity.evidence
            if agent_pane.interaction is not None:
                assert activity.state is ActivityState.NEEDS_YOU
                assert agent_pane.interaction.pane == PaneTarget(
                    SERVER, agent_pane.pane, agent_pane.agent
                )
        assert len(watch.inbox()) <= 2
        assert all(isinstance(a.state, ActivityState) for a in watch.sessions(now).values())


def _row(fields: Mapping[str, str]) -> str:
    return "\x1f".join(fields.values())


@settings(max_examples=300)
@given(
    text=st.one_of(
        st.text(),
        st.lists(
            st.lists(st.text(max_size=12), min_size=9, max_size=11).map("\x1f".join),
            max_size=5,
        ).map("\n".join),
    )
)
def test_parse_panes_never_raises(text: str) -> None:
    socket_path, panes = parse_panes(text)
    assert isinstance(socket_path, str)
    for found in panes:
        assert "\x1b" not in found.title and "\x1b" not in found.command


def test_parse_panes_reads_a_real_line() -> None:
    line = _row(
        {
            "socket_path": SERVER,
            "session_id": "$1",
            "pane_id": "%3",
            "pane_pid": "4242",
            "pane_dead": "0",
            "window_activity": str(int(T0.timestamp())),
            "window_bell_flag": "1",
            "window_silence_flag": "0",
            "pane_current_command": "claude",
            "pane_title": "✳ Claude Code\x1b]0;x",
        }
    )
    assert PANE_FORMAT.count("\x1f") == line.count("\x1f")
    socket_path, (found,) = parse_panes(line)
    assert socket_path == SERVER
    assert (found.id, found.command, found.bell, found.activity) == ("%3", "claude", True, T0)
    assert found.title == "✳ Claude Code\\e]0;x"


def test_a_turn_interrupted_in_the_terminal_is_found_on_screen() -> None:
    """Esc fires no hook: working with output but no hook event for a while is checked."""
    watch = watch_with(pane(output=0))
    watch.feed([hook(0, "PreToolUse", tool_name="Bash", tool_input=BASH_INPUT)])
    watch.observe(listing(pane(output=20)), at(20))
    assert watch.suspects(at(20)) == []  # hooks spoke 20 s ago: nothing to doubt yet
    watch.observe(listing(pane(output=40)), at(40))
    assert watch.suspects(at(40)) == ["%1"]
    watch.screen("%1", IDLE_ON_SCREEN, at(41))
    activity = watch.panes(at(42))["%1"].activity
    assert (activity.state, activity.since) == (ActivityState.IDLE, at(41))
    assert "hook PreToolUse 42s ago; screen: claude prompt box 1s ago" in activity.evidence
    watch.observe(listing(pane(output=45)), at(45))
    assert watch.suspects(at(50)) == []  # checked 9 s ago
    assert watch.suspects(at(57)) == ["%1"]


def test_a_screen_read_right_after_a_hook_event_does_not_outweigh_it() -> None:
    watch = watch_with(pane(output=0))
    watch.feed([hook(10, "UserPromptSubmit", prompt="go")])
    watch.screen("%1", IDLE_ON_SCREEN, at(11))  # drawn before the agent's own redraw
    assert watch.panes(at(12))["%1"].activity.state is ActivityState.WORKING


def test_working_on_screen_only_goes_stale_too() -> None:
    watch = watch_with(pane(command="aider", output=0))
    working = ScreenReading("claude", ScreenState.WORKING, "claude spinner", "Pondering…")
    watch.screen("%1", working, at(1))
    assert watch.panes(at(200))["%1"].activity.state is ActivityState.WORKING
    assert watch.panes(at(400))["%1"].activity.state is ActivityState.UNKNOWN
