"""The main screen, driven with Textual's pilot against real private tmux servers."""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
from pathlib import Path

import pytest
from textual.widgets import Input
from textual.widgets._footer import FooterKey

from services.context import Context
from services.core.config import Config, ConfigError
from services.terminal.tmux import TmuxServer, TmuxSocket
from tests.conftest import new_session
from tests.pilot import SIZE, make_app, static_text, table_names, wait_until
from tui.app import KNOWN_BINDING_IDS, RoostApp, create_app
from tui.screens.help import HelpScreen
from tui.screens.pick import SessionPicker
from widgets.keyed_table import KeyedTable


def host_status(app: RoostApp) -> str:
    rows = app.screen.query_one("#assistants", KeyedTable).rows_shown
    return rows[0].cells[3].plain if rows else ""


def detail_text(app: RoostApp) -> str:
    return static_text(app, "#detail")


async def test_this_machine_and_every_session_of_its_server(tmux_server: TmuxServer) -> None:
    new_session(tmux_server, "agent-claude", windows=2)
    new_session(tmux_server, "build")
    app = make_app()

    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: len(table_names(app)) == 3, "three rows")

        assert table_names(app) == ["this machine", "agent-claude", "build"]
        table = app.screen.query_one("#assistants", KeyedTable)
        host, first, second = table.rows_shown
        assert [c.plain for c in host.cells[:4]] == [
            "  this machine",
            "local host",
            "test-host",
            "● running",
        ]
        assert [c.plain for c in first.cells[1:9]] == [
            "tmux session",
            "test-host",
            "● detached",
            "",
            "",
            "",
            "",
            "2 win",
        ]
        assert first.cells[0].plain.startswith("  ├") and second.cells[0].plain.startswith("  └")
        assert "2 tmux sessions" in detail_text(app)

        await pilot.press("down")
        await wait_until(pilot, lambda: "agent-claude" in detail_text(app), "session detail")
        assert "attach -t agent-claude" in detail_text(app)


async def test_a_new_session_appears_on_refresh(tmux_server: TmuxServer) -> None:
    new_session(tmux_server, "first")
    # A long interval: only the refresh key can make the new session appear in time.
    app = make_app(config=Config(tmux_refresh_seconds=3600))

    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: table_names(app) == ["this machine", "first"], "first")
        new_session(tmux_server, "second")

        await pilot.press("R")

        await wait_until(pilot, lambda: "second" in table_names(app), "the new session")


async def test_the_filter_narrows_the_list_and_escape_restores_it(
    tmux_server: TmuxServer,
) -> None:
    for name in ("agent-claude", "agent-codex", "build"):
        new_session(tmux_server, name)
    app = make_app()

    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: len(table_names(app)) == 4, "four rows")

        await pilot.press("slash")
        assert isinstance(app.focused, Input)
        await pilot.press(*"codex")
        await wait_until(pilot, lambda: len(table_names(app)) == 2, "the filter")
        assert table_names(app) == ["this machine", "agent-codex"]
        panel = app.screen.query_one("#assistants-panel")
        assert panel.border_subtitle == "2 of 4 shown"

        await pilot.press("enter")
        assert isinstance(app.focused, KeyedTable)
        await pilot.press("escape")
        await wait_until(pilot, lambda: len(table_names(app)) == 4, "the full list")
        assert app.screen.query_one("#filter", Input).value == ""


