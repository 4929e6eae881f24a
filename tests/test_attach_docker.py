"""Attaching to a Docker assistant from the main screen, against a real engine: its tmux
sessions to choose from, watching one read-only, a new shell in a tmux session of its own, and
a stopped container or an engine gone away said at once, without a pane."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from services.core.config import Config, EngineConfig
from services.core.mode import Mode
from services.docker.engines import Engine
from tests.docker_fixtures import Sandbox
from tests.pilot import SIZE, make_app, table_names, wait_until
from tests.test_app_jobs import select
from tui.app import RoostApp
from tui.screens.confirm import ConfirmScreen
from tui.screens.pick import SessionPicker
from tui.terminal_pane import Connection

pytestmark = pytest.mark.docker

TMUX = "LANG=C.UTF-8 TMUX_TMPDIR=/tmp tmux"


@pytest.fixture
def engine_link(engine: Engine) -> Iterator[Path]:
    """A second path to the engine's socket, which a test can take away (the engine "goes")."""
    assert engine.host is not None and engine.host.startswith("unix://")
    with tempfile.TemporaryDirectory(prefix="roost-engine-") as directory:
        link = Path(directory) / "docker.sock"
        link.symlink_to(engine.host.removeprefix("unix://"))
        yield link


def take_away(link: Path) -> None:
    link.unlink()


def assistant(home: Path, sandbox: Sandbox, *, running: bool = True) -> str:
    name = sandbox.name()
    entry = {"assistantId": name, "cloud": "docker", "runtimeUrl": "http://127.0.0.1:9"}
    (home / ".vellum.lock.json").write_text(json.dumps({"assistants": [entry]}))
    container = sandbox.container(f"{name}-assistant")
    if running:
        container.start()
    return name


def app_on(link: Path) -> RoostApp:
    engines = (EngineConfig("lab", host=f"unix://{link}"),)
    return make_app(config=Config(docker_engines=engines))


async def open_rows(pilot: object, app: RoostApp, name: str) -> None:
    def seen() -> bool:  # listed, and its container seen on the engine
        return name in table_names(app) and any(
            a.id == name and a.where == "lab" for a in app.fleet
        )

    await wait_until(pilot, seen, f"{name} on engine lab")  # type: ignore[arg-type]
    select(app, name)


async def test_enter_offers_the_containers_sessions_and_attaches_the_one_picked(
    engine_link: Path, sandbox: Sandbox, isolated_env: Path, client: docker.DockerClient
) -> None:
    name = assistant(isolated_env, sandbox)
    container = client.containers.get(f"{name}-assistant")
    script = f"{TMUX} new-session -d -s agent 'echo agent-at-work; sleep 3600'"
    assert container.exec_run(["sh", "-c", script]).exit_code == 0
    app = app_on(engine_link)
    async with app.run_test(size=SIZE) as pilot:
        await open_rows(pilot, app, name)
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, SessionPicker), "the picker")
        await pilot.press("down", "enter")  # past "a new shell", onto "agent"
        await wait_until(pilot, lambda: bool(app.panes_screen.panes), "the pane")
        [pane] = app.panes_screen.panes
        assert pane.attachment.session == "agent" and pane.mode is Mode.DRIVE
        assert "docker exec" in str(pane.status.render())
        await wait_until(
            pilot,
            lambda: any("agent-at-work" in pane.view.render_line(y).text for y in range(5)),
            "the session's screen",
        )


async def test_w_watches_the_only_session_and_nothing_typed_reaches_it(
    engine_link: Path, sandbox: Sandbox, isolated_env: Path, client: docker.DockerClient
) -> None:
    name = assistant(isolated_env, sandbox)
    container = client.containers.get(f"{name}-assistant")
    script = f"{TMUX} new-session -d -s agent 'stty raw -echo; echo ready; cat > /typed'"
    assert container.exec_run(["sh", "-c", script]).exit_code == 0
    app = app_on(engine_link)
    async with app.run_test(size=SIZE) as pilot:
        await open_rows(pilot, app, name)
        await pilot.press("w")
        await wait_until(pilot, lambda: bool(app.panes_screen.panes), "the pane")
        [pane] = app.panes_screen.panes
        assert pane.mode is Mode.WATCH
        await wait_until(
            pilot, lambda: "ready" in pane.view.render_line(0).text, "the session's screen"
        )
        await pilot.press(*"nope", "enter")
        await pilot.press("ctrl+right_square_bracket", "D", "y")
        await wait_until(pilot, lambda: pane.mode is Mode.DRIVE, "driving")
        await wait_until(pilot, lambda: pane.connection is Connection.LIVE, "attached again")
        await pilot.press("Y")

        def typed() -> bytes:
            output = container.exec_run(["cat", "/typed"]).output
            assert isinstance(output, bytes)
            return output

        await wait_until(pilot, lambda: typed() != b"", "the driver's key")
        assert typed() == b"Y"


def notified(app: RoostApp, text: str) -> bool:
    return any(text in notification.message for notification in app._notifications)


