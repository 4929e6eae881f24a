"""The console's shares: a pane's session shown read-only in browsers (`ctrl+]` then `S`).

A share taps its pane (`TerminalPane.tap`): the browser sees what the pane shows, through the
pane's reconnects. Its URL, with the token, is shown once in a notification and copied to the
clipboard; viewers joining and leaving go to the events panel (without the token). A share stops
when its key is pressed again, its pane closes, `roost share --stop` signals this process
(SIGUSR1: the console goes on), or roost exits.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from services.core.errors import RoostError
from services.share.share import Share
from services.share.shares import STOP_SIGNAL

if TYPE_CHECKING:
    from tui.app import RoostApp
    from tui.terminal_pane import TerminalPane

log = logging.getLogger(__name__)


class Sharing:
    """At most one share per pane."""

    def __init__(self, app: RoostApp) -> None:
        self._app = app
        self._shares: dict[TerminalPane, Share] = {}

    def of(self, pane: TerminalPane) -> Share | None:
        """`pane`'s share, while it is shared."""
        return self._shares.get(pane)

    async def toggle(self, pane: TerminalPane) -> None:
        if pane in self._shares:
            await self.stop(pane)
        else:
            await self.start(pane)

    async def start(self, pane: TerminalPane) -> None:
        title = pane.session_title
        share = Share(title, pane.shown_size)
        try:
            await share.start()
        except RoostError as error:
            self._app.notify(str(error), title=f"Share {title}", severity="error")
            return
        if not self._shares:
            asyncio.get_running_loop().add_signal_handler(STOP_SIGNAL, self._stop_signalled)
        self._shares[pane] = share
        pane.tap(share.stream)
        self._app.copy_to_clipboard(share.url)
        self._app.notify(
            f"Watch read-only at {share.url} (copied). ctrl+] then S stops sharing.",
            title=f"Sharing {title}",
            timeout=30,
        )
        self._app.events.add(f"{title}: shared read-only on 127.0.0.1:{share.server.port}")
        self._app.background.run(self._tell(title, share), group="share", name=f"share {title}")

    async def _tell(self, title: str, share: Share) -> None:
        async for change in share.server.changes():
            self._app.events.add(f"{title}: {change.line}")

    async def stop(self, pane: TerminalPane) -> None:
        share = self._shares.pop(pane, None)
        if share is None:
            return
        pane.tap(None)
        if not self._shares:
            asyncio.get_running_loop().remove_signal_handler(STOP_SIGNAL)
        await share.stop()
        if self._app.is_running:
            self._app.events.add(f"{pane.session_title}: no longer shared")

    async def stop_all(self) -> None:
        for pane in list(self._shares):
            await self.stop(pane)

    def _stop_signalled(self) -> None:
        log.info("roost share --stop: stopping %d shares", len(self._shares))
        self._app.background.run(self.stop_all(), group="share", name="stop shares")
