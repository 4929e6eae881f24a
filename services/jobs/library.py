"""The backup library: every backup file roost saved, and whether it is still what was saved.

The exporter records each file once it is saved and verified (`BackupLibrary.record`: assistant,
path, size, sha256, the job), in the `backups` table of the state database
(services/core/state.py), so every backup roost makes is known with no extra code, a restore's
safety backup included. A file's record is the reference a restore checks it against: `verify`
hashes the file again (streamed, in chunks, reporting progress) and says whether it is VERIFIED
(the same size and sha256: `verified_at` is updated), CHANGED or MISSING; a `.vbundle` in the
backups directory that roost did not record is UNRECORDED, listed but never trusted.

Retention (`[backups] keep = N`, config.toml) runs after each new backup: an assistant's oldest
recorded files in the backups directory beyond its newest N are deleted with their records, but
never its newest verified one, nor a file in use (`holding`, e.g. the source of a restore), nor
one saved elsewhere. It returns what it deleted for the job to list.

Blocking I/O (SQLite, hashing): a TUI runs it in a thread worker, the exporter in a thread.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import stat
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from services.core.clock import utc_now
from services.core.errors import RoostError
from services.core.files import open_regular
from services.core.state import BackupRow, StateDatabase

log = logging.getLogger(__name__)

BUNDLE_SUFFIX = ".vbundle"
HASH_CHUNK_BYTES = 1 << 20
"""Read and hashed at a time: memory stays flat whatever the file's size, and a progress report
per chunk is still cheap next to hashing it."""
MAX_UNRECORDED = 10_000
"""Unrecorded files listed at most: a backups directory is roost's, but anyone may fill it."""
_STAMPED = re.compile(r"^(?P<name>.+)-\d{8}-\d{6}(?:-\d+)?$")

BackupRecord = BackupRow
"""A backup roost saved, as recorded: `assistant`, `path`, `created_at`, `size`, `sha256`,
`job_id`, `verified_at` (the stored row itself: its fields are plain, nothing to translate)."""


class Verification(StrEnum):
    """What a backup file is, next to its record."""

    VERIFIED = "verified"
    """The size and sha256 match the record."""
    CHANGED = "changed"
    """The hash or size differs from the record (or a check found it so)."""
    MISSING = "missing"
    """Recorded, but the file is gone."""
    UNRECORDED = "unrecorded"
    """A `.vbundle` in the backups directory that roost did not record: nothing to check."""


class LibraryError(RoostError):
    """A backup file cannot be read, found or deleted; the message names it."""


@dataclass(frozen=True)
class BackupCheck:
    """One file checked now: its record (None: unrecorded), the verdict and what was read
    (`size` and `sha256` are None when the file is missing)."""

    path: Path
    record: BackupRecord | None
    verification: Verification
    size: int | None
    sha256: str | None


@dataclass(frozen=True)
class Hashing:
    """Progress of a check: bytes hashed of `total`; the last report carries the `check`."""

    path: Path
    done: int
    total: int
    check: BackupCheck | None = None


@dataclass(frozen=True)
class BackupEntry:
    """One row of the listing, as cheaply known (a `stat`, no hashing): VERIFIED means the file
    is there, at its recorded size, and matched its sha256 when last verified (`verified_at`)."""

    path: Path
    assistant: str
    """The record's, or for an unrecorded file the name its file name starts with."""
    created_at: datetime
    """The record's, or an unrecorded file's modification time."""
    size: int
    """On disk; the recorded size when the file is missing."""
    record: BackupRecord | None
    verification: Verification


def backups_dir(data_dir: Path) -> Path:
    """Where roost saves backups: `<data dir>/backups`."""
    return data_dir / "backups"


def file_name_part(name: str) -> str:
    """An assistant's name as it starts its backups' file names (no path separators, no dots
    at either end)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "assistant"


def file_owner(path: Path) -> str:
    """The assistant an unrecorded file's name points at: `<name>-<UTC time>.vbundle` as roost
    names them, else the file's stem."""
    stem = path.name.removesuffix(BUNDLE_SUFFIX)
    match = _STAMPED.match(stem)
    return match["name"] if match else stem


