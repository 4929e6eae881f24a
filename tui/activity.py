"""The console's side of activity: the event streams it follows, what they show (the ACTIVITY
column, the events panel, the inbox and its count), the answers sent from the inbox, and the
notifications when something new needs you.

The streams themselves are `services/activity/follower.py`'s (one per assistant, reconnected,
reconciled); this part gives it the fleet's endpoints whenever the fleet changes and applies
each batch it reports. Answers go through `Roost.answer`, which sends and records them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from services.activity.client import ActivityClient
from services.activity.follower import ActivityBatch, ActivityFollower
from services.activity.model import Activity, ActivityState, Answer, Interaction, Outcome
from services.core.errors import RoostError
from services.core.http import stream_client
from services.core.safe_text import printable
from services.fleet.sources import with_activity
from services.terminal.attach import HostPlace
from tui.screens.inbox import InboxScreen

if TYPE_CHECKING:
    from tui.app import RoostApp

log = logging.getLogger(__name__)

AGE_SECONDS = 1.0
"""Ages on screen (the ACTIVITY column, the inbox) move on this often: they count seconds."""
BELL = "\a"
NOTIFICATION_TEXT = 200
"""A desktop notification's text is cut to this many characters."""


class Activities:
    """Follows every assistant's activity and shows it (one per console)."""

    def __init__(self, app: RoostApp) -> None:
        self._app = app
        # Long-lived streams: a client of their own, with no pool limit shared with requests.
        self._streams = stream_client()
        self.follower = ActivityFollower(
            ActivityClient(app.roost.http, self._streams), self.show_batch, clock=app.context.clock
        )
        self.notifier = Notifier(app)
        self.inbox: tuple[Interaction, ...] = ()
        """Everything that waits for a human, oldest first: the streams' items as their last
        batch had them, and the coding agents' as their last look did."""
        self._streams_inbox: tuple[Interaction, ...] = ()
        self._agents_inbox: tuple[Interaction, ...] = ()
        self._agents: dict[str, Activity] = {}
        """tmux session id -> what its agents did at the last look (for the events panel)."""
        self._sending: set[str] = set()
        """The items an answer is on its way for: a second key press sends nothing more."""

    def start(self) -> None:
        """Follow the fleet's streams (after the first look at the fleet's sources)."""
        self._app.main_screen.timeline = self.follower.timeline
        self._app.background.run(self.follower.run(), group="activity", name="activity")
        self._app.set_interval(AGE_SECONDS, self._tick)

    async def close(self) -> None:
        await self._streams.aclose()

    def follow_fleet(self) -> None:
        """Follow exactly the assistants whose runtime can be followed now."""
        self.follower.follow(self._app.roost.activity_endpoints())

    def show_batch(self, batch: ActivityBatch) -> None:
        """One batch of the follower: the column, the events panel, the inbox, a notification."""
        app = self._app
        if not app.is_running:
            return  # shutting down: the screens are going away
        if batch.activities:
            app.apply_update(with_activity(batch.activities))
        for line in batch.changes:
            log.info("activity: %s", line)
            app.events.add(line)
        self._streams_inbox = batch.inbox
        self._show_inbox()
        app.main_screen.show_detail()  # the selected assistant's timeline may have moved on
        if batch.arrived:
            self.notifier.arrived(batch.arrived)

    async def look_at_agents(self) -> None:
        """One look at the coding agents in this machine's tmux sessions (a poller's step):
        their rows, the events panel, their prompts in the inbox, a notification for new ones."""
        app = self._app
        app.apply_update(await app.roost.look_at_agents())
        if not app.is_running:
            return
        report = app.roost.agents.report
        names = {s.id: s.name for a in app.roost.fleet for s in a.sessions}
        for session_id, activity in report.sessions.items():
            before = self._agents.get(session_id)
            if before is None or before.state is not activity.state:
                name = printable(names.get(session_id, session_id))
                line = f"{name}: {activity.state.symbol} {activity.state} {activity.detail}"
                log.info("agents: %s", line)
                app.events.add(line.rstrip())
                if before is not None:
                    self._mark_panes(names.get(session_id), before.state, activity)
        self._agents = dict(report.sessions)
        known = {item.id for item in self._agents_inbox}
        arrived = [item for item in report.inbox if item.id not in known]
        self._agents_inbox = report.inbox
        self._show_inbox()
        if arrived:
            self.notifier.arrived(arrived)

    def _mark_panes(self, session: str | None, before: ActivityState, now: Activity) -> None:
        """A marker on the rewind timeline of each pane on this machine's tmux session
        `session` when its agent starts to need you, is answered, or fails."""
        if now.state is ActivityState.NEEDS_YOU:
            kind = "needs you"
        elif now.state is ActivityState.ERRORED:
            kind = "error"
        elif before is ActivityState.NEEDS_YOU:
            kind = "answered"
        else:
            return
        for pane in self._app.panes_screen.panes:
            attachment = pane.attachment
            if isinstance(attachment.place, HostPlace) and attachment.tmux_session == session:
                pane.mark(kind, now.detail)

    def _show_inbox(self) -> None:
        inbox = tuple(
            sorted((*self._streams_inbox, *self._agents_inbox), key=lambda item: item.since)
        )
        self.inbox = inbox
        self._app.main_screen.inbox_count = len(inbox)
        for screen in self._app.screen_stack:
            if isinstance(screen, InboxScreen):
                screen.items = inbox

    def _tick(self) -> None:
        if not self._app.is_running:
            return  # a tick due while shutting down: the screens are going away
        self._app.main_screen.tick_ages()
        for screen in self._app.screen_stack:
            if isinstance(screen, InboxScreen):
                screen.tick()

    def open_inbox(self) -> None:
        if not isinstance(self._app.screen, InboxScreen):
            self._app.push_screen(InboxScreen(self._app.context.clock, self.inbox))

    # -- answers ---------------------------------------------------------------------------

    def answer(self, interaction: Interaction, answer: Answer) -> None:
        """Send `answer` in a worker; the item leaves the inbox when it is accepted or was
        answered already."""
        if interaction.id in self._sending:
            self._app.notify("An answer to it is on its way.", title="Inbox", timeout=3)
            return
        self._sending.add(interaction.id)
        self._app.background.run(
            self._send(interaction, answer),
            group="answers",
            name="answer",
            cleanup=lambda _: self._sending.discard(interaction.id),
        )

    async def _send(self, interaction: Interaction, answer: Answer) -> None:
        title = f"Answer to {printable(interaction.assistant)}"
        try:
            record = await self._app.roost.answer(interaction, answer, "console")
        except RoostError as error:
            self._app.notify(str(error), title=title, severity="error", timeout=15)
            return
        finally:
            self._sending.discard(interaction.id)
            del answer  # a secret's value lives no longer than its request
        if record.outcome in (Outcome.ACCEPTED, Outcome.ALREADY_ANSWERED):
            if interaction.pane is None:
                self.follower.answered(interaction)  # it leaves in the follower's next batch
            else:
                self._agents_inbox = self._app.roost.agents.report.inbox
                self._show_inbox()
        if record.outcome is Outcome.ALREADY_ANSWERED:
            # An agent's dialog gone from its screen says so (it may have been interrupted).
            said = printable(record.detail) or "Already answered elsewhere."
            self._app.notify(said, title=title, timeout=4)
        elif record.outcome is Outcome.ACCEPTED:
            self._app.events.add(
                f"{printable(interaction.assistant)}: {printable(record.asked)}"
                f" → {printable(record.answered)}"
            )
        else:
            problem = printable(record.detail or str(record.outcome))
            self._app.notify(problem, title=title, severity="error", timeout=15)


