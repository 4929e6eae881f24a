"""Verified downloads against the loopback peer's bucket: whole and checked, or nothing at all."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from services.core.http import TransferLimits
from services.jobs.downloads import (
    HANDOFF_BYTES,
    DownloadError,
    DownloadMismatch,
    Expected,
    Phase,
    Progress,
    save_verified,
)
from tests.peers.vellum import Artifact, Reply, VellumPeer, archive_reply

SIZE = 3 * HANDOFF_BYTES + 12345
"""More than a few hand-offs to the writer thread, and a ragged end."""


class SteppingClock:
    """Each reading is one second after the last: every chance to report progress is taken."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


@contextlib.asynccontextmanager
async def opened(url: str, read_timeout: float = 10.0) -> AsyncIterator[httpx.Response]:
    async with (
        httpx.AsyncClient(timeout=httpx.Timeout(read_timeout)) as http,
        http.stream("GET", url) as response,
    ):
        assert response.status_code == 200
        yield response


async def download(
    peer: VellumPeer,
    dest: Path,
    expected: Expected,
    *,
    reply: Reply | None = None,
    artifact: Artifact | None = None,
    read_timeout: float = 10.0,
    limits: TransferLimits | None = None,
) -> list[Progress]:
    """Serve `reply` (or `artifact`) from the peer's bucket and save it to `dest`."""
    runtime = peer.runtimes.get("alpha") or peer.runtime("alpha")
    if artifact is not None:
        runtime.migrations.artifact = artifact
    if reply is not None:
        runtime.migrations.download_replies.append(reply)
    reports: list[Progress] = []
    async with opened(f"{peer.url}/gcs/alpha/bundle-1?sig=secret", read_timeout) as response:
        progress = save_verified(response, dest, expected, limits=limits, clock=SteppingClock())
        async with contextlib.aclosing(progress):
            async for report in progress:
                reports.append(report)
    return reports


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Where downloads go (tmp_path also holds the isolated home)."""
    return tmp_path / "backups"


def write(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)


def read(path: Path) -> bytes:
    return path.read_bytes()


def leftovers(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir()) if folder.exists() else []


async def test_a_whole_download_is_verified_saved_private_and_reported(
    vellum_peer: VellumPeer, folder: Path
) -> None:
    artifact = Artifact(SIZE)
    dest = folder / "alpha.vbundle"  # the folder does not exist yet

    reports = await download(vellum_peer, dest, Expected(SIZE, artifact.sha256), artifact=artifact)

    assert read(dest) == artifact.content()
    assert stat.S_IMODE(dest.stat().st_mode) == 0o600
    assert leftovers(dest.parent) == ["alpha.vbundle"]
    phases = [report.phase for report in reports]
    assert phases[0] is Phase.RECEIVING and reports[0].done == 0
    assert phases[-2:] == [Phase.VERIFYING, Phase.SAVED]
    assert phases.count(Phase.RECEIVING) >= 3  # progress while the bytes arrive
    done = [report.done for report in reports]
    assert done == sorted(done) and done[-1] == SIZE
    assert {report.total for report in reports} == {SIZE}
    saved = reports[-1].saved
    assert saved is not None
    assert (saved.path, saved.size, saved.sha256, saved.verified) == (
        dest,
        SIZE,
        artifact.sha256,
        True,
    )


async def test_without_a_promised_checksum_the_file_is_saved_but_not_verified(
    vellum_peer: VellumPeer, folder: Path
) -> None:
    artifact = Artifact(1000)
    dest = folder / "alpha.vbundle"

    reports = await download(vellum_peer, dest, Expected(), artifact=artifact)

    saved = reports[-1].saved
    assert saved is not None and not saved.verified
    assert saved.sha256 == hashlib.sha256(artifact.content()).hexdigest()
    assert reports[0].total == 1000  # from Content-Length


async def test_a_checksum_mismatch_keeps_the_bytes_aside_and_nothing_at_dest(
    vellum_peer: VellumPeer, folder: Path
) -> None:
    damaged = Artifact(SIZE, corrupt=True)
    dest = folder / "alpha.vbundle"

    with pytest.raises(DownloadMismatch) as raised:
        await download(vellum_peer, dest, Expected(SIZE, damaged.sha256), artifact=damaged)

    corrupt = folder / "alpha.vbundle.corrupt"
    assert raised.value.corrupt_path == corrupt
    assert f"expected {damaged.sha256}" in str(raised.value)
    assert str(corrupt) in str(raised.value)
    assert read(corrupt) == damaged.content()
    assert leftovers(folder) == ["alpha.vbundle.corrupt"]


async def test_a_size_other_than_promised_is_a_mismatch(
    vellum_peer: VellumPeer, folder: Path
) -> None:
    artifact = Artifact(5000)
    dest = folder / "alpha.vbundle"

    with pytest.raises(DownloadMismatch, match="size 5000 bytes, expected 6000"):
        await download(vellum_peer, dest, Expected(6000, artifact.sha256), artifact=artifact)

    assert leftovers(folder) == ["alpha.vbundle.corrupt"]


async def test_a_body_cut_short_leaves_nothing_behind(
    vellum_peer: VellumPeer, folder: Path
) -> None:
    artifact = Artifact(SIZE)
    dest = folder / "alpha.vbundle"

    with pytest.raises(DownloadError, match=f"cut short after {HANDOFF_BYTES + 10} of {SIZE}"):
        await download(
            vellum_peer,
            dest,
            Expected(sha256=artifact.sha256),
            reply=archive_reply(artifact, cut_at=HANDOFF_BYTES + 10),
        )

    assert leftovers(folder) == []


async def test_a_sender_that_stalls_mid_body_ends_with_a_read_timeout(
    vellum_peer: VellumPeer, folder: Path
) -> None:
    artifact = Artifact(SIZE)
    dest = folder / "alpha.vbundle"

    with pytest.raises(DownloadError, match=r"stalled: no data for 0\.3 s after 1000 bytes"):
        await download(
            vellum_peer,
            dest,
            Expected(),
            reply=archive_reply(artifact, cut_at=1000, cut="stall"),
            read_timeout=0.3,
        )

    assert leftovers(folder) == []


async def test_a_sender_that_trickles_trips_the_stall_detector(
    vellum_peer: VellumPeer, folder: Path
) -> None:
    # A byte every 20 ms never trips a read timeout; 64 bytes per 0.3 s is the floor here.
    trickle = Reply(body=b"x" * 1000, content_type="application/octet-stream", trickle=0.02)
    limits = TransferLimits(stall_seconds=0.3, stall_bytes=64)

    with pytest.raises(DownloadError, match=r"the download stalled: less than 64 bytes in 0\.3 s"):
        await download(
            vellum_peer, folder / "alpha.vbundle", Expected(), reply=trickle, limits=limits
        )

    assert leftovers(folder) == []


async def test_a_transfer_still_going_at_its_deadline_ends(
    vellum_peer: VellumPeer, folder: Path
) -> None:
    trickle = Reply(body=b"x" * 1000, content_type="application/octet-stream", trickle=0.02)
    limits = TransferLimits(stall_seconds=10, stall_bytes=1, deadline=0.3)

    with pytest.raises(DownloadError, match=r"the download was still going after 0\.3 s"):
        await download(
            vellum_peer, folder / "alpha.vbundle", Expected(), reply=trickle, limits=limits
        )

    assert leftovers(folder) == []


async def test_an_existing_file_is_never_overwritten(vellum_peer: VellumPeer, folder: Path) -> None:
    dest = folder / "alpha.vbundle"
    write(dest, b"precious")

    with pytest.raises(DownloadError, match="already exists"):
        await download(vellum_peer, dest, Expected(), artifact=Artifact(100))

    assert read(dest) == b"precious"
    assert leftovers(folder) == ["alpha.vbundle"]


async def test_abandoning_a_download_midway_removes_the_partial_file(
    vellum_peer: VellumPeer, folder: Path
) -> None:
    vellum_peer.runtime("alpha").migrations.artifact = Artifact(SIZE)
    dest = folder / "alpha.vbundle"

    async with opened(f"{vellum_peer.url}/gcs/alpha/bundle-1") as response:
        progress = save_verified(response, dest, Expected(), clock=SteppingClock())
        async with contextlib.aclosing(progress):
            async for report in progress:
                if report.done > 0:
                    assert leftovers(folder) == ["alpha.vbundle.part"]
                    break

    assert leftovers(folder) == []


DISK_FULL_CHILD = """
import asyncio, json, resource, signal, sys
from pathlib import Path
import httpx
from services.jobs.downloads import DownloadError, Expected, save_verified

url, dest, limit = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

async def main() -> str:
    async with httpx.AsyncClient() as http, http.stream("GET", url) as response:
        try:
            async for _ in save_verified(response, dest, Expected()):
                pass
        except DownloadError as error:
            return str(error)
    return "saved"

print(json.dumps(asyncio.run(main())))
"""


def test_a_full_disk_ends_the_download_and_leaves_nothing_behind(
    vellum_peer: VellumPeer, folder: Path
) -> None:
    # The file size limit is the disk filling up, as far as the writer can tell (EFBIG); the
    # child process holds it so this test's own files are not limited.
    vellum_peer.runtime("alpha").migrations.artifact = Artifact(SIZE)
    dest = folder / "alpha.vbundle"
    root = Path(__file__).resolve().parent.parent

    child = subprocess.run(
        [
            sys.executable,
            "-c",
            DISK_FULL_CHILD,
            f"{vellum_peer.url}/gcs/alpha/b",
            str(dest),
            str(HANDOFF_BYTES + 1),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        check=False,
    )

    assert child.returncode == 0, child.stderr
    message = json.loads(child.stdout)
    assert message.startswith(f"no room to save the download in {folder}"), message
    assert leftovers(folder) == []
