"""The one interface every terminal session speaks, whatever carries its bytes.

A backend is started at a size, then read until it returns `b""` (the session ended; see
`exit_status`), written to, resized, and closed. Local PTYs, Docker execs and remote Vellum
sessions all implement it, so the pane that shows a session never knows which it has.

A backend that can lose its link and reconnect on its own (a remote session) says so in band:
`read()` returns a `LinkNotice` when the link drops and again when it is back, and raises
`SessionLost` once it has given up. Starting a backend again after it ended or was lost opens a
new session the same way (for a tmux attach: the same tmux session again).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from services.core.errors import RoostError


@dataclass(frozen=True)
class TerminalSize:
    columns: int
    rows: int

    def __post_init__(self) -> None:
        if self.columns < 1 or self.rows < 1:
            raise ValueError(f"a terminal needs at least one cell, not {self}")


@dataclass(frozen=True)
class LinkNotice:
    """The link to a remote session dropped (`live` False: reconnect `attempt` of `attempts`
    is under way, because of `reason`) or is back (`live` True)."""

    live: bool
    attempt: int = 0
    attempts: int = 0
    reason: str = ""


class SessionError(RoostError):
    """A session could not start or broke; the message says which and why, in one line."""


class SessionLost(SessionError):
    """The link dropped and every reconnect attempt failed; starting again may still work."""


class TerminalBackend(Protocol):
    description: str
    """What the session is, for a status line: "bash on this machine"."""

    async def start(self, size: TerminalSize) -> None:
        """Open the session; raises SessionError when it cannot."""

    async def read(self) -> bytes | LinkNotice:
        """The next output as it arrives, or a change of link; `b""` once the session ended."""

    def write(self, data: bytes) -> None:
        """Queue input for the session; never blocks, keeps order."""

    def resize(self, size: TerminalSize) -> None:
        """Tell the session its new size."""

    async def close(self) -> None:
        """End the session (if still running) and release everything; safe to repeat."""

    @property
    def exit_status(self) -> int | None:
        """The exit code once the session has ended (128 + N for a signal), else None."""
