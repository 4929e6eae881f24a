"""roost's own state: one SQLite database in the state dir, shared by every roost process.

The one module that opens it and speaks SQL. Several processes (a TUI, `roost backup` in a
script, `roost jobs`) read and write it at once: WAL mode lets readers go on while one writer
writes, every write is a short `BEGIN IMMEDIATE` transaction that changes only its own rows, and
a busy timeout makes a writer wait for another instead of failing. Each thread has its own
connection, so any thread may call any method.

The file is created on the first write (mode 0600, in a 0700 directory), never by a read. Its
schema version is `PRAGMA user_version`: `MIGRATIONS` is the ordered list of steps from an empty
file, and opening the database runs the steps it lacks in one transaction. A database written
by a newer roost (a version past the list) is refused, never touched.

Tables: `jobs` (one row per job, updated in place: the job's snapshot as JSON, a few columns to
query by, and the process that runs it), `events` (the status changes of the events panel) and
`answers` (every answer roost sent to an assistant's request, in words: never a secret's value),
`agent_events` (what coding agents' hooks reported, services/agents) and `backups` (every backup
file roost saved, with its size and sha256: services/jobs/library.py).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from services.core.errors import RoostError
from services.core.paths import RoostPaths
from services.core.processes import ProcessIdentity

BUSY_TIMEOUT_SECONDS = 10.0
"""How long a writer waits for another process's transaction before giving up."""
EVENTS_KEPT = 1000
ANSWERS_KEPT = 10_000
"""The answer history keeps this many rows, the newest: years of answers by hand, a bounded file
should a script answer in a loop."""
AGENT_EVENTS_KEPT = 5_000
"""Coding agents' hook events kept, the newest: hours of a busy fleet, enough to know each pane's
latest state after a restart."""

Migration = tuple[str, ...]
"""The statements of one schema step, run in one transaction with the version it reaches."""

MIGRATIONS: tuple[Migration, ...] = (
    # 1: the job history.
    (
        """CREATE TABLE jobs (
            id TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            assistant_id TEXT NOT NULL,
            state TEXT NOT NULL,
            finished INTEGER NOT NULL CHECK (finished IN (0, 1)),
            started_at TEXT NOT NULL,
            snapshot TEXT NOT NULL,
            owner_pid INTEGER,
            owner_started TEXT,
            owner_host TEXT
        )""",
        "CREATE INDEX jobs_by_start ON jobs (started_at)",
    ),
    # 2: the events panel's status changes.
    (
        """CREATE TABLE events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at TEXT NOT NULL,
            line TEXT NOT NULL
        )""",
    ),
    # 3: the answers roost sent to assistants' requests.
    (
        """CREATE TABLE answers (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at TEXT NOT NULL,
            assistant_id TEXT NOT NULL,
            assistant TEXT NOT NULL,
            request_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            asked TEXT NOT NULL,
            answered TEXT NOT NULL,
            front_end TEXT NOT NULL,
            outcome TEXT NOT NULL,
            detail TEXT NOT NULL
        )""",
    ),
    # 4: what coding agents' hooks reported (services/agents).
    (
        """CREATE TABLE agent_events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at TEXT NOT NULL,
            agent TEXT NOT NULL,
            server TEXT NOT NULL,
            pane TEXT NOT NULL,
            payload TEXT NOT NULL
        )""",
    ),
    # 5: the backup library (services/jobs/library.py).
    (
        """CREATE TABLE backups (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            assistant TEXT NOT NULL,
            created_at TEXT NOT NULL,
            path TEXT NOT NULL UNIQUE,
            size INTEGER NOT NULL,
            sha256 TEXT NOT NULL,
            job_id TEXT,
            verified_at TEXT
        )""",
        "CREATE INDEX backups_by_assistant ON backups (assistant, created_at)",
    ),
)


class StateError(RoostError):
    """The state database cannot be opened, read or written; the message names the file."""


@dataclass(frozen=True)
class JobRow:
    """One job as stored: its snapshot (services/jobs/record.py `Job.to_json`, as JSON text), the
    columns it is queried by, and the process that runs it (None: unknown, e.g. imported)."""

    id: str
    kind: str
    assistant_id: str
    state: str
    finished: bool
    started_at: str
    snapshot: str
    owner: ProcessIdentity | None


