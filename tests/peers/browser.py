"""A real headless chromium, driven over the DevTools protocol, for the share page's tests.

`Browser.open(url)` starts Debian's chromium with a fresh profile and `--remote-debugging-port=0`,
reads the DevTools address it prints, and attaches to its page target through a websocket
spoken with roost's own codec (`services/share/websocket.py`, masked as a client must). Tests
then evaluate JavaScript in the page (`evaluate`), type into it (`type_text`: real key events
through the browser's input pipeline) and take screenshots.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.request
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from services.share import websocket
from services.share.websocket import Frame, Opcode

MESSAGE_LIMIT = 64 << 20
"""A DevTools answer (a screenshot) can be large."""


def chromium() -> str:
    """The chromium binary; skips the test when it is missing unless ROOST_REQUIRE_CHROMIUM."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("ROOST_REQUIRE_CHROMIUM"):
            pytest.fail("chromium is not installed, and ROOST_REQUIRE_CHROMIUM is set")
        pytest.skip("chromium is not installed (set ROOST_REQUIRE_CHROMIUM=1 to fail instead)")
    return found


async def ws_connect(
    url: str, *, protocols: tuple[str, ...] = ()
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, dict[str, str]]:
    """A client websocket to `url` (ws://127.0.0.1:...); returns the streams and the 101's
    headers. Raises ConnectionError naming the status when the upgrade is refused."""
    parts = urlsplit(url)
    assert parts.hostname == "127.0.0.1" and parts.port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", parts.port, limit=MESSAGE_LIMIT)
    key = base64.b64encode(secrets.token_bytes(16)).decode()
    lines = [
        f"GET {parts.path or '/'} HTTP/1.1",
        f"Host: 127.0.0.1:{parts.port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
    ]
    if protocols:
        lines.append(f"Sec-WebSocket-Protocol: {', '.join(protocols)}")
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
    status, *rest = head.split("\r\n")
    headers = {}
    for line in rest:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if " 101 " not in status:
        writer.close()
        raise ConnectionError(status)
    assert headers["sec-websocket-accept"] == websocket.accept_key(key)
    return reader, writer, headers


def send(writer: asyncio.StreamWriter, frame: Frame) -> None:
    writer.write(websocket.encode(frame, mask=secrets.token_bytes(4)))


async def receive(reader: asyncio.StreamReader) -> Frame:
    """The next whole message from a server (continuations joined)."""
    first = frame = await websocket.read_frame(reader, limit=MESSAGE_LIMIT, masked=False)
    payload = frame.payload
    while not frame.fin:
        frame = await websocket.read_frame(reader, limit=MESSAGE_LIMIT, masked=False)
        payload += frame.payload
    return Frame(first.opcode, payload)


class Browser:
    """One page of a headless chromium (see the module docstring)."""

    def __init__(
        self, process: subprocess.Popen[bytes], reader: asyncio.StreamReader, writer: Any
    ) -> None:
        self.process = process
        self._reader = reader
        self._writer: asyncio.StreamWriter = writer
        self._next = 0
        self.console: list[str] = []

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, url: str, *, size: tuple[int, int] = (1000, 700)) -> AsyncIterator[Browser]:
        profile = tempfile.mkdtemp(prefix="roost-chromium-")
        argv = [
            chromium(),
            "--headless",
            "--no-sandbox",  # CI runs as root
            "--disable-gpu",
            "--no-first-run",
            "--disable-extensions",
            "--remote-debugging-port=0",
            f"--user-data-dir={profile}",
            f"--window-size={size[0]},{size[1]}",
            url,
        ]
        process = await asyncio.to_thread(_start, argv)
        try:
            devtools = await asyncio.to_thread(_devtools_port, process)
            target = await _page_target(devtools)
            reader, writer, _ = await ws_connect(target)
            browser = cls(process, reader, writer)
            await browser.call("Runtime.enable")
            yield browser
        finally:
            process.kill()
            process.wait()
            shutil.rmtree(profile, ignore_errors=True)

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        """One DevTools command and its result (events before it are noted: console lines)."""
        self._next += 1
        number = self._next
        send(
            self._writer,
            Frame(
                Opcode.TEXT, json.dumps({"id": number, "method": method, "params": params}).encode()
            ),
        )
        async with asyncio.timeout(30):
            while True:
                message = json.loads((await receive(self._reader)).payload)
                if message.get("method") == "Runtime.consoleAPICalled":
                    args = message["params"]["args"]
                    self.console.append(
                        " ".join(str(a.get("value", a.get("description"))) for a in args)
                    )
                if message.get("id") == number:
                    if "error" in message:
                        raise RuntimeError(f"{method}: {message['error']}")
                    result: dict[str, Any] = message["result"]
                    return result

    async def evaluate(self, expression: str) -> Any:
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    async def text(self) -> str:
        """What the player's terminal shows, one row per line."""
        rows = await self.evaluate(
            "Array.from(document.querySelectorAll('.ap-line')).map(l => l.textContent)"
        )
        return "\n".join(rows or [])

    async def wait_for_text(self, needle: str, *, within: float = 15) -> str:
        """The terminal's text once it shows `needle`; fails after `within` seconds."""
        deadline = time.monotonic() + within
        while True:
            text = await self.text()
            if needle in text:
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"the page never showed {needle!r}; it shows:\n{text}")
            await asyncio.sleep(0.05)

    async def type_text(self, text: str) -> None:
        """Keys typed into the focused page, as a user's would be."""
        for char in text:
            await self.call("Input.dispatchKeyEvent", type="keyDown", text=char, key=char)
            await self.call("Input.dispatchKeyEvent", type="keyUp", key=char)

    async def screenshot(self) -> bytes:
        """The page as a PNG."""
        result = await self.call("Page.captureScreenshot", format="png")
        return base64.b64decode(result["data"])


def _start(argv: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def _devtools_port(process: subprocess.Popen[bytes]) -> int:
    """The port chromium's DevTools listen on, from the line it prints at start."""
    assert process.stderr is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = process.stderr.readline().decode(errors="replace")
        if not line and process.poll() is not None:
            break
        found = re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/", line)
        if found:
            # Chromium keeps writing to stderr: drain it so it never blocks on a full pipe.
            stream = process.stderr
            threading.Thread(target=stream.read, daemon=True).start()
            return int(found.group(1))
    raise RuntimeError("chromium did not start its DevTools")


async def _page_target(port: int) -> str:
    """The websocket address of chromium's page."""
    deadline = time.monotonic() + 30
    while True:
        listing = await asyncio.to_thread(_get, f"http://127.0.0.1:{port}/json/list")
        pages = [target for target in json.loads(listing) if target.get("type") == "page"]
        if pages:
            return str(pages[0]["webSocketDebuggerUrl"])
        if time.monotonic() > deadline:
            raise RuntimeError("chromium has no page")
        await asyncio.sleep(0.05)


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as answer:
        body: bytes = answer.read(1 << 20)
        return body
