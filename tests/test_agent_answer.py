"""Answering a coding agent's prompt by typing into its pane (services/agents/answer.py), against
the fake agent (tests/peers/fake_agent.py) in a private tmux server, and the keys chosen for the
sample screens of the screen rules."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.activity.model import (
    Allow,
    Answer,
    Confirmation,
    Decision,
    Interaction,
    InteractionKind,
    OptionAnswer,
    Outcome,
    PaneTarget,
    Question,
    Questions,
    Reply,
    Secret,
    SkipAnswer,
    TextAnswer,
)
from services.agents.answer import GONE, Unanswerable, answer_in_pane, keys_for
from services.agents.model import AgentEvent
from services.agents.screens import MenuOption, ScreenReading, ScreenState, read_screen
from services.agents.watch import AgentWatch
from services.core.safe_text import is_printable
from services.terminal.tmux import TmuxServer, TmuxSocket
from tests.peers.agent_panes import AgentPane, start_agent

SCREENS = Path(__file__).parent / "agents" / "screens"
DIALOG = "Do you want to proceed?"
QUESTION = "Which branch should I deploy?"
ALLOW, DENY = Allow(Decision.ALLOW), Allow(Decision.DENY)
SINCE = datetime(2026, 1, 1, tzinfo=UTC)


def reading_of(sample: str, agent: str) -> ScreenReading:
    reading = read_screen((SCREENS / sample).read_text(), agent)
    assert reading is not None
    return reading


def confirmation(
    agent: AgentPane, tool: str = "Bash", command: str = "npm test", kind: str = "claude"
) -> Interaction:
    """The inbox item the agent's PermissionRequest makes (as the watch would build it)."""
    tool_input = {"command": command, "description": "Run the test suite"}
    return Interaction(
        assistant_key="host/session:$0",
        assistant_id="tmux:agent",
        assistant="agent",
        request_id="toolu_1",
        kind=InteractionKind.CONFIRMATION,
        conversation="",
        since=SINCE,
        request=Confirmation(tool, json.dumps(tool_input, indent=2)),
        tool=tool,
        pane=PaneTarget(_socket(agent), agent.pane, kind),
    )


def question(agent: AgentPane, asked: str = QUESTION) -> Interaction:
    return Interaction(
        assistant_key="host/session:$0",
        assistant_id="tmux:agent",
        assistant="agent",
        request_id="toolu_2",
        kind=InteractionKind.QUESTION,
        conversation="",
        since=SINCE,
        request=Questions((Question("q", asked),)),
        pane=PaneTarget(_socket(agent), agent.pane, "claude"),
    )


def _socket(agent: AgentPane) -> str:
    assert agent.server.socket is not None
    return agent.server.socket.value


@pytest.fixture
def elsewhere(tmp_path: Path) -> TmuxServer:
    """The server passed to `answer_in_pane`: one nobody listens on, so only the server the
    interaction names can be reached."""
    return TmuxServer(TmuxSocket(str(tmp_path / "no-tmux-server")))


def typed_nothing(agent: AgentPane) -> None:
    """Prove that nothing reached the agent's idle prompt: a sentinel typed now is the first
    thing on it (tmux delivers keys in order, and the agent echoes them in order)."""
    agent.server.send_keys(agent.pane, "SENTINEL", literal=True)
    screen = agent.wait_for("SENTINEL")
    assert screen.rstrip().splitlines()[-1] == "> SENTINEL"


# -- end to end: the fake agent in a private tmux server -----------------------------------


def test_allowing_types_the_yes_option_and_the_tool_runs(
    tmux_server: TmuxServer, tmp_path: Path, elsewhere: TmuxServer
) -> None:
    agent = start_agent(tmux_server, tmp_path)
    reading = read_screen(agent.wait_for(DIALOG), "claude")
    assert reading is not None and reading.detail == "Bash command: npm test"

    assert answer_in_pane(elsewhere, confirmation(agent), ALLOW) == (Outcome.ACCEPTED, "")

    agent.wait_for("ANSWER: allow")
    assert agent.event_names() == [
        "SessionStart",
        "UserPromptSubmit",
        "PreToolUse",
        "PermissionRequest",
        "PostToolUse",
        "Stop",
    ]
    records = agent.events()
    assert {record["pane"] for record in records} == {agent.pane}
    assert all(record["tmux"].startswith(_socket(agent) + ",") for record in records)
    request = records[3]["payload"]
    assert request["tool_name"] == "Bash"
    assert request["tool_input"]["command"] == "npm test"
    assert request["tool_use_id"] == records[4]["payload"]["tool_use_id"]
    assert records[-1]["payload"]["last_assistant_message"] == "Tests pass"


