"""A managed (Vellum) assistant's terminal in a pane, against the loopback platform with real
PTYs: streams that drop (and replay what they sent) show nothing twice, a tmux pane whose
session the platform forgot comes back whole on a new one, and the status line says what
happens meanwhile; `roost exec` there says how much of a flood of output it dropped."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from services.core.config import Config
from services.core.mode import Mode
from services.terminal.remote import RemoteSession
from services.terminal.remote_commands import MAX_OUTPUT
from tests.peers.terminal import API_KEY, ASSISTANT
from tests.peers.vellum import VellumPeer
from tests.pilot import SIZE, make_app, table_names, wait_until
from tests.test_app_jobs import select
from tests.test_cli import roost
from tui.app import RoostApp
from tui.screens.pick import SessionPicker
from tui.terminal_pane import Connection, TerminalPane


@pytest.fixture
def managed(
    vellum_peer: VellumPeer, isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> VellumPeer:
    """`cora`, a managed assistant in the lockfile and on the platform, which gives it a
    terminal; roost logged in with an API key."""
    monkeypatch.setenv("VELLUM_PLATFORM_URL", vellum_peer.url)
    vellum_peer.platform.api_keys.add(API_KEY)
    vellum_peer.platform.assistants = [{"id": ASSISTANT, "name": "cora", "status": "active"}]
    vellum_peer.terminals.assistants.add(ASSISTANT)
    token = isolated_env / ".config/vellum/platform-token"
    token.parent.mkdir(parents=True)
    token.write_text(API_KEY + "\n")
    token.chmod(0o600)
    entry = {"assistantId": ASSISTANT, "name": "cora", "cloud": "vellum", "runtimeUrl": "x"}
    (isolated_env / ".vellum.lock.json").write_text(json.dumps({"assistants": [entry]}))
    return vellum_peer


def rows(pane: TerminalPane) -> list[str]:
    """Every line the pane holds: its scrollback, then its screen."""
    emulator = pane.emulator
    lines: list[Any] = [*emulator.history, *(emulator.buffer[y] for y in range(emulator.lines))]
    return ["".join(line[x].data for x in range(emulator.columns)).rstrip() for line in lines]


def session_of(pane: TerminalPane) -> str | None:
    assert isinstance(pane.backend, RemoteSession)
    return pane.backend.session_id


def status(pane: TerminalPane) -> str:
    return str(pane.status.render())


async def open_pane(pilot: Any, app: RoostApp) -> TerminalPane:
    await wait_until(pilot, lambda: "cora" in table_names(app), "cora listed")
    select(app, "cora")
    await pilot.press("enter")
    await wait_until(pilot, lambda: bool(app.panes_screen.panes), "the pane", within=15)
    [pane] = app.panes_screen.panes
    await wait_until(pilot, lambda: pane.connection is Connection.LIVE, "connected")
    return pane


async def test_dropped_streams_reconnect_and_show_nothing_twice(managed: VellumPeer) -> None:
    terminals = managed.terminals
    terminals.replay = True  # every re-opened stream sends everything again, from seq 0
    terminals.crlf = terminals.envelope = terminals.noise = True
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_pane(pilot, app)  # no tmux there: a new shell, without asking
        assert pane.attachment.session is None and "vellum session" in status(pane)
        await wait_until(pilot, lambda: any(r.endswith("$") for r in rows(pane)), "a prompt")
        first = session_of(pane)
        count = "i=0; while [ $i -lt 400 ]; do i=$((i+1)); echo n$i; sleep 0.01; done"
        await pilot.press(*count, "enter")
        for seen in ("n50", "n150", "n250"):  # drops while the count runs
            await wait_until(pilot, lambda: seen in rows(pane), seen)  # noqa: B023
            opened = terminals.streams_opened
            terminals.drop_streams()
            # The pane says "reconnecting 1/3" only until the new stream opens: too briefly
            # to catch here every time, so the peer counts the reconnection instead.
            await wait_until(pilot, lambda: terminals.streams_opened > opened, "a new stream")  # noqa: B023
            await wait_until(pilot, lambda: pane.connection is Connection.LIVE, "back")
        await wait_until(pilot, lambda: "n400" in rows(pane), "the whole count")
        counted = [row for row in rows(pane) if re.fullmatch(r"n\d+", row)]
        assert counted == [f"n{n}" for n in range(1, 401)]
        assert session_of(pane) == first  # the same session each time: nothing was lost


def start_remote_tmux(peer: VellumPeer, name: str, command: str) -> None:
    tmux = peer.terminals.tmux
    env = {**os.environ, "LANG": "C.UTF-8", "TMUX_TMPDIR": peer.terminals.tmux_tmpdir}
    subprocess.run(
        tmux.argv("new-session", "-d", "-s", name, "-x", "80", "-y", "20", command),
        check=True,
        env=env,
    )


async def test_a_tmux_pane_comes_back_whole_on_a_new_session(managed: VellumPeer) -> None:
    start_remote_tmux(managed, "agent", "printf 'agent-screen\\n'; exec sleep 3600")
    app = make_app(config=Config(remote_mode=Mode.WATCH))
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: "cora" in table_names(app), "cora listed")
        select(app, "cora")
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, SessionPicker), "the picker")
        await pilot.press("down", "enter")  # past "a new shell", onto "agent"
        await wait_until(pilot, lambda: bool(app.panes_screen.panes), "the pane")
        [pane] = app.panes_screen.panes
        assert pane.attachment.session == "agent" and pane.mode is Mode.WATCH
        await wait_until(pilot, lambda: "agent-screen" in rows(pane), "the agent's screen")
        first = managed.terminals.latest
        assert first.received == b"tmux attach -r -t 'agent'\r"  # the only input watching

        pane.emulator.feed(b"\x1b[2J\x1b[H")  # forget what is shown: it must come back
        forgotten = session_of(pane)
        assert forgotten is not None
        managed.terminals.forget(forgotten)
        managed.terminals.drop_streams()
        await wait_until(pilot, lambda: session_of(pane) not in (None, forgotten), "a new one")
        await wait_until(pilot, lambda: "agent-screen" in rows(pane), "the screen again")
        assert pane.connection is Connection.LIVE
        assert managed.terminals.latest.received == b"tmux attach -r -t 'agent'\r"


async def test_pageup_in_a_tmux_pane_scrolls_through_the_remote_tmuxs_history(
    managed: VellumPeer,
) -> None:
    start_remote_tmux(managed, "long", "seq -f 'line %g' 1 500; exec sleep 3600")
    app = make_app(config=Config(remote_mode=Mode.WATCH))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: "cora" in table_names(app), "cora listed")
        select(app, "cora")
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, SessionPicker), "the picker")
        await pilot.press("down", "enter")
        await wait_until(pilot, lambda: bool(app.panes_screen.panes), "the pane")
        [pane] = app.panes_screen.panes
        await wait_until(pilot, lambda: "line 500" in rows(pane), "the output")
        await pilot.press("ctrl+right_square_bracket", "pageup")
        view = pane.view
        await wait_until(pilot, lambda: view.archive is not None, "tmux's history", within=20)
        top = view.render_line(0).text.split()
        assert top[0] == "line" and int(top[1]) < 500 - view.size.height


def test_exec_in_a_managed_assistant_says_how_much_output_it_dropped(managed: VellumPeer) -> None:
    flood = MAX_OUTPUT + 100_000
    result = roost("exec", "cora", "--", "sh", "-c", f"head -c {flood} /dev/zero | tr '\\0' x")

    assert result.returncode == 0, result.stderr
    kept = len(result.stdout)
    assert 0 < kept <= MAX_OUTPUT and set(result.stdout) == {"x"}
    assert result.stderr == (
        f"roost: the first {flood - kept} bytes of output were dropped; only the last {kept}"
        " were kept\n"
    )
