"""The main screen: every assistant and its sessions, every job, and the selected row's details."""

from __future__ import annotations

import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import compress, count
from operator import attrgetter, is_not
from typing import ClassVar

from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.reactive import var
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Header, Input, RichLog, Static

from services.activity.model import SESSION_MARK, TimelineEntry, session_key
from services.context import Context
from services.core.mode import Mode
from services.fleet.filter import FilterError, FleetFilter
from services.fleet.model import FILTER_FIELDS, Assistant, AssistantKind, Source
from services.fleet.sort import SORT_KEYS, sort_fleet
from services.jobs.record import Job
from services.roost import Action, AttachRequest, Capabilities
from services.terminal.tmux import TmuxSession
from tui.job_table import JOB_COLUMNS, JobTable
from tui.present import (
    ASSISTANT_COLUMNS,
    FleetRows,
    assistant_facts,
    bucket_styles,
    inbox_title,
    job_facts,
    job_row,
    session_facts,
)
from tui.screens.help import Section, bound_commands
from widgets.detail_panel import DetailPanel
from widgets.footer import PinnedFooter
from widgets.keyed_table import KeyedTable
from widgets.rewind_timeline import RewindTimeline

NO_JOBS = (
    "No jobs yet. A job is a long-running operation on an assistant, such as an export "
    "(a backup of its data into a .vbundle file); it runs in the background and is listed here "
    "with its progress and result. Start one with b on a Vellum assistant's row."
)

FILTER_HINT = "/ to filter: words, or " + " ".join(
    f"{name}:…" for name in FILTER_FIELDS if name != "version"
)
SORTABLE = tuple(column.key for column in ASSISTANT_COLUMNS if column.key in SORT_KEYS)
COLUMN_LABELS = {column.key: column.label for column in ASSISTANT_COLUMNS}
"""What the sort label calls a column: its header (SEEN), never the internal key (last_seen)."""


NARROW = 120
"""Below this width the detail panel starts hidden (`d` shows it): the table needs the room."""


class EventsLog(RichLog):
    """The events panel's log. A RichLog keeps what is written before it knows its width and
    writes it on its first Resize with a width; the panel starts hidden, and when it is shown
    that Resize sometimes never reaches the log (its size was set while it was hidden), which
    left every event written so far unseen. Being shown with a width is as good a first Resize."""

    def on_show(self) -> None:
        if self.size.width:
            self.on_resize(events.Resize(self.size, self.virtual_size, self.container_size))


