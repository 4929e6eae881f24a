"""The backups screen (B on an assistant's row): its list, checking files again with `v` and
`V`, the path with `o`, deleting with `d` (asked first), and retention after `b` reported in the
events panel. The real app, the real state database, the loopback runtime."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from textual.binding import Binding
from textual.pilot import Pilot
from textual.theme import BUILTIN_THEMES
from textual.worker import WorkerState

from services.core.paths import RoostPaths
from services.core.state import StateDatabase
from services.jobs.library import HASH_CHUNK_BYTES, BackupLibrary, Hashing, backups_dir
from services.jobs.record import JobState
from tests.peers.vellum import Artifact, VellumPeer
from tests.pilot import SIZE, make_app, table_names, wait_until
from tests.test_app_jobs import finished, lockfile, select
from tui.app import RoostApp
from tui.present import bucket_styles
from tui.screens.backups import BackupsScreen, backup_row
from tui.screens.confirm import ConfirmScreen
from tui.screens.help import HelpScreen
from widgets.keyed_table import KeyedTable


def library() -> BackupLibrary:
    paths = RoostPaths.resolve()
    return BackupLibrary(StateDatabase.at(paths), backups_dir(paths.data_dir))


def saved(name: str, content: bytes, stem: str) -> Path:
    folder = library().directory
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}-{stem}.vbundle"
    path.write_bytes(content)
    library().record(name, path, len(content), hashlib.sha256(content).hexdigest(), None)
    return path


def screen(app: RoostApp) -> BackupsScreen:
    assert isinstance(app.screen, BackupsScreen), app.screen
    return app.screen


def shown(app: RoostApp) -> list[list[str]]:
    table = app.screen.query_one("#backups", KeyedTable)
    return [[cell.plain for cell in row.cells] for row in table.rows_shown]


def states(app: RoostApp) -> dict[str, str]:
    """Each row's file name and state as shown."""
    return {row[4]: row[3] for row in shown(app)}


def event(app: RoostApp, text: str) -> bool:
    """Whether the events panel (shown) has a line ending in `text`."""
    return any(line.text.endswith(text) for line in app.main_screen.events_log.lines)


async def open_backups(pilot: Pilot[None], app: RoostApp, name: str) -> None:
    """Select `name`'s row, press B, and wait for its backups."""
    await wait_until(pilot, lambda: name in table_names(app), f"{name}'s row")
    select(app, name)
    await pilot.press("B")
    await wait_until(pilot, lambda: isinstance(app.screen, BackupsScreen), "the backups screen")
    await wait_until(pilot, lambda: bool(screen(app).entries), "the backups listed")


async def test_b_then_B_lists_the_backups_with_retention_in_the_events(
    vellum_peer: VellumPeer, isolated_env: Path, tmp_path: Path
) -> None:
    runtime = vellum_peer.runtime("ada")
    runtime.migrations.artifact = Artifact(100_000)
    lockfile(isolated_env, "ada", runtime.base_url)
    oldest, older = saved("ada", b"one", "20260101-000000"), saved("ada", b"two", "20260102-000000")
    stray = oldest.with_name("ada-20170714-023000.vbundle")  # copied in by hand
    stray.write_bytes(b"by hand")
    os.utime(stray, (1_500_000_000, 1_500_000_000))
    config = tmp_path / "roost-config" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text("[backups]\nkeep = 2\n")
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: "ada" in table_names(app), "ada's row")
        select(app, "ada")
        await pilot.press("b")
        await wait_until(pilot, lambda: finished(app), "the backup")
        [job] = app.main_screen.jobs
        assert job.state is JobState.COMPLETE and job.pruned == (oldest,)
        assert job.result_path is not None
        await pilot.press("e")
        await wait_until(pilot, lambda: event(app, f"ada: retention deleted {oldest}"), "event")

        await open_backups(pilot, app, "ada")

        assert screen(app).assistant == "ada"
        assert [row[4] for row in shown(app)] == [job.result_path.name, older.name, stray.name]
        assert [row[3] for row in shown(app)] == ["verified", "verified", "unrecorded"]
        assert shown(app)[0][1] == "97.7 KiB"
        entry = screen(app).selected_entry
        assert entry is not None and entry.path == job.result_path
        await pilot.press("question_mark")
        help_screen = app.screen
        assert isinstance(help_screen, HelpScreen)
        listed = {command.binding_id for command in help_screen.commands}
        ids = {b.id for b in BackupsScreen.BINDINGS if isinstance(b, Binding)}
        assert ids and ids <= listed
        await pilot.press("escape", "escape")
        assert app.screen is app.main_screen


async def test_v_finds_a_tampered_file_and_V_checks_them_all(
    vellum_peer: VellumPeer, isolated_env: Path
) -> None:
    runtime = vellum_peer.runtime("ada")
    lockfile(isolated_env, "ada", runtime.base_url)
    good = saved("ada", b"good", "20260101-000000")
    bad = saved("ada", b"same", "20260102-000000")
    bad.write_bytes(b"SAME")
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await open_backups(pilot, app, "ada")
        assert states(app)[bad.name] == "verified"  # same size: only hashing can tell

        await pilot.press("v")  # the newest, under the cursor
        await wait_until(pilot, lambda: states(app)[bad.name] == "changed", "the check")
        assert library().find(bad).verified_at is None  # type: ignore[union-attr]

        good.unlink()
        await pilot.press("V")
        await wait_until(pilot, lambda: states(app)[good.name] == "missing", "every check")
        status = app.screen.query_one("#backups-status")
        assert "1 changed, 1 missing" in str(status.render())


