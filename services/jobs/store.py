"""The job history: the last `HISTORY_LIMIT` jobs in roost's state database
(services/core/state.py), one row per job, each marked with the process that runs it, so that
several roost processes share one history and a job whose process died is told from one that
runs.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from services.core.clock import utc_now
from services.core.errors import RoostError
from services.core.files import FileError, read_text
from services.core.paths import RoostPaths
from services.core.processes import ProcessIdentity
from services.core.state import JobRow, StateDatabase
from services.jobs.downloads import part_path
from services.jobs.record import Job, JobKind, JobRoute, JobState

HISTORY_LIMIT = 200
LEGACY_NAME = "jobs.jsonl"
"""The history of roost before its state database, imported once."""
MAX_LEGACY_BYTES = 64 << 20
"""Far more than the 200 jobs it held; a larger file is not that history."""


@dataclass(frozen=True)
class StoreProblem:
    path: Path
    line: int | None
    problem: str

    def __str__(self) -> str:
        where = f"{self.path}, line {self.line}" if self.line is not None else str(self.path)
        return f"{where}: {self.problem}"


class JobStoreError(RoostError):
    """A job cannot be removed from the history; the message says why."""


def abandoned(job: Job, state: JobState, at: datetime, error: str) -> Job:
    """An unfinished job that cannot go on, ended in `state`; a backup's partial download is
    removed (a restore's `destination` is the file it puts back, never touched)."""
    if job.kind is JobKind.BACKUP:
        part_path(job.destination).unlink(missing_ok=True)
    return job.ended(state, at, error, bytes_done=0)


def end_interrupted(job: Job, at: datetime, owner: ProcessIdentity | None) -> Job:
    """A job whose process ended where it cannot go on: a synchronous export (its archive came
    in the answer to a connection that died with it), or a restore before its runtime job."""
    who = f"the roost process running it (pid {owner.pid})" if owner else "roost"
    error = f"interrupted: {who} stopped before this {job.kind.value} finished; start a new one"
    return abandoned(job, JobState.FAILED, at, error)


class JobStore:
    """The job history, newest first: the `jobs` table of the state database (core/state.py)
    and this process's view of it.

    Blocking I/O: a TUI calls it from a thread worker. Every process writes only the rows of the
    jobs it runs, each recording its process, so concurrent roosts never lose each other's jobs.
    `load` reads them all; an unfinished job whose process has ended is interrupted: a
    synchronous export is failed at once (and its `.part` removed), a managed export is listed
    by `interrupted` for the caller to `claim` and resume (Exporter.resume). Snapshots are
    written on every change but progress alone (bytes done).

    The JSON-lines history of older roosts (`jobs.jsonl`) is imported on the first load, then
    renamed `jobs.jsonl.imported`; one with a line roost cannot read is reported in `problems`
    (file, line, why) and left as it is, unimported, until it is fixed.
    """

    def __init__(
        self,
        database: StateDatabase,
        legacy: Path | None = None,
        limit: int = HISTORY_LIMIT,
        owner: ProcessIdentity | None = None,
        now: Callable[[], datetime] = utc_now,
    ) -> None:
        self.database = database
        self.legacy = legacy
        self.limit = limit
        self.owner = owner or ProcessIdentity.current()
        self.now = now
        self.jobs: tuple[Job, ...] = ()
        self.problems: tuple[StoreProblem, ...] = ()
        self._owners: dict[str, ProcessIdentity | None] = {}
        self._interrupted: frozenset[str] = frozenset()

    @classmethod
    def at(cls, paths: RoostPaths) -> JobStore:
        return cls(StateDatabase.at(paths), paths.state_dir / LEGACY_NAME)

    def load(self) -> tuple[Job, ...]:
        """Read the history (importing an old one first) and settle jobs whose process ended.
        Raises StateError when the database cannot be read."""
        problems = list(self._import_legacy())
        mine = {job.id: job for job in self.jobs if self._owners.get(job.id) == self.owner}
        jobs: list[Job] = []
        owners: dict[str, ProcessIdentity | None] = {}
        interrupted: set[str] = set()
        for row in self.database.jobs():
            try:
                data = json.loads(row.snapshot)
                if not isinstance(data, dict):
                    raise ValueError("not a JSON object")
                job = Job.from_json(data)
            except (ValueError, RecursionError) as error:
                where = StoreProblem(self.database.path, None, f"job {row.id}: {error}")
                problems.append(where)
                continue
            owner = row.owner
            if owner == self.owner and job.id in mine:
                job = mine[job.id]  # with its progress, which is not written
            elif not job.state.finished and (owner is None or not owner.alive()):
                if job.route is JobRoute.SIGNED_URL and job.runtime_job_id is not None:
                    interrupted.add(job.id)
                elif self.database.claim_job(job.id, owner, self.owner):
                    job = end_interrupted(job, self.now(), owner)
                    self.database.put_job(self._row(job), self.limit)
                    owner = self.owner
            jobs.append(job)
            owners[job.id] = owner
        self.jobs = _newest_first(jobs)
        self.problems = tuple(problems)
        self._owners = owners
        self._interrupted = frozenset(interrupted)
        return self.jobs

    def get(self, job_id: str) -> Job | None:
        return next((job for job in self.jobs if job.id == job_id), None)

    def interrupted(self) -> tuple[Job, ...]:
        """Managed exports whose process ended before they did: `claim`, then resume them."""
        return tuple(job for job in self.jobs if job.id in self._interrupted)

    def stale(self) -> bool:
        """Whether `load` would show something new: another process started a job, changed
        its state or ended it, or a process died while running one. Cheap enough to ask often.
        Raises StateError."""
        running = {job.id: job for job in self.jobs if not job.state.finished}
        if self.database.unfinished_job_states() != {
            job_id: job.state.value for job_id, job in running.items()
        }:
            return True
        owners = (self._owners.get(job_id) for job_id in running.keys() - self._interrupted)
        return any(owner is not None and not owner.alive() for owner in owners)

    def is_interrupted(self, job: Job) -> bool:
        return job.id in self._interrupted

    def shown_state(self, job: Job) -> str:
        """What to call the job's state: `interrupted` (never running) when its process ended."""
        return "interrupted" if self.is_interrupted(job) else job.state.value

    def claim(self, job: Job) -> bool:
        """Make this interrupted job this process's: False when it is not interrupted, or when
        another process claimed it first."""
        if not self.is_interrupted(job):
            return False
        if not self.database.claim_job(job.id, self._owners.get(job.id), self.owner):
            return False
        self._owners[job.id] = self.owner
        self._interrupted -= {job.id}
        return True

    def put(self, job: Job) -> None:
        """Record a snapshot of a job this process runs, replacing its previous one; the oldest
        finished jobs beyond `limit` are forgotten. Raises StateError."""
        old = self.get(job.id)
        others = [other for other in self.jobs if other.id != job.id]
        self.jobs = _bounded(_newest_first([job, *others]), self.limit)
        self._interrupted -= {job.id}
        if old is not None and replace(old, bytes_done=job.bytes_done) == job:
            return
        self.database.put_job(self._row(job), self.limit)
        self._owners[job.id] = self.owner

    def remove(self, job_id: str) -> None:
        """Forget a finished job (its file, if any, stays). Raises JobStoreError while it runs,
        StateError when the database cannot be written."""
        job = self.get(job_id)
        if job is None:
            return
        if not job.state.finished:
            raise JobStoreError(f"job {job_id} is still running: it can be removed once it ends")
        self.database.delete_finished_job(job_id)
        self.jobs = tuple(other for other in self.jobs if other.id != job_id)

    def _row(self, job: Job) -> JobRow:
        return JobRow(
            id=job.id,
            kind=job.kind.value,
            assistant_id=job.assistant_id,
            state=job.state.value,
            finished=job.state.finished,
            started_at=job.started_at.astimezone(UTC).isoformat(),
            snapshot=json.dumps(job.to_json(), ensure_ascii=False),
            owner=self.owner,
        )

    def _import_legacy(self) -> list[StoreProblem]:
        """Import `jobs.jsonl` whole, once: problems leave it untouched and unimported."""
        if self.legacy is None:
            return []
        try:
            text = read_text(self.legacy, MAX_LEGACY_BYTES)
        except FileNotFoundError:
            return []
        except FileError as error:  # unreadable as a whole: no one line is to blame
            problem = error.problem
            if not problem.startswith("cannot be read"):
                problem = f"cannot be read ({problem})"
            return [StoreProblem(self.legacy, None, f"not imported: {problem}")]
        jobs, problems = _parse_lines(self.legacy, text)
        if problems:
            return problems
        rows = [replace(self._row(job), owner=None) for job in jobs]
        self.database.import_jobs(rows)
        backup = self.legacy.with_name(f"{self.legacy.name}.imported")
        if backup.exists():
            backup = backup.with_name(f"{backup.name}-{time.strftime('%Y%m%d-%H%M%S')}")
        try:
            self.legacy.replace(backup)
        except FileNotFoundError:
            pass  # another roost imported it at the same time, and renamed it first
        except OSError as error:  # imported all the same; importing again adds nothing
            reason = f"imported, but cannot be renamed to {backup.name} ({error.strerror})"
            return [StoreProblem(self.legacy, None, reason)]
        return []


def _parse_lines(path: Path, text: str) -> tuple[list[Job], list[StoreProblem]]:
    jobs: list[Job] = []
    problems: list[StoreProblem] = []
    seen: set[str] = set()
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            job = Job.from_json(data)
        except json.JSONDecodeError as error:
            problem = f"column {error.colno}: {error.msg}"
            problems.append(StoreProblem(path, number, problem))
            continue
        except (ValueError, RecursionError) as error:
            problems.append(StoreProblem(path, number, str(error) or "too deeply nested"))
            continue
        if job.id in seen:
            problems.append(StoreProblem(path, number, f"job {job.id!r} appears twice"))
            continue
        seen.add(job.id)
        jobs.append(job)
    if problems:
        problems.append(
            StoreProblem(path, None, "not imported: fix these lines and roost imports it next")
        )
    return jobs, problems


def _newest_first(jobs: Sequence[Job]) -> tuple[Job, ...]:
    return tuple(sorted(jobs, key=lambda job: job.started_at, reverse=True))


def _bounded(jobs: tuple[Job, ...], limit: int) -> tuple[Job, ...]:
    """At most `limit` jobs, dropping the oldest finished ones; running jobs always stay."""
    excess = len(jobs) - limit
    if excess <= 0:
        return jobs
    dropped: set[str] = set()
    for job in reversed(jobs):
        if len(dropped) == excess:
            break
        if job.state.finished:
            dropped.add(job.id)
    return tuple(job for job in jobs if job.id not in dropped)
