"""The tmux service against real, private tmux servers."""

from __future__ import annotations

import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from services.context import Context
from services.core.config import Config
from services.fleet.model import session_status
from services.terminal.tmux import TmuxServer, TmuxSocket, TmuxState, parse_version
from tests.conftest import new_session


def test_lists_every_session_with_its_windows_and_times(tmux_server: TmuxServer) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    new_session(tmux_server, "agent one", windows=3)
    new_session(tmux_server, "研究-✓")

    listing = tmux_server.list_sessions()

    assert listing.state is TmuxState.RUNNING
    assert [(s.name, s.windows, s.attached) for s in listing.sessions] == [
        ("agent one", 3, 0),
        ("研究-✓", 1, 0),
    ]
    for session in listing.sessions:
        assert session.id.startswith("$")
        assert before <= session.created <= datetime.now(UTC) + timedelta(seconds=1)
        assert session.activity >= session.created


def test_a_socket_without_a_server_says_so(tmux_server: TmuxServer) -> None:
    listing = tmux_server.list_sessions()

    assert listing.state is TmuxState.NO_SERVER
    assert listing.sessions == ()
    assert str(tmux_server.socket) in listing.detail


def test_a_missing_tmux_binary_is_a_state_not_an_exception() -> None:
    server = TmuxServer(TmuxSocket("whatever"), executable="roost-no-such-tmux")

    listing = server.list_sessions()

    assert listing.state is TmuxState.NOT_INSTALLED
    assert "roost-no-such-tmux" in listing.detail
    assert server.version() is None


def test_version_is_read_from_tmux(tmux_server: TmuxServer) -> None:
    version = tmux_server.version()

    assert version is not None and version.startswith("tmux ")
    assert parse_version(version) is not None


def test_parse_version_handles_release_suffixes_and_dev_builds() -> None:
    assert parse_version("tmux 3.3a") == (3, 3)
    assert parse_version("tmux 3.10") == (3, 10)
    assert parse_version("tmux next-3.6") == (3, 6)
    assert parse_version("tmux master") is None


def test_socket_names_and_paths_map_to_the_right_flag() -> None:
    assert TmuxSocket("work").args == ("-L", "work")
    assert TmuxSocket("/run/x/sock").args == ("-S", "/run/x/sock")
    assert TmuxServer().argv("ls") == ["tmux", "ls"]
    assert TmuxServer(TmuxSocket("work")).argv("ls") == ["tmux", "-L", "work", "ls"]


def test_inside_tmux_roost_lists_and_attaches_on_the_server_it_runs_in(
    tmux_server: TmuxServer, tmp_path: Path
) -> None:
    assert tmux_server.socket is not None
    new_session(tmux_server, "inside")
    enclosing = {"HOME": str(tmp_path), "TMUX": f"{tmux_server.socket.value},4242,0"}

    context = Context.load(enclosing, config=Config())

    # Named, so an attach (which runs without $TMUX, to nest) reaches the same server.
    assert context.tmux.socket == tmux_server.socket
    assert [s.name for s in context.tmux.list_sessions().sessions] == ["inside"]
    configured = Context.load({**enclosing, "ROOST_TMUX_SOCKET": "work"}, config=Config())
    assert configured.tmux.socket == TmuxSocket("work")
    assert Context.load({"HOME": str(tmp_path)}, config=Config()).tmux.socket is None


def test_panes_whose_command_ended_are_counted_as_dead(tmux_server: TmuxServer) -> None:
    new_session(tmux_server, "alive", windows=2)
    subprocess.run(tmux_server.argv("set-option", "-g", "remain-on-exit", "on"), check=True)
    subprocess.run(tmux_server.argv("new-session", "-d", "-s", "ended", "true"), check=True)
    deadline = time.monotonic() + 10
    while True:
        sessions = {s.name: s for s in tmux_server.list_sessions().sessions}
        if sessions.get("ended") and sessions["ended"].dead_panes == 1:
            break
        assert time.monotonic() < deadline, sessions
        time.sleep(0.05)  # waiting for the `true` command to exit, with a deadline

    assert (sessions["alive"].panes, sessions["alive"].dead_panes) == (2, 0)
    assert (sessions["ended"].panes, sessions["ended"].dead_panes) == (1, 1)
    assert session_status(sessions["ended"]) == "exited"
    assert session_status(sessions["alive"]) == "detached"