@dataclass(frozen=True)
class Event:
    at: datetime
    line: str


@dataclass(frozen=True)
class AnswerRow:
    """One answer as stored, in plain text (the activity domain's `AnswerRecord` maps to it:
    the core imports no domain). `answered` says what was answered in words, never a secret."""

    at: datetime
    assistant_id: str
    assistant: str
    request_id: str
    kind: str
    asked: str
    answered: str
    front_end: str
    outcome: str
    detail: str = ""


@dataclass(frozen=True)
class AgentEventRow:
    """One coding agent's hook event as stored (services/agents reads it): the agent, the tmux
    server and pane it ran in (empty outside tmux), and its payload as JSON text."""

    id: int
    """Ascending: a reader asks for the rows after the last one it has."""
    at: datetime
    agent: str
    server: str
    pane: str
    payload: str


@dataclass(frozen=True)
class BackupRow:
    """One backup file roost saved (services/jobs/library.py's `BackupRecord` is this row: its
    fields are plain, nothing to translate)."""

    assistant: str
    """The assistant's name, as its file is named after it."""
    path: Path
    """Absolute; one row per path."""
    created_at: datetime
    size: int
    sha256: str
    """Lower-case hex, of the bytes roost wrote."""
    job_id: str | None
    """The job that saved it; None when it came otherwise."""
    verified_at: datetime | None
    """When its file last matched `size` and `sha256`; None after a check found it changed."""


