"""The roost App and its factory, the one way to build the app (the command and the tests).

`RoostApp` is the composition root: it builds one `Roost` (every operation the console runs)
and the parts that show them (jobs, lifecycle, attach, activity and the inbox, the workers'
failures), keeps the fleet refreshed (pollers, health, Docker events, the events panel), and
routes the screens' requests to the part that owns them.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

from rich.text import Text
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.command import Provider
from textual.dom import DOMNode
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.worker import Worker, WorkerFailed

from services.context import Context
from services.core.errors import RoostError
from services.core.http import http_client
from services.fleet.model import Assistant, FleetSnapshot
from services.fleet.sources import Update
from services.jobs.restore import RestoreOptions
from services.roost import AttachRequest, Roost
from services.terminal.attach import HostPlace, SshPlace
from tui.activity import Activities
from tui.attaching import Attaching
from tui.backups import Backups
from tui.commands import PaletteCommands, commands
from tui.events import EventLog
from tui.job_table import JobTable
from tui.jobs import Jobs
from tui.keymap import Scope, binding_ids, check_keymap
from tui.lifecycle import Lifecycle
from tui.messages import (
    EventsNotSaved,
    LifecycleEnded,
    LifecycleFailed,
    LifecycleStarted,
    LifecycleStepped,
    RetirePlanned,
    SleepPlanned,
)
from tui.refresh import FleetRefresh
from tui.screens.answer import QuestionsForm, SecretPrompt, TrustPicker
from tui.screens.backups import BackupsScreen
from tui.screens.confirm import ConfirmScreen, TypedConfirmScreen
from tui.screens.help import HelpScreen
from tui.screens.inbox import InboxScreen
from tui.screens.main import MainScreen
from tui.screens.panes import PanesScreen
from tui.screens.pick import SessionPicker
from tui.screens.restore import RestoreScreen
from tui.sharing import Sharing
from tui.terminal_pane import TerminalPane
from tui.workers import Workers
from widgets.rewind_timeline import RewindTimeline
from widgets.terminal_view import TerminalView

log = logging.getLogger(__name__)


class RoostApp(App[None]):
    CSS_PATH = "roost.tcss"
    TITLE = "roost"
    COMMANDS: ClassVar[set[type[Provider] | Callable[[], type[Provider]]]] = {PaletteCommands}

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit", id="quit", tooltip="Leave roost"),
        Binding(
            "ctrl+q",
            "quit",
            "Quit from anywhere",
            id="quit_now",
            show=False,
            priority=True,
            tooltip="Leave roost, even from a text field",
        ),
        Binding("question_mark", "help", "Help", id="help", tooltip="Show every key"),
        Binding(
            "ctrl+p",
            "command_palette",
            "Commands",
            id="command_palette",
            show=False,
            priority=True,
            tooltip="Search every command",
        ),
    ]

    def __init__(self, context: Context, attach: AttachRequest | None = None) -> None:
        super().__init__()
        self.context = context
        self.initial_attach = attach
        """Open straight onto this pane (`roost attach`)."""
        # One HTTP client for every request: connections to the same runtime are reused.
        self.http = http_client()
        self.roost = Roost(context, self.http)
        self.background = Workers(self, context.paths.log_file)
        self.events = EventLog(self)
        self.jobs = Jobs(self)
        self.backups = Backups(self)
        self.lifecycle = Lifecycle(self)
        self.attaching = Attaching(self)
        self.sharing = Sharing(self)
        self.activity = Activities(self)
        self.fleet_refresh = FleetRefresh(self)
        self.panes_screen = PanesScreen(leave_key=self._leave_keys()[0])
        """Kept while hidden: its panes stay connected behind the main screen."""
        self.set_keymap(dict(context.config.keys))

    @property
    def snapshot(self) -> FleetSnapshot:
        return self.roost.snapshot

    @property
    def fleet(self) -> tuple[Assistant, ...]:
        return self.roost.fleet

    def get_default_screen(self) -> Screen[None]:
        self.main_screen = MainScreen(self.context)
        return self.main_screen

    async def on_mount(self) -> None:
        self.sub_title = self.context.hostname
        self.install_screen(self.panes_screen, "panes")  # popping it must not close its panes
        await self.events.show_recent()
        # The lockfile first: it names the platform URL, so nothing is ever sent to another.
        sources = self.roost.sources
        self.apply_update(await sources.registry())
        assert self.snapshot.lockfile is not None
        try:
            sources.connect_platform(self.snapshot.lockfile.platform_base_url)
        except RoostError as error:
            self.notify(str(error), title="Platform token", severity="error", timeout=30)
        self.fleet_refresh.start()
        self.jobs.load()
        if self.initial_attach is not None:
            self.post_message(MainScreen.AttachRequested(self.initial_attach))
        monitor = self.fleet_refresh.monitor
        self.app_suspend_signal.subscribe(self, lambda _: monitor.pause())
        self.app_resume_signal.subscribe(self, lambda _: monitor.resume())

    async def on_unmount(self) -> None:
        await self.sharing.stop_all()
        await self.fleet_refresh.close()  # its probes end before the client closes
        await self.events.close()
        await self.activity.close()
        await self.http.aclose()

    def apply_update(self, update: Update) -> bool:
        """Apply a source's update and show the fleet it makes; True when anything changed.

        Nothing is applied once the app is shutting down: the screen's widgets are going away,
        and a last batch of results may still arrive.
        """
        if not self.is_running or not self.roost.apply(update):
            return False
        self.main_screen.fleet = self.fleet
        return True

    def on_engine_changed(self) -> None:
        self.fleet_refresh.pollers["docker"].wake()

    def on_events_not_saved(self, message: EventsNotSaved) -> None:
        self.events.state_failed(message.error)

    # -- what the screens ask for ------------------------------------------------------------

    def on_main_screen_refresh_requested(self, message: MainScreen.RefreshRequested) -> None:
        self.fleet_refresh.refresh(message.assistant_key)

    def on_main_screen_use_requested(self, message: MainScreen.UseRequested) -> None:
        self.background.run(self._use(message.assistant), group="lockfile-writes", name="use")

    async def _use(self, assistant: Assistant) -> None:
        try:
            await asyncio.to_thread(self.roost.use, assistant)
        except RoostError as error:
            self.notify(str(error), title="Use", severity="error", timeout=15)
            return
        log.info("active assistant is now %s", assistant.id)
        self.notify(f"{assistant.id} is now the active assistant.", title="Use")
        self.fleet_refresh.pollers["lockfile"].wake()

    def on_main_screen_attach_requested(self, message: MainScreen.AttachRequested) -> None:
        opening = self.attaching.open(message.request)
        self.background.run(opening, group="attach", name="attach", exclusive=True)

    def on_main_screen_panes_requested(self) -> None:
        if not self.panes_screen.panes:
            self.notify(
                "No pane is open: enter attaches to the selected session, t opens a shell.",
                title="Panes",
            )
            return
        self.push_screen(self.panes_screen)

    async def on_panes_screen_share_toggled(self, message: PanesScreen.ShareToggled) -> None:
        await self.sharing.toggle(message.pane)

    async def on_panes_screen_closed(self, message: PanesScreen.Closed) -> None:
        await self.sharing.stop(message.pane)

    def on_terminal_pane_signals(self, message: TerminalPane.Signals) -> None:
        """A title, bell or notification from a tmux session of this machine or of a host is
        evidence of what the coding agents in it do."""
        attachment = message.attachment
        place, session = attachment.place, attachment.tmux_session
        if session is None:
            return
        if isinstance(place, HostPlace):
            self.roost.agent_signals(session, message.signals)
        elif isinstance(place, SshPlace):
            self.roost.agent_signals(session, message.signals, place.host.name)

    def on_main_screen_inbox_requested(self) -> None:
        self.activity.open_inbox()

    def on_inbox_screen_answer_requested(self, message: InboxScreen.AnswerRequested) -> None:
        self.activity.answer(message.interaction, message.answer)

    def on_main_screen_backup_requested(self, message: MainScreen.BackupRequested) -> None:
        self.jobs.backup(message.assistant)

    def on_restore_screen_confirmed(self, message: RestoreScreen.Confirmed) -> None:
        self.jobs.finish_restore(message.job)

    async def on_restore_screen_declined(self, message: RestoreScreen.Declined) -> None:
        await self.jobs.decline_restore(message.job)

    def on_main_screen_backups_requested(self, message: MainScreen.BackupsRequested) -> None:
        self.backups.open(message.assistant)

    def on_backups_screen_verify_requested(self, message: BackupsScreen.VerifyRequested) -> None:
        self.backups.verify(message.screen, message.paths)

    def on_backups_screen_restore_requested(self, message: BackupsScreen.RestoreRequested) -> None:
        options = RestoreOptions(force_unverified=message.force_unverified)
        self.jobs.restore(message.screen.assistant, message.entry.path, options)

    def on_backups_screen_delete_requested(self, message: BackupsScreen.DeleteRequested) -> None:
        self.backups.delete(message.screen, message.entry.path)

    def on_job_table_retry_requested(self, message: JobTable.RetryRequested) -> None:
        self.jobs.retry(message.job_id)

    def on_job_table_reveal_requested(self, message: JobTable.RevealRequested) -> None:
        self.jobs.reveal(message.job_id)

    async def on_job_table_remove_requested(self, message: JobTable.RemoveRequested) -> None:
        await self.jobs.remove(message.job_id)

    def on_main_screen_lifecycle_requested(self, message: MainScreen.LifecycleRequested) -> None:
        self.lifecycle.request(message.assistant, message.action)

    # -- what lifecycle threads report -------------------------------------------------------

    def on_sleep_planned(self, message: SleepPlanned) -> None:
        self.lifecycle.confirm_sleep(message.assistant, message.names)

    def on_retire_planned(self, message: RetirePlanned) -> None:
        self.lifecycle.confirm_retire(message.assistant, message.plan)

    def on_lifecycle_started(self, message: LifecycleStarted) -> None:
        self.lifecycle.started(message.assistant, message.action)

    def on_lifecycle_stepped(self, message: LifecycleStepped) -> None:
        # A step names what it acted on (the assistant, or its containers by name).
        self.events.add(str(message.step))

    def on_lifecycle_ended(self, message: LifecycleEnded) -> None:
        self.lifecycle.ended(message.assistant, message.action, message.summary, message.failed)

    def on_lifecycle_failed(self, message: LifecycleFailed) -> None:
        self.lifecycle.failed(message.assistant, message.action, message.error)

    # -- the app's own keys ------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """In a terminal pane every key but the pane's leave key belongs to the program in it,
        even those bound with priority (ctrl+q, ctrl+p)."""
        in_terminal = isinstance(self.focused, TerminalView)
        return not (in_terminal and action in {"quit", "command_palette", "help"})

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            shown = ", ".join(self._leave_keys())
            sections = self.main_screen.help_sections(self.panes_screen, shown)
            self.push_screen(
                HelpScreen(
                    commands(self, self.screen),
                    terminal_leave_key=shown,
                    sections=sections if self.screen is self.main_screen else (),
                )
            )

    def _leave_keys(self) -> list[str]:
        """The terminal pane's leave key(s) as shown to the user, remapped or not."""
        leave = TerminalPane.LEAVE
        keys = self.context.config.keys.get("terminal.leave", leave.key).split(",")
        return [self.get_key_display(leave.with_key(key.strip())) for key in keys]

    async def action_quit(self) -> None:
        """Quit; with running panes, first say what ends and what keeps running, and ask
        (the quit key again on the question quits)."""
        question = self.panes_screen.quit_question()
        if question is None or self.screen.id == "quit-question":
            self.exit()
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.exit()

        self.push_screen(ConfirmScreen("Quit", question, id="quit-question"), answered)

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        """The palette lists every roost command of the current screen, then Textual's own."""
        for command in commands(self, screen):
            if command.action == "command_palette" or not command.enabled:
                continue

            async def run(action: str = command.action, node: DOMNode = command.node) -> None:
                await self.run_action(action, node)

            keys = ", ".join(command.keys)
            yield SystemCommand(command.description, f"{command.tooltip} [{keys}]", run)
        yield from super().get_system_commands(screen)

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = False,
    ) -> None:
        """Every notification is plain text (screens pass `markup=True` by default): messages
        carry names, paths and errors from outside, and `[/…]` in one would end roost."""
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=False)

    def _handle_exception(self, error: Exception) -> None:
        """An unexpected error anywhere in the app (a handler, a timer, a worker that exits on
        error) ends roost: the full traceback goes to the log (a failed worker's own error, not
        Textual's wrapper, which has none), and the user sees one line naming the log file.

        Textual 8.2 calls this private method from every handler, timer and worker, and offers
        no public hook in its place (Textualize/textual#2818); its own would print a traceback
        with every frame's locals, tokens included. roost's own workers never get here
        (tui/workers.py): it is left for the bugs nothing else catches."""
        cause = error.error if isinstance(error, WorkerFailed) else error
        log.error("internal error; roost stops", exc_info=cause)
        self._return_code = 1
        if self._exception is None:  # the first one ends the app (and `run_test` re-raises it)
            self._exception = error
            self._exception_event.set()
            self.bell()
            self.panic(Text(f"roost stopped on an {self.background.problem}"))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        self.background.state_changed(event)


