"""One share from start to stop: its stream, its server and its entry among the running shares.

The console feeds a share from a pane (what the pane shows, through its reconnects); `roost
share` feeds it from a read-only attach of its own (`feed`), until the session ends or the
share is stopped (interrupted, or `roost share --stop`).
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

from services.core.errors import RoostError
from services.core.processes import ProcessIdentity
from services.share.server import ShareServer
from services.share.shares import ShareRecord, register, unregister
from services.share.stream import ShareStream
from services.terminal.backend import LinkNotice, TerminalBackend, TerminalSize

LOOPBACK = "127.0.0.1"


def exposed(bind: str) -> bool:
    """Whether anyone but this machine's users may reach `bind` (a loopback address does not)."""
    try:
        return not ipaddress.ip_address(bind).is_loopback
    except ValueError:
        return bind != "localhost"  # a host name: whatever it resolves to


def exposure_warning(bind: str) -> str:
    return (
        f"warning: sharing on {bind}: anyone who can reach it and has the URL can watch "
        "(the URL's token is the only lock; send it privately)"
    )


class Share:
    """A running share of `what` (a pane's title), `start()`ed and `stop()`ped once."""

    def __init__(
        self, what: str, size: TerminalSize, *, bind: str = LOOPBACK, port: int = 0
    ) -> None:
        self.what = what
        self.stream = ShareStream(size)
        self.server = ShareServer(self.stream, what, bind=bind, port=port)
        self._file: Path | None = None

    @property
    def url(self) -> str:
        return self.server.url

    async def start(self) -> None:
        """Listen and join the running shares; RoostError when the address cannot be bound."""
        try:
            await self.server.start()
        except OSError as error:
            where = f"{self.server.bind}:{self.server.port}"
            raise RoostError(f"cannot share on {where}: {error.strerror or error}") from None
        record = ShareRecord(
            ProcessIdentity.current(), self.server.bind, self.server.port, self.what
        )
        try:
            self._file = register(record)
        except OSError as error:  # unlisted, `--stop` could not reach it: do not run at all
            await self.server.stop()
            raise RoostError(
                f"cannot list the share in {error.filename}: {error.strerror}"
            ) from None

    async def stop(self) -> None:
        """The token expires and the viewers see the end; safe to repeat."""
        if self._file is not None:
            unregister(self._file)
            self._file = None
        await self.server.stop()


async def feed(share: Share, backend: TerminalBackend, size: TerminalSize) -> None:
    """Stream what `backend` (a read-only attach) shows until its session ends. Raises
    SessionError when it cannot start."""
    await backend.start(size)
    try:
        while item := await backend.read():
            if not isinstance(item, LinkNotice):
                share.stream.output(item)
    finally:
        await backend.close()
