"""roost's state database and the job history in it: concurrent roost processes (real ones),
jobs whose process died, schema migrations, the import of the old `jobs.jsonl`, events and the
answer history."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from services.core import state
from services.core.paths import RoostPaths
from services.core.processes import ProcessIdentity, process_start
from services.core.state import (
    EVENTS_KEPT,
    MIGRATIONS,
    AgentEventRow,
    AnswerRow,
    Event,
    StateDatabase,
    StateError,
)
from services.jobs.record import Job, JobRoute, JobState
from services.jobs.store import HISTORY_LIMIT, LEGACY_NAME, JobStore, JobStoreError
from tests.test_jobs import T0, a_job

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def paths() -> RoostPaths:
    return RoostPaths.resolve()


@pytest.fixture
def store(paths: RoostPaths) -> JobStore:
    return JobStore.at(paths)


def stored(paths: RoostPaths) -> tuple[Job, ...]:
    """The history as the next roost process reads it."""
    return JobStore.at(paths).load()


def ended_process() -> ProcessIdentity:
    """The identity a roost process had: it has ended since."""
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return ProcessIdentity(int(child.stdout), "a-boot:12345", socket.gethostname())


@pytest.fixture
def live_process() -> Iterator[ProcessIdentity]:
    """Another process, alive for the whole test."""
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=-1)
    try:
        yield ProcessIdentity(child.pid, process_start(child.pid), socket.gethostname())
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(timeout=30)


RECORDER = """
import json, sys
from services.jobs.record import Job
from services.jobs.store import JobStore
from services.core.paths import RoostPaths
store = JobStore.at(RoostPaths.resolve())
store.load()
store.put(Job.from_json(json.loads(sys.argv[1])))
print("recorded", flush=True)
sys.stdin.read()
"""


def record_in_process(job: Job) -> subprocess.Popen[str]:
    """A roost process that records `job` and lives until its stdin is closed."""
    process = subprocess.Popen(
        [sys.executable, "-c", RECORDER, json.dumps(job.to_json())],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert process.stdout is not None and process.stdout.readline() == "recorded\n"
    return process


def end_process(process: subprocess.Popen[str]) -> None:
    assert process.stdin is not None
    process.stdin.close()
    assert process.wait(timeout=30) == 0


def store_of(paths: RoostPaths, owner: ProcessIdentity) -> JobStore:
    """The store as the process `owner` used it."""
    return JobStore(StateDatabase.at(paths), paths.state_dir / LEGACY_NAME, owner=owner)


# The database ------------------------------------------------------------------------------


def test_a_missing_database_is_an_empty_history_and_reading_creates_nothing(
    store: JobStore, paths: RoostPaths
) -> None:
    assert store.load() == ()
    assert store.problems == ()
    assert not paths.state_dir.exists()


def test_the_first_write_creates_a_private_wal_database_at_the_latest_schema(
    store: JobStore, paths: RoostPaths
) -> None:
    store.put(a_job(1))

    assert paths.state_database == paths.state_dir / "roost.db"
    assert oct(paths.state_database.stat().st_mode & 0o777) == "0o600"
    assert oct(paths.state_dir.stat().st_mode & 0o777) == "0o700"
    with sqlite3.connect(paths.state_database) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert connection.execute("PRAGMA user_version").fetchone() == (len(MIGRATIONS),)
    for name in ("roost.db-wal", "roost.db-shm"):
        extra = paths.state_dir / name
        assert not extra.exists() or oct(extra.stat().st_mode & 0o777) == "0o600"


def test_jobs_are_read_back_newest_first_each_snapshot_replacing_the_last(
    store: JobStore, paths: RoostPaths
) -> None:
    store.put(a_job(1))
    store.put(a_job(3, JobState.PROCESSING, runtime_job_id="export-5"))
    store.put(a_job(2, JobState.EXPORTING))
    store.put(a_job(2, JobState.FAILED, error="no"))

    again = stored(paths)
    assert [(job.id, job.state) for job in again] == [
        ("job-3", JobState.PROCESSING),
        ("job-2", JobState.FAILED),
        ("job-1", JobState.COMPLETE),
    ]
    assert again[1] == a_job(2, JobState.FAILED, error="no")


def test_progress_alone_is_not_written_but_every_other_change_is(
    store: JobStore, paths: RoostPaths
) -> None:
    running = a_job(1, JobState.DOWNLOADING, bytes_total=100)
    store.put(running)

    store.put(replace(running, bytes_done=50))
    assert store.jobs[0].bytes_done == 50  # known here
    assert stored(paths)[0].bytes_done == 0  # but not written

    store.put(replace(running, bytes_done=60, state=JobState.VERIFYING))
    assert stored(paths)[0].bytes_done == 60


def test_history_is_bounded_dropping_the_oldest_finished_jobs(paths: RoostPaths) -> None:
    store = JobStore(StateDatabase.at(paths), limit=3)
    store.put(a_job(1, JobState.PROCESSING, runtime_job_id="e-1"))  # oldest, but running: kept
    for number in range(2, 6):
        store.put(a_job(number))

    assert [job.id for job in store.jobs] == ["job-5", "job-4", "job-1"]
    assert [job.id for job in stored(paths)] == ["job-5", "job-4", "job-1"]
    assert HISTORY_LIMIT == 200


def test_a_finished_job_is_removed_and_a_running_one_is_not(
    store: JobStore, paths: RoostPaths
) -> None:
    store.put(a_job(1))
    store.put(a_job(2, JobState.PROCESSING, runtime_job_id="e-2"))

    with pytest.raises(JobStoreError, match="still running"):
        store.remove("job-2")
    store.remove("job-1")

    assert [job.id for job in stored(paths)] == ["job-2"]


def test_a_database_that_cannot_be_created_says_where(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    store = JobStore(StateDatabase(blocker / "roost.db"))

    with pytest.raises(StateError, match=f"cannot create {blocker}/roost.db"):
        store.put(a_job(1))


def test_a_file_that_is_not_a_database_is_reported_and_left_alone(
    store: JobStore, paths: RoostPaths
) -> None:
    paths.state_dir.mkdir(parents=True)
    paths.state_database.write_bytes(b"not a database, but someone's file" * 100)

    with pytest.raises(StateError, match=f"roost's state database {paths.state_database}: "):
        store.load()
    with pytest.raises(StateError):
        store.put(a_job(1))
    assert paths.state_database.read_bytes() == b"not a database, but someone's file" * 100


# Concurrent roost processes ---------------------------------------------------------------

WRITER = """
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from services.jobs.record import Job, JobKind, JobRoute, JobState
from services.jobs.store import JobStore
from services.core.paths import RoostPaths

