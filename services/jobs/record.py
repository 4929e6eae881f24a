"""A job: roost's record of a long task (a backup, a restore), as immutable snapshots.

Whoever runs a job (jobs/exports.py, jobs/restore.py) yields a new `Job` at every change; the
caller shows it and hands it to the store (jobs/store.py), which keeps it as `to_json` writes it.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol, Self, TypeVar

from services.jobs.reports import ImportOutcome, Preflight

POLLS_KEPT = 20


class _Stored(Protocol):
    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> Self: ...


R = TypeVar("R", bound=_Stored)


class JobKind(StrEnum):
    BACKUP = "backup"
    RESTORE = "restore"


class JobState(StrEnum):
    STARTING = "starting"
    EXPORTING = "exporting"
    """The runtime builds the archive and answers with it (synchronous export)."""
    PROCESSING = "processing"
    """The runtime's own job runs; roost polls it (signed-URL export)."""
    DOWNLOADING = "downloading"
    VERIFYING = "verifying"
    """A backup's bytes, or the file a restore puts back, are checked."""
    PREFLIGHT = "preflight"
    """The runtime checks the bundle a restore would import (a dry run)."""
    BACKING_UP = "backing up"
    """A restore waits for its safety backup of the current state."""
    AWAITING = "awaiting"
    """A restore is ready to import and waits for the user to confirm."""
    UPLOADING = "uploading"
    """A managed restore puts the bundle in the bucket."""
    IMPORTING = "importing"
    """A synchronous import: the runtime answers once it has applied the bundle."""
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
    """In the answer to `POST .../migrations/export` (or the body of `.../import`): lost with
    the connection."""
    SIGNED_URL = "signed-url"
    """A runtime job uploads it to the bucket (or imports it from there); roost polls."""


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
    """The archive: where a backup saves it, the file a restore puts back."""
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
    pruned: tuple[Path, ...] = ()
    """Older backups of the assistant that retention deleted once this one was saved."""
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
    verification: str | None = None
    """A restore's file against roost's record of it (services/jobs/library.py
    `Verification`: verified, changed, missing, unrecorded)."""
    dry_run: bool = False
    """A restore that stops after its preflight."""
    preflight: Preflight | None = None
    """A restore's preflight report."""
    safety_backup: Path | None = None
    """The verified backup a restore took of the current state before importing."""
    safety_job_id: str | None = None
    """That backup's own job."""
    outcome: ImportOutcome | None = None
    """What the runtime said of a restore's import."""

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
            elif item.name == "pruned":
                value = [str(path) for path in value]
            elif item.name == "polls":
                value = [{"at": poll.at.isoformat(), "outcome": poll.outcome} for poll in value]
            elif isinstance(value, Preflight | ImportOutcome):
                value = value.to_json()
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
            pruned=reader.paths("pruned"),
            corrupt_path=reader.optional(reader.path, "corrupt_path"),
            error=reader.optional(reader.text, "error"),
            note=reader.optional(reader.text, "note"),
            in_progress_job_id=reader.optional(reader.text, "in_progress_job_id"),
            unreachable=reader.flag("unreachable"),
            polls=reader.polls("polls"),
            verification=reader.optional(reader.text, "verification"),
            dry_run=reader.flag("dry_run"),
            preflight=reader.optional(reader.report(Preflight), "preflight"),
            safety_backup=reader.optional(reader.path, "safety_backup"),
            safety_job_id=reader.optional(reader.text, "safety_job_id"),
            outcome=reader.optional(reader.report(ImportOutcome), "outcome"),
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

    def paths(self, key: str) -> tuple[Path, ...]:
        value = self.data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise ValueError(f"{key!r} must be a list of paths")
        return tuple(Path(item) for item in value)

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

    def report(self, kind: type[R]) -> Callable[[str], R]:
        def read(key: str) -> R:
            value = self.data.get(key)
            if not isinstance(value, dict):
                raise ValueError(f"{key!r} must be an object")
            return kind.from_json(value)

        return read

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
