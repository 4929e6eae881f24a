"""The platform's terminal sessions (docs/protocol.md §5) for the loopback Vellum peer, on real
PTYs: every session runs a real program (by default an interactive `/bin/sh` with the prompt
`$ `) whose output is numbered by `seq`, kept, and streamed as Server-Sent Events.

    terminals = vellum_peer.terminals  # or take the `remote` fixture
    terminals.assistants.add("asst-1")  # which assistants have a terminal (others: 404)
    terminals.replay = True  # a re-opened stream sends everything again
    terminals.drop_streams()  # every open stream hangs up now
    terminals.sessions[sid].received  # every input byte the PTY got, in order

Misbehaviour is scripted through the attributes of `Terminals` (each documented there). The shell
runs with `TMUX_TMPDIR` pointing at a private directory, so `tmux` typed into it talks to the
peer's own tmux server (`terminals.tmux`), which closing kills. Closing stops every program and
ends every stream at once.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import random
import select
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Generator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from ptyprocess import PtyProcess

from services.terminal.tmux import TmuxServer, TmuxSocket
from services.vellum.platform import PlatformClient
from services.vellum.tokens import PlatformToken

if TYPE_CHECKING:
    from tests.peers.vellum import VellumPeer

API_KEY = "vak_terminal-secret-9"
ASSISTANT = "asst-1"
KINDS = ("create", "events", "input", "resize", "delete")
_NOISE = (
    b": keepalive",
    b"event: output",
    b"id: 41",
    b"data: {not json",
    b"data: []",
    b'data: {"message": "no payload"}',
    b'data: {"seq": -1, "data": "bm9pc2U="}',
    b'data: {"seq": 3, "data": "not base64!"}',
)


@dataclass(frozen=True)
class TerminalAnswer:
    """What a terminal request gets: JSON `body`, or `events` streamed without an end."""

    status: int
    body: object = None
    events: Generator[bytes, None, None] | None = None
    delay: float = 0.0


@dataclass(eq=False)
class PtySession:
    """One platform terminal session and the program behind it."""

    id: str
    assistant_id: str
    process: Any  # PtyProcess
    chunks: list[bytes] = field(default_factory=list)
    """Every output chunk, in order; a chunk's `seq` is its index."""
    received: bytearray = field(default_factory=bytearray)
    """Every input byte written to the PTY, in order."""
    sizes: list[tuple[int, int]] = field(default_factory=list)
    """(cols, rows) at creation, then after every resize."""
    delivered: int = 0
    """How many chunks some stream has sent: a re-opened stream starts there (unless replaying)."""
    ended: bool = False
    """The program exited: streams send what is left, then end; requests answer 404."""
    forgotten: bool = False
    """Deleted or forgotten: streams end at once; requests answer 404."""
    write_lock: threading.Lock = field(default_factory=threading.Lock)
    reader: threading.Thread | None = None

    @property
    def gone(self) -> bool:
        return self.ended or self.forgotten

    @property
    def output(self) -> bytes:
        return b"".join(self.chunks)