async def test_help_lists_every_binding_and_closes() -> None:
    app = make_app()

    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        listed = {command.binding_id: command for command in app.screen.commands}

        elsewhere = {"close_help", "terminal.leave", "confirm_yes", "confirm_no", "confirm_cancel"}
        elsewhere.add("pick_cancel")  # the session picker
        elsewhere.add("restore_close")  # the restore flow
        jobs = {"job_detail", "job_retry", "job_reveal", "job_remove", "job_back"}
        panes = {id for id in KNOWN_BINDING_IDS if id.startswith("panes.")}
        rewind = {id for id in KNOWN_BINDING_IDS if id.startswith("rewind.")}
        # The inbox's and its dialogs' keys, listed by `?` there (tests/test_app_inbox.py).
        inbox = {
            id
            for id in KNOWN_BINDING_IDS
            if id.startswith(("inbox_", "trust_", "questions_", "secret_"))
        }
        backups = {id for id in KNOWN_BINDING_IDS if id.startswith("backups_")}  # `?` there
        assert set(listed) == (
            KNOWN_BINDING_IDS - elsewhere - jobs - panes - rewind - inbox - backups
        )
        # The keys of the jobs table, of the panes and of rewind are listed too, under their
        # own headings.
        [(jobs_heading, job_keys), (panes_heading, pane_keys), (rewind_heading, rewind_keys)] = (
            app.screen.sections
        )
        assert jobs_heading == "In the jobs table (j goes there)"
        assert {command.binding_id for command in job_keys} == jobs
        assert panes_heading == "In a terminal pane, after ^]"
        assert {command.binding_id for command in pane_keys} == panes
        assert rewind_heading == "Rewinding a terminal pane (^] then h)"
        assert {command.binding_id for command in rewind_keys} == rewind
        assert "except ^] (id terminal.leave)" in static_text(app, "#help-remap")
        text = static_text(app, "#help-keys")
        for command in (*listed.values(), *job_keys, *pane_keys, *rewind_keys):
            assert command.description in text
            assert command.binding_id in text

        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


async def test_keys_are_remapped_from_config() -> None:
    app = make_app(config=Config(keys={"help": "f1"}))

    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        assert not isinstance(app.screen, HelpScreen)
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        help_keys = {c.binding_id: c.keys for c in app.screen.commands}
        assert help_keys["help"] == ("f1",)


def test_a_remap_of_an_unknown_binding_is_a_config_error() -> None:
    context = dataclasses.replace(Context.load(), config=Config(keys={"frobnicate": "x"}))

    with pytest.raises(ConfigError) as caught:
        create_app(context)

    assert caught.value.key == "keys.frobnicate"
    assert "refresh" in caught.value.problem  # lists the known ids


async def test_the_palette_offers_every_command_of_the_screen() -> None:
    app = make_app()

    async with app.run_test(size=SIZE):
        titles = [command.title for command in app.get_system_commands(app.screen)]

    for description in (
        "Filter",
        "Re-probe",
        "Refresh all",
        "Events",
        "Next panel",
        "Help",
        "Quit",
    ):
        assert description in titles


async def test_without_a_tmux_server_the_row_says_so(tmux_server: TmuxServer) -> None:
    app = make_app()

    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: host_status(app) == "▲ no tmux server", "the status")

        assert table_names(app) == ["this machine"]
        assert "is not running" in detail_text(app)


async def test_without_tmux_installed_the_row_says_so(tmp_path: Path) -> None:
    tmux = TmuxServer(TmuxSocket(str(tmp_path / "sock")), executable="roost-no-such-tmux")
    app = make_app(tmux=tmux)

    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: host_status(app) == "▲ tmux not installed", "the status")

        assert table_names(app) == ["this machine"]
        assert "not found" in detail_text(app)


async def test_the_server_going_away_is_shown_on_the_next_refresh(
    tmux_server: TmuxServer,
) -> None:
    new_session(tmux_server, "short-lived")
    app = make_app(config=Config(tmux_refresh_seconds=3600))

    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: "short-lived" in table_names(app), "the session")
        await asyncio.to_thread(subprocess.run, tmux_server.argv("kill-server"), check=True)
        await pilot.press("R")

        await wait_until(pilot, lambda: table_names(app) == ["this machine"], "the empty host")
        table = app.screen.query_one("#assistants", KeyedTable)
        assert table.rows_shown[0].cells[3].plain == "▲ no tmux server"


async def test_tab_moves_between_panels_and_jobs_explain_themselves() -> None:
    app = make_app()

    async with app.run_test(size=SIZE) as pilot:
        assert app.focused is not None and app.focused.id == "assistants"
        await pilot.press("tab")
        assert app.focused is not None and app.focused.id == "jobs"
        await pilot.press("tab")
        assert app.focused is not None and app.focused.id == "detail-panel"
        await pilot.press("shift+tab")
        assert app.focused is not None and app.focused.id == "jobs"

        empty = app.screen.query_one("#jobs-empty")
        assert empty.display
        assert "A job is" in static_text(app, "#jobs-empty")


async def test_typing_in_the_filter_never_triggers_a_key_binding(tmux_server: TmuxServer) -> None:
    app = make_app()

    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("slash", "q", "question_mark", "r", "b", "slash")

        assert app.is_running
        assert not isinstance(app.screen, HelpScreen)
        assert app.screen.query_one("#filter", Input).value == "q?rb/"


