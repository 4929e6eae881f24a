"""Attaching to a terminal at a place: the places sessions live, and the backend that reaches one.

An `Attachment` names what a pane shows: a new shell, or one of the tmux sessions at a place:
this machine, a Docker container, a managed (Vellum) assistant or a host reached over ssh
(`[[hosts]]`). Which place is an assistant's
is the application layer's decision (`services.roost.Roost.place`). The `Attacher` turns an
attachment into a `TerminalBackend` in a mode: a tmux session is attached read-only
when watched (`attach -r`, plus `-f ignore-size,read-only` where tmux has it, so a watcher can
neither type nor shrink the driver's window) and normally when driven. A new shell is always
driven: it is the operator's own. The same places answer `roost sessions` and `roost exec`.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import BinaryIO

import httpx

from services.core.config import Host
from services.core.errors import RoostError
from services.core.mode import Mode
from services.core.safe_text import printable
from services.docker.engines import Engine
from services.hosts.ssh import HostError, Ssh
from services.terminal.backend import SessionError, TerminalBackend, TerminalSize
from services.terminal.container_commands import (
    container_tmux_sessions,
    container_tmux_version,
    container_tmux_window,
    exec_in_container,
)
from services.terminal.docker_exec import DockerExec, shell_argv
from services.terminal.execs import ExecResult, run_here
from services.terminal.host_tmux import list_host, tmux_words
from services.terminal.local import LocalPty
from services.terminal.remote import RemoteSession
from services.terminal.remote_commands import remote_exec, remote_tmux_sessions
from services.terminal.ssh_attach import QUESTION_LIMIT, SshTmuxAttach
from services.terminal.tmux import (
    TmuxListing,
    TmuxServer,
    TmuxSession,
    TmuxState,
    attach_args,
    capture_args,
    supports_watch_flags,
)
from services.vellum.platform import PlatformClient

CONTAINER_SESSION = "roost"
"""The prefix of the tmux session each new shell in a container or on a host runs in: its history
can be read (`Attacher.history`) and a dropped connection re-joins it; it ends when the pane
closes."""
HISTORY_TIMEOUT = 10.0
HISTORY_LIMIT = 32 << 20
"""Bytes of a host's tmux history read over ssh at most (10,000 coloured lines are a few MiB)."""
CHECK_TIMEOUT = 15.0
"""Seconds for the round trip that checks a host answers before a command runs there."""


class Transport(StrEnum):
    """How a session's bytes travel, for the status line."""

    PTY = "local pty"
    DOCKER = "docker exec"
    REMOTE = "vellum session"
    SSH = "ssh"


@dataclass(frozen=True)
class HostPlace:
    """This machine: `command` runs for a new shell (the user's shell by default)."""

    command: tuple[str, ...]
    cwd: str | None = None


@dataclass(frozen=True)
class ContainerPlace:
    """A Docker assistant's container, and whether its tmux has `attach -f` (tmux >= 3.2)."""

    engine: Engine
    container: str
    watch_flags: bool = False


@dataclass(frozen=True)
class ManagedPlace:
    """A managed assistant, reached through the platform's terminal sessions."""

    assistant_id: str


@dataclass(frozen=True)
class SshPlace:
    """A host of `[[hosts]]`, reached with the system ssh over roost's multiplexed connection."""

    host: Host


Place = HostPlace | ContainerPlace | ManagedPlace | SshPlace

TRANSPORTS: Mapping[type, Transport] = {
    HostPlace: Transport.PTY,
    ContainerPlace: Transport.DOCKER,
    ManagedPlace: Transport.REMOTE,
    SshPlace: Transport.SSH,
}


