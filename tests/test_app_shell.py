"""The app shell: the command palette on every screen, and what an unexpected error leaves
behind (its traceback in the log, one line for the user)."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncGenerator, Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.command import CommandList, CommandPalette
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widgets import RichLog
from textual.widgets._toast import Toast
from textual.worker import WorkerFailed

from services.core.logs import configure_logging
from services.core.paths import RoostPaths
from services.docker.lifecycle import Kind, Outcome, Step
from services.fleet.model import Assistant
from services.jobs.exports import Exporter
from services.jobs.record import Job, JobState
from services.jobs.store import JobStore
from services.roost import Roost
from services.vellum.auth import RuntimeEndpoint
from tests.peers.vellum import Artifact, VellumPeer
from tests.pilot import SIZE, make_app, table_names, wait_until
from tui.app import RoostApp
from tui.commands import commands
from tui.job_table import JobTable
from tui.screens.confirm import ConfirmScreen, TypedConfirmScreen
from tui.screens.help import HelpScreen
from tui.screens.pick import SessionPicker
from tui.terminal_pane import TerminalPane
from widgets.keyed_table import KeyedTable

LEAVE = "ctrl+right_square_bracket"


async def palette_hits(pilot: Pilot[Any], app: RoostApp) -> tuple[Screen[Any], list[str]]:
    """Open the palette on the current screen: that screen, and every hit it lists as shown."""
    screen = app.screen
    expected = sum(command.discover for command in app.get_system_commands(screen))
    await pilot.press("ctrl+p")
    await wait_until(pilot, lambda: isinstance(app.screen, CommandPalette), "the palette")
    hits = app.screen.query_one(CommandList)
    await wait_until(
        pilot, lambda: hits.option_count == expected, f"{expected} commands on {screen}"
    )
    shown = [hits.get_option_at_index(i).prompt for i in range(hits.option_count)]
    await pilot.press("escape")
    await wait_until(pilot, lambda: app.screen is screen, "the palette closed")
    return screen, [getattr(prompt, "plain", str(prompt)) for prompt in shown]


def assert_every_key_shown(app: RoostApp, screen: Screen[Any], hits: list[str]) -> None:
    listed = [c for c in commands(app, screen) if c.enabled and c.action != "command_palette"]
    assert listed
    for command in listed:
        keys = f"[{', '.join(command.keys)}]"
        assert any(hit.startswith(f"{command.description}\n") and keys in hit for hit in hits), (
            f"{command.binding_id} {keys} not in the palette of {screen}"
        )


async def test_the_palette_opens_on_every_screen_and_shows_every_key() -> None:
    """Keys such as `/`, `[x]` or `ctrl+]` are shown as typed, never read as markup."""
    app = make_app()
    seen: set[type[Screen[Any]]] = set()
    async with app.run_test(size=SIZE) as pilot:

        async def check() -> None:
            screen, hits = await palette_hits(pilot, app)
            assert_every_key_shown(app, screen, hits)
            seen.add(type(screen))

        await wait_until(pilot, lambda: bool(app.fleet), "the fleet")
        await check()  # the main screen: its `/` is the filter
        app.main_screen.query_one(JobTable).focus()
        await wait_until(pilot, lambda: isinstance(app.focused, JobTable), "the jobs table")
        await check()  # and its jobs table's keys
        await pilot.press("question_mark")
        await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen), "help")
        await check()
        await pilot.press("escape")
        for dialog in (
            ConfirmScreen("Sleep [b]x[/b]", "Stop [x]?"),
            TypedConfirmScreen("Retire [x]", ["[/]"], "a[d]"),
            SessionPicker("[g]: attach to", ["[x]", "[/]"], new_shell=True),
        ):
            await app.push_screen(dialog)
            await check()
            dialog.dismiss(None)
            await wait_until(pilot, lambda: app.screen is app.main_screen, "the dialog closed")
        await pilot.press("t")  # a local shell: the panes screen and its pane keys
        await wait_until(pilot, lambda: bool(app.panes_screen.panes), "the pane")
        await pilot.press(LEAVE)
        await wait_until(pilot, lambda: isinstance(app.focused, TerminalPane), "the pane keys")
        await check()

    screens = {type(app.main_screen), type(app.panes_screen), HelpScreen}
    assert seen == screens | {ConfirmScreen, TypedConfirmScreen, SessionPicker}
    assert app.return_code in (0, None)


async def test_the_palette_runs_a_command() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: bool(app.fleet), "the fleet")
        await pilot.press("ctrl+p", *"Help", "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen), "help")


@pytest.fixture
def log_file(tmp_path: Path) -> Iterator[Path]:
    """roost's log as `roost` configures it (under the test's log dir); the handler is removed
    afterwards."""
    path = tmp_path / "roost-log" / "roost.log"
    configure_logging(path)
    yield path
    for handler in list(logging.getLogger().handlers):
        logging.getLogger().removeHandler(handler)
        handler.close()


def deep_failure() -> None:
    raise RuntimeError("nobody expected this")


def assert_traceback_logged(log_file: Path, where: str) -> None:
    text = log_file.read_text()
    assert "Traceback (most recent call last)" in text, text
    assert f"in {where}" in text and "in deep_failure" in text, text
    assert "RuntimeError: nobody expected this" in text, text


async def test_a_failed_worker_stops_roost_with_its_traceback_in_the_log(
    log_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app = make_app()

    async def failing_work() -> None:
        deep_failure()

    with pytest.raises(WorkerFailed):
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(pilot, lambda: bool(app.fleet), "the fleet")
            app.run_worker(failing_work(), name="failing work")
            await wait_until(pilot, lambda: app.return_code == 1, "roost to stop")

    assert_traceback_logged(log_file, "failing_work")
    # What roost prints when it has stopped: one line (wrapped at the terminal's width).
    shown = capsys.readouterr().err
    expected = f"roost stopped on an internal error; details are in {log_file}"
    assert "".join(shown.split()) == "".join(expected.split())


async def test_a_failed_timer_callback_stops_roost_with_its_traceback_in_the_log(
    log_file: Path,
) -> None:
    app = make_app()

    def on_timer() -> None:
        deep_failure()

    with pytest.raises(RuntimeError, match="nobody expected this"):
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(pilot, lambda: bool(app.fleet), "the fleet")
            app.set_timer(0.01, on_timer)
            await wait_until(pilot, lambda: app.return_code == 1, "roost to stop")

    assert_traceback_logged(log_file, "on_timer")


async def test_a_worker_that_keeps_roost_running_logs_a_bug_and_says_where(
    log_file: Path,
) -> None:
    app = make_app()

    async def background_work() -> None:
        deep_failure()

    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await wait_until(pilot, lambda: bool(app.fleet), "the fleet")
        app.run_worker(background_work(), name="background", exit_on_error=False)
        await wait_until(pilot, lambda: bool(toasts(app)), "a notification")
        assert app.is_running
        assert toasts(app) == [
            f"Internal error\nbackground stopped on an internal error; details are in {log_file}"
        ]

    assert app.return_code in (0, None)
    assert_traceback_logged(log_file, "background_work")


async def test_notifications_are_plain_text() -> None:
    """An error naming `[/tmp/x]` or `[/]` is shown as it is, never read as markup."""
    app = make_app()
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        app.main_screen.notify("no [/] such [x] in [/tmp/x]", title="[b]bob[/b]")
        await wait_until(pilot, lambda: bool(toasts(app)), "the notification")
        assert toasts(app) == ["[b]bob[/b]\nno [/] such [x] in [/tmp/x]"]
        assert app.is_running


def toasts(app: RoostApp) -> list[str]:
    return [toast.render().plain for toast in app.screen.query(Toast)]


async def test_an_event_names_its_subject_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`W` on a local assistant whose Vellum CLI is missing: `bob: …`, never `bob: bob: …`."""
    entry = {"assistantId": "bob", "cloud": "local", "runtimeUrl": "http://127.0.0.1:9"}
    (tmp_path / ".vellum.lock.json").write_text(json.dumps({"assistants": [entry]}))
    monkeypatch.setenv("VELLUM_LOCKFILE_DIR", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path / "nothing-on-path"))
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await select_row(pilot, app, "bob")
        await pilot.press("e", "W")
        await wait_until(pilot, lambda: "the Vellum CLI is not on PATH" in events(app), "events")
        [line] = [line for line in events(app).splitlines() if "Vellum CLI" in line]

    assert line.split("  ", 1)[1].startswith("bob: the Vellum CLI is not on PATH")


