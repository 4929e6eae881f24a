"""Jobs: roost's record of a long task (a backup), its history on disk, and polling the runtime.

A `Job` is an immutable snapshot; whoever runs one (services/exports.py) yields a new snapshot at
every change, and the caller shows it and hands it to the `JobStore`. The store keeps the last
`HISTORY_LIMIT` jobs in `<state dir>/jobs.jsonl`, one job per line so a problem can be pointed at
by line, rewritten atomically (temporary file, fsync, rename). A store file roost cannot read is
reported and never rewritten: history is the user's, and a newer roost may have written it.

`poll_runtime_job` follows a runtime's migration job with the reference CLI's policy
(PROTOCOL.md section 4, `cli/src/lib/job-polling.ts`) plus jitter, with the clock, the sleep and
the random source injectable so the policy is tested without waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import secrets
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from enum import Enum, StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Any

from services.errors import RoostError
from services.paths import RoostPaths
from services.safe_text import printable

HISTORY_LIMIT = 200
POLLS_KEPT = 20
STORE_NAME = "jobs.jsonl"


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


class JobStoreError(RoostError):
    """The job history cannot be written; the message says why and what to do."""


@dataclass(frozen=True)
class StoreProblem:
    path: Path
    line: int | None
    problem: str

    def __str__(self) -> str:
        where = f"{self.path}, line {self.line}" if self.line is not None else str(self.path)
        return f"{where}: {self.problem}"


class JobStore:
    """The job history, newest first, in memory and in one file.

    Blocking file I/O: a TUI calls it from a thread worker. Writes happen on every change but
    progress alone (bytes done), so a download does not cost an fsync per report. When the file
    could not be read whole, `problems` says where and writes raise JobStoreError until the user
    fixes the file or `set_aside` moves it away: rewriting it would lose what roost did not
    understand.
    """

    def __init__(self, path: Path, limit: int = HISTORY_LIMIT) -> None:
        self.path = path
        self.limit = limit
        self.jobs: tuple[Job, ...] = ()
        self.problems: tuple[StoreProblem, ...] = ()

    @classmethod
    def at(cls, paths: RoostPaths) -> JobStore:
        return cls(paths.state_dir / STORE_NAME)

    def load(self) -> tuple[Job, ...]:
        """Read the file (absent means no history); the jobs that read well are kept."""
        jobs: list[Job] = []
        problems: list[StoreProblem] = []
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            text = ""
        except (OSError, UnicodeDecodeError) as error:
            reason = getattr(error, "strerror", None) or str(error)
            problems.append(StoreProblem(self.path, None, f"cannot be read ({reason})"))
            text = ""
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
                problems.append(StoreProblem(self.path, number, problem))
                continue
            except (ValueError, RecursionError) as error:
                problems.append(StoreProblem(self.path, number, str(error) or "too deeply nested"))
                continue
            if job.id in seen:
                problems.append(StoreProblem(self.path, number, f"job {job.id!r} appears twice"))
                continue
            seen.add(job.id)
            jobs.append(job)
        self.jobs = _newest_first(jobs)
        self.problems = tuple(problems)
        return self.jobs

    def get(self, job_id: str) -> Job | None:
        return next((job for job in self.jobs if job.id == job_id), None)

    def unfinished(self) -> tuple[Job, ...]:
        """Jobs that were running when roost last stopped: resume them (Exporter.resume)."""
        return tuple(job for job in self.jobs if not job.state.finished)

    def put(self, job: Job) -> None:
        """Record a snapshot, replacing the job's previous one; the oldest finished jobs beyond
        `limit` are forgotten. Raises JobStoreError when the file cannot be written."""
        old = self.get(job.id)
        others = [other for other in self.jobs if other.id != job.id]
        self.jobs = _bounded(_newest_first([job, *others]), self.limit)
        if old is not None and replace(old, bytes_done=job.bytes_done) == job:
            return
        self._write()

    def remove(self, job_id: str) -> None:
        """Forget a finished job (its file, if any, stays). Raises JobStoreError as `put`."""
        job = self.get(job_id)
        if job is None:
            return
        if not job.state.finished:
            raise JobStoreError(f"job {job_id} is still running: it can be removed once it ends")
        self.jobs = tuple(other for other in self.jobs if other.id != job_id)
        self._write()

    def set_aside(self) -> Path:
        """Move an unreadable file away (kept, never deleted) so history can be written again."""
        aside = self.path.with_name(f"{self.path.name}.unreadable-{time.strftime('%Y%m%d-%H%M%S')}")
        try:
            self.path.replace(aside)
        except FileNotFoundError:
            pass
        except OSError as error:
            raise JobStoreError(f"cannot move {self.path} aside ({error.strerror})") from None
        self.problems = ()
        return aside

    def _write(self) -> None:
        if self.problems:
            listed = "; ".join(str(problem) for problem in self.problems)
            raise JobStoreError(
                f"job history not saved: {listed}. roost does not rewrite a file it cannot read"
                " whole: fix it, or set it aside to start a new history"
            )
        text = "".join(json.dumps(job.to_json(), ensure_ascii=False) + "\n" for job in self.jobs)
        temporary = self.path.with_name(f".{self.path.name}.{secrets.token_hex(4)}.tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                file.write(text)
                file.flush()
                os.fsync(file.fileno())
            temporary.replace(self.path)
            directory = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
        except OSError as error:
            with contextlib.suppress(OSError):
                temporary.unlink(missing_ok=True)
            raise JobStoreError(f"cannot write {self.path} ({error.strerror})") from None


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
