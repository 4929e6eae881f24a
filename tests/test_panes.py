"""Attaching from the main screen to tmux sessions on a private server: watching types nothing
and never resizes the driver's window, driving after a confirmation, tabs and the 2x2 grid,
detaching, a session that does not exist, and recording."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from textual import events

from services.core.config import Config
from services.core.mode import Mode
from services.fleet.model import HOST_KEY
from services.terminal.tmux import TmuxServer, TmuxSocket
from tests.pilot import SIZE, make_app, wait_until
from tui.app import RoostApp
from tui.screens.confirm import ConfirmScreen
from tui.screens.panes import MARKER_WIDTH, PanesScreen, tab_window
from tui.terminal_pane import Connection, TerminalPane
from widgets.keyed_table import KeyedTable
from widgets.terminal_view import TerminalView

LEAVE = "ctrl+right_square_bracket"


def start_session(server: TmuxServer, name: str, command: str, size: str = "100x30") -> None:
    columns, rows = size.split("x")
    env = {**os.environ, "LANG": "C.UTF-8"}
    subprocess.run(
        server.argv("new-session", "-d", "-s", name, "-x", columns, "-y", rows, command),
        check=True,
        env=env,
    )


def window_size(server: TmuxServer, name: str) -> str:
    result = subprocess.run(
        server.argv("display-message", "-p", "-t", f"={name}:", "#{window_width}x#{window_height}"),
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


async def select_session(pilot: object, app: RoostApp, name: str) -> None:
    table = app.main_screen.query_one("#assistants", KeyedTable)

    def listed() -> bool:
        return any(row.cells[0].plain.endswith(name) for row in table.rows_shown)

    await wait_until(pilot, listed, f"session {name} listed")  # type: ignore[arg-type]
    index = next(i for i, row in enumerate(table.rows_shown) if row.cells[0].plain.endswith(name))
    table.move_cursor(index)
    assert table.selected_key is not None and table.selected_key.startswith(f"{HOST_KEY}/")


@contextlib.contextmanager
def driver(server: TmuxServer, name: str, tmp_path: Path) -> Iterator[None]:
    """Someone driving session `name`: a tmux client in a 100x30 terminal (a pane of another
    private server), attached until the block ends."""
    outer = TmuxServer(TmuxSocket(str(tmp_path / "outer")))
    attach = shlex.join(server.argv("attach-session", "-t", f"={name}"))
    env = {**os.environ, "LANG": "C.UTF-8"}
    subprocess.run(
        outer.argv("new-session", "-d", "-x", "100", "-y", "30", attach), check=True, env=env
    )
    try:
        deadline = time.monotonic() + 10
        while clients(server) != 1:
            assert time.monotonic() < deadline, "the driver never attached"
            time.sleep(0.02)
        yield
    finally:
        subprocess.run(outer.argv("kill-server"), capture_output=True, check=False)


def clients(server: TmuxServer) -> int:
    result = subprocess.run(server.argv("list-clients"), capture_output=True, text=True)
    return len(result.stdout.splitlines())


def kill_session(server: TmuxServer, name: str) -> None:
    subprocess.run(server.argv("kill-session", "-t", f"={name}"), check=True)


def received(path: Path) -> bytes:
    """What the session's `cat` wrote: every key that reached it."""
    return path.read_bytes()


def live(pane: TerminalPane) -> bool:
    return pane.connection is Connection.LIVE


async def attach_then_end(
    pilot: Any, app: RoostApp, tmux_server: TmuxServer, name: str
) -> TerminalPane:
    """Attach to tmux session `name` (driving), then end the session: the pane's is over."""
    await select_session(pilot, app, name)
    await pilot.press("enter")
    await wait_until(pilot, lambda: bool(app.panes_screen.panes), "the pane")
    [pane] = app.panes_screen.panes
    await wait_until(pilot, lambda: live(pane), "attached")
    kill_session(tmux_server, name)
    await wait_until(pilot, lambda: pane.connection.over, "the end")
    return pane


async def test_a_watcher_sends_nothing_and_never_resizes_the_drivers_window(
    tmux_server: TmuxServer, tmp_path: Path
) -> None:
    typed = tmp_path / "typed"
    start_session(tmux_server, "agent", f"stty raw -echo; echo ready; cat > {typed}")
    app = make_app()
    with driver(tmux_server, "agent", tmp_path):
        drivers_size = window_size(tmux_server, "agent")
        assert drivers_size.startswith("100x")
        await watch_then_drive(app, tmux_server, typed, drivers_size)


