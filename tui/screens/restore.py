"""The restore flow: the steps as they run, the preflight report, the typed confirmation, the
outcome. `R` on the backups screen (tui/screens/backups.py) opens it.

The screen draws what it is given and asks; it runs nothing. `tui/jobs.py` follows the restore's
job and sets `job` (and `safety`, the safety backup's job) on every snapshot; when the job waits
for confirmation the screen shows an input, and typing the assistant's name posts `Confirmed`,
escape posts `Declined`. Escape while the job runs only closes the screen: the job goes on in
the jobs panel.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.reactive import var
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from services.core.safe_text import printable
from services.jobs.record import Job, JobState
from tui.formats import job_progress

STEPS: tuple[tuple[str, frozenset[JobState]], ...] = (
    ("check the file against roost's record", frozenset({JobState.VERIFYING})),
    ("preflight: the runtime checks the bundle", frozenset({JobState.PREFLIGHT})),
    ("safety backup of the current state", frozenset({JobState.BACKING_UP})),
    ("confirm", frozenset({JobState.AWAITING})),
    ("import", frozenset({JobState.UPLOADING, JobState.IMPORTING, JobState.PROCESSING})),
)
"""The restore's five steps, and the job states in which each runs. A managed restore uploads
during the preflight, and again before the import when the link has expired."""


class RestoreScreen(ModalScreen[None]):
    """One restore, from its first step to its outcome."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close", id="restore_close"),
    ]

    job: var[Job | None] = var(None)
    safety: var[Job | None] = var(None)

    @dataclass
    class Confirmed(Message):
        """The user typed the assistant's name: import."""

        job: Job

    @dataclass
    class Declined(Message):
        """The user would not import: nothing is."""

        job: Job

    def __init__(self, name: str, source: Path) -> None:
        super().__init__()
        self.assistant_name = name
        self.source = source
        self._step = 0
        """The step reached so far (steps only move on; a managed upload does not go back)."""
        self._ticks = 0

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog -danger", id="restore-dialog") as dialog:
            dialog.border_title = printable(f"Restore {self.assistant_name}")
            yield Static(Text(printable(f"from {self.source}")), id="restore-source")
            yield Static(id="restore-steps")
            with VerticalScroll(id="restore-report-scroll"):
                yield Static(id="restore-report")
            yield Static(id="restore-hint")
            yield Input(placeholder=printable(self.assistant_name), id="restore-name")

    def on_mount(self) -> None:
        self.query_one("#restore-name", Input).display = False
        self._draw()

    def watch_job(self) -> None:
        self._draw()

    def watch_safety(self) -> None:
        self._draw()

    def tick(self) -> None:
        """Move the spinner of the running step."""
        self._ticks += 1
        self._draw()

    def _draw(self) -> None:
        if not self.is_mounted or not self.query("#restore-steps"):
            return  # not composed yet, or closing
        job = self.job
        self.query_one("#restore-steps", Static).update(self._steps(job))
        self.query_one("#restore-report", Static).update(_report(job))
        self.query_one("#restore-hint", Static).update(self._hint(job))
        name = self.query_one("#restore-name", Input)
        waiting = job is not None and job.state is JobState.AWAITING
        if waiting != name.display:
            name.display = waiting
            if waiting:
                name.focus()

    def _steps(self, job: Job | None) -> Text:
        for number, (_, states) in enumerate(STEPS, start=1):
            if job is not None and job.state in states:
                self._step = number
        text = Text()
        for number, (label, _) in enumerate(STEPS, start=1):
            text.append(f"{number}. {label}  ")
            text.append_text(self._step_state(number, job))
            text.append("\n")
        text.rstrip()
        return text

    def _step_state(self, number: int, job: Job | None) -> Text:
        if job is None:
            return Text("…" if number == 1 else "", style="dim")
        skipped = (job.dry_run and number > 2) or (number == 3 and _no_safety_backup(job))
        if skipped:
            return Text("skipped", style="dim")
        if number < self._step or (job.state is JobState.COMPLETE and number <= self._step):
            saved = job.safety_backup.name if job.safety_backup else ""
            detail = {1: job.verification or "", 3: saved}.get(number, "")
            return Text(printable(f"done {detail}".rstrip()), style="green")
        if number > self._step:
            return Text("")
        if job.state.finished:
            return Text(job.state.value, style="bold red")
        if number == 3 and self.safety is not None:
            return Text(job_progress(self.safety, 20, self._ticks))
        if number == 4:
            return Text("waiting for you", style="bold")
        return Text(job_progress(job, 20, self._ticks))

    def _hint(self, job: Job | None) -> Text:
        name = self.assistant_name
        if job is None or (not job.state.finished and job.state is not JobState.AWAITING):
            return Text("esc: close (the restore goes on in the jobs panel)", style="dim")
        if job.state is JobState.AWAITING:
            return Text(
                printable(
                    f"Importing overwrites {name}'s data. Type {name} and press enter to import;"
                    " esc: stop, nothing imported."
                ),
                style="bold",
            )
        outcome = printable(outcome_text(job), keep_newlines=True)
        return Text(outcome + "\n\nesc: close", style=_outcome_style(job))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        job = self.job
        if job is None or job.state is not JobState.AWAITING:
            return
        if event.value.strip() != self.assistant_name:
            self.notify(
                printable(f"Type {self.assistant_name} exactly, or press esc."),
                severity="warning",
                markup=False,
            )
            return
        event.input.display = False
        self.post_message(self.Confirmed(job))

    def action_close(self) -> None:
        job = self.job
        if job is not None and job.state is JobState.AWAITING:
            self.app.post_message(self.Declined(job))  # the app's: this screen is closing
        self.dismiss()


def _no_safety_backup(job: Job) -> bool:
    return job.safety_job_id is None and "no safety backup" in (job.note or "")


def _report(job: Job | None) -> Text:
    text = Text()
    if job is None or job.preflight is None:
        return text
    report = job.preflight
    verdict = "can import" if report.can_import else "cannot import"
    text.append(f"Preflight: {verdict}\n", style="bold" if report.can_import else "bold red")
    text.append(f"  {printable(report.summary())}\n")
    for label, problems in (("error", report.errors), ("conflict", report.conflicts)):
        for problem in problems:
            text.append(f"  {label:<9}", style="red")
            text.append(f"{printable(str(problem))}\n")
    if report.more:
        text.append(f"  and {report.more} more\n", style="dim")
    if job.note:
        text.append(f"  note: {printable(job.note)}\n", style="yellow")
    text.rstrip()
    return text


def outcome_text(job: Job) -> str:
    """What the restore came to, in the words its notification uses too."""
    if job.state is JobState.COMPLETE and job.dry_run:
        return f"Dry run: {job.assistant_name} can import this bundle; nothing was imported."
    if job.state is JobState.COMPLETE:
        summary = job.outcome.summary() if job.outcome is not None else "imported"
        warnings = "".join(f"\nwarning: {w}" for w in job.outcome.warnings) if job.outcome else ""
        undo = f"\nundo: restore {job.safety_backup}" if job.safety_backup else ""
        return f"Restored {job.assistant_name}: {summary}{warnings}{undo}"
    if job.state is JobState.CANCELLED:
        return job.note or "Stopped: nothing was imported."
    return f"{job.state.value}: {job.error or 'no reason given'}"


def _outcome_style(job: Job) -> str:
    return "green" if job.state is JobState.COMPLETE else "bold red"