@dataclass(frozen=True)
class Attachment:
    """What one pane shows: a new shell (`session` None) or a tmux session, of `assistant`."""

    assistant: str
    place: Place
    session: str | None = None
    number: int = 1
    """A new shell's number among the shells opened (`Attacher.new_shell`), for its title."""
    shell_session: str | None = None
    """The tmux session a new shell runs in, where it runs in one (in a container, on a host)."""

    @property
    def transport(self) -> Transport:
        return TRANSPORTS[type(self.place)]

    @property
    def title(self) -> str:
        """Tells every pane apart: `ada · shell 2` is a new shell, `ada · tmux work` a tmux
        session (even one named `shell`). Names come from outside: shown escaped."""
        if self.session is None:
            return printable(f"{self.assistant} · shell {self.number}")
        return printable(f"{self.assistant} · tmux {self.session}")

    @property
    def tmux_session(self) -> str | None:
        """The tmux session whose history is the pane's: the one attached, or the new shell's."""
        return self.session or self.shell_session

    @property
    def reopens_on_mode_change(self) -> bool:
        """A tmux attach changes mode by attaching again (read-only or not)."""
        return self.session is not None


class TmuxAttach(LocalPty):
    """A tmux client on this machine attached to one session; says so when it does not exist,
    unless it is to `revive` it: then a session of that name is made (running tmux's default
    command), as `r` on a pane whose session ended promises."""

    def __init__(
        self,
        server: TmuxServer,
        session: str,
        mode: Mode,
        environ: Mapping[str, str],
        *,
        revive: bool = False,
    ) -> None:
        self.watch = mode is Mode.WATCH
        argv = server.argv(*attach_args(session, watch=self.watch, watch_flags=False))
        super().__init__(argv, environ=environ, description=f"tmux session {session}")
        self.server = server
        self.session = session
        self.revive = revive

    async def start(self, size: TerminalSize) -> None:
        if not await asyncio.to_thread(self._exists):
            if not self.revive:
                raise SessionError(f"no tmux session {self.session!r} on {self.server.describe()}")
            try:
                await asyncio.to_thread(
                    self.server.new_session, self.session, (size.columns, size.rows), self.environ
                )
            except RoostError as error:
                raise SessionError(str(error)) from None
        if self.watch and supports_watch_flags(await asyncio.to_thread(self.server.version)):
            window = await asyncio.to_thread(self.server.window, self.session)
            args = attach_args(self.session, watch=True, watch_flags=True, window=window)
            self.argv = self.server.argv(*args)
        await super().start(size)

    def _exists(self) -> bool:
        try:
            result = subprocess.run(
                self.server.argv("has-session", "-t", f"={self.session}"),
                capture_output=True,
                timeout=self.server.timeout,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            raise SessionError(f"cannot ask tmux about {self.session!r}: {error}") from None
        return result.returncode == 0


class ContainerWatch(DockerExec):
    """A watching tmux client in a container with tmux >= 3.2: looks at the session's window
    first, so that a watch with no driver attached pins its size (`tmux.attach_args`)."""

    def __init__(self, place: ContainerPlace, session: str) -> None:
        argv = ["tmux", *attach_args(session, watch=True, watch_flags=True)]
        super().__init__(place.engine, place.container, argv)
        self.session = session

    async def start(self, size: TerminalSize) -> None:
        window = await asyncio.to_thread(
            container_tmux_window, self.engine, self.container, self.session
        )
        self.argv = [
            "tmux",
            *attach_args(self.session, watch=True, watch_flags=True, window=window),
        ]
        await super().start(size)


class Attacher:
    """Makes the places terminals live, opens the backend for an attachment in a mode, lists
    the tmux sessions at a place and runs commands there."""

    def __init__(
        self,
        tmux: TmuxServer,
        environ: Mapping[str, str],
        *,
        shell: str | None,
        engines: Sequence[Engine],
        http: httpx.AsyncClient,
        platform: Callable[[], PlatformClient | None],
        ssh: Ssh,
    ) -> None:
        self.tmux = tmux
        self.environ = environ
        self.shell = shell
        """`[terminal] shell`; else `$SHELL`; else /bin/sh."""
        self.engines = engines
        self.http = http
        self.platform = platform
        """The platform client when logged in (read when a managed assistant is reached)."""
        self.ssh = ssh
        """The system ssh with roost's options, for the hosts of `[[hosts]]`."""
        self._shells = 0

    def here(self) -> HostPlace:
        """This machine, where a new shell runs `[terminal] shell`, else `$SHELL`, else /bin/sh."""
        command = tuple(shlex.split(self.shell or self.environ.get("SHELL") or "/bin/sh"))
        return HostPlace(command, self.environ.get("HOME"))

    def container(self, engine: Engine, container: str) -> ContainerPlace:
        """Container `container` on `engine`, after asking its tmux's version (blocking)."""
        version = container_tmux_version(engine, container)
        return ContainerPlace(engine, container, supports_watch_flags(version))

    def logged_in(self) -> PlatformClient:
        """The platform client, for a managed assistant's terminal. Raises RoostError when
        not logged in."""
        platform = self.platform()
        if platform is None:
            raise RoostError(
                "not logged in to the Vellum platform: run `vellum login` to reach managed "
                "assistants"
            )
        return platform

    def new_shell(self, assistant: str, place: Place) -> Attachment:
        """A new shell of `assistant` at `place`, numbered; in a container and on a host it
        runs in a tmux session of its own, named after this process and the number, so no
        other shell and no other roost joins it."""
        self._shells += 1
        number = self._shells
        shell_session = None
        if isinstance(place, ContainerPlace | SshPlace):
            shell_session = f"{CONTAINER_SESSION}-{os.getpid()}-{number}"
        return Attachment(assistant, place, None, number, shell_session)

    def backend(
        self, attachment: Attachment, mode: Mode, *, revive: bool = False
    ) -> TerminalBackend:
        """The backend for `attachment`; `revive` makes a tmux session that has ended again
        (on this machine, in a container and on a host) instead of reporting it gone."""
        place, session = attachment.place, attachment.session
        watch = mode is Mode.WATCH
        if isinstance(place, SshPlace):
            new = session is None  # a new shell: its own session, made now, ended with the pane
            return SshTmuxAttach(
                self.ssh,
                place.host,
                attachment.tmux_session or CONTAINER_SESSION,
                Mode.DRIVE if new else mode,
                self.environ,
                create=new or revive,
                ends_with_pane=new,
            )
        if isinstance(place, HostPlace):
            if session is None:
                return LocalPty(place.command, environ=self.environ, cwd=place.cwd)
            return TmuxAttach(self.tmux, session, mode, self.environ, revive=revive)
        if isinstance(place, ContainerPlace):
            if session is None:
                shell = attachment.shell_session or CONTAINER_SESSION
                # The shell's session ends with the pane (a hang-up would only detach).
                ends = ["tmux", "kill-session", "-t", f"={shell}"]
                return DockerExec(place.engine, place.container, shell_argv(shell), ends=ends)
            if watch and place.watch_flags and not revive:
                return ContainerWatch(place, session)
            argv = ["tmux", *attach_args(session, watch=watch, watch_flags=place.watch_flags)]
            if revive:
                argv = revive_argv(session, argv)
            return DockerExec(place.engine, place.container, argv)
        return RemoteSession(
            self.http,
            self.logged_in(),
            place.assistant_id,
            tmux_session=session,
            mode=mode,
            description=f"{attachment.title} (vellum)",
        )

    async def history(self, attachment: Attachment, lines: int) -> bytes:
        """The last `lines` lines of the history of the pane's tmux session, and its screen,
        as `tmux.capture_args` prints them. RoostError when it has no tmux session or tmux
        cannot say."""
        session = attachment.tmux_session
        if session is None:
            raise RoostError("a shell without tmux keeps its history in the pane only")
        place = attachment.place
        if isinstance(place, HostPlace):
            return await asyncio.to_thread(self.tmux.capture, session, lines)
        if isinstance(place, SshPlace):
            words = tmux_words(place.host, *capture_args(session, lines))
            captured = await self.ssh.run(
                place.host, *words, timeout=HISTORY_TIMEOUT, limit=HISTORY_LIMIT
            )
            if captured.exit_code != 0:
                message = captured.stderr.strip()
                raise RoostError(f"cannot read tmux's history of {session!r}: {message}")
            return captured.stdout
        argv = ["tmux", *capture_args(session, lines)]
        result = await self.run(place, argv, timeout=HISTORY_TIMEOUT)
        if result.exit_code != 0:
            message = (result.stderr or result.stdout).decode(errors="replace").strip()
            raise RoostError(f"cannot read tmux's history of {session!r}: {message}")
        return result.stdout

    async def sessions(self, place: Place) -> TmuxListing:
        """The tmux sessions at `place`; failures come back as the listing's state."""
        if isinstance(place, HostPlace):
            return await asyncio.to_thread(self.tmux.list_sessions)
        if isinstance(place, ContainerPlace):
            return await asyncio.to_thread(container_tmux_sessions, place.engine, place.container)
        if isinstance(place, SshPlace):
            try:
                listing, _, _ = await list_host(self.ssh, place.host)
            except HostError as error:
                return TmuxListing(TmuxState.ERROR, detail=str(error))
            return listing
        try:
            sessions = await remote_tmux_sessions(self.http, self.logged_in(), place.assistant_id)
        except RoostError as error:
            return TmuxListing(TmuxState.ERROR, detail=str(error))
        return TmuxListing(TmuxState.RUNNING, sessions)

    async def running_session(self, place: Place, name: str) -> TmuxSession:
        """The tmux session `name` at `place`. Raises RoostError when roost cannot list the
        sessions there, or `name` is not one of them (the message lists those that are)."""
        listing = await self.sessions(place)
        if listing.state in (TmuxState.ERROR, TmuxState.NOT_INSTALLED):
            raise RoostError(listing.detail)
        found = next((session for session in listing.sessions if session.name == name), None)
        if found is None:
            names = ", ".join(session.name for session in listing.sessions)
            running = f"the sessions there are: {names}" if names else listing.detail or "none"
            raise RoostError(f"no tmux session {name!r} ({running})")
        return found

    async def run(
        self,
        place: Place,
        argv: Sequence[str],
        *,
        timeout: float,  # noqa: ASYNC109 (the command's limit, enforced where it runs)
        stdout: BinaryIO | None = None,
        stderr: BinaryIO | None = None,
    ) -> ExecResult:
        """`argv` to completion at `place`. Here, on a host and in a container, output goes to
        `stdout` and `stderr` as it comes (here and on a host: the caller's own streams when
        None; in a container: collected into the result); a managed assistant's is in the
        result (one terminal stream). On a host, one round trip first checks it answers (and
        brings up the shared connection), so a host that does not is one clear HostError, not
        ssh's words on stderr; the command's own exit status is passed through, 255 included."""
        if isinstance(place, SshPlace):
            await self.ssh.run(place.host, "true", timeout=CHECK_TIMEOUT, limit=QUESTION_LIMIT)
            return await asyncio.to_thread(
                run_here,
                self.ssh.argv(place.host, *argv),
                timeout=timeout,
                environ=self.environ,
                stdout=stdout,
                stderr=stderr,
            )
        if isinstance(place, HostPlace):
            return await asyncio.to_thread(
                run_here, argv, timeout=timeout, environ=self.environ, stdout=stdout, stderr=stderr
            )
        if isinstance(place, ContainerPlace):
            return await asyncio.to_thread(
                exec_in_container,
                place.engine,
                place.container,
                argv,
                timeout=timeout,
                stdout=stdout,
                stderr=stderr,
            )
        return await remote_exec(
            self.http, self.logged_in(), place.assistant_id, argv, timeout=timeout
        )


_REVIVE_SCRIPT = (
    'tmux has-session -t "=$1" 2>/dev/null || tmux new-session -d -s "$1"; shift; exec "$@"'
)


def revive_argv(session: str, argv: Sequence[str]) -> list[str]:
    """`argv` (a tmux attach), after making tmux session `session` where it has ended."""
    return ["sh", "-c", _REVIVE_SCRIPT, "sh", session, *argv]
