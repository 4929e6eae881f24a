"""The events panel's history: status changes shown as they happen and saved for the next
start (in batches: a health sweep is one write), and those of earlier runs shown at start."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from services.core.errors import RoostError
from services.core.state import Event
from tui.messages import EventsNotSaved

if TYPE_CHECKING:
    from tui.app import RoostApp

log = logging.getLogger(__name__)

SAVE_SECONDS = 0.5
"""Status changes are saved in batches at most this often."""
SHOWN = 200
"""Events of earlier runs shown at start."""


class EventLog:
    """The console's status changes (one per console)."""

    def __init__(self, app: RoostApp) -> None:
        self._app = app
        self._database = app.roost.jobs.database
        self._unsaved: list[Event] = []
        self._state_warned = False

    async def show_recent(self) -> None:
        """The events of earlier runs, oldest first."""
        try:
            events = await asyncio.to_thread(self._database.recent_events, SHOWN)
        except RoostError as error:
            self.state_failed(error)
            return
        for event in events:
            self._app.main_screen.add_event(event.at, event.line)

    def add(self, line: str) -> None:
        """A status change: shown in the events panel, and saved soon."""
        event = Event(self._app.context.clock(), line)
        self._app.main_screen.add_event(event.at, event.line)
        self._unsaved.append(event)
        if len(self._unsaved) == 1:
            self._app.set_timer(SAVE_SECONDS, self._save)

    def _save(self) -> None:
        events, self._unsaved = self._unsaved, []
        if events:
            self._app.background.run(
                lambda: self._write(events), group="state", name="events", thread=True
            )

    def _write(self, events: list[Event]) -> None:
        try:
            self._database.add_events(events)
        except RoostError as error:
            self._app.post_message(EventsNotSaved(error))

    async def close(self) -> None:
        """Save what is left (roost is stopping: nobody is left to tell but the log)."""
        unsaved, self._unsaved = self._unsaved, []
        try:
            await asyncio.to_thread(self._database.add_events, unsaved)
        except RoostError as error:
            log.warning("events not saved: %s", error)

    def state_failed(self, error: RoostError) -> None:
        """The state database failed; said once, as the next failure would say the same."""
        if not self._state_warned:
            self._state_warned = True
            self._app.notify(str(error), title="roost's state", severity="error", timeout=30)
