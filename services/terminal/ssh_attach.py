"""A tmux session on a host, in a pane, over roost's multiplexed ssh connection.

The pane runs `ssh -t HOST tmux -u attach-session ...` in a local PTY (`LocalPty`): the ssh
client joins the host's master connection (`services.hosts.ssh.Ssh`: ControlMaster), so opening
a pane costs a round trip, not a handshake. Watching attaches read-only, with the window's size
kept exactly as a local watch does (`tmux.attach_args`), and `write()` sends nothing at all.
`-u` makes the remote tmux client draw UTF-8 whatever the host's locale (ssh passes none): the
pane always is.

A new shell on a host is a tmux session of its own there (`Attacher.new_shell` names it), made
when the pane starts and killed when it closes, so its history can be read and a dropped
connection re-joins it.

Reconnecting: ssh exits with 255 when the connection fails (the master died, the network went,
sshd stopped); any other exit is tmux's (detached, or the session ended) and ends the pane. After
a drop, `read()` returns a `LinkNotice` per attempt (the pane's status line shows it), waits the
attempt's backoff, asks the host whether the session still exists (one ssh round trip, which also
brings the master connection back) and attaches again: tmux redraws the whole screen, so the view
comes back whole. A session that no longer exists gives up at once (`SessionLost`, saying so);
so does the last failed attempt. An attempt that brings output back starts the count again.
"""

from __future__ import annotations

import asyncio
import contextlib
import shlex
from collections.abc import Mapping, Sequence

from services.core.config import Host
from services.core.errors import RoostError
from services.core.mode import Mode
from services.core.safe_text import printable
from services.hosts.ssh import HostError, Ssh, SshResult
from services.terminal.backend import LinkNotice, SessionError, SessionLost, TerminalSize
from services.terminal.host_tmux import tmux_words
from services.terminal.local import LocalPty
from services.terminal.tmux import (
    attach_args,
    parse_window,
    supports_watch_flags,
    window_args,
)

SSH_FAILED = 255
"""ssh's own exit status when the connection fails (the remote command's never is, for tmux)."""
QUESTION_TIMEOUT = 10.0
"""Seconds for a question to the host's tmux (is the session there, new-session, kill-session)."""
QUESTION_LIMIT = 64 << 10
"""Bytes of an answer to such a question at most."""
NO_TMUX = 127
GONE = 3
"""Exit statuses of the look before attaching: no tmux there, no such session."""
BACKOFF = (0.5, 1.0, 2.0, 4.0, 8.0)
"""Seconds before each reconnect attempt: about a quarter of a minute in all."""


class SessionGone(SessionError):
    """The tmux session is not on the host (any more)."""