def test_always_allowing_types_the_dont_ask_again_option(
    tmux_server: TmuxServer, tmp_path: Path, elsewhere: TmuxServer
) -> None:
    agent = start_agent(tmux_server, tmp_path)
    agent.wait_for(DIALOG)

    always = Allow(Decision.ALLOW, pattern="npm test:*")
    assert answer_in_pane(elsewhere, confirmation(agent), always) == (Outcome.ACCEPTED, "")

    agent.wait_for("ANSWER: always")
    assert "PostToolUse" in agent.event_names()


def test_denying_types_the_no_option_and_the_tool_never_runs(
    tmux_server: TmuxServer, tmp_path: Path, elsewhere: TmuxServer
) -> None:
    agent = start_agent(tmux_server, tmp_path)
    agent.wait_for(DIALOG)

    assert answer_in_pane(elsewhere, confirmation(agent), DENY) == (Outcome.ACCEPTED, "")

    screen = agent.wait_for("ANSWER: deny")
    assert DIALOG not in screen
    assert "PostToolUse" not in agent.event_names()
    assert agent.events()[-1]["payload"]["last_assistant_message"] == "denied"


def test_a_dialog_answered_in_the_terminal_gets_nothing(
    tmux_server: TmuxServer, tmp_path: Path, elsewhere: TmuxServer
) -> None:
    agent = start_agent(tmux_server, tmp_path)
    agent.wait_for(DIALOG)
    tmux_server.send_keys(agent.pane, "1")  # someone at the terminal allowed it
    agent.wait_for("ANSWER: allow")

    outcome = answer_in_pane(elsewhere, confirmation(agent), DENY)

    assert outcome == (Outcome.ALREADY_ANSWERED, GONE)
    typed_nothing(agent)


def test_another_command_on_screen_gets_nothing(
    tmux_server: TmuxServer, tmp_path: Path, elsewhere: TmuxServer
) -> None:
    agent = start_agent(tmux_server, tmp_path, "--command", "rm -rf build")
    agent.wait_for(DIALOG)

    npm = confirmation(agent)
    edit = _edit(npm)
    edit_notified = replace(npm, tool="Edit", request=None)  # a notification names only the tool
    for asked in (npm, edit, edit_notified):
        assert answer_in_pane(elsewhere, asked, ALLOW) == (Outcome.ALREADY_ANSWERED, GONE)

    assert DIALOG in agent.screen()
    # Had `1` been typed, the command would have run: the dialog still takes a denial.
    bash_notified = replace(npm, tool="Bash", request=None)
    assert answer_in_pane(elsewhere, bash_notified, DENY) == (Outcome.ACCEPTED, "")
    agent.wait_for("ANSWER: deny")


def _edit(interaction: Interaction) -> Interaction:
    edit = Confirmation("Edit", json.dumps({"file_path": "/srv/app/cart.py", "old_string": "x"}))
    return replace(interaction, tool="Edit", request=edit)


@pytest.mark.parametrize(
    "text",
    [
        "-n; echo $(touch pwned) `id` #{pane_id} 'q' \"dq\" ~ {x} \\; end",
        "ends with a semicolon;",
        ";",
        "\\;",
        "-",
        "café 日本 \u276f",
    ],
)
def test_a_typed_answer_arrives_verbatim(
    tmux_server: TmuxServer, tmp_path: Path, elsewhere: TmuxServer, text: str
) -> None:
    agent = start_agent(tmux_server, tmp_path, "--question")
    agent.wait_for("Enter to select")

    reply = Reply((TextAnswer("q", text),))
    assert answer_in_pane(elsewhere, question(agent), reply) == (Outcome.ACCEPTED, "")

    agent.wait_for("ANSWER: ")
    stop = agent.events()[-1]["payload"]
    assert (stop["hook_event_name"], stop["last_assistant_message"]) == (
        "Stop",
        f"You said: {text}",
    )
    assert not (tmp_path / "project" / "pwned").exists()


def test_a_choice_of_the_question_menu_is_typed_by_its_key(
    tmux_server: TmuxServer, tmp_path: Path, elsewhere: TmuxServer
) -> None:
    agent = start_agent(tmux_server, tmp_path, "--question")
    reading = read_screen(agent.wait_for("Enter to select"), "claude")
    assert reading is not None and reading.state is ScreenState.QUESTION
    assert reading.detail == QUESTION

    reply = Reply((OptionAnswer("q", "staging"),))
    assert answer_in_pane(elsewhere, question(agent), reply) == (Outcome.ACCEPTED, "")

    agent.wait_for("ANSWER: staging")


