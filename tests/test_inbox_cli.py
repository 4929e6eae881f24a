"""`roost inbox`, `roost answer` and the activity `roost ps` shows, end to end: the installed
command in a fresh process against the loopback runtimes of tests/peers/vellum.py, the answers
it leaves in roost's state database, and a secret that leaves no trace anywhere."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from services.activity.model import (
    Allow,
    Answer,
    Choice,
    Decision,
    Interaction,
    InteractionKind,
    OptionAnswer,
    Question,
    Questions,
    Reply,
    Secret,
    SkipAnswer,
    TextAnswer,
)
from services.core.errors import RoostError
from services.core.paths import RoostPaths
from services.core.state import AnswerRow, StateDatabase
from services.roost import InboxReading, answered_text
from tests.test_cli import roost

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


# Usage -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "why"),
    [
        (("abcd",), "answer with one of: allow|deny"),
        (("abcd", "allow", "--secret"), "answer with one of: allow|deny"),
        (("abcd", "--option", "q1=a", "--secret"), "answer with one of: allow|deny"),
        (("abcd", "allow", "--always", "npm *"), "--always PATTERN and --scope SCOPE go together"),
        (("abcd", "deny", "--always", "npm *", "--scope", "project"), "--always goes with allow"),
        (("abcd", "--close", "--skip", "q1"), "--close dismisses the whole batch"),
        (("abcd", "allow", "--transient"), "--transient goes with --secret"),
        (("abcd", "--option", "q1"), "expected --option QID=OID, not 'q1'"),
        (("abcd", "--text", "=words"), "expected --text QID=TEXT, not '=words'"),
        (("abcd", "--option", "q1=a", "--skip", "q1"), "question q1 is answered twice"),
        (("abcd", "maybe"), "invalid choice: 'maybe'"),
    ],
)
def test_an_answer_that_makes_no_sense_is_a_usage_error_before_any_runtime_is_asked(
    args: tuple[str, ...], why: str
) -> None:
    result = roost("answer", *args)

    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("usage: roost answer "), result.stderr
    assert why in result.stderr


def test_the_history_takes_no_names() -> None:
    result = roost("inbox", "--history", "alpha")

    assert result.returncode == 2
    assert "--history lists every answer" in result.stderr


# History -----------------------------------------------------------------------------------


def test_the_history_lists_the_answers_recorded_newest_first() -> None:
    database = StateDatabase.at(RoostPaths.resolve())
    for number, (answered, outcome) in enumerate(
        [("allow", "accepted"), ("secret (value not recorded)", "refused")]
    ):
        database.add_answer(
            AnswerRow(
                T0.replace(minute=number),
                "asst-1",
                "alpha",
                f"request-{number}",
                "secret" if number else "confirmation",
                "bash (high risk)",
                answered,
                "console",
                outcome,
                "not the guardian" if number else "",
            )
        )

    shown = roost("inbox", "--history")
    as_json = roost("inbox", "--history", "--json")
    limited = roost("inbox", "--history", "--json", "--limit", "1")

    assert shown.returncode == as_json.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].split() == ["WHEN", "ASSISTANT", "KIND", "OUTCOME", "ANSWERED", "(ASKED)"]
    assert "refused" in lines[1] and "secret (value not recorded)" in lines[1]
    assert "accepted" in lines[2] and lines[2].endswith("allow  (bash (high risk))")
    rows = json.loads(as_json.stdout)
    assert [row["request_id"] for row in rows] == ["request-1", "request-0"]
    assert rows[0] == {
        "at": T0.replace(minute=1).isoformat(),
        "assistant": "alpha",
        "assistant_id": "asst-1",
        "request_id": "request-1",
        "kind": "secret",
        "asked": "bash (high risk)",
        "answered": "secret (value not recorded)",
        "front_end": "console",
        "outcome": "refused",
        "detail": "not the guardian",
    }
    assert [row["request_id"] for row in json.loads(limited.stdout)] == ["request-1"]


def test_an_empty_history_says_so_on_stderr() -> None:
    result = roost("inbox", "--history")

    assert result.returncode == 0
    assert result.stdout == ""
    assert result.stderr == "no answers yet\n"


# Finding an item and saying what was answered ------------------------------------------------


def an_item(request_id: str, assistant_id: str = "asst-1", **fields: object) -> Interaction:
    return Interaction(
        f"lockfile:{assistant_id}",
        assistant_id,
        assistant_id.upper(),
        request_id,
        InteractionKind.CONFIRMATION,
        "conversation-1",
        T0,
        **fields,  # type: ignore[arg-type]
    )


def test_an_item_is_found_by_its_id_a_unique_prefix_or_its_request_id() -> None:
    first, second = an_item("request-1"), an_item("request-2", "asst-2")
    reading = InboxReading((first, second))

    assert reading.find(first.id) is first
    assert reading.find(first.id[:4].upper()) is first
    assert reading.find("request-2") is second
    with pytest.raises(RoostError, match="no pending request has the id 'zzzz' \\(2 are"):
        reading.find("zzzz")
    with pytest.raises(RoostError, match="no pending request"):
        reading.find(first.id[:3])  # too short to be a prefix


def test_a_prefix_two_items_share_names_both() -> None:
    items = [an_item(f"request-{n}") for n in range(200)]
    by_prefix: dict[str, list[Interaction]] = {}
    for item in items:
        by_prefix.setdefault(item.id[:4], []).append(item)
    shared = next(group for group in by_prefix.values() if len(group) > 1)  # 200 of 65536

    with pytest.raises(RoostError, match=f"names 2 pending requests: {shared[0].id} "):
        InboxReading(tuple(shared)).find(shared[0].id[:4])


def test_nothing_found_names_the_assistants_not_asked() -> None:
    reading = InboxReading((), ("beta: unreachable (connection refused)",))

    with pytest.raises(RoostError) as raised:
        reading.find("abcd")

    assert str(raised.value) == (
        "no pending request has the id 'abcd' (none is); not asked: beta: unreachable"
        " (connection refused)"
    )


QUESTIONS = Questions(
    (
        Question("q1", "Which branch?", options=(Choice("main", "The main branch"),)),
        Question("q2", "Why?"),
    )
)


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (Allow(Decision.ALLOW), "allow"),
        (Allow(Decision.DENY), "deny"),
        (Allow(Decision.ALLOW, "npm test*", "project"), "always allow: npm test* (project)"),
        (Reply(close=True), "closed"),
        (
            Reply((OptionAnswer("q1", "main"), TextAnswer("q2", "it's late"))),
            'q1 = The main branch; q2: "it\'s late"',
        ),
        (Reply((OptionAnswer("q1", "other"), SkipAnswer("q2"))), "q1 = other; q2: skipped"),
        (Secret("hunter2-hunter2", "store"), "secret (value not recorded)"),
        (Secret("hunter2-hunter2", "transient_send"), "secret (value not recorded)"),
    ],
)
def test_what_was_answered_is_said_in_words_never_a_secrets_value(
    answer: Answer, words: str
) -> None:
    assert answered_text(an_item("request-1", request=QUESTIONS), answer) == words
