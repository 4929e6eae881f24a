"""A lean HTTP/1.1 transport for httpx: plain-HTTP requests over asyncio streams, each origin's
idle connections kept for reuse (services/core/http.py `http_client` mounts it).

Why not httpcore's pool: on every request it starts or finishes it re-examines each pooled
connection (a system call apiece, to see whether the server closed it) and compares every pair
of them; with the 32 connections a health sweep keeps busy that is milliseconds of CPU per
request, a hundred times what the request itself costs. Here a request takes an idle connection
of its origin (or opens one) and gives it back once its answer is read, nothing more: a server
that closed an idle connection is seen for free (asyncio has read its end of file). h11, the
parser httpcore uses, reads and writes the messages, so framing and header limits are its.

Only plain HTTP comes here; TLS and proxies stay with httpx's own transport (`fallback`). There
is no cap on connections: each caller bounds its own concurrency (the health monitor's 32).
Errors are httpx's (ConnectError, ReadTimeout, RemoteProtocolError...), as callers expect.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import OrderedDict
from collections.abc import AsyncIterator

import h11
import httpx

READ_SIZE = 64 * 1024
MAX_HEAD = 64 * 1024
"""An answer's status line and headers must fit in this (h11 refuses the rest)."""
RETRIED_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
"""Sent again on a new connection when a reused one turns out closed before any answer."""

Origin = tuple[str, int]


class _Stale(Exception):
    """A reused connection was closed before the answer began: safe to send again."""


class _Connection:
    def __init__(self, origin: Origin, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.origin = origin
        self.reader = reader
        self.writer = writer
        self.h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD)
        self.idle_since = 0.0
        self.reused = False

    def close(self) -> None:
        self.writer.close()

    async def next_event(self, request: httpx.Request) -> object:
        """The next event of the answer (an h11 event, or its PAUSED), reading as needed within
        the read timeout."""
        while True:
            try:
                event = self.h11.next_event()
            except h11.RemoteProtocolError as error:
                raise httpx.RemoteProtocolError(str(error), request=request) from None
            if event is not h11.NEED_DATA:
                return event
            seconds = request.extensions.get("timeout", {}).get("read")
            try:
                async with asyncio.timeout(seconds):
                    data = await self.reader.read(READ_SIZE)
            except TimeoutError:
                raise httpx.ReadTimeout(
                    f"no answer within {seconds:g} s", request=request
                ) from None
            except OSError as error:
                raise httpx.ReadError(str(error) or type(error).__name__, request=request) from None
            if not data and self.reused and self.h11.their_state is h11.SEND_RESPONSE:
                raise _Stale
            self.h11.receive_data(data)

    async def write(self, request: httpx.Request, event: h11.Event) -> None:
        data = self.h11.send(event)
        if not data:
            return
        self.writer.write(data)
        seconds = request.extensions.get("timeout", {}).get("write")
        try:
            async with asyncio.timeout(seconds):
                await self.writer.drain()
        except TimeoutError:
            raise httpx.WriteTimeout(
                f"could not send within {seconds:g} s", request=request
            ) from None
        except OSError as error:
            if self.reused and self.h11.their_state is h11.SEND_RESPONSE:
                raise _Stale from None
            raise httpx.WriteError(str(error) or type(error).__name__, request=request) from None