class StateDatabase:
    """roost's state database at `path`."""

    def __init__(self, path: Path, migrations: Sequence[Migration] = MIGRATIONS) -> None:
        self.path = path
        self.migrations = tuple(migrations)
        self._prepared = False
        self._lock = threading.Lock()
        self._local = threading.local()

    @classmethod
    def at(cls, paths: RoostPaths) -> StateDatabase:
        return cls(paths.state_database)

    # Jobs ----------------------------------------------------------------------------------

    def jobs(self) -> list[JobRow]:
        """Every job, newest first (none when there is no database yet)."""
        with self._reading() as connection:
            if connection is None:
                return []
            cursor = connection.execute(
                "SELECT id, kind, assistant_id, state, finished, started_at, snapshot,"
                " owner_pid, owner_started, owner_host FROM jobs ORDER BY started_at DESC, id DESC"
            )
            return [_job_row(values) for values in cursor]

    def unfinished_job_states(self) -> dict[str, str]:
        """The state of every unfinished job, by id: a cheap look for changes."""
        with self._reading() as connection:
            if connection is None:
                return {}
            cursor = connection.execute("SELECT id, state FROM jobs WHERE finished = 0")
            return {str(job_id): str(state) for job_id, state in cursor}

    def put_job(self, row: JobRow, limit: int) -> None:
        """Insert or replace one job's row, then forget the oldest finished jobs beyond `limit`
        rows (running ones always stay)."""
        with self._writing() as connection:
            connection.execute(
                "INSERT INTO jobs (id, kind, assistant_id, state, finished, started_at, snapshot,"
                " owner_pid, owner_started, owner_host) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET kind = excluded.kind,"
                " assistant_id = excluded.assistant_id, state = excluded.state,"
                " finished = excluded.finished, started_at = excluded.started_at,"
                " snapshot = excluded.snapshot, owner_pid = excluded.owner_pid,"
                " owner_started = excluded.owner_started, owner_host = excluded.owner_host",
                _job_values(row),
            )
            if row.finished:
                connection.execute(
                    "DELETE FROM jobs WHERE finished = 1 AND id NOT IN (SELECT id FROM jobs"
                    " WHERE finished = 1 ORDER BY started_at DESC, id DESC LIMIT"
                    " max(0, ? - (SELECT count(*) FROM jobs WHERE finished = 0)))",
                    (limit,),
                )

    def claim_job(
        self, job_id: str, previous: ProcessIdentity | None, owner: ProcessIdentity
    ) -> bool:
        """Make `owner` the job's process if `previous` still is: True when it now is. Two
        processes that both saw the same dead owner cannot both carry its job on."""
        with self._writing() as connection:
            cursor = connection.execute(
                "UPDATE jobs SET owner_pid = ?, owner_started = ?, owner_host = ? WHERE id = ?"
                " AND finished = 0 AND owner_pid IS ? AND owner_started IS ? AND owner_host IS ?",
                (*_owner_values(owner), job_id, *_owner_values(previous)),
            )
            return cursor.rowcount == 1

    def delete_finished_job(self, job_id: str) -> None:
        with self._writing() as connection:
            connection.execute("DELETE FROM jobs WHERE id = ? AND finished = 1", (job_id,))

    def import_jobs(self, rows: Sequence[JobRow]) -> None:
        """Add the jobs that are not there yet, all in one transaction."""
        with self._writing() as connection:
            connection.executemany(
                "INSERT OR IGNORE INTO jobs (id, kind, assistant_id, state, finished, started_at,"
                " snapshot, owner_pid, owner_started, owner_host)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [_job_values(row) for row in rows],
            )

    # Events --------------------------------------------------------------------------------

    def add_events(self, events: Sequence[Event]) -> None:
        """Append status changes; only the newest `EVENTS_KEPT` are kept."""
        if not events:
            return
        with self._writing() as connection:
            connection.executemany(
                "INSERT INTO events (at, line) VALUES (?, ?)",
                [(event.at.isoformat(), event.line) for event in events],
            )
            connection.execute(
                "DELETE FROM events WHERE id <= (SELECT max(id) FROM events) - ?", (EVENTS_KEPT,)
            )

    def recent_events(self, limit: int) -> list[Event]:
        """The newest `limit` events, oldest first; one with an unreadable time is skipped."""
        with self._reading() as connection:
            if connection is None:
                return []
            cursor = connection.execute(
                "SELECT at, line FROM (SELECT id, at, line FROM events ORDER BY id DESC LIMIT ?)"
                " ORDER BY id",
                (limit,),
            )
            events = []
            for at, line in cursor:
                with contextlib.suppress(TypeError, ValueError):
                    events.append(Event(datetime.fromisoformat(at), str(line)))
            return events

    # Answers -------------------------------------------------------------------------------

    def add_answer(self, row: AnswerRow) -> None:
        """Record one answer; only the newest `ANSWERS_KEPT` are kept."""
        with self._writing() as connection:
            connection.execute(
                "INSERT INTO answers (at, assistant_id, assistant, request_id, kind, asked,"
                " answered, front_end, outcome, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    row.at.isoformat(),
                    row.assistant_id,
                    row.assistant,
                    row.request_id,
                    row.kind,
                    row.asked,
                    row.answered,
                    row.front_end,
                    row.outcome,
                    row.detail,
                ),
            )
            connection.execute(
                "DELETE FROM answers WHERE id <= (SELECT max(id) FROM answers) - ?", (ANSWERS_KEPT,)
            )

    def answers(self, limit: int) -> list[AnswerRow]:
        """The newest `limit` answers, newest first; one with an unreadable time is skipped."""
        with self._reading() as connection:
            if connection is None:
                return []
            cursor = connection.execute(
                "SELECT at, assistant_id, assistant, request_id, kind, asked, answered, front_end,"
                " outcome, detail FROM answers ORDER BY id DESC LIMIT ?",
                (limit,),
            )
            rows = []
            for at, *texts in cursor:
                with contextlib.suppress(TypeError, ValueError):
                    rows.append(AnswerRow(datetime.fromisoformat(at), *map(str, texts)))
            return rows

    # Coding agents' events ----------------------------------------------------------------

    def add_agent_events(self, rows: Sequence[AgentEventRow]) -> None:
        """Record these events (their `id` is ignored: the database numbers them); only the
        newest `AGENT_EVENTS_KEPT` are kept."""
        if not rows:
            return
        with self._writing() as connection:
            connection.executemany(
                "INSERT INTO agent_events (at, agent, server, pane, payload)"
                " VALUES (?, ?, ?, ?, ?)",
                [
                    (row.at.isoformat(), row.agent, row.server, row.pane, row.payload)
                    for row in rows
                ],
            )
            connection.execute(
                "DELETE FROM agent_events WHERE id <= (SELECT max(id) FROM agent_events) - ?",
                (AGENT_EVENTS_KEPT,),
            )

    def agent_events(self, after: int = 0, limit: int = AGENT_EVENTS_KEPT) -> list[AgentEventRow]:
        """The newest `limit` events numbered after `after`, oldest first; one with an
        unreadable time is skipped."""
        with self._reading() as connection:
            if connection is None:
                return []
            cursor = connection.execute(
                "SELECT id, at, agent, server, pane, payload FROM (SELECT * FROM agent_events"
                " WHERE id > ? ORDER BY id DESC LIMIT ?) ORDER BY id",
                (after, limit),
            )
            rows = []
            for number, at, *texts in cursor:
                with contextlib.suppress(TypeError, ValueError):
                    rows.append(
                        AgentEventRow(int(number), datetime.fromisoformat(at), *map(str, texts))
                    )
            return rows

    # Backups -------------------------------------------------------------------------------

    def put_backup(self, row: BackupRow) -> None:
        """Record a backup file; one saved again at the same path replaces the older row."""
        with self._writing() as connection:
            connection.execute(
                "INSERT INTO backups (assistant, created_at, path, size, sha256, job_id,"
                " verified_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (path) DO UPDATE SET"
                " assistant = excluded.assistant, created_at = excluded.created_at,"
                " size = excluded.size, sha256 = excluded.sha256, job_id = excluded.job_id,"
                " verified_at = excluded.verified_at",
                (
                    row.assistant,
                    row.created_at.isoformat(),
                    str(row.path),
                    row.size,
                    row.sha256,
                    row.job_id,
                    _time_text(row.verified_at),
                ),
            )

    def backups(self, assistant: str | None = None) -> list[BackupRow]:
        """The backups recorded (only `assistant`'s when given), newest first; a row that
        cannot be read (written by hand, or by a newer roost) is skipped."""
        with self._reading() as connection:
            if connection is None:
                return []
            cursor = connection.execute(
                f"SELECT {_BACKUP_COLUMNS} FROM backups WHERE ? IS NULL OR assistant = ?"
                " ORDER BY created_at DESC, id DESC",
                (assistant, assistant),
            )
            return [row for values in cursor if (row := _backup_row(values)) is not None]

    def backup(self, path: Path) -> BackupRow | None:
        """The record of the file at `path` (as recorded: absolute), if any."""
        with self._reading() as connection:
            if connection is None:
                return None
            values = connection.execute(
                f"SELECT {_BACKUP_COLUMNS} FROM backups WHERE path = ?", (str(path),)
            ).fetchone()
            return None if values is None else _backup_row(values)

    def set_backup_verified(self, path: Path, at: datetime | None) -> None:
        """Note when the file at `path` last matched its record (None: it did not)."""
        with self._writing() as connection:
            connection.execute(
                "UPDATE backups SET verified_at = ? WHERE path = ?", (_time_text(at), str(path))
            )

    def delete_backups(self, paths: Sequence[Path]) -> None:
        """Forget these files' records, in one transaction."""
        with self._writing() as connection:
            connection.executemany(
                "DELETE FROM backups WHERE path = ?", [(str(path),) for path in paths]
            )

    # Connections ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection | None]:
        """A connection to read with, or None when the database was never written."""
        if not self.path.exists():
            yield None
            return
        with self._connection() as connection:
            yield connection

    @contextlib.contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        """A connection inside a write transaction, committed when the block ends well."""
        with self._connection() as connection:
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
            except BaseException:
                connection.rollback()
                raise
            connection.execute("COMMIT")

    @contextlib.contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        """This thread's connection; SQLite's errors become StateError. A connection that
        failed is dropped, so the next operation starts afresh."""
        self._prepare()
        connection = self._thread_connection()
        try:
            yield connection
        except sqlite3.Error as error:
            self._local.connection = None
            connection.close()
            raise self._error(error) from None

    def _prepare(self) -> None:
        """Once per object: create the file if needed, turn WAL on, bring the schema up to date."""
        with self._lock:
            if self._prepared:
                return
            self._create()
            with self._alone():
                connection = self._thread_connection()
                try:
                    connection.execute("PRAGMA journal_mode = WAL")
                    self._migrate(connection)
                except sqlite3.Error as error:
                    self._local.connection = None
                    connection.close()
                    raise self._error(error) from None
            self._prepared = True

    @contextlib.contextmanager
    def _alone(self) -> Iterator[None]:
        """One process at a time prepares (an flock on the state dir, which SQLite's own locks
        on the file never meet): turning WAL on needs the file to itself, and processes that
        all start at once held each other's locks past the busy timeout."""
        try:
            directory = os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as error:
            raise StateError(f"cannot open {self.path.parent} ({error.strerror})") from None
        try:
            fcntl.flock(directory, fcntl.LOCK_EX)
            yield
        finally:
            os.close(directory)  # releases the flock

    def _thread_connection(self) -> sqlite3.Connection:
        # Kept open: closing the last connection to a WAL database checkpoints it and removes
        # the WAL file, which costs a few milliseconds each time.
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is not None:
            return connection
        try:
            connection = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None
            )
            connection.execute("PRAGMA foreign_keys = ON")
            connection.execute("PRAGMA synchronous = NORMAL")
        except sqlite3.Error as error:
            raise self._error(error) from None
        self._local.connection = connection
        return connection

    def _create(self) -> None:
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as error:
            raise StateError(f"cannot create {self.path} ({error.strerror})") from None
        # SQLite gives its -wal and -shm files the database file's mode. Only a new file is
        # opened here: closing a descriptor of one SQLite has open drops every POSIX lock this
        # process holds on it, so another process closing would take itself for the last user
        # and remove the WAL still being written to.
        flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
        try:
            os.close(os.open(self.path, flags, 0o600))
        except FileExistsError:
            pass
        except OSError as error:
            raise StateError(f"cannot create {self.path} ({error.strerror})") from None

    def _migrate(self, connection: sqlite3.Connection) -> None:
        connection.execute("BEGIN IMMEDIATE")
        try:
            version = connection.execute("PRAGMA user_version").fetchone()[0]
            if version > len(self.migrations):
                raise StateError(
                    f"{self.path} has schema version {version}, written by a newer roost (this"
                    f" one knows versions up to {len(self.migrations)}): upgrade roost, or"
                    " move the file away to start afresh"
                )
            for number, statements in enumerate(self.migrations[version:], start=version + 1):
                for statement in statements:
                    connection.execute(statement)
                connection.execute(f"PRAGMA user_version = {number:d}")
        except BaseException:
            connection.rollback()
            raise
        connection.execute("COMMIT")

    def _error(self, error: sqlite3.Error) -> StateError:
        reason = str(error)
        if isinstance(error, sqlite3.OperationalError) and "locked" in reason:
            reason = f"another roost process kept it busy for more than {BUSY_TIMEOUT_SECONDS:g} s"
        return StateError(f"roost's state database {self.path}: {reason}")


