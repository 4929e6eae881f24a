"""`roost sessions`, `roost exec` and `roost attach`, on this machine and in a Docker assistant,
run as users run them (the installed command in a fresh process; the TUI through the app
factory `roost attach` uses)."""

from __future__ import annotations

import json
from pathlib import Path

import docker
import pytest

from services.context import Context
from services.core.http import http_client
from services.core.mode import Mode
from services.docker.engines import Engine
from services.fleet.model import find_assistant
from services.fleet.sources import FleetSources
from services.roost import AttachRequest
from services.terminal.attach import Attachment, HostPlace
from services.terminal.tmux import TmuxServer
from tests.docker_fixtures import Sandbox
from tests.pilot import SIZE, wait_until
from tests.test_cli import roost
from tests.test_panes import start_session
from tui.app import create_app
from tui.terminal_pane import Connection


def test_sessions_lists_this_machines_tmux_sessions(tmux_server: TmuxServer) -> None:
    start_session(tmux_server, "alpha", "sleep 3600")
    start_session(tmux_server, "beta two", "sleep 3600")

    listed = roost("sessions", "local", "--json")
    table = roost("sessions", "local")

    assert listed.returncode == 0, listed.stderr
    assert [row["name"] for row in json.loads(listed.stdout)] == ["alpha", "beta two"]
    assert table.returncode == 0
    assert table.stdout.splitlines()[0].split() == ["NAME", "WINDOWS", "ATTACHED", "CREATED"]
    assert table.stdout.splitlines()[2].startswith("beta two ")


def test_sessions_without_a_server_is_an_empty_list_and_a_reason() -> None:
    result = roost("sessions", "local", "--json")

    assert result.returncode == 0
    assert json.loads(result.stdout) == []


def test_an_unknown_assistant_lists_the_choices() -> None:
    result = roost("exec", "nobody", "--", "true")

    assert result.returncode == 1
    assert result.stderr.startswith("roost: no assistant 'nobody'; the choices are: ")
    assert "this machine" in result.stderr


def test_exec_here_passes_output_through_and_exits_with_the_status() -> None:
    result = roost("exec", "local", "--", "sh", "-c", "echo out; echo err >&2; exit 7")

    assert result.returncode == 7
    assert result.stdout == "out\n"
    assert result.stderr == "err\n"


def test_exec_stops_a_command_at_its_timeout_with_124_and_keeps_its_output() -> None:
    result = roost("exec", "local", "--timeout", "0.5", "--", "sh", "-c", "echo partial; sleep 30")

    assert result.returncode == 124
    assert result.stdout == "partial\n"
    assert "timed out after 0.5 s" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("exec", "local"), "no command to run"),
        (("exec", "local", "--timeout", "soon", "--", "true"), "not a number of seconds"),
        (("exec", "local", "--timeout", "-1", "--", "true"), "must be more than 0"),
    ],
)
def test_exec_usage_errors_say_what_is_wrong(args: tuple[str, ...], message: str) -> None:
    result = roost(*args)

    assert result.returncode in (1, 2)
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def docker_assistant(home: Path, sandbox: Sandbox, name: str) -> None:
    """A Vellum docker assistant `name` whose assistant container runs (with tmux inside)."""
    entry = {"assistantId": name, "cloud": "docker", "runtimeUrl": "http://127.0.0.1:9"}
    (home / ".vellum.lock.json").write_text(json.dumps({"assistants": [entry]}))
    sandbox.container(f"{name}-assistant").start()


@pytest.mark.docker
def test_exec_and_sessions_in_a_docker_assistant(
    engine: Engine, sandbox: Sandbox, isolated_env: Path, client: docker.DockerClient
) -> None:
    name = sandbox.name()
    docker_assistant(isolated_env, sandbox, name)
    container = client.containers.get(f"{name}-assistant")
    tmux = "LANG=C.UTF-8 TMUX_TMPDIR=/tmp tmux"
    status, _ = container.exec_run(["sh", "-c", f"{tmux} new-session -d -s agent sleep 3600"])
    assert status == 0

    ran = roost("exec", name, "--", "sh", "-c", "echo in-$(hostname); exit 5")
    listed = roost("sessions", name, "--json")

    assert ran.returncode == 5, ran.stderr
    assert ran.stdout == f"in-{container.attrs['Config']['Hostname']}\n"
    assert listed.returncode == 0, listed.stderr
    assert [row["name"] for row in json.loads(listed.stdout)] == ["agent"]


async def test_attach_opens_roost_on_the_session_watching(tmux_server: TmuxServer) -> None:
    start_session(tmux_server, "agent", "echo agent-screen; sleep 3600", "60x20")
    context = Context.load()
    async with http_client() as http:
        _, fleet = await FleetSources(context, http).sweep(health=False)
    request = AttachRequest(find_assistant(fleet, "local"), "agent", Mode.WATCH)
    app = create_app(context, request)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: bool(app.panes_screen.panes), "the pane")
        [pane] = app.panes_screen.panes
        assert app.screen is app.panes_screen and pane.mode is Mode.WATCH
        await wait_until(pilot, lambda: pane.connection is Connection.LIVE, "attached")
        await wait_until(
            pilot, lambda: "agent-screen" in pane.view.render_line(0).text, "its screen"
        )


def test_a_pane_title_shows_names_from_outside_escaped() -> None:
    place = HostPlace(("sh",))
    hostile = Attachment("ada\x1b]0;owned\x07", place, session="work\x1b[2J")
    assert hostile.title == "ada\\e]0;owned\\x07 · tmux work\\e[2J"
    assert Attachment("bob", place, number=2).title == "bob · shell 2"
