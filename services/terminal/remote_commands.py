"""Commands run to completion in a managed assistant, through a throwaway terminal session
(docs/protocol.md §5): `roost exec` there, and the tmux sessions it holds.

The platform offers no exec, only terminals, so a command is typed into a fresh shell as one line
that echoes a start sentinel, runs the command, saves `$?`, echoes an end sentinel and an exit-code
marker, then exits. The shell echoes that line back, so the sentinels appear twice; in the echo the
start sentinel and the exit marker are followed by a quote, not by a line end or digits, so the
output is what follows the last start sentinel on a line of its own (up to the end sentinel), and
the exit code is the number on the marker's line. The
session is deleted as soon as the marker is read, or when the timeout strikes; the `exit` at the
end of the line ends the shell even when that deletion never reaches the platform.

Output is held in a `Transcript`: of a command that prints more than `max_output` bytes only the
last ones are kept, and the result says how many went (`ExecResult.dropped`).
"""

from __future__ import annotations

import asyncio
import re
import secrets
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, replace

import httpx

from services.terminal.backend import LinkNotice, SessionError, TerminalSize
from services.terminal.execs import DEFAULT_TIMEOUT, TIMEOUT_EXIT, ExecResult
from services.terminal.remote import RemoteSession, strip_ansi
from services.terminal.tmux import LIST_FORMAT, NO_SERVER, TmuxSession, parse_sessions
from services.vellum.platform import PlatformClient

EXEC_SIZE = TerminalSize(120, 24)
LIST_TIMEOUT = 4.0
"""A listing gives up after this long, so its session is deleted within 5 s."""
_FIELD_SEPARATOR = "\x1f"  # what LIST_FORMAT puts between fields
"""What tmux says when no server listens (as services.terminal.tmux reads it)."""
_MARKER_SPAN = 64
"""Bytes of earlier output searched again with each chunk: an exit marker may straddle two."""
MAX_OUTPUT = 4 << 20
"""Bytes of a command's output kept (the last ones); parsing the result takes a few times this."""


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

    @property
    def start_line(self) -> re.Pattern[bytes]:
        """The start sentinel as the command's output shows it: on a line of its own."""
        return re.compile(re.escape(self.start.encode()) + rb"\r?\n")


class Transcript:
    """What a command's session printed, in bounded memory: before the start sentinel's line
    only a short tail (a prompt and the echoed line), after it the command's output, of which
    only the last `max_output` bytes are kept."""

    def __init__(self, sentinels: Sentinels, max_output: int = MAX_OUTPUT) -> None:
        self.sentinels = sentinels
        self.max_output = max_output
        self.dropped = 0
        """Bytes of output left out, from the front."""
        self._lead = b""
        self._output: bytearray | None = None
        """None until the start sentinel's line has come."""
        self._recent = b""

    def add(self, chunk: bytes) -> None:
        self._recent = self._recent[-_MARKER_SPAN:] + chunk
        if self._output is None:
            lead = self._lead + chunk
            started = self.sentinels.start_line.search(lead)
            if started is None:
                self._lead = lead[-_MARKER_SPAN:]  # enough to find a sentinel split in two
                return
            self._lead, self._output = lead[: started.end()], bytearray(lead[started.end() :])
        else:
            self._output += chunk
        excess = len(self._output) - self.max_output
        if excess > self.max_output // 4:  # trimmed now and then, not on every chunk
            del self._output[:excess]
            self.dropped += excess

    @property
    def finished(self) -> bool:
        """Whether the exit-code marker has arrived (see `Sentinels.finished`)."""
        return self._output is not None and self.sentinels.finished(self._recent)

    def result(self, *, timed_out: bool = False) -> ExecResult:
        output = self._output or bytearray()
        excess = max(0, len(output) - self.max_output)
        raw = self._lead + bytes(memoryview(output)[excess:])
        parsed = self.sentinels.result(raw, timed_out=timed_out)
        return replace(parsed, dropped=self.dropped + excess)


async def remote_exec(
    http: httpx.AsyncClient,
    platform: PlatformClient,
    assistant_id: str,
    argv: Sequence[str],
    *,
    timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109 (running out of time is a result here)
    max_output: int = MAX_OUTPUT,
) -> ExecResult:
    """`argv` run by the shell of a new session in `assistant_id` (stdout and stderr merged).

    A command still running after `timeout` seconds is abandoned with its session: exit code 124
    and what it printed so far. Of more than `max_output` bytes of output only the last are kept.
    Raises SessionError when the platform cannot run it.
    """
    if not argv:
        raise ValueError("no command to run")
    return await _run(http, platform, assistant_id, shlex.join(argv), timeout, max_output)


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
    max_output: int = MAX_OUTPUT,
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
    transcript = Transcript(sentinels, max_output)
    try:
        async with asyncio.timeout(seconds):
            await session.start(EXEC_SIZE)
            while not transcript.finished:
                chunk = await session.read()
                if isinstance(chunk, LinkNotice):
                    continue
                if not chunk:
                    raise SessionError(f"the session in {assistant_id} ended before the command")
                transcript.add(chunk)
    except TimeoutError:
        return transcript.result(timed_out=True)
    finally:
        await session.close()
    return transcript.result()
