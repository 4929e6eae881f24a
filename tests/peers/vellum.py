"""A loopback Vellum: the platform and any number of assistant runtimes on one HTTP server.

Every test and benchmark that speaks PROTOCOL.md talks to this instead of the real platform. It is
a real HTTP/1.1 server on 127.0.0.1 (an ephemeral port) in a background thread. Tests script what
it answers and read back every request it received:

    with VellumPeer() as peer:  # or take the `vellum_peer` fixture
        alpha = peer.runtime("alpha", bearer="secret")
        alpha.health = json_reply({"status": "degraded", "message": "db slow"})
        ...  # point the code under test at alpha.base_url or peer.url
        [request] = peer.requests_to(alpha.path + "/v1/health")

Routing is a table of (method, path pattern, handler); a handler turns a request into a `Reply`.
Closing is prompt: delayed and hanging answers wait on an event that closing sets, and open
connections are shut down so that every handler thread ends before `close()` returns.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import urlsplit

import pytest


@dataclass(frozen=True)
class Reply:
    """One scripted answer."""

    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    delay: float = 0.0
    """Seconds to wait before answering, e.g. to outlast a client's timeout."""
    hang_after_headers: bool = False
    """Send the headers, then none of the body until the peer closes."""
    location: str | None = None
    """Sent as the `Location` header."""


def json_reply(value: object, *, status: int = 200, delay: float = 0.0) -> Reply:
    return Reply(status, json.dumps(value).encode(), delay=delay)


def text_reply(text: str, *, status: int = 200) -> Reply:
    return Reply(status, text.encode(), "text/plain; charset=utf-8")


def huge_reply(size: int = 1 << 20) -> Reply:
    """A healthy answer padded past `size` bytes."""
    return json_reply({"status": "healthy", "padding": "x" * size})


def hanging_reply() -> Reply:
    return Reply(body=b'{"status": "healthy"}', hang_after_headers=True)


def redirect_to(location: str) -> Reply:
    """Redirect to the given path; a path that redirects to itself never ends."""
    return Reply(status=302, location=location)


HEALTHY = json_reply({"status": "healthy", "version": "1.2.3"})
UNAUTHORIZED = json_reply({"detail": "Authentication credentials were not provided."}, status=401)
FORBIDDEN = json_reply({"detail": "You do not have permission to perform this action."}, status=403)
NOT_FOUND = json_reply({"detail": "Not found."}, status=404)


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    target: str
    """The request target exactly as sent: path and query."""
    headers: Mapping[str, str]
    """Names in lower case."""
    body: bytes

    @property
    def path(self) -> str:
        return urlsplit(self.target).path


@dataclass
class Runtime:
    """One assistant runtime with its own base URL on the shared server; tests re-script it."""

    name: str
    base_url: str
    health: Reply = HEALTHY
    """The answer to `GET <base>/v1/health`."""
    managed_health: Reply = HEALTHY
    """The answer to `GET <base>/v1/assistants/<any id>/healthz/`."""
    bearer: str | None = None
    """When set, both answer 401 unless `Authorization: Bearer <bearer>` comes with the request."""

    @property
    def path(self) -> str:
        """The base URL's path, e.g. `/rt/alpha`."""
        return urlsplit(self.base_url).path

    def answer(self, request: RecordedRequest, reply: Reply) -> Reply:
        sent = request.headers.get("authorization")
        return reply if self.bearer is None or sent == f"Bearer {self.bearer}" else UNAUTHORIZED


@dataclass
class Platform:
    """The platform side, at the server's root URL: who may log in and what it lists."""

    organization_id: str = "org-1"
    session_tokens: set[str] = field(default_factory=set)
    api_keys: set[str] = field(default_factory=set)
    """Full keys, `vak_` included."""
    assistants: list[object] = field(default_factory=list)
    """The `results` of `GET /v1/assistants/`, sent as they are (malformed ones too)."""
    organizations_override: Reply | None = None
    """When set, `GET /v1/organizations/` answers this instead, without checking credentials."""
    assistants_override: Reply | None = None
    """When set, `GET /v1/assistants/` answers this instead, without checking credentials."""
    managed_health: Reply = HEALTHY
    """The answer to `GET /v1/assistants/<id>/healthz/` at the platform's own URL (a managed
    assistant's `runtimeUrl`), given the platform credentials."""

    def authorization(self, headers: Mapping[str, str]) -> Reply | None:
        """None when the headers may list assistants, else the refusal."""
        if headers.get("authorization") in {f"Bearer {key}" for key in self.api_keys}:
            return None
        if headers.get("x-session-token") not in self.session_tokens:
            return UNAUTHORIZED
        if headers.get("vellum-organization-id") != self.organization_id:
            return FORBIDDEN
        return None


Handler = Callable[["VellumPeer", RecordedRequest, re.Match[str]], Reply]


def _organizations(peer: VellumPeer, request: RecordedRequest, match: re.Match[str]) -> Reply:
    platform = peer.platform
    if platform.organizations_override is not None:
        return platform.organizations_override
    if request.headers.get("x-session-token") not in platform.session_tokens:
        return UNAUTHORIZED
    return json_reply({"results": [{"id": platform.organization_id, "name": "Roost tests"}]})