class Notifier:
    """Tells the user when something new needs them: the terminal bell, a desktop notification
    where the terminal has them (`[notifications]` in config.toml turns either off), and a
    toast. One per batch of new items, however many it holds (the follower reports each item
    as arrived once).

    `write` puts bytes on the terminal (tests pass their own): the bell goes that way too."""

    def __init__(
        self,
        app: RoostApp,
        *,
        environ: Mapping[str, str] = os.environ,
        write: Callable[[str], None] | None = None,
    ) -> None:
        self._app = app
        config = app.context.config
        self._bell, self._desktop = config.notify_bell, config.notify_desktop
        self._environ = environ
        self._write = write or (lambda sequence: write_to_terminal(app, sequence))

    def arrived(self, items: Sequence[Interaction]) -> None:
        if len(items) == 1:
            title = f"{printable(items[0].assistant)} needs you"
            body = printable(items[0].summary)
        else:
            title, body = f"{len(items)} need you", "Press i in roost to see the inbox."
        self._app.notify(body, title=title, severity="warning", timeout=8)
        if self._bell:
            self._write(BELL)
        sequence = desktop_notification(self._environ, title, body) if self._desktop else None
        if sequence is not None:
            self._write(sequence)


def desktop_notification(environ: Mapping[str, str], title: str, body: str) -> str | None:
    """The escape sequence that asks this terminal for a desktop notification, or None when
    it is not known to have one (an unknown sequence could print as garbage, and a terminal
    that knows both would show two): OSC 777 for VTE, foot and rxvt-unicode, OSC 9 for iTerm2,
    WezTerm, Ghostty, kitty and Windows Terminal. Inside tmux the outer terminal is unknown:
    none (the bell still rings, and tmux shows it)."""
    if environ.get("TMUX"):
        return None
    term, program = environ.get("TERM", ""), environ.get("TERM_PROGRAM", "")
    title, body = _osc_text(title).replace(";", ","), _osc_text(body)
    if environ.get("VTE_VERSION") or term.startswith(("foot", "rxvt-unicode")):
        return f"\x1b]777;notify;{title};{body}\x1b\\"
    if (
        program in ("iTerm.app", "WezTerm", "ghostty")
        or term in ("xterm-kitty", "xterm-ghostty")
        or environ.get("WT_SESSION")
    ):
        return f"\x1b]9;{title}: {body}\x1b\\"
    return None


def _osc_text(text: str) -> str:
    """Text safe inside an OSC string: no control character (an ESC or BEL would end it)."""
    return printable(text)[:NOTIFICATION_TEXT]


def write_to_terminal(app: RoostApp, sequence: str) -> None:
    """Write an escape sequence to the terminal roost runs in.

    Textual 8.2 has no public way to write one (`bell` and `copy_to_clipboard` write through
    the same private driver, each its own sequence only): this is the one place roost uses it.
    A headless app (a test) has no terminal: nothing is written."""
    driver = app._driver
    if driver is not None and not app.is_headless:
        driver.write(sequence)