async def test_o_copies_the_path_and_d_deletes_only_when_confirmed(
    vellum_peer: VellumPeer, isolated_env: Path
) -> None:
    runtime = vellum_peer.runtime("ada")
    lockfile(isolated_env, "ada", runtime.base_url)
    kept = saved("ada", b"kept", "20260101-000000")
    doomed = saved("ada", b"doomed", "20260102-000000")
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await open_backups(pilot, app, "ada")

        await pilot.press("o")
        assert app.clipboard == str(doomed)

        await pilot.press("d")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        assert doomed.exists() and isinstance(app.screen, BackupsScreen)

        await pilot.press("d")
        await pilot.press("y")
        await wait_until(pilot, lambda: [r[4] for r in shown(app)] == [kept.name], "the delete")
        assert not doomed.exists() and library().find(doomed) is None
        await pilot.press("escape", "e")
        await wait_until(pilot, lambda: event(app, f"ada: backup deleted: {doomed}"), "event")


async def test_an_assistant_without_backups_says_how_to_make_one(
    vellum_peer: VellumPeer, isolated_env: Path
) -> None:
    runtime = vellum_peer.runtime("ada")
    lockfile(isolated_env, "ada", runtime.base_url)
    saved("bob", b"not ada's", "20260101-000000")
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: "ada" in table_names(app), "ada's row")
        select(app, "ada")
        await pilot.press("B")
        await wait_until(pilot, lambda: isinstance(app.screen, BackupsScreen), "the screen")
        empty = app.screen.query_one("#backups-empty")
        await wait_until(pilot, lambda: "No backups of ada" in str(empty.render()), "the note")
        assert shown(app) == [] and screen(app).selected_entry is None
        await pilot.press("v", "d")  # nothing under the cursor: nothing happens
        assert isinstance(app.screen, BackupsScreen)


async def test_B_on_a_row_roost_cannot_back_up_says_why_and_opens_nothing(
    isolated_env: Path,
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: "this machine" in table_names(app), "this machine")
        select(app, "this machine")
        await pilot.press("B")
        said = "this machine is not in the Vellum lockfile: roost backs up Vellum assistants"
        await wait_until(
            pilot, lambda: any(n.message == said for n in app._notifications), "the refusal"
        )
        assert not isinstance(app.screen, BackupsScreen)


def test_a_file_outside_the_backups_directory_shows_its_whole_path(tmp_path: Path) -> None:
    inside = saved("ada", b"in", "20260101-000000")
    outside = tmp_path / "elsewhere" / "ada.vbundle"
    outside.parent.mkdir()
    outside.write_bytes(b"out")
    library().record("ada", outside, 3, hashlib.sha256(b"out").hexdigest(), None)
    styles = bucket_styles(BUILTIN_THEMES["textual-dark"])

    rows = {
        entry.path: backup_row(entry, inside.parent, datetime.now(UTC), styles).cells[4].plain
        for entry in library().entries("ada")
    }

    assert rows == {inside: inside.name, outside: str(outside)}


async def test_leaving_while_a_check_runs_lets_it_finish_quietly(
    vellum_peer: VellumPeer, isolated_env: Path
) -> None:
    runtime = vellum_peer.runtime("ada")
    lockfile(isolated_env, "ada", runtime.base_url)
    bundle = saved("ada", b"x" * (3 * HASH_CHUNK_BYTES), "20260101-000000")
    library().database.set_backup_verified(bundle, None)
    app = make_app()
    hashing, leave = threading.Event(), threading.Event()
    real = app.roost.verify_backup

    def held(path: Path) -> Iterator[Hashing]:
        """The real check, held after its first chunk until the screen is gone."""
        for report in real(path):
            yield report
            if report.done:
                hashing.set()
                assert leave.wait(10)

    app.roost.verify_backup = held  # type: ignore[method-assign]
    async with app.run_test(size=SIZE) as pilot:
        await open_backups(pilot, app, "ada")
        await pilot.press("v")
        await wait_until(pilot, hashing.is_set, "the check under way")
        checks = [w for w in app.workers if w.group == "backup-checks"]
        await pilot.press("escape")
        assert app.screen is app.main_screen
        leave.set()
        await wait_until(pilot, lambda: all(w.is_finished for w in checks), "the check")
        await pilot.pause()
        reads = [w for w in app.workers if w.group == "backups"]
        await wait_until(pilot, lambda: all(w.is_finished for w in reads), "the reading")

        assert checks and [w.state for w in checks + reads] == [WorkerState.SUCCESS] * len(
            checks + reads
        )
        record = library().find(bundle)
        assert record is not None and record.verified_at is not None
