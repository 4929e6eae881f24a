"""SVG snapshots of the key screens (update with `pytest --snapshot-update` after a UI change)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from textual.pilot import Pilot

from services.terminal.tmux import TmuxServer
from tests.conftest import require
from tests.demo import SCENES, Scene, demo_app, demo_server, fleet_filtered, fleet_listed, help_open
from tests.pilot import SIZE


@pytest.fixture
def server() -> Iterator[TmuxServer]:
    require("tmux", "ROOST_REQUIRE_TMUX")
    with demo_server() as server:
        yield server


@pytest.mark.parametrize("scene", sorted(SCENES))
def test_key_screen(
    snap_compare: Callable[..., bool], server: TmuxServer, scene: str, tmp_path: Path
) -> None:
    app = demo_app(server, tmp_path)

    assert snap_compare(app, terminal_size=SIZE, run_before=SCENES[scene])
    assert app.return_code == 0  # a crash can still draw a screen: make sure there was none


async def detail_shown(pilot: Pilot[None]) -> None:
    """The fleet with the detail panel toggled on (it starts hidden on a narrow screen)."""
    await fleet_listed(pilot)
    await pilot.press("d")


NARROW_SCENES: dict[str, Scene] = {
    "main": fleet_listed,
    "filter": fleet_filtered,
    "help": help_open,
    "detail": detail_shown,
}


@pytest.mark.parametrize("scene", sorted(NARROW_SCENES))
def test_key_screen_at_80x24(
    snap_compare: Callable[..., bool], server: TmuxServer, scene: str, tmp_path: Path
) -> None:
    app = demo_app(server, tmp_path)

    assert snap_compare(app, terminal_size=(80, 24), run_before=NARROW_SCENES[scene])
    assert app.return_code == 0
