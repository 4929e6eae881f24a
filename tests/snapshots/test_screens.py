"""SVG snapshots of the key screens (update with `pytest --snapshot-update` after a UI change)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from textual.pilot import Pilot

from services.tmux import TmuxServer
from tests.conftest import require
from tests.demo import SESSIONS, demo_app, demo_server
from tests.pilot import SIZE, table_names, wait_until
from tui.screens.help import HelpScreen

SnapCompare = Callable[..., bool]


@pytest.fixture
def server() -> Iterator[TmuxServer]:
    require("tmux", "ROOST_REQUIRE_TMUX")
    with demo_server() as server:
        yield server


async def listed(pilot: Pilot[None]) -> None:
    await wait_until(pilot, lambda: len(table_names(pilot.app)) == 1 + len(SESSIONS), "the fleet")  # type: ignore[arg-type]


def compare(snap_compare: SnapCompare, server: TmuxServer, scene: Callable[..., object]) -> None:
    """Compare, and make sure the app did not crash on the way (a crash can still draw)."""
    app = demo_app(server)
    assert snap_compare(app, terminal_size=SIZE, run_before=scene)
    assert app.return_code == 0


def test_main_screen(snap_compare: SnapCompare, server: TmuxServer) -> None:
    compare(snap_compare, server, listed)


def test_main_screen_filtered_on_a_session(snap_compare: SnapCompare, server: TmuxServer) -> None:
    async def filtered(pilot: Pilot[None]) -> None:
        await listed(pilot)
        await pilot.press("slash", *"codex", "enter")

    compare(snap_compare, server, filtered)


def test_help_screen(snap_compare: SnapCompare, server: TmuxServer) -> None:
    async def help_open(pilot: Pilot[None]) -> None:
        await listed(pilot)
        await pilot.press("question_mark")
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, HelpScreen), "the help")

    compare(snap_compare, server, help_open)
