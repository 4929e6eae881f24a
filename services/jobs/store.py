"""Jobs: roost's record of a long task (a backup), its history on disk, and polling the runtime.

A `Job` is an immutable snapshot; whoever runs one (jobs/exports.py) yields a new snapshot at
every change, and the caller shows it and hands it to the `JobStore`. The store keeps the last
`HISTORY_LIMIT` jobs in roost's state database (services/core/state.py), one row per job, each
marked with the process that runs it, so that several roost processes share one history and a
job whose process died is told from one that runs.

`poll_runtime_job` follows a runtime's migration job with the reference CLI's policy
(PROTOCOL.md section 4, `cli/src/lib/job-polling.ts`) plus jitter, with the clock, the sleep and
the random source injectable so the policy is tested without waiting.
"""

from __future__ import annotations

import asyncio
import json
import random
import secrets
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from enum import Enum, StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Any

from services.core.clock import utc_now
from services.core.errors import RoostError
from services.core.files import FileError, read_text
from services.core.paths import RoostPaths
from services.core.processes import ProcessIdentity
from services.core.safe_text import printable
from services.core.state import JobRow, StateDatabase
from services.jobs.downloads import part_path

HISTORY_LIMIT = 200
POLLS_KEPT = 20
LEGACY_NAME = "jobs.jsonl"
"""The history of roost before its state database, imported once."""
MAX_LEGACY_BYTES = 64 << 20
"""Far more than the 200 jobs it held; a larger file is not that history."""


class JobKind(StrEnum):
    BACKUP = "backup"


class JobState(StrEnum):
    STARTING = "starting"
    EXPORTING = "exporting"
    """The runtime builds the archive and answers with it (synchronous export)."""
    PROCESSING = "processing"
    """The runtime's own job runs; roost polls it (signed-URL export)."""
    DOWNLOADING = "downloading"
    VERIFYING = "verifying"
    COMPLETE = "complete"
    FAILED = "failed"
    LOST = "lost"
    """The runtime no longer knows the job (restarted, or finished long ago)."""
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in _FINISHED


_FINISHED = frozenset({JobState.COMPLETE, JobState.FAILED, JobState.LOST, JobState.CANCELLED})


class JobRoute(StrEnum):
    """How the archive reaches roost, which decides how a job can be resumed."""

    SYNC = "sync"
    """In the answer to `POST .../migrations/export`: lost with the connection."""
    SIGNED_URL = "signed-url"
    """A runtime job uploads it to the bucket; roost polls, then downloads by a signed URL."""


@dataclass(frozen=True)
class PollRecord:
    at: datetime
    outcome: str


