"""The share server over real sockets on 127.0.0.1: the token, the headers, the ALiS stream a
late joiner gets, a viewer's frames going nowhere, viewer events, and what stopping does."""

from __future__ import annotations

import asyncio
import socket
import subprocess
from collections.abc import AsyncIterator

import httpx
import pytest

from services.core.processes import ProcessIdentity, process_start
from services.share import alis
from services.share.server import FORBIDDEN, FRAME_LIMIT, ShareServer
from services.share.share import Share, exposed
from services.share.shares import ShareRecord, register, running, stop_all
from services.share.stream import BACKLOG
from services.share.websocket import Close, Frame, Opcode
from services.terminal.backend import TerminalSize
from services.terminal.emulator import Emulator
from tests.peers.browser import receive, send, ws_connect


@pytest.fixture
async def share() -> AsyncIterator[Share]:
    share = Share("ada · tmux work", TerminalSize(40, 6))
    await share.start()
    try:
        yield share
    finally:
        await share.stop()


def _varuint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, at


def _reset(frame: bytes) -> tuple[int, int, bytes]:
    """A reset frame's columns, rows and init text."""
    assert frame[0] == 0x01
    at = 1
    _, at = _varuint(frame, at)  # event id
    _, at = _varuint(frame, at)  # time
    columns, at = _varuint(frame, at)
    rows, at = _varuint(frame, at)
    assert frame[at] == 0  # no theme
    length, at = _varuint(frame, at + 1)
    return columns, rows, frame[at : at + length]


def _output(frame: bytes) -> bytes:
    assert frame[:1] == b"o"
    at = 1
    for _ in range(2):
        _, at = _varuint(frame, at)
    length, at = _varuint(frame, at)
    return frame[at : at + length]


def _screen(columns: int, rows: int, *chunks: bytes) -> list[str]:
    emulator = Emulator(columns, rows)
    for chunk in chunks:
        emulator.feed(chunk)
    return list(emulator.display)


async def _viewer(share: Share) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    url = share.url.replace("http://", "ws://") + "ws"
    reader, writer, headers = await ws_connect(url, protocols=("v1.alis", "raw"))
    assert headers["sec-websocket-protocol"] == "v1.alis"
    assert (await receive(reader)).payload == alis.MAGIC
    return reader, writer


async def test_a_late_joiner_sees_the_screen_then_the_live_output(share: Share) -> None:
    share.stream.output(b"\x1b[1;31mbuild failed\x1b[0m\r\nline two ")
    reader, _ = await _viewer(share)
    columns, rows, init = _reset((await receive(reader)).payload)
    assert (columns, rows) == (40, 6)
    share.stream.output(b"and more \xe2\x9c")  # a character cut between two reads
    share.stream.output(b"\x93")
    first, second = (
        _output((await receive(reader)).payload),
        _output((await receive(reader)).payload),
    )
    assert first == b"and more " and second == b"\xe2\x9c\x93"
    screen = _screen(columns, rows, init, first, second)
    assert screen[0].rstrip() == "build failed"
    assert screen[1].rstrip() == "line two and more ✓"


async def test_resizes_reach_the_viewer(share: Share) -> None:
    reader, _ = await _viewer(share)
    await receive(reader)  # the reset
    share.stream.resize(TerminalSize(100, 30))
    frame = (await receive(reader)).payload
    assert frame[:1] == b"r"
    _, at = _varuint(frame, 1)
    _, at = _varuint(frame, at)
    assert _varuint(frame, at)[0] == 100
    assert _varuint(frame, _varuint(frame, at)[1])[0] == 30


async def test_what_a_viewer_sends_goes_nowhere(share: Share) -> None:
    """Text, binary and continuation frames are read and dropped; a ping is answered; the
    stream and its screen are unchanged; an over-long frame closes with 1009."""
    share.stream.output(b"$ ")
    reader, writer = await _viewer(share)
    await receive(reader)
    before = _screen(40, 6, _reset(share.stream.reset_frame(0, 0))[2])
    for opcode in (Opcode.TEXT, Opcode.BINARY):
        send(writer, Frame(opcode, b"rm -rf ~\r"))
    send(writer, Frame(Opcode.PING, b"still there?"))
    pong = await receive(reader)
    assert (pong.opcode, pong.payload) == (Opcode.PONG, b"still there?")
    assert _screen(40, 6, _reset(share.stream.reset_frame(0, 0))[2]) == before
    assert share.stream.emulator.take_replies() == b""
    send(writer, Frame(Opcode.BINARY, b"x" * (FRAME_LIMIT + 1)))
    close = await receive(reader)
    assert close.opcode is Opcode.CLOSE
    assert int.from_bytes(close.payload[:2], "big") == Close.TOO_BIG


