"""The rules every HTTP request of roost follows: one client configuration, timeouts, redirects,
and reading answers against a cap. Health probes, the platform, backups and terminal sessions all
go through here.

- Timeouts: `timeout()` builds every `httpx.Timeout`; each call states its own (the client's
  default is only a net), so the figure an error message quotes is the one that applied.
- Redirects: `send()` follows them itself, and only as far as the caller allows. A credential
  header (`CREDENTIAL_HEADERS`) never leaves the origin (scheme, host, port) of the first request:
  httpx strips `Authorization` across origins but keeps the platform's `X-Session-Token` and
  `Vellum-Organization-Id`.
- Capped reading: `read_body`, `read_json` and `sse_lines` (`sse_line_batches`) count what
  arrives against a cap and raise `AnswerTooLarge` before holding more; nothing reads a body
  whole on trust.
- Long transfers: `Watchdog` ends one that stalls (too few bytes in a window) or outlives its
  deadline.

Plain-HTTP requests (every local runtime, the bulk of a large fleet) go through
services/core/keepalive.py, a lean keep-alive transport: httpcore's pool costs milliseconds of
CPU per request once it holds tens of connections. TLS and proxies stay with httpx's transport.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx

from services.core.errors import RoostError
from services.core.keepalive import KeepAliveTransport
from services.core.safe_text import printable

KEEPALIVE_CONNECTIONS = 32
KEEPALIVE_SECONDS = 5.0
"""An idle connection is closed after this (servers commonly close theirs after 5 s too)."""
MAX_CONNECTIONS = 64
"""For TLS origins (httpx's pool); plain HTTP has no cap, its callers bound their concurrency."""
CONNECT_TIMEOUT = 10.0
"""Seconds to open a connection, unless a call says less."""
DEFAULT_TIMEOUT = 30.0
"""Only for a call that states no timeout of its own (none should)."""
CREDENTIAL_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "x-session-token", "vellum-organization-id"}
)
"""Header names (lower case) that prove who roost is: they stay with the first origin."""
_DEFAULT_PORTS = {"http": 80, "https": 443}


class _NoCookies(httpx.Cookies):
    """An empty jar that stays empty."""

    def extract_cookies(self, response: httpx.Response) -> None:
        pass


class _Client(httpx.AsyncClient):
    """roost keeps no cookies: nothing it talks to uses them, and httpx reads every answer for
    them into its jar (a seventh of a health probe's CPU) and would send them back."""

    @property
    def cookies(self) -> httpx.Cookies:
        return _NoCookies()

    @cookies.setter
    def cookies(self, cookies: object) -> None:
        raise TypeError("roost keeps no cookies")


def http_client() -> httpx.AsyncClient:
    """The client every front end uses. Redirects are followed only by `send()`; answers are
    asked for uncompressed, since a compressed one could expand past any cap before it is
    counted (and `read_body` refuses one that comes compressed anyway)."""
    limits = httpx.Limits(
        max_connections=MAX_CONNECTIONS,
        max_keepalive_connections=KEEPALIVE_CONNECTIONS,
        keepalive_expiry=KEEPALIVE_SECONDS,
    )
    transport = KeepAliveTransport(
        httpx.AsyncHTTPTransport(limits=limits),
        max_idle=KEEPALIVE_CONNECTIONS,
        idle_expiry=KEEPALIVE_SECONDS,
    )
    return _Client(
        transport=transport,
        limits=limits,  # for a proxy's transport, if the environment names one
        follow_redirects=False,
        timeout=timeout(DEFAULT_TIMEOUT),
        headers={"Accept-Encoding": "identity"},
    )


def stream_client() -> httpx.AsyncClient:
    """A client for many long-lived event streams (one per assistant): no cap on connections
    (each stream holds one for ever, and a cap would queue the rest behind them) and no
    keep-alive pool (a stream's connection is never reused; the few requests beside the
    streams open their own). Otherwise as `http_client()`, plain HTTP through the same lean
    transport: httpcore's pool would look at each of thousands of streams' connections on every
    new request."""
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=0)
    return _Client(
        transport=KeepAliveTransport(
            httpx.AsyncHTTPTransport(limits=limits), max_idle=0, idle_expiry=KEEPALIVE_SECONDS
        ),
        limits=limits,
        follow_redirects=False,
        timeout=timeout(DEFAULT_TIMEOUT),
        headers={"Accept-Encoding": "identity"},
    )


def timeout(
    seconds: float, *, connect: float | None = None, endless_reads: bool = False
) -> httpx.Timeout:
    """One call's timeouts: connecting, waiting for the pool, writing, and each read within
    `seconds` (connecting within `connect` when it is shorter). `endless_reads`: a read may wait
    for ever (an events stream, where silence is normal).

    These bound each step, not the whole call: a sender trickling a byte at a time never trips a
    read timeout, so callers bound the whole call too (`asyncio.timeout`, or a `Watchdog`)."""
    opening = min(seconds, connect if connect is not None else CONNECT_TIMEOUT)
    return httpx.Timeout(
        connect=opening, read=None if endless_reads else seconds, write=seconds, pool=seconds
    )


