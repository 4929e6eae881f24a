"""The console's side of jobs: the history shown in the jobs table, the backups and restores
it runs, and the keys on a job (retry, path, remove).

The jobs themselves come from `Roost` (backup, resume, follow) and live in its job store; this
module follows each to its end, records every snapshot, and shows them. A job worker that
fails on a bug leaves its job FAILED, in the store and in the table (tui/workers.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from textual.timer import Timer

from services.core.errors import RoostError
from services.core.safe_text import printable
from services.fleet.model import Assistant
from services.jobs.record import Job, JobKind, JobState
from services.jobs.restore import RestoreOptions
from services.jobs.store import abandoned
from tui.formats import format_bytes
from tui.screens.confirm import ConfirmScreen
from tui.screens.restore import RestoreScreen, outcome_text

if TYPE_CHECKING:
    from tui.app import RoostApp

TICK_SECONDS = 0.25
"""How often running jobs' spinners and clocks move."""


@dataclass
class _Run:
    """One job worker's job as last recorded: what its failure marks FAILED."""

    job: Job | None = None


class Jobs:
    """Runs and shows the jobs (one per console)."""

    def __init__(self, app: RoostApp) -> None:
        self._app = app
        self._roost = app.roost
        self._store = app.roost.jobs
        self._lock = asyncio.Lock()
        """One store write at a time: jobs run side by side, and they share the store's view."""
        self._ticker: Timer | None = None
        self._restore_screen: RestoreScreen | None = None
        """The restore flow last opened: it shows its job's snapshots while it is open."""

    def load(self, first: bool = True) -> None:
        """Show the history, report a damaged one, and carry on with the jobs whose roost
        process ended (at start, and whenever `follow_other_roosts` sees one end)."""
        self._app.background.run(self._load(first), group="jobs", name="job history")

    async def _load(self, first: bool) -> None:
        async with self._lock:
            try:
                jobs = await asyncio.to_thread(self._store.load)
            except RoostError as error:
                self._history_failed(error)
                return
            self._show()
        if any(not job.state.finished for job in jobs):
            self._start_ticker()
        if first:
            for problem in self._store.problems:
                self._history_failed(problem)
        for job in self._store.interrupted():
            try:
                async with self._lock:
                    claimed = await asyncio.to_thread(self._store.claim, job)
                if not claimed:
                    continue  # another roost starting at the same time carries it on
            except RoostError as error:
                self._history_failed(error)
                return
            try:
                resumed = self._roost.resume(job)
            except RoostError as error:
                await self._abandon(job, str(error), JobState.LOST)
                continue
            self._run(resumed, job, name=job.kind.value)

    def _history_failed(self, problem: object) -> None:
        self._app.notify(str(problem), title="Job history", severity="error", timeout=30)

    async def follow_other_roosts(self) -> None:
        """Show the jobs of other roost processes (`roost backup` in a script, another
        console) as they change, and carry on with theirs when they die."""
        try:
            stale = await asyncio.to_thread(self._store.stale)
        except RoostError as error:
            self._app.events.state_failed(error)
            return
        if stale:
            self.load(first=False)

    def backup(self, assistant: Assistant) -> None:
        """Back `assistant` up into a new file of the backups dir."""
        try:
            jobs = self._roost.backup(assistant)
        except RoostError as error:
            self._app.notify(str(error), title="Backup", severity="error")
            return
        self._run(jobs)

    # -- restores ---------------------------------------------------------------------------

    def restore(self, name: str, source: Path, options: RestoreOptions) -> None:
        """Open the restore flow of the assistant called `name` on `source` (from its backups
        screen) and run its first steps (services/jobs/restore.py) up to the confirmation the
        screen asks for."""
        try:
            assistant = self._roost.named(name)
            jobs = self._roost.prepare_restore(assistant, source, options)
        except RoostError as error:
            self._app.notify(str(error), title="Restore", severity="error")
            return
        self._restore_screen = RestoreScreen(assistant.name, source)
        self._app.push_screen(self._restore_screen)
        self._run(jobs, name="restore")

    def finish_restore(self, job: Job) -> None:
        """The user typed the name: import."""
        try:
            jobs = self._roost.restore(job)
        except RoostError as error:
            self._app.notify(str(error), title="Restore", severity="error")
            return
        self._run(jobs, job, name="restore")

    async def decline_restore(self, job: Job) -> None:
        """The user would not import: the job ends, nothing imported."""
        await self._record(self._roost.decline_restore(job))

    def _show_restore(self, job: Job) -> None:
        """Hand a snapshot to the open restore screen, if it shows this job (or its safety
        backup: the backup that starts while the restore is backing up)."""
        screen = self._restore_screen
        if screen is None or not screen.is_attached:
            return
        shown = screen.job
        if job.kind is JobKind.RESTORE and (shown is None or shown.id == job.id):
            screen.job = job
        elif (
            job.kind is JobKind.BACKUP
            and shown is not None
            and shown.state is JobState.BACKING_UP
            and job.assistant_id == shown.assistant_id
        ):
            screen.safety = job

    # -- following a job ----------------------------------------------------------------------

    def _run(self, jobs: AsyncGenerator[Job], job: Job | None = None, name: str = "backup") -> None:
        """Follow one job to its end in a worker; `job` is the one it carries on, if any."""
        run = _Run(job)
        self._app.background.run(
            self._follow(jobs, run),
            group="jobs",
            name=name,
            cleanup=lambda problem: self._failed(run, problem),
        )

    async def _follow(self, jobs: AsyncGenerator[Job], run: _Run) -> None:
        """Each snapshot shown and recorded; at the end, one notification saying how it went."""
        job: Job | None = None
        self._start_ticker()
        async with contextlib.aclosing(jobs) as snapshots:
            async for snapshot in snapshots:
                if job is None or snapshot.kind is job.kind or snapshot.id == job.id:
                    job = snapshot
                    run.job = snapshot
                await self._record(snapshot)
        if job is None:
            return
        if job.kind is JobKind.RESTORE:
            self._restored(job)
            return
        title = f"Backup of {job.assistant_name}"
        if job.in_progress_job_id:
            self._offer_to_follow(job)
        elif job.state is JobState.COMPLETE:
            for path in job.pruned:
                self._app.events.add(
                    f"{job.assistant_name}: retention deleted {printable(str(path))}"
                )
            pruned = f"\nretention deleted {len(job.pruned)} older" if job.pruned else ""
            self._app.notify(
                f"{job.result_path} ({format_bytes(job.size or 0)}){pruned}", title=title
            )
            self._app.backups.changed(job.assistant_name)
        else:
            self._app.notify(
                job.error or job.state.value, title=title, severity="error", timeout=15
            )

    def _restored(self, job: Job) -> None:
        """One notification at a restore's end; when it awaits the user, the restore screen
        (opened again if it was closed meanwhile: nothing is imported until they answer)."""
        if job.state is JobState.AWAITING:
            screen = self._restore_screen
            if screen is None or not screen.is_attached or screen.job is not job:
                self._restore_screen = RestoreScreen(job.assistant_name, job.destination)
                self._restore_screen.job = job
                self._app.push_screen(self._restore_screen)
            return
        if not job.state.finished:
            return
        title = f"Restore of {job.assistant_name}"
        if job.in_progress_job_id:
            self._offer_to_follow_import(job)
        elif job.state is JobState.COMPLETE:
            self._app.notify(outcome_text(job), title=title, timeout=15)
        else:  # RoostApp.notify shows the runtime's own words as plain text, brackets and all
            self._app.notify(outcome_text(job), title=title, severity="error", timeout=30)

    def _offer_to_follow_import(self, job: Job) -> None:
        runtime_job = job.in_progress_job_id
        assistant = self._roost.assistant(job.assistant_id)
        if runtime_job is None or assistant is None:
            return
        question = (
            f"{assistant.name} is already running an import (job {runtime_job}). "
            "Follow that job here instead?"
        )

        def answered(yes: bool | None) -> None:
            if yes:
                following = self._roost.follow_restore(assistant, runtime_job, job.destination)
                self._run(following, name="restore")

        self._app.push_screen(ConfirmScreen("Import in progress", question), answered)

    def _failed(self, run: _Run, problem: str) -> None:
        """A job worker stopped on a bug: its job ends FAILED rather than run for ever."""
        job = run.job
        if job is None or job.state.finished:
            return
        self._app.background.run(self._abandon(job, problem), group="jobs", name="job history")

    async def _abandon(self, job: Job, problem: str, state: JobState = JobState.FAILED) -> None:
        """End a job that cannot go on in `state` (its partial download removed), and show it."""
        now = self._app.context.clock()
        await self._record(await asyncio.to_thread(abandoned, job, state, now, problem))

    async def _record(self, job: Job) -> None:
        """Put a snapshot in the history (which orders and bounds the jobs) and show it."""
        async with self._lock:
            try:
                await asyncio.to_thread(self._store.put, job)
            except RoostError as error:  # the store still holds the job; the row is unsaved
                self._app.events.state_failed(error)
            self._show()
        self._show_restore(job)

    def _show(self) -> None:
        if self._app.is_running:  # not while shutting down: the screen is going away
            self._app.main_screen.jobs = self._store.jobs

    def _start_ticker(self) -> None:
        if self._ticker is None:
            self._ticker = self._app.set_interval(TICK_SECONDS, self._tick)

    def _tick(self) -> None:
        if not self._app.is_running:
            return  # a tick due while shutting down: the screen is going away
        screen = self._app.main_screen
        if any(not job.state.finished for job in screen.jobs):
            screen.tick()
            if self._restore_screen is not None and self._restore_screen.is_attached:
                self._restore_screen.tick()
        elif self._ticker is not None:
            self._ticker.stop()
            self._ticker = None

    def _offer_to_follow(self, job: Job) -> None:
        runtime_job = job.in_progress_job_id
        assistant = self._roost.assistant(job.assistant_id)
        if runtime_job is None or assistant is None:
            return
        question = (
            f"{assistant.name} is already running an export (job {runtime_job}). "
            "Follow that job here instead?"
        )

        def answered(yes: bool | None) -> None:
            if yes:
                self._run(self._roost.follow(assistant, runtime_job))

        self._app.push_screen(ConfirmScreen("Export in progress", question), answered)

    # -- the keys on a job ----------------------------------------------------------------

    def _job(self, job_id: str | None) -> Job | None:
        return next((job for job in self._store.jobs if job.id == job_id), None)

    def retry(self, job_id: str | None) -> None:
        """Back the job's assistant up again."""
        job = self._job(job_id)
        if job is None:
            return
        assistant = self._roost.assistant(job.assistant_id)
        if not job.state.finished:
            self._app.notify("This job is still running.", title="Retry")
        elif assistant is None:
            self._app.notify(f"{job.assistant_name} is gone.", title="Retry", severity="error")
        else:
            self.backup(assistant)

    def reveal(self, job_id: str | None) -> None:
        """Show the path of the job's file and copy it to the clipboard."""
        job = self._job(job_id)
        if job is None:
            return
        path = job.result_path or job.corrupt_path
        if path is None:
            self._app.notify("This job saved no file.", title="Path")
        else:
            self._app.copy_to_clipboard(str(path))
            self._app.notify(f"{path}\n(copied to the clipboard)", title="Path")

    async def remove(self, job_id: str | None) -> None:
        """Take a finished job off the list (its file stays)."""
        job = self._job(job_id)
        if job is None:
            return
        async with self._lock:
            try:
                await asyncio.to_thread(self._store.remove, job.id)
            except RoostError as error:
                self._app.notify(str(error), title="Remove", severity="warning")
            self._show()
