"""SVG snapshots of the key screens (update with `pytest --snapshot-update` after a UI change)."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from textual.pilot import Pilot

from tests.conftest import require
from tests.demo import (
    SCENES,
    DemoHosts,
    DemoTmux,
    Scene,
    demo_app,
    demo_hosts,
    demo_server,
    fleet_filtered,
    fleet_listed,
    help_open,
)
from tests.pilot import SIZE
from tests.ssh_fixtures import require_ssh


@pytest.fixture(autouse=True)
def utc_local_time() -> Iterator[None]:
    """Times on screen are local: make local time UTC, so every machine draws the same."""
    previous = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield
    if previous is None:
        os.environ.pop("TZ")
    else:
        os.environ["TZ"] = previous
    time.tzset()


@contextlib.contextmanager
def scene_server(scene: Scene) -> Iterator[DemoTmux | None]:
    """The demo's tmux server for a scene that needs one (skipped without tmux), else None."""
    if not scene.tmux:
        yield None
        return
    require("tmux", "ROOST_REQUIRE_TMUX")
    with demo_server(scene.sessions) as server:
        yield server


@contextlib.contextmanager
def scene_hosts(scene: Scene) -> Iterator[DemoHosts | None]:
    """The demo's hosts for a scene that has some (skipped without sshd), else None."""
    if scene.hosts:
        require_ssh()
    with demo_hosts(scene.hosts) as hosts:
        yield hosts


def snap_scene(
    snap_compare: Callable[..., bool], scene: Scene, size: tuple[int, int], directory: Path
) -> None:
    with scene_server(scene) as server, scene_hosts(scene) as hosts:
        app = demo_app(
            server,
            directory,
            seed=scene.seed,
            shell=scene.shell,
            agents=scene.agents,
            hosts=hosts,
        )

        assert snap_compare(app, terminal_size=size, run_before=scene.show)
        assert app.return_code == 0  # a crash can still draw a screen: make sure there was none


@pytest.mark.parametrize("scene", sorted(SCENES))
def test_key_screen(snap_compare: Callable[..., bool], scene: str, tmp_path: Path) -> None:
    snap_scene(snap_compare, SCENES[scene], SIZE, tmp_path)


async def detail_shown(pilot: Pilot[None]) -> None:
    """The fleet with the detail panel toggled on (it starts hidden on a narrow screen)."""
    await fleet_listed(pilot)
    await pilot.press("d")


NARROW_SCENES: dict[str, Scene] = {
    "main": Scene(fleet_listed),
    "filter": Scene(fleet_filtered),
    "help": Scene(help_open),
    "detail": Scene(detail_shown),
    "hosts": SCENES["hosts"],
}


@pytest.mark.parametrize("scene", sorted(NARROW_SCENES))
def test_key_screen_at_80x24(snap_compare: Callable[..., bool], scene: str, tmp_path: Path) -> None:
    snap_scene(snap_compare, NARROW_SCENES[scene], (80, 24), tmp_path)


def test_main_screen_at_200x50(snap_compare: Callable[..., bool], tmp_path: Path) -> None:
    snap_scene(snap_compare, SCENES["main"], (200, 50), tmp_path)