async def test_a_stopped_container_is_said_and_opens_no_pane(
    engine_link: Path, sandbox: Sandbox, isolated_env: Path
) -> None:
    name = assistant(isolated_env, sandbox, running=False)
    app = app_on(engine_link)
    async with app.run_test(size=SIZE) as pilot:
        await open_rows(pilot, app, name)
        await pilot.press("enter")
        await wait_until(pilot, lambda: notified(app, "is not running"), "the reason")
        assert notified(app, "wake it first")
        assert app.screen is app.main_screen and not app.panes_screen.panes
        assert name in table_names(app)


async def test_an_engine_gone_away_is_said_and_opens_no_pane(
    engine_link: Path, sandbox: Sandbox, isolated_env: Path
) -> None:
    name = assistant(isolated_env, sandbox)
    app = app_on(engine_link)
    async with app.run_test(size=SIZE) as pilot:
        await open_rows(pilot, app, name)
        take_away(engine_link)
        app.fleet_refresh.pollers[
            "docker"
        ].wake()  # the fleet learns the engine is gone: where it was is lost

        def rescanned() -> bool:
            return any(a.id == name and a.where == "" for a in app.fleet)

        await wait_until(pilot, rescanned, "the engine seen gone")
        await pilot.press("enter")
        await wait_until(pilot, lambda: notified(app, "no engine socket there"), "the reason")
        assert app.screen is app.main_screen and not app.panes_screen.panes


async def test_a_new_shell_runs_in_a_tmux_session_of_its_own_which_ends_with_it(
    engine_link: Path, sandbox: Sandbox, isolated_env: Path, client: docker.DockerClient
) -> None:
    """Its tmux session is named on the status line, pageup scrolls through its history, and
    closing the pane ends it (a hang-up alone would only detach from it)."""
    name = assistant(isolated_env, sandbox)
    container = client.containers.get(f"{name}-assistant")
    app = app_on(engine_link)

    def sessions() -> str:
        result = container.exec_run(["sh", "-c", f"{TMUX} list-sessions -F '#{{session_name}}'"])
        assert isinstance(result.output, bytes)
        return result.output.decode()

    async with app.run_test(size=(100, 30)) as pilot:
        await open_rows(pilot, app, name)
        await pilot.press("enter")  # no tmux session there: a new shell at once
        await wait_until(pilot, lambda: bool(app.panes_screen.panes), "the pane")
        [pane] = app.panes_screen.panes
        shell = pane.attachment.shell_session
        assert shell is not None and pane.session_title == f"{name} · shell 1"
        await wait_until(pilot, lambda: pane.connection is Connection.LIVE, "the shell")
        assert f"in tmux session {shell}" in str(pane.status.render())
        await wait_until(pilot, lambda: shell in sessions(), "its tmux session")
        await pilot.press(*"seq 1 300", "enter")
        await wait_until(
            pilot,
            lambda: any(pane.view.render_line(y).text.startswith("300") for y in range(30)),
            "the output",
        )
        await pilot.press("ctrl+right_square_bracket", "pageup")
        await wait_until(pilot, lambda: pane.view.archive is not None, "tmux's history")
        top = pane.view.render_line(0).text
        assert top.split()[0].isdigit() and int(top.split()[0]) < 300 - 25

        await pilot.press("x")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the question")
        await pilot.press("y")
        await wait_until(pilot, lambda: not app.panes_screen.panes, "closed")
        await wait_until(pilot, lambda: shell not in sessions(), "its session ended")


async def test_a_watch_keeps_the_containers_window_size_and_r_revives_an_ended_session(
    engine_link: Path, sandbox: Sandbox, isolated_env: Path, client: docker.DockerClient
) -> None:
    name = assistant(isolated_env, sandbox)
    container = client.containers.get(f"{name}-assistant")
    script = f"{TMUX} new-session -d -s agent -x 100 -y 30 'sleep 3600'"
    assert container.exec_run(["sh", "-c", script]).exit_code == 0

    def tmux(command: str) -> str:
        result = container.exec_run(["sh", "-c", f"{TMUX} {command}"])
        assert isinstance(result.output, bytes)
        return result.output.decode().strip()

    def size() -> str:
        return tmux("display -p -t =agent: '#{window_width}x#{window_height}'")

    app = app_on(engine_link)
    async with app.run_test(size=(90, 24)) as pilot:
        await open_rows(pilot, app, name)
        await pilot.press("w")
        await wait_until(pilot, lambda: bool(app.panes_screen.panes), "the pane")
        [pane] = app.panes_screen.panes
        await wait_until(pilot, lambda: pane.connection is Connection.LIVE, "watching")
        await wait_until(pilot, lambda: tmux("list-clients") != "", "the watcher attached")
        assert size() == "100x30" and "manual" in tmux("show -w -t =agent: window-size")
        await pilot.press("ctrl+right_square_bracket", "D", "y")  # driving: the pin goes
        await wait_until(pilot, lambda: pane.mode is Mode.DRIVE, "driving")
        await wait_until(pilot, lambda: "window-size" not in tmux("show -w -t =agent:"), "unpinned")

        tmux("kill-session -t =agent")
        await wait_until(pilot, lambda: pane.connection.over, "the end")
        await pilot.press("ctrl+right_square_bracket", "r")
        await wait_until(pilot, lambda: pane.connection is Connection.LIVE, "started again")
        await wait_until(pilot, lambda: tmux("list-sessions -F '#{session_name}'") == "agent", "it")
