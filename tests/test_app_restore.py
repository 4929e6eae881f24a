"""Restores in the console: R on the backups screen (B on an assistant's row) opens the restore
screen, which shows each step and the preflight report and asks for the assistant's name; the
job shows in the jobs panel like a backup."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import Input, Static

from services.core.paths import RoostPaths
from services.jobs.library import backups_dir
from services.jobs.record import Job, JobKind, JobRoute, JobState
from services.jobs.store import JobStore
from tests.peers.vellum import Artifact, VellumPeer, import_reply, preflight_reply, problem
from tests.pilot import SIZE, make_app, table_names, wait_until
from tests.test_app_backups import open_backups
from tests.test_app_inbox import toasts
from tests.test_app_jobs import finished, jobs_shown, lockfile, select
from tests.test_state import end_process, record_in_process
from tui.app import RoostApp
from tui.screens.confirm import ConfirmScreen
from tui.screens.restore import RestoreScreen
from widgets.keyed_table import KeyedTable


def restore_job(app: RoostApp) -> JobState | None:
    screen = app.screen
    if isinstance(screen, RestoreScreen) and screen.job is not None:
        return screen.job.state
    return None


def text_of(app: RoostApp, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


async def back_up_then_pick(pilot: Pilot[None], app: RoostApp) -> None:
    """Back ada up with b, then B and R on that backup."""
    await wait_until(pilot, lambda: "ada" in table_names(app), "ada's row")
    select(app, "ada")
    await pilot.press("b")
    await wait_until(pilot, lambda: finished(app), "the backup")
    await open_backups(pilot, app, "ada")
    assert len(app.screen.query_one("#backups", KeyedTable).rows_shown) == 1
    await pilot.press("R")
    await wait_until(pilot, lambda: isinstance(app.screen, RestoreScreen), "the restore screen")


async def test_r_restores_a_backup_after_the_name_is_typed(
    vellum_peer: VellumPeer, isolated_env: Path
) -> None:
    ada = vellum_peer.runtime("ada")
    ada.migrations.artifact = then = Artifact(60_000, seed="then")
    lockfile(isolated_env, "ada", ada.base_url)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await back_up_then_pick(pilot, app)
        ada.migrations.artifact = Artifact(30_000, seed="now")
        await wait_until(pilot, lambda: restore_job(app) is JobState.AWAITING, "the question")
        steps = text_of(app, "#restore-steps")
        assert "1. check the file against roost's record  done verified" in steps
        assert "4. confirm  waiting for you" in steps
        assert "1 to create, 1 to overwrite, 1 unchanged (3 files)" in text_of(
            app, "#restore-report"
        )
        assert "Type ada and press enter to import" in text_of(app, "#restore-hint")
        assert ada.migrations.imports == []

        name = app.screen.query_one("#restore-name", Input)
        name.value = "adx"
        await pilot.press("enter")
        assert restore_job(app) is JobState.AWAITING  # a wrong name imports nothing
        name.value = "ada"
        await pilot.press("enter")
        await wait_until(pilot, lambda: restore_job(app) is JobState.COMPLETE, "the import")

        assert "Restored ada: 1 created" in text_of(app, "#restore-hint")
        [imported] = ada.migrations.imports
        assert (imported.size, imported.sha256) == (then.size, then.sha256)
        await pilot.press("escape")
        await wait_until(pilot, lambda: finished(app), "every job's end")
        kinds = [row[2] for row in jobs_shown(app)]
        assert kinds.count("restore") == 1 and kinds.count("backup") == 2  # one is the safety

    history = JobStore.at(RoostPaths.resolve()).load()
    [restore] = [job for job in history if job.kind is JobKind.RESTORE]
    assert restore.state is JobState.COMPLETE and restore.safety_backup is not None


async def test_escape_at_the_question_imports_nothing(
    vellum_peer: VellumPeer, isolated_env: Path
) -> None:
    ada = vellum_peer.runtime("ada")
    lockfile(isolated_env, "ada", ada.base_url)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await back_up_then_pick(pilot, app)
        await wait_until(pilot, lambda: restore_job(app) is JobState.AWAITING, "the question")
        await pilot.press("escape")
        await wait_until(pilot, lambda: finished(app), "the restore declined")

        restore = next(job for job in app.main_screen.jobs if job.kind is JobKind.RESTORE)
        assert restore.state is JobState.CANCELLED
        assert ada.migrations.imports == []


async def test_a_failed_preflight_shows_its_paths_and_never_asks(
    vellum_peer: VellumPeer, isolated_env: Path
) -> None:
    ada = vellum_peer.runtime("ada")
    ada.migrations.preflight_replies.append(
        preflight_reply(can_import=False, conflicts=[problem("locked", "memory/db.sqlite")])
    )
    lockfile(isolated_env, "ada", ada.base_url)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await back_up_then_pick(pilot, app)
        await wait_until(pilot, lambda: restore_job(app) is JobState.FAILED, "the refusal")

        assert "memory/db.sqlite: locked" in text_of(app, "#restore-report")
        assert "cannot import this bundle" in text_of(app, "#restore-hint")
        assert not app.screen.query_one("#restore-name", Input).display
        assert ada.migrations.imports == []


async def test_a_file_roost_did_not_save_is_restored_only_after_a_warning(
    vellum_peer: VellumPeer, isolated_env: Path
) -> None:
    ada = vellum_peer.runtime("ada")
    lockfile(isolated_env, "ada", ada.base_url)
    stranger = backups_dir(RoostPaths.resolve().data_dir) / "ada-20250101-000000.vbundle"
    stranger.parent.mkdir(parents=True)
    stranger.write_bytes(b"a bundle from elsewhere")
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await open_backups(pilot, app, "ada")
        await pilot.press("R")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the warning")
        await pilot.press("y")
        await wait_until(pilot, lambda: restore_job(app) is JobState.AWAITING, "the question")

        assert "restored anyway (--force-unverified)" in text_of(app, "#restore-report")
        assert ada.migrations.preflights[0].size == len(b"a bundle from elsewhere")


async def test_a_restore_closed_while_it_runs_comes_back_to_ask(
    vellum_peer: VellumPeer, isolated_env: Path
) -> None:
    ada = vellum_peer.runtime("ada")
    ada.migrations.preflight_replies.append(replace(preflight_reply(), delay=2.0))
    lockfile(isolated_env, "ada", ada.base_url)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await back_up_then_pick(pilot, app)
        assert restore_job(app) is not JobState.AWAITING  # the peer answers in 2 s
        await pilot.press("escape")  # closes the screen; the restore goes on
        assert not isinstance(app.screen, RestoreScreen)
        await wait_until(pilot, lambda: restore_job(app) is JobState.AWAITING, "the question")
        await wait_until(
            pilot, lambda: app.screen.query_one("#restore-name", Input).display, "the name field"
        )
        assert ada.migrations.imports == []


async def test_an_import_job_running_when_roost_stopped_is_followed_to_its_end(
    vellum_peer: VellumPeer, isolated_env: Path
) -> None:
    ada = vellum_peer.runtime("ada")
    ada.migrations.jobs["import-5"] = "bundle-5"
    lockfile(isolated_env, "ada", ada.base_url)
    interrupted = Job(
        "r-ada",
        JobKind.RESTORE,
        "ada",
        "ada",
        JobRoute.SIGNED_URL,
        JobState.PROCESSING,
        isolated_env / "ada.vbundle",
        datetime(2026, 11, 21, 7, 0, tzinfo=UTC),
        runtime_job_id="import-5",
    )
    end_process(record_in_process(interrupted))
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: finished(app), "the resumed restore's end")

        [job] = app.main_screen.jobs
        assert job.state is JobState.COMPLETE and job.kind is JobKind.RESTORE
        assert job.outcome is not None and job.outcome.success
        assert [poll.outcome for poll in job.polls] == ["complete"]
        assert jobs_shown(app)[0][2:4] == ["restore", "complete"]


async def test_a_failed_import_is_shown_whatever_its_reason_holds(
    vellum_peer: VellumPeer, isolated_env: Path
) -> None:
    ada = vellum_peer.runtime("ada")
    ada.migrations.import_replies.append(
        import_reply(success=False, reason="[/red] bad \x1b[2J [link=x]")
    )
    lockfile(isolated_env, "ada", ada.base_url)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await back_up_then_pick(pilot, app)
        await wait_until(pilot, lambda: restore_job(app) is JobState.AWAITING, "the question")
        app.screen.query_one("#restore-name", Input).value = "ada"
        await pilot.press("enter")
        await wait_until(pilot, lambda: restore_job(app) is JobState.FAILED, "the failure")

        hint = text_of(app, "#restore-hint")
        assert "did not import the bundle ([/red] bad \\e[2J [link=x])" in hint
        await wait_until(
            pilot, lambda: any("[/red] bad" in toast for toast in toasts(app)), "the toast"
        )
