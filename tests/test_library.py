"""The backup library (services/jobs/library.py): records in the real state database, files on
disk, checks that hash them again, deleting, retention; and the exporter recording every backup
it saves against the loopback Vellum peer."""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.core.paths import RoostPaths
from services.core.state import MIGRATIONS, Event, StateDatabase
from services.jobs.downloads import HANDOFF_BYTES
from services.jobs.exports import Exporter, backup_destination
from services.jobs.library import (
    HASH_CHUNK_BYTES,
    BackupLibrary,
    LibraryError,
    Verification,
    backups_dir,
    file_name_part,
    file_owner,
)
from services.jobs.record import JobState
from tests.peers.vellum import Artifact, VellumPeer
from tests.test_exports import NoWait, Platform, direct, http, managed, run

__all__ = ["http"]  # the fixture, shared

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


class Clock:
    """A clock that moves a minute at each reading: records sort by when they were made."""

    def __init__(self) -> None:
        self.at = T0

    def __call__(self) -> datetime:
        self.at += timedelta(minutes=1)
        return self.at


@pytest.fixture
def paths() -> RoostPaths:
    return RoostPaths.resolve()


@pytest.fixture
def database(paths: RoostPaths) -> StateDatabase:
    return StateDatabase.at(paths)


@pytest.fixture
def folder(paths: RoostPaths) -> Path:
    return backups_dir(paths.data_dir)


@pytest.fixture
def library(database: StateDatabase, folder: Path) -> BackupLibrary:
    return BackupLibrary(database, folder, now=Clock())


Save = Callable[..., Path]


@pytest.fixture
def save(library: BackupLibrary, folder: Path) -> Save:
    """Write a backup file as roost names it and record it, like the exporter."""

    def save_one(assistant: str = "alpha", content: bytes = b"bundle", record: bool = True) -> Path:
        path = backup_destination(folder.parent, assistant, library.now())
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        if record:
            digest = hashlib.sha256(content).hexdigest()
            library.record(assistant, path, len(content), digest, f"job-{path.stem}")
        return path

    return save_one


def test_a_recorded_backup_is_listed_verified_with_its_job(
    library: BackupLibrary, save: Save
) -> None:
    path = save("alpha", b"x" * 10)

    [entry] = library.entries()

    assert (entry.path, entry.assistant, entry.size) == (path, "alpha", 10)
    assert entry.verification is Verification.VERIFIED
    assert entry.record is not None and entry.record.job_id == f"job-{path.stem}"
    assert entry.record.verified_at == entry.record.created_at
    assert library.find(path) == entry.record


def test_entries_are_newest_first_with_unrecorded_files_by_their_names(
    library: BackupLibrary, save: Save, folder: Path
) -> None:
    old = save("alpha")
    bravo = save("bravo")
    stray = save("alpha", b"from elsewhere", record=False)
    os.utime(stray, (T0.timestamp() - 3600,) * 2)  # older than every record
    newest = save("alpha")
    (folder / "notes.txt").write_text("not a bundle")
    (folder / "weird.vbundle").mkdir()

    everything = library.entries()
    alpha = library.entries("alpha")

    assert [e.path for e in everything] == [newest, bravo, old, stray]
    assert [e.path for e in alpha] == [newest, old, stray]
    assert [e.verification for e in alpha] == [
        Verification.VERIFIED,
        Verification.VERIFIED,
        Verification.UNRECORDED,
    ]
    assert (alpha[-1].assistant, alpha[-1].record) == ("alpha", None)
    assert library.entries("charlie") == []


def test_listing_sees_missing_and_resized_files_without_hashing(
    library: BackupLibrary, save: Save
) -> None:
    gone, grown = save(content=b"aaaa"), save(content=b"bbbb")
    gone.unlink()
    grown.write_bytes(b"bbbbbb")

    states = {e.path: (e.verification, e.size) for e in library.entries()}

    assert states == {gone: (Verification.MISSING, 4), grown: (Verification.CHANGED, 6)}


@given(name=st.text(min_size=1, max_size=40), seconds=st.integers(0, 4_000_000_000))
def test_a_file_roost_named_is_attributed_to_its_assistant(name: str, seconds: int) -> None:
    """Whatever the name, the file `backup_destination` makes points back at it: an unrecorded
    copy of one is listed under its assistant, and nothing escapes the backups folder."""
    folder = Path("/data/backups")
    path = backup_destination(folder.parent, name, datetime.fromtimestamp(seconds, UTC))

    assert path.parent == folder
    assert file_owner(path) == file_name_part(name)


@given(st.text(max_size=60).map(lambda text: text.replace("/", "_")))
def test_any_file_name_gives_a_part_of_it_as_its_owner(stem: str) -> None:
    owner = file_owner(Path(f"/data/backups/{stem}.vbundle"))

    assert stem.startswith(owner)