def same_path(path: Path) -> Path:
    """`path` as records hold it: absolute, symlinks left as they are."""
    return Path(os.path.normpath(path.absolute()))


class BackupLibrary:
    """The backups recorded in `database` and the files in `directory` (its backups dir).

    `keep`: how many backups per assistant retention keeps (None: all). `now` is injectable.
    """

    def __init__(
        self,
        database: StateDatabase,
        directory: Path,
        *,
        keep: int | None = None,
        now: Callable[[], datetime] = utc_now,
    ) -> None:
        self.database = database
        self.directory = same_path(directory)
        self.keep = keep
        self.now = now
        self._held: Counter[Path] = Counter()
        self._held_lock = threading.Lock()

    # Recording and reading -----------------------------------------------------------------

    def record(
        self, assistant: str, path: Path, size: int, sha256: str, job_id: str | None
    ) -> BackupRecord:
        """Record a file just saved and verified: its hash was taken of the very bytes written,
        so it is verified now. Raises StateError."""
        now = self.now()
        row = BackupRecord(assistant, same_path(path), now, size, sha256.lower(), job_id, now)
        self.database.put_backup(row)
        return row

    def find(self, path: Path) -> BackupRecord | None:
        """The record of the file at `path`; None when roost did not record it."""
        return self.database.backup(same_path(path))

    def entries(self, assistant: str | None = None) -> list[BackupEntry]:
        """Every backup recorded (only `assistant`'s, by name, when given) and every `.vbundle`
        in the backups directory that roost did not record, newest first."""
        records = self.database.backups()
        entries = [
            self._entry(record)
            for record in records
            if assistant is None or record.assistant == assistant
        ]
        recorded = {record.path for record in records}
        wanted = None if assistant is None else file_name_part(assistant)
        for path, status in self._bundles():
            owner = file_owner(path)
            if path not in recorded and wanted in (None, owner):
                created = datetime.fromtimestamp(status.st_mtime, UTC)
                entries.append(
                    BackupEntry(path, owner, created, status.st_size, None, Verification.UNRECORDED)
                )
        entries.sort(key=lambda entry: entry.created_at, reverse=True)
        return entries

    # Checking ------------------------------------------------------------------------------

    def verifying(self, path: Path) -> Iterator[Hashing]:
        """Hash the file at `path` again and compare it with its record, reporting progress
        after each chunk; the last report carries the `BackupCheck`. A VERIFIED check notes
        the time in the record, a CHANGED one clears it. Raises LibraryError when the file can
        not be read, or is neither there nor recorded."""
        path = same_path(path)
        record = self.find(path)
        try:
            fd = open_regular(path)
        except FileNotFoundError:
            if record is None:
                raise LibraryError(f"{path}: no such file, and roost recorded none") from None
            missing = BackupCheck(path, record, Verification.MISSING, None, None)
            yield Hashing(path, 0, record.size, missing)
            return
        except RoostError as error:
            raise LibraryError(str(error)) from None
        digest = hashlib.sha256()
        done = 0
        try:
            with os.fdopen(fd, "rb", buffering=0) as file:
                total = os.fstat(file.fileno()).st_size
                yield Hashing(path, 0, total)
                while chunk := file.read(HASH_CHUNK_BYTES):
                    digest.update(chunk)
                    done += len(chunk)
                    yield Hashing(path, done, max(total, done))
        except OSError as error:
            raise LibraryError(f"{path}: cannot be read ({error.strerror})") from None
        check = self._judge(path, record, done, digest.hexdigest())
        yield Hashing(path, done, done, check)

    def verify(self, path: Path) -> BackupCheck:
        """`verifying` to the end: the check alone."""
        for report in self.verifying(path):
            if report.check is not None:
                return report.check
        raise AssertionError("verifying ends with a check")  # pragma: no cover

    def _judge(
        self, path: Path, record: BackupRecord | None, size: int, sha256: str
    ) -> BackupCheck:
        if record is None:
            return BackupCheck(path, None, Verification.UNRECORDED, size, sha256)
        same = size == record.size and sha256 == record.sha256
        self.database.set_backup_verified(path, self.now() if same else None)
        verification = Verification.VERIFIED if same else Verification.CHANGED
        return BackupCheck(path, self.find(path) or record, verification, size, sha256)

    # Deleting ------------------------------------------------------------------------------

    def delete(self, path: Path) -> None:
        """Delete the file at `path` (gone already is fine) and its record, if any. Raises
        LibraryError when the file cannot be removed (its record is then kept)."""
        path = same_path(path)
        try:
            path.unlink(missing_ok=True)
        except OSError as error:
            raise LibraryError(f"cannot delete {path} ({error.strerror})") from None
        self.database.delete_backups([path])

    @contextlib.contextmanager
    def holding(self, path: Path) -> Iterator[None]:
        """Keep retention away from the file at `path` while the block runs (a restore reads
        it after taking a safety backup, which applies retention)."""
        path = same_path(path)
        with self._held_lock:
            self._held[path] += 1
        try:
            yield
        finally:
            with self._held_lock:
                self._held[path] -= 1
                if not self._held[path]:
                    del self._held[path]

    def retain(self, assistant: str) -> tuple[BackupRecord, ...]:
        """Apply `keep` to `assistant`'s backups in the backups directory: delete the files and
        records past its newest `keep`, sparing its newest verified one and any held file.
        Files saved elsewhere (`roost backup --output`) are the user's to keep: never counted,
        never deleted. What was deleted, newest first; a file that cannot be removed is logged
        and kept, with its record."""
        if self.keep is None:
            return ()
        records = [
            record
            for record in self.database.backups(assistant)
            if record.path.parent == self.directory
        ]
        if len(records) <= self.keep:
            return ()
        newest_verified = next(
            (r for r in records if self._state(r) is Verification.VERIFIED), None
        )
        with self._held_lock:
            held = set(self._held)
        deleted: list[BackupRecord] = []
        for record in records[self.keep :]:
            if record == newest_verified or record.path in held:
                continue
            try:
                record.path.unlink(missing_ok=True)
            except OSError as error:
                log.warning("retention kept %s: %s", record.path, error.strerror)
                continue
            deleted.append(record)
        self.database.delete_backups([record.path for record in deleted])
        return tuple(deleted)

    # Looking at the files ------------------------------------------------------------------

    def _entry(self, record: BackupRecord) -> BackupEntry:
        status = _stat(record.path)
        return BackupEntry(
            record.path,
            record.assistant,
            record.created_at,
            record.size if status is None else status.st_size,
            record,
            _state_of(record, status),
        )

    def _state(self, record: BackupRecord) -> Verification:
        return _state_of(record, _stat(record.path))

    def _bundles(self) -> Iterator[tuple[Path, os.stat_result]]:
        """The regular `.vbundle` files in the backups directory (at most `MAX_UNRECORDED`)."""
        try:
            scan = os.scandir(self.directory)
        except OSError:  # no directory yet, or unreadable: no files to list
            return
        found = 0
        with scan:
            for item in scan:
                if not item.name.endswith(BUNDLE_SUFFIX):
                    continue
                try:
                    status = item.stat()
                except OSError:
                    continue
                if stat.S_ISREG(status.st_mode):
                    yield same_path(Path(item.path)), status
                    found += 1
                    if found >= MAX_UNRECORDED:
                        return


def _stat(path: Path) -> os.stat_result | None:
    try:
        return path.stat()
    except OSError:
        return None


def _state_of(record: BackupRecord, status: os.stat_result | None) -> Verification:
    if status is None:
        return Verification.MISSING
    if not stat.S_ISREG(status.st_mode) or status.st_size != record.size:
        return Verification.CHANGED
    return Verification.VERIFIED if record.verified_at is not None else Verification.CHANGED