def timeout_text(error: httpx.TimeoutException, request: httpx.Request) -> str:
    """`N s`, the timeout that `error` ran out of as `request` stated it (`?` if it did not)."""
    phase = {
        httpx.ConnectTimeout: "connect",
        httpx.WriteTimeout: "write",
        httpx.PoolTimeout: "pool",
    }.get(type(error), "read")
    seconds = request.extensions.get("timeout", {}).get(phase)
    return f"{seconds:g} s" if isinstance(seconds, int | float) else "?"


class AnswerError(RoostError):
    """An answer roost will not read further; the message names where from and why."""


class AnswerTooLarge(AnswerError):
    """A body, a line or an event went past its cap."""


class TooManyRedirects(AnswerError):
    pass


def where(url: httpx.URL) -> str:
    """`url` fit for a message: no query (signed URLs carry their signature there), no user."""
    return str(url.copy_with(query=None, fragment=None, username=None, password=None))


def same_origin(one: httpx.URL, other: httpx.URL) -> bool:
    return _origin(one) == _origin(other)


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port or _DEFAULT_PORTS.get(url.scheme)


async def send(
    client: httpx.AsyncClient, request: httpx.Request, *, redirects: int = 0
) -> httpx.Response:
    """Send `request`; the answer's body is not read yet (read it with the helpers below, and
    close the answer: `contextlib.aclosing`).

    Up to `redirects` redirects are followed: within the first request's origin as they are, to
    any other origin without a credential header (and never with it again). More than that
    raises TooManyRedirects; with `redirects=0` a redirect is the answer, like any other status.
    httpx's errors pass through: they hold the request, so callers re-raise them `from None`.
    """
    origin = request.url
    for _ in range(redirects + 1):
        response = await client.send(request, stream=True, follow_redirects=False)
        following = response.next_request if redirects else None
        if following is None:
            return response
        await response.aclose()
        if not same_origin(following.url, origin):
            for name in CREDENTIAL_HEADERS:
                following.headers.pop(name, None)
        request = following
    raise TooManyRedirects(f"{where(origin)}: more than {redirects} redirects")


async def read_body(response: httpx.Response, cap: int) -> bytes:
    """The whole body, which must not exceed `cap` bytes (else AnswerTooLarge, raised before
    more than `cap` bytes are held). Raises AnswerError for a compressed body: roost asks for
    none, and one could expand past the cap in a single chunk."""
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise AnswerError(
            f"{where(response.url)}: a compressed answer ({encoding}), asked for none"
        )
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > cap:
        raise _too_large(response, "answer", cap)
    body = bytearray()
    async for chunk in response.aiter_raw():
        if len(body) + len(chunk) > cap:
            raise _too_large(response, "answer", cap)
        body += chunk
    return bytes(body)


class NotJson(AnswerError):
    pass


async def read_json(response: httpx.Response, cap: int) -> object:
    """The body parsed as JSON (see `read_body`); raises NotJson when it is not JSON."""
    body = await read_body(response, cap)
    try:
        return json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: deeply nested arrays
        raise NotJson(f"{where(response.url)}: the answer is not JSON") from None


async def sse_lines(
    response: httpx.Response, *, max_line: int, max_event: int
) -> AsyncIterator[str]:
    """The lines of a Server-Sent-Events stream, without their ends (CRLF, LF or CR), as text,
    one at a time (see `sse_line_batches` for the caps)."""
    async for lines in sse_line_batches(response, max_line=max_line, max_event=max_event):
        for line in lines:
            yield line.decode("utf-8", "replace")


async def sse_line_batches(
    response: httpx.Response, *, max_line: int, max_event: int
) -> AsyncIterator[list[bytes]]:
    """The lines of a Server-Sent-Events stream, without their ends (CRLF, LF or CR), as bytes:
    the lines each read completed, together, so that a fast stream costs a step per read, not per
    line (a terminal's output stream carries a few KiB per line, many lines per read).

    A line longer than `max_line` bytes, or an event (the lines up to a blank one) longer than
    `max_event`, raises AnswerTooLarge before more of it is held. Each chunk is split at C speed
    (`bytes.split`); one with a CR in it has its line ends made LF first, a CR at its very end
    held back, since it may be the first half of a CRLF split between two chunks."""
    pending = b""
    event = 0
    async for chunk in response.aiter_raw():
        data = pending + chunk if pending else chunk
        held = b""
        if b"\r" in data:
            if data.endswith(b"\r"):
                data, held = data[:-1], b"\r"
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = data.split(b"\n")
        pending = lines.pop() + held
        for line in lines:
            if len(line) > max_line:
                raise _too_large(response, "line", max_line)
            event = event + len(line) if line else 0
            if event > max_event:
                raise _too_large(response, "event", max_event)
        if len(pending) > max_line:
            raise _too_large(response, "line", max_line)
        if lines:
            yield lines
    if pending:  # a last line: ended by a CR, or not ended at all
        yield [pending.removesuffix(b"\r")]