def test_nothing_recorded_and_no_directory_lists_nothing(library: BackupLibrary) -> None:
    assert library.entries() == []
    assert not library.database.path.exists()  # reading never creates the database


def test_verify_hashes_the_file_again_in_chunks_and_notes_the_time(
    library: BackupLibrary, save: Save
) -> None:
    content = os.urandom(2 * HASH_CHUNK_BYTES + 5)
    path = save(content=content)
    recorded = library.find(path)
    assert recorded is not None

    reports = list(library.verifying(path))

    assert [r.done for r in reports] == [0, HASH_CHUNK_BYTES, 2 * HASH_CHUNK_BYTES] + [
        len(content)
    ] * 2
    assert all(r.check is None for r in reports[:-1])
    check = reports[-1].check
    assert check is not None and check.verification is Verification.VERIFIED
    assert (check.size, check.sha256) == (len(content), recorded.sha256)
    assert check.record is not None and recorded.verified_at is not None
    assert check.record.verified_at is not None and check.record.verified_at > recorded.verified_at


def test_a_tampered_file_is_changed_until_it_matches_again(
    library: BackupLibrary, save: Save
) -> None:
    path = save(content=b"original")
    path.write_bytes(b"ORIGINAL")  # same size, other bytes

    check = library.verify(path)

    assert check.verification is Verification.CHANGED
    assert check.record is not None and check.record.verified_at is None
    [entry] = library.entries()
    assert entry.verification is Verification.CHANGED  # the listing remembers the check
    path.write_bytes(b"original")
    assert library.verify(path).verification is Verification.VERIFIED
    assert library.entries()[0].verification is Verification.VERIFIED


def test_a_vanished_file_is_missing_and_an_unknown_one_unrecorded(
    library: BackupLibrary, save: Save, tmp_path: Path
) -> None:
    gone = save()
    gone.unlink()
    stray = tmp_path / "stray.vbundle"
    stray.write_bytes(b"abc")

    missing = library.verify(gone)
    unknown = library.verify(stray)

    assert (missing.verification, missing.size, missing.sha256) == (
        Verification.MISSING,
        None,
        None,
    )
    assert (unknown.verification, unknown.record, unknown.size) == (
        Verification.UNRECORDED,
        None,
        3,
    )
    with pytest.raises(LibraryError, match="no such file, and roost recorded none"):
        library.verify(tmp_path / "never.vbundle")


