"""`roost inbox`, `roost answer` and the activity `roost ps` shows, end to end: the installed
command in a fresh process against the loopback runtimes of tests/peers/vellum.py, the answers
it leaves in roost's state database, and a secret that leaves no trace anywhere."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from ptyprocess import PtyProcess

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
from services.context import Context
from services.core.errors import RoostError
from services.core.paths import RoostPaths
from services.core.state import AnswerRow, StateDatabase
from services.roost import InboxReading, Roost, answered_text
from tests.peers.vellum import Runtime, VellumPeer, json_reply, refused_url
from tests.test_cli import ROOST, roost

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
TOKEN = "guardian-token-0123456789"
SECRET = "correct-horse-battery-staple-7f3a9c"
"""The secret answered in the secret test: long and unlike anything else in roost's files."""


def lockfile(home: Path, *runtimes: tuple[str, str]) -> None:
    """A lockfile listing (name, runtime URL) assistants, each with the guardian token."""
    entries = [
        {"assistantId": name, "cloud": "custom", "runtimeUrl": url, "bearerToken": TOKEN}
        for name, url in runtimes
    ]
    (home / ".vellum.lock.json").write_text(json.dumps({"assistants": entries}))


@pytest.fixture
def alpha(vellum_peer: VellumPeer, isolated_env: Path) -> Runtime:
    """An assistant whose runtime wants the lockfile's guardian token, alone in the lockfile."""
    runtime = vellum_peer.runtime("alpha", bearer=TOKEN)
    lockfile(isolated_env, ("alpha", runtime.base_url))
    return runtime


def inbox_json(*args: str) -> list[dict[str, Any]]:
    result = roost("inbox", "--json", *args)
    assert result.returncode == 0, result.stderr
    rows: list[dict[str, Any]] = json.loads(result.stdout)
    return rows