def parse_json(body: bytes) -> object:
    """`body` parsed as JSON, or None when it is not JSON."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: deeply nested arrays
        return None


async def error_body(response: httpx.Response, cap: int) -> bytes:
    """What came with a refusal, to explain it; nothing when it is unreadable or too large."""
    try:
        return await read_body(response, cap)
    except (httpx.HTTPError, AnswerError):
        return b""


def answer_detail(answer: object) -> str:
    """`: <message>` from an error answer's usual fields (`error.message`, `error`, `detail`,
    `message`), shortened and safe to show; else nothing."""
    if not isinstance(answer, dict):
        return ""
    error = answer.get("error")
    for value in (
        error.get("message") if isinstance(error, dict) else error,
        answer.get("detail"),
        answer.get("message"),
    ):
        if isinstance(value, str) and value.strip():
            return f": {printable(value.strip()[:200])}"
    return ""


def _too_large(response: httpx.Response, what: str, cap: int) -> AnswerTooLarge:
    return AnswerTooLarge(f"{where(response.url)}: {what} larger than {size_text(cap)}")


def size_text(size: int) -> str:
    """`64 KiB`, `4 MiB`, `512 bytes`: the way caps are quoted."""
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if size >= 1 << shift and size % (1 << shift) == 0:
            return f"{size >> shift} {unit}"
    return f"{size} bytes"


class TransferStalled(AnswerError):
    pass


class TransferTooSlow(AnswerError):
    """The transfer was still going at its deadline."""


@dataclass(frozen=True)
class TransferLimits:
    """How long a transfer may take (defaults are for backups of a few GiB on a slow link)."""

    stall_seconds: float = 60.0
    stall_bytes: int = 1024
    """Fewer bytes than this in any `stall_seconds` is a stall: a sender that trickles a byte
    now and then never trips a read timeout, but trips this."""
    deadline: float = 4 * 3600.0
    """Seconds for the whole body, however steadily it comes."""


class Watchdog:
    """Ends a transfer that stalls or outlives its deadline: read its chunks through `guard()`.

    A chunk costs a counter and a clock reading, not a timer: one timer is armed for the moment
    the current window (or the deadline) runs out, and when it fires it first looks whether
    enough came meanwhile (then it re-arms for the new window). Only a wait for the next chunk
    is ever cancelled, never whatever the consumer awaits between two chunks (its disk writes):
    a window that runs out while the consumer is busy is judged when it asks for the next one.
    """

    def __init__(self, limits: TransferLimits, what: str = "the transfer") -> None:
        self.limits = limits
        self.what = what
        """How messages name the transfer."""
        self._loop = asyncio.get_running_loop()
        started = self._loop.time()
        self._deadline = started + limits.deadline
        self._window_opened = started
        self._window_bytes = 0
        self._timer: asyncio.TimerHandle | None = None
        self._waiting: asyncio.Task[object] | None = None
        """The task waiting for the next chunk, while it waits."""
        self._fired = False
        self.received = 0

    async def guard(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """`chunks`, counted; raises TransferStalled or TransferTooSlow."""
        iterator = aiter(chunks)
        task = asyncio.current_task()
        assert task is not None
        try:
            while True:
                if self._loop.time() >= self._due():
                    raise self._expired()
                if self._timer is None:
                    self._timer = self._loop.call_at(self._due(), self._check)
                self._waiting = task
                try:
                    chunk = await anext(iterator)
                except StopAsyncIteration:
                    return
                except asyncio.CancelledError:
                    if self._fired and task.uncancel() == 0:  # the cancel was ours alone
                        raise self._expired() from None
                    raise
                finally:
                    self._waiting = None
                self.received += len(chunk)
                self._window_bytes += len(chunk)
                if self._window_bytes >= self.limits.stall_bytes:
                    self._window_opened, self._window_bytes = self._loop.time(), 0
                yield chunk
        finally:
            if self._timer is not None:
                self._timer.cancel()

    def _due(self) -> float:
        return min(self._deadline, self._window_opened + self.limits.stall_seconds)

    def _check(self) -> None:
        self._timer = None
        if self._loop.time() < self._due():  # enough came since the timer was armed
            self._timer = self._loop.call_at(self._due(), self._check)
        elif self._waiting is not None:
            self._fired = True
            self._waiting.cancel()

    def _expired(self) -> AnswerError:
        if self._loop.time() >= self._deadline:
            return TransferTooSlow(
                f"{self.what} was still going after {self.limits.deadline:g} s"
                f" ({self.received} bytes)"
            )
        return TransferStalled(
            f"{self.what} stalled: less than {size_text(self.limits.stall_bytes)} in"
            f" {self.limits.stall_seconds:g} s, after {self.received} bytes"
        )
