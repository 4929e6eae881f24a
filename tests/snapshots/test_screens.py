"""SVG snapshots of the key screens (update with `pytest --snapshot-update` after a UI change)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from services.tmux import TmuxServer
from tests.conftest import require
from tests.demo import SCENES, demo_app, demo_server
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