name, count = sys.argv[1], int(sys.argv[2])
store = JobStore.at(RoostPaths.resolve())
store.load()
print("ready", flush=True)
sys.stdin.readline()
for number in range(count):
    job = Job(f"{name}-{number}", JobKind.BACKUP, name, name, JobRoute.SYNC, JobState.STARTING,
              Path(f"/backups/{name}-{number}.vbundle"), datetime.now(UTC))
    for state in (JobState.STARTING, JobState.EXPORTING, JobState.DOWNLOADING):
        store.put(replace(job, state=state))
    store.put(job.ended(JobState.COMPLETE, datetime.now(UTC)))
"""


def test_concurrent_roost_processes_never_lose_a_job(paths: RoostPaths) -> None:
    processes, jobs_each = 8, 5
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, f"p{index}", str(jobs_each)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        for index in range(processes)
    ]
    for writer in writers:  # every one has read the (empty) history before any writes
        assert writer.stdout is not None and writer.stdout.readline() == "ready\n"
    for writer in writers:
        assert writer.stdin is not None
        writer.stdin.write("go\n")
        writer.stdin.flush()
    for writer in writers:
        _, errors = writer.communicate(timeout=120)
        assert writer.returncode == 0, errors

    jobs = stored(paths)
    assert len(jobs) == processes * jobs_each
    assert {job.id for job in jobs} == {
        f"p{index}-{number}" for index in range(processes) for number in range(jobs_each)
    }
    assert {job.state for job in jobs} == {JobState.COMPLETE}


# Jobs whose process died -------------------------------------------------------------------


def test_a_sync_backup_whose_process_died_fails_and_its_part_file_goes(
    paths: RoostPaths, tmp_path: Path
) -> None:
    destination = tmp_path / "ada.vbundle"
    part = tmp_path / "ada.vbundle.part"
    part.write_bytes(b"half an archive")
    dead = ended_process()
    job = a_job(1, JobState.DOWNLOADING, route=JobRoute.SYNC, destination=destination)
    store_of(paths, dead).put(replace(job, bytes_done=15))

    store = JobStore.at(paths)
    [failed] = store.load()

    assert failed.state is JobState.FAILED and failed.finished_at is not None
    assert failed.error == (
        f"interrupted: the roost process running it (pid {dead.pid}) stopped before this backup"
        " finished; start a new one"
    )
    assert not part.exists()
    assert store.interrupted() == ()
    assert stored(paths) == (failed,)  # settled once, for everyone


def test_a_reused_pid_is_not_the_process_that_ran_the_job(paths: RoostPaths) -> None:
    impostor = ProcessIdentity(os.getpid(), "another-boot:1", socket.gethostname())
    store_of(paths, impostor).put(a_job(1, JobState.EXPORTING, route=JobRoute.SYNC))

    [job] = stored(paths)

    assert job.state is JobState.FAILED


def test_a_job_of_a_live_process_is_left_to_it(
    paths: RoostPaths, live_process: ProcessIdentity
) -> None:
    running = a_job(1, JobState.EXPORTING, route=JobRoute.SYNC)
    managed = a_job(2, JobState.PROCESSING, runtime_job_id="export-2")
    elsewhere = ProcessIdentity(1, None, "another-machine")
    store_of(paths, live_process).put(running)
    store_of(paths, live_process).put(managed)
    store_of(paths, elsewhere).put(a_job(3, JobState.EXPORTING, route=JobRoute.SYNC))

    store = JobStore.at(paths)
    jobs = store.load()

    assert {job.id: job.state for job in jobs} == {
        "job-1": JobState.EXPORTING,
        "job-2": JobState.PROCESSING,
        "job-3": JobState.EXPORTING,  # its machine is not this one: nothing can be known
    }
    assert store.interrupted() == ()
    assert not store.claim(managed)


def test_a_managed_export_whose_process_died_is_interrupted_and_claimed_once(
    paths: RoostPaths,
) -> None:
    job = a_job(1, JobState.PROCESSING, runtime_job_id="export-1", bundle_key="b-1")
    store_of(paths, ended_process()).put(job)

    first, second = JobStore.at(paths), JobStore.at(paths)
    first.load()
    second.load()

    assert first.interrupted() == (job,)
    assert first.shown_state(job) == "interrupted"
    assert first.claim(job)  # this process carries it on...
    assert not second.claim(job)  # ...and a roost that started at the same time does not
    assert first.interrupted() == () and first.shown_state(job) == "processing"
    assert JobStore.at(paths).load() and JobStore.at(paths).interrupted() == ()


# Migrations ----------------------------------------------------------------------------------


def test_an_older_database_is_migrated_keeping_its_rows(paths: RoostPaths) -> None:
    old = StateDatabase(paths.state_database, MIGRATIONS[:1])
    JobStore(old).put(a_job(1))
    with sqlite3.connect(paths.state_database) as connection:
        assert connection.execute("PRAGMA user_version").fetchone() == (1,)

    database = StateDatabase.at(paths)
    database.add_events([Event(T0, "alpha: healthy → down")])

    assert [job.id for job in stored(paths)] == ["job-1"]
    assert database.recent_events(10) == [Event(T0, "alpha: healthy → down")]
    with sqlite3.connect(paths.state_database) as connection:
        assert connection.execute("PRAGMA user_version").fetchone() == (len(MIGRATIONS),)


def test_a_database_before_the_answers_gains_them_keeping_its_events(paths: RoostPaths) -> None:
    old = StateDatabase(paths.state_database, MIGRATIONS[:2])
    old.add_events([Event(T0, "alpha: healthy → down")])

    database = StateDatabase.at(paths)
    database.add_answer(an_answer(1))

    assert database.recent_events(10) == [Event(T0, "alpha: healthy → down")]
    assert database.answers(10) == [an_answer(1)]
    with sqlite3.connect(paths.state_database) as connection:
        assert connection.execute("PRAGMA user_version").fetchone() == (len(MIGRATIONS),)


def test_agent_events_come_back_in_order_after_a_number_and_only_the_newest_are_kept(
    paths: RoostPaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(state, "AGENT_EVENTS_KEPT", 3)
    database = StateDatabase.at(paths)
    database.add_agent_events(
        [AgentEventRow(0, T0, "claude", "srv.sock", f"%{n}", f'{{"n": {n}}}') for n in range(5)]
    )

    kept = database.agent_events()
    assert [row.pane for row in kept] == ["%2", "%3", "%4"]
    assert [row.pane for row in database.agent_events(after=kept[0].id)] == ["%3", "%4"]
    assert [row.pane for row in database.agent_events(limit=1)] == ["%4"]
    assert kept[0].at == T0 and kept[0].payload == '{"n": 2}'


def test_a_database_from_a_newer_roost_is_refused_and_untouched(paths: RoostPaths) -> None:
    JobStore.at(paths).put(a_job(1))
    future = len(MIGRATIONS) + 1
    with sqlite3.connect(paths.state_database) as connection:
        connection.execute(f"PRAGMA user_version = {future}")
    before = paths.state_database.read_bytes()

    with pytest.raises(StateError, match=f"schema version {future}, written by a newer roost"):
        JobStore.at(paths).load()
    assert paths.state_database.read_bytes() == before


# Importing jobs.jsonl -----------------------------------------------------------------------


def write_legacy(paths: RoostPaths, *lines: str) -> bytes:
    paths.state_dir.mkdir(parents=True, exist_ok=True)
    content = ("\n".join(lines) + "\n").encode()
    (paths.state_dir / "jobs.jsonl").write_bytes(content)
    return content


def test_an_old_jobs_file_is_imported_once_and_kept_as_a_backup(paths: RoostPaths) -> None:
    content = write_legacy(paths, json.dumps(a_job(1).to_json()), json.dumps(a_job(2).to_json()))

    assert [job.id for job in stored(paths)] == ["job-2", "job-1"]
    assert not (paths.state_dir / "jobs.jsonl").exists()
    assert (paths.state_dir / "jobs.jsonl.imported").read_bytes() == content
    assert [job.id for job in stored(paths)] == ["job-2", "job-1"]

    # An older roost wrote it again: what is new is added, nothing twice, no backup lost.
    newer = a_job(2, JobState.FAILED, error="changed")
    write_legacy(paths, json.dumps(newer.to_json()), json.dumps(a_job(3).to_json()))
    jobs = stored(paths)
    assert [job.id for job in jobs] == ["job-3", "job-2", "job-1"]
    assert jobs[1] == a_job(2)  # the database's row is newer than the old file's
    backups = sorted(path.name for path in paths.state_dir.glob("jobs.jsonl.imported*"))
    assert len(backups) == 2


def test_an_imported_unfinished_sync_job_is_interrupted(paths: RoostPaths) -> None:
    running = a_job(1, JobState.EXPORTING, route=JobRoute.SYNC)
    write_legacy(paths, json.dumps(running.to_json()))

    [job] = stored(paths)

    assert job.state is JobState.FAILED
    assert job.error == "interrupted: roost stopped before this backup finished; start a new one"


def test_a_malformed_jobs_file_is_reported_by_line_and_not_imported(
    store: JobStore, paths: RoostPaths
) -> None:
    good = json.dumps(a_job(1).to_json())
    unknown_state = json.dumps({**a_job(2).to_json(), "state": "teleporting"})
    content = write_legacy(paths, good, "{not json", "", "[1, 2]", unknown_state, good)
    legacy = paths.state_dir / "jobs.jsonl"

    assert store.load() == ()
    assert [(problem.line, problem.problem) for problem in store.problems] == [
        (2, "column 2: Expecting property name enclosed in double quotes"),
        (4, "not a JSON object"),
        (5, "'state' is 'teleporting', not one of: " + ", ".join(JobState)),
        (6, "job 'job-1' appears twice"),
        (None, "not imported: fix these lines and roost imports it next"),
    ]
    assert str(store.problems[0]) == (
        f"{legacy}, line 2: column 2: Expecting property name enclosed in double quotes"
    )
    store.put(a_job(3))  # the history goes on meanwhile
    assert legacy.read_bytes() == content
    assert not (paths.state_dir / "jobs.jsonl.imported").exists()
    assert [job.id for job in stored(paths)] == ["job-3"]


def test_an_unreadable_jobs_file_is_reported_without_a_line(
    store: JobStore, paths: RoostPaths
) -> None:
    paths.state_dir.mkdir(parents=True)
    (paths.state_dir / "jobs.jsonl").write_bytes(b"\xff\xfe not utf-8\n")

    store.load()

    [problem] = store.problems
    assert problem.line is None and "not imported: cannot be read" in problem.problem


def test_a_row_a_newer_roost_wrote_is_reported_and_kept(store: JobStore, paths: RoostPaths) -> None:
    store.put(a_job(1))
    store.put(a_job(2))
    with sqlite3.connect(paths.state_database) as connection:
        snapshot = json.dumps({**a_job(2).to_json(), "state": "paused"})
        connection.execute("UPDATE jobs SET snapshot = ? WHERE id = 'job-2'", (snapshot,))

    again = JobStore.at(paths)
    assert [job.id for job in again.load()] == ["job-1"]
    [problem] = again.problems
    assert str(problem).startswith(f"{paths.state_database}: job job-2: 'state' is 'paused'")
    again.put(a_job(3))
    with sqlite3.connect(paths.state_database) as connection:
        assert connection.execute("SELECT count(*) FROM jobs").fetchone() == (3,)


# Events --------------------------------------------------------------------------------------


def test_events_are_kept_newest_last_and_bounded(paths: RoostPaths) -> None:
    database = StateDatabase.at(paths)
    assert database.recent_events(5) == []
    database.add_events(
        [Event(T0 + timedelta(seconds=n), f"event {n}") for n in range(EVENTS_KEPT + 10)]
    )

    recent = StateDatabase.at(paths).recent_events(3)

    assert [event.line for event in recent] == [
        f"event {EVENTS_KEPT + 7}",
        f"event {EVENTS_KEPT + 8}",
        f"event {EVENTS_KEPT + 9}",
    ]
    assert recent[0].at == T0 + timedelta(seconds=EVENTS_KEPT + 7)
    assert len(database.recent_events(10 * EVENTS_KEPT)) == EVENTS_KEPT


def test_a_store_knows_when_other_processes_changed_the_history(paths: RoostPaths) -> None:
    store = JobStore.at(paths)
    store.put(a_job(1, JobState.DOWNLOADING, route=JobRoute.SYNC))
    store.put(replace(store.jobs[0], bytes_done=10))  # progress alone
    assert not store.stale()

    other = record_in_process(a_job(2, JobState.EXPORTING, route=JobRoute.SYNC))
    assert store.stale()  # another roost started a job
    store.load()
    assert not store.stale()

    end_process(other)
    assert store.stale()  # its process ended before the job did
    assert [job.state for job in store.load()] == [JobState.FAILED, JobState.DOWNLOADING]
    assert store.jobs[1].bytes_done == 10  # this process's own progress is kept
    assert not store.stale()


# Answers -------------------------------------------------------------------------------------


def an_answer(number: int, outcome: str = "accepted") -> AnswerRow:
    return AnswerRow(
        T0 + timedelta(seconds=number),
        "asst-1",
        "alpha",
        f"request-{number}",
        "confirmation",
        "bash (high risk)",
        "allow",
        "command line",
        outcome,
        "" if outcome == "accepted" else "not the guardian",
    )


def test_answers_are_read_newest_first_as_written(paths: RoostPaths) -> None:
    database = StateDatabase.at(paths)
    assert database.answers(5) == []
    assert not paths.state_dir.exists()  # reading created nothing
    database.add_answer(an_answer(1))
    database.add_answer(an_answer(2, "refused"))
    database.add_answer(an_answer(3, "already answered"))

    read = StateDatabase.at(paths).answers(2)

    assert read == [an_answer(3, "already answered"), an_answer(2, "refused")]


def test_the_answer_history_is_bounded_dropping_the_oldest(
    paths: RoostPaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(state, "ANSWERS_KEPT", 3)
    database = StateDatabase.at(paths)
    for number in range(5):
        database.add_answer(an_answer(number))

    assert [row.request_id for row in database.answers(10)] == [
        "request-4",
        "request-3",
        "request-2",
    ]


def test_a_second_database_of_the_same_file_keeps_the_first_ones_lock(paths: RoostPaths) -> None:
    """The console has two (the jobs' and the answers'). POSIX locks go with any close of the
    file in the process: had the second closed a descriptor of its own, the first's lock was
    gone, and another roost closing took itself for the last user and removed the WAL the
    console still wrote to (its writes lost, then 'disk I/O error')."""
    row = AgentEventRow(0, T0, "claude", "sock", "%1", "{}")
    StateDatabase.at(paths).add_agent_events([row])
    held = held_locks(paths.state_database)
    assert held, "SQLite holds a lock on a database in WAL mode"
    StateDatabase.at(paths).add_agent_events([row])
    assert held_locks(paths.state_database) == held


def held_locks(path: Path) -> list[str]:
    """The POSIX locks this process holds on `path` (Linux's /proc/locks)."""
    inode = f":{path.stat().st_ino} "
    with Path("/proc/locks").open() as locks:
        return [
            " ".join(line.split()[1:4])
            for line in locks
            if inode in line and f" {os.getpid()} " in line
        ]
