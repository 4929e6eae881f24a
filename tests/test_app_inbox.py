"""Activity and the needs-you inbox on screen: the ACTIVITY column and its ages, the inbox count,
the detail panel, the inbox and its dialogs, notifications (once per item, batched), and the
answers sent from it against the Vellum peer."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import Input, OptionList

from services.activity.follower import ActivityBatch
from services.activity.model import (
    Activity,
    ActivityState,
    Choice,
    Confirmation,
    Diff,
    Interaction,
    InteractionKind,
    Question,
    Questions,
    Request,
    SecretRequest,
)
from services.core.paths import RoostPaths
from tests.demo import streams_stopped
from tests.peers.vellum import Runtime, VellumPeer, json_reply
from tests.pilot import SIZE, make_app, static_text, table_names, wait_until
from tui.activity import BELL, Notifier, desktop_notification
from tui.app import RoostApp
from tui.screens.answer import QuestionsForm, SecretPrompt, TrustPicker
from tui.screens.confirm import ConfirmScreen
from tui.screens.help import HelpScreen
from tui.screens.inbox import InboxScreen
from widgets.keyed_table import KeyedTable

START = datetime(2026, 3, 14, 9, 30, tzinfo=UTC)
REFUSED = "http://127.0.0.1:9"


def lockfile(home: Path, urls: dict[str, str]) -> None:
    entries = [
        {"assistantId": name, "cloud": "custom", "runtimeUrl": url} for name, url in urls.items()
    ]
    (home / ".vellum.lock.json").write_text(json.dumps({"assistants": entries}))


def write_config(home: Path, text: str) -> None:
    config = home.parent / "roost-config"
    config.mkdir(exist_ok=True)
    (config / "config.toml").write_text(text)


class Clock:
    """The app's clock, moved on by the test."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


def key_of(app: RoostApp, name: str) -> str:
    return next(a.key for a in app.fleet if a.id == name)


def item(
    app: RoostApp,
    name: str,
    request: Request | None,
    *,
    ago: float = 60,
    request_id: str = "",
    kind: InteractionKind | None = None,
) -> Interaction:
    if kind is None:
        kind = {
            Confirmation: InteractionKind.CONFIRMATION,
            Questions: InteractionKind.QUESTION,
            SecretRequest: InteractionKind.SECRET,
        }[type(request)]
    return Interaction(
        assistant_key=key_of(app, name),
        assistant_id=name,
        assistant=name,
        request_id=request_id or f"{name}-{kind}-{ago}",
        kind=kind,
        conversation=f"conv-{name}",
        since=app.context.clock() - timedelta(seconds=ago),
        request=request,
    )


def batch(
    *inbox: Interaction,
    arrived: tuple[Interaction, ...] = (),
    activities: dict[str, Activity] | None = None,
    changes: tuple[str, ...] = (),
) -> ActivityBatch:
    """What the follower reports: by default each item's assistant needs you."""
    if activities is None:
        activities = {
            each.assistant_key: Activity(
                ActivityState.NEEDS_YOU, each.summary, each.since, "event stream"
            )
            for each in reversed(inbox)
        }
    return ActivityBatch(activities, inbox, arrived, changes)


def bash(risk: str = "low", **facts: object) -> Confirmation:
    return Confirmation(
        tool="bash",
        input_json=json.dumps({"command": "npm test"}, indent=2),
        risk=risk,
        **facts,  # type: ignore[arg-type]
    )


QUESTIONS = Questions(
    (
        Question(
            "q1", "Which database?", options=(Choice("pg", "Postgres"), Choice("my", "MySQL"))
        ),
        Question("q2", "Why?", placeholder="a reason"),
    )
)
SECRET = SecretRequest("github", "token", "A token with repo scope")


def cells(app: RoostApp, name: str) -> dict[str, str]:
    """The assistant's row of the main screen, by column key."""
    table = app.main_screen.query_one("#assistants", KeyedTable)
    row = next(r for r in table.rows_shown if r.key == key_of(app, name))
    return {c.key: cell.plain for c, cell in zip(table.columns, row.cells, strict=True)}