def _platform_assistants(peer: VellumPeer, request: RecordedRequest, match: re.Match[str]) -> Reply:
    platform = peer.platform
    if platform.assistants_override is not None:
        return platform.assistants_override
    refusal = platform.authorization(request.headers)
    return refusal or json_reply({"results": platform.assistants})


def _platform_health(peer: VellumPeer, request: RecordedRequest, match: re.Match[str]) -> Reply:
    platform = peer.platform
    return platform.authorization(request.headers) or platform.managed_health


def _direct_health(peer: VellumPeer, request: RecordedRequest, match: re.Match[str]) -> Reply:
    runtime = peer.runtimes.get(match["runtime"])
    return runtime.answer(request, runtime.health) if runtime else NOT_FOUND


def _managed_health(peer: VellumPeer, request: RecordedRequest, match: re.Match[str]) -> Reply:
    runtime = peer.runtimes.get(match["runtime"])
    return runtime.answer(request, runtime.managed_health) if runtime else NOT_FOUND


RUNTIME_PREFIX = "/rt"
_ROUTES: tuple[tuple[str, re.Pattern[str], Handler], ...] = (
    ("GET", re.compile(r"/v1/organizations/"), _organizations),
    ("GET", re.compile(r"/v1/assistants/"), _platform_assistants),
    ("GET", re.compile(r"/v1/assistants/[^/]+/healthz/"), _platform_health),
    ("GET", re.compile(rf"{RUNTIME_PREFIX}/(?P<runtime>[^/]+)/v1/health"), _direct_health),
    (
        "GET",
        re.compile(rf"{RUNTIME_PREFIX}/(?P<runtime>[^/]+)/v1/assistants/[^/]+/healthz/"),
        _managed_health,
    ),
)


class VellumPeer:
    """The server. Bound at construction (so `url` is known), serving between start and close."""

    def __init__(self) -> None:
        self.platform = Platform()
        self.runtimes: dict[str, Runtime] = {}
        self._requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = _Server(self)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread: threading.Thread | None = None

    def runtime(
        self,
        name: str,
        *,
        health: Reply = HEALTHY,
        managed_health: Reply = HEALTHY,
        bearer: str | None = None,
    ) -> Runtime:
        """A new runtime with its base URL at `<url>/rt/<name>`."""
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name) or name in self.runtimes:
            raise ValueError(f"runtime name {name!r} is not a new, URL-safe name")
        base_url = f"{self.url}{RUNTIME_PREFIX}/{name}"
        runtime = Runtime(name, base_url, health, managed_health, bearer)
        self.runtimes[name] = runtime
        return runtime

    @property
    def requests(self) -> tuple[RecordedRequest, ...]:
        """Every request received so far, in order of arrival."""
        with self._lock:
            return tuple(self._requests)

    def requests_to(self, path: str) -> list[RecordedRequest]:
        return [request for request in self.requests if request.path == path]

    def start(self) -> None:
        # A short poll interval: shutdown() waits for the serving loop to notice.
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="vellum-peer", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
        self._server.hang_up()
        self._server.server_close()  # joins the handler threads, which now all finish at once

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def serve(self, handler: _RequestHandler) -> None:
        """Record one request, route it, answer it (on the handler's thread)."""
        length = int(handler.headers.get("Content-Length") or 0)
        request = RecordedRequest(
            handler.command,
            handler.path,
            {name.lower(): value for name, value in handler.headers.items()},
            handler.rfile.read(length),
        )
        with self._lock:
            self._requests.append(request)
        reply = NOT_FOUND
        for method, pattern, route in _ROUTES:
            match = pattern.fullmatch(request.path)
            if match and method == request.method:
                reply = route(self, request, match)
                break
        self._send(handler, reply)

    def _send(self, handler: _RequestHandler, reply: Reply) -> None:
        if reply.delay and self._stopping.wait(reply.delay):
            handler.close_connection = True
            return
        handler.send_response(reply.status)
        handler.send_header("Content-Type", reply.content_type)
        handler.send_header("Content-Length", str(len(reply.body)))
        if reply.location is not None:
            handler.send_header("Location", reply.location)
        handler.end_headers()
        if reply.hang_after_headers:
            self._stopping.wait()
            handler.close_connection = True
            return
        handler.wfile.write(reply.body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, peer: VellumPeer) -> None:
        super().__init__(("127.0.0.1", 0), _RequestHandler)
        self.peer = peer
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def process_request(
        self, request: socket.socket | tuple[bytes, socket.socket], client_address: Any
    ) -> None:
        # Registered here, on the serving thread, so none is missed once serving has stopped.
        if isinstance(request, socket.socket):
            with self._connections_lock:
                self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: socket.socket | tuple[bytes, socket.socket]) -> None:
        if isinstance(request, socket.socket):
            with self._connections_lock:
                self._connections.discard(request)
        super().shutdown_request(request)

    def hang_up(self) -> None:
        """Shut down every open connection: handlers waiting on a keep-alive read return."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that time out hang up mid-answer: that is what many tests provoke on purpose.
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_GET(self) -> None:
        self.server.peer.serve(self)

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the peer records requests itself."""


@contextlib.contextmanager
def refused_url() -> Iterator[str]:
    """A loopback URL whose port is held but not listening: every connection is refused."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{held.getsockname()[1]}"


@pytest.fixture
def vellum_peer() -> Iterator[VellumPeer]:
    """A serving peer, closed after the test. Modules load it with `pytest_plugins`."""
    with VellumPeer() as peer:
        yield peer