def _owner_values(owner: ProcessIdentity | None) -> tuple[int | None, str | None, str | None]:
    if owner is None:
        return None, None, None
    return owner.pid, owner.started, owner.host


def _job_values(row: JobRow) -> tuple[object, ...]:
    return (
        row.id,
        row.kind,
        row.assistant_id,
        row.state,
        int(row.finished),
        row.started_at,
        row.snapshot,
        *_owner_values(row.owner),
    )


def _job_row(values: Sequence[object]) -> JobRow:
    job_id, kind, assistant_id, state, finished, started_at, snapshot, pid, started, host = values
    owner = (
        ProcessIdentity(pid, started if isinstance(started, str) else None, str(host))
        if isinstance(pid, int)
        else None
    )
    return JobRow(
        str(job_id),
        str(kind),
        str(assistant_id),
        str(state),
        bool(finished),
        str(started_at),
        str(snapshot),
        owner,
    )


_BACKUP_COLUMNS = "assistant, path, created_at, size, sha256, job_id, verified_at"


def _time_text(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat()


def _backup_row(values: Sequence[object]) -> BackupRow | None:
    assistant, path, created_at, size, sha256, job_id, verified_at = values
    try:
        if not isinstance(size, int) or not isinstance(created_at, str):
            raise ValueError("size or time of the wrong type")
        return BackupRow(
            str(assistant),
            Path(str(path)),
            datetime.fromisoformat(created_at),
            size,
            str(sha256),
            None if job_id is None else str(job_id),
            None if verified_at is None else datetime.fromisoformat(str(verified_at)),
        )
    except ValueError:
        return None
