"""`roost share` end to end: a shell in a private tmux server, the real command, and the page
in a real headless chromium (skipped without chromium unless ROOST_REQUIRE_CHROMIUM=1)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest

from services.share.server import FORBIDDEN
from services.terminal.tmux import TmuxServer
from tests.peers.browser import Browser, chromium

ROOST = str(Path(sys.executable).parent / "roost")


def _pane(server: TmuxServer) -> str:
    result = subprocess.run(
        server.argv("capture-pane", "-p", "-t", "=work:"),
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


def _type(server: TmuxServer, line: str) -> None:
    subprocess.run(server.argv("send-keys", "-t", "=work:", line, "Enter"), check=True)


async def _until(condition: Callable[[], bool], within: float = 15) -> None:
    async with asyncio.timeout(within):
        while True:
            if await asyncio.to_thread(condition):
                return
            await asyncio.sleep(0.05)


def _roost(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([ROOST, *args], capture_output=True, text=True, timeout=30, check=False)


@pytest.fixture
async def shell(tmux_server: TmuxServer) -> TmuxServer:
    """Session `work`: a bare bash at 80x24 that has already said hello."""
    environ = {**os.environ, "LANG": "C.UTF-8", "PS1": "$ "}
    argv = tmux_server.argv(
        "new-session", "-d", "-s", "work", "-x", "80", "-y", "24", "bash --norc --noprofile"
    )
    await asyncio.to_thread(subprocess.run, argv, check=True, env=environ)
    _type(tmux_server, "echo hello-$((20+3))")
    await _until(lambda: "hello-23" in _pane(tmux_server).replace("hello-$", ""))
    return tmux_server


@pytest.fixture
async def sharing(shell: TmuxServer) -> AsyncIterator[tuple[asyncio.subprocess.Process, str]]:
    """`roost share local work` running, and the URL it printed first."""
    process = await asyncio.create_subprocess_exec(
        ROOST, "share", "local", "work", stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        assert process.stdout is not None
        async with asyncio.timeout(20):
            url = (await process.stdout.readline()).decode().strip()
        assert url.startswith("http://127.0.0.1:"), url
        yield process, url
    finally:
        if process.returncode is None:
            process.terminate()
            await process.wait()


async def test_the_page_shows_the_session_live_and_nothing_typed_reaches_it(
    shell: TmuxServer, sharing: tuple[asyncio.subprocess.Process, str], tmp_path: Path
) -> None:
    chromium()
    process, url = sharing
    async with Browser.open(url) as browser:
        # It joined after the hello: the snapshot shows it.
        await browser.wait_for_text("hello-23")
        _type(shell, "echo follow-$((6*7))")
        await browser.wait_for_text("follow-42")

        # Real key events, to the player and to its text: the page counts them arriving.
        await browser.evaluate(
            "window.keys = 0; document.addEventListener('keydown', () => window.keys++, true)"
        )
        await browser.evaluate("document.querySelector('.ap-wrapper').focus()")
        await browser.type_text("echo typed-in-browser\r")
        await browser.evaluate("document.querySelector('.ap-term-text').focus()")
        await browser.type_text("q\r")
        assert await browser.evaluate("window.keys") == len("echo typed-in-browser\rq\r")
        _type(shell, "echo marker-$((6*8))")
        text = await browser.wait_for_text("marker-48")
        assert "typed-in-browser" not in _pane(shell)
        assert "typed-in-browser" not in text

        png = await browser.screenshot()
        assert png.startswith(b"\x89PNG")
        (tmp_path / "share.png").write_bytes(png)

    async with httpx.AsyncClient(timeout=10) as client:
        token = url.rsplit("/", 2)[1]
        wrong = url.replace(token, token[::-1])
        refused = await client.get(wrong)
        assert refused.status_code == 403 and refused.content == FORBIDDEN

    stopped = await asyncio.to_thread(_roost, "share", "--stop")
    assert "stopping the share of this machine · tmux work" in stopped.stdout
    async with asyncio.timeout(20):
        assert await process.wait() == 0
    assert process.stderr is not None
    said = (await process.stderr.read()).decode()
    assert "a viewer joined from 127.0.0.1 (1 watching)" in said
    assert "a viewer left from 127.0.0.1 (0 watching)" in said
    assert token not in said
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient(timeout=5) as client:
            await client.get(url)
    again = await asyncio.to_thread(_roost, "share", "--stop")
    assert again.stdout == "no share is running\n"


async def test_a_late_joiner_sees_the_current_screen_in_the_browser(
    shell: TmuxServer, sharing: tuple[asyncio.subprocess.Process, str]
) -> None:
    chromium()
    _, url = sharing
    async with Browser.open(url) as first:
        await first.wait_for_text("hello-23")
        _type(shell, "clear; echo after-clear-$((1+1))")
        await first.wait_for_text("after-clear-2")
    async with Browser.open(url) as late:
        text = await late.wait_for_text("after-clear-2")
        assert "hello-23" not in text  # the screen now, not a replay of the past


def test_an_unknown_session_starts_nothing(shell: TmuxServer) -> None:
    result = _roost("share", "local", "nope")
    assert result.returncode == 1
    assert result.stdout == ""
    assert "no tmux session 'nope'" in result.stderr


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["share", "local"], "which session?"),
        (["share", "local", "work", "--stop"], "--stop stops every share"),
        (["share", "local", "work", "--port", "70000"], "--port 70000 is not a port"),
    ],
)
def test_usage_errors_name_the_problem(args: list[str], problem: str) -> None:
    result = _roost(*args)
    assert result.returncode == 2
    assert problem in result.stderr and "usage: roost share" in result.stderr
    assert result.stdout == ""
