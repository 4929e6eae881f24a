"""Coding agents in tmux, end to end with real parts only: roost's hook installed by `roost hooks
install` into the test's own home, the fake agent (tests/peers/fake_agent.py) reading those
settings in a private tmux server, so every event goes agent -> `roost hook` -> spool -> state
database -> the agent watch; then `roost ps`, `roost inbox` and `roost answer` as fresh
processes, and the console driven with Textual's pilot."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from services.activity.model import Outcome, session_key
from services.fleet.model import HOST_KEY
from services.terminal.tmux import TmuxServer
from tests.peers.agent_panes import AgentPane, start_agent
from tests.pilot import SIZE, make_app, wait_until
from tests.test_app_inbox import inbox_rows, toasts, write_config
from tests.test_cli import roost
from tui.app import RoostApp
from tui.screens.inbox import InboxScreen
from widgets.keyed_table import KeyedTable

DIALOG = "Do you want to proceed?"
GONE = "the dialog is no longer on screen: nothing typed"


def install(agent: str, home: Path) -> None:
    """`roost hooks install AGENT --yes`, checked by `roost hooks status` to be in the agent's
    settings under the test's home."""
    result = roost("hooks", "install", agent, "--yes")
    assert result.returncode == 0, result.stderr
    settings = home / (".codex/config.toml" if agent == "codex" else ".claude/settings.json")
    [status] = [s for s in json_of("hooks", "status")["agents"] if s["agent"] == agent]
    assert (status["installed"], status["config"], status["missing"]) == (True, str(settings), [])