@dataclass(frozen=True)
class Job:
    """One snapshot of a job. Paths are absolute; times are timezone-aware (UTC)."""

    id: str
    """roost's own id, unique in the history."""
    kind: JobKind
    assistant_id: str
    assistant_name: str
    route: JobRoute
    state: JobState
    destination: Path
    started_at: datetime
    finished_at: datetime | None = None
    runtime_job_id: str | None = None
    bundle_key: str | None = None
    """Where the runtime uploaded the archive (signed-URL route); not a credential."""
    bytes_done: int = 0
    bytes_total: int | None = None
    expected_size: int | None = None
    """What the runtime's finished job says the archive holds."""
    expected_sha256: str | None = None
    result_path: Path | None = None
    """Set once the archive is saved and checked."""
    size: int | None = None
    sha256: str | None = None
    verified: bool = False
    """The sha256 was checked against the runtime's (not only computed)."""
    corrupt_path: Path | None = None
    """Bytes that failed the check, kept for inspection."""
    error: str | None = None
    note: str | None = None
    """Something worth knowing that is not an error, e.g. that no checksum came to check."""
    in_progress_job_id: str | None = None
    """The runtime refused to start because this export of its own runs (409): follow it."""
    unreachable: bool = False
    """It failed because nothing answered at the runtime's address: waking it may help."""
    polls: tuple[PollRecord, ...] = ()
    """The last `POLLS_KEPT` status polls, oldest first."""

    def with_poll(self, at: datetime, outcome: str) -> Job:
        return replace(self, polls=(*self.polls, PollRecord(at, outcome))[-POLLS_KEPT:])

    def ended(self, state: JobState, at: datetime, error: str | None = None, **changes: Any) -> Job:
        """This job, finished in `state` (e.g. CANCELLED when the caller stops it)."""
        return replace(self, state=state, finished_at=at, error=error, **changes)

    def to_json(self) -> dict[str, object]:
        data: dict[str, object] = {}
        for item in fields(self):
            value = getattr(self, item.name)
            if isinstance(value, Path):
                value = str(value)
            elif isinstance(value, datetime):
                value = value.isoformat()
            elif item.name == "polls":
                value = [{"at": poll.at.isoformat(), "outcome": poll.outcome} for poll in value]
            data[item.name] = value
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> Job:
        """Read what `to_json` wrote; unknown keys are ignored (a newer roost may add some).

        Raises ValueError naming the first problem.
        """
        reader = _Reader(data)
        return cls(
            id=reader.text("id"),
            kind=reader.choice("kind", JobKind),
            assistant_id=reader.text("assistant_id"),
            assistant_name=reader.text("assistant_name"),
            route=reader.choice("route", JobRoute),
            state=reader.choice("state", JobState),
            destination=reader.path("destination"),
            started_at=reader.time("started_at"),
            finished_at=reader.optional(reader.time, "finished_at"),
            runtime_job_id=reader.optional(reader.text, "runtime_job_id"),
            bundle_key=reader.optional(reader.text, "bundle_key"),
            bytes_done=reader.count("bytes_done", 0),
            bytes_total=reader.optional(reader.count, "bytes_total"),
            expected_size=reader.optional(reader.count, "expected_size"),
            expected_sha256=reader.optional(reader.text, "expected_sha256"),
            result_path=reader.optional(reader.path, "result_path"),
            size=reader.optional(reader.count, "size"),
            sha256=reader.optional(reader.text, "sha256"),
            verified=reader.flag("verified"),
            corrupt_path=reader.optional(reader.path, "corrupt_path"),
            error=reader.optional(reader.text, "error"),
            note=reader.optional(reader.text, "note"),
            in_progress_job_id=reader.optional(reader.text, "in_progress_job_id"),
            unreachable=reader.flag("unreachable"),
            polls=reader.polls("polls"),
        )


def new_job_id(now: datetime) -> str:
    """Sortable by start time, unique without coordination."""
    return f"{now:%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


class _Reader:
    """Typed reads of one stored job; each raises ValueError naming the key."""

    def __init__(self, data: Mapping[str, object]) -> None:
        self.data = data

    def optional(self, read: Callable[[str], Any], key: str) -> Any:
        return None if self.data.get(key) is None else read(key)

    def text(self, key: str) -> str:
        value = self.data.get(key)
        if not isinstance(value, str):
            raise ValueError(f"{key!r} must be a string")
        return value

    def choice(self, key: str, enum: type[StrEnum]) -> Any:
        value = self.text(key)
        try:
            return enum(value)
        except ValueError:
            known = ", ".join(member.value for member in enum)
            raise ValueError(f"{key!r} is {value!r}, not one of: {known}") from None

    def path(self, key: str) -> Path:
        value = Path(self.text(key))
        if not value.is_absolute():
            raise ValueError(f"{key!r} must be an absolute path")
        return value

    def time(self, key: str) -> datetime:
        try:
            value = datetime.fromisoformat(self.text(key))
        except ValueError:
            raise ValueError(f"{key!r} must be an ISO 8601 time") from None
        if value.tzinfo is None:
            raise ValueError(f"{key!r} must carry a timezone")
        return value

    def count(self, key: str, default: int | None = None) -> int:
        value = self.data.get(key, default)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"{key!r} must be a whole number of bytes")
        return value

    def flag(self, key: str) -> bool:
        value = self.data.get(key, False)
        if not isinstance(value, bool):
            raise ValueError(f"{key!r} must be true or false")
        return value

    def polls(self, key: str) -> tuple[PollRecord, ...]:
        value = self.data.get(key, [])
        if not isinstance(value, list):
            raise ValueError(f"{key!r} must be a list")
        polls = []
        for item in value[-POLLS_KEPT:]:
            if not isinstance(item, dict):
                raise ValueError(f"{key!r} must hold objects")
            poll = _Reader(item)
            polls.append(PollRecord(poll.time("at"), poll.text("outcome")))
        return tuple(polls)


