"""The coding agents on one tmux server, kept current: the I/O around `AgentWatch`.

Each look (`AgentMonitor.look`, blocking: run it in a thread) ingests what the hooks spooled
into the state database, feeds the watch the events it has not seen, the server's panes as
last listed, and a screen reading of each pane the watch suspects (one `capture-pane` each,
the watch debounces them). Reading the spool into the database is what makes a hook's event
outlive the process that saw it: `roost ps` after the console, or a console after a restart,
starts from the same events.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from services.activity.model import Activity, Interaction
from services.agents.model import AgentEvent
from services.agents.screens import read_screen
from services.agents.spool import drain, read_spool
from services.agents.watch import AgentWatch, PaneAgent, by_session
from services.core.errors import RoostError
from services.core.state import StateDatabase
from services.terminal.signals import TerminalSignal
from services.terminal.tmux import TmuxListing, TmuxServer, TmuxState

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AgentReport:
    """What the coding agents on a server are doing, as of one look."""

    sessions: dict[str, Activity]
    """tmux session id -> the most urgent state of the agents in it."""
    panes: dict[str, PaneAgent]
    inbox: tuple[Interaction, ...]


EMPTY = AgentReport({}, {}, ())


class AgentMonitor:
    """The agents on the tmux server `tmux`, whose sessions are shown under `host_key`. With
    no `spool` (another machine's server: its agents' hooks write there, not here) the panes
    and the terminal signals are all the evidence."""

    def __init__(
        self, tmux: TmuxServer, database: StateDatabase, spool: Path | None, host_key: str
    ) -> None:
        self.tmux = tmux
        self.database = database
        self.spool = spool
        self.host_key = host_key
        self._watch: AgentWatch | None = None
        self._last_id = 0
        self._lock = threading.Lock()  # looks run in a thread; signals and answers elsewhere
        self.report = EMPTY

    def look(self, listing: TmuxListing | None, now: datetime) -> AgentReport:
        """Everything new since the last look, and what it makes of each agent now."""
        if listing is None or listing.state is not TmuxState.RUNNING or not listing.socket_path:
            return self.report  # nothing listed yet (or no server): nothing to say of panes
        with self._lock:
            watch = self._watch_of(listing.socket_path)
        events = self._new_events()
        with self._lock:
            watch.feed(events)
            watch.observe(listing, now)
            suspects = {pane: watch.agent_of(pane) for pane in watch.suspects(now)}
        readings = {}
        for pane, agent in suspects.items():  # captures take a while: outside the lock
            try:
                readings[pane] = read_screen(self.tmux.capture_pane(pane), agent or None)
            except RoostError as error:
                log.debug("agents: cannot read pane %s: %s", pane, error)
        with self._lock:
            for pane, reading in readings.items():
                watch.screen(pane, reading, now)
            panes = watch.panes(now)
            self.report = AgentReport(by_session(panes.values()), panes, watch.inbox())
            return self.report

    def signal(self, pane: str, signal: TerminalSignal, now: datetime) -> None:
        """What an attached pane's output said (a title, a bell, a notification)."""
        with self._lock:
            if self._watch is not None:
                self._watch.signal(pane, signal, now)

    def retire(self, interaction: Interaction, note: str, now: datetime) -> None:
        """Take an answered item (or one whose dialog is gone) out of the inbox."""
        with self._lock:
            if self._watch is None:
                return
            self._watch.retire(interaction.id, note, now)
            self.report = AgentReport(
                self.report.sessions,
                self.report.panes,
                tuple(item for item in self.report.inbox if item.id != interaction.id),
            )

    def _watch_of(self, server: str) -> AgentWatch:
        if self._watch is None or self._watch.server != server:
            self._watch, self._last_id = AgentWatch(server, self.host_key), 0
        return self._watch

    def _new_events(self) -> list[AgentEvent]:
        """The events recorded since the last look, the spool ingested first. A database
        that cannot be written leaves the files where they are: read them without it."""
        if self.spool is None:
            return []
        try:
            drain(self.spool, self.database)
            rows = self.database.agent_events(after=self._last_id)
        except RoostError as error:
            log.warning("agents: %s; reading the hooks' spool without it", error)
            return read_spool(self.spool)
        if rows:
            self._last_id = rows[-1].id
        return [AgentEvent.of_row(row) for row in rows]