def toasts(app: RoostApp) -> list[str]:
    """The notifications on screen (Textual keeps no public list of them)."""
    return [notification.message for notification in app._notifications]


def inbox_screen(app: RoostApp) -> InboxScreen:
    screen = next(s for s in app.screen_stack if isinstance(s, InboxScreen))
    return screen


def inbox_rows(app: RoostApp) -> list[str]:
    table = inbox_screen(app).query_one("#inbox", KeyedTable)
    return [row.key for row in table.rows_shown]


async def started(pilot: Pilot[None], app: RoostApp, *names: str) -> None:
    await wait_until(pilot, lambda: all(n in table_names(app) for n in names), "the rows")


async def test_the_column_the_count_and_the_detail_show_activity(
    vellum_peer: VellumPeer, isolated_env: Path
) -> None:
    ada, cora = vellum_peer.runtime("ada"), vellum_peer.runtime("cora")
    lockfile(isolated_env, {"ada": ada.base_url, "cora": cora.base_url})
    clock = Clock()
    app = make_app(clock=clock)
    async with app.run_test(size=SIZE) as pilot:
        await followed(pilot, app, ada)
        await followed(pilot, app, cora)
        title = str(app.main_screen.query_one("#assistants-panel").border_title)
        assert "inbox 0" in title
        # Idle first: a change is an events panel line once a first state was shown.
        await wait_until(pilot, lambda: "idle" in cells(app, "ada")["activity"], "ada idle")
        cora.activity.activity("c1", "thinking")
        cora.activity.activity("c1", "tool_running", status_text="Running the test suite")
        ada.activity.confirmation("c1", "bash", {"command": "rm -rf build"}, risk="high")
        ada.activity.question("c2")
        await wait_until(pilot, lambda: app.main_screen.inbox_count == 2, "the count")
        assert "! 2 need you" in str(app.main_screen.query_one("#assistants-panel").border_title)
        await wait_until(pilot, lambda: "tool_running" in cells(app, "cora")["activity"], "cora's")
        assert cells(app, "ada")["activity"] == "! needs you · bash (high risk) · 0s"
        assert cells(app, "cora")["activity"] == "▶ working · tool_running · Run… · 0s"

        # The ages move on by themselves, as the clock does.
        clock.now += timedelta(seconds=75)
        await wait_until(pilot, lambda: cells(app, "cora")["activity"].endswith("· 1m"), "1m")

        # The detail panel: the activity, its evidence, since when, the last events.
        app.main_screen.assistants_table.move_cursor(table_names(app).index("cora"))
        await pilot.press("d")
        await wait_until(pilot, lambda: "evidence" in static_text(app, "#detail"), "detail")
        detail = static_text(app, "#detail")
        assert "▶ working · tool_running · Running the test suite · 1m" in detail
        timeline = app.activity.follower.timeline(key_of(app, "cora"))
        assert len(timeline) >= 2
        assert all(entry.text in detail for entry in timeline)
        cora.activity.error("c1", "the model refused")
        await wait_until(pilot, lambda: "model refused" in static_text(app, "#detail"), "live")

        # The events panel has the changes.
        await pilot.press("e")
        log = app.main_screen.events_log
        await wait_until(
            pilot,
            lambda: any("ada: " in line.text and "needs you" in line.text for line in log.lines),
            "it",
        )


