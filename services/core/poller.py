"""A re-arming poller: one step, then wait for the interval or a wake-up, never overlapping.

Plain asyncio, so the TUI runs it as a worker and the command line can run a step once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


class Poller:
    """Runs `step` every `interval` seconds; `wake()` runs the next step now.

    A step that raises is logged and reported through `on_error`, and polling goes on: one bad
    answer from a source must not stop the screen from refreshing it.
    """

    def __init__(
        self,
        name: str,
        interval: float,
        step: Callable[[], Awaitable[None]],
        on_error: Callable[[str, BaseException], None],
    ) -> None:
        self.name = name
        self.interval = interval
        self.step = step
        self.on_error = on_error
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.step()
            except Exception as error:
                log.exception("poller %s: step failed", self.name)
                self.on_error(self.name, error)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)
