"""`roost backups` end to end: real subprocesses over the state database and backups directory
that `roost backup` leaves (itself run against the loopback runtime), listing, `--verify` and its
exit status, `--json`, and retention after a backup with `[backups] keep`."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from services.core.paths import RoostPaths
from services.core.state import StateDatabase
from services.jobs.library import BackupLibrary, backups_dir
from services.jobs.record import JobState
from services.jobs.store import JobStore
from tests.peers.vellum import Artifact, VellumPeer
from tests.test_backup_cli import lockfile_for
from tests.test_cli import in_a_terminal, roost, screen_text
from tui.cli import BIG_FILE


def library() -> BackupLibrary:
    paths = RoostPaths.resolve()
    return BackupLibrary(StateDatabase.at(paths), backups_dir(paths.data_dir))


def saved(name: str, content: bytes, stem: str) -> Path:
    """A backup file recorded as the exporter records one."""
    folder = library().directory
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}-{stem}.vbundle"
    path.write_bytes(content)
    library().record(name, path, len(content), hashlib.sha256(content).hexdigest(), "job-1")
    return path


def test_backups_lists_what_roost_backup_saved_and_files_it_did_not(
    vellum_peer: VellumPeer, tmp_path: Path
) -> None:
    runtime = vellum_peer.runtime("ada")
    runtime.migrations.artifact = Artifact(20_000)
    env = lockfile_for(tmp_path, "ada", runtime.base_url)
    assert roost("backup", "ada", **env).returncode == 0
    [job] = JobStore.at(RoostPaths.resolve()).load()
    stray = library().directory / "ada-20200101-000000.vbundle"
    stray.write_bytes(b"copied here by hand")
    os.utime(stray, (1_577_836_800, 1_577_836_800))

    listing = roost("backups", **env)
    as_json = roost("backups", "ada", "--json", **env)

    assert listing.returncode == 0, listing.stderr
    header, first, second = listing.stdout.splitlines()
    assert header.split() == ["ASSISTANT", "CREATED", "SIZE", "AGE", "STATE", "PATH"]
    assert first.startswith("ada ") and first.endswith(f"verified    {job.result_path}")
    assert "19.5 KiB" in first
    assert second.endswith(f"unrecorded  {stray}")
    rows = json.loads(as_json.stdout)
    assert [(row["path"], row["state"]) for row in rows] == [
        (str(job.result_path), "verified"),
        (str(stray), "unrecorded"),
    ]
    assert rows[0]["sha256"] == runtime.migrations.artifact.sha256
    assert rows[0]["job_id"] == job.id and rows[0]["size"] == 20_000
    assert rows[1]["sha256"] is None and rows[1]["verified_at"] is None


def test_verify_reports_changed_and_vanished_files_and_exits_1() -> None:
    good = saved("ada", b"good bytes", "20260101-000000")
    tampered = saved("ada", b"same size!", "20260102-000000")
    gone = saved("bob", b"gone", "20260103-000000")
    tampered.write_bytes(b"SAME SIZE!")
    gone.unlink()

    result = roost("backups", "--verify")
    only_ada_good = roost("backups", "ada", "--verify", "--json")

    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0] == f"missing     {gone}: the file is gone (its record stays)"
    digest = hashlib.sha256(b"SAME SIZE!").hexdigest()
    assert lines[1].startswith(f"changed     {tampered}: sha256 {digest}, recorded ")
    assert lines[2] == f"verified    {good}"
    assert result.stderr.splitlines()[-1] == "1 changed, 1 missing, 1 verified"
    assert only_ada_good.returncode == 1  # the tampered one is ada's too
    states = {row["path"]: row["state"] for row in json.loads(only_ada_good.stdout)}
    assert states == {str(good): "verified", str(tampered): "changed"}


def test_verify_passes_when_every_file_matches_and_an_unrecorded_one_is_no_failure() -> None:
    good = saved("ada", b"good bytes", "20260101-000000")
    stray = good.with_name("old-copy.vbundle")
    stray.write_bytes(b"x")

    result = roost("backups", "--verify")

    assert result.returncode == 0, result.stdout
    assert f"unrecorded  {stray}: sha256 {hashlib.sha256(b'x').hexdigest()}" in result.stdout
    assert result.stderr.splitlines()[-1] == "1 unrecorded, 1 verified"


def test_no_backups_says_so() -> None:
    result = roost("backups", "nobody")

    assert (result.returncode, result.stdout) == (0, "")
    assert result.stderr == "no backups of nobody yet\n"


def test_retention_after_a_backup_says_what_it_deleted(
    vellum_peer: VellumPeer, tmp_path: Path
) -> None:
    runtime = vellum_peer.runtime("ada")
    env = lockfile_for(tmp_path, "ada", runtime.base_url)
    old = [saved("ada", b"old %d" % n, f"2026010{n}-000000") for n in (1, 2)]
    config = tmp_path / "roost-config" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text("[backups]\nkeep = 2\n")

    result = roost("backup", "ada", **env)

    assert result.returncode == 0, result.stderr
    assert f"roost: retention ([backups] keep) deleted {old[0]}\n" in result.stderr
    assert not old[0].exists() and old[1].exists()
    [job] = JobStore.at(RoostPaths.resolve()).load()
    assert job.state is JobState.COMPLETE and job.pruned == (old[0],)  # recorded


def test_a_bad_keep_is_one_line_naming_the_file_and_key(tmp_path: Path) -> None:
    config = tmp_path / "roost-config" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text("[backups]\nkeep = -3\n")

    result = roost("backups")

    assert result.returncode == 1
    assert result.stderr == (
        f"roost: {config}: backups.keep: must be between 1 and 100000, not -3\n"
    )


def test_verify_draws_progress_for_a_big_file_on_a_terminal() -> None:
    path = saved("ada", b"", "20260101-000000")
    size = 3 * BIG_FILE // 2
    with path.open("wb") as file:
        file.truncate(size)  # sparse: zeros to hash, none on disk
    library().record("ada", path, size, hashlib.sha256(bytes(size)).hexdigest(), None)

    output, status = in_a_terminal("backups", "--verify")

    assert status == 0, output
    assert "verifying ada: " in output and "of 48.0 MiB" in output
    assert screen_text(output.encode()).rstrip().endswith("1 verified")


def test_a_hostile_file_name_is_shown_escaped() -> None:
    folder = library().directory
    folder.mkdir(parents=True)
    hostile = folder / "ada\x1b[2J\x07-20260101-000000.vbundle"
    hostile.write_bytes(b"x")
    os.utime(hostile, (1_780_000_000, 1_780_000_000))  # mid-2026, whatever the time zone

    listing = roost("backups")
    checked = roost("backups", "--verify")

    for result in (listing, checked):
        assert "\x1b" not in result.stdout + result.stderr
        assert "\x07" not in result.stdout + result.stderr
    header, row = listing.stdout.splitlines()
    assert row.startswith("ada\\e[2J\\x07  2026-")  # the columns stay aligned
    assert row.endswith("unrecorded  " + str(folder / "ada\\e[2J\\x07-20260101-000000.vbundle"))
    assert header.index("CREATED") == row.index("2026-")
    assert "unrecorded" in checked.stdout and checked.returncode == 0