class SshTmuxAttach:
    """A tmux client on `host` attached to `session` over ssh, in `mode`.

    `create` makes the session when it does not exist (a new shell's, or a revived one's),
    running tmux's default command there; `ends_with_pane` kills it on `close()` (a new shell's,
    which is the operator's own and ends with its pane)."""

    def __init__(
        self,
        ssh: Ssh,
        host: Host,
        session: str,
        mode: Mode,
        environ: Mapping[str, str],
        *,
        create: bool = False,
        ends_with_pane: bool = False,
        backoff: Sequence[float] = BACKOFF,
    ) -> None:
        self.ssh = ssh
        self.host = host
        self.session = session
        self.watch = mode is Mode.WATCH
        self.environ = environ
        self.create = create
        self.ends_with_pane = ends_with_pane
        self.backoff = tuple(backoff)
        self.description = printable(f"tmux session {session} on {host.name}")
        self._size = TerminalSize(80, 24)
        self._client: LocalPty | None = None
        self._exit_status: int | None = None
        self._closed = False
        self._dropped: str | None = None
        """Why the connection dropped, while it is down."""
        self._attempt = 0
        self._announced = False
        """The current attempt's LinkNotice went out."""

    # -- the TerminalBackend interface ---------------------------------------------------------

    async def start(self, size: TerminalSize) -> None:
        if self._client is not None:
            await self._client.close()
        self._size = size
        self._closed = False
        self._client, self._exit_status = None, None
        self._dropped, self._attempt, self._announced = None, 0, False
        try:
            await self._attach(create=self.create)
        except HostError as error:
            raise SessionError(str(error)) from None

    async def read(self) -> bytes | LinkNotice:
        while not self._closed:
            if self._dropped is not None:
                notice = await self._relink()
                if notice is not None:
                    return notice
                continue
            client = self._client
            if client is None:
                return b""
            data = await client.read()
            if data:
                self._attempt = 0  # the link carried output: a later drop starts counting again
                return data
            status = client.exit_status
            if status != SSH_FAILED or self._closed:
                self._exit_status = status
                return b""
            await client.close()
            self._client = None
            self._dropped = f"the ssh connection to {self.host.name} dropped"
        return b""

    def write(self, data: bytes) -> None:
        if not self.watch and self._client is not None:
            self._client.write(data)

    def resize(self, size: TerminalSize) -> None:
        self._size = size
        if self._client is not None:
            self._client.resize(size)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        client, self._client = self._client, None
        if client is not None:
            await client.close()
        if self.ends_with_pane:
            with contextlib.suppress(RoostError):
                await self._ask("kill-session", "-t", f"={self.session}")

    @property
    def exit_status(self) -> int | None:
        return self._exit_status

    # -- attaching and reattaching -------------------------------------------------------------

    async def _relink(self) -> LinkNotice | None:
        """One step of reconnecting: announce the next attempt, or wait and make it. Returns
        the notice to pass on (None: carry on reading). Raises SessionLost when giving up."""
        attempts = len(self.backoff)
        if not self._announced:
            self._attempt += 1
            if self._attempt > attempts:
                raise SessionLost(f"lost the connection to {self.description}: {self._dropped}")
            self._announced = True
            return LinkNotice(False, self._attempt, attempts, self._dropped or "")
        await asyncio.sleep(self.backoff[self._attempt - 1])
        self._announced = False
        if self._closed:
            return None
        try:
            await self._attach(create=False)
        except HostError as error:
            self._dropped = str(error)
            return None
        except SessionGone:  # reattaching can never work: say so now
            raise SessionLost(
                f"the tmux session {self.session!r} no longer exists on {self.host.name}"
            ) from None
        self._dropped = None
        return LinkNotice(True)

    async def _attach(self, *, create: bool) -> None:
        """Check the session is there (making it when `create`), then start a client attached
        to it. Raises HostError when the host cannot be reached, SessionError when the session
        cannot be had (SessionGone: it does not exist)."""
        exists, version, shown = await self._look()
        if not exists:
            if not create:
                raise SessionGone(f"no tmux session {self.session!r} on {self.host.name}")
            columns, rows = str(self._size.columns), str(self._size.rows)
            made = await self._ask(
                "new-session", "-d", "-s", self.session, "-x", columns, "-y", rows
            )
            if made.exit_code != 0:
                raise SessionError(
                    f"cannot start tmux session {self.session!r} on {self.host.name}: "
                    f"{made.stderr.strip()}"
                )
            if self.watch:  # its window, as it is now
                exists, version, shown = await self._look()
        args = attach_args(self.session, watch=self.watch, watch_flags=False)
        if self.watch and supports_watch_flags(version):
            window = parse_window(shown)
            args = attach_args(self.session, watch=True, watch_flags=True, window=window)
        argv = self.ssh.argv(self.host, *tmux_words(self.host, *args), tty=True)
        client = LocalPty(argv, environ=self.environ, description=self.description)
        await client.start(self._size)
        self._client = client

    async def _look(self) -> tuple[bool, str, str]:
        """In one round trip: whether the session is there, tmux's version there and, when
        watching, what `window_args` prints for the session. Raises HostError when ssh cannot,
        SessionError when the host has no tmux."""

        def tmux(*args: str) -> str:
            return shlex.join(tmux_words(self.host, *args))

        script = (
            f"{tmux('-V')} || exit {NO_TMUX}; "
            f"{tmux('has-session', '-t', f'={self.session}')} 2>/dev/null || exit {GONE}"
        )
        if self.watch:
            script += f"; {tmux(*window_args(self.session))}"
        result = await self.ssh.run(
            self.host, "sh", "-c", script, timeout=QUESTION_TIMEOUT, limit=QUESTION_LIMIT
        )
        if result.exit_code == NO_TMUX:
            raise SessionError(f"tmux is not installed on {self.host.name}")
        version, _, shown = result.stdout.decode(errors="replace").partition("\n")
        return result.exit_code != GONE, version.strip(), shown

    async def _ask(self, *args: str) -> SshResult:
        """`tmux ARGS` on the host, run to its end. Raises HostError when ssh cannot."""
        return await self.ssh.run(
            self.host, *tmux_words(self.host, *args), timeout=QUESTION_TIMEOUT, limit=QUESTION_LIMIT
        )
