"""`roost backup` end to end: a real subprocess against the loopback runtime, the history it
leaves for the TUI, and the exit status that only a verified file earns."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from services.core.paths import RoostPaths
from services.jobs.record import JobState
from services.jobs.store import JobStore
from tests.peers.vellum import Artifact, VellumPeer, archive_reply
from tests.test_cli import roost


def lockfile_for(tmp_path: Path, name: str, url: str, cloud: str = "custom") -> dict[str, str]:
    entry = {"assistantId": name, "cloud": cloud, "runtimeUrl": url}
    (tmp_path / ".vellum.lock.json").write_text(json.dumps({"assistants": [entry]}))
    return {"VELLUM_LOCKFILE_DIR": str(tmp_path)}


def test_a_verified_backup_prints_its_path_size_and_sha256(
    vellum_peer: VellumPeer, tmp_path: Path
) -> None:
    runtime = vellum_peer.runtime("ada")
    runtime.migrations.artifact = Artifact(300_000)
    output = tmp_path / "ada.vbundle"

    result = roost(
        "backup", "ada", "--output", str(output), **lockfile_for(tmp_path, "ada", runtime.base_url)
    )

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == str(output)
    assert lines[1] == "size    300000 bytes (293.0 KiB)"
    digest = hashlib.sha256(output.read_bytes()).hexdigest()
    assert lines[2] == f"sha256  {digest} (verified)"
    assert digest == runtime.migrations.artifact.sha256
    assert "ada: exporting" in result.stderr  # plain progress lines: stderr is not a terminal
    [job] = JobStore.at(RoostPaths.resolve()).load()
    assert job.state is JobState.COMPLETE and job.result_path == output


def test_a_corrupt_archive_exits_1_and_leaves_nothing_at_the_destination(
    vellum_peer: VellumPeer, tmp_path: Path
) -> None:
    runtime = vellum_peer.runtime("bob")
    runtime.migrations.export_replies.append(archive_reply(Artifact(50_000, corrupt=True)))
    output = tmp_path / "bob.vbundle"

    result = roost(
        "backup", "--output", str(output), **lockfile_for(tmp_path, "bob", runtime.base_url)
    )

    assert result.returncode == 1
    assert not output.exists()
    assert Path(f"{output}.corrupt").exists()
    assert result.stderr.splitlines()[-1].startswith("roost: backup failed: ")


def test_an_unreachable_runtime_is_one_line(tmp_path: Path) -> None:
    result = roost("backup", "gone", **lockfile_for(tmp_path, "gone", "http://127.0.0.1:9"))

    assert result.returncode == 1
    last = result.stderr.splitlines()[-1]
    assert last == "roost: backup failed: the export failed: unreachable (Connection refused)"
    assert "Traceback" not in result.stderr


def test_an_existing_output_is_never_overwritten(tmp_path: Path) -> None:
    output = tmp_path / "keep.vbundle"
    output.write_text("precious")

    result = roost(
        "backup", "x", "--output", str(output), **lockfile_for(tmp_path, "x", "http://127.0.0.1:9")
    )

    assert result.returncode == 1
    assert "already exists" in result.stderr
    assert output.read_text() == "precious"
