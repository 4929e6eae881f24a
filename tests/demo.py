"""A fixed scene for snapshots and screenshots: a private tmux server with a few sessions, and the
app built with a host name and a clock that make every run draw the same screen."""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from textual.app import App
from textual.pilot import Pilot

from services.core.config import Config, EngineConfig
from services.core.context import Context
from services.terminal.tmux import TmuxServer, TmuxSocket, TmuxState
from services.vellum.registry import PID_FILE
from tests.conftest import new_session
from tests.pilot import table_names, wait_until
from tui.app import RoostApp, create_app
from tui.screens.help import HelpScreen
from tui.screens.panes import PanesScreen
from tui.terminal_pane import TerminalPane

SOCKET_NAME = "roost-demo"
SESSIONS = (("agent-claude", 3), ("agent-codex", 1), ("build", 2))


@contextmanager
def demo_server() -> Iterator[TmuxServer]:
    """A fresh private server (`tmux -L roost-demo`) holding SESSIONS, killed afterwards.

    Its socket lives in a directory of its own (TMUX_TMPDIR, which every tmux started meanwhile
    inherits), so runs side by side on one machine never share it or kill each other's.
    """
    with tempfile.TemporaryDirectory(prefix="roost-demo-") as directory:
        previous = os.environ.get("TMUX_TMPDIR")
        os.environ["TMUX_TMPDIR"] = directory
        server = TmuxServer(TmuxSocket(SOCKET_NAME))
        try:
            for name, windows in SESSIONS:
                new_session(server, name, windows=windows)
            yield server
        finally:
            subprocess.run(server.argv("kill-server"), capture_output=True, check=False)
            if previous is None:
                os.environ.pop("TMUX_TMPDIR")
            else:
                os.environ["TMUX_TMPDIR"] = previous


REFUSED = "http://127.0.0.1:9"
"""Nothing listens there: a probe is refused at once, so what it shows never varies."""


def demo_lockfile(directory: Path, healthy_url: str | None) -> None:
    """A Vellum lockfile with an assistant of each kind and state. Without `healthy_url` every
    health answer is instant and the same each run (refused, not logged in, asleep)."""
    alive_dir, dead_dir = directory / "ada", directory / "bob"
    for instance, pid in ((alive_dir, os.getpid()), (dead_dir, 2**22 + 1)):
        (instance / PID_FILE).parent.mkdir(parents=True, exist_ok=True)
        (instance / PID_FILE).write_text(str(pid))
    entries: list[dict[str, object]] = [
        {
            "assistantId": "ada",
            "cloud": "local",
            "runtimeUrl": healthy_url or REFUSED,
            "resources": {"instanceDir": str(alive_dir), "signingKey": "never-shown"},
        },
        {
            "assistantId": "bob",
            "cloud": "local",
            "runtimeUrl": REFUSED,
            "resources": {"instanceDir": str(dead_dir)},
        },
        {"assistantId": "cora", "name": "cora", "cloud": "vellum", "runtimeUrl": REFUSED},
        {"assistantId": "eve", "cloud": "docker", "runtimeUrl": REFUSED},
        {
            "assistantId": "gpu-box",
            "cloud": "gcp",
            "runtimeUrl": REFUSED,
            "bearerToken": "never-shown",
        },
        {"name": "half-written"},
    ]
    document = {"assistants": entries, "activeAssistant": "cora"}
    (directory / ".vellum.lock.json").write_text(json.dumps(document, indent=2) + "\n")


