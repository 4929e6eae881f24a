"""Job records: their JSON form, ids and poll history; their store is in tests/test_state.py,
polling a runtime's job in tests/test_job_polling.py."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from services.jobs.record import (
    POLLS_KEPT,
    Job,
    JobKind,
    JobRoute,
    JobState,
    PollRecord,
    new_job_id,
)

T0 = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)
SHA = "ab" * 32


def a_job(number: int = 1, state: JobState = JobState.COMPLETE, **changes: object) -> Job:
    job = Job(
        id=f"job-{number}",
        kind=JobKind.BACKUP,
        assistant_id="alpha-id",
        assistant_name="alpha",
        route=JobRoute.SIGNED_URL,
        state=state,
        destination=Path(f"/data/backups/alpha-{number}.vbundle"),
        started_at=T0 + timedelta(minutes=number),
    )
    return replace(job, **changes)  # type: ignore[arg-type]


def a_full_job() -> Job:
    """Every field set, so a round trip checks them all."""
    return a_job(
        7,
        JobState.FAILED,
        finished_at=T0 + timedelta(hours=1),
        runtime_job_id="export-3",
        bundle_key="bundle-9",
        bytes_done=10,
        bytes_total=20,
        expected_size=20,
        expected_sha256=SHA,
        result_path=Path("/data/backups/alpha-7.vbundle"),
        size=20,
        sha256=SHA,
        verified=True,
        pruned=(Path("/data/backups/alpha-1.vbundle"), Path("/data/backups/alpha-2.vbundle")),
        corrupt_path=Path("/data/backups/alpha-7.vbundle.corrupt"),
        error="the download does not match",
        note="a note",
        in_progress_job_id="export-2",
        polls=(PollRecord(T0, "processing"), PollRecord(T0 + timedelta(seconds=2), "complete")),
    )


# Records ---------------------------------------------------------------------------------


def test_a_job_survives_a_json_round_trip_with_every_field() -> None:
    job = a_full_job()

    assert Job.from_json(json.loads(json.dumps(job.to_json()))) == job


def test_unknown_keys_in_a_stored_job_are_ignored() -> None:
    data = {**a_job().to_json(), "added_by_a_newer_roost": {"x": 1}}

    assert Job.from_json(data) == a_job()


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        ("state", "teleporting", "'state' is 'teleporting', not one of: starting,"),
        ("id", None, "'id' must be a string"),
        ("started_at", "yesterday", "'started_at' must be an ISO 8601 time"),
        ("started_at", "2025-05-01T12:00:00", "'started_at' must carry a timezone"),
        ("destination", "relative.vbundle", "'destination' must be an absolute path"),
        ("bytes_done", -1, "'bytes_done' must be a whole number of bytes"),
        ("pruned", [3], "'pruned' must be a list of paths"),
        ("polls", [{"at": "2025-05-01T12:00:00+00:00"}], "'outcome' must be a string"),
    ],
)
def test_a_bad_stored_job_names_its_problem(key: str, value: object, problem: str) -> None:
    with pytest.raises(ValueError, match="^" + problem.replace("(", r"\(")):
        Job.from_json({**a_job().to_json(), key: value})


def test_only_the_last_polls_are_kept() -> None:
    job = a_job()
    for second in range(POLLS_KEPT + 5):
        job = job.with_poll(T0 + timedelta(seconds=second), f"poll {second}")

    assert len(job.polls) == POLLS_KEPT
    assert job.polls[0].outcome == "poll 5" and job.polls[-1].outcome == f"poll {POLLS_KEPT + 4}"


def test_job_ids_sort_by_start_time_and_differ() -> None:
    first, second = new_job_id(T0), new_job_id(T0 + timedelta(seconds=1))

    assert first < second and first.startswith("20250501-120000-")
    assert new_job_id(T0) != new_job_id(T0)