@dataclass(eq=False)
class Terminals:
    """The platform's terminal side. Attributes script it; tests may change them at any time."""

    argv: list[str] = field(default_factory=lambda: ["/bin/sh", "-i"])
    """What every new session runs."""
    environ: dict[str, str] = field(default_factory=dict)
    """Added to the program's environment (PATH and HOME come from the test's)."""
    assistants: set[str] = field(default_factory=set)
    """The assistants that have a terminal; every other id answers 404."""
    id_key: str = "session_id"
    """The key of the session id in the create answer (the protocol accepts `id` too)."""
    crlf: bool = False
    """SSE lines end with CRLF."""
    envelope: bool = False
    """Payloads come wrapped as `{"message": {...}}`."""
    noise: bool = False
    """Before every event: a keepalive comment, `event:` and `id:` lines, malformed payloads,
    `seq < 0`, and an empty event with the coming event's `seq`."""
    replay: bool = False
    """A re-opened stream starts at seq 0 instead of after what streams already sent."""
    drop_after: int | None = None
    """Every stream hangs up after sending this many events never sent before."""
    input_failure_rate: float = 0.0
    """This fraction of input requests answers 503 (drawn from `rng`), the PTY untouched."""
    rng: random.Random = field(default_factory=lambda: random.Random(7))
    scripted: dict[str, list[int]] = field(default_factory=lambda: {kind: [] for kind in KINDS})
    """The next requests of each kind answer these statuses, in order, doing nothing else."""
    delay: float = 0.0
    """Seconds before every terminal answer."""
    endless_line: bool = False
    """Every events stream sends one `data:` line that never ends (FLOOD_SIZE bytes, no line
    end), as a broken or hostile platform might."""
    failures: list[tuple[str, int]] = field(default_factory=list)
    """Every scripted or random failure answered: (kind, status)."""
    sessions: dict[str, PtySession] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.environ = {
            "PS1": "$ ",
            "ENV": "",
            "TERM": "xterm-256color",
            "LANG": "C.UTF-8",
            **self.environ,
        }
        self._changed = threading.Condition()
        """Guards the sessions and their state; notified on every change streams wait for."""
        self._drops = 0
        self.streams_opened = 0
        """Event streams opened so far: a client that reconnects opens another."""
        self._stopping = False
        self._serials = itertools.count(1)

    @cached_property
    def tmux_tmpdir(self) -> str:
        """The sessions' TMUX_TMPDIR (short: socket paths are limited to ~100 bytes)."""
        directory = tempfile.mkdtemp(prefix="roost-rt-")
        (Path(directory) / f"tmux-{os.getuid()}").mkdir(mode=0o700)
        return directory

    @property
    def tmux(self) -> TmuxServer:
        """The tmux server that `tmux` in a session talks to (its default socket)."""
        return TmuxServer(TmuxSocket(f"{self.tmux_tmpdir}/tmux-{os.getuid()}/default"))

    @property
    def latest(self) -> PtySession:
        """The session created last."""
        with self._changed:
            return list(self.sessions.values())[-1]

    def drop_streams(self) -> None:
        """Every open stream hangs up now (its session lives on)."""
        with self._changed:
            self._drops += 1
            self._changed.notify_all()

    def forget(self, session_id: str) -> None:
        """The platform loses the session: its program stops, its stream ends, it answers 404."""
        self._stop(self.sessions[session_id])

    def close(self) -> None:
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
            sessions = list(self.sessions.values())
        for session in sessions:
            self._stop(session)
        if "tmux_tmpdir" in self.__dict__:  # made only when a session or a test needed it
            subprocess.run(self.tmux.argv("kill-server"), capture_output=True, check=False)
            shutil.rmtree(self.tmux_tmpdir, ignore_errors=True)

    # -- requests --------------------------------------------------------------------------------

    def answer(
        self,
        assistant_id: str,
        session_id: str | None,
        action: str | None,
        body: bytes,
    ) -> TerminalAnswer:
        """The answer to one authorized terminal request: create (no session), events, input or
        resize (`action`), or delete (a session without an action)."""
        kind = "create" if session_id is None else action or "delete"
        status = self._failure(kind)
        if status is not None:
            return TerminalAnswer(status, {"detail": "scripted failure"}, delay=self.delay)
        if assistant_id not in self.assistants:
            return TerminalAnswer(404, {"detail": "Not found."}, delay=self.delay)
        if session_id is None:
            return self._create(assistant_id, body)
        with self._changed:
            session = self.sessions.get(session_id)
        if session is None or session.gone or session.assistant_id != assistant_id:
            return TerminalAnswer(404, {"detail": "Not found."}, delay=self.delay)
        if kind == "events":
            events = _endless_line() if self.endless_line else self._stream(session)
            return TerminalAnswer(200, events=events, delay=self.delay)
        if kind == "input":
            return self._input(session, body)
        if kind == "resize":
            return self._resize(session, body)
        self._stop(session)
        return TerminalAnswer(200, {}, delay=self.delay)

    def _failure(self, kind: str) -> int | None:
        with self._changed:
            script = self.scripted.setdefault(kind, [])
            status = script.pop(0) if script else None
            if status is None and kind == "input" and self.input_failure_rate:
                status = 503 if self.rng.random() < self.input_failure_rate else None
            if status is not None:
                self.failures.append((kind, status))
            return status

    def _create(self, assistant_id: str, body: bytes) -> TerminalAnswer:
        size = json_object(body)
        cols, rows = size.get("cols"), size.get("rows")
        if not (isinstance(cols, int) and isinstance(rows, int) and cols > 0 and rows > 0):
            return TerminalAnswer(400, {"detail": "cols and rows are required"}, delay=self.delay)
        environment = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/"),
            "TMUX_TMPDIR": self.tmux_tmpdir,
            **self.environ,
        }
        try:
            process = PtyProcess.spawn(
                self.argv, cwd=self.tmux_tmpdir, env=environment, dimensions=(rows, cols)
            )
        except OSError as error:
            return TerminalAnswer(500, {"detail": f"cannot start: {error}"}, delay=self.delay)
        session = PtySession(f"ts-{next(self._serials)}", assistant_id, process)
        session.sizes.append((cols, rows))
        with self._changed:
            self.sessions[session.id] = session
        session.reader = threading.Thread(
            target=self._read, args=(session,), name=f"pty-{session.id}", daemon=True
        )
        session.reader.start()
        return TerminalAnswer(201, {self.id_key: session.id}, delay=self.delay)

    def _input(self, session: PtySession, body: bytes) -> TerminalAnswer:
        data = json_object(body).get("data")
        if not isinstance(data, str):
            return TerminalAnswer(400, {"detail": "data must be text"}, delay=self.delay)
        encoded = data.encode()
        with session.write_lock:  # held while closing too: the descriptor is never reused here
            try:
                if session.forgotten:
                    raise OSError("the session is gone")
                _write_all(session.process.fd, encoded)
            except OSError:
                return TerminalAnswer(404, {"detail": "Not found."}, delay=self.delay)
            session.received += encoded
        return TerminalAnswer(200, {}, delay=self.delay)

    def _resize(self, session: PtySession, body: bytes) -> TerminalAnswer:
        size = json_object(body)
        cols, rows = size.get("cols"), size.get("rows")
        if not (isinstance(cols, int) and isinstance(rows, int) and cols > 0 and rows > 0):
            return TerminalAnswer(400, {"detail": "cols and rows are required"}, delay=self.delay)
        session.process.setwinsize(rows, cols)
        with self._changed:
            session.sizes.append((cols, rows))
        return TerminalAnswer(200, {}, delay=self.delay)

    # -- the program and its output -------------------------------------------------------------

    def _read(self, session: PtySession) -> None:
        """Keep the program's output (on the session's own thread) until it exits or stops."""
        fd = session.process.fd
        while not session.forgotten:
            if not select.select([fd], [], [], 0.05)[0]:
                continue
            try:
                data = os.read(fd, 1 << 16)
            except OSError:  # EIO: the program and its children are gone
                data = b""
            with self._changed:
                if data:
                    session.chunks.append(data)
                else:
                    session.ended = True
                self._changed.notify_all()
            if not data:
                return

    def _stop(self, session: PtySession) -> None:
        with self._changed:
            already = session.forgotten
            session.forgotten = True
            self._changed.notify_all()
        if already:
            return
        if session.reader is not None:
            session.reader.join()
        session.process.terminate(force=True)
        with session.write_lock:
            session.process.fileobj.close()  # owns the descriptor
            session.process.closed = True  # so ptyprocess's own close (it sleeps) never runs

    def _stream(self, session: PtySession) -> Generator[bytes, None, None]:
        """The session's output as SSE, until it ends, is dropped, or the peer closes."""
        with self._changed:
            self.streams_opened += 1
            generation = self._drops
            position = 0 if self.replay else session.delivered
        fresh = 0
        while self.drop_after is None or fresh < self.drop_after:
            data = self._wait_for_chunk(session, position, generation)
            if data is None:
                return
            with self._changed:
                if position >= session.delivered:
                    fresh += 1
                    session.delivered = position + 1
            yield self._event(position, data)
            position += 1

    def _wait_for_chunk(self, session: PtySession, seq: int, generation: int) -> bytes | None:
        """Chunk `seq` once there is one; None when the stream ends first."""
        with self._changed:
            while True:
                if self._stopping or generation != self._drops or session.forgotten:
                    return None
                if seq < len(session.chunks):
                    return session.chunks[seq]
                if session.ended:
                    return None
                self._changed.wait()

    def _event(self, seq: int, data: bytes) -> bytes:
        payload: dict[str, object] = {"seq": seq, "data": base64.b64encode(data).decode()}
        lines: list[bytes] = []
        if self.noise:
            lines += [*_NOISE, f'data: {{"seq": {seq}, "data": ""}}'.encode()]
        lines.append(
            b"data: " + json.dumps({"message": payload} if self.envelope else payload).encode()
        )
        end = b"\r\n" if self.crlf else b"\n"
        # A blank line after each `data:` line: every payload is its own event.
        return b"".join(line + end + (end if line.startswith(b"data:") else b"") for line in lines)


