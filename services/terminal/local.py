"""A command on this machine in a pseudo-terminal (ptyprocess), read without threads.

The PTY's file descriptor is non-blocking and watched by the event loop: output is read when
it is readable, and input that the PTY cannot take at once waits in order until it can. A
reader that stops calling `read()` stops reading the PTY, so a program flooding output is
held back by the kernel instead of filling memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import shutil
import signal
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from ptyprocess import PtyProcess

from services.terminal.backend import SessionError, TerminalSize

READ_SIZE = 1 << 16
CLOSE_GRACE = 2.0
"""Seconds a program has to exit after SIGHUP before it is killed."""


def terminal_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment for a program in a pane: what an xterm with 256 colours sets."""
    env = dict(environ)
    env["TERM"] = "xterm-256color"
    env["COLORTERM"] = "truecolor"
    env.setdefault("LANG", "C.UTF-8")
    for variable in ("TMUX", "TMUX_PANE", "COLUMNS", "LINES"):
        env.pop(variable, None)
    return env


class LocalPty:
    """`argv` in a new PTY on this machine."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        environ: Mapping[str, str],
        cwd: str | None = None,
        description: str | None = None,
    ) -> None:
        if not argv:
            raise ValueError("no command to run")
        self.argv = list(argv)
        self.environ = environ
        self.cwd = cwd
        self.description = description or f"{Path(argv[0]).name} on this machine"
        self._process: PtyProcess | None = None
        self._fd = -1
        self._outgoing = bytearray()
        self._writer: asyncio.Task[None] | None = None
        self._exit_status: int | None = None
        self._closed = False

    async def start(self, size: TerminalSize) -> None:
        if shutil.which(self.argv[0], path=self.environ.get("PATH")) is None:
            raise SessionError(f"cannot run {self.argv[0]!r}: no such command")
        try:
            self._process = PtyProcess.spawn(
                self.argv,
                cwd=self.cwd,
                env=terminal_environment(self.environ),
                dimensions=(size.rows, size.columns),
            )
        except OSError as error:
            raise SessionError(f"cannot run {self.argv[0]!r}: {error.strerror or error}") from None
        self._fd = self._process.fd
        os.set_blocking(self._fd, False)

    async def read(self) -> bytes:
        while not self._closed and self._fd >= 0:
            try:
                data = os.read(self._fd, READ_SIZE)
            except BlockingIOError:
                await self._when(readable=True)
                continue
            except OSError as error:
                if error.errno != errno.EIO:  # EIO: the program and its children are gone
                    raise SessionError(f"reading from {self.description}: {error}") from None
                data = b""
            if not data:
                await self._reap()
            return data
        return b""

    async def _when(self, *, readable: bool) -> None:
        """Wait until the PTY can be read (or written)."""
        fd = self._fd
        loop = asyncio.get_running_loop()
        ready = loop.create_future()
        add, remove = (
            (loop.add_reader, loop.remove_reader)
            if readable
            else (loop.add_writer, loop.remove_writer)
        )

        def wake() -> None:
            if not ready.done():
                ready.set_result(None)

        add(fd, wake)
        try:
            await ready
        finally:
            remove(fd)

    def write(self, data: bytes) -> None:
        if self._closed or self._fd < 0 or not data:
            return
        self._outgoing += data
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        """Write the queued input in order; wait for room when the PTY is full."""
        while self._outgoing and not self._closed:
            try:
                written = os.write(self._fd, self._outgoing)
            except BlockingIOError:
                await self._when(readable=False)
                continue
            except OSError:
                self._outgoing.clear()  # the program is gone; read() reports the end
                break
            del self._outgoing[:written]

    def resize(self, size: TerminalSize) -> None:
        if self._process is not None and not self._closed:
            with contextlib.suppress(OSError):
                self._process.setwinsize(size.rows, size.columns)

    def signal_size(self) -> None:
        """Tell the program its size again (SIGWINCH to its process group), for programs that
        can miss the signal the kernel sends on a change (it sends none when nothing changed)."""
        if self._process is not None and not self._closed and self._exit_status is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._process.pid, signal.SIGWINCH)

    async def _reap(self) -> None:
        process = self._process
        if process is None or self._exit_status is not None:
            return
        await asyncio.to_thread(process.wait)
        self._exit_status = _status(process)

    @property
    def exit_status(self) -> int | None:
        return self._exit_status

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        process = self._process
        if process is None:
            return
        if self._exit_status is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGHUP)
            self._exit_status = await asyncio.to_thread(_wait_or_kill, process)
        process.fileobj.close()  # owns the descriptor
        process.closed = True  # so ptyprocess's own close (it sleeps) never runs
        self._fd = -1


def _status(process: PtyProcess) -> int:
    if process.signalstatus is not None:
        return 128 + int(process.signalstatus)
    return int(process.exitstatus or 0)


def _wait_or_kill(process: PtyProcess) -> int:
    """Wait up to CLOSE_GRACE for the program to exit after SIGHUP, then kill it."""
    deadline = time.monotonic() + CLOSE_GRACE
    while process.isalive():
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            break
        time.sleep(0.02)
    return _status(process)