# The store ---------------------------------------------------------------------------------


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
    """An unfinished job that cannot go on, ended in `state`; its partial download is removed."""
    part_path(job.destination).unlink(missing_ok=True)
    return job.ended(state, at, error, bytes_done=0)


def end_interrupted(job: Job, at: datetime, owner: ProcessIdentity | None) -> Job:
    """A synchronous export whose process ended: its archive came in the answer to a
    connection that died with it, so it cannot go on."""
    who = f"the roost process running it (pid {owner.pid})" if owner else "roost"
    error = f"interrupted: {who} stopped before this backup finished; start a new one"
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


# Polling a runtime's job -------------------------------------------------------------------

AUTHENTICATION_REFUSED = "the runtime refused roost's credentials"
JOB_NOT_FOUND = "Migration job not found"
JOB_FAILED_SILENTLY = "Job failed without an error message"
WAITING_STATUSES = frozenset({"pending", "processing"})


@dataclass(frozen=True)
class PollPolicy:
    """The reference policy; `jitter` spreads polls by up to this fraction either way."""

    interval: float = 2.0
    deadline: float = 60 * 60.0
    max_auth_refreshes: int = 3
    max_transient_errors: int = 5
    jitter: float = 0.1


class FailureKind(Enum):
    AUTH = "auth"
    """401: refresh the credentials and poll again."""
    NOT_FOUND = "not found"
    """The runtime does not know the job: permanent."""
    TRANSIENT = "transient"
    """429, 5xx, network trouble, a garbled answer: poll again later."""
    PERMANENT = "permanent"


class PollFailure(RoostError):
    """One poll got no usable status; `kind` decides what happens next."""

    def __init__(self, kind: FailureKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def failure_for_status(code: int) -> PollFailure:
    """The reference classification of a non-2xx status."""
    if code == 401:
        return PollFailure(FailureKind.AUTH, "401 unauthorized")
    if code == 404:
        return PollFailure(FailureKind.NOT_FOUND, JOB_NOT_FOUND)
    if code == 429 or code >= 500:
        return PollFailure(FailureKind.TRANSIENT, f"the runtime answered {code}")
    return PollFailure(FailureKind.PERMANENT, f"the runtime answered {code}")


@dataclass(frozen=True)
class RuntimeJobStatus:
    """A job status as the runtime sent it, read leniently: unknown keys are kept in `raw`."""

    status: str
    job_id: str | None = None
    error: str | None = None
    result: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}))
    raw: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}), repr=False)

    @property
    def result_size(self) -> int | None:
        size = self.result.get("size")
        return size if isinstance(size, int) and not isinstance(size, bool) and size >= 0 else None

    @property
    def result_sha256(self) -> str | None:
        """`sha256`, else `manifest_sha256` (both seen in the wild), when it is 64 hex digits."""
        for key in ("sha256", "manifest_sha256"):
            value = self.result.get(key)
            if isinstance(value, str) and is_sha256(value):
                return value.lower()
        return None

    @classmethod
    def parse(cls, body: bytes) -> RuntimeJobStatus:
        """Raises a TRANSIENT PollFailure when the answer is not a job status (a proxy's error
        page, a half-written body): the next poll may well get a good one."""
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):
            raise PollFailure(
                FailureKind.TRANSIENT, "the runtime sent a status that is not JSON"
            ) from None
        status = data.get("status") if isinstance(data, dict) else None
        if not isinstance(data, dict) or not isinstance(status, str) or not status:
            raise PollFailure(FailureKind.TRANSIENT, "the runtime sent a status without `status`")
        job_id, error, result = data.get("job_id"), data.get("error"), data.get("result")
        if isinstance(error, dict):
            error = error.get("message")
        return cls(
            status=status,
            job_id=job_id if isinstance(job_id, str) else None,
            error=printable(error) if isinstance(error, str) and error else None,
            result=MappingProxyType(dict(result) if isinstance(result, dict) else {}),
            raw=MappingProxyType(data),
        )


