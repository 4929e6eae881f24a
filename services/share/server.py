"""The share's HTTP server: one page, its static assets, and a websocket of the live stream.

Every path starts with the share's token (`/<token>/`, `/<token>/ws`, `/<token>/static/...`);
anything else, and everything once the share has stopped, is answered 403 with the same body
whatever was asked, so a wrong or expired token learns nothing about the session. The token
(`secrets.token_urlsafe`, 256 bits) lives only in this object and in the URL its owner prints.

Read-only by construction: no route takes input. A request is its head only (`HEAD_LIMIT`
bytes within `REQUEST_TIMEOUT`; a body is never read), and the websocket reads what a viewer
sends only to answer pings and closes; every other frame is read within `FRAME_LIMIT` bytes and
dropped. What goes out is the ALiS stream of `ShareStream` (services/share/alis.py).

Each response forbids caching (the page's URL holds the token), sends no referrer (the token
must not leave in a Referer header), and carries a Content-Security-Policy that allows only
this origin ('wasm-unsafe-eval' because the player's terminal is WebAssembly compiled from the
bundle itself). Viewers joining and leaving are `ViewerChange`s on `changes()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import html
import logging
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from importlib import resources

from services.share import alis, websocket
from services.share.stream import ShareStream, Viewer
from services.share.websocket import Close, Frame, Opcode, ProtocolError

log = logging.getLogger(__name__)

HEAD_LIMIT = 8 * 1024
"""The longest request head read (request line and headers)."""
REQUEST_TIMEOUT = 10.0
FRAME_LIMIT = 4 * 1024
"""The longest frame read from a viewer (it is dropped unread by anything)."""
SEND_TIMEOUT = 30.0
"""A viewer that takes no bytes for this long is disconnected."""
STOP_TIMEOUT = 2.0
"""How long stopping waits for the connections to say goodbye (viewers: the end of the
stream), and each closing connection for its peer."""
VIEWERS = 64
"""Viewers at once; more are answered 503 (each holds up to a backlog of memory)."""

SECURITY_HEADERS = (
    ("Cache-Control", "no-store"),
    ("Referrer-Policy", "no-referrer"),
    (
        "Content-Security-Policy",
        "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; "
        "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'",
    ),
    ("X-Content-Type-Options", "nosniff"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
)
FORBIDDEN = b"403 forbidden\n"

ASSETS = {
    "asciinema-player.min.js": "text/javascript; charset=utf-8",
    "asciinema-player.css": "text/css; charset=utf-8",
    "asciinema-player.LICENSE": "text/plain; charset=utf-8",
    "share.js": "text/javascript; charset=utf-8",
    "share.css": "text/css; charset=utf-8",
}
"""What `static/` serves, and as what."""

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>roost: {title}</title>
<link rel="stylesheet" href="static/asciinema-player.css">
<link rel="stylesheet" href="static/share.css">
</head>
<body>
<header><h1>{title}</h1><span>read-only</span></header>
<main id="player"></main>
<footer>Shared with roost. Rendered by
<a href="static/asciinema-player.LICENSE">asciinema-player</a> (Apache-2.0).</footer>
<script src="static/asciinema-player.min.js"></script>
<script src="static/share.js"></script>
</body>
</html>
"""


@dataclass(frozen=True)
class ViewerChange:
    """A viewer joined (`joined`) or left, from `peer`; `watching` are connected now."""

    joined: bool
    peer: str
    watching: int

    @property
    def line(self) -> str:
        what = "joined" if self.joined else "left"
        return f"a viewer {what} from {self.peer} ({self.watching} watching)"


@dataclass(frozen=True)
class _Request:
    method: str
    path: str
    headers: dict[str, str]


class _Refused(Exception):
    def __init__(self, status: str, body: bytes = b"") -> None:
        super().__init__(status)
        self.status = status
        self.body = body or f"{status}\n".encode()