def events(app: RoostApp) -> str:
    log = app.main_screen.query_one("#events", RichLog)
    return "\n".join(strip.text for strip in log.lines)


async def test_a_source_that_fails_unexpectedly_says_where_the_log_is(log_file: Path) -> None:
    app = make_app()

    async def step_with_a_bug() -> None:
        deep_failure()

    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await wait_until(pilot, lambda: bool(app.fleet), "the fleet")
        app.fleet_refresh.pollers["lockfile"].step = step_with_a_bug
        app.fleet_refresh.pollers["lockfile"].wake()
        await wait_until(pilot, lambda: bool(toasts(app)), "a notification")
        assert toasts(app) == [
            f"Refresh failed\nlockfile: internal error; details are in {log_file}"
        ]

    assert_traceback_logged(log_file, "step_with_a_bug")


async def select_row(pilot: Pilot[Any], app: RoostApp, name: str) -> None:
    """Put the cursor on `name`'s row once it is shown."""
    await wait_until(pilot, lambda: name in table_names(app), f"{name}'s row")
    app.screen.query_one("#assistants", KeyedTable).move_cursor(table_names(app).index(name))


def lockfile_entry(home: Path, name: str, url: str, cloud: str) -> None:
    entry = {"assistantId": name, "cloud": cloud, "runtimeUrl": url}
    (home / ".vellum.lock.json").write_text(json.dumps({"assistants": [entry]}))