async def test_a_wrong_or_missing_token_learns_nothing(share: Share) -> None:
    base = share.url.rsplit("/", 2)[0]
    token = share.url.rsplit("/", 2)[1]
    wrong = token[:-1] + ("A" if token[-1] != "A" else "B")
    async with httpx.AsyncClient(timeout=10) as client:
        page = await client.get(share.url)
        assert page.status_code == 200 and "ada · tmux work" in page.text
        answers = [
            await client.get(url)
            for url in (
                f"{base}/",
                f"{base}/{wrong}/",
                f"{base}/{wrong}/ws",
                f"{base}/{wrong}/static/share.js",
                f"{base}/{token}x/",
                f"{base}/{token[:-1]}/",
                f"{base}/static/asciinema-player.min.js",
            )
        ]
    for answer in answers:
        assert answer.status_code == 403
        assert answer.content == FORBIDDEN
        assert "work" not in str(answer.headers)
    with pytest.raises(ConnectionError, match="403"):
        await ws_connect(f"ws://127.0.0.1:{share.server.port}/{wrong}/ws", protocols=("v1.alis",))


async def test_the_page_is_not_cached_leaks_no_referrer_and_loads_only_itself(share: Share) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        for path in ("", "static/asciinema-player.min.js", "static/asciinema-player.LICENSE"):
            answer = await client.get(share.url + path)
            assert answer.status_code == 200
            assert answer.headers["cache-control"] == "no-store"
            assert answer.headers["referrer-policy"] == "no-referrer"
            assert answer.headers["content-security-policy"].startswith("default-src 'self';")
        licence = await client.get(share.url + "static/asciinema-player.LICENSE")
        assert "Apache License" in licence.text
        posted = await client.post(share.url, content=b"keys")
        assert posted.status_code == 405


async def test_another_sites_page_cannot_open_the_stream(share: Share) -> None:
    """A page elsewhere that learnt the URL still cannot read the stream from a browser."""
    port = share.server.port
    async with httpx.AsyncClient(timeout=10) as client:
        answer = await client.get(
            share.url + "ws",
            headers={
                "Upgrade": "websocket",
                "Connection": "Upgrade",
                "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                "Sec-WebSocket-Version": "13",
                "Sec-WebSocket-Protocol": "v1.alis",
                "Origin": "http://evil.example",
                "Host": f"127.0.0.1:{port}",
            },
        )
    assert answer.status_code == 403


async def test_viewers_joining_and_leaving_are_told(share: Share) -> None:
    changes = share.server.changes()
    _, writer = await _viewer(share)
    joined = await anext(changes)
    assert (joined.joined, joined.peer, joined.watching) == (True, "127.0.0.1", 1)
    send(writer, Frame(Opcode.CLOSE, b"\x03\xe8"))
    left = await anext(changes)
    assert (left.joined, left.watching) == (False, 0)
    assert "left from 127.0.0.1" in left.line


async def test_stopping_ends_the_stream_and_expires_the_token() -> None:
    share = Share("ada · tmux work", TerminalSize(40, 6))
    await share.start()
    url = share.url
    assert [record.port for _, record in running()] == [share.server.port]
    assert all(share.server.url.split("/")[3] not in path.read_text() for path, _ in running())
    reader, _ = await _viewer(share)
    await receive(reader)
    await share.stop()
    assert (await receive(reader)).payload == alis.EOT
    close = await receive(reader)
    assert int.from_bytes(close.payload[:2], "big") == Close.SHARE_ENDED
    assert running() == []
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient(timeout=5) as client:
            await client.get(url)
    with pytest.raises(RuntimeError):
        _ = share.url


async def test_a_viewer_far_behind_starts_again_from_the_present(share: Share) -> None:
    """Its queue is dropped for a fresh snapshot once it passes BACKLOG: memory stays bounded
    and what it then shows is the present."""
    viewer = share.stream.join()
    await viewer.take()
    line = b"x" * 1000 + b"\r\n"
    for _ in range(BACKLOG // len(line) + 10):
        share.stream.output(line)
    share.stream.output(b"the end")
    frames = await viewer.take()
    assert len(frames) == 1
    columns, rows, init = _reset(frames[0])
    assert _screen(columns, rows, init)[-1].rstrip() == "the end"


def test_only_loopback_is_private() -> None:
    assert not exposed("127.0.0.1") and not exposed("::1") and not exposed("localhost")
    assert exposed("0.0.0.0") and exposed("192.168.1.4") and exposed("example.org")


def test_the_server_refuses_to_lose_its_token_in_a_repr() -> None:
    server = ShareServer(Share("x", TerminalSize(10, 2)).stream, "x", bind="127.0.0.1")
    assert server.url.split("/")[3] not in repr(server)


def test_stop_signals_only_what_this_user_listed() -> None:
    """A file anyone may write names no process to signal; a dead owner's file is removed."""
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        planted = register(
            ShareRecord(
                ProcessIdentity(sleeper.pid, process_start(sleeper.pid), socket.gethostname()),
                "127.0.0.1",
                1,
                "x",
            )
        )
        planted.chmod(0o666)
        dead = register(
            ShareRecord(ProcessIdentity(2**22 + 7, None, socket.gethostname()), "127.0.0.1", 2, "y")
        )
        assert stop_all() == []
        assert sleeper.poll() is None
        assert planted.exists() and not dead.exists()
    finally:
        sleeper.kill()
        sleeper.wait()