def is_sha256(value: str) -> bool:
    return len(value) == 64 and all(char in "0123456789abcdefABCDEF" for char in value)


class Verdict(Enum):
    WAITING = "waiting"
    """Not finished: another poll follows."""
    COMPLETE = "complete"
    FAILED = "failed"
    """The job failed, or roost gave up on it (see `error`)."""
    LOST = "lost"


@dataclass(frozen=True)
class PollOutcome:
    verdict: Verdict
    text: str
    """What this poll found, in words for the job's poll log."""
    status: RuntimeJobStatus | None = None
    error: str | None = None
    """Why, when the verdict is FAILED or LOST."""


async def poll_runtime_job(
    fetch: Callable[[], Awaitable[RuntimeJobStatus]],
    refresh_auth: Callable[[], Awaitable[None]],
    *,
    label: str = "export job",
    policy: PollPolicy | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    rand: Callable[[], float] = random.random,
) -> AsyncGenerator[PollOutcome, None]:
    """Poll until the job completes, fails, is lost, or roost gives up; one outcome per poll.

    The first poll is at once, the next ones `interval` apart (with jitter). `fetch` raises
    PollFailure when a poll gets no status. A 401 refreshes the credentials (`refresh_auth`,
    which may raise PollFailure itself) and polls again at once, at most `max_auth_refreshes`
    times in a row; more than `max_transient_errors` transient failures in a row, a permanent
    one, or the deadline, end it as FAILED. A status roost does not know is not an error: the
    job keeps being polled (the deadline still bounds it), so a newer runtime's new intermediate
    states do not break backups. Any good poll resets both counters.
    """
    policy = policy or PollPolicy()
    started = clock()
    auth_refreshes = transient = 0
    while True:
        try:
            status = await fetch()
        except PollFailure as failure:
            if failure.kind is FailureKind.AUTH:
                auth_refreshes += 1
                if auth_refreshes > policy.max_auth_refreshes:
                    text = f"{failure} after {policy.max_auth_refreshes} credential refreshes"
                    yield PollOutcome(Verdict.FAILED, text, error=AUTHENTICATION_REFUSED)
                    return
                limit = policy.max_auth_refreshes
                yield PollOutcome(
                    Verdict.WAITING, f"{failure}: refreshing credentials ({auth_refreshes}/{limit})"
                )
                try:
                    await refresh_auth()
                except PollFailure as refusal:
                    yield PollOutcome(Verdict.FAILED, str(refusal), error=str(refusal))
                    return
                continue
            if failure.kind is FailureKind.NOT_FOUND:
                yield PollOutcome(Verdict.LOST, str(failure), error=str(failure))
                return
            if failure.kind is FailureKind.PERMANENT:
                yield PollOutcome(Verdict.FAILED, str(failure), error=str(failure))
                return
            transient += 1
            if transient > policy.max_transient_errors:
                text = f"{failure} ({transient} transient errors in a row)"
                yield PollOutcome(Verdict.FAILED, text, error=text)
                return
            outcome = PollOutcome(
                Verdict.WAITING, f"{failure} (transient {transient}/{policy.max_transient_errors})"
            )
        else:
            auth_refreshes = transient = 0
            if status.status == "complete":
                yield PollOutcome(Verdict.COMPLETE, _describe(status), status)
                return
            if status.status == "failed":
                error = status.error or JOB_FAILED_SILENTLY
                yield PollOutcome(Verdict.FAILED, f"failed: {error}", status, error)
                return
            outcome = PollOutcome(Verdict.WAITING, _describe(status), status)
        if clock() - started >= policy.deadline:
            error = f"Timed out waiting for {label} after {round(policy.deadline)}s"
            yield PollOutcome(Verdict.FAILED, f"{outcome.text}; {error}", outcome.status, error)
            return
        yield outcome
        await sleep(policy.interval * (1 + policy.jitter * (2 * rand() - 1)))


def _describe(status: RuntimeJobStatus) -> str:
    if status.status == "complete":
        size = status.result_size
        return "complete" if size is None else f"complete ({size} bytes)"
    if status.status in WAITING_STATUSES:
        return status.status
    return f"status {status.status!r}, unknown to roost: still waiting"
