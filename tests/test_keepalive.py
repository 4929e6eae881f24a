"""The keep-alive transport (services/core/keepalive.py) through `http_client()`, against a raw
HTTP server on 127.0.0.1 whose every byte the test scripts: connections reused and not, servers
that close them, the body framings, timeouts and garbage."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest

from services.core.http import http_client, timeout
from services.core.logs import configure_logging

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Server:
    """Serves each connection with `handler`; counts the connections."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.url = ""
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> Server:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            try:
                await self.handler(reader, writer)
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
            finally:
                writer.close()

        self._server = await asyncio.start_server(serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()


def answering(answer: bytes, requests: int = 1000) -> Handler:
    """Reads up to `requests` requests (their bodies too) and gives each `answer`."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for _ in range(requests):
            head = await reader.readuntil(b"\r\n\r\n")
            length = [int(v) for k, v in headers(head) if k == b"content-length"]
            if length:
                await reader.readexactly(length[0])
            writer.write(answer)
            await writer.drain()

    return handler


def headers(head: bytes) -> list[tuple[bytes, bytes]]:
    lines = head.split(b"\r\n")[1:]
    return [
        (k.strip().lower(), v.strip())
        for k, _, v in (line.partition(b":") for line in lines if line)
    ]


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with http_client() as http:
        yield http


async def test_one_connection_serves_request_after_request(client: httpx.AsyncClient) -> None:
    async with Server(answering(OK)) as server:
        for _ in range(5):
            response = await client.get(server.url + "/v1/health", timeout=timeout(5))
            assert (response.status_code, response.content) == (200, b"hello")
        assert server.connections == 1


async def test_a_connection_the_server_closed_while_idle_is_replaced(
    client: httpx.AsyncClient,
) -> None:
    async with Server(answering(OK, requests=1)) as server:  # one answer, then it closes
        for _ in range(3):
            response = await client.get(server.url, timeout=timeout(5))
            assert response.content == b"hello"
        assert server.connections == 3


async def test_a_reused_connection_closed_unseen_is_retried_for_a_get_only(
    client: httpx.AsyncClient,
) -> None:
    """A server may close an idle connection just as a request goes out on it: a GET is sent
    again on a new connection, a POST is not (it may have been acted on)."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(OK)
        await writer.drain()
        await reader.readuntil(b"\r\n\r\n")  # the second request: read, then hang up on it

    async with Server(handler) as server:
        await client.get(server.url, timeout=timeout(5))
        response = await client.get(server.url, timeout=timeout(5))
        assert response.content == b"hello" and server.connections == 2
        with pytest.raises(httpx.RemoteProtocolError, match="closed the connection"):
            await client.post(server.url, content=b"x", timeout=timeout(5))


async def test_chunked_and_close_delimited_bodies_are_read_whole(
    client: httpx.AsyncClient,
) -> None:
    chunked = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    )
    async with Server(answering(chunked)) as server:
        for _ in range(2):
            assert (await client.get(server.url, timeout=timeout(5))).content == b"abcde"
        assert server.connections == 1
    until_close = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it"
    async with Server(answering(until_close, requests=1)) as server:
        for _ in range(2):
            assert (await client.get(server.url, timeout=timeout(5))).content == b"all of it"
        assert server.connections == 2


async def test_a_head_answer_has_no_body_and_the_connection_goes_on(
    client: httpx.AsyncClient,
) -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"
    async with Server(answering(head)) as server:
        for _ in range(2):
            response = await client.head(server.url, timeout=timeout(5))
            assert response.content == b"" and response.headers["content-length"] == "1000"
        assert server.connections == 1


async def test_a_streamed_request_body_arrives_whole() -> None:
    received: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        assert (b"transfer-encoding", b"chunked") in headers(head)
        body = b""
        while size := int((await reader.readuntil(b"\r\n"))[:-2], 16):
            body += (await reader.readexactly(size + 2))[:-2]
        await reader.readuntil(b"\r\n")
        received.append(body)
        writer.write(OK)
        await writer.drain()

    async def parts() -> AsyncIterator[bytes]:
        for part in (b"one ", b"", b"two"):
            yield part

    async with http_client() as client, Server(handler) as server:
        response = await client.post(server.url, content=parts(), timeout=timeout(5))
        assert response.content == b"hello" and received == [b"one two"]


async def test_an_answer_closed_before_its_body_is_read_takes_its_connection_along(
    client: httpx.AsyncClient,
) -> None:
    async with Server(answering(OK)) as server:
        async with client.stream("GET", server.url, timeout=timeout(5)) as response:
            assert response.status_code == 200  # the body is left unread
        assert (await client.get(server.url, timeout=timeout(5))).content == b"hello"
        assert server.connections == 2


async def test_silence_is_a_read_timeout_and_no_server_a_connect_error(
    client: httpx.AsyncClient,
) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await asyncio.Event().wait()

    async with Server(silent) as server:
        with pytest.raises(httpx.ReadTimeout, match=r"0\.2 s"):
            await client.get(server.url, timeout=timeout(0.2))
        url = server.url
    with pytest.raises(httpx.ConnectError):
        await client.get(url, timeout=timeout(5))


@pytest.mark.parametrize(
    "answer",
    [
        b"this is not HTTP\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX-Huge: " + b"a" * 300_000 + b"\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",  # then the server hangs up
        b"",  # hangs up without a word
    ],
    ids=["not-http", "huge-head", "short-body", "silence"],
)
async def test_garbage_is_a_protocol_error(client: httpx.AsyncClient, answer: bytes) -> None:
    async with Server(answering(answer, requests=1)) as server:
        with pytest.raises(httpx.RemoteProtocolError):
            await client.get(server.url, timeout=timeout(5))


async def test_no_cookie_is_kept_or_sent_back(client: httpx.AsyncClient) -> None:
    seen: list[list[tuple[bytes, bytes]]] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            seen.append(headers(await reader.readuntil(b"\r\n\r\n")))
            writer.write(
                b"HTTP/1.1 200 OK\r\nSet-Cookie: session=secret\r\nContent-Length: 0\r\n\r\n"
            )

    async with Server(handler) as server:
        for _ in range(2):
            await client.get(server.url, timeout=timeout(5))
    assert [name for request in seen for name, _ in request if name == b"cookie"] == []
    assert not client.cookies


async def test_requests_are_not_logged_one_by_one(tmp_path: Path) -> None:
    """httpx logs each request at INFO: probes every few seconds would flood roost's log."""
    log_file = tmp_path / "roost.log"
    configure_logging(log_file)
    try:
        async with http_client() as client, Server(answering(OK)) as server:
            await client.get(server.url + "/v1/health", timeout=timeout(5))
            logging.getLogger("roost.test").info("a line of roost's own")
    finally:
        logging.shutdown()
    text = log_file.read_text()
    assert "a line of roost's own" in text and "/v1/health" not in text
