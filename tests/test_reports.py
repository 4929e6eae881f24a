"""What a runtime says about an import (services/jobs/reports.py), read from any JSON: never an
exception, text made safe to show, at most `PROBLEMS_KEPT` problems kept, and a record that
reads back as it was written."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from services.core.safe_text import printable
from services.jobs.reports import PROBLEMS_KEPT, TEXT_KEPT, ImportOutcome, Preflight, Problem

scalars = st.none() | st.booleans() | st.integers(-5, 10**12) | st.text(max_size=400)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=8) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=20,
)
KEYS = [
    "can_import",
    "validation",
    "errors",
    "is_valid",
    "files",
    "path",
    "action",
    "summary",
    "files_to_create",
    "files_to_overwrite",
    "files_unchanged",
    "total_files",
    "conflicts",
    "message",
    "reason",
    "code",
    "success",
    "warnings",
    "files_created",
    "files_overwritten",
    "files_skipped",
    "backups_created",
    "detail",
]
bodies = st.dictionaries(st.sampled_from(KEYS), json_values, max_size=8)


def texts(problems: tuple[Problem, ...]) -> list[str]:
    return [text for p in problems for text in (p.message, p.path, p.code) if text is not None]


def safe(text: str, limit: int = TEXT_KEPT) -> bool:
    """Nothing left for `printable` to escape, and shortened."""
    return printable(text) == text and len(text) <= limit


@settings(max_examples=100)
@given(bodies)
def test_any_preflight_answer_reads_safely_and_round_trips(body: dict[str, object]) -> None:
    report = Preflight.parse(body)

    assert report.can_import is (body.get("can_import") is True)
    assert len(report.errors) <= PROBLEMS_KEPT and len(report.conflicts) <= PROBLEMS_KEPT
    assert all(safe(text) for text in texts(report.errors + report.conflicts))
    assert Preflight.from_json(json.loads(json.dumps(report.to_json()))) == report


@settings(max_examples=100)
@given(bodies)
def test_any_import_answer_reads_safely_and_round_trips(body: dict[str, object]) -> None:
    outcome = ImportOutcome.parse(body)

    assert outcome.success is (body.get("success") is True)
    assert all(safe(text) for text in texts(outcome.errors))
    assert all(safe(warning, 2 * TEXT_KEPT + 2) for warning in outcome.warnings)  # path: text
    assert outcome.reason is None or safe(outcome.reason)
    assert ImportOutcome.from_json(json.loads(json.dumps(outcome.to_json()))) == outcome


def test_counts_come_from_the_files_when_there_is_no_summary() -> None:
    actions = ["create", "create", "overwrite", "unchanged", "delete?"]
    files = [{"path": f"f{n}", "action": action} for n, action in enumerate(actions)]
    report = Preflight.parse({"can_import": True, "files": files})

    assert report.summary() == "2 to create, 1 to overwrite, 1 unchanged (5 files)"
    files = [{"path": "a", "action": "create"}, {"path": "b", "action": "overwrite"}]
    assert Preflight.parse({"files": files}).summary() == (
        "1 to create, 1 to overwrite, 0 unchanged (2 files)"
    )


def test_a_long_list_keeps_the_first_problems_and_counts_the_rest() -> None:
    conflicts = [
        {"path": f"p{n}", "message": "\x1b[31mred\x1b[0m"} for n in range(PROBLEMS_KEPT + 7)
    ]
    report = Preflight.parse({"can_import": False, "conflicts": conflicts})

    assert len(report.conflicts) == PROBLEMS_KEPT and report.more == 7
    assert str(report.conflicts[0]) == "p0: \\e[31mred\\e[0m"