def json_of(*args: str) -> Any:
    result = roost(*args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def session_activity() -> dict[str, str] | None:
    """`roost ps --json`'s activity of the agent's tmux session (the only one)."""
    [row] = [row for row in json_of("ps") if row["kind"] == "tmux session"]
    assert row["name"] == "0" and row["on"] == "this machine"
    activity: dict[str, str] | None = row["activity"]
    return activity


def eventually(condition: Callable[[], Any], what: str, within: float = 20) -> Any:
    """The first true value of `condition`, polled (each poll is a roost process or a capture);
    fails after `within` s naming `what`."""
    deadline = time.monotonic() + within
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
    return value


def waits_on_a_dialog(tmux_server: TmuxServer, tmp_path: Path, home: Path) -> AgentPane:
    """The fake Claude Code asking to run `npm test`, its hooks roost's as installed."""
    install("claude", home)
    agent = start_agent(tmux_server, tmp_path, installed=True)
    agent.wait_for(DIALOG)
    return agent


def typed_nothing(agent: AgentPane) -> None:
    """Prove that nothing was typed into the dialog: it is still up, and denying it at the
    terminal now is what it takes (a `1` typed earlier would have allowed it)."""
    assert DIALOG in agent.screen()
    agent.server.send_keys(agent.pane, "3")
    agent.wait_for("ANSWER: deny")


# -- the command line ----------------------------------------------------------------------


def test_a_permission_dialog_is_seen_answered_and_recorded_from_the_command_line(
    tmux_server: TmuxServer, tmp_path: Path, isolated_env: Path
) -> None:
    agent = waits_on_a_dialog(tmux_server, tmp_path, isolated_env)

    activity = session_activity()
    assert activity is not None
    assert (activity["state"], activity["detail"]) == ("needs you", "permission: Bash: npm test")
    assert activity["evidence"].startswith("hook PermissionRequest")
    [item] = json_of("inbox")
    assert (item["assistant"], item["assistant_id"], item["kind"]) == (
        "0",
        "tmux:0",
        "confirmation",
    )
    assert (item["tool"], item["input"]["command"]) == ("Bash", "npm test")
    assert item["conversation"] == "5e55a0e1-fake-4a6e-8000-000000000001"
    assert json_of("inbox", "0") == [item]  # named by its tmux session
    assert json_of("inbox", "--show", item["id"][:6]) == item

    answered = roost("answer", item["id"], "allow")

    assert answered.returncode == 0, answered.stderr
    assert answered.stdout == f"{item['id']} (0: Bash: npm test): allow\n"
    screen = agent.wait_for("ANSWER: allow")
    assert DIALOG not in screen
    assert json_of("inbox") == []
    activity = session_activity()
    assert activity is not None
    assert (activity["state"], activity["detail"]) == ("idle", "done: Tests pass")
    assert activity["evidence"].startswith("hook Stop")
    [record] = json_of("inbox", "--history")
    assert record["request_id"] == item["request_id"] == "toolu_01FakeAgent5e55a0e1"
    assert (record["assistant"], record["asked"], record["answered"]) == (
        "0",
        "Bash: npm test",
        "allow",
    )
    assert (record["outcome"], record["front_end"]) == ("accepted", "command line")

    again = roost("answer", item["id"], "allow")  # the history knows it: nothing more typed
    assert again.returncode == 0 and "was already answered: allow" in again.stderr
    agent.server.send_keys(agent.pane, "SENTINEL", literal=True)
    assert agent.wait_for("SENTINEL").rstrip().splitlines()[-1] == "> SENTINEL"
    assert len(json_of("inbox", "--history")) == 1


def test_a_question_is_listed_with_its_choices_and_one_is_picked_from_the_command_line(
    tmux_server: TmuxServer, tmp_path: Path, isolated_env: Path
) -> None:
    install("claude", isolated_env)
    agent = start_agent(tmux_server, tmp_path, "--question", installed=True)
    agent.wait_for("Enter to select")

    activity = session_activity()
    assert activity is not None
    assert (activity["state"], activity["detail"]) == (
        "needs you",
        "question: Which branch should I deploy?",
    )
    [item] = json_of("inbox")
    assert (item["kind"], item["request_id"]) == ("question", "toolu_01FakeQuestion5e55a0e1")
    [question] = item["questions"]
    assert (question["id"], question["question"]) == ("answer", "Which branch should I deploy?")
    assert [(o["id"], o["description"]) for o in question["options"]] == [
        ("main", "The release branch"),
        ("staging", "What QA tries first"),
    ]
    wrong = roost("answer", item["id"], "--option", "answer=prod")
    assert wrong.returncode == 1 and "has no option 'prod': main, staging" in wrong.stderr

    answered = roost("answer", item["id"], "--option", "answer=staging")

    assert answered.returncode == 0, answered.stderr
    agent.wait_for("ANSWER: staging")
    assert json_of("inbox") == []
    activity = session_activity()
    assert activity is not None
    assert (activity["state"], activity["detail"]) == ("idle", "done: You said: staging")
    [record] = json_of("inbox", "--history")
    assert (record["answered"], record["outcome"]) == ("answer = staging", "accepted")


def test_answering_a_dialog_no_longer_on_screen_types_nothing_and_says_so(
    tmux_server: TmuxServer, tmp_path: Path, isolated_env: Path
) -> None:
    agent = waits_on_a_dialog(tmux_server, tmp_path, isolated_env)
    [item] = json_of("inbox")
    # The screen cleared without any hook event (tmux resets the pane's terminal): the hooks
    # still say the agent waits, but what is on screen asks nothing.
    subprocess.run(tmux_server.argv("send-keys", "-R", "-t", agent.pane), check=True)
    eventually(lambda: DIALOG not in agent.screen(), "the screen cleared")

    answered = roost("answer", item["id"], "allow")

    assert answered.returncode == 0, answered.stderr
    assert answered.stdout == ""
    assert answered.stderr == f"roost: {item['id']} (0: Bash: npm test): {GONE}\n"
    [record] = json_of("inbox", "--history")
    assert (record["outcome"], record["detail"]) == ("already answered", GONE)
    agent.server.send_keys(agent.pane, "3")  # a `1` typed would have allowed it
    agent.wait_for("ANSWER: deny")


def test_a_dialog_answered_at_the_terminal_leaves_the_inbox_and_gets_nothing(
    tmux_server: TmuxServer, tmp_path: Path, isolated_env: Path
) -> None:
    agent = waits_on_a_dialog(tmux_server, tmp_path, isolated_env)
    [item] = json_of("inbox")
    agent.server.send_keys(agent.pane, "3")  # someone at the terminal denied it
    agent.wait_for("ANSWER: deny")

    answered = roost("answer", item["id"], "allow")

    assert answered.returncode == 1
    assert f"no pending request has the id {item['id']!r}" in answered.stderr
    assert json_of("inbox") == [] and json_of("inbox", "--history") == []
    activity = session_activity()
    assert activity is not None and (activity["state"], activity["detail"]) == (
        "idle",
        "done: denied",
    )


def test_an_api_error_ending_the_turn_shows_errored_with_its_reason(
    tmux_server: TmuxServer, tmp_path: Path, isolated_env: Path
) -> None:
    install("claude", isolated_env)
    agent = start_agent(tmux_server, tmp_path, "--fail", "overloaded", installed=True)
    agent.wait_for("FAILED: overloaded")

    activity = session_activity()

    assert activity is not None
    assert activity["state"] == "errored"
    assert activity["detail"] == "overloaded: API Error: overloaded"
    assert activity["evidence"].startswith("hook StopFailure")
    assert json_of("inbox") == []


def test_codex_notify_shows_the_turn_done_with_its_last_message(
    tmux_server: TmuxServer, tmp_path: Path, isolated_env: Path
) -> None:
    install("codex", isolated_env)
    agent = start_agent(tmux_server, tmp_path, agent="codex", installed=True)
    agent.wait_for("Press enter to confirm")
    # Codex reports nothing before its turn ends, and its pane runs `python3` here (not
    # `codex`): roost knows no agent in it yet.
    assert session_activity() is None
    tmux_server.send_keys(agent.pane, "y")
    agent.wait_for("ANSWER: allow")

    activity = session_activity()

    assert activity is not None
    assert (activity["state"], activity["detail"]) == ("idle", "done: Tests pass")
    assert activity["evidence"].startswith("hook agent-turn-complete")


# -- the console ---------------------------------------------------------------------------


def session_cell(app: RoostApp, column: str) -> str:
    """The agent's session row of the main screen (empty until shown), by column key."""
    sessions = [session_key(HOST_KEY, s.id) for a in app.roost.fleet for s in a.sessions]
    table = app.main_screen.query_one("#assistants", KeyedTable)
    for row in table.rows_shown:
        if row.key in sessions:
            cells = zip(table.columns, row.cells, strict=True)
            return next(cell.plain for c, cell in cells if c.key == column)
    return ""


async def in_the_inbox(pilot: Any, app: RoostApp) -> None:
    """The agent's session needs you on the main screen, and its item is in the inbox."""
    await wait_until(pilot, lambda: "needs you" in session_cell(app, "activity"), "needs you")
    await pilot.press("i")
    await wait_until(pilot, lambda: isinstance(app.screen, InboxScreen), "the inbox")
    await wait_until(pilot, lambda: len(inbox_rows(app)) == 1, "the agent's item")
    [item] = app.activity.inbox
    assert (item.assistant, item.tool, item.pane is not None) == ("0", "Bash", True)


async def test_the_console_shows_the_agent_waiting_and_answers_it_in_its_pane(
    tmux_server: TmuxServer, tmp_path: Path, isolated_env: Path
) -> None:
    agent = waits_on_a_dialog(tmux_server, tmp_path, isolated_env)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await in_the_inbox(pilot, app)

        await pilot.press("a")

        await wait_until(pilot, lambda: not inbox_rows(app), "the item gone")
        assert app.main_screen.inbox_count == 0
        await asyncio.to_thread(agent.wait_for, "ANSWER: allow")
        await wait_until(pilot, lambda: "idle" in session_cell(app, "activity"), "idle")
        history = await asyncio.to_thread(app.roost.history)
        assert [(r.answered, r.outcome, r.front_end) for r in history] == [
            ("allow", Outcome.ACCEPTED, "console")
        ]


async def test_a_console_that_only_watches_refuses_to_type_into_the_pane(
    tmux_server: TmuxServer, tmp_path: Path, isolated_env: Path
) -> None:
    write_config(isolated_env, '[terminal]\nlocal_mode = "watch"\n')
    agent = waits_on_a_dialog(tmux_server, tmp_path, isolated_env)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await in_the_inbox(pilot, app)

        await pilot.press("a")

        await wait_until(
            pilot, lambda: any("only watches" in toast for toast in toasts(app)), "the refusal"
        )
        assert len(inbox_rows(app)) == 1  # still waiting
        history = await asyncio.to_thread(app.roost.history)
        assert [(r.outcome, r.front_end) for r in history] == [(Outcome.REFUSED, "console")]
        await asyncio.to_thread(typed_nothing, agent)