def demo_app(server: TmuxServer, directory: Path, healthy_url: str | None = None) -> RoostApp:
    """The app on `server` and a demo lockfile in `directory`, with ages frozen: its clock stands
    2.5 minutes after the sessions began (they run `sleep`, so their activity never moves)."""
    listing = server.list_sessions()
    assert listing.state is TmuxState.RUNNING, listing.detail
    frozen = max(session.activity for session in listing.sessions) + timedelta(seconds=150)
    demo_lockfile(directory, healthy_url)
    environ = {**os.environ, "VELLUM_LOCKFILE_DIR": str(directory)}
    environ.pop("DOCKER_HOST", None)
    config = Config(
        terminal_shell=f"{shlex.quote(sys.executable)} {shlex.quote(str(DEMO_AGENT))}",
        tmux_refresh_seconds=3600,
        # An engine that is down, so the scene is the same with or without Docker here.
        docker_engines=(EngineConfig("lab", host="unix:///nonexistent/lab.sock"),),
    )
    context = dataclasses.replace(
        Context.load(environ, config=config),
        tmux=server,
        hostname="workstation",
        clock=lambda: frozen,
    )
    return create_app(context)


DEMO_AGENT = Path(__file__).parent / "terminal" / "demo_agent.py"

DEMO_ROWS = 1 + len(SESSIONS) + 6 + 1
"""This machine and its sessions, the lockfile's six entries, the engine that is down."""


def probed(app: App[Any]) -> bool:
    """Every demo assistant has its health: the screen will not change any more."""
    fleet = getattr(app, "fleet", ())
    return sum(1 for a in fleet if a.health) == 4


async def fleet_listed(pilot: Pilot[None]) -> None:
    """The main screen once every demo row is listed and probed."""
    await wait_until(
        pilot,
        lambda: len(table_names(pilot.app)) == DEMO_ROWS and probed(pilot.app),
        "the fleet",
    )


async def fleet_filtered(pilot: Pilot[None]) -> None:
    """The filter narrowed to this machine and the local assistants."""
    await fleet_listed(pilot)
    await pilot.press("slash", *"kind", "colon", *"local")
    local_rows = 1 + len(SESSIONS) + 3  # ada, bob, and the entry with no cloud (local)
    await wait_until(pilot, lambda: len(table_names(pilot.app)) == local_rows, "the filter")


async def help_open(pilot: Pilot[None]) -> None:
    """The help screen over the main screen."""
    await fleet_listed(pilot)
    await pilot.press("question_mark")
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, HelpScreen), "the help")


async def agent_drawn(pilot: Pilot[None], pane: TerminalPane) -> None:
    """The demo agent's whole screen drawn in `pane`."""

    def drawn() -> bool:
        rows = [pane.view.render_line(y).text for y in range(pane.view.size.height)]
        return any("waiting for input" in row for row in rows) and pane.queued == 0

    await wait_until(pilot, drawn, "the agent's screen")


async def terminal_open(pilot: Pilot[None]) -> None:
    """A terminal pane with an agent's screen in it (`t` runs the demo agent)."""
    await fleet_listed(pilot)
    await pilot.press("t")
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, PanesScreen), "the pane")
    screen = pilot.app.screen
    assert isinstance(screen, PanesScreen) and screen.pane is not None
    await agent_drawn(pilot, screen.pane)


async def panes_grid(pilot: Pilot[None]) -> None:
    """Two agents side by side, one driven and one watched, with the pane keys shown."""
    await terminal_open(pilot)
    await pilot.press("ctrl+right_square_bracket", "escape", "t")
    screen = pilot.app.screen
    assert isinstance(screen, PanesScreen)
    await wait_until(pilot, lambda: len(screen.panes) == 2, "the second pane")
    await pilot.press("ctrl+right_square_bracket", "w", "g")
    for pane in screen.panes:
        await wait_until(pilot, lambda pane=pane: pane.view.size.width <= 80, "the grid")  # type: ignore[misc]
        await agent_drawn(pilot, pane)


Scene = Callable[[Pilot[None]], Awaitable[None]]
SCENES: dict[str, Scene] = {
    "main": fleet_listed,
    "filter": fleet_filtered,
    "help": help_open,
    "terminal": terminal_open,
    "panes": panes_grid,
}
"""Each key screen by name: the snapshot tests and screenshots/ draw these same scenes."""
