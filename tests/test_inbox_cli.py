"""`roost inbox`, `roost answer` and the activity `roost ps` shows, end to end: the installed
command in a fresh process against the loopback runtimes of tests/peers/vellum.py, the answers
it leaves in roost's state database, and a secret that leaves no trace anywhere."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from services.core.paths import RoostPaths
from services.core.state import AnswerRow, StateDatabase
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