def test_a_relative_path_finds_its_record(
    library: BackupLibrary, save: Save, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = save()
    monkeypatch.chdir(path.parent)

    assert library.verify(Path(path.name)).verification is Verification.VERIFIED
    assert library.verify(Path("..", "backups", path.name)).record is not None


def test_a_fifo_is_refused_at_once_never_waited_on(library: BackupLibrary, folder: Path) -> None:
    folder.mkdir(parents=True)
    fifo = folder / "trap.vbundle"
    os.mkfifo(fifo)

    with pytest.raises(LibraryError, match="a FIFO, not a regular file"):
        library.verify(fifo)
    assert library.entries() == []  # not listed either


def test_delete_removes_the_file_and_its_record(library: BackupLibrary, save: Save) -> None:
    kept, deleted = save(), save()

    library.delete(deleted)

    assert not deleted.exists() and library.find(deleted) is None
    assert [e.path for e in library.entries()] == [kept]
    library.delete(deleted)  # already gone: nothing to do


# Retention -----------------------------------------------------------------------------------


def test_retention_keeps_the_newest_of_that_assistant(library: BackupLibrary, save: Save) -> None:
    alpha = [save("alpha") for _ in range(4)]
    bravo = [save("bravo") for _ in range(3)]
    library.keep = 2

    deleted = library.retain("alpha")

    assert [r.path for r in deleted] == [alpha[1], alpha[0]]
    assert not alpha[0].exists() and not alpha[1].exists()
    assert [e.path for e in library.entries("alpha")] == [alpha[3], alpha[2]]
    assert len(library.entries("bravo")) == len(bravo)


def test_retention_never_deletes_the_newest_verified_backup(
    library: BackupLibrary, save: Save
) -> None:
    good = save("alpha", b"good")
    newer = [save("alpha", b"later") for _ in range(2)]
    for path in newer:
        path.write_bytes(b"LATER")
        library.verify(path)
    library.keep = 1

    deleted = library.retain("alpha")

    assert [r.path for r in deleted] == [newer[0]]
    assert good.exists() and library.find(good) is not None


def test_retention_spares_a_held_file_and_keeps_everything_by_default(
    library: BackupLibrary, save: Save
) -> None:
    held, *rest = [save() for _ in range(3)]

    assert library.retain("alpha") == ()
    library.keep = 1
    with library.holding(held):
        assert [r.path for r in library.retain("alpha")] == [rest[0]]
    assert held.exists()
    assert [r.path for r in library.retain("alpha")] == [held]


def test_retention_leaves_files_saved_outside_the_backups_folder_alone(
    library: BackupLibrary, save: Save, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "archive" / "alpha.vbundle"
    elsewhere.parent.mkdir()
    elsewhere.write_bytes(b"kept by hand")
    library.record("alpha", elsewhere, 12, hashlib.sha256(b"kept by hand").hexdigest(), None)
    inside = [save() for _ in range(2)]
    library.keep = 1

    deleted = library.retain("alpha")

    assert [r.path for r in deleted] == [inside[0]]
    assert elsewhere.exists() and library.find(elsewhere) is not None


def test_retention_forgets_missing_files_and_keeps_one_it_cannot_remove(
    library: BackupLibrary, save: Save
) -> None:
    gone, stuck, newest = save(), save(), save()
    gone.unlink()
    stuck.unlink()
    stuck.mkdir()  # unlink refuses a directory (root may remove files from any directory)
    library.keep = 1

    deleted = library.retain("alpha")

    assert [r.path for r in deleted] == [gone]
    assert stuck.exists() and library.find(stuck) is not None
    assert library.find(newest) is not None


# The state database ----------------------------------------------------------------------------


def test_a_database_before_the_library_gains_it(paths: RoostPaths) -> None:
    old = StateDatabase(paths.state_database, MIGRATIONS[:4])
    old.add_events([Event(T0, "alpha: healthy → down")])

    library = BackupLibrary(StateDatabase.at(paths), backups_dir(paths.data_dir))
    library.record("alpha", paths.data_dir / "a.vbundle", 1, "AB" * 32, None)

    assert library.database.backups()[0].sha256 == "ab" * 32
    assert library.database.recent_events(1) == [Event(T0, "alpha: healthy → down")]
    with sqlite3.connect(paths.state_database) as connection:
        assert connection.execute("PRAGMA user_version").fetchone() == (len(MIGRATIONS),)


def test_an_unreadable_row_is_skipped(library: BackupLibrary, save: Save) -> None:
    path = save()
    with sqlite3.connect(library.database.path) as connection:
        connection.execute("UPDATE backups SET created_at = 'yesterday'")

    assert library.entries()[0].record is None  # listed as a file roost cannot vouch for
    assert library.find(path) is None


# The exporter records what it saves ------------------------------------------------------------


@pytest.fixture
def exporter(http: httpx.AsyncClient, library: BackupLibrary) -> Iterator[Exporter]:
    time_ = NoWait()
    yield Exporter(http, clock=time_.clock, sleep=time_.sleep, rand=lambda: 0.5, library=library)


async def test_a_sync_backup_is_recorded_and_retention_lists_what_it_deleted(
    vellum_peer: VellumPeer, exporter: Exporter, library: BackupLibrary, save: Save, folder: Path
) -> None:
    older = [save("alpha") for _ in range(2)]
    alpha = vellum_peer.runtime("alpha")
    alpha.migrations.artifact = artifact = Artifact(HANDOFF_BYTES + 3)
    library.keep = 2

    dest = backup_destination(folder.parent, "alpha", exporter.now())
    final = (await run(exporter.backup(direct(alpha), dest)))[-1]

    assert final.state is JobState.COMPLETE
    record = library.find(dest)
    assert record is not None
    assert (record.assistant, record.size, record.sha256, record.job_id) == (
        "alpha",
        artifact.size,
        artifact.sha256,
        final.id,
    )
    assert final.pruned == (older[0],) and not older[0].exists()
    assert [e.path for e in library.entries("alpha")] == [dest, older[1]]


async def test_a_managed_backup_is_recorded(
    vellum_peer: VellumPeer,
    exporter: Exporter,
    library: BackupLibrary,
    http: httpx.AsyncClient,
    folder: Path,
) -> None:
    mia = vellum_peer.runtime("mia", bearer="vak_key")
    mia.migrations.artifact = artifact = Artifact(1000)
    dest = folder / "mia.vbundle"

    final = (
        await run(exporter.backup(managed(mia, Platform(http, vellum_peer, "vak_key")), dest))
    )[-1]

    assert (final.state, final.pruned) == (JobState.COMPLETE, ())
    check = library.verify(dest)
    assert check.verification is Verification.VERIFIED
    assert check.record is not None and check.record.sha256 == artifact.sha256


async def test_a_library_that_cannot_be_written_leaves_the_backup_complete_saying_so(
    vellum_peer: VellumPeer, exporter: Exporter, library: BackupLibrary, folder: Path
) -> None:
    library.database.path.parent.mkdir(parents=True, exist_ok=True)
    library.database.path.mkdir()  # a directory where the database should be
    alpha = vellum_peer.runtime("alpha")
    dest = folder / "alpha.vbundle"

    final = (await run(exporter.backup(direct(alpha), dest)))[-1]

    assert final.state is JobState.COMPLETE and dest.exists()
    assert final.note is not None
    assert final.note.startswith("not recorded in the backup library: ")