class MainScreen(Screen[None]):
    """The fleet at a glance. The app sets `fleet`; this screen filters, sorts and shows it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "focus_filter", "Filter", id="filter", tooltip="Type to narrow the list"),
        Binding(
            "escape",
            "clear_filter",
            "Clear filter",
            id="clear_filter",
            show=False,
            tooltip="Empty the filter and go back to the list",
        ),
        Binding(
            "r",
            "refresh",
            "Re-probe",
            id="refresh",
            tooltip="Probe the selected assistant's health now",
        ),
        Binding(
            "R",
            "refresh_all",
            "Refresh all",
            id="refresh_all",
            show=False,
            tooltip="Look at every source again and probe every assistant now",
        ),
        Binding(
            "i",
            "inbox",
            "Inbox",
            id="inbox",
            tooltip="What every assistant waits for from you: answer it there",
        ),
        Binding(
            "j",
            "focus_jobs",
            "Jobs",
            id="focus_jobs",
            tooltip="Go to the jobs table: its keys act on the job under the cursor (esc: back)",
        ),
        Binding(
            "e",
            "toggle_events",
            "Events",
            id="events",
            tooltip="Show or hide the status changes, newest last",
        ),
        Binding(
            "d",
            "toggle_detail",
            "Detail",
            id="toggle_detail",
            tooltip=f"Show or hide the detail panel (hidden at first below {NARROW} columns)",
        ),
        Binding(
            "s", "sort", "Sort", id="sort", tooltip="Sort by the next column (again: the one after)"
        ),
        Binding(
            "S",
            "reverse_sort",
            "Reverse",
            id="reverse_sort",
            show=False,
            tooltip="Reverse the sort order",
        ),
        Binding(
            "u",
            "use",
            "Use",
            id="use",
            tooltip="Make the selected assistant the active one (written to the Vellum lockfile)",
        ),
        Binding(
            "enter",
            "attach",
            "Attach",
            id="attach",
            tooltip="Attach to the selected tmux session (or open the assistant's terminal)",
        ),
        Binding(
            "w",
            "watch",
            "Watch",
            id="watch",
            tooltip="Watch the selected tmux session: read-only, your size never shrinks it",
        ),
        Binding(
            "t",
            "terminal",
            "Terminal",
            id="terminal",
            tooltip="Open a shell here, or on the selected ssh host",
        ),
        Binding(
            "v",
            "panes",
            "Panes",
            id="panes",
            tooltip="Back to the open terminal panes",
        ),
        Binding(
            "W",
            "wake",
            "Wake",
            id="wake",
            show=False,
            tooltip="Start a sleeping docker assistant's containers (or a local one's daemon)",
        ),
        Binding(
            "Z",
            "sleep",
            "Sleep",
            id="sleep",
            show=False,
            tooltip="Stop a docker assistant's containers (asks first)",
        ),
        Binding(
            "X",
            "retire",
            "Retire",
            id="retire",
            show=False,
            tooltip="Remove a docker assistant's containers, network and volumes (type its name)",
        ),
        Binding(
            "b",
            "backup",
            "Backup",
            id="backup",
            show=False,
            tooltip="Back up the selected assistant (an export job)",
        ),
        Binding(
            "B",
            "backups",
            "Backups",
            id="backups",
            show=False,
            tooltip="The selected assistant's backups: restore, verify, reveal, delete",
        ),
        Binding(
            "tab",
            "app.focus_next",
            "Next panel",
            id="next_panel",
            show=False,
            tooltip="Move the focus to the next panel",
        ),
        Binding(
            "shift+tab",
            "app.focus_previous",
            "Previous panel",
            id="previous_panel",
            show=False,
            tooltip="Move the focus to the previous panel",
        ),
    ]

    jobs: var[tuple[Job, ...]] = var((), init=False, always_update=True)
    """Every job, newest first (the app owns the history and sets this)."""

    # `var`, not `reactive`: a reactive on a screen repaints the whole screen when it changes,
    # and the watchers below already redraw exactly the rows that changed.
    fleet: var[tuple[Assistant, ...]] = var((), init=False, always_update=True)
    filter_text: var[str] = var("", init=False)
    sort_column: var[str | None] = var(None, init=False)
    sort_reverse: var[bool] = var(False, init=False)
    inbox_count: var[int] = var(0, init=False)
    """How many items wait in the inbox (the app's activity part sets this)."""

    @dataclass
    class RefreshRequested(Message):
        """The user asked to probe one assistant now, or (None) to refresh everything."""

        assistant_key: str | None

    @dataclass
    class UseRequested(Message):
        """The user asked to make this assistant the active one."""

        assistant: Assistant

    @dataclass
    class AttachRequested(Message):
        """The user asked to open a pane."""

        request: AttachRequest

    @dataclass
    class PanesRequested(Message):
        """The user asked to see the open terminal panes again."""

    @dataclass
    class InboxRequested(Message):
        """The user asked to see the needs-you inbox."""

    @dataclass
    class BackupRequested(Message):
        """The user asked to back this assistant up."""

        assistant: Assistant

    @dataclass
    class BackupsRequested(Message):
        """The user asked to see this assistant's backups."""

        assistant: Assistant

    @dataclass
    class LifecycleRequested(Message):
        """The user asked to wake, sleep or retire this assistant."""

        assistant: Assistant
        action: Action

    def __init__(self, context: Context) -> None:
        super().__init__()
        self.context = context
        self._rows = FleetRows()
        self._composed = False
        """The app may set `fleet` before this screen's widgets exist: show it once they do."""
        self._early_events: list[tuple[datetime, str]] = []
        """Likewise events (those of the last run, read at start)."""
        self._tick = 0
        self._index: tuple[tuple[Assistant, ...], dict[str, Assistant]] = ((), {})
        self._order: tuple[object, ...] = (None, None, None)
        self._ordered: list[Assistant] = []
        """The fleet sorted, made again only when the fleet or the order changes."""
        self._filter = FleetFilter()
        self.timeline: Callable[[str], Sequence[TimelineEntry]] = lambda key: ()
        """An assistant's recent activity events by fleet key (the activity part sets this)."""

    def compose(self) -> ComposeResult:
        yield Header(icon="")
        with Vertical(id="left"):
            with Vertical(id="assistants-panel", classes="panel") as assistants:
                assistants.border_title = self._assistants_title()
                yield Input(placeholder=FILTER_HINT, id="filter")
                yield Static(id="filter-error")
                yield KeyedTable(ASSISTANT_COLUMNS, id="assistants")
            with Vertical(id="events-panel", classes="panel") as events:
                events.border_title = "Events"
                events.display = False
                yield EventsLog(id="events", max_lines=500, wrap=False)
            with Vertical(id="jobs-panel", classes="panel") as jobs:
                jobs.border_title = "Jobs"
                yield JobTable(JOB_COLUMNS, id="jobs")
                yield Static(NO_JOBS, id="jobs-empty")
        with VerticalScroll(id="detail-panel", classes="panel") as detail:
            detail.border_title = "Detail"
            yield DetailPanel(id="detail")
        yield PinnedFooter(("quit", "help"))

    def on_resize(self, event: events.Resize) -> None:
        self.set_class(event.size.width < NARROW, "-narrow")

    def action_toggle_detail(self) -> None:
        self.toggle_class("-detail-toggled")

    def reveal_detail(self) -> None:
        """Give the detail panel the focus, showing it first when it is hidden."""
        panel = self._panel("detail")
        if not panel.display:
            self.action_toggle_detail()
        self.call_after_refresh(panel.focus)

    # -- the widgets, by what they are ----------------------------------------------------------

    @property
    def assistants_table(self) -> KeyedTable:
        return self.query_exactly_one("#assistants", KeyedTable)

    @property
    def jobs_table(self) -> JobTable:
        return self.query_exactly_one("#jobs", JobTable)

    @property
    def detail(self) -> DetailPanel:
        return self.query_exactly_one("#detail", DetailPanel)

    @property
    def filter_input(self) -> Input:
        return self.query_exactly_one("#filter", Input)

    @property
    def events_log(self) -> RichLog:
        return self.query_exactly_one("#events", RichLog)

    def _panel(self, name: str) -> Widget:
        """The bordered panel `name` (assistants, events, jobs, detail)."""
        return self.query_exactly_one(f"#{name}-panel")

    def on_mount(self) -> None:
        self.set_class(self.app.size.width < NARROW, "-narrow")
        self.assistants_table.focus()
        self._composed = True
        self._show_fleet()
        self.watch_jobs(self.jobs)
        for when, line in self._early_events:
            self.add_event(when, line)
        self._early_events.clear()
        self.app.theme_changed_signal.subscribe(self, self._recolour)

    def _recolour(self, _theme: object) -> None:
        """Statuses take their colours from the theme: draw them again in the new one."""
        self._show_fleet()
        self.watch_jobs(self.jobs)
        self.watch_inbox_count()

    def watch_fleet(self, previous: tuple[Assistant, ...], fleet: tuple[Assistant, ...]) -> None:
        changed = self._changed_in_place(previous, fleet)
        if changed is None:
            self._rows.forget_all_but(fleet)
            self._show_fleet()
            return
        styles = bucket_styles(self.app.current_theme)
        rows = self._rows.changed(changed, self.context.clock(), styles)
        self.assistants_table.replace_rows(rows)
        selected = self.assistants_table.selected_key
        if any(assistant.key == selected for assistant in changed):
            self.show_detail()

    def _changed_in_place(
        self, previous: tuple[Assistant, ...], fleet: tuple[Assistant, ...]
    ) -> list[Assistant] | None:
        """The assistants to redraw when nothing else on screen moves (same rows in the same
        order, no sessions touched, no filter or sort to re-apply); None means redraw all."""
        if not self._composed or self.filter_text.strip() or self.sort_column is not None:
            return None
        if len(previous) != len(fleet):
            return None
        changed = []
        # The positions of the new objects, found in C: a Python loop over 10,000 assistants
        # took most of a row update.
        for index in compress(count(), map(is_not, fleet, previous)):
            new, old = fleet[index], previous[index]
            if new.key != old.key or new.sessions or old.sessions:
                return None
            changed.append(new)
        return changed

    def _assistants_title(self) -> Text:
        """The assistants panel's title, with the inbox count: always in view."""
        count = inbox_title(self.inbox_count, bucket_styles(self.app.current_theme))
        return Text.assemble("Assistants · ", count)

    def watch_inbox_count(self) -> None:
        if self._composed:
            self._panel("assistants").border_title = self._assistants_title()

    def tick_ages(self) -> None:
        """Move the activity ages on (the activity part calls this every second while any
        assistant has an activity): only rows in view whose age text changed are drawn again.
        A thousand rows made anew each second kept a core busy (tests/perf/bench_activity.py);
        a row scrolled into view shows its age as of the last full pass, until the next tick."""
        if not self._composed:
            return
        table = self.assistants_table
        shown = {row.key: row for row in table.rows_in_view}
        active = [a for a in self.fleet if a.activity is not None and a.key in shown]
        styles = bucket_styles(self.app.current_theme)
        rows = self._rows.changed(active, self.context.clock(), styles)
        table.replace_rows([row for row in rows if row is not shown[row.key]])
        self.show_detail()

    def watch_filter_text(self) -> None:
        self._show_fleet()

    def watch_sort_column(self) -> None:
        self._show_fleet()

    def watch_sort_reverse(self) -> None:
        self._show_fleet()

    def _show_fleet(self) -> None:
        if not self._composed:
            return
        order = (self.fleet, self.sort_column, self.sort_reverse)
        if any(a is not b for a, b in zip(order, self._order, strict=True)):
            self._order, self._ordered = order, sort_fleet(*order)
        error = self.query_exactly_one("#filter-error", Static)
        try:
            shown = self._filter.shown(self._ordered, self.filter_text)
        except FilterError as problem:  # the rows shown stay until the filter means something
            error.update(Text(str(problem)))
            error.display = True
            return
        error.display = False
        styles = bucket_styles(self.app.current_theme)
        table = self.assistants_table
        table.show_rows(self._rows.rows(shown, self.context.clock(), styles))
        panel = self._panel("assistants")
        total = len(self.fleet) + sum(map(len, map(attrgetter("sessions"), self.fleet)))
        if self.filter_text.strip():
            subtitle = [f"{len(table.rows_shown)} of {total} shown"]
        else:
            subtitle = [f"{total} row{'' if total == 1 else 's'}"]
        if self.sort_column:
            label = COLUMN_LABELS[self.sort_column].lower()
            subtitle.append(f"sorted by {label}{' ↑' if self.sort_reverse else ''}")
        if panel.border_subtitle != (text := " · ".join(subtitle)):
            panel.border_subtitle = text
        self.show_detail()

    def selected(self) -> Assistant | None:
        """The assistant under the cursor, or the one whose session is under it."""
        key = self.assistants_table.selected_key
        if key is None:
            return None
        by_key = self._by_key()
        return by_key.get(key) or by_key.get(key.rpartition(SESSION_MARK)[0])

    def _by_key(self) -> dict[str, Assistant]:
        """The fleet by key, made again only for a new fleet (each row moved looks one up)."""
        if self._index[0] is not self.fleet:
            self._index = (self.fleet, {assistant.key: assistant for assistant in self.fleet})
        return self._index[1]

    def selected_session(self, assistant: Assistant) -> TmuxSession | None:
        """The session of `assistant` under the cursor; None when the cursor is on its row."""
        key = self.assistants_table.selected_key
        return next(
            (s for s in assistant.sessions if key == session_key(assistant.key, s.id)), None
        )

    def show_detail(self) -> None:
        """Show the selected row's facts (again: showing the same ones costs nothing)."""
        if isinstance(self.focused, JobTable):
            return  # the detail panel shows the selected job
        detail = self.detail
        assistant = self.selected()
        styles = bucket_styles(self.app.current_theme)
        now = self.context.clock()
        session = self.selected_session(assistant) if assistant else None
        if assistant is None:
            detail.show("Nothing selected", [("", Text("No row matches the filter.", style="dim"))])
        elif session is None:
            timeline = self.timeline(assistant.key)
            detail.show(assistant.name, assistant_facts(assistant, now, styles, timeline))
        else:
            attach = shlex.join(self.context.tmux.argv("attach", "-t", session.name))
            detail.show(session.name, session_facts(assistant, session, attach, now, styles))

    @on(KeyedTable.RowHighlighted, "#assistants")
    def _assistant_highlighted(self) -> None:
        self.show_detail()

    @on(KeyedTable.RowHighlighted, "#jobs")
    def _job_highlighted(self) -> None:
        self._show_job()

    @on(JobTable.DetailRequested)
    def _job_detail_requested(self) -> None:
        self.reveal_detail()

    def on_descendant_focus(self) -> None:
        if isinstance(self.focused, JobTable):
            self._show_job()
        elif self.focused is self.assistants_table:
            self.show_detail()

    def watch_jobs(self, jobs: tuple[Job, ...]) -> None:
        if not self._composed:
            return
        now = self.context.clock()
        styles = bucket_styles(self.app.current_theme)
        self.jobs_table.show_rows([job_row(job, now, self._tick, styles) for job in jobs])
        self.query_exactly_one("#jobs-empty").display = not jobs
        if isinstance(self.focused, JobTable):
            self._show_job()

    def tick(self) -> None:
        """Animate the running jobs' spinners and clocks (the app calls this while any runs)."""
        self._tick += 1
        self.watch_jobs(self.jobs)

    def selected_job(self) -> Job | None:
        key = self.jobs_table.selected_key
        return next((job for job in self.jobs if job.id == key), None)

    def _show_job(self) -> None:
        job = self.selected_job()
        if job is not None:
            styles = bucket_styles(self.app.current_theme)
            self.detail.show(f"job {job.id}", job_facts(job, self.context.clock(), styles))

    @on(KeyedTable.HeaderSelected, "#assistants")
    def _header_selected(self, event: KeyedTable.HeaderSelected) -> None:
        column = event.column
        if column in SORT_KEYS:
            if column == self.sort_column:
                self.sort_reverse = not self.sort_reverse
            else:
                self.sort_column, self.sort_reverse = column, False

    def on_input_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value

    def on_input_submitted(self) -> None:
        self.assistants_table.focus()

    def action_focus_filter(self) -> None:
        self.filter_input.focus()

    def action_focus_jobs(self) -> None:
        self.jobs_table.focus()

    def action_focus_assistants(self) -> None:
        self.assistants_table.focus()

    def help_sections(self, panes: Screen[None], leave_key: str) -> list[Section]:
        """The keys that act elsewhere, for `?` on this screen: the jobs table's, and the
        terminal panes' (after the leave key)."""
        app, keymap = self.app, self.context.config.keys
        focus_jobs = [b for b in self.BINDINGS if isinstance(b, Binding) and b.id == "focus_jobs"]
        jobs_key = ", ".join(bound_commands(app, focus_jobs, keymap, self)[0].keys)
        return [
            (
                f"In the jobs table ({jobs_key} goes there)",
                bound_commands(app, JobTable.BINDINGS, keymap, self.jobs_table),
            ),
            (
                f"In a terminal pane, after {leave_key}",
                bound_commands(app, panes.BINDINGS, keymap, panes),
            ),
            (
                f"Rewinding a terminal pane ({leave_key} then h)",
                bound_commands(app, RewindTimeline.BINDINGS, keymap, panes),
            ),
        ]

    def action_clear_filter(self) -> None:
        self.filter_input.value = ""
        self.assistants_table.focus()

    def action_refresh(self) -> None:
        assistant = self.selected()
        if assistant is None or not assistant.runtime_url:
            self.notify("Nothing to probe on this row.", title="Re-probe", timeout=3)
            return
        self.post_message(self.RefreshRequested(assistant.key))
        self.notify(f"Probing {assistant.name}…", timeout=1.5)

    def action_refresh_all(self) -> None:
        self.post_message(self.RefreshRequested(None))
        self.notify("Refreshing every source…", timeout=1.5)

    def action_toggle_events(self) -> None:
        panel = self._panel("events")
        panel.display = not panel.display

    def add_event(self, when: datetime, line: str) -> None:
        """A status change for the events panel (kept while hidden)."""
        if not self._composed:
            self._early_events.append((when, line))
            return
        stamp = when.astimezone().strftime("%H:%M:%S")
        self.events_log.write(Text.assemble((stamp, "dim"), "  ", line))

    def action_sort(self) -> None:
        index = SORTABLE.index(self.sort_column) + 1 if self.sort_column else 0
        self.sort_column = SORTABLE[index] if index < len(SORTABLE) else None
        self.sort_reverse = False

    def action_reverse_sort(self) -> None:
        self.sort_column = self.sort_column or SORTABLE[0]
        self.sort_reverse = not self.sort_reverse

    def action_use(self) -> None:
        assistant = self._allowed(Action.USE, "Use")
        if assistant is None:
            return
        if assistant.active:
            self.notify(f"{assistant.name} is already the active assistant.", title="Use")
        else:
            self.post_message(self.UseRequested(assistant))

    def action_wake(self) -> None:
        self._lifecycle(Action.WAKE)

    def action_sleep(self) -> None:
        self._lifecycle(Action.SLEEP)

    def action_retire(self) -> None:
        self._lifecycle(Action.RETIRE)

    def _lifecycle(self, action: Action) -> None:
        """Ask for `action` on the selected assistant (the app says whether it supports it)."""
        assistant = self.selected()
        if assistant is not None:
            self.post_message(self.LifecycleRequested(assistant, action))

    def action_terminal(self) -> None:
        """A new shell: on the selected host of `[[hosts]]` (its row or a session's under it),
        else on this machine."""
        selected = self.selected()
        if selected is not None and selected.kind is AssistantKind.SSH_HOST:
            request = AttachRequest(selected, None, Mode.DRIVE, shell=True)
            self.post_message(self.AttachRequested(request))
            return
        host = next((a for a in self.fleet if a.source is Source.HOST), None)
        if host is not None:  # always there once the fleet is shown
            self.post_message(self.AttachRequested(AttachRequest(host, None, Mode.DRIVE)))

    def action_attach(self) -> None:
        self._open_session(None)

    def action_watch(self) -> None:
        self._open_session(Mode.WATCH)

    def _open_session(self, mode: Mode | None) -> None:
        """Open the selected session (or the assistant's terminal) in `mode` (None: the
        configured mode for where it is)."""
        assistant = self.selected()
        if assistant is None:
            return
        session = self.selected_session(assistant)
        request = AttachRequest(assistant, session.name if session else None, mode)
        self.post_message(self.AttachRequested(request))

    def action_inbox(self) -> None:
        self.post_message(self.InboxRequested())

    def action_panes(self) -> None:
        self.post_message(self.PanesRequested())

    def action_backup(self) -> None:
        assistant = self._allowed(Action.BACKUP, "Backup")
        if assistant is not None:
            self.post_message(self.BackupRequested(assistant))

    def action_backups(self) -> None:
        # Backups are of what roost can back up: this machine, a session or a host has none.
        assistant = self._allowed(Action.BACKUP, "Backups")
        if assistant is not None:
            self.post_message(self.BackupsRequested(assistant))

    def _allowed(self, action: Action, title: str) -> Assistant | None:
        """The selected assistant when it supports `action`; else None, having said why."""
        assistant = self.selected()
        if assistant is None:
            refusal = "Select an assistant first."
        else:
            refusal = Capabilities.of(assistant).refusal(action)
        if refusal:
            self.notify(refusal, title=title, severity="warning")
            return None
        return assistant
