"""Attaching to an assistant's terminal: where its sessions live, and the backend that reaches one.

An `Attachment` names what a pane shows: a new shell, or one of the tmux sessions of an
assistant, on this machine, in a Docker container or in a managed (Vellum) assistant. The
`Attacher` turns it into a `TerminalBackend` in a mode: a tmux session is attached read-only
when watched (`attach -r`, plus `-f ignore-size,read-only` where tmux has it, so a watcher can
neither type nor shrink the driver's window) and normally when driven. A new shell is always
driven: it is the operator's own.
"""

from __future__ import annotations

import asyncio
import shlex
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from services.errors import RoostError
from services.fleet import LOCAL_HOST, Assistant, Source
from services.terminal.backend import Mode, SessionError, TerminalBackend, TerminalSize
from services.terminal.local import LocalPty
from services.tmux import TmuxListing, TmuxServer, attach_args, supports_watch_flags


class Transport(StrEnum):
    """How a session's bytes travel, for the status line."""

    PTY = "local pty"
    DOCKER = "docker exec"
    REMOTE = "vellum session"


@dataclass(frozen=True)
class HostPlace:
    """This machine: `command` runs for a new shell (the user's shell by default)."""

    command: tuple[str, ...]
    cwd: str | None = None


Place = HostPlace


@dataclass(frozen=True)
class Attachment:
    """What one pane shows: a new shell (`session` None) or a tmux session, of `assistant`."""

    assistant: str
    place: Place
    session: str | None = None

    @property
    def transport(self) -> Transport:
        return Transport.PTY

    @property
    def title(self) -> str:
        return f"{self.assistant} · {self.session or 'shell'}"

    @property
    def reopens_on_mode_change(self) -> bool:
        """A tmux attach changes mode by attaching again (read-only or not)."""
        return self.session is not None


class TmuxAttach(LocalPty):
    """A tmux client on this machine attached to one session; says so when it does not exist."""

    def __init__(
        self, server: TmuxServer, session: str, mode: Mode, environ: Mapping[str, str]
    ) -> None:
        watch_flags = supports_watch_flags(server.version()) if mode is Mode.WATCH else False
        argv = server.argv(*attach_args(session, watch=mode is Mode.WATCH, watch_flags=watch_flags))
        super().__init__(argv, environ=environ, description=f"tmux session {session}")
        self.server = server
        self.session = session

    async def start(self, size: TerminalSize) -> None:
        exists = await asyncio.to_thread(self._exists)
        if not exists:
            raise SessionError(f"no tmux session {self.session!r} on {self.server.describe()}")
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


class Attacher:
    """Finds where an assistant's terminal lives, opens the backend for an attachment in a
    mode, and lists an assistant's tmux sessions."""

    def __init__(self, tmux: TmuxServer, environ: Mapping[str, str], shell: str | None) -> None:
        self.tmux = tmux
        self.environ = environ
        self.shell = shell
        """`[terminal] shell`; else `$SHELL`; else /bin/sh."""

    def attachment(self, assistant: Assistant, session: str | None) -> Attachment:
        """What attaching to `session` of `assistant` (None: a new shell) opens.

        Raises RoostError for an assistant roost has no terminal for.
        """
        if assistant.source is Source.HOST or assistant.kind in (LOCAL_HOST, "local"):
            command = tuple(shlex.split(self.shell or self.environ.get("SHELL") or "/bin/sh"))
            return Attachment(assistant.name, HostPlace(command, self.environ.get("HOME")), session)
        raise RoostError(
            f"{assistant.name} is a {assistant.kind} assistant: roost has no terminal for it"
        )

    def backend(self, attachment: Attachment, mode: Mode) -> TerminalBackend:
        place = attachment.place
        if attachment.session is None:
            return LocalPty(place.command, environ=self.environ, cwd=place.cwd)
        return TmuxAttach(self.tmux, attachment.session, mode, self.environ)

    async def sessions(self, place: Place) -> TmuxListing:
        return await asyncio.to_thread(self.tmux.list_sessions)