async def test_the_inbox_lists_oldest_first_and_shows_each_kind_in_full(
    isolated_env: Path,
) -> None:
    lockfile(isolated_env, {"ada": REFUSED, "cora": REFUSED})
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, app, "ada", "cora")
        await streams_stopped(pilot)
        diff = Diff("src/app.py", "a = 1\nb = 2\n", "a = 1\nb = 3\n\tc = 4\n")
        edit = Confirmation(
            tool="file_edit",
            input_json=json.dumps({"path": "src/app.py"}, indent=2),
            risk="medium",
            risk_reason="writes a file",
            execution_target="sandbox",
            diff=diff,
        )
        items = (
            item(app, "cora", edit, ago=300),
            item(app, "ada", QUESTIONS, ago=200),
            item(app, "ada", SECRET, ago=100),
        )
        app.activity.show_batch(batch(*items))
        await pilot.press("i")
        await wait_until(pilot, lambda: isinstance(app.screen, InboxScreen), "the inbox")
        await wait_until(pilot, lambda: len(inbox_rows(app)) == 3, "three items")
        assert inbox_rows(app) == [each.id for each in items]

        detail = static_text(app, "#inbox-detail")
        for expected in ("file_edit", "medium", "writes a file", "sandbox", '"path"'):
            assert expected in detail
        assert "-b = 2" in detail and "+b = 3" in detail  # a diff, marked without colour
        assert "+        c = 4" in detail  # a tab set out, not escaped

        await pilot.press("down")
        await wait_until(pilot, lambda: "Which database?" in static_text(app, "#inbox-detail"), "q")
        detail = static_text(app, "#inbox-detail")
        assert "Postgres" in detail and "MySQL" in detail and "2. Why?" in detail

        await pilot.press("down")
        await wait_until(pilot, lambda: "github" in static_text(app, "#inbox-detail"), "secret")
        assert "A token with repo scope" in static_text(app, "#inbox-detail")

        await pilot.press("question_mark")  # its keys are listed, with their ids
        assert isinstance(app.screen, HelpScreen)
        listed = {command.binding_id for command in app.screen.commands}
        assert {"inbox_allow", "inbox_deny", "inbox_always_allow", "inbox_answer"} <= listed
        await pilot.press("escape", "escape")
        await wait_until(pilot, lambda: app.screen is app.main_screen, "back to the fleet")


async def test_a_huge_input_and_odd_text_are_shown_safely(isolated_env: Path) -> None:
    lockfile(isolated_env, {"ada": REFUSED})
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, app, "ada")
        await streams_stopped(pilot)
        huge = json.dumps({"lines": [f"line {n}" for n in range(50_000)]}, indent=2)
        odd = Confirmation(
            tool="bash\x1b]0;pwned\x07",
            input_json=huge,
            risk="low\u202e",
            diff=Diff("x\x1b[2J", "\x1b[31mold\n" * 3000, "new\n"),
        )
        app.activity.show_batch(batch(item(app, "ada", odd)))
        await pilot.press("i")
        await wait_until(pilot, lambda: isinstance(app.screen, InboxScreen), "the inbox")
        await wait_until(pilot, lambda: "more lines" in static_text(app, "#inbox-detail"), "cut")
        detail = static_text(app, "#inbox-detail")
        assert "\x1b" not in detail and "\x07" not in detail and "\u202e" not in detail
        assert "bash\\e]0;pwned\\x07" in detail
        assert app.return_code is None


async def test_a_dialog_closes_when_its_item_is_resolved_elsewhere(isolated_env: Path) -> None:
    lockfile(isolated_env, {"ada": REFUSED})
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, app, "ada")
        await streams_stopped(pilot)
        questions, secret = item(app, "ada", QUESTIONS, ago=90), item(app, "ada", SECRET)
        app.activity.show_batch(batch(questions, secret))
        await pilot.press("i")
        await wait_until(pilot, lambda: len(inbox_rows(app)) == 2, "the items")
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, QuestionsForm), "the form")

        app.activity.show_batch(batch(secret))  # someone else answered the questions
        await wait_until(pilot, lambda: isinstance(app.screen, InboxScreen), "the form closed")
        assert inbox_rows(app) == [secret.id]
        assert app.main_screen.inbox_count == 1