async def watch_then_drive(
    app: RoostApp, tmux_server: TmuxServer, typed: Path, drivers_size: str
) -> None:
    async with app.run_test(size=(90, 24)) as pilot:
        await select_session(pilot, app, "agent")
        await pilot.press("w")
        await wait_until(pilot, lambda: bool(app.panes_screen.panes), "the pane")
        [pane] = app.panes_screen.panes
        assert pane.mode is Mode.WATCH and "WATCHING" in str(pane.badge.render())
        await wait_until(pilot, lambda: live(pane), "attached")
        await wait_until(
            pilot, lambda: "ready" in pane.view.render_line(0).text, "the session's screen"
        )
        assert isinstance(app.focused, TerminalView)
        await pilot.press(*"secret", "enter", "ctrl+c")
        assert received(typed) == b""
        assert window_size(tmux_server, "agent") == drivers_size  # not the pane's 90 columns

        await pilot.press(LEAVE, "D")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the question")
        await pilot.press("y")
        await wait_until(pilot, lambda: pane.mode is Mode.DRIVE and live(pane), "driving")
        assert "DRIVING" in str(pane.badge.render())
        await pilot.press("X")
        await wait_until(pilot, lambda: received(typed) != b"", "the driver's key")
        assert received(typed) == b"X"  # the keys typed while watching never arrived


async def test_enter_drives_a_local_session_and_detach_leaves_it_running(
    tmux_server: TmuxServer, tmp_path: Path
) -> None:
    typed = tmp_path / "typed"
    start_session(tmux_server, "work", f"stty raw -echo; cat > {typed}")
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await select_session(pilot, app, "work")
        await pilot.press("enter")
        await wait_until(pilot, lambda: bool(app.panes_screen.panes), "the pane")
        [pane] = app.panes_screen.panes
        assert pane.mode is Mode.DRIVE
        await wait_until(pilot, lambda: live(pane), "attached")
        await pilot.press(*"hi")
        await wait_until(pilot, lambda: received(typed) == b"hi", "the keys")
        await pilot.press(LEAVE, "d")
        await wait_until(pilot, lambda: not app.panes_screen.panes, "the pane closed")
        assert not isinstance(app.screen, PanesScreen)
        assert tmux_server.list_sessions().sessions[0].name == "work"  # still running


async def test_the_configured_mode_applies_to_enter(tmux_server: TmuxServer) -> None:
    start_session(tmux_server, "agent", "sleep 3600")
    app = make_app(config=Config(local_mode=Mode.WATCH))
    async with app.run_test(size=SIZE) as pilot:
        await select_session(pilot, app, "agent")
        await pilot.press("enter")
        await wait_until(pilot, lambda: bool(app.panes_screen.panes), "the pane")
        assert app.panes_screen.panes[0].mode is Mode.WATCH


async def test_a_session_that_is_gone_is_a_message_in_the_pane(tmux_server: TmuxServer) -> None:
    start_session(tmux_server, "brief", "sleep 3600")
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await select_session(pilot, app, "brief")
        kill_session(tmux_server, "brief")
        await pilot.press("enter")
        await wait_until(pilot, lambda: bool(app.panes_screen.panes), "the pane")
        [pane] = app.panes_screen.panes
        await wait_until(pilot, lambda: pane.connection is Connection.FAILED, "the failure")
        assert "no tmux session 'brief'" in str(pane.status.render())
        await pilot.press(LEAVE, "escape")
        await wait_until(pilot, lambda: app.screen is app.main_screen, "the main screen")
        assert app.main_screen.query_one("#assistants", KeyedTable).rows_shown


