"""The jobs table: every job, newest first, and the keys that act on the job under the cursor.

Each key is its own action posting its own message; the main screen shows a job's detail, and
the app hands the rest to the console's jobs (tui/jobs.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.message import Message

from widgets.keyed_table import Column, KeyedTable

JOB_COLUMNS = (
    Column("JOB", "job"),
    Column("ASSISTANT", "assistant", max_width=24),
    Column("TYPE", "type", priority=1),
    Column("STATE", "state"),
    Column("PROGRESS", "progress", max_width=24),
    Column("ELAPSED", "elapsed", priority=3),
    Column("ETA", "eta", priority=2),
    Column("RESULT", "result", max_width=48, priority=4),
)


class JobTable(KeyedTable):
    """The jobs, newest first, with the keys that act on the job under the cursor."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "show_job", "Detail", id="job_detail", tooltip="Show the job"),
        Binding("r", "retry_job", "Retry", id="job_retry", tooltip="Back up again"),
        Binding(
            "o",
            "reveal_job",
            "Path",
            id="job_reveal",
            tooltip="Show the backup's path and copy it to the clipboard",
        ),
        Binding(
            "x,delete",
            "remove_job",
            "Remove",
            id="job_remove",
            tooltip="Remove a finished job from the list (its file stays)",
        ),
        Binding(
            "escape",
            "screen.focus_assistants",
            "Back",
            id="job_back",
            tooltip="Back to the assistants",
        ),
    ]

    @dataclass
    class DetailRequested(Message):
        """The user asked to see the job `job_id` in the detail panel."""

        job_id: str | None

    @dataclass
    class RetryRequested(Message):
        """The user asked to back the assistant of the job `job_id` up again."""

        job_id: str | None

    @dataclass
    class RevealRequested(Message):
        """The user asked for the path of the job `job_id`'s file."""

        job_id: str | None

    @dataclass
    class RemoveRequested(Message):
        """The user asked to take the finished job `job_id` off the list."""

        job_id: str | None

    def action_show_job(self) -> None:
        self.post_message(self.DetailRequested(self.selected_key))

    def action_retry_job(self) -> None:
        self.post_message(self.RetryRequested(self.selected_key))

    def action_reveal_job(self) -> None:
        self.post_message(self.RevealRequested(self.selected_key))

    def action_remove_job(self) -> None:
        self.post_message(self.RemoveRequested(self.selected_key))