FLOOD_SIZE = 32 << 20
"""More than any cap roost has, and few enough that a client without one survives the test."""


def _endless_line() -> Generator[bytes, None, None]:
    yield b"data: "
    block = b"A" * (1 << 16)
    for _ in range(FLOOD_SIZE // len(block)):
        yield block


def json_object(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


@dataclass(frozen=True)
class Remote:
    """A serving peer whose platform accepts `API_KEY` and gives `ASSISTANT` a terminal, and a
    platform client for it."""

    peer: VellumPeer
    terminals: Terminals
    http: httpx.AsyncClient
    platform: PlatformClient

    def requests(self, kind: str) -> list[str]:
        """The paths of the terminal requests of one kind received so far (see KINDS)."""
        matches: dict[str, Callable[[str, str], bool]] = {
            "create": lambda method, path: method == "POST" and path.endswith("/sessions/"),
            "events": lambda method, path: path.endswith("/events/"),
            "input": lambda method, path: path.endswith("/input/"),
            "resize": lambda method, path: path.endswith("/resize/"),
            "delete": lambda method, path: method == "DELETE",
        }
        return [
            request.path
            for request in self.peer.requests
            if "/terminal/sessions/" in request.path and matches[kind](request.method, request.path)
        ]


async def until(condition: Callable[[], bool], what: str, *, within: float = 10.0) -> None:
    """Let the loop run until `condition` holds; fail after `within` s naming `what`."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


@pytest.fixture
async def remote(vellum_peer: VellumPeer) -> AsyncIterator[Remote]:
    """The serving peer set up for terminal tests (see `Remote`)."""
    vellum_peer.platform.api_keys.add(API_KEY)
    vellum_peer.terminals.assistants.add(ASSISTANT)
    async with httpx.AsyncClient() as http:
        token = PlatformToken(API_KEY, Path("/nowhere/platform-token"))
        yield Remote(
            vellum_peer, vellum_peer.terminals, http, PlatformClient(http, vellum_peer.url, token)
        )