async def test_tabs_and_a_two_by_two_grid(tmux_server: TmuxServer, tmp_path: Path) -> None:
    for number in range(5):
        start_session(tmux_server, f"s{number}", f"echo pane-{number}; sleep 3600", "60x20")
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        for number in range(5):
            await select_session(pilot, app, f"s{number}")
            await pilot.press("w")
            await wait_until(pilot, lambda: len(app.panes_screen.panes) == number + 1, "pane")  # noqa: B023
            await pilot.press(LEAVE, "escape")
        panes = app.panes_screen.panes
        await pilot.press("v")
        await wait_until(pilot, lambda: app.screen is app.panes_screen, "the panes")
        assert [pane.display for pane in panes] == [False, False, False, False, True]

        await pilot.press(LEAVE, "1", "g")  # the first group of four, as a grid
        await wait_until(pilot, lambda: all(p.view.size.width > 0 for p in panes[:4]), "grid")
        assert [pane.display for pane in panes] == [True, True, True, True, False]
        assert {pane.view.size.width for pane in panes[:4]} == {59, 60}  # 120 = 59 + 1 + 60
        assert all(pane.view.size.height < (40 - 2) // 2 for pane in panes[:4])  # two rows
        await wait_until(pilot, lambda: all(map(live, panes[:4])), "attached")

        screen = app.panes_screen
        await pilot.press("right")
        assert screen.current == 1
        await pilot.press("down")
        assert screen.current == 3
        await pilot.press("left", "up")
        assert screen.current == 0
        await pilot.press("tab", "tab", "tab", "tab")
        assert screen.current == 4 and [p.display for p in panes][4]

        await pilot.press("x")  # a tmux pane closes at once: the session keeps running
        await wait_until(pilot, lambda: len(screen.panes) == 4, "the pane closed")
        assert len(tmux_server.list_sessions().sessions) == 5


async def test_every_attached_pane_is_recorded_as_asciicast(
    tmux_server: TmuxServer, isolated_env: Path
) -> None:
    start_session(tmux_server, "rec", "echo recorded-line; sleep 3600", "60x20")
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await select_session(pilot, app, "rec")
        await pilot.press("w")
        await wait_until(pilot, lambda: bool(app.panes_screen.panes), "the pane")
        [pane] = app.panes_screen.panes
        await wait_until(
            pilot, lambda: "recorded-line" in pane.view.render_line(0).text, "the output"
        )
        await pilot.press(LEAVE, "x")
        await wait_until(pilot, lambda: not app.panes_screen.panes, "closed")
    [cast] = app.context.paths.recordings_dir.glob("*.cast")
    header, *events = cast.read_text().splitlines()
    assert json.loads(header)["version"] == 2
    output = "".join(event[2] for event in map(json.loads, events) if event[1] == "o")
    assert "recorded-line" in output


async def test_r_starts_an_ended_session_again(tmux_server: TmuxServer) -> None:
    start_session(tmux_server, "flaky", "echo first-life; sleep 3600", "60x20")
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        pane = await attach_then_end(pilot, app, tmux_server, "flaky")
        assert "exited with code" in str(pane.status.render())
        start_session(tmux_server, "flaky", "echo second-life; sleep 3600", "60x20")
        await pilot.press(LEAVE, "r")
        await wait_until(pilot, lambda: live(pane), "attached again")
        await wait_until(
            pilot, lambda: "second-life" in pane.view.render_line(0).text, "the new screen"
        )


def pane_tabs(app: RoostApp) -> str:
    return str(app.panes_screen.query_one("#pane-tabs").render())


def window_option(server: TmuxServer, name: str) -> str:
    """The window-size option set on session `name`'s window itself (empty: inherited)."""
    result = subprocess.run(
        server.argv("show-options", "-w", "-t", f"={name}:"), capture_output=True, text=True
    )
    return result.stdout.strip()


def client_pids(server: TmuxServer) -> list[int]:
    result = subprocess.run(
        server.argv("list-clients", "-F", "#{client_pid}"), capture_output=True, text=True
    )
    return [int(pid) for pid in result.stdout.split()]


SIZE_RECORDER = (
    "import os, signal, sys, time\n"
    "out = open(sys.argv[1], 'a', buffering=1)\n"
    "show = lambda *_: out.write('%dx%d\\n' % os.get_terminal_size())\n"
    "signal.signal(signal.SIGWINCH, show)\n"
    "show()\n"
    "while True: time.sleep(1)\n"
)


async def test_a_watch_with_no_driver_keeps_the_agents_size_and_unpins_after(
    tmux_server: TmuxServer, tmp_path: Path
) -> None:
    """Nobody else attached: the watcher alone must not resize the window (the agent would get
    SIGWINCH); the window is left to follow its clients again once the watch ends, also when
    the watching client is killed, as it is when roost is."""
    sizes = tmp_path / "sizes"
    script = tmp_path / "recorder.py"
    script.write_text(SIZE_RECORDER)
    start_session(tmux_server, "agent", f"{shlex.quote(sys.executable)} {script} {sizes}")
    app = make_app()
    async with app.run_test(size=(90, 24)) as pilot:
        await wait_until(pilot, lambda: sizes.exists() and sizes.read_text() != "", "the agent")
        assert sizes.read_text() == "100x30\n"
        for ending in ("close", "kill"):
            await select_session(pilot, app, "agent")
            await pilot.press("w")
            await wait_until(pilot, lambda: bool(app.panes_screen.panes), "the pane")
            [pane] = app.panes_screen.panes

            def watching(pane: TerminalPane = pane) -> bool:
                return live(pane) and clients(tmux_server) == 1 and pane.view.size.width == 90

            await wait_until(pilot, watching, "watching from a pane 90 columns wide")
            assert window_size(tmux_server, "agent") == "100x30"
            assert "window-size manual" in window_option(tmux_server, "agent")
            if ending == "close":
                await pilot.press(LEAVE, "x")
            else:
                [pid] = client_pids(tmux_server)
                os.kill(pid, signal.SIGKILL)
            await wait_until(pilot, lambda: clients(tmux_server) == 0, "the watch over")
            await wait_until(
                pilot, lambda: "window-size" not in window_option(tmux_server, "agent"), "unpinned"
            )
            if app.panes_screen.panes:
                await pilot.press(LEAVE, "x")
            await wait_until(pilot, lambda: not app.panes_screen.panes, "closed")
        assert sizes.read_text() == "100x30\n"  # never a SIGWINCH


async def test_r_starts_a_session_that_ended_even_when_nothing_made_it_again(
    tmux_server: TmuxServer,
) -> None:
    start_session(tmux_server, "gone", "sleep 3600", "60x20")
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        pane = await attach_then_end(pilot, app, tmux_server, "gone")
        await pilot.press(LEAVE, "r")
        await wait_until(pilot, lambda: live(pane), "attached again")
        assert [s.name for s in tmux_server.list_sessions().sessions] == ["gone"]


async def test_quitting_with_running_panes_says_what_ends_and_asks(
    tmux_server: TmuxServer,
) -> None:
    start_session(tmux_server, "keep", "sleep 3600", "60x20")
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await select_session(pilot, app, "keep")
        await pilot.press("enter")
        await wait_until(pilot, lambda: len(app.panes_screen.panes) == 1, "the tmux pane")
        await pilot.press(LEAVE, "escape", "t")
        await wait_until(pilot, lambda: len(app.panes_screen.panes) == 2, "the shell")
        await wait_until(pilot, lambda: all(map(live, app.panes_screen.panes)), "both live")
        await pilot.press(LEAVE, "escape", "q")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the question")
        assert isinstance(app.screen, ConfirmScreen)
        assert app.screen.question == (
            "2 panes are open: 1 new shell ends, 1 tmux session keeps running (detached). "
            "Quit roost?"
        )
        await pilot.press("n")
        await wait_until(pilot, lambda: app.screen is app.main_screen, "still there")
        assert all(map(live, app.panes_screen.panes))
        await pilot.press("q", "y")
        await wait_until(pilot, lambda: app.return_code is not None, "quit")
    assert [s.name for s in tmux_server.list_sessions().sessions] == ["keep"]


async def test_panes_are_told_apart_and_the_grid_says_its_page(tmux_server: TmuxServer) -> None:
    start_session(tmux_server, "shell", "sleep 3600", "60x20")
    app = make_app(config=Config(keys={"terminal.leave": "f12"}))
    async with app.run_test(size=(120, 40)) as pilot:
        await select_session(pilot, app, "shell")
        await pilot.press("w")
        await wait_until(pilot, lambda: len(app.panes_screen.panes) == 1, "the tmux pane")
        for count in range(2, 6):
            await pilot.press("f12", "escape", "t")
            await wait_until(pilot, lambda: len(app.panes_screen.panes) == count, "a shell")  # noqa: B023
        titles = [pane.session_title for pane in app.panes_screen.panes]
        assert titles == [
            "this machine · tmux shell",
            *(f"this machine · shell {number}" for number in range(1, 5)),
        ]
        assert "f12 then ? for the pane keys" in pane_tabs(app)  # the remapped leave key
        await pilot.press("f12", "g")
        await wait_until(pilot, lambda: "grid, page 2/2" in pane_tabs(app), "the page")
        await pilot.press("1")
        await wait_until(pilot, lambda: "grid, page 1/2" in pane_tabs(app), "the first page")


async def test_at_80_columns_the_tab_bar_keeps_the_active_tab_in_view() -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        for count in range(1, 7):
            await pilot.press(*((LEAVE, "escape") if count > 1 else ()), "t")
            await wait_until(pilot, lambda: len(app.panes_screen.panes) == count, "a shell")  # noqa: B023
        await wait_until(pilot, lambda: "6 this machine · shell 6" in pane_tabs(app), "the last")
        assert pane_tabs(app).startswith(" ◂")  # the first tabs are counted, not shown
        await pilot.press(LEAVE, "1")
        await wait_until(pilot, lambda: "1 this machine · shell 1" in pane_tabs(app), "the first")
        assert "▸ " in pane_tabs(app)


def test_the_tab_window_always_holds_the_active_tab_and_fits() -> None:
    widths = [22, 9, 30, 14, 22, 22, 5]
    for room in range(0, 140, 7):
        for active in range(len(widths)):
            window = tab_window(widths, active, room)
            assert active in window
            if len(window) < len(widths):
                assert sum(widths[i] for i in window) <= max(
                    room - 2 * MARKER_WIDTH, widths[active]
                )
    assert tab_window(widths, 3, sum(widths)) == range(len(widths))


def rows_of(view: TerminalView) -> list[str]:
    return [view.render_line(y).text.rstrip() for y in range(view.size.height)]


async def test_pageup_and_the_wheel_scroll_through_tmuxs_history_in_colour(
    tmux_server: TmuxServer,
) -> None:
    """A tmux client's screen has no history of its own: the pane reads tmux's."""
    printer = "for i in $(seq 1 3000); do printf '\\033[31mline %d\\033[0m\\n' $i; done; sleep 3600"
    start_session(tmux_server, "long", printer, "80x20")
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await select_session(pilot, app, "long")
        await pilot.press("w")  # watching: the window keeps 80x20, the pane shows it all
        await wait_until(pilot, lambda: bool(app.panes_screen.panes), "the pane")
        [pane] = app.panes_screen.panes
        view = pane.view
        await wait_until(pilot, lambda: any("line 3000" in r for r in rows_of(view)), "output")
        assert not pane.emulator.history  # tmux's client draws on the alternate screen

        await pilot.press(LEAVE, "pageup")
        await wait_until(pilot, lambda: view.archive is not None, "tmux's history")
        page = view.size.height - 1
        assert view.scrolled_back == page and view.archive is not None
        rows = rows_of(view)
        # tmux keeps 2,000 lines above its 20-line screen: lines 981..3000, then blank rows
        # below (left out), so the view's bottom row was "line 3000" before the page back.
        assert rows[0].startswith(f"line {3000 - page - view.size.height + 1}")
        assert rows[0].endswith(f"↑ {page}/{len(view.archive.history)}")
        red = [s.style for s in view.render_line(1) if s.text.startswith("line")]
        assert red and red[0] is not None and red[0].color is not None
        assert red[0].color.number == 1  # the program's colour survived

        await pilot.press("pageup", "pagedown", "pagedown")
        await wait_until(pilot, lambda: view.archive is None, "live again")
        assert view.scrolled_back == 0

        await pilot.press("enter")  # into the pane: the wheel asks for tmux's history too
        view.post_message(events.MouseScrollUp(view, 5, 5, 0, 0, 0, False, False, False))
        await wait_until(pilot, lambda: view.archive is not None, "history by the wheel")
        assert view.scrolled_back == 3
        await pilot.press("x")  # a key (not sent: watching) returns to the live screen
        await wait_until(pilot, lambda: view.archive is None, "live after a key")

        kill_session(tmux_server, "long")
        await wait_until(pilot, lambda: pane.connection.over, "the end")
        await pilot.press(LEAVE, "pageup")
        await wait_until(pilot, lambda: "no scrollback:" in pane.note, "why not")
        assert "no scrollback: cannot read tmux's history of 'long'" in str(pane.status.render())
