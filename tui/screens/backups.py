"""One assistant's backups, newest first: size, age, and whether each file is still what roost
saved (files of the backups directory by name); the keys that verify, reveal and delete one.

The app's backups part (tui/backups.py) sets `entries` and does what this screen asks
(`VerifyRequested`, `DeleteRequested`); the screen does no I/O. Other actions on a backup bind a
key in `BINDINGS` and read the entry under the cursor from `selected_entry`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.reactive import var
from textual.screen import Screen
from textual.widgets import Header, Static

from services.core.safe_text import printable
from services.health.status import Bucket
from services.jobs.library import BackupEntry, Verification
from tui.formats import format_age, format_bytes
from tui.present import bucket_styles
from tui.screens.confirm import ConfirmScreen
from widgets.footer import PinnedFooter
from widgets.keyed_table import Column, KeyedTable, Row

BACKUP_COLUMNS = (
    Column("CREATED", "created"),
    Column("SIZE", "size"),
    Column("AGE", "age", priority=2),
    Column("STATE", "state"),
    Column("FILE", "file", max_width=90, priority=1),
)
STATE_BUCKETS = {
    Verification.VERIFIED: Bucket.GOOD,
    Verification.CHANGED: Bucket.BAD,
    Verification.MISSING: Bucket.BAD,
    Verification.UNRECORDED: Bucket.WARN,
}


def backup_row(
    entry: BackupEntry, directory: Path, now: datetime, styles: dict[Bucket, str]
) -> Row:
    """One backup; a file of the backups `directory` by its name (`o` shows the full path),
    one saved elsewhere (`roost backup --output`) by its path."""
    shown = entry.path.name if entry.path.parent == directory else str(entry.path)
    return Row(
        str(entry.path),
        (
            Text(entry.created_at.astimezone().strftime("%Y-%m-%d %H:%M")),
            Text(format_bytes(entry.size), justify="right"),
            Text(format_age(entry.created_at, now), justify="right"),
            Text(str(entry.verification), style=styles[STATE_BUCKETS[entry.verification]]),
            Text(printable(shown)),
        ),
    )


def backup_facts(entry: BackupEntry, directory: Path) -> Table:
    """Everything known of one backup: its file and folder (`o` gives the whole path), exact
    size, hash and the job that made it."""
    record = entry.record
    when = "%Y-%m-%d %H:%M:%S"
    if record is None:
        facts = [("record", "none: roost did not save this file, so nothing vouches for it")]
    else:
        verified = record.verified_at.astimezone().strftime(when) if record.verified_at else None
        facts = [
            ("sha256", record.sha256),
            ("recorded size", f"{record.size} bytes"),
            ("job", record.job_id or "—"),
            ("last verified", verified or "not since a check found it changed"),
        ]
    in_folder = entry.path.parent == directory
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="dim", no_wrap=True)
    grid.add_column(overflow="fold")
    for label, value in [
        ("file", entry.path.name),
        ("folder", "roost's backups folder" if in_folder else str(entry.path.parent)),
        ("state", str(entry.verification)),
        ("created", entry.created_at.astimezone().strftime(when)),
        ("size", f"{entry.size} bytes ({format_bytes(entry.size)})"),
        *facts,
    ]:
        grid.add_row(label, Text(printable(value)))
    return grid


class BackupsScreen(Screen[None]):
    """The backups of the assistant called `assistant`, newest first."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="backups_back", tooltip="Back to the fleet"),
        Binding(
            "v",
            "verify",
            "Verify",
            id="backups_verify",
            tooltip="Hash the selected file again and compare it with its record",
        ),
        Binding(
            "V",
            "verify_all",
            "Verify all",
            id="backups_verify_all",
            show=False,
            tooltip="Hash every file listed again, one after the other",
        ),
        Binding(
            "o",
            "reveal",
            "Path",
            id="backups_reveal",
            tooltip="Show the selected file's full path and copy it to the clipboard",
        ),
        Binding(
            "R",
            "restore",
            "Restore",
            id="backups_restore",
            tooltip="Restore the assistant from the selected file (checks, preflight, asks)",
        ),
        Binding(
            "d,delete",
            "delete",
            "Delete",
            id="backups_delete",
            tooltip="Delete the selected file and its record (asks first)",
        ),
    ]

    entries: var[tuple[BackupEntry, ...]] = var((), init=False, always_update=True)
    """The assistant's backups, newest first (the app's backups part sets them)."""

    @dataclass
    class VerifyRequested(Message):
        """The user asked to check these files against their records."""

        screen: BackupsScreen
        paths: tuple[Path, ...]

    @dataclass
    class RestoreRequested(Message):
        """The user asked to restore the assistant from this backup (confirmed if roost
        cannot vouch for the file)."""

        screen: BackupsScreen
        entry: BackupEntry
        force_unverified: bool = False

    @dataclass
    class DeleteRequested(Message):
        """The user confirmed deleting this backup (file and record)."""

        screen: BackupsScreen
        entry: BackupEntry

    def __init__(self, assistant: str, directory: Path, clock: Callable[[], datetime]) -> None:
        super().__init__()
        self.assistant = assistant
        self.directory = directory
        """The backups directory: its files are listed by name."""
        self.clock = clock
        self._composed = False
        """The app may set `entries` before the widgets exist: they show them once mounted."""

    def compose(self) -> ComposeResult:
        yield Header(icon="")
        with Vertical(id="backups-panel", classes="panel") as panel:
            panel.border_title = f"Backups of {printable(self.assistant)}"
            yield KeyedTable(BACKUP_COLUMNS, id="backups")
            yield Static(Text("Reading the backups…"), id="backups-empty")
        with Vertical(id="backups-detail-panel", classes="panel") as detail:
            detail.border_title = "Selected backup"
            yield Static(id="backups-detail")
        yield Static(id="backups-status")
        yield PinnedFooter(("back", "help"))

    def on_mount(self) -> None:
        self._composed = True
        self.watch_entries(self.entries)
        self.table.focus()

    @property
    def table(self) -> KeyedTable:
        return self.query_exactly_one("#backups", KeyedTable)

    @property
    def selected_entry(self) -> BackupEntry | None:
        """The backup under the cursor."""
        key = self.table.selected_key if self._shown else None
        return next((entry for entry in self.entries if str(entry.path) == key), None)

    @property
    def _shown(self) -> bool:
        """Composed and still on the app's stack: a worker may finish after esc left it."""
        return self._composed and self.is_attached

    def watch_entries(self, entries: tuple[BackupEntry, ...]) -> None:
        if not self._shown:
            return
        now, styles = self.clock(), bucket_styles(self.app.current_theme)
        rows = [backup_row(entry, self.directory, now, styles) for entry in entries]
        self.table.show_rows(rows)
        self._show_selected()
        empty = self.query_exactly_one("#backups-empty", Static)
        empty.update(
            Text(
                f"No backups of {printable(self.assistant)} yet: b on its row in the fleet"
                " backs it up."
            )
        )
        empty.display = not entries
        recorded = sum(entry.record is not None for entry in entries)
        total = sum(entry.size for entry in entries)
        self.query_exactly_one(
            "#backups-panel"
        ).border_subtitle = f"{len(entries)} files · {recorded} recorded · {format_bytes(total)}"

    def on_keyed_table_row_highlighted(self) -> None:
        self._show_selected()

    def _show_selected(self) -> None:
        if not self._shown:
            return
        entry = self.selected_entry
        detail = self.query_exactly_one("#backups-detail", Static)
        detail.update(Text("") if entry is None else backup_facts(entry, self.directory))

    def show_status(self, line: str) -> None:
        """A line under the list: a check's progress, or how it went."""
        if not self._shown:
            return
        self.query_exactly_one("#backups-status", Static).update(Text(printable(line)))

    # -- the keys --------------------------------------------------------------------------------

    def action_back(self) -> None:
        self.dismiss()

    def action_verify(self) -> None:
        entry = self.selected_entry
        if entry is not None:
            self.post_message(self.VerifyRequested(self, (entry.path,)))

    def action_verify_all(self) -> None:
        if self.entries:
            paths = tuple(entry.path for entry in self.entries)
            self.post_message(self.VerifyRequested(self, paths))

    def action_reveal(self) -> None:
        entry = self.selected_entry
        if entry is not None:
            self.app.copy_to_clipboard(str(entry.path))
            self.notify(f"{printable(str(entry.path))}\n(copied to the clipboard)", title="Path")

    def action_restore(self) -> None:
        entry = self.selected_entry
        if entry is None:
            return
        if entry.verification is Verification.VERIFIED:
            self.post_message(self.RestoreRequested(self, entry))
            return
        why = (
            "roost did not save it, so nothing vouches for what it holds"
            if entry.record is None
            else f"it is {entry.verification} since roost saved it"
        )
        question = (
            f"{printable(entry.path.name)}: {why}. Restoring it anyway may put damaged or"
            f" foreign data into {printable(self.assistant)}. Go on (the preflight and the"
            " typed confirmation still come)?"
        )

        def answered(yes: bool | None) -> None:
            if yes:
                self.post_message(self.RestoreRequested(self, entry, force_unverified=True))

        self.app.push_screen(ConfirmScreen("Unverified backup", question), answered)

    def action_delete(self) -> None:
        entry = self.selected_entry
        if entry is None:
            return
        what = (
            "roost did not record it"
            if entry.record is None
            else f"recorded, {entry.verification}; its record goes too"
        )
        question = (
            f"Delete {printable(str(entry.path))} ({format_bytes(entry.size)}, {what})?"
            " This cannot be undone."
        )

        def answered(yes: bool | None) -> None:
            if yes:
                self.post_message(self.DeleteRequested(self, entry))

        self.app.push_screen(ConfirmScreen("Delete backup", question), answered)
