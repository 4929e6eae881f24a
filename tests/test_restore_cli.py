"""`roost restore` end to end: a real subprocess against the loopback runtime, a backup roost
made and recorded first (`roost backup`), the history it leaves, and exit statuses that say
whether anything was imported."""

from __future__ import annotations

import hashlib
import os
import select
import time
from pathlib import Path

from ptyprocess import PtyProcess

from services.core.paths import RoostPaths
from services.core.state import StateDatabase
from services.jobs.library import BackupLibrary, backups_dir
from services.jobs.record import JobKind, JobState
from services.jobs.store import JobStore
from tests.peers.vellum import (
    Artifact,
    Received,
    Runtime,
    VellumPeer,
    import_reply,
    preflight_reply,
    problem,
)
from tests.test_backup_cli import lockfile_for
from tests.test_cli import ROOST, roost, screen_text

CURRENT = Artifact(40_000, seed="now")
"""What the assistant holds now: what a safety backup saves."""


def backed_up(runtime: Runtime, tmp_path: Path, env: dict[str, str]) -> Path:
    """A backup roost made (and recorded) of `runtime`, holding `Artifact(120_000)`."""
    runtime.migrations.artifact = Artifact(120_000, seed="then")
    output = tmp_path / "then.vbundle"
    made = roost("backup", runtime.name, "--output", str(output), **env)
    assert made.returncode == 0, made.stderr
    runtime.migrations.artifact = CURRENT
    return output


def received(path: Path) -> Received:
    data = path.read_bytes()
    return Received(len(data), hashlib.sha256(data).hexdigest(), True)


def test_a_restore_prints_its_steps_the_report_and_the_outcome(
    vellum_peer: VellumPeer, tmp_path: Path
) -> None:
    ada = vellum_peer.runtime("ada")
    env = lockfile_for(tmp_path, "ada", ada.base_url)
    bundle = backed_up(ada, tmp_path, env)

    result = roost("restore", "ada", "--from", str(bundle), "--yes", **env)

    assert result.returncode == 0, result.stderr
    assert ada.migrations.imports == [received(bundle)]
    steps = [line for line in result.stderr.splitlines() if line.startswith("ada: ")]
    assert steps[:3] == [
        "ada: 1/5 checking the file against roost's record",
        "ada: 2/5 preflight: the runtime checks the bundle",
        "ada: 3/5 safety backup of the current state",
    ]
    assert steps[-2:] == ["ada: 4/5 ready to import", "ada: 5/5 importing"]
    assert "ada (safety backup): exporting" in result.stderr
    history = JobStore.at(RoostPaths.resolve()).load()
    [restore] = [job for job in history if job.kind is JobKind.RESTORE]
    safety = restore.safety_backup
    assert restore.state is JobState.COMPLETE and safety is not None
    assert safety.read_bytes() == CURRENT.content()
    assert safety.parent == backups_dir(RoostPaths.resolve().data_dir)
    assert result.stdout.splitlines() == [
        f"Preflight: ada can import {bundle}",
        "  files     1 to create, 1 to overwrite, 1 unchanged (3 files)",
        f"Restored ada from {bundle}",
        "imported  1 created, 1 overwritten, 1 skipped (3 files, 1 kept by the runtime as backups)",
        f"undo      roost restore ada --from {safety}",
    ]
    library = BackupLibrary(StateDatabase.at(RoostPaths.resolve()), tmp_path)
    assert library.find(safety) is not None  # the safety backup is in the library too


def test_a_dry_run_shows_the_report_and_changes_nothing(
    vellum_peer: VellumPeer, tmp_path: Path
) -> None:
    ada = vellum_peer.runtime("ada")
    env = lockfile_for(tmp_path, "ada", ada.base_url)
    bundle = backed_up(ada, tmp_path, env)
    exports = len(vellum_peer.requests_to(ada.path + "/v1/migrations/export"))

    result = roost("restore", "ada", "--from", str(bundle), "--dry-run", **env)

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == (
        f"Dry run: ada can import {bundle}; nothing was imported."
    )
    assert ada.migrations.preflights == [received(bundle)]
    assert ada.migrations.imports == []
    assert len(vellum_peer.requests_to(ada.path + "/v1/migrations/export")) == exports


def test_a_tampered_file_is_refused_with_exit_1(vellum_peer: VellumPeer, tmp_path: Path) -> None:
    ada = vellum_peer.runtime("ada")
    env = lockfile_for(tmp_path, "ada", ada.base_url)
    bundle = backed_up(ada, tmp_path, env)
    data = bytearray(bundle.read_bytes())
    data[100] ^= 1
    bundle.write_bytes(bytes(data))

    result = roost("restore", "ada", "--from", str(bundle), "--yes", **env)

    assert result.returncode == 1
    last = result.stderr.splitlines()[-1]
    assert last.startswith(f"roost: restore of ada failed: verify: {bundle} is not a verified")
    assert "--force-unverified" in last
    assert vellum_peer.requests_to(ada.path + "/v1/migrations/import-preflight") == []