def test_another_question_on_screen_gets_nothing(
    tmux_server: TmuxServer, tmp_path: Path, elsewhere: TmuxServer
) -> None:
    agent = start_agent(tmux_server, tmp_path, "--question")
    agent.wait_for("Enter to select")

    other = question(agent, "Which database should the prototype use?")
    outcome = answer_in_pane(elsewhere, other, Reply((OptionAnswer("q", "1"),)))

    assert outcome == (Outcome.ALREADY_ANSWERED, GONE)
    assert "Enter to select" in agent.screen()


def test_an_answer_of_the_wrong_kind_is_refused_and_nothing_typed(
    tmux_server: TmuxServer, tmp_path: Path, elsewhere: TmuxServer
) -> None:
    agent = start_agent(tmux_server, tmp_path, "--question")
    agent.wait_for("Enter to select")

    outcome, why = answer_in_pane(elsewhere, question(agent), ALLOW)

    assert (outcome, why) == (Outcome.REFUSED, "a question takes a reply, not allow or deny")
    reply = Reply((TextAnswer("q", "fine"),))
    assert answer_in_pane(elsewhere, question(agent), reply) == (Outcome.ACCEPTED, "")
    agent.wait_for("ANSWER: fine")  # not `main`, which a typed Enter or `1` would have chosen


def test_a_pane_or_server_gone_is_a_failure_not_an_exception(
    tmux_server: TmuxServer, tmp_path: Path, elsewhere: TmuxServer
) -> None:
    agent = start_agent(tmux_server, tmp_path)
    agent.wait_for(DIALOG)
    interaction = confirmation(agent)
    assert interaction.pane is not None
    gone = replace(interaction, pane=replace(interaction.pane, pane="%99"))
    no_server = replace(interaction, pane=replace(interaction.pane, server=str(tmp_path / "x")))
    outcome, why = answer_in_pane(elsewhere, gone, ALLOW)
    assert outcome is Outcome.FAILED and "%99" in why
    outcome, why = answer_in_pane(elsewhere, no_server, ALLOW)
    assert outcome is Outcome.FAILED and why
    no_pane = replace(interaction, pane=None)
    assert answer_in_pane(elsewhere, no_pane, ALLOW)[0] is Outcome.REFUSED
    assert DIALOG in agent.screen()


def test_codex_approval_is_answered_with_its_letter(
    tmux_server: TmuxServer, tmp_path: Path, elsewhere: TmuxServer
) -> None:
    agent = start_agent(tmux_server, tmp_path, agent="codex")
    reading = read_screen(agent.wait_for("Would you like to run"), "codex")
    assert reading is not None and reading.detail == "npm test"

    interaction = confirmation(agent, kind="codex")
    assert answer_in_pane(elsewhere, interaction, ALLOW) == (Outcome.ACCEPTED, "")

    agent.wait_for("ANSWER: allow")
    [record] = agent.events()
    assert record["pane"] == agent.pane
    assert record["payload"]["type"] == "agent-turn-complete"
    assert record["payload"]["last-assistant-message"] == "Tests pass"


def test_gemini_confirmation_is_answered_and_its_hooks_report_it(
    tmux_server: TmuxServer, tmp_path: Path, elsewhere: TmuxServer
) -> None:
    agent = start_agent(tmux_server, tmp_path, agent="gemini")
    reading = read_screen(agent.wait_for("Allow execution of"), "gemini")
    assert reading is not None and reading.state is ScreenState.PERMISSION

    interaction = confirmation(agent, tool="run_shell_command", kind="gemini")
    assert answer_in_pane(elsewhere, interaction, DENY) == (Outcome.ACCEPTED, "")

    agent.wait_for("ANSWER: deny")
    names = agent.event_names()
    assert names[:4] == ["SessionStart", "BeforeAgent", "BeforeTool", "Notification"]
    assert "AfterTool" not in names and names[-1] == "AfterAgent"


def test_the_fake_agent_fails_and_ends_as_scripted(tmux_server: TmuxServer, tmp_path: Path) -> None:
    agent = start_agent(tmux_server, tmp_path, "--fail", "rate_limit", "--end")

    screen = agent.wait_for("SESSION END")

    assert "FAILED: rate_limit" in screen
    assert agent.event_names() == ["SessionStart", "UserPromptSubmit", "StopFailure", "SessionEnd"]
    assert agent.events()[2]["payload"]["error"] == "rate_limit"