async def test_notifications_ring_once_per_batch(isolated_env: Path) -> None:
    lockfile(isolated_env, {"ada": REFUSED, "cora": REFUSED})
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, app, "ada", "cora")
        await streams_stopped(pilot)
        written: list[str] = []
        environ = {"TERM_PROGRAM": "iTerm.app"}
        app.activity.notifier = Notifier(app, environ=environ, write=written.append)
        one = item(app, "ada", bash())
        app.activity.show_batch(batch(one, arrived=(one,)))
        app.activity.show_batch(batch(one))  # nothing new: nothing said
        many = tuple(item(app, "cora", bash(), ago=n) for n in range(5))
        app.activity.show_batch(batch(one, *many, arrived=many))
        assert written == [
            BELL,
            "\x1b]9;ada needs you: bash (low risk)\x1b\\",
            BELL,
            "\x1b]9;5 need you: Press i in roost to see the inbox.\x1b\\",
        ]
        await wait_until(pilot, lambda: len(toasts(app)) == 2, "two toasts")
        assert toasts(app) == ["bash (low risk)", "Press i in roost to see the inbox."]


async def test_notifications_can_be_turned_off(isolated_env: Path) -> None:
    lockfile(isolated_env, {"ada": REFUSED})
    write_config(isolated_env, "[notifications]\nbell = false\ndesktop = false\n")
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, app, "ada")
        await streams_stopped(pilot)
        written: list[str] = []
        environ = {"TERM_PROGRAM": "iTerm.app"}
        app.activity.notifier = Notifier(app, environ=environ, write=written.append)
        one = item(app, "ada", bash())
        app.activity.show_batch(batch(one, arrived=(one,)))
        assert written == []


def test_a_desktop_notification_only_where_the_terminal_has_one() -> None:
    def sequence(**environ: str) -> str | None:
        return desktop_notification(environ, "ada; needs you", "bash\x1b")

    assert sequence(TERM="xterm-256color") is None
    assert sequence(TERM="xterm-kitty", TMUX="/run/tmux/default,1,0") is None
    assert sequence(VTE_VERSION="7600") == "\x1b]777;notify;ada, needs you;bash\\e\x1b\\"
    assert sequence(TERM="foot") == "\x1b]777;notify;ada, needs you;bash\\e\x1b\\"
    assert sequence(TERM_PROGRAM="ghostty") == "\x1b]9;ada, needs you: bash\\e\x1b\\"
    assert sequence(WT_SESSION="1") == "\x1b]9;ada, needs you: bash\\e\x1b\\"


# -- answers, against the Vellum peer -----------------------------------------------------------


async def followed(pilot: Pilot[None], app: RoostApp, runtime: Runtime) -> None:
    """The console follows `runtime`'s event stream (events emitted now reach it)."""
    await started(pilot, app, runtime.name)
    await wait_until(pilot, lambda: runtime.activity.streams == 1, "the event stream")


async def in_the_inbox(pilot: Pilot[None], app: RoostApp, count: int) -> None:
    """The inbox open with `count` items, the first selected, its details known."""
    if not isinstance(app.screen, InboxScreen):
        await pilot.press("i")
    await wait_until(pilot, lambda: len(app.activity.inbox) == count, f"{count} items")
    await wait_until(pilot, lambda: len(inbox_rows(app)) == count, "the rows")
    screen = inbox_screen(app)
    await wait_until(pilot, lambda: all(i.request for i in screen.items), "the details")


def answered(runtime: Runtime) -> list[tuple[str, dict[str, object]]]:
    return [(answer.endpoint, dict(answer.body)) for answer in runtime.activity.answers]


async def peer_app(vellum_peer: VellumPeer, home: Path) -> tuple[RoostApp, Runtime]:
    runtime = vellum_peer.runtime("ada")
    lockfile(home, {"ada": runtime.base_url})
    return make_app(), runtime