async def test_j_gives_the_jobs_table_its_keys_and_escape_gives_them_back() -> None:
    app = make_app(config=Config(keys={"job_retry": "f6"}))

    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("j")
        assert app.focused is not None and app.focused.id == "jobs"
        assert "job_retry" in {binding.id for _, binding, *_ in app.screen.active_bindings.values()}
        await pilot.press("escape")
        assert app.focused is not None and app.focused.id == "assistants"

        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        job_keys = {command.binding_id: command.keys for command in app.screen.sections[0][1]}
        assert job_keys["job_retry"] == ("f6",)  # remapped keys are the ones listed


async def test_the_filter_names_an_unknown_field_and_keeps_the_rows(
    tmux_server: TmuxServer,
) -> None:
    for name in ("my bot", "other"):
        new_session(tmux_server, name)
    app = make_app()

    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: len(table_names(app)) == 3, "the sessions")
        error = app.screen.query_one("#filter-error")
        app.screen.query_one("#filter", Input).value = "colour:red"
        await wait_until(pilot, lambda: error.display, "the filter's error")
        assert static_text(app, "#filter-error").startswith(
            "unknown field 'colour'; fields: name, kind, where, status, health, source, version, "
            "activity"
        )
        assert len(table_names(app)) == 3  # nothing lost while the filter means nothing

        app.screen.query_one("#filter", Input).value = 'name:"my bot"'
        await wait_until(pilot, lambda: table_names(app) == ["this machine", "my bot"], "quoted")
        assert not error.display


async def test_the_list_counts_its_rows_in_words_and_names_the_sort_column() -> None:
    app = make_app()

    async with app.run_test(size=SIZE) as pilot:
        panel = app.screen.query_one("#assistants-panel")
        await wait_until(pilot, lambda: panel.border_subtitle == "1 row", "one row")
        await pilot.press(*"s" * 10)  # name, kind, where, status, activity, health, latency ...
        assert panel.border_subtitle == "1 row · sorted by seen"


async def test_the_session_picker_is_centred_like_the_dialogs() -> None:
    app = make_app()

    async with app.run_test(size=SIZE) as pilot:
        picked: list[str | None] = []
        app.push_screen(
            SessionPicker("ada: attach to", ["one", "two"], new_shell=True), picked.append
        )
        await pilot.pause()
        dialog = app.screen.query_one(".dialog").region
        width, height = SIZE
        assert abs(dialog.x - (width - dialog.right)) <= 1
        assert abs(dialog.y - (height - dialog.bottom)) <= 1
        await pilot.press("escape")
        assert picked == [None]


async def test_at_80x24_the_table_keeps_status_the_footer_keeps_q_and_help() -> None:
    app = make_app()

    async with app.run_test(size=(80, 24)) as pilot:
        table = app.screen.query_one("#assistants", KeyedTable)
        detail = app.screen.query_one("#detail-panel")
        await wait_until(pilot, lambda: bool(table.rows_shown), "the first row")
        await pilot.pause()
        assert not detail.display  # the table has the width
        assert {"name", "kind", "status"} <= set(table.columns_shown)
        assert host_status(app) in table.render_line(1).text  # the whole status, not a letter
        assert table.virtual_size.width <= table.scrollable_content_region.width

        keys = {key.action: key.region for key in app.screen.query(FooterKey)}
        for action in ("quit", "help"):
            assert keys[action].right <= 80 - len(" ^p Commands"), action  # on screen, in full

        await pilot.press("d")
        assert detail.display and detail.region.width >= 36
        await pilot.press("d")
        assert not detail.display


async def test_a_wide_screen_shows_the_detail_and_d_hides_it() -> None:
    app = make_app()

    async with app.run_test(size=SIZE) as pilot:
        detail = app.screen.query_one("#detail-panel")
        assert detail.display
        await pilot.press("d")
        assert not detail.display
        await pilot.press("d")

        await pilot.resize_terminal(100, 30)  # narrower: the table takes the room
        await wait_until(pilot, lambda: not detail.display, "the detail hidden")
        await pilot.resize_terminal(*SIZE)
        await wait_until(pilot, lambda: detail.display, "the detail back")
