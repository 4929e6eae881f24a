"""The app shell: the command palette on every screen, and what an unexpected error leaves
behind (its traceback in the log, one line for the user)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.command import CommandList, CommandPalette
from textual.pilot import Pilot
from textual.screen import Screen

from tests.pilot import SIZE, make_app, wait_until
from tui.app import RoostApp
from tui.commands import commands
from tui.screens.confirm import ConfirmScreen, TypedConfirmScreen
from tui.screens.help import HelpScreen
from tui.screens.main import JobTable
from tui.screens.pick import SessionPicker
from tui.terminal_pane import TerminalPane

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


def log_text(tmp_path: Path) -> str:
    log_file = tmp_path / "roost-log" / "roost.log"
    return log_file.read_text() if log_file.exists() else ""