async def test_allow_and_deny_reach_the_runtime_and_the_items_leave(
    vellum_peer: VellumPeer, isolated_env: Path
) -> None:
    app, runtime = await peer_app(vellum_peer, isolated_env)
    async with app.run_test(size=SIZE) as pilot:
        await followed(pilot, app, runtime)
        first = runtime.activity.confirmation("c1", "bash", {"command": "ls"})
        second = runtime.activity.confirmation("c1", "bash", {"command": "rm x"})
        await in_the_inbox(pilot, app, 2)
        await pilot.press("a")
        await wait_until(pilot, lambda: len(inbox_rows(app)) == 1, "the allowed one gone")
        await pilot.press("d")
        await wait_until(pilot, lambda: not inbox_rows(app), "the denied one gone")
        assert answered(runtime) == [
            ("confirm", {"requestId": first, "decision": "allow"}),
            ("confirm", {"requestId": second, "decision": "deny"}),
        ]
        await wait_until(pilot, lambda: app.main_screen.inbox_count == 0, "the count")
        history = await asyncio.to_thread(app.roost.history)
        assert [(r.answered, r.front_end) for r in history] == [
            ("deny", "console"),
            ("allow", "console"),
        ]


async def test_high_risk_asks_first(vellum_peer: VellumPeer, isolated_env: Path) -> None:
    app, runtime = await peer_app(vellum_peer, isolated_env)
    async with app.run_test(size=SIZE) as pilot:
        await followed(pilot, app, runtime)
        request = runtime.activity.confirmation(
            "c1", "bash", {"command": "rm -rf /"}, risk="high", execution_target="host"
        )
        await in_the_inbox(pilot, app, 1)
        await pilot.press("a")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the question")
        assert isinstance(app.screen, ConfirmScreen)
        assert "runs on the host" in app.screen.question
        await pilot.press("n")
        await wait_until(pilot, lambda: isinstance(app.screen, InboxScreen), "no")
        assert runtime.activity.answers == []
        await pilot.press("d")
        await wait_until(
            pilot, lambda: isinstance(app.screen, ConfirmScreen), "a denial's question"
        )
        assert isinstance(app.screen, ConfirmScreen)
        assert app.screen.question.endswith("Deny it?")
        await pilot.press("n")
        await wait_until(pilot, lambda: isinstance(app.screen, InboxScreen), "no again")
        await pilot.press("a", "y")
        await wait_until(pilot, lambda: bool(runtime.activity.answers), "the answer")
        assert answered(runtime) == [("confirm", {"requestId": request, "decision": "allow"})]


async def test_always_allow_sends_a_trust_rule_then_allows(
    vellum_peer: VellumPeer, isolated_env: Path
) -> None:
    app, runtime = await peer_app(vellum_peer, isolated_env)
    async with app.run_test(size=SIZE) as pilot:
        await followed(pilot, app, runtime)
        request = runtime.activity.confirmation(
            "c1",
            "bash",
            {"command": "npm test"},
            patterns=("npm test", "npm *"),
            scopes=("project", "everywhere"),
        )
        await in_the_inbox(pilot, app, 1)
        await pilot.press("A")
        await wait_until(pilot, lambda: isinstance(app.screen, TrustPicker), "the picker")
        options = app.screen.query_one(OptionList)
        assert options.option_count == 4
        await pilot.press("down", "enter")  # npm test, everywhere
        await wait_until(pilot, lambda: len(runtime.activity.answers) == 2, "two requests")
        [(rule, body), confirm] = answered(runtime)
        assert rule == "trust-rules"
        assert (body["pattern"], body["scope"]) == ("npm test", "everywhere")
        assert confirm == ("confirm", {"requestId": request, "decision": "allow"})


