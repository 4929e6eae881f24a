"""The pane key `S` (after ctrl+]): a pane's session shared read-only from the console, what a
viewer sees (the screen at once, then what the pane shows, through a reconnect), the events
panel, and the ways a share stops (the key again, `roost share --stop`, closing the pane)."""

from __future__ import annotations

import asyncio
import subprocess

import httpx
from textual.widgets import RichLog

from services.share import alis
from services.share.shares import stop_all
from services.terminal.emulator import Emulator
from services.terminal.tmux import TmuxServer
from tests.peers.browser import receive, ws_connect
from tests.pilot import SIZE, make_app, wait_until
from tests.test_panes import LEAVE, live, select_session, start_session
from tests.test_share_server import _output, _reset
from tui.app import RoostApp
from tui.terminal_pane import TerminalPane


def _say(server: TmuxServer, line: str) -> None:
    subprocess.run(server.argv("send-keys", "-t", "=work:", line, "Enter"), check=True)


def _events(app: RoostApp) -> str:
    return "\n".join(line.text for line in app.main_screen.query_one("#events", RichLog).lines)


async def _viewer(url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, Emulator]:
    reader, writer, _ = await ws_connect(
        url.replace("http://", "ws://") + "ws", protocols=("v1.alis",)
    )
    assert (await receive(reader)).payload == alis.MAGIC
    columns, rows, init = _reset((await receive(reader)).payload)
    screen = Emulator(columns, rows)
    screen.feed(init)
    return reader, writer, screen


async def _until_shown(reader: asyncio.StreamReader, screen: Emulator, text: str) -> None:
    async with asyncio.timeout(10):
        while not any(text in row for row in screen.display):
            frame = (await receive(reader)).payload
            if frame[:1] == b"o":
                screen.feed(_output(frame))


async def test_a_pane_is_shared_as_it_shows_through_a_reconnect_and_stops_with_the_key(
    tmux_server: TmuxServer,
) -> None:
    start_session(tmux_server, "work", "env PS1='$ ' bash --norc --noprofile")
    _say(tmux_server, "echo pane-$((40+2))")
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await select_session(pilot, app, "work")
        await pilot.press("w")
        await wait_until(pilot, lambda: bool(app.panes_screen.panes), "the pane")
        [pane] = app.panes_screen.panes
        await wait_until(pilot, lambda: live(pane) and _shows(pane, "pane-42"), "the screen")

        await pilot.press(LEAVE, "S")
        await wait_until(pilot, lambda: app.sharing.of(pane) is not None, "the share")
        share = app.sharing.of(pane)
        assert share is not None
        url = share.url
        reader, writer, screen = await _viewer(url)
        assert any("pane-42" in row for row in screen.display)  # the screen when it joined

        pane.start()  # a reconnect: the share goes on showing what the pane shows
        await wait_until(pilot, lambda: live(pane), "attached again")
        _say(tmux_server, "echo after-$((2+2))")
        await _until_shown(reader, screen, "after-4")

        await pilot.press("S")
        await wait_until(pilot, lambda: app.sharing.of(pane) is None, "the share stopped")
        async with asyncio.timeout(10):
            while (await receive(reader)).payload != alis.EOT:
                pass  # what the pane showed before the stop, then the end
        writer.close()
        async with httpx.AsyncClient(timeout=5) as client:
            try:
                answer = await client.get(url)
            except httpx.ConnectError:
                pass
            else:
                raise AssertionError(f"the stopped share answered {answer.status_code}")

        await pilot.press("escape", "e")
        await wait_until(pilot, lambda: "no longer shared" in _events(app), "the events")
        events = _events(app)
        assert "a viewer joined from 127.0.0.1 (1 watching)" in events
        assert url.split("/")[3] not in events


async def test_roost_share_stop_and_closing_the_pane_end_its_share(tmux_server: TmuxServer) -> None:
    start_session(tmux_server, "work", "sleep 3600")
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await select_session(pilot, app, "work")
        await pilot.press("w")
        await wait_until(pilot, lambda: bool(app.panes_screen.panes), "the pane")
        [pane] = app.panes_screen.panes
        await wait_until(pilot, lambda: live(pane), "attached")

        await pilot.press(LEAVE, "S")
        await wait_until(pilot, lambda: app.sharing.of(pane) is not None, "the share")
        assert [record.what for record in stop_all()] == [pane.session_title]
        await wait_until(pilot, lambda: app.sharing.of(pane) is None, "--stop")
        assert app.is_running  # the console goes on

        await pilot.press("S")
        await wait_until(pilot, lambda: app.sharing.of(pane) is not None, "shared again")
        await pilot.press("d")
        await wait_until(pilot, lambda: app.sharing.of(pane) is None, "closing stops it")
        assert stop_all() == []


def _shows(pane: TerminalPane, text: str) -> bool:
    return any(text in pane.view.render_line(row).text for row in range(pane.view.size.height))