class ShareServer:
    """Serves `stream` under a fresh token at `bind`:`port` (0: any free port) from `start()`
    until `stop()`; `title` names the session on the page (the URL's owner knows it)."""

    def __init__(self, stream: ShareStream, title: str, *, bind: str, port: int = 0) -> None:
        self.stream = stream
        self.title = title
        self.bind = bind
        self.port = port
        self._token: str | None = secrets.token_urlsafe(32)
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._changes: asyncio.Queue[ViewerChange | None] = asyncio.Queue()
        self._assets = {name: _asset(name) for name in ASSETS}

    @property
    def url(self) -> str:
        """The page's address with its token: for the person who asked for the share only."""
        if self._token is None:
            raise RuntimeError("the share has stopped")
        host = f"[{self.bind}]" if ":" in self.bind else self.bind
        return f"http://{host}:{self.port}/{self._token}/"

    async def start(self) -> None:
        """Listen; raises OSError when the address cannot be bound."""
        self._server = await asyncio.start_server(
            self._connection, self.bind, self.port, limit=HEAD_LIMIT
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """The token expires, every viewer gets the end of the stream, the port closes."""
        self._token = None
        self.stream.end()
        if self._server is not None:
            self._server.close()
        if self._connections:
            await asyncio.wait(self._connections, timeout=STOP_TIMEOUT)
        for task in self._connections:
            task.cancel()
        self._changes.put_nowait(None)

    async def changes(self) -> AsyncIterator[ViewerChange]:
        """Viewers joining and leaving, until the share stops."""
        while (change := await self._changes.get()) is not None:
            yield change

    # -- HTTP ------------------------------------------------------------------------------

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            await self._answer(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
            pass
        except Exception:
            log.exception("the share server failed on a request")
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError, TimeoutError):
                async with asyncio.timeout(STOP_TIMEOUT):
                    await writer.wait_closed()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT):
                request = await _read_request(reader)
            route = self._route(request)
            if route == "ws":
                if self.stream.viewers >= VIEWERS:
                    raise _Refused("503 Service Unavailable", b"503 too many viewers\n")
                upgrade = self._handshake(request)
                writer.write(_head("101 Switching Protocols", upgrade))
                await self._watch(reader, writer)
                return
            body, content_type = self._body(route)
            headers = [("Content-Type", content_type), ("Content-Length", str(len(body)))]
            writer.write(_head("200 OK", headers) + body)
        except _Refused as refused:
            headers = [
                ("Content-Type", "text/plain; charset=utf-8"),
                ("Content-Length", str(len(refused.body))),
            ]
            writer.write(_head(refused.status, headers) + refused.body)
        async with asyncio.timeout(SEND_TIMEOUT):
            await writer.drain()

    def _route(self, request: _Request) -> str:
        """What `request` asks for: "" (the page), "ws", or "static/NAME". Refuses a wrong
        token before anything else is looked at."""
        token, slash, rest = request.path.removeprefix("/").partition("/")
        if self._token is None or not hmac.compare_digest(token.encode(), self._token.encode()):
            raise _Refused("403 Forbidden", FORBIDDEN)
        if request.method != "GET":
            raise _Refused("405 Method Not Allowed")
        if slash and (rest in ("", "ws") or rest.removeprefix("static/") in ASSETS):
            return rest
        raise _Refused("404 Not Found")

    def _body(self, route: str) -> tuple[bytes, str]:
        if route == "":
            title = html.escape(self.title)
            return PAGE.format(title=title).encode(), "text/html; charset=utf-8"
        name = route.removeprefix("static/")
        return self._assets[name], ASSETS[name]

    def _handshake(self, request: _Request) -> list[tuple[str, str]]:
        """The 101's headers for a valid websocket request of the player (RFC 6455 4.2)."""
        headers = request.headers
        connection = {word.strip().lower() for word in headers.get("connection", "").split(",")}
        key = headers.get("sec-websocket-key", "")
        if (
            headers.get("upgrade", "").lower() != "websocket"
            or "upgrade" not in connection
            or headers.get("sec-websocket-version") != "13"
            or not websocket.valid_key(key)
        ):
            raise _Refused("400 Bad Request", b"400 a websocket (version 13) is expected\n")
        protocols = {word.strip() for word in headers.get("sec-websocket-protocol", "").split(",")}
        if alis.SUBPROTOCOL not in protocols:
            raise _Refused("400 Bad Request", b"400 the stream speaks v1.alis only\n")
        origin = headers.get("origin")
        if origin is not None and origin != f"http://{headers.get('host', '')}":
            raise _Refused("403 Forbidden", FORBIDDEN)  # another site's page, holding the URL
        return [
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Accept", websocket.accept_key(key)),
            ("Sec-WebSocket-Protocol", alis.SUBPROTOCOL),
        ]

    # -- the websocket ---------------------------------------------------------------------

    async def _watch(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Stream to one viewer until it leaves or the share ends."""
        peer = _peer(writer)
        viewer = self.stream.join()
        self._changes.put_nowait(ViewerChange(True, peer, self.stream.viewers))
        sending = asyncio.create_task(self._send(viewer, writer))
        reading = asyncio.create_task(_read_viewer(reader, writer))
        try:
            await asyncio.wait((sending, reading), return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.stream.leave(viewer)
            for task in (sending, reading):
                task.cancel()
            await asyncio.gather(sending, reading, return_exceptions=True)
            self._changes.put_nowait(ViewerChange(False, peer, self.stream.viewers))

    async def _send(self, viewer: Viewer, writer: asyncio.StreamWriter) -> None:
        writer.write(websocket.encode(Frame(Opcode.BINARY, alis.MAGIC)))
        while not viewer.done:
            frames = await viewer.take()
            for frame in frames:
                writer.write(websocket.encode(Frame(Opcode.BINARY, frame)))
            async with asyncio.timeout(SEND_TIMEOUT):
                await writer.drain()
        writer.write(websocket.encode(websocket.close_frame(Close.SHARE_ENDED, "share ended")))
        async with asyncio.timeout(SEND_TIMEOUT):
            await writer.drain()


async def _read_viewer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answer pings and a close; drop everything else (a share has no input). Ends (and so
    does the viewer) on a close, a broken frame, or pongs left unread for SEND_TIMEOUT."""
    try:
        while True:
            frame = await websocket.read_frame(reader, limit=FRAME_LIMIT)
            if frame.opcode is Opcode.PING:
                writer.write(websocket.encode(Frame(Opcode.PONG, frame.payload)))
                async with asyncio.timeout(SEND_TIMEOUT):  # pings from one who reads no pongs
                    await writer.drain()
            elif frame.opcode is Opcode.CLOSE:
                writer.write(websocket.encode(websocket.close_frame(Close.NORMAL)))
                return
    except ProtocolError as error:
        writer.write(websocket.encode(websocket.close_frame(error.code, str(error))))
    except (asyncio.IncompleteReadError, ConnectionError, TimeoutError):
        return


async def _read_request(reader: asyncio.StreamReader) -> _Request:
    """A request's head; refuses one over HEAD_LIMIT or that is not HTTP/1.1."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.LimitOverrunError, ValueError):
        raise _Refused("431 Request Header Fields Too Large") from None
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise _Refused("400 Bad Request")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if colon:
            headers[name.strip().lower()] = value.strip()
    return _Request(parts[0], parts[1].partition("?")[0], headers)


def _head(status: str, headers: list[tuple[str, str]]) -> bytes:
    close = [] if status.startswith("101") else [("Connection", "close")]
    lines = [f"HTTP/1.1 {status}", *(f"{k}: {v}" for k, v in [*headers, *SECURITY_HEADERS, *close])]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _peer(writer: asyncio.StreamWriter) -> str:
    address = writer.get_extra_info("peername")
    return str(address[0]) if isinstance(address, tuple) else "an unknown address"


def _asset(name: str) -> bytes:
    return (resources.files("services.share") / "static" / name).read_bytes()
