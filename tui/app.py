"""The roost App and its factory, the one way to build the app (the command and the tests)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.command import Provider
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.timer import Timer
from textual.worker import Worker, WorkerFailed, WorkerState

from services.core.context import Context
from services.core.errors import RoostError
from services.core.http import http_client
from services.core.poller import Poller
from services.core.state import Event
from services.docker.engines import Engine, configured_engines
from services.docker.events import EngineEvents
from services.docker.lifecycle import (
    RetirePlan,
    Step,
    engine_of,
    inspect_retire,
    retire_docker,
    sleep_docker,
    sleep_plan,
    summarize,
    wake_docker,
    wake_local,
)
from services.fleet.model import Assistant, FleetBuilder, FleetSnapshot, Source, health_targets
from services.fleet.sources import FleetSources, Update, with_health
from services.health.monitor import HealthMonitor, HealthPolicy, HealthScheduler, Transition
from services.health.probes import HealthRecord
from services.jobs.backups import backup_with_repair
from services.jobs.exports import Exporter, backup_destination
from services.jobs.store import Job, JobState, JobStore, abandoned
from services.roost import AttachRequest, export_target, place_of, wake_repair
from services.terminal.attach import Attacher, Attachment, HostPlace, Place
from services.terminal.backend import Mode, TerminalSize
from services.terminal.recording import Recorder
from services.terminal.tmux import TmuxState
from services.vellum.lockfile import set_active
from tui.commands import PaletteCommands, commands
from tui.formats import format_bytes
from tui.keymap import Scope, binding_ids, check_keymap
from tui.screens.confirm import ConfirmScreen, TypedConfirmScreen
from tui.screens.help import HelpScreen
from tui.screens.main import JobTable, MainScreen
from tui.screens.panes import PanesScreen
from tui.screens.pick import NEW_SHELL, SessionPicker
from tui.terminal_pane import TerminalPane
from widgets.terminal_view import TerminalView

log = logging.getLogger(__name__)

REGISTRY_SECONDS = 2.0
"""The lockfile is re-read this often, so `vellum use` or a new assistant shows up at once."""
HEALTH_BATCH_SECONDS = 0.5
EVENTS_SAVE_SECONDS = 0.5
"""Status changes are saved in batches at most this often: a health sweep is one write."""
EVENTS_SHOWN = 200
"""Events of earlier runs shown at start."""
OTHER_ROOSTS_SECONDS = 2.0
"""How often the console looks for jobs that other roost processes started, changed or left."""
DOING = {"wake": "waking", "sleep": "stopping", "retire": "retiring"}
"""What an assistant's row says while a lifecycle action runs on it (`stopping…`)."""


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
        self.sources = FleetSources(context, self.http)
        self.snapshot = self.sources.empty_snapshot()
        self.builder = FleetBuilder()
        self.fleet: tuple[Assistant, ...] = self.builder.build(self.snapshot)
        self.pollers: dict[str, Poller] = {}
        self._pending_health: dict[str, HealthRecord] = {}
        self._engine_events: list[EngineEvents] = []
        self.job_store = JobStore.at(context.paths)
        self.exporter = Exporter(self.http)
        self._ticker: Timer | None = None
        self._state_warned = False
        self._unsaved_events: list[Event] = []
        self._store_lock = asyncio.Lock()
        self._lifecycle_busy: dict[str, str] = {}
        """assistant key -> the lifecycle action under way on it (DOING's words)."""
        self.attacher = Attacher.of(context, self.http, lambda: self.sources.platform)
        self.panes_screen = PanesScreen(leave_key=self._leave_keys()[0])
        """Kept while hidden: its panes stay connected behind the main screen."""
        self.set_keymap(dict(context.config.keys))

    def get_default_screen(self) -> Screen[None]:
        self.main_screen = MainScreen(self.context)
        return self.main_screen

    async def on_mount(self) -> None:
        self.sub_title = self.context.hostname
        self.install_screen(self.panes_screen, "panes")  # popping it must not close its panes
        await self._show_recent_events()
        # The lockfile first: it names the platform URL, so nothing is ever sent to another.
        self.apply_update(await self.sources.registry())
        assert self.snapshot.lockfile is not None
        try:
            self.sources.connect_platform(self.snapshot.lockfile.platform_base_url)
        except RoostError as error:
            self.notify(str(error), title="Platform token", severity="error", timeout=30)
        config = self.context.config
        steps: dict[str, tuple[float, Callable[[], Awaitable[None]]]] = {
            "this machine": (config.tmux_refresh_seconds, self._look_at_this_machine),
            "lockfile": (REGISTRY_SECONDS, self._read_registry),
            "docker": (config.docker_refresh_seconds, self._scan_engines),
            "job history": (OTHER_ROOSTS_SECONDS, self._follow_other_roosts),
        }
        if self.sources.platform is not None:
            steps["platform"] = (config.platform_refresh_seconds, self._list_platform)
        for name, (interval, step) in steps.items():
            poller = Poller(name, interval, step, self._poll_failed)
            self.pollers[name] = poller
            self.run_worker(poller.run(), name=name, group="pollers", exit_on_error=False)
        policy = HealthPolicy(
            interval=config.health_interval_seconds, concurrency=config.health_concurrency
        )
        self.monitor = HealthMonitor(
            HealthScheduler(policy), self.sources.prober, self._health_result
        )
        self._follow_fleet()
        self.run_worker(self.monitor.run(), name="health", group="pollers", exit_on_error=False)
        self._load_jobs()
        for engine in configured_engines(config, self.context.environ):
            self._follow_engine(EngineEvents(engine, self._engine_changed))
        if self.initial_attach is not None:
            self.post_message(MainScreen.AttachRequested(self.initial_attach))
        self.app_suspend_signal.subscribe(self, lambda _: self.monitor.pause())
        self.app_resume_signal.subscribe(self, lambda _: self.monitor.resume())

    async def on_unmount(self) -> None:
        for events in self._engine_events:
            events.close()
        unsaved, self._unsaved_events = self._unsaved_events, []
        try:
            await asyncio.to_thread(self.job_store.database.add_events, unsaved)
        except RoostError as error:  # nobody is left to tell but the log
            log.warning("events not saved: %s", error)
        await self.http.aclose()

    def apply_update(self, update: Update) -> bool:
        """Apply a source's update and show the fleet it makes; True when anything changed.

        Nothing is applied once the app is shutting down: the screen's widgets are going away,
        and a last batch of results may still arrive.
        """
        if not self.is_running:
            return False
        snapshot = update(self.snapshot)
        if snapshot == self.snapshot:
            return False
        self.snapshot = snapshot
        self.fleet = self.builder.build(snapshot)
        self.main_screen.fleet = self.fleet
        return True

    def _poll_failed(self, name: str, error: BaseException) -> None:
        """A source's step failed (the poller logged it with its traceback, and goes on)."""
        log_file = self.context.paths.log_file
        what = (
            error if isinstance(error, RoostError) else f"internal error; details are in {log_file}"
        )
        self.notify(f"{name}: {what}", title="Refresh failed", severity="error", timeout=15)

    async def _look_at_this_machine(self) -> None:
        previous = self.snapshot.tmux
        self.apply_update(await self.sources.this_machine())
        listing, tmux = self.snapshot.tmux, self.context.tmux
        if listing and (previous is None or listing.state != previous.state):
            log.info("%s: %s %s", tmux.describe(), listing.state.value, listing.detail)

    async def _read_registry(self) -> None:
        if self.apply_update(await self.sources.registry()):
            self._follow_fleet()

    async def _scan_engines(self) -> None:
        if self.apply_update(await self.sources.engines()):
            self._follow_fleet()

    async def _list_platform(self) -> None:
        update, lockfile_changed = await self.sources.platform_listing()
        self.apply_update(update)
        if lockfile_changed:
            self.pollers["lockfile"].wake()

    def _follow_fleet(self) -> None:
        """Probe what is probeable now; forget the health of what no longer is (it sleeps)."""
        targets = health_targets(self.snapshot, self.fleet)
        self.monitor.follow(targets)
        keys = {target.key for target in targets}
        if set(self.snapshot.health) - keys:
            self.apply_update(
                lambda s: dataclasses.replace(
                    s, health={k: v for k, v in s.health.items() if k in keys}
                )
            )

    def _health_result(self, key: str, record: HealthRecord, change: Transition | None) -> None:
        """One probe's result. Results are applied in batches, at most twice a second,
        so a sweep of a thousand assistants is a few redraws, not a thousand."""
        if not self.is_running:
            return  # shutting down: the screen is going away
        self._pending_health[key] = record
        if change is not None:
            name = next((a.name for a in self.fleet if a.key == key), key)
            line = f"{name}: {change.before} → {change.after}"
            log.info("health: %s", line)
            self._event(line)
        if len(self._pending_health) == 1:
            self.set_timer(HEALTH_BATCH_SECONDS, self._apply_health)

    def _apply_health(self) -> None:
        records, self._pending_health = self._pending_health, {}
        self.apply_update(with_health(records, self.context.clock()))

    @work(thread=True, group="docker-events", exit_on_error=False)
    def _follow_engine(self, events: EngineEvents) -> None:
        self._engine_events.append(events)
        events.run()

    def _engine_changed(self) -> None:
        """Called from an engine's event thread: rescan the engines now."""
        self.call_from_thread(self.pollers["docker"].wake)

    def on_main_screen_refresh_requested(self, message: MainScreen.RefreshRequested) -> None:
        if message.assistant_key is not None:
            self.monitor.reprobe([message.assistant_key])
            return
        for poller in self.pollers.values():
            poller.wake()
        self.monitor.reprobe()

    def on_main_screen_use_requested(self, message: MainScreen.UseRequested) -> None:
        self._use(message.assistant_id)

    @work(group="lockfile-writes", exit_on_error=False)
    async def _use(self, assistant_id: str) -> None:
        try:
            await asyncio.to_thread(set_active, self.context.vellum, assistant_id)
        except RoostError as error:
            self.notify(str(error), title="Use", severity="error", timeout=15)
            return
        log.info("active assistant is now %s", assistant_id)
        self.notify(f"{assistant_id} is now the active assistant.", title="Use")
        self.pollers["lockfile"].wake()

    # -- terminal panes --------------------------------------------------------------------

    def on_main_screen_attach_requested(self, message: MainScreen.AttachRequested) -> None:
        self.run_worker(self._open_attachment(message.request), group="attach", exclusive=True)

    def on_main_screen_panes_requested(self, message: MainScreen.PanesRequested) -> None:
        if not self.panes_screen.panes:
            self.notify(
                "No pane is open: enter attaches to the selected session, t opens a shell.",
                title="Panes",
            )
            return
        self.push_screen(self.panes_screen)

    async def _open_attachment(self, request: AttachRequest) -> None:
        """Open a pane on the requested session; without one, on a session the user picks
        among the assistant's tmux sessions, or a new shell. Problems are notified, never
        raised."""
        assistant, session, mode = request.assistant, request.session, request.mode
        title = f"Attach to {assistant.name}"
        try:
            place = await place_of(self.attacher, assistant)
            here = isinstance(place, HostPlace)
            if session is None and (request.choose or mode is Mode.WATCH or not here):
                session = await self._pick_session(assistant, place, mode)
                if session is None:
                    return
        except RoostError as error:
            self.notify(str(error), title=title, severity="warning")
            return
        if session:
            attachment = Attachment(assistant.name, place, session)
        else:
            attachment = self.attacher.new_shell(assistant.name, place)
        if attachment.session is None:
            mode = Mode.DRIVE  # a new shell is the operator's own
        elif mode is None:
            config = self.context.config
            mode = config.local_mode if isinstance(place, HostPlace) else config.remote_mode
        await self.open_pane(attachment, mode)

    async def _pick_session(
        self, assistant: Assistant, place: Place, mode: Mode | None
    ) -> str | None:
        """A tmux session of `assistant` (NEW_SHELL for a new shell, None: nothing to open).
        The only session is taken without asking when there is nothing else to choose."""
        self.notify(f"Looking for {assistant.name}'s tmux sessions…", timeout=2)
        listing = await self.attacher.sessions(place)
        names = [session.name for session in listing.sessions]
        watching = mode is Mode.WATCH
        if listing.state is TmuxState.ERROR and not watching:
            self.notify(f"{listing.detail}; opening a shell", title=assistant.name)
        if not names:
            if watching:
                raise RoostError(
                    f"nothing to watch: {assistant.name} has no tmux session "
                    f"({listing.detail or 'none running'})"
                )
            return NEW_SHELL
        if watching and len(names) == 1:
            return names[0]
        picker = SessionPicker(f"{assistant.name}: attach to", names, new_shell=not watching)
        return await self.push_screen_wait(picker)

    async def open_pane(self, attachment: Attachment, mode: Mode) -> None:
        """Show the panes screen with a new pane on `attachment`, current and typing."""
        config = self.context.config
        pane = TerminalPane(
            attachment,
            self.attacher.backend,
            mode=mode,
            scrollback=config.terminal_scrollback,
            record=self._recorder if config.recordings_mb else None,
            history=self.attacher.history,
        )
        if self.screen is not self.panes_screen:
            await self.push_screen(self.panes_screen)
        await self.panes_screen.add(pane)

    def _recorder(self, attachment: Attachment, size: TerminalSize) -> Recorder:
        return Recorder(
            self.context.paths.recordings_dir,
            name=attachment.title,
            size=size,
            title=attachment.title,
            limit_bytes=self.context.config.recordings_mb << 20,
        )

    # -- jobs ------------------------------------------------------------------------------

    @work(group="jobs", exit_on_error=False)
    async def _load_jobs(self, first: bool = True) -> None:
        """Show the history, report a damaged one, and carry on with the jobs whose roost process
        ended (at start, and whenever `_follow_other_roosts` sees one end)."""
        async with self._store_lock:
            try:
                jobs = await asyncio.to_thread(self.job_store.load)
            except RoostError as error:
                self.notify(str(error), title="Job history", severity="error", timeout=30)
                return
            self.main_screen.jobs = jobs
        if any(not job.state.finished for job in jobs):
            self._start_ticker()
        if first:
            for problem in self.job_store.problems:
                self.notify(str(problem), title="Job history", severity="error", timeout=30)
        for job in self.job_store.interrupted():
            try:
                async with self._store_lock:
                    claimed = await asyncio.to_thread(self.job_store.claim, job)
                if not claimed:
                    continue  # another roost starting at the same time carries it on
            except RoostError as error:
                self.notify(str(error), title="Job history", severity="error", timeout=30)
                return
            assistant = self._assistant(job.assistant_id)
            try:
                if assistant is None:
                    raise RoostError("its assistant is gone")
                target = export_target(self.sources, self.snapshot, assistant)
            except RoostError as error:
                now = self.context.clock()
                await self._record(
                    await asyncio.to_thread(abandoned, job, JobState.LOST, now, str(error))
                )
                continue
            self._run_job(self.exporter.resume(target, job))

    async def _follow_other_roosts(self) -> None:
        """Show the jobs of other roost processes (`roost backup` in a script, another
        console) as they change, and carry on with theirs when they die."""
        try:
            stale = await asyncio.to_thread(self.job_store.stale)
        except RoostError as error:
            self._state_failed(error)
            return
        if stale:
            self._load_jobs(first=False)

    def _assistant(self, assistant_id: str) -> Assistant | None:
        return next(
            (a for a in self.fleet if a.id == assistant_id and a.source is Source.LOCKFILE), None
        )

    def on_main_screen_backup_requested(self, message: MainScreen.BackupRequested) -> None:
        self._backup(message.assistant)

    def _backup(self, assistant: Assistant) -> None:
        try:
            target = export_target(self.sources, self.snapshot, assistant)
        except RoostError as error:
            self.notify(str(error), title="Backup", severity="error")
            return
        wake = wake_repair(self.context, self.http, self.snapshot, assistant)
        self._run_job(backup_with_repair(self.exporter, target, self._destination(assistant), wake))

    def _destination(self, assistant: Assistant) -> Path:
        return backup_destination(self.context.paths.data_dir, assistant.name, self.exporter.now())

    @work(group="jobs", exit_on_error=False)
    async def _run_job(self, jobs: AsyncGenerator[Job, None]) -> None:
        """Follow one job to its end: each snapshot shown and recorded."""
        job: Job | None = None
        self._start_ticker()
        async with contextlib.aclosing(jobs) as snapshots:
            async for job in snapshots:
                await self._record(job)
        if job is None:
            return
        title = f"Backup of {job.assistant_name}"
        if job.in_progress_job_id:
            self._offer_to_follow(job)
        elif job.state is JobState.COMPLETE:
            self.notify(f"{job.result_path} ({format_bytes(job.size or 0)})", title=title)
        else:
            self.notify(job.error or job.state.value, title=title, severity="error", timeout=15)

    async def _record(self, job: Job) -> None:
        """Put a snapshot in the history (which orders and bounds the jobs) and show it. One
        write at a time: jobs run side by side, and they share the store's view."""
        async with self._store_lock:
            try:
                await asyncio.to_thread(self.job_store.put, job)
            except RoostError as error:  # the store still holds the job; the row is unsaved
                self._state_failed(error)
            self.main_screen.jobs = self.job_store.jobs

    def _start_ticker(self) -> None:
        if self._ticker is None:
            self._ticker = self.set_interval(0.25, self._tick_jobs)

    def _tick_jobs(self) -> None:
        if any(not job.state.finished for job in self.main_screen.jobs):
            self.main_screen.tick()
        elif self._ticker is not None:
            self._ticker.stop()
            self._ticker = None

    def _offer_to_follow(self, job: Job) -> None:
        runtime_job = job.in_progress_job_id
        assistant = self._assistant(job.assistant_id)
        if runtime_job is None or assistant is None:
            return
        question = (
            f"{assistant.name} is already running an export (job {runtime_job}). "
            "Follow that job here instead?"
        )

        def answered(yes: bool | None) -> None:
            if yes:
                target = export_target(self.sources, self.snapshot, assistant)
                destination = self._destination(assistant)
                self._run_job(self.exporter.follow(target, runtime_job, destination))

        self.push_screen(ConfirmScreen("Export in progress", question), answered)

    async def on_main_screen_job_action_requested(
        self, message: MainScreen.JobActionRequested
    ) -> None:
        job = next((j for j in self.main_screen.jobs if j.id == message.job_id), None)
        if job is None:
            return
        if message.action == "retry":
            assistant = self._assistant(job.assistant_id)
            if not job.state.finished:
                self.notify("This job is still running.", title="Retry")
            elif assistant is None:
                self.notify(f"{job.assistant_name} is gone.", title="Retry", severity="error")
            else:
                self._backup(assistant)
        elif message.action == "reveal":
            path = job.result_path or job.corrupt_path
            if path is None:
                self.notify("This job saved no file.", title="Path")
            else:
                self.copy_to_clipboard(str(path))
                self.notify(f"{path}\n(copied to the clipboard)", title="Path")
        elif message.action == "remove":
            async with self._store_lock:
                try:
                    await asyncio.to_thread(self.job_store.remove, job.id)
                except RoostError as error:
                    self.notify(str(error), title="Remove", severity="warning")
                self.main_screen.jobs = self.job_store.jobs
        else:
            self.main_screen.reveal_detail()

    def on_main_screen_lifecycle_requested(self, message: MainScreen.LifecycleRequested) -> None:
        """The one place lifecycle work starts: one action per assistant at a time, from the
        request (planning and asking included) until the fleet shows what it left."""
        assistant, action = message.assistant, message.action
        doing = self._lifecycle_busy.get(assistant.key)
        if doing is not None:
            self.notify(f"already {doing} {assistant.name}", title=action.capitalize())
            return
        self._lifecycle_busy[assistant.key] = DOING[action]
        if action == "wake":
            self._lifecycle(assistant, action)
        elif action == "sleep":
            self._plan_sleep(assistant)
        else:
            self._plan_retire(assistant)

    def _engine_for(self, assistant: Assistant) -> Engine:
        """The engine the fleet saw the assistant on, else the one that has its containers."""
        engines = configured_engines(self.context.config, self.context.environ)
        return engine_of(assistant.id, engines, seen_on=assistant.where)

    @work(thread=True, group="lifecycle", exit_on_error=False)
    def _plan_sleep(self, assistant: Assistant) -> None:
        with self._reported(assistant, "sleep"):
            names = sleep_plan(self._engine_for(assistant), assistant.id)
            self.call_from_thread(self._confirm_sleep, assistant, names)

    def _confirm_sleep(self, assistant: Assistant, names: tuple[str, ...]) -> None:
        if not names:
            self.notify(f"Nothing of {assistant.name} is running.", title="Sleep")
            self._lifecycle_busy.pop(assistant.key, None)
            return
        question = f"Stop {', '.join(names)}? The assistant stops answering until it is woken."

        def answered(yes: bool | None) -> None:
            if yes:
                self._lifecycle(assistant, "sleep")
            else:
                self._lifecycle_busy.pop(assistant.key, None)

        self.push_screen(ConfirmScreen(f"Sleep {assistant.name}", question), answered)

    @work(thread=True, group="lifecycle", exit_on_error=False)
    def _lifecycle(self, assistant: Assistant, action: str) -> None:
        """Wake or sleep in a thread, each step in the events panel as it happens."""
        self.call_from_thread(self._lifecycle_started, assistant, action)
        with self._reported(assistant, action):
            if assistant.kind == "local":
                steps = list(self._follow(wake_local(assistant.id)))
            else:
                engine = self._engine_for(assistant)
                run = wake_docker if action == "wake" else sleep_docker
                steps = list(self._follow(run(engine, assistant.id)))
            self._steps_done(assistant, action, steps)

    @contextlib.contextmanager
    def _reported(self, assistant: Assistant, action: str) -> Iterator[None]:
        """Around a lifecycle worker's body, in its thread: any failure ends the action as
        failed (a RoostError in its own words, anything else as an internal error whose
        traceback goes to the log), so the assistant never stays busy."""
        try:
            yield
        except RoostError as error:
            self.call_from_thread(self._lifecycle_failed, assistant, action, str(error))
        except Exception:
            log.exception("%s of %s failed", action, assistant.name)
            problem = f"internal error; details are in {self.context.paths.log_file}"
            self.call_from_thread(self._lifecycle_failed, assistant, action, problem)

    def _lifecycle_started(self, assistant: Assistant, action: str) -> None:
        """The row says what is under way until the fleet shows what the action left."""
        doing = f"{DOING[action]}…"
        self._event(f"{assistant.name}: {doing}")
        self.apply_update(
            lambda s: dataclasses.replace(s, actions={**s.actions, assistant.key: doing})
        )

    def _steps_done(self, assistant: Assistant, action: str, steps: list[Step]) -> None:
        """From the worker's thread: say how the steps went, in one notification."""
        failed = any(step.failed for step in steps)
        self.call_from_thread(self._lifecycle_done, assistant, action, summarize(steps), failed)

    def _follow(self, steps: Iterable[Step]) -> Iterator[Step]:
        """Each step in the events panel as it happens. A step names what it acted on (the
        assistant itself, or its containers by name), so nothing is put in front of it."""
        for step in steps:
            self.call_from_thread(self._event, str(step))
            yield step

    def _event(self, line: str) -> None:
        """A status change: shown in the events panel, and saved for the next start."""
        event = Event(self.context.clock(), line)
        self.main_screen.add_event(event.at, event.line)
        self._unsaved_events.append(event)
        if len(self._unsaved_events) == 1:
            self.set_timer(EVENTS_SAVE_SECONDS, self._save_events)

    def _save_events(self) -> None:
        events, self._unsaved_events = self._unsaved_events, []
        if events:
            self._write_events(events)

    @work(thread=True, group="state", exit_on_error=False)
    def _write_events(self, events: list[Event]) -> None:
        try:
            self.job_store.database.add_events(events)
        except RoostError as error:
            self.call_from_thread(self._state_failed, error)

    def _state_failed(self, error: RoostError) -> None:
        """The state database failed; said once, as the next failure would say the same."""
        if not self._state_warned:
            self._state_warned = True
            self.notify(str(error), title="roost's state", severity="error", timeout=30)

    async def _show_recent_events(self) -> None:
        try:
            events = await asyncio.to_thread(self.job_store.database.recent_events, EVENTS_SHOWN)
        except RoostError as error:
            self._state_failed(error)
            return
        for event in events:
            self.main_screen.add_event(event.at, event.line)

    def _lifecycle_failed(self, assistant: Assistant, action: str, error: str) -> None:
        """A failure before any step (no engine, unreadable): in the events panel too."""
        self._event(f"{assistant.name}: {action} failed: {error}")
        self._lifecycle_done(assistant, action, error, True)

    def _lifecycle_done(self, assistant: Assistant, action: str, text: str, failed: bool) -> None:
        title = f"{action.capitalize()} {assistant.name}"
        self.notify(text, title=title, severity="error" if failed else "information")
        self.run_worker(self._settle(assistant), group="lifecycle", exit_on_error=False)

    async def _settle(self, assistant: Assistant) -> None:
        """Show the assistant as the action left it, in the same update that drops what its row
        said was under way, then accept the next action on it."""
        key = assistant.key
        update: Update | None = None

        def settled(snapshot: FleetSnapshot) -> FleetSnapshot:
            if update is not None:
                snapshot = update(snapshot)
            actions = {k: v for k, v in snapshot.actions.items() if k != key}
            return dataclasses.replace(snapshot, actions=actions)

        try:
            look = self.sources.registry if assistant.kind == "local" else self.sources.engines
            update = await look()
        finally:
            self.apply_update(settled)
            self._lifecycle_busy.pop(key, None)
        self._follow_fleet()

    @work(thread=True, group="lifecycle", exit_on_error=False)
    def _plan_retire(self, assistant: Assistant) -> None:
        with self._reported(assistant, "retire"):
            plan = inspect_retire(self._engine_for(assistant), assistant.id)
            self.call_from_thread(self._confirm_retire, assistant, plan)

    def _confirm_retire(self, assistant: Assistant, plan: RetirePlan) -> None:
        if plan.empty:
            self.notify(f"Nothing of {assistant.name} is left to remove.", title="Retire")
            self._lifecycle_busy.pop(assistant.key, None)
            return
        lines = ["This removes, for good:", *plan.describe()]
        screen = TypedConfirmScreen(f"Retire {assistant.name}", lines, assistant.id)

        def answered(yes: bool | None) -> None:
            if yes:
                self._retire(assistant, plan)
            else:
                self._lifecycle_busy.pop(assistant.key, None)

        self.push_screen(screen, answered)

    @work(thread=True, group="lifecycle", exit_on_error=False)
    def _retire(self, assistant: Assistant, plan: RetirePlan) -> None:
        self.call_from_thread(self._lifecycle_started, assistant, "retire")
        with self._reported(assistant, "retire"):
            steps = list(self._follow(retire_docker(plan)))
            self._steps_done(assistant, "retire", steps)

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

            async def run(action: str = command.action, node: object = command.node) -> None:
                await self.run_action(action, node)  # type: ignore[arg-type]

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
        Textual's wrapper, which has none), and the user sees one line naming the log file."""
        cause = error.error if isinstance(error, WorkerFailed) else error
        log.error("internal error; roost stops", exc_info=cause)
        self._return_code = 1
        if self._exception is None:  # the first one ends the app (and `run_test` re-raises it)
            self._exception = error
            self._exception_event.set()
            self.bell()
            log_file = self.context.paths.log_file
            self.panic(Text(f"roost stopped on an internal error; details are in {log_file}"))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A worker that keeps roost running when it fails (`exit_on_error=False`) handles the
        errors it expects; anything else it raised is a bug: logged with its traceback, and
        one line for the user."""
        worker = event.worker
        if event.state is WorkerState.ERROR and not worker.exit_on_error:
            name = worker.name or worker.group
            log.error("internal error in %s", name, exc_info=worker.error)
            self.notify(
                f"{name} stopped on an internal error; details are in "
                f"{self.context.paths.log_file}",
                title="Internal error",
                severity="error",
                timeout=30,
            )


KEY_SCOPES = (
    Scope("the main screen", (RoostApp.BINDINGS, MainScreen.BINDINGS)),
    Scope("the jobs table", (RoostApp.BINDINGS, MainScreen.BINDINGS, JobTable.BINDINGS)),
    Scope("the panes screen", (RoostApp.BINDINGS, PanesScreen.BINDINGS, TerminalPane.BINDINGS)),
    Scope("the help screen", (RoostApp.BINDINGS, HelpScreen.BINDINGS)),
    Scope("a confirmation", (RoostApp.BINDINGS, ConfirmScreen.BINDINGS)),
    Scope("a typed confirmation", (RoostApp.BINDINGS, TypedConfirmScreen.BINDINGS)),
    Scope("the session picker", (RoostApp.BINDINGS, SessionPicker.BINDINGS)),
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
