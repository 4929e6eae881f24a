"""A fixed scene for snapshots and screenshots: a private tmux server with a few sessions, and the
app built with a host name and a clock that make every run draw the same screen."""

from __future__ import annotations

import dataclasses
import subprocess
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta

from textual.pilot import Pilot

from services.config import Config
from services.context import Context
from services.tmux import TmuxServer, TmuxSocket, TmuxState
from tests.conftest import new_session
from tests.pilot import table_names, wait_until
from tui.app import RoostApp, create_app
from tui.screens.help import HelpScreen

SOCKET_NAME = "roost-demo"
SESSIONS = (("agent-claude", 3), ("agent-codex", 1), ("build", 2))


@contextmanager
def demo_server() -> Iterator[TmuxServer]:
    """A fresh private server (`tmux -L roost-demo`) holding SESSIONS, killed afterwards."""
    server = TmuxServer(TmuxSocket(SOCKET_NAME))
    subprocess.run(server.argv("kill-server"), capture_output=True, check=False)
    try:
        for name, windows in SESSIONS:
            new_session(server, name, windows=windows)
        yield server
    finally:
        subprocess.run(server.argv("kill-server"), capture_output=True, check=False)


def demo_app(server: TmuxServer) -> RoostApp:
    """The app on `server`, with ages frozen: its clock stands 2.5 minutes after the sessions
    began (they run `sleep`, so their activity time never moves; ages round down to minutes)."""
    listing = server.list_sessions()
    assert listing.state is TmuxState.RUNNING, listing.detail
    frozen = max(session.activity for session in listing.sessions) + timedelta(seconds=150)
    context = dataclasses.replace(
        Context.load(config=Config(tmux_refresh_seconds=3600)),
        tmux=server,
        hostname="workstation",
        clock=lambda: frozen,
    )
    return create_app(context)


async def fleet_listed(pilot: Pilot[None]) -> None:
    """The main screen once every demo session is listed."""
    await wait_until(pilot, lambda: len(table_names(pilot.app)) == 1 + len(SESSIONS), "the fleet")


async def fleet_filtered(pilot: Pilot[None]) -> None:
    """The filter narrowed to the agents: this machine and two of its sessions."""
    await fleet_listed(pilot)
    await pilot.press("slash", *"agent")
    await wait_until(pilot, lambda: len(table_names(pilot.app)) == 3, "the filter")


async def help_open(pilot: Pilot[None]) -> None:
    """The help screen over the main screen."""
    await fleet_listed(pilot)
    await pilot.press("question_mark")
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, HelpScreen), "the help")


Scene = Callable[[Pilot[None]], Awaitable[None]]
SCENES: dict[str, Scene] = {"main": fleet_listed, "filter": fleet_filtered, "help": help_open}
"""Each key screen by name: the snapshot tests and screenshots/ draw these same scenes."""
