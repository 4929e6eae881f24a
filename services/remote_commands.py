"""Commands run to completion in a managed assistant, through a throwaway terminal session
(PROTOCOL.md section 5): `roost exec` there, and the tmux sessions it holds.

The platform offers no exec, only terminals, so a command is typed into a fresh shell as one line
that echoes a start sentinel, runs the command, saves `$?`, echoes an end sentinel and an exit-code
marker, then exits. The shell echoes that line back, so the sentinels appear twice; in the echo the
start sentinel and the exit marker are followed by a quote, not by a line end or digits, so the
output is what follows the last start sentinel on a line of its own (up to the end sentinel), and
the exit code is the number on the marker's line. The
session is deleted as soon as the marker is read, or when the timeout strikes; the `exit` at the
end of the line ends the shell even when that deletion never reaches the platform.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from services.execs import DEFAULT_TIMEOUT, TIMEOUT_EXIT, ExecResult
from services.platform import PlatformClient
from services.terminal.backend import LinkNotice, SessionError, TerminalSize
from services.terminal.remote import RemoteSession, strip_ansi
from services.tmux import LIST_FORMAT, NO_SERVER, TmuxSession, parse_sessions

EXEC_SIZE = TerminalSize(120, 24)
LIST_TIMEOUT = 4.0
"""A listing gives up after this long, so its session is deleted within 5 s."""
_FIELD_SEPARATOR = "\x1f"  # what LIST_FORMAT puts between fields
"""What tmux says when no server listens (as services.tmux reads it)."""
_MARKER_SPAN = 64
"""Bytes of earlier output searched again with each chunk: an exit marker may straddle two."""


@dataclass(frozen=True)
class Sentinels:
    """The markers around one command's output; `token` makes them unique to it."""

    token: str

    @property
    def start(self) -> str:
        return f"__ROOST_START_{self.token}__"

    @property
    def end(self) -> str:
        return f"__ROOST_END_{self.token}__"

    @property
    def exit(self) -> str:
        return f"__ROOST_EXIT_{self.token}_"

    def line(self, command: str) -> str:
        """The one line typed into the shell to run `command` (already quoted for sh)."""
        return (
            f"echo '{self.start}'; {command}; __ec=$?; "
            f"echo '{self.end}'; echo '{self.exit}'$__ec; exit $__ec"
        )

    def finished(self, raw: bytes) -> bool:
        """Whether the exit-code marker has arrived, with its line end (so all its digits)."""
        return re.search(self._exit_pattern.encode(), raw) is not None

    def result(self, raw: bytes, *, timed_out: bool = False) -> ExecResult:
        """The command's output and exit code in what the session printed."""
        text = strip_ansi(raw.decode("utf-8", "replace")).replace("\r\n", "\n")
        started = text.rfind(self.start + "\n")
        body = text[started + len(self.start) + 1 :] if started >= 0 else ""
        ended = body.find(self.end)
        output = (body if ended < 0 else body[:ended]).encode()
        marker = re.search(self._exit_pattern, text)
        if timed_out or marker is None:  # no marker: only when it timed out
            return ExecResult(TIMEOUT_EXIT, output, timed_out=True)
        return ExecResult(int(marker[1]), output)

    @property
    def _exit_pattern(self) -> str:
        return rf"{self.exit}(\d+)\r?\n"


async def remote_exec(
    http: httpx.AsyncClient,
    platform: PlatformClient,
    assistant_id: str,
    argv: Sequence[str],
    *,
    timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109 (running out of time is a result here)
) -> ExecResult:
    """`argv` run by the shell of a new session in `assistant_id` (stdout and stderr merged).

    A command still running after `timeout` seconds is abandoned with its session: exit code 124
    and what it printed so far. Raises SessionError when the platform cannot run it.
    """
    if not argv:
        raise ValueError("no command to run")
    return await _run(http, platform, assistant_id, shlex.join(argv), timeout)


async def remote_tmux_sessions(
    http: httpx.AsyncClient,
    platform: PlatformClient,
    assistant_id: str,
    *,
    timeout: float = LIST_TIMEOUT,  # noqa: ASYNC109 (the session must go within 5 s)
) -> tuple[TmuxSession, ...]:
    """The tmux sessions of the default tmux server in `assistant_id` (none without a server).

    Raises SessionError when the listing fails (tmux missing, no answer in time).
    """
    # printf makes the separators in the shell: a raw \x1f typed into readline is its undo key.
    fields = LIST_FORMAT.replace(_FIELD_SEPARATOR, "\\037")
    command = f"tmux list-sessions -F \"$(printf '{fields}')\""
    result = await _run(http, platform, assistant_id, command, timeout)
    text = result.stdout.decode("utf-8", "replace")
    if result.timed_out:
        raise SessionError(f"tmux list-sessions in {assistant_id}: no answer within {timeout:g} s")
    if result.exit_code != 0:
        if NO_SERVER.search(text):
            return ()
        last_line = text.strip().rpartition("\n")[2] or f"exit status {result.exit_code}"
        raise SessionError(f"tmux list-sessions in {assistant_id}: {last_line}")
    listed = [line for line in text.splitlines() if line.count(_FIELD_SEPARATOR) == 5]
    try:
        return parse_sessions("\n".join(listed))
    except ValueError:
        raise SessionError(f"tmux list-sessions in {assistant_id}: unexpected output") from None


async def _run(
    http: httpx.AsyncClient,
    platform: PlatformClient,
    assistant_id: str,
    command: str,
    seconds: float,
) -> ExecResult:
    """`command` (a line for sh) in a throwaway session, read with sentinels."""
    sentinels = Sentinels(secrets.token_hex(6))
    session = RemoteSession(
        http,
        platform,
        assistant_id,
        description=f"exec in {assistant_id}",
        startup_line=sentinels.line(command),
    )
    raw = bytearray()
    try:
        async with asyncio.timeout(seconds):
            await session.start(EXEC_SIZE)
            while True:
                chunk = await session.read()
                if isinstance(chunk, LinkNotice):
                    continue
                if not chunk:
                    raise SessionError(f"the session in {assistant_id} ended before the command")
                seen = len(raw)
                raw += chunk
                if sentinels.finished(bytes(raw[max(0, seen - _MARKER_SPAN) :])):
                    break
    except TimeoutError:
        return sentinels.result(bytes(raw), timed_out=True)
    finally:
        await session.close()
    return sentinels.result(bytes(raw))