def test_a_file_roost_did_not_save_needs_force(vellum_peer: VellumPeer, tmp_path: Path) -> None:
    ada = vellum_peer.runtime("ada")
    env = lockfile_for(tmp_path, "ada", ada.base_url)
    stranger = tmp_path / "found.vbundle"
    stranger.write_bytes(Artifact(9_000, seed="found").content())

    refused = roost("restore", "ada", "--from", str(stranger), "--yes", **env)
    forced = roost("restore", "ada", "--from", str(stranger), "--yes", "--force-unverified", **env)

    assert refused.returncode == 1
    assert "roost did not save it" in refused.stderr
    assert forced.returncode == 0, forced.stderr
    assert ada.migrations.imports == [received(stranger)]
    assert "restored anyway (--force-unverified)" in forced.stdout


def test_without_a_terminal_it_needs_yes_and_does_nothing(
    vellum_peer: VellumPeer, tmp_path: Path
) -> None:
    ada = vellum_peer.runtime("ada")
    env = lockfile_for(tmp_path, "ada", ada.base_url)
    bundle = tmp_path / "x.vbundle"
    bundle.write_bytes(b"x")

    result = roost("restore", "ada", "--from", str(bundle), **env)

    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "roost: not at a terminal to confirm: add --yes to restore (nothing was done)"
    ]
    assert vellum_peer.requests == ()


def test_a_failed_preflight_lists_its_paths_and_exits_1(
    vellum_peer: VellumPeer, tmp_path: Path
) -> None:
    ada = vellum_peer.runtime("ada")
    env = lockfile_for(tmp_path, "ada", ada.base_url)
    bundle = backed_up(ada, tmp_path, env)
    ada.migrations.preflight_replies.append(
        preflight_reply(
            can_import=False,
            errors=[problem("bad manifest", "manifest.json")],
            conflicts=[problem("locked", "memory/db.sqlite")],
        )
    )

    result = roost("restore", "ada", "--from", str(bundle), "--yes", **env)

    assert result.returncode == 1
    assert f"Preflight: ada CANNOT import {bundle}" in result.stdout
    assert "  error     manifest.json: bad manifest" in result.stdout
    assert "  conflict  memory/db.sqlite: locked" in result.stdout
    assert ada.migrations.imports == []


def test_a_failed_import_exits_3_and_says_how_to_undo(
    vellum_peer: VellumPeer, tmp_path: Path
) -> None:
    ada = vellum_peer.runtime("ada")
    env = lockfile_for(tmp_path, "ada", ada.base_url)
    bundle = backed_up(ada, tmp_path, env)
    ada.migrations.import_replies.append(import_reply(success=False, reason="disk full"))

    result = roost("restore", "ada", "--from", str(bundle), "--yes", **env)

    assert result.returncode == 3
    lines = result.stderr.splitlines()
    assert lines[-2].startswith("roost: restore of ada failed: import: ada did not import")
    assert lines[-1].startswith("roost: to undo: roost restore ada --from ")


def confirm_in_a_terminal(answer: str, *args: str, env: dict[str, str]) -> tuple[str, int]:
    """Run `roost restore` in a PTY, type `answer` at its question: its output and status."""
    process = PtyProcess.spawn(
        [ROOST, "restore", *args], env={**os.environ, **env}, dimensions=(24, 200)
    )
    output, answered = b"", False
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            if not select.select([process.fd], [], [], 0.1)[0]:
                continue
            try:
                output += process.read(65536)
            except EOFError:
                break
            if not answered and "anything else to stop:" in screen_text(output):
                process.write(answer.encode() + b"\r")
                answered = True
        process.wait()
        return screen_text(output), process.exitstatus
    finally:
        if process.isalive():
            process.terminate(force=True)


def test_at_a_terminal_the_name_must_be_typed(vellum_peer: VellumPeer, tmp_path: Path) -> None:
    ada = vellum_peer.runtime("ada")
    env = lockfile_for(tmp_path, "ada", ada.base_url)
    bundle = backed_up(ada, tmp_path, env)

    declined, status = confirm_in_a_terminal("ad", "ada", "--from", str(bundle), env=env)

    assert status == 1
    assert "Type ada to import" in declined and "Not confirmed: nothing was imported" in declined
    assert ada.migrations.imports == []
    [restore] = [
        job for job in JobStore.at(RoostPaths.resolve()).load() if job.kind is JobKind.RESTORE
    ]
    assert restore.state is JobState.CANCELLED

    confirmed, status = confirm_in_a_terminal(
        "ada", "ada", "--from", str(bundle), "--no-safety-backup", env=env
    )

    assert status == 0, confirmed
    assert f"Restored ada from {bundle}" in confirmed
    assert ada.migrations.imports == [received(bundle)]
