"""Backups from the main screen: the jobs table, its history across restarts, a job the
runtime forgot, an export already running, and the keys on a job."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from textual.theme import BUILTIN_THEMES

from services.core.paths import RoostPaths
from services.jobs.record import Job, JobKind, JobRoute, JobState
from services.jobs.store import JobStore
from tests.peers.vellum import Artifact, VellumPeer, in_progress_reply
from tests.pilot import SIZE, make_app, table_names, wait_until
from tests.test_state import end_process, record_in_process
from tui.app import RoostApp
from tui.job_table import JobTable
from tui.present import bucket_styles, job_row
from tui.screens.confirm import ConfirmScreen
from widgets.keyed_table import KeyedTable

STYLES = bucket_styles(BUILTIN_THEMES["textual-dark"])


def lockfile(home: Path, name: str, url: str, cloud: str = "custom") -> None:
    entry = {"assistantId": name, "cloud": cloud, "runtimeUrl": url}
    (home / ".vellum.lock.json").write_text(json.dumps({"assistants": [entry]}))


def select(app: RoostApp, name: str) -> None:
    app.screen.query_one("#assistants", KeyedTable).move_cursor(table_names(app).index(name))


def jobs_shown(app: RoostApp) -> list[list[str]]:
    table = app.main_screen.query_one("#jobs", JobTable)
    return [[cell.plain for cell in row.cells] for row in table.rows_shown]


def finished(app: RoostApp) -> bool:
    jobs = app.main_screen.jobs
    return bool(jobs) and all(job.state.finished for job in jobs)


async def test_b_backs_up_and_the_history_survives_a_restart(
    vellum_peer: VellumPeer, isolated_env: Path
) -> None:
    runtime = vellum_peer.runtime("ada")
    runtime.migrations.artifact = Artifact(200_000)
    lockfile(isolated_env, "ada", runtime.base_url)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: "ada" in table_names(app), "ada's row")
        select(app, "ada")
        await pilot.press("b")
        await wait_until(pilot, lambda: finished(app), "the backup")
        [job] = app.main_screen.jobs
        assert job.state is JobState.COMPLETE and job.verified
        assert job.result_path is not None
        assert (
            hashlib.sha256(job.result_path.read_bytes()).hexdigest()
            == runtime.migrations.artifact.sha256
        )
        assert job.result_path.parent == RoostPaths.resolve().data_dir / "backups"
        [row] = jobs_shown(app)
        assert row[1:4] == ["ada", "backup", "complete"]
        assert row[-1] == f"{job.result_path} (195.3 KiB)"

    again = make_app()
    async with again.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: bool(again.main_screen.jobs), "the history")
        assert [j.id for j in again.main_screen.jobs] == [job.id]
        again.main_screen.query_one("#jobs", JobTable).focus()
        await pilot.press("x")  # a finished job leaves the list; its file stays
        await wait_until(pilot, lambda: not again.main_screen.jobs, "the job removed")
        assert job.result_path.exists()
        assert JobStore.at(RoostPaths.resolve()).load() == ()


def export_of(home: Path, name: str, runtime_job_id: str, minute: int = 0) -> Job:
    return Job(
        f"j-{name}",
        JobKind.BACKUP,
        name,
        name,
        JobRoute.SIGNED_URL,
        JobState.PROCESSING,
        home / f"{name}.vbundle",
        datetime(2026, 11, 21, 7, minute, tzinfo=UTC),
        runtime_job_id=runtime_job_id,
    )


async def test_a_job_the_runtime_forgot_while_roost_was_away_is_lost(
    vellum_peer: VellumPeer, isolated_env: Path
) -> None:
    runtime = vellum_peer.runtime("mia")
    lockfile(isolated_env, "mia", runtime.base_url)
    end_process(record_in_process(export_of(isolated_env, "mia", "gone-42")))
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: finished(app), "the resumed job's end")
        [job] = app.main_screen.jobs
        assert job.state is JobState.LOST
        assert job.error is not None and "Migration job not found" in job.error
        assert jobs_shown(app)[0][3] == "lost"


async def test_only_the_exports_of_roost_processes_that_ended_are_resumed(
    vellum_peer: VellumPeer, isolated_env: Path
) -> None:
    runtime = vellum_peer.runtime("kit")
    runtime.migrations.artifact = Artifact(100_000)
    runtime.migrations.jobs["export-9"] = "bundle-9"
    lockfile(isolated_env, "kit", runtime.base_url)
    ended = replace(export_of(isolated_env, "kit", "export-9", minute=1), bundle_key="bundle-9")
    end_process(record_in_process(ended))
    other = record_in_process(replace(export_of(isolated_env, "kit", "live-7"), id="j-live"))
    try:
        app = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(
                pilot,
                lambda: any(j.id == ended.id and j.state.finished for j in app.main_screen.jobs),
                "the resumed job's end",
            )
            jobs = {job.id: job for job in app.main_screen.jobs}
            assert jobs[ended.id].state is JobState.COMPLETE
            assert jobs["j-live"].state is JobState.PROCESSING  # its roost still runs it
        assert vellum_peer.requests_to(f"{runtime.path}/v1/migrations/jobs/live-7") == []
    finally:
        end_process(other)


async def test_an_export_already_running_is_offered_to_follow(
    vellum_peer: VellumPeer, isolated_env: Path
) -> None:
    runtime = vellum_peer.runtime("kit")
    runtime.migrations.export_replies.append(in_progress_reply("export-77"))
    lockfile(isolated_env, "kit", runtime.base_url)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: "kit" in table_names(app), "kit's row")
        select(app, "kit")
        await pilot.press("b")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the offer")
        [refused] = app.main_screen.jobs
        assert refused.in_progress_job_id == "export-77"
        await pilot.press("n")
        assert len(app.main_screen.jobs) == 1  # declined: nothing else started


def test_job_rows_keep_their_shape() -> None:
    job = Job(
        "j-2",
        JobKind.BACKUP,
        "a",
        "a",
        JobRoute.SYNC,
        JobState.DOWNLOADING,
        Path("/x"),
        datetime(2026, 11, 21, 7, 0, tzinfo=UTC),
        bytes_done=50,
        bytes_total=200,
    )
    row = job_row(job, datetime(2026, 11, 21, 7, 0, 30, tzinfo=UTC), 0, STYLES)
    assert [cell.plain for cell in row.cells][3:7] == [
        "downloading",
        "███░░░░░░░░░  25%",
        "30s",
        "1m30s",
    ]
    failed = replace(job, state=JobState.FAILED, error="boom", finished_at=job.started_at)
    assert [cell.plain for cell in job_row(failed, datetime.now(UTC), 0, STYLES).cells][4:] == [
        "failed",
        "0s",
        "",
        "boom",
    ]


async def test_a_job_another_roost_starts_is_followed_until_that_roost_ends(
    isolated_env: Path,
) -> None:
    job = replace(export_of(isolated_env, "ada", "unused"), route=JobRoute.SYNC)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        # `roost backup` in another terminal, started after the console
        other = record_in_process(replace(job, state=JobState.EXPORTING, runtime_job_id=None))
        await wait_until(pilot, lambda: bool(app.main_screen.jobs), "the other roost's job")
        assert jobs_shown(app)[0][3] == "exporting"
        end_process(other)  # it ends before its backup does
        await wait_until(pilot, lambda: finished(app), "the job's end")
        [ended] = app.main_screen.jobs
        assert ended.state is JobState.FAILED
        assert ended.error is not None and ended.error.startswith("interrupted: the roost process")


async def test_an_interrupted_export_of_an_assistant_that_is_gone_is_lost_with_its_part_file(
    vellum_peer: VellumPeer, isolated_env: Path
) -> None:
    lockfile(isolated_env, "kit", vellum_peer.runtime("kit").base_url)
    job = replace(export_of(isolated_env, "old", "export-4"), state=JobState.DOWNLOADING)
    part = isolated_env / "old.vbundle.part"
    part.write_bytes(b"half")
    end_process(record_in_process(job))
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: finished(app), "the job's end")
        [lost] = app.main_screen.jobs
        assert (lost.state, lost.error) == (JobState.LOST, "its assistant is gone")
        assert not part.exists()
