"""Screen rules (services/agents/screens.py) against saved sample screens
(tests/agents/screens/, README.md there says where each came from): each rule finds its
screen, with the detail and the menu's keys and decisions; ordinary shell screens match
nothing; arbitrary text never raises."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.activity.model import Decision
from services.agents.screens import ScreenState, read_screen

SAMPLES = Path(__file__).parent / "agents" / "screens"


def sample(name: str) -> str:
    return (SAMPLES / name).read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("name", "agent", "state", "rule", "detail"),
    [
        (
            "claude-permission-bash.txt",
            "claude",
            ScreenState.PERMISSION,
            "claude permission dialog",
            "Bash command: npm test -- --watch=false",
        ),
        (
            "claude-permission-edit.txt",
            "claude",
            ScreenState.PERMISSION,
            "claude permission dialog",
            "Edit file: src/cart.py",
        ),
        (
            "claude-permission-boxed.txt",
            "claude",
            ScreenState.PERMISSION,
            "claude permission dialog",
            'Tool use: exa - web_search_exa(query: "tmux capture-pane options") (MCP)',
        ),
        (
            "claude-question.txt",
            "claude",
            ScreenState.QUESTION,
            "claude question",
            "Which database should the prototype use?",
        ),
        ("claude-working.txt", "claude", ScreenState.WORKING, "claude spinner", "Pondering…"),
        ("claude-idle.txt", "claude", ScreenState.IDLE, "claude prompt box", ""),
        ("claude-idle-boxed.txt", "claude", ScreenState.IDLE, "claude prompt box", ""),
        (
            "claude-error-overloaded.txt",
            "claude",
            ScreenState.ERROR,
            "claude error",
            'API Error: 529 {"type":"error","error":{"type":"overloaded_error",'
            '"message":"Overloaded"}}',
        ),
        (
            "codex-approval-command.txt",
            "codex",
            ScreenState.PERMISSION,
            "codex approval",
            "git add src/cart.py",
        ),
        (
            "codex-approval-edits.txt",
            "codex",
            ScreenState.PERMISSION,
            "codex approval",
            "src/cart.py is outside the writable roots",
        ),
        ("codex-working.txt", "codex", ScreenState.WORKING, "codex working", "Working"),
        ("codex-idle.txt", "codex", ScreenState.IDLE, "codex composer", ""),
        (
            "gemini-permission-exec.txt",
            "gemini",
            ScreenState.PERMISSION,
            "gemini confirmation",
            "Shell npm install left-pad [current working directory /home/ada/shop]",
        ),
        (
            "gemini-permission-edit.txt",
            "gemini",
            ScreenState.PERMISSION,
            "gemini confirmation",
            "Edit src/cart.py: return sum(item.price for... => return sum(item.price...",
        ),
        (
            "gemini-working.txt",
            "gemini",
            ScreenState.WORKING,
            "gemini working",
            "Polishing the cart total",
        ),
        ("gemini-idle.txt", "gemini", ScreenState.IDLE, "gemini prompt", ""),
    ],
)
def test_each_sample_is_read_by_its_rule(
    name: str, agent: str, state: ScreenState, rule: str, detail: str
) -> None:
    for told in (agent, None):  # the agent known from hooks, or only guessed from the screen
        reading = read_screen(sample(name), told)
        assert reading is not None, (name, told)
        assert (reading.agent, reading.state, reading.rule, reading.detail) == (
            agent,
            state,
            rule,
            detail,
        )


@pytest.mark.parametrize(
    ("name", "keys", "allow", "deny"),
    [
        ("claude-permission-bash.txt", ["1", "2", "3"], "1", "3"),
        ("claude-permission-edit.txt", ["1", "2", "3"], "1", "3"),
        ("claude-permission-boxed.txt", ["1", "2", "3"], "1", "3"),
        ("codex-approval-command.txt", ["y", "p", "3"], "y", "3"),
        ("codex-approval-edits.txt", ["y", "a", "3"], "y", "3"),
        ("gemini-permission-exec.txt", ["1", "2", "3"], "1", "3"),
        ("gemini-permission-edit.txt", ["1", "2", "3", "4"], "1", "4"),
    ],
)
def test_a_dialogs_options_name_the_keys_that_allow_and_deny(
    name: str, keys: list[str], allow: str, deny: str
) -> None:
    reading = read_screen(sample(name))
    assert reading is not None
    assert [option.key for option in reading.options] == keys
    decided = {option.decision: option.key for option in reading.options if option.decision}
    assert decided == {Decision.ALLOW: allow, Decision.DENY: deny}
    assert all(option.label and option.label.isprintable() for option in reading.options)


def test_a_question_lists_its_choices_without_their_descriptions() -> None:
    reading = read_screen(sample("claude-question.txt"), "claude")
    assert reading is not None
    assert [(o.key, o.label, o.decision) for o in reading.options] == [
        ("1", "SQLite (Recommended)", None),
        ("2", "PostgreSQL", None),
        ("3", "Type something.", None),
        ("4", "Chat about this", None),
    ]


@pytest.mark.parametrize("name", sorted(p.name for p in SAMPLES.glob("shell-*.txt")))
def test_ordinary_shell_screens_match_nothing(name: str) -> None:
    for agent in (None, "claude", "codex", "gemini", "aider"):
        assert read_screen(sample(name), agent) is None


def test_rules_of_another_agent_do_not_read_a_screen() -> None:
    assert read_screen(sample("claude-permission-bash.txt"), "gemini") is None
    assert read_screen(sample("gemini-permission-exec.txt"), "claude") is None
    assert read_screen(sample("codex-approval-command.txt"), "claude") is None


def test_a_dialog_answered_long_ago_does_not_count_once_scrolled_away() -> None:
    old = sample("claude-permission-bash.txt")
    later = "\n".join(f"⏺ line {n} of a long answer" for n in range(80))
    assert read_screen(old + later + "\n" + sample("claude-idle.txt")).state is ScreenState.IDLE  # type: ignore[union-attr]


def test_a_finished_turns_spinner_in_the_scrollback_is_not_working() -> None:
    rule = "─" * 40
    screen = "\n".join(
        [
            "✻ Seasoning… (44s · ↓ 247 tokens)",
            "  ⎿  Tip: Use /btw to ask a quick side question",
            "",
            "⏺ All checks pass.",
            "",
            rule,
            "\u276f ",
            rule,
        ]
    )
    reading = read_screen(screen, "claude")
    assert reading is not None and reading.state is ScreenState.IDLE


def test_a_dialog_without_a_way_to_deny_is_not_a_permission() -> None:
    screen = "Do you want to proceed?\n\u276f 1. Yes\n  2. Yes, and don't ask again\n"
    assert read_screen(screen, "claude") is None


def test_details_and_labels_are_made_printable() -> None:
    screen = sample("claude-permission-bash.txt").replace("npm test", "npm\x1b]0;pwned\x07 test")
    reading = read_screen(screen)
    assert reading is not None
    assert "\x1b" not in reading.detail and "\\e" in reading.detail


def test_empty_and_huge_screens() -> None:
    assert read_screen("") is None
    assert read_screen("\n\n   \n") is None
    assert read_screen("x" * 1_000_000) is None
    huge = "a" * 200_000 + "\n" + sample("codex-working.txt")
    reading = read_screen(huge)
    assert reading is not None and reading.state is ScreenState.WORKING


_SCREENISH = st.lists(
    st.sampled_from(
        [
            *"abc ?.()…•>●│╭╮╰╯─╌⎿✻⠹$\n\t\x1b\x07\u276f\u203a",
            "1. Yes",
            "2. No",
            "3. No, and tell Claude",
            "Do you want to proceed?",
            "esc to interrupt",
            "Allow once",
            "(esc to cancel, 3s)",
            "Would you like to run the following command?",
            "Enter to select · ↑/↓ to navigate · Esc to cancel",
            "API Error: ",
            "(y)",
            "\n" + "─" * 20,
        ]
    ),
    max_size=80,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(
    text=st.one_of(st.text(max_size=2000), _SCREENISH),
    agent=st.sampled_from([None, "claude", "codex", "gemini", "x"]),
)
def test_read_screen_never_raises(text: str, agent: str | None) -> None:
    reading = read_screen(text, agent)
    if reading is not None:
        assert reading.state in ScreenState
        assert "\n" not in reading.detail and "\x1b" not in reading.detail
        for option in reading.options:
            assert option.key and "\n" not in option.label