async def test_a_job_worker_that_fails_on_a_bug_leaves_its_job_failed(
    vellum_peer: VellumPeer, isolated_env: Path, log_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not "running" for ever: FAILED in the table and in the store, and the user told."""
    runtime = vellum_peer.runtime("ada")
    runtime.migrations.artifact = Artifact(200_000)
    lockfile_entry(isolated_env, "ada", runtime.base_url, "custom")
    backup = Exporter.backup

    async def backup_with_a_bug(
        exporter: Exporter, target: RuntimeEndpoint, destination: Path
    ) -> AsyncGenerator[Job]:
        async with contextlib.aclosing(backup(exporter, target, destination)) as jobs:
            async for job in jobs:
                yield job  # the job is in the table, under way
                deep_failure()

    monkeypatch.setattr(Exporter, "backup", backup_with_a_bug)
    app = make_app()
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await select_row(pilot, app, "ada")
        await pilot.press("b")
        await wait_until(
            pilot,
            lambda: [job.state for job in app.main_screen.jobs] == [JobState.FAILED],
            "the job failed",
        )
        problem = f"internal error; details are in {log_file}"
        [job] = app.main_screen.jobs
        assert job.error == problem
        [row] = app.main_screen.query_one("#jobs", JobTable).rows_shown
        assert [cell.plain for cell in row.cells][3] == "failed"
        await wait_until(pilot, lambda: bool(toasts(app)), "a notification")
        assert toasts(app) == [f"Internal error\nbackup stopped on an {problem}"]
        assert app.is_running

    assert [(j.id, j.state) for j in JobStore.at(RoostPaths.resolve()).load()] == [
        (job.id, JobState.FAILED)
    ]
    assert_traceback_logged(log_file, "backup_with_a_bug")


async def test_a_lifecycle_worker_that_fails_on_a_bug_releases_its_assistant(
    isolated_env: Path, log_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not "waking…" for ever: the failure in the events panel, the row back to what the fleet
    shows, and the next W accepted."""
    lockfile_entry(isolated_env, "ada", "http://127.0.0.1:9", "docker")

    def wake_with_a_bug(roost: Roost, assistant: Assistant) -> Iterator[Step]:
        yield Step(Kind.CONTAINER, f"{assistant.id}-assistant", Outcome.DONE, "started")
        deep_failure()

    monkeypatch.setattr(Roost, "wake", wake_with_a_bug)
    app = make_app()
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await select_row(pilot, app, "ada")
        await pilot.press("e")
        problem = f"internal error; details are in {log_file}"
        for attempt in (1, 2):  # the first one left nothing busy behind
            await pilot.press("W")
            await wait_until(
                pilot,
                lambda attempt=attempt: (
                    events(app).count(f"ada: wake failed: {problem}") == attempt
                ),  # type: ignore[misc]
                "the failure",
            )
            await wait_until(pilot, lambda: not app.snapshot.actions, "ada released")
        assert "ada-assistant: started" in events(app)
        assert toasts(app) == [f"Internal error\nwake of ada stopped on an {problem}"] * 2
        assert not any("already" in n.message for n in app._notifications)

    assert_traceback_logged(log_file, "wake_with_a_bug")


@pytest.mark.parametrize(("key", "title"), [("u", "Use"), ("b", "Backup")])
async def test_use_and_backup_on_this_machine_say_why_not(key: str, title: str) -> None:
    """The row's keys ask the assistant's capabilities, which say why in one line."""
    app = make_app()

    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await wait_until(pilot, lambda: bool(app.fleet), "the fleet")  # this machine, selected
        await pilot.press(key)
        await wait_until(pilot, lambda: bool(toasts(app)), "a notification")

        assert toasts(app) == [
            f"{title}\nthis machine is not in the Vellum lockfile: "
            + (
                "only its assistants can be the active one"
                if key == "u"
                else "roost backs up Vellum assistants"
            )
        ]
