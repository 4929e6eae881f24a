"""Regenerate the SVGs in screenshots/ by driving the real app: `python -m screenshots.generate`.

Uses the same fixed scene as the snapshot tests: a private tmux server (`tmux -L roost-demo`)
with a few sessions, 160x45 cells, a frozen clock. Never edit the SVGs by hand.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

from textual.pilot import Pilot

from tests.demo import SESSIONS, demo_app, demo_server
from tests.pilot import SIZE, table_names, wait_until
from tui.screens.help import HelpScreen

OUT = Path(__file__).resolve().parent

Scene = Callable[[Pilot[None]], Awaitable[None]]


async def main_screen(pilot: Pilot[None]) -> None:
    await wait_until(pilot, lambda: len(table_names(pilot.app)) == 1 + len(SESSIONS), "the fleet")  # type: ignore[arg-type]


async def filtered(pilot: Pilot[None]) -> None:
    await main_screen(pilot)
    await pilot.press("slash", *"agent")
    await wait_until(pilot, lambda: len(table_names(pilot.app)) == 3, "the filter")  # type: ignore[arg-type]


async def help_screen(pilot: Pilot[None]) -> None:
    await main_screen(pilot)
    await pilot.press("question_mark")
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, HelpScreen), "the help")


SCENES: dict[str, Scene] = {"main": main_screen, "filter": filtered, "help": help_screen}


async def shoot(name: str, scene: Scene) -> Path:
    with demo_server() as server:
        app = demo_app(server)
        async with app.run_test(size=SIZE) as pilot:
            await scene(pilot)
            await pilot.pause()
            path = OUT / f"{name}.svg"
            app.save_screenshot(str(path.name), path=str(OUT))
    return path


def main() -> int:
    # Everything roost would write goes to a scratch directory, never to the user's files.
    scratch = tempfile.mkdtemp(prefix="roost-screenshots-")
    for variable in ("ROOST_CONFIG_DIR", "ROOST_STATE_DIR", "ROOST_CACHE_DIR", "ROOST_LOG_DIR"):
        os.environ[variable] = f"{scratch}/{variable.lower()}"
    os.environ["VELLUM_LOCKFILE_DIR"] = scratch
    os.environ.pop("TMUX", None)
    for name, scene in SCENES.items():
        print(asyncio.run(shoot(name, scene)).relative_to(OUT.parent))
    return 0


if __name__ == "__main__":
    sys.exit(main())