def answered(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """`roost answer ARGS` with `stdin` on its standard input (a pipe, not a terminal)."""
    return subprocess.run(
        [ROOST, "answer", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def history() -> list[dict[str, str]]:
    rows: list[dict[str, str]] = json.loads(roost("inbox", "--history", "--json").stdout)
    return rows


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


@pytest.mark.parametrize(
    ("args", "why"),
    [
        (("--history", "alpha"), "--history lists every answer"),
        (("--limit", "3"), "--limit goes with --history"),
        (("--history", "--limit", "0"), "must be 1 or more, not 0"),
    ],
)
def test_the_inbox_refuses_options_that_do_not_go_together(args: tuple[str, ...], why: str) -> None:
    result = roost("inbox", *args)

    assert result.returncode == 2
    assert result.stderr.startswith("usage: roost inbox ") and why in result.stderr


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
    with pytest.raises(RoostError, match="no pending request has the id 'zzzz' \\(2 pending"):
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
        "no pending request has the id 'abcd' (none pending); not asked: beta: unreachable"
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


# The inbox, read from the runtimes ----------------------------------------------------------

DIFF = {
    "filePath": "src/app.py",
    "oldContent": "a\nb\n",
    "newContent": "a\nc\n",
    "isNewFile": False,
}


def test_the_inbox_lists_every_kind_oldest_first_with_what_each_asks(alpha: Runtime) -> None:
    script = alpha.activity
    confirmation = script.confirmation(
        "conv-1",
        "file_edit",
        {"path": "src/app.py"},
        risk="high",
        risk_reason="edits a tracked file",
        execution_target="host",
        patterns=["file_edit:src/*"],
        scopes=["project", "everywhere"],
        diff=DIFF,
    )
    question = script.question("conv-2")
    secret = script.secret("conv-3", "github", "token", "GitHub token")

    shown = roost("inbox")
    rows = inbox_json()

    assert shown.returncode == 0, shown.stderr
    header, *lines = shown.stdout.splitlines()
    assert header.split() == ["ID", "ASSISTANT", "KIND", "AGE", "WHAT"]
    assert [line.split()[2] for line in lines] == ["confirmation", "question", "secret"]
    assert lines[0].endswith("file_edit (high risk)")
    assert lines[2].endswith("secret for github: GitHub token")
    assert [row["request_id"] for row in rows] == [confirmation, question, secret]
    first = rows[0]
    assert first["id"] == lines[0].split()[0] and len(str(first["id"])) == 10
    assert {key: first[key] for key in ("assistant", "assistant_id", "kind", "conversation")} == {
        "assistant": "alpha",
        "assistant_id": "alpha",
        "kind": "confirmation",
        "conversation": "conv-1",
    }
    assert first["summary"] == "file_edit (high risk)"
    assert (first["tool"], first["risk"], first["risk_reason"]) == (
        "file_edit",
        "high",
        "edits a tracked file",
    )
    assert first["execution_target"] == "host"
    assert first["input"] == {"path": "src/app.py"}
    assert first["diff"] == {
        "file_path": "src/app.py",
        "old": "a\nb\n",
        "new": "a\nc\n",
        "is_new_file": False,
    }
    assert [p["pattern"] for p in first["patterns"]] == ["file_edit:src/*"]
    assert [s["scope"] for s in first["scopes"]] == ["project", "everywhere"]
    [asked] = rows[1]["questions"]
    assert asked["id"] == "q1" and [o["id"] for o in asked["options"]] == ["yes", "no"]
    assert (rows[2]["service"], rows[2]["field"], rows[2]["label"]) == (
        "github",
        "token",
        "GitHub token",
    )


def test_one_item_is_shown_whole_with_its_input_and_diff(alpha: Runtime) -> None:
    alpha.activity.confirmation(
        "conv-1", "file_edit", {"path": "src/app.py"}, risk="high", diff=DIFF
    )
    [row] = inbox_json()

    shown = roost("inbox", "--show", str(row["id"])[:6])
    as_json = roost("inbox", "--show", str(row["id"]), "--json")

    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert f"id            {row['id']}" in lines
    assert "tool          file_edit" in lines
    assert '    "path": "src/app.py"' in lines
    assert lines[lines.index("diff") + 1 :][:6] == [
        "  --- src/app.py",
        "  +++ src/app.py",
        "  @@ -1,2 +1,2 @@",
        "   a",
        "  -b",
        "  +c",
    ]
    assert {**json.loads(as_json.stdout), "since": row["since"]} == row  # read again: now


def test_an_assistant_that_cannot_be_asked_is_one_line_and_the_rest_are_listed(
    vellum_peer: VellumPeer, isolated_env: Path
) -> None:
    alpha = vellum_peer.runtime("alpha", bearer=TOKEN)
    alpha.activity.question("conv-1")
    refusing = vellum_peer.runtime("beta", bearer=TOKEN)
    refusing.activity.pending_replies.append(json_reply({"error": "nope"}, status=403))
    with refused_url() as gone:
        lockfile(
            isolated_env,
            ("alpha", alpha.base_url),
            ("beta", refusing.base_url),
            ("gamma", gone),
        )
        result = roost("inbox")

    assert result.returncode == 1
    problems = result.stderr.splitlines()
    assert len(problems) == 2, result.stderr
    assert problems[0].startswith("roost: beta: ") and "403" in problems[0]
    assert problems[1].startswith("roost: gamma: ")
    assert [line.split()[1] for line in result.stdout.splitlines()[1:]] == ["alpha"]
    assert "Traceback" not in result.stderr


def test_an_older_runtime_that_lists_per_conversation_only_says_so(alpha: Runtime) -> None:
    alpha.activity.legacy = True
    alpha.activity.question("conv-1")

    result = roost("inbox", "alpha")

    assert result.returncode == 1
    assert result.stderr.startswith("roost: alpha: its runtime lists pending requests only per")
    assert result.stderr.count("\n") == 1


def test_naming_an_assistant_asks_only_it(vellum_peer: VellumPeer, isolated_env: Path) -> None:
    alpha, beta = (
        vellum_peer.runtime("alpha", bearer=TOKEN),
        vellum_peer.runtime("beta", bearer=TOKEN),
    )
    lockfile(isolated_env, ("alpha", alpha.base_url), ("beta", beta.base_url))
    alpha.activity.question("conv-1")
    beta.activity.question("conv-1")

    assert [row["assistant"] for row in inbox_json("beta")] == ["beta"]
    assert not vellum_peer.requests_to(f"{alpha.path}/v1/pending-interactions")
    unknown = roost("inbox", "nobody")
    assert unknown.returncode == 1 and unknown.stderr.startswith("roost: no assistant 'nobody'")


# Answers -------------------------------------------------------------------------------------


def the_item() -> str:
    [row] = inbox_json()
    return str(row["id"])


def test_allow_and_deny_answer_a_confirmation_and_are_recorded(alpha: Runtime) -> None:
    first = alpha.activity.confirmation("conv-1", "bash", {"command": "ls"}, risk="high")

    allowed = answered(the_item()[:5], "allow")
    second = alpha.activity.confirmation("conv-1", "bash", {"command": "rm -rf /"})
    denied = answered(second, "deny")  # by request id

    assert allowed.returncode == denied.returncode == 0, allowed.stderr + denied.stderr
    assert allowed.stdout.endswith(": allow\n") and "alpha: bash (high risk)" in allowed.stdout
    assert [(a.endpoint, a.request_id, a.body["decision"]) for a in alpha.activity.answers] == [
        ("confirm", first, "allow"),
        ("confirm", second, "deny"),
    ]
    assert alpha.activity.pending == ()
    assert [(r["request_id"], r["answered"], r["outcome"], r["front_end"]) for r in history()] == [
        (second, "deny", "accepted", "command line"),
        (first, "allow", "accepted", "command line"),
    ]


def test_always_allow_stores_the_trust_rule_then_confirms(alpha: Runtime) -> None:
    request = alpha.activity.confirmation(
        "conv-1", "bash", {"command": "npm test"}, patterns=["bash:npm *"], scopes=["project"]
    )

    wrong = answered(request, "allow", "--always", "bash:*", "--scope", "project")
    result = answered(request, "allow", "--always", "bash:npm *", "--scope", "project")

    assert wrong.returncode == 1
    assert "no pattern 'bash:*'" in wrong.stderr and "its patterns: bash:npm *" in wrong.stderr
    assert result.returncode == 0, result.stderr
    assert [
        (a.endpoint, a.body.get("pattern"), a.body.get("scope")) for a in alpha.activity.answers
    ] == [
        ("trust-rules", "bash:npm *", "project"),
        ("confirm", None, None),
    ]
    assert history()[0]["answered"] == "always allow: bash:npm * (project)"


def test_questions_are_answered_by_option_text_and_skip_or_closed(alpha: Runtime) -> None:
    batch = alpha.activity.question(
        "conv-1",
        [
            {"id": "q1", "question": "Branch?", "options": [{"id": "main", "label": "Main"}]},
            {"id": "q2", "question": "Why?", "options": []},
            {"id": "q3", "question": "Anything else?", "options": []},
        ],
    )
    wrong = answered(batch, "--option", "q1=dev")
    result = answered(batch, "--option", "q1=main", "--text", "q2=it is late")
    closing = alpha.activity.question("conv-2")
    closed = answered(closing, "--close")

    assert wrong.returncode == 1 and "question q1 has no option 'dev': main" in wrong.stderr
    assert result.returncode == closed.returncode == 0, result.stderr + closed.stderr
    submitted, dismissed = alpha.activity.answers
    assert submitted.body["responses"] == [
        {"questionId": "q1", "kind": "option", "optionId": "main"},
        {"questionId": "q2", "kind": "free_text", "text": "it is late"},
        {"questionId": "q3", "kind": "skip"},
    ]
    assert dismissed.body["kind"] == "close"
    assert [r["answered"] for r in history()] == [
        "closed",
        "q1 = Main; q2: 'it is late'; q3: skipped",
    ]


def test_an_answer_of_the_wrong_kind_is_refused_before_anything_is_sent(alpha: Runtime) -> None:
    request = alpha.activity.question("conv-1")

    result = answered(request, "allow")

    assert result.returncode == 1
    assert result.stderr.endswith(
        "is a question: answer it with --option, --text, --skip or --close\n"
    )
    assert alpha.activity.answers == [] and history() == []


def test_an_item_someone_else_answered_meanwhile_is_a_quiet_note(alpha: Runtime) -> None:
    request = alpha.activity.confirmation("conv-1", "bash", {"command": "ls"})
    alpha.activity.answer_replies.append(
        json_reply({"error": "No pending interaction"}, status=404)
    )

    result = answered(request, "allow")

    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert result.stderr.startswith("roost: ") and "was already answered elsewhere" in result.stderr
    assert history()[0]["outcome"] == "already answered"


def test_answering_again_what_roost_answered_is_a_quiet_note(alpha: Runtime) -> None:
    request = alpha.activity.confirmation("conv-1", "bash", {"command": "ls"})
    first = answered(request, "allow")

    again = answered(request, "deny")  # no longer pending: roost's own answer says why

    assert first.returncode == again.returncode == 0, first.stderr + again.stderr
    assert again.stdout == ""
    assert again.stderr.startswith(f"roost: {request} (alpha: bash (low risk)) was already ")
    assert "answered: allow, from the command line at " in again.stderr
    assert [a.body["decision"] for a in alpha.activity.answers] == ["allow"]  # nothing more sent
    assert len(history()) == 1


def test_roost_not_being_the_guardian_is_one_line_and_recorded(alpha: Runtime) -> None:
    request = alpha.activity.confirmation("conv-1", "bash", {"command": "ls"})
    alpha.activity.guardian = False

    result = answered(request, "deny")

    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "not the guardian" in result.stderr
    [record] = history()
    assert (record["outcome"], record["answered"]) == ("refused", "deny")
    assert "not the guardian" in record["detail"]
    assert alpha.activity.pending != ()


def test_nothing_pending_with_that_id_is_one_line(alpha: Runtime) -> None:
    result = answered("0123456789", "allow")

    assert result.returncode == 1
    assert result.stderr == "roost: no pending request has the id '0123456789' (none pending)\n"


# The secret ----------------------------------------------------------------------------------


def every_file_roost_wrote(tmp_path: Path) -> dict[Path, bytes]:
    """The state database (and its WAL), the logs, everything else under roost's own dirs."""
    files = {}
    for directory in ("roost-state", "roost-log", "roost-cache", "roost-data", "roost-config"):
        for path in (tmp_path / directory).rglob("*"):
            if path.is_file():
                files[path] = path.read_bytes()
    return files


def test_a_secret_is_sent_and_appears_nowhere_else(alpha: Runtime, tmp_path: Path) -> None:
    refused = alpha.activity.secret("conv-1", "github", "token", "GitHub token")
    alpha.activity.answer_replies.append(
        json_reply({"error": f"bad value {SECRET}"}, status=500)  # a runtime that echoes it
    )
    failed = answered(refused, "--secret", stdin=SECRET + "\n")
    request = alpha.activity.secret("conv-2", "npm", "token", "npm token")
    sent = answered(request, "--secret", "--transient", stdin=SECRET + "\n")

    assert failed.returncode == 1 and sent.returncode == 0, sent.stderr
    [delivered] = alpha.activity.answers
    assert delivered.body == {"requestId": request, "value": SECRET, "delivery": "transient_send"}
    shown = failed.stdout + failed.stderr + sent.stdout + sent.stderr
    assert SECRET not in shown
    assert "secret (value not recorded)" in sent.stdout
    written = every_file_roost_wrote(tmp_path)
    assert any(path.name == "roost.db" for path in written)
    assert any(path.suffix == ".log" for path in written)
    for path, content in written.items():
        assert SECRET.encode() not in content, path
    assert [(r["answered"], r["outcome"]) for r in history()] == [
        ("secret (value not recorded)", "accepted"),
        ("secret (value not recorded)", "refused"),
    ]


def test_an_empty_secret_is_refused_and_nothing_is_sent(alpha: Runtime) -> None:
    request = alpha.activity.secret("conv-1", "github", "token", "GitHub token")

    result = answered(request, "--secret", stdin="\n")

    assert result.returncode == 1
    assert result.stderr == "roost: the secret is empty: nothing sent\n"
    assert alpha.activity.answers == [] and history() == []


def test_a_secret_typed_at_a_terminal_is_not_echoed(alpha: Runtime) -> None:
    request = alpha.activity.secret("conv-1", "github", "token", "GitHub token")
    process = PtyProcess.spawn([ROOST, "answer", request, "--secret"], env=dict(os.environ))
    output = b""
    try:
        output += read_until(process, b"(not shown): ")
        process.write(SECRET.encode() + b"\r")
        output += read_until(process, None)
        process.wait()
    finally:
        if process.isalive():
            process.terminate(force=True)

    assert process.exitstatus == 0, output
    assert b"GitHub token for alpha (not shown): " in output
    assert SECRET.encode() not in output
    assert [a.body["value"] for a in alpha.activity.answers] == [SECRET]


def read_until(process: PtyProcess, wanted: bytes | None, within: float = 30) -> bytes:
    """What `process` writes until `wanted` has come (None: until it ends)."""
    output = b""
    deadline = time.monotonic() + within
    while wanted is None or wanted not in output:
        assert time.monotonic() < deadline, output
        try:
            output += process.read(4096)
        except EOFError:
            break
    return output


# roost ps ------------------------------------------------------------------------------------


def test_ps_shows_what_each_assistant_needs_and_never_guesses_idle(
    vellum_peer: VellumPeer, isolated_env: Path
) -> None:
    alpha, beta = (
        vellum_peer.runtime("alpha", bearer=TOKEN),
        vellum_peer.runtime("beta", bearer=TOKEN),
    )
    lockfile(isolated_env, ("alpha", alpha.base_url), ("beta", beta.base_url))
    alpha.activity.confirmation("conv-1", "bash", {"command": "ls"}, risk="high")

    shown = roost("ps")
    as_json = roost("ps", "--json")

    assert shown.returncode == as_json.returncode == 0, shown.stderr
    header, *lines = shown.stdout.splitlines()
    assert "ACTIVITY" in header.split()
    row_of = {line.split()[0]: line for line in lines}
    assert "! needs you · bash (high risk) · " in row_of["alpha"]
    assert "? unknown · nothing pending · " in row_of["beta"]
    activities: dict[str, Mapping[str, str] | None] = {
        row["name"]: row["activity"] for row in json.loads(as_json.stdout)
    }
    assert activities["this machine"] is None
    assert activities["alpha"] is not None and activities["beta"] is not None
    assert (activities["alpha"]["state"], activities["alpha"]["detail"]) == (
        "needs you",
        "bash (high risk)",
    )
    assert activities["alpha"]["evidence"] == "pending list (no event stream)"
    assert (activities["beta"]["state"], activities["beta"]["detail"]) == (
        "unknown",
        "nothing pending",
    )
    datetime.fromisoformat(activities["beta"]["since"])


# Which runtimes are asked ------------------------------------------------------------------

API_KEY = "vak_" + "k" * 40


def log_in(vellum_peer: VellumPeer, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """roost logged in to the loopback platform with an API key."""
    monkeypatch.setenv("VELLUM_PLATFORM_URL", vellum_peer.url)
    vellum_peer.platform.api_keys.add(API_KEY)
    token = home / ".config/vellum/platform-token"
    token.parent.mkdir(parents=True)
    token.write_text(API_KEY + "\n")
    token.chmod(0o600)


async def test_every_assistant_with_a_running_runtime_is_followed_and_no_other(
    vellum_peer: VellumPeer, isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log_in(vellum_peer, isolated_env, monkeypatch)
    vellum_peer.platform.assistants = [{"id": "cora", "name": "cora", "status": "active"}]
    own = vellum_peer.runtime("own", bearer=TOKEN)
    entries = [
        {"assistantId": "own", "cloud": "custom", "runtimeUrl": own.base_url},
        {"assistantId": "cora", "cloud": "vellum", "runtimeUrl": vellum_peer.url},
        {
            "assistantId": "asleep",
            "cloud": "local",
            "runtimeUrl": "http://127.0.0.1:9",
            "resources": {"instanceDir": str(isolated_env)},  # no vellum.pid: not running
        },
        {"assistantId": "bare", "cloud": "custom"},
    ]
    (isolated_env / ".vellum.lock.json").write_text(json.dumps({"assistants": entries}))

    async with Roost.opened(Context.load()) as application:
        await application.sweep(health=False)
        endpoints = application.activity_endpoints()
        reading = await application.inbox(["asleep", "bare"])

    assert {endpoint.assistant_id: endpoint.url("events") for endpoint in endpoints.values()} == {
        "own": f"{own.base_url}/v1/events",
        "cora": f"{vellum_peer.url}/v1/assistants/cora/events",
    }
    assert reading.items == ()
    assert sorted(reading.problems) == [
        "asleep: it is sleeping: its runtime is not running",
        "bare: it has no runtime to ask",
    ]


def test_a_managed_assistant_is_asked_and_answered_through_the_platform(
    vellum_peer: VellumPeer, isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log_in(vellum_peer, isolated_env, monkeypatch)
    vellum_peer.platform.assistants = [{"id": "cora", "name": "cora", "status": "active"}]
    entry = {"assistantId": "cora", "cloud": "vellum", "runtimeUrl": vellum_peer.url}
    (isolated_env / ".vellum.lock.json").write_text(json.dumps({"assistants": [entry]}))
    script = vellum_peer.managed_activity("cora")
    request = script.confirmation("conv-1", "bash", {"command": "ls"})

    [row] = inbox_json()
    result = answered(str(row["id"]), "allow")

    assert (row["assistant"], row["request_id"]) == ("cora", request)
    assert result.returncode == 0, result.stderr
    assert [(a.endpoint, a.request_id) for a in script.answers] == [("confirm", request)]
    [confirm] = vellum_peer.requests_to("/v1/assistants/cora/confirm")
    assert confirm.headers["authorization"] == f"Bearer {API_KEY}"
