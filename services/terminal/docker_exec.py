"""A command with a terminal in a Docker container: an exec with a TTY, on any engine.

Where the docker SDK hands over the exec's connection as a plain socket (an engine on a unix
socket or plain TCP), the socket is read and written on the event loop as an asyncio stream:
input is queued in order, and a reader that stops calling `read()` stops reading, so the engine
holds a flooding command back. Elsewhere (ssh:// engines, which the SDK reaches through a
shelled-out `ssh`, and TLS ones) the `docker` CLI runs the exec in a LocalPty instead.

The engine keeps an exec running when its connection closes, so `close()` hangs it up as a
terminal would: SIGHUP to the exec's process (container_commands.signal_exec), SIGKILL after
CLOSE_GRACE. A tmux client hung up detaches and leaves its session running.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

import docker

from services.core.errors import RoostError
from services.docker.engines import Engine
from services.terminal.backend import SessionError, TerminalSize
from services.terminal.container_commands import (
    ENGINE_ERRORS,
    EXEC_MARK,
    NOT_STARTED,
    engine_failure,
    finished_exec,
    new_mark,
    open_engine,
    require_running,
    run_with,
    signal_exec,
)
from services.terminal.local import CLOSE_GRACE, READ_SIZE, LocalPty

TERMINAL_ENVIRONMENT = {"TERM": "xterm-256color", "COLORTERM": "truecolor", "LANG": "C.UTF-8"}
_PLAIN_SOCKETS = ("http+docker://localhost", "http://")
"""How the SDK names the engines it reaches over a plain socket (unix, TCP without TLS)."""
CLI_RESIGNAL_SECONDS = 0.5

SHELL_SCRIPT = """\
command -v tmux >/dev/null 2>&1 && exec tmux new-session -A -s "$1"
command -v bash >/dev/null 2>&1 && exec bash
exec sh
"""


def shell_argv(session: str) -> list[str]:
    """The command for a shell in an assistant's container: tmux session `session` (made when
    missing; a hang-up only detaches from it) where the container has tmux, else bash, else sh.
    One `sh` decides inside the container, so opening a shell takes one exec."""
    return ["sh", "-c", SHELL_SCRIPT, "sh", session]


@dataclass(frozen=True)
class _Opened:
    client: docker.DockerClient
    exec_id: str | None
    """None where the docker CLI is to run the exec."""
    sock: socket.socket | None = None
    early: bytes = b""


class DockerExec:
    """`argv` with a terminal in `container` on `engine`; `via_cli` forces (True) or forbids
    (False) running it through the docker CLI, which by default is used only where the SDK
    cannot hand over the connection."""

    def __init__(
        self,
        engine: Engine,
        container: str,
        argv: Sequence[str],
        *,
        description: str | None = None,
        via_cli: bool | None = None,
        ends: Sequence[str] = (),
    ) -> None:
        if not argv:
            raise ValueError("no command to run")
        self.engine = engine
        self.container = container
        self.argv = list(argv)
        self.via_cli = via_cli
        self.ends = list(ends)
        """Run in the container once the command is hung up on `close()`: ends what would
        outlive the hang-up (a tmux session, which a hang-up only detaches from)."""
        name = PurePosixPath(argv[0]).name
        self.description = description or f"{name} in {container} on engine {engine.name}"
        self._size = TerminalSize(80, 24)
        self._reset()

    def _reset(self) -> None:
        self._mark = new_mark()
        self._client: docker.DockerClient | None = None
        self._exec_id: str | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._early = b""
        self._cli: LocalPty | None = None
        self._applied: TerminalSize | None = None
        self._resizer: asyncio.Task[None] | None = None
        self._exit_status: int | None = None
        self._closed = False

    async def start(self, size: TerminalSize) -> None:
        await self.close()  # what is left of an earlier session
        self._reset()
        self._size = size  # resize() may replace it while the exec is being set up
        try:
            opened = await asyncio.to_thread(self._open)
        except RoostError as error:
            raise SessionError(str(error)) from None
        self._client = opened.client
        if opened.exec_id is None:
            self._cli = LocalPty(self._cli_argv(), environ=os.environ, description=self.description)
            await self._cli.start(self._size)
            return
        self._exec_id, self._early = opened.exec_id, opened.early
        self._reader, self._writer = await asyncio.open_connection(sock=opened.sock)
        self._apply_size(opened.client, opened.exec_id)

    def _open(self) -> _Opened:
        """Check the container, then start the exec and take its connection (blocking)."""
        client = open_engine(self.engine)
        try:
            require_running(client, self.engine, self.container)
            if self.via_cli or (
                self.via_cli is None and not client.api.base_url.startswith(_PLAIN_SOCKETS)
            ):
                if shutil.which("docker") is None:
                    raise RoostError(
                        f"a terminal on engine {self.engine.name} needs the docker CLI,"
                        " which is not on PATH"
                    )
                return _Opened(client, None)
            exec_id = client.api.exec_create(
                self.container, self.argv, stdin=True, tty=True, environment=self._environment()
            )["Id"]
            sock, early = _take_socket(client.api.exec_start(exec_id, tty=True, socket=True))
        except ENGINE_ERRORS as error:
            client.close()
            raise engine_failure(self.engine, error) from None
        except BaseException:
            client.close()
            raise
        return _Opened(client, exec_id, sock, early)

    def _environment(self) -> dict[str, str]:
        return {**TERMINAL_ENVIRONMENT, EXEC_MARK: self._mark}

    def _cli_argv(self) -> list[str]:
        engine = self.engine
        if engine.context:
            target = ["--context", engine.context]
        else:
            target = ["--host", engine.host] if engine.host else []
        environment = [
            arg
            for name, value in self._environment().items()
            for arg in ("--env", f"{name}={value}")
        ]
        options = ["--interactive", "--tty", *environment]
        return ["docker", *target, "exec", *options, self.container, *self.argv]

    async def read(self) -> bytes:
        if self._cli is not None:
            return await self._cli.read()
        if self._early:
            data, self._early = self._early, b""
            return data
        if self._reader is None or self._closed:
            return b""
        try:
            data = await self._reader.read(READ_SIZE)
        except OSError as error:
            if self._closed:
                return b""
            raise SessionError(f"reading from {self.description}: {error}") from None
        if not data:
            await self._ended()
        return data

    async def _ended(self) -> None:
        """Note the exit status of an exec whose output ended; raise SessionError when its
        command never ran (the engine has already said why, in the output)."""
        client, exec_id = self._client, self._exec_id
        if self._closed or self._exit_status is not None or client is None or exec_id is None:
            return
        try:
            facts = await asyncio.to_thread(finished_exec, client, exec_id)
        except ENGINE_ERRORS:
            return
        if facts is None:
            return
        self._exit_status = int(facts.get("ExitCode") or 0)
        if self._exit_status in NOT_STARTED and not facts.get("Pid"):
            raise SessionError(
                f"cannot run {self.argv[0]!r} in {self.container}: not found or not executable"
            )

    def write(self, data: bytes) -> None:
        if self._cli is not None:
            self._cli.write(data)
        elif data and self._writer is not None and not self._writer.is_closing():
            self._writer.write(data)

    def resize(self, size: TerminalSize) -> None:
        self._size = size
        if self._cli is not None:
            self._cli.resize(size)
            self._signal_size_again()
        elif self._client is not None and self._exec_id is not None and not self._closed:
            self._apply_size(self._client, self._exec_id)

    def _signal_size_again(self) -> None:
        """The docker CLI watches SIGWINCH only once its exec has started (it passes the first
        size with the exec), so a resize in that moment was lost: signal the size once more a
        moment after each resize."""
        if self._resizer is None or self._resizer.done():
            self._resizer = asyncio.get_running_loop().create_task(self._resignal())

    async def _resignal(self) -> None:
        await asyncio.sleep(CLI_RESIGNAL_SECONDS)
        if self._cli is not None:
            self._cli.signal_size()

    def _apply_size(self, client: docker.DockerClient, exec_id: str) -> None:
        """Send the latest size to the engine, one request at a time (sizes that came and went
        while one was under way are skipped)."""
        if self._resizer is None or self._resizer.done():
            self._resizer = asyncio.get_running_loop().create_task(
                self._send_sizes(client, exec_id)
            )

    async def _send_sizes(self, client: docker.DockerClient, exec_id: str) -> None:
        while self._applied != self._size and not self._closed:
            size = self._size
            with contextlib.suppress(*ENGINE_ERRORS):  # it ended: read() reports that
                await asyncio.to_thread(
                    client.api.exec_resize, exec_id, height=size.rows, width=size.columns
                )
            self._applied = size

    @property
    def exit_status(self) -> int | None:
        if self._cli is not None:
            return self._cli.exit_status
        return self._exit_status

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._resizer is not None:
            self._resizer.cancel()
        running = self.exit_status is None
        if self._cli is not None:
            await self._cli.close()
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()
        client = self._client
        if client is None:
            return
        self._client = None
        status = await asyncio.to_thread(self._hang_up, client, running)
        if self._cli is None and status is not None:
            self._exit_status = status

    def _hang_up(self, client: docker.DockerClient, running: bool) -> int | None:
        """Hang up a command still running (blocking), and close the client; returns the exec's
        exit status where it is known. The CLI's exec has no id here: it is sent SIGHUP only."""
        try:
            if running:
                signal_exec(client, self.container, self._mark, "HUP", everything=False)
            if self._exec_id is None:
                return None
            facts = finished_exec(client, self._exec_id, within=CLOSE_GRACE)
            if facts is None:
                signal_exec(client, self.container, self._mark, "KILL", everything=False)
                facts = finished_exec(client, self._exec_id)
            return None if facts is None else int(facts.get("ExitCode") or 0)
        except ENGINE_ERRORS:
            return None
        finally:
            if self.ends:
                with contextlib.suppress(*ENGINE_ERRORS):  # the engine has gone: so has it
                    run_with(client, self.engine, self.container, self.ends, timeout=CLOSE_GRACE)
            client.close()


def _take_socket(hijacked: Any) -> tuple[socket.socket, bytes]:
    """The exec's connection as a socket of its own, and output already read with the HTTP
    response's headers (the SDK hands over its raw socket, not what its reader buffered)."""
    response = hijacked._response  # the SDK keeps the HTTP response alive on what it returns
    sock: socket.socket = hijacked._sock  # a SocketIO on a plain socket
    sock.setblocking(False)  # so the buffered reader hands over what it holds without waiting
    early = response.raw._fp.fp.read1(READ_SIZE) or b""  # as the SDK reaches the socket itself
    own = sock.dup()
    response.close()  # and with it the SDK's descriptor; `own` keeps the connection open
    return own, early
