"""The main screen: every assistant and its sessions, every job, and the selected row's details."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Input, Static

from services.context import Context
from services.fleet import Assistant, filter_fleet
from tui.present import (
    ASSISTANT_COLUMNS,
    assistant_facts,
    bucket_styles,
    fleet_rows,
    session_facts,
    session_key,
)
from widgets.detail_panel import DetailPanel
from widgets.keyed_table import KeyedTable

JOB_COLUMNS = (
    ("JOB", "job"),
    ("ASSISTANT", "assistant"),
    ("TYPE", "type"),
    ("STATE", "state"),
    ("PROGRESS", "progress"),
    ("ELAPSED", "elapsed"),
    ("RESULT", "result"),
)

NO_JOBS = (
    "No jobs yet. A job is a long-running operation on an assistant, such as an export "
    "(a backup of its data into a .vbundle file); it runs in the background and is listed here "
    "with its progress and result. Start one with b on a Vellum assistant's row."
)


class MainScreen(Screen[None]):
    """The fleet at a glance. The app sets `fleet`; this screen filters and shows it."""

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
        Binding("r", "refresh", "Refresh", id="refresh", tooltip="Look at every source again now"),
        Binding(
            "b",
            "backup",
            "Backup",
            id="backup",
            show=False,
            tooltip="Back up the selected assistant (an export job)",
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

    fleet: reactive[tuple[Assistant, ...]] = reactive((), init=False, always_update=True)
    filter_text: reactive[str] = reactive("", init=False)

    @dataclass
    class RefreshRequested(Message):
        """The user asked to look at every source again now."""

    def __init__(self, context: Context) -> None:
        super().__init__()
        self.context = context

    def compose(self) -> ComposeResult:
        yield Header(icon="")
        with Vertical(id="left"):
            with Vertical(id="assistants-panel", classes="panel"):
                yield Input(placeholder="/ to filter: words that must all appear", id="filter")
                yield KeyedTable(ASSISTANT_COLUMNS, id="assistants")
            with Vertical(id="jobs-panel", classes="panel"):
                yield KeyedTable(JOB_COLUMNS, id="jobs")
                yield Static(NO_JOBS, id="jobs-empty")
        with VerticalScroll(id="detail-panel", classes="panel"):
            yield DetailPanel(id="detail")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#assistants-panel").border_title = "Assistants"
        self.query_one("#jobs-panel").border_title = "Jobs"
        self.query_one("#detail-panel").border_title = "Detail"
        self.query_one("#assistants", KeyedTable).focus()

    def watch_fleet(self) -> None:
        self._show_fleet()

    def watch_filter_text(self) -> None:
        self._show_fleet()

    def _show_fleet(self) -> None:
        shown = filter_fleet(self.fleet, self.filter_text)
        styles = bucket_styles(self.app.current_theme)
        table = self.query_one("#assistants", KeyedTable)
        table.show_rows(fleet_rows(shown, self.context.clock(), styles))
        panel = self.query_one("#assistants-panel")
        total = len(self.fleet) + sum(len(a.sessions) for a in self.fleet)
        panel.border_subtitle = (
            f"{len(table.rows_shown)} of {total} shown" if self.filter_text.strip() else ""
        )
        self._show_detail()

    def _show_detail(self) -> None:
        detail = self.query_one("#detail", DetailPanel)
        key = self.query_one("#assistants", KeyedTable).selected_key
        styles = bucket_styles(self.app.current_theme)
        for assistant in self.fleet:
            if key == assistant.key:
                detail.show(assistant.name, assistant_facts(assistant, styles))
                return
            for session in assistant.sessions:
                if key == session_key(assistant, session):
                    attach = shlex.join(self.context.tmux.argv("attach", "-t", session.name))
                    now = self.context.clock()
                    detail.show(
                        session.name, session_facts(assistant, session, attach, now, styles)
                    )
                    return
        detail.show("Nothing selected", [("", Text("No row matches the filter.", style="dim"))])

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "assistants":
            self._show_detail()

    def on_input_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.query_one("#assistants", KeyedTable).focus()

    def action_focus_filter(self) -> None:
        self.query_one("#filter", Input).focus()

    def action_clear_filter(self) -> None:
        self.query_one("#filter", Input).value = ""
        self.query_one("#assistants", KeyedTable).focus()

    def action_refresh(self) -> None:
        self.post_message(self.RefreshRequested())
        self.notify("Refreshing…", timeout=1.5)

    def action_backup(self) -> None:
        self.notify(
            "Nothing to back up here: backups are for Vellum assistants, and tmux sessions on "
            "this machine have no export.",
            title="Backup",
            severity="warning",
        )