async def test_questions_by_option_text_skip_and_close(
    vellum_peer: VellumPeer, isolated_env: Path
) -> None:
    app, runtime = await peer_app(vellum_peer, isolated_env)
    questions: list[dict[str, object]] = [
        {
            "id": "db",
            "question": "Which database?",
            "options": [{"id": "pg", "label": "Postgres"}, {"id": "my", "label": "MySQL"}],
        },
        {"id": "why", "question": "Why?", "options": [], "freeTextPlaceholder": "a reason"},
        {"id": "later", "question": "Anything else?", "options": []},
    ]
    async with app.run_test(size=SIZE) as pilot:
        await followed(pilot, app, runtime)
        asked = runtime.activity.question("c1", questions)
        dismissed = runtime.activity.question("c2")
        await in_the_inbox(pilot, app, 2)
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, QuestionsForm), "the form")
        # MySQL for the first, text for the second (tab: past the first's text), the third empty.
        await pilot.press("down", "enter", "tab", "tab", *"it is what we run", "ctrl+s")
        await wait_until(pilot, lambda: bool(runtime.activity.answers), "the answer")
        assert answered(runtime) == [
            (
                "question-response",
                {
                    "requestId": asked,
                    "kind": "submit",
                    "responses": [
                        {"questionId": "db", "kind": "option", "optionId": "my"},
                        {"questionId": "why", "kind": "free_text", "text": "it is what we run"},
                        {"questionId": "later", "kind": "skip"},
                    ],
                },
            )
        ]
        await wait_until(pilot, lambda: inbox_rows(app) == [app.activity.inbox[0].id], "one")
        await pilot.press("c")
        await wait_until(pilot, lambda: len(runtime.activity.answers) == 2, "closed")
        assert answered(runtime)[1] == (
            "question-response",
            {"requestId": dismissed, "kind": "close"},
        )


async def test_an_item_answered_elsewhere_leaves_quietly(
    vellum_peer: VellumPeer, isolated_env: Path
) -> None:
    app, runtime = await peer_app(vellum_peer, isolated_env)
    async with app.run_test(size=SIZE) as pilot:
        await followed(pilot, app, runtime)
        first = runtime.activity.confirmation("c1", "bash", {"command": "ls"})
        runtime.activity.confirmation("c1", "bash", {"command": "pwd"})
        await in_the_inbox(pilot, app, 2)
        runtime.activity.resolve(first)  # the runtime says so: the item leaves
        await wait_until(pilot, lambda: len(inbox_rows(app)) == 1, "it leaves")

        # An answer to an item someone else took meanwhile: 404, said quietly, gone.
        runtime.activity.answer_replies.append(json_reply({"error": "gone"}, status=404))
        await pilot.press("a")
        await wait_until(pilot, lambda: not inbox_rows(app), "it leaves too")
        await wait_until(pilot, lambda: "Already answered elsewhere." in toasts(app), "told")
        assert not [n for n in app._notifications if n.severity == "error"]


SECRET_VALUE = "hunter2-do-not-keep-7f3a"


async def test_a_secret_typed_in_the_inbox_appears_nowhere(
    vellum_peer: VellumPeer, isolated_env: Path
) -> None:
    app, runtime = await peer_app(vellum_peer, isolated_env)
    async with app.run_test(size=SIZE) as pilot:
        await followed(pilot, app, runtime)
        request = runtime.activity.secret("c1", "github", "token", "A token with repo scope")
        await in_the_inbox(pilot, app, 1)
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, SecretPrompt), "the prompt")
        field = app.screen.query_one("#secret-value", Input)
        assert field.password
        await pilot.press(*SECRET_VALUE, "enter")
        await wait_until(pilot, lambda: bool(runtime.activity.answers), "the answer")
        assert answered(runtime) == [
            ("secret", {"requestId": request, "value": SECRET_VALUE, "delivery": "store"})
        ]
        assert field.value == ""
        await wait_until(pilot, lambda: not inbox_rows(app), "it leaves")
        await pilot.press("escape", "e")
        shown = [line.text for line in app.main_screen.events_log.lines]
        told = toasts(app)
    assert any("github" in line for line in shown)  # the answer is in the events panel...
    assert not any(SECRET_VALUE in text for text in shown + told)  # ...not its value
    paths = RoostPaths.resolve()
    for path in [*paths.state_dir.rglob("*"), *paths.log_dir.rglob("*")]:
        if path.is_file():
            assert SECRET_VALUE.encode() not in path.read_bytes(), path