KEY_SCOPES = (
    Scope("the main screen", (RoostApp.BINDINGS, MainScreen.BINDINGS)),
    Scope("the jobs table", (RoostApp.BINDINGS, MainScreen.BINDINGS, JobTable.BINDINGS)),
    Scope("the panes screen", (RoostApp.BINDINGS, PanesScreen.BINDINGS, TerminalPane.BINDINGS)),
    Scope(
        "a rewound pane",
        (RoostApp.BINDINGS, PanesScreen.BINDINGS, TerminalPane.BINDINGS, RewindTimeline.BINDINGS),
    ),
    Scope("the help screen", (RoostApp.BINDINGS, HelpScreen.BINDINGS)),
    Scope("a confirmation", (RoostApp.BINDINGS, ConfirmScreen.BINDINGS)),
    Scope("a typed confirmation", (RoostApp.BINDINGS, TypedConfirmScreen.BINDINGS)),
    Scope("the session picker", (RoostApp.BINDINGS, SessionPicker.BINDINGS)),
    Scope("the restore flow", (RoostApp.BINDINGS, RestoreScreen.BINDINGS)),
    Scope("the inbox", (RoostApp.BINDINGS, InboxScreen.BINDINGS)),
    Scope("the backups screen", (RoostApp.BINDINGS, BackupsScreen.BINDINGS)),
    Scope("always allow", (RoostApp.BINDINGS, TrustPicker.BINDINGS)),
    Scope("a question batch", (RoostApp.BINDINGS, QuestionsForm.BINDINGS)),
    Scope("a secret", (RoostApp.BINDINGS, SecretPrompt.BINDINGS)),
)
"""Every binding roost has, grouped as they are active together (a new screen goes here)."""
KNOWN_BINDING_IDS = binding_ids(KEY_SCOPES)


def check_keys(context: Context) -> None:
    """Raise ConfigError for a [keys] entry the console would refuse (see tui/keymap.py)."""
    check_keymap(context.paths.config_file, context.config.keys, KEY_SCOPES)


def create_app(context: Context, attach: AttachRequest | None = None) -> RoostApp:
    """Build the app for `context`; raises ConfigError for a [keys] entry it cannot use."""
    check_keys(context)
    return RoostApp(context, attach)


GC_THRESHOLDS = (50_000, 50, 100)
"""Allocations between young collections (CPython's default: 700), then the older ones."""


def collect_garbage_less_often() -> None:
    """Tune CPython's cyclic garbage collector for a console that lives long and allocates
    fast (a row, a strip, an event at a time), once per process, just before it runs: what
    exists by then (modules, classes, styles) is never looked at again (`gc.freeze`), and
    young collections come less often. Reference counting still frees nearly everything at
    once; this only spaces out the hunt for cycles. With a thousand followed assistants at 500
    events a second it took the console from 0.99 of a core to 0.76, and the row update's p95
    from 368 ms to 110 ms (tests/perf/bench_activity.py)."""
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
