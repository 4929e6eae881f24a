"""`roost jobs` and the history that `roost backup` processes leave, including one killed with
SIGKILL in the middle of its download (real processes against the loopback runtime)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from services.core.paths import RoostPaths
from services.jobs.record import JobState
from services.jobs.store import JobStore
from tests.peers.vellum import Artifact, VellumPeer, archive_reply
from tests.test_backup_cli import lockfile_for
from tests.test_cli import ROOST, roost
from tests.test_jobs import a_job
from tests.test_state import end_process, record_in_process


def wait_for(condition: Callable[[], bool], what: str, within: float = 30) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def test_no_history_yet() -> None:
    listed, as_json = roost("jobs"), roost("jobs", "--json")

    assert (listed.returncode, listed.stdout, listed.stderr) == (0, "", "no jobs yet\n")
    assert (as_json.returncode, json.loads(as_json.stdout)) == (0, [])
    assert not RoostPaths.resolve().state_dir.exists()  # listing created nothing


def test_jobs_lists_the_history_newest_first_and_an_interrupted_export_as_such(
    vellum_peer: VellumPeer, tmp_path: Path
) -> None:
    runtime = vellum_peer.runtime("ada")
    runtime.migrations.artifact = Artifact(3000)
    output = tmp_path / "ada.vbundle"
    environ = lockfile_for(tmp_path, "ada", runtime.base_url)
    assert roost("backup", "ada", "--output", str(output), **environ).returncode == 0
    interrupted = a_job(9, JobState.PROCESSING, runtime_job_id="export-3", assistant_name="mia")
    end_process(record_in_process(interrupted))

    listed = roost("jobs")
    as_json = json.loads(roost("jobs", "--json").stdout)

    assert listed.returncode == 0, listed.stderr
    header, first, second = listed.stdout.splitlines()
    [backup] = JobStore.at(RoostPaths.resolve()).load()[:1]
    assert header.split() == ["ID", "ASSISTANT", "KIND", "STATE", "STARTED", "RESULT"]
    assert first.split()[:4] == [backup.id, "ada", "backup", "complete"]
    assert first.endswith(f"{output} (2.9 KiB)")
    assert second.split()[:4] == ["job-9", "mia", "backup", "interrupted"]
    assert second.endswith("its roost process ended: the console resumes it when it next starts")
    assert [row["id"] for row in as_json] == [backup.id, "job-9"]
    assert as_json[0]["state"] == "complete" and as_json[0]["interrupted"] is False
    assert as_json[0]["result_path"] == str(output) and as_json[0]["verified"] is True
    assert as_json[1]["state"] == "interrupted" and as_json[1]["interrupted"] is True
    assert as_json[1] == {
        **interrupted.to_json(),
        "state": "interrupted",
        "interrupted": True,
    }


def test_a_backup_killed_mid_download_shows_as_failed_and_leaves_no_part_file(
    vellum_peer: VellumPeer, tmp_path: Path
) -> None:
    runtime = vellum_peer.runtime("bob")
    artifact = Artifact(8 << 20)  # the export sends a little of it, then nothing more
    runtime.migrations.export_replies.append(archive_reply(artifact, cut_at=1000, cut="stall"))
    output = tmp_path / "bob.vbundle"
    part = tmp_path / "bob.vbundle.part"
    backup = subprocess.Popen(
        [ROOST, "backup", "bob", "--output", str(output)],
        env={**os.environ, **lockfile_for(tmp_path, "bob", runtime.base_url)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def downloading() -> bool:
            jobs = JobStore.at(RoostPaths.resolve()).load()
            return bool(jobs) and jobs[0].state is JobState.DOWNLOADING and part.exists()

        wait_for(downloading, "the download to start")
    finally:
        backup.send_signal(signal.SIGKILL)
        backup.wait(timeout=30)
    assert part.exists()  # what a killed roost leaves behind

    listed = roost("jobs", "--json")

    assert listed.returncode == 0, listed.stderr
    [job] = json.loads(listed.stdout)
    assert job["state"] == "failed" and job["interrupted"] is False
    assert job["error"] == (
        f"interrupted: the roost process running it (pid {backup.pid}) stopped before this"
        " backup finished; start a new one"
    )
    assert not part.exists() and not output.exists()