def test_the_watchs_inbox_item_is_answered_in_its_pane(
    tmux_server: TmuxServer, tmp_path: Path, elsewhere: TmuxServer
) -> None:
    """From the hooks' events through the watch's inbox to the keys: the item the watch makes
    of a PermissionRequest names the pane and the request that `answer_in_pane` checks."""
    agent = start_agent(tmux_server, tmp_path)
    agent.wait_for(DIALOG)
    listing = tmux_server.list_sessions()
    watch = AgentWatch(listing.socket_path, "host", clock=lambda: SINCE)
    events = [
        AgentEvent(SINCE, "claude", record["tmux"].split(",")[0], record["pane"], record["payload"])
        for record in agent.events()
    ]
    watch.feed(events)
    watch.observe(listing, SINCE)

    [item] = watch.inbox()
    assert item.kind is InteractionKind.CONFIRMATION and item.tool == "Bash"
    assert answer_in_pane(elsewhere, item, ALLOW) == (Outcome.ACCEPTED, "")
    agent.wait_for("ANSWER: allow")


# -- keys for the sample screens of the screen rules -----------------------------------------


@pytest.mark.parametrize(
    ("sample", "agent", "allow", "always", "deny"),
    [
        ("claude-permission-bash.txt", "claude", "1", "2", "3"),
        ("claude-permission-boxed.txt", "claude", "1", "2", "3"),
        ("claude-permission-edit.txt", "claude", "1", "2", "3"),
        ("codex-approval-command.txt", "codex", "y", "p", "3"),
        ("gemini-permission-exec.txt", "gemini", "1", "2", "3"),
    ],
)
def test_permission_keys_come_from_the_menu_on_screen(
    sample: str, agent: str, allow: str, always: str, deny: str
) -> None:
    reading = reading_of(sample, agent)
    trusted = Allow(Decision.ALLOW, pattern="p", scope="s")

    assert keys_for(reading, ALLOW) == [((allow,), False)]
    assert keys_for(reading, trusted) == [((always,), False)]
    assert keys_for(reading, DENY) == [((deny,), False)]


def test_always_is_refused_where_the_dialog_offers_no_such_choice() -> None:
    options = (MenuOption("1", "Yes", Decision.ALLOW), MenuOption("2", "No", Decision.DENY))
    reading = ScreenReading("claude", ScreenState.PERMISSION, "rule", "Bash command: x", options)

    with pytest.raises(Unanswerable, match="no 'don't ask again'"):
        keys_for(reading, Allow(Decision.ALLOW, pattern="x:*"))
    assert keys_for(reading, DENY) == [(("2",), False)]


def test_question_keys_pick_a_choice_or_type_into_the_free_text_one() -> None:
    reading = reading_of("claude-question.txt", "claude")

    assert keys_for(reading, Reply((OptionAnswer("q", "2"),))) == [(("2",), False)]
    assert keys_for(reading, Reply((OptionAnswer("q", "PostgreSQL"),))) == [(("2",), False)]
    assert keys_for(reading, Reply((TextAnswer("q", "DuckDB"),))) == [
        (("3",), False),
        (("DuckDB",), True),
        (("Enter",), False),
    ]
    assert keys_for(reading, Reply(close=True)) == [(("Escape",), False)]


@pytest.mark.parametrize(
    ("sample", "answer", "why"),
    [
        ("claude-permission-bash.txt", Reply((TextAnswer("q", "yes"),)), "allow or deny"),
        ("claude-permission-bash.txt", Secret("hunter2"), "allow or deny"),
        ("claude-question.txt", ALLOW, "a reply"),
        ("claude-question.txt", Reply((OptionAnswer("q", "MySQL"),)), "no choice"),
        ("claude-question.txt", Reply((SkipAnswer("q"),)), "close"),
        ("claude-question.txt", Reply(), "exactly one"),
        ("claude-question.txt", Reply((TextAnswer("q", "two\nlines"),)), "one line"),
        ("claude-idle.txt", ALLOW, "nothing to answer"),
    ],
)
def test_answers_that_do_not_fit_the_screen_are_refused(
    sample: str, answer: Answer, why: str
) -> None:
    with pytest.raises(Unanswerable, match=why):
        keys_for(reading_of(sample, sample.split("-")[0]), answer)


@given(st.text(max_size=200))
def test_a_text_answer_is_typed_literally_or_refused_whole(text: str) -> None:
    reading = reading_of("claude-question.txt", "claude")
    try:
        keys = keys_for(reading, Reply((TextAnswer("q", text),)))
    except Unanswerable:
        assert not is_printable(text)
        return
    literal = [typed for typed, is_literal in keys if is_literal]
    assert literal == ([(text,)] if text else [])
    assert keys[-1] == (("Enter",), False)