class KeepAliveTransport(httpx.AsyncBaseTransport):
    """Plain HTTP/1.1 with keep-alive; everything else goes to `fallback`."""

    def __init__(
        self, fallback: httpx.AsyncBaseTransport, *, max_idle: int, idle_expiry: float
    ) -> None:
        self._fallback = fallback
        self._max_idle = max_idle
        self._idle_expiry = idle_expiry
        self._idle: OrderedDict[_Connection, None] = OrderedDict()
        """Every idle connection, the longest idle first (the first to go past `max_idle`)."""
        self._idle_by_origin: dict[Origin, list[_Connection]] = {}
        self._open: set[_Connection] = set()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme != "http":
            return await self._fallback.handle_async_request(request)
        origin = (url.host, url.port or 80)
        connection = self._take(origin)
        if connection is not None:
            try:
                return await self._exchange(connection, request)
            except _Stale:
                if request.method not in RETRIED_METHODS:
                    raise httpx.RemoteProtocolError(
                        "the server closed the connection before answering", request=request
                    ) from None
        connection = await self._connect(origin, request)
        try:
            return await self._exchange(connection, request)
        except _Stale:  # not reused: cannot happen, but say what it means
            raise httpx.RemoteProtocolError("server disconnected", request=request) from None

    async def aclose(self) -> None:
        for connection in self._open:
            connection.close()
        self._open.clear()
        self._idle.clear()
        self._idle_by_origin.clear()
        await self._fallback.aclose()

    def _take(self, origin: Origin) -> _Connection | None:
        """The most recently used idle connection to `origin` that is still good."""
        waiting = self._idle_by_origin.get(origin)
        now = time.monotonic()
        while waiting:
            connection = waiting.pop()
            del self._idle[connection]
            if now - connection.idle_since < self._idle_expiry and not connection.reader.at_eof():
                connection.reused = True
                return connection
            self._discard(connection)
        return None

    def _give_back(self, connection: _Connection) -> None:
        state = connection.h11
        if (
            connection not in self._open  # the transport was closed meanwhile
            or state.our_state is not h11.DONE
            or state.their_state is not h11.DONE
        ):
            self._discard(connection)
            return
        state.start_next_cycle()
        connection.idle_since = time.monotonic()
        self._idle[connection] = None
        self._idle_by_origin.setdefault(connection.origin, []).append(connection)
        while len(self._idle) > self._max_idle:
            oldest, _ = self._idle.popitem(last=False)
            self._idle_by_origin[oldest.origin].remove(oldest)
            self._discard(oldest)

    def _discard(self, connection: _Connection) -> None:
        connection.close()
        self._open.discard(connection)

    async def _connect(self, origin: Origin, request: httpx.Request) -> _Connection:
        seconds = request.extensions.get("timeout", {}).get("connect")
        try:
            async with asyncio.timeout(seconds):
                reader, writer = await asyncio.open_connection(*origin, limit=READ_SIZE)
        except TimeoutError:
            raise httpx.ConnectTimeout(
                f"no connection within {seconds:g} s", request=request
            ) from None
        except OSError as error:
            # "Connection refused", not asyncio's "[Errno 111] Connect call failed (addr)".
            reason = os.strerror(error.errno) if error.errno else str(error) or type(error).__name__
            raise httpx.ConnectError(reason, request=request) from None
        connection = _Connection(origin, reader, writer)
        self._open.add(connection)
        return connection

    async def _exchange(self, connection: _Connection, request: httpx.Request) -> httpx.Response:
        """Send `request` and read the answer's head; its body streams from the connection."""
        try:
            target = request.url.raw_path
            headers = list(request.headers.raw)
            await connection.write(
                request, h11.Request(method=request.method, target=target, headers=headers)
            )
            assert isinstance(request.stream, httpx.AsyncByteStream)
            async for chunk in request.stream:
                if chunk:
                    await connection.write(request, h11.Data(data=chunk))
            await connection.write(request, h11.EndOfMessage())
            while True:
                event = await connection.next_event(request)
                if isinstance(event, h11.Response):
                    break
                if not isinstance(event, h11.InformationalResponse):
                    raise httpx.RemoteProtocolError(
                        "the server closed the connection without answering", request=request
                    )
        except BaseException:
            self._discard(connection)
            raise
        return httpx.Response(
            event.status_code,
            headers=event.headers.raw_items(),
            stream=_Body(self, connection, request),
            extensions={
                "http_version": b"HTTP/" + event.http_version,
                "reason_phrase": event.reason,
            },
        )


class _Body(httpx.AsyncByteStream):
    """An answer's body as it arrives; the connection goes back to the pool once it is all
    read, and is closed if the answer is closed before."""

    def __init__(
        self, transport: KeepAliveTransport, connection: _Connection, request: httpx.Request
    ) -> None:
        self._transport = transport
        self._connection: _Connection | None = connection
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        connection = self._connection
        if connection is None:
            return
        try:
            while True:
                event = await connection.next_event(self._request)
                if isinstance(event, h11.Data):
                    yield bytes(event.data)
                elif isinstance(event, h11.EndOfMessage):
                    break
                else:  # the connection closed part way
                    raise httpx.RemoteProtocolError(
                        "the server closed the connection part way through the answer",
                        request=self._request,
                    )
        except BaseException:
            self._finish(reuse=False)
            raise
        self._finish(reuse=True)

    async def aclose(self) -> None:
        self._finish(reuse=False)

    def _finish(self, reuse: bool) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        if reuse:
            self._transport._give_back(connection)
        else:
            self._transport._discard(connection)
