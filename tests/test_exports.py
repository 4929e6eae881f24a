"""Backups of every kind against the loopback Vellum peer (docs/protocol.md §4).

Polls never wait: the exporter's clock and sleep are a `NoWait` whose time passes only when the
exporter sleeps, so a 2 s poll interval costs nothing and its length can be asserted.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import httpx
import pytest

from services.core.http import http_client
from services.core.paths import RoostPaths
from services.core.processes import ProcessIdentity
from services.core.state import StateDatabase
from services.health.target import HealthTarget
from services.jobs.downloads import HANDOFF_BYTES
from services.jobs.exports import MANIFEST_HEADER, Exporter, backup_destination
from services.jobs.record import Job, JobRoute, JobState
from services.jobs.runtime import (
    Timeouts,
    in_progress_job_id,
    migrations_url,
    signed_url_endpoint,
)
from services.jobs.store import JobStore
from services.vellum.auth import BearerAuth, PlatformAuth, RuntimeEndpoint
from services.vellum.environment import VellumEnvironment
from services.vellum.platform import PlatformClient
from services.vellum.tokens import PlatformToken
from tests.peers.vellum import (
    EXPIRED,
    UNAUTHORIZED,
    Artifact,
    Reply,
    Runtime,
    VellumPeer,
    archive_reply,
    in_progress_reply,
    json_reply,
    refused_url,
)

GUARDIAN = "guardian-secret-1"
API_KEY = "vak_platform-secret-2"
SIZE = 2 * HANDOFF_BYTES + 777
T0 = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)
Form = Literal["nested", "flat", "message"]
FORMS: tuple[Form, ...] = ("nested", "flat", "message")


class NoWait:
    """The exporter's clock and sleep: time passes only by sleeping; `on_sleep` may act then."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []
        self.on_sleep: Callable[[], None] = lambda: None

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        self.on_sleep()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with http_client() as client:
        yield client


@pytest.fixture
def time_() -> NoWait:
    return NoWait()


@pytest.fixture
def exporter(http: httpx.AsyncClient, time_: NoWait) -> Exporter:
    return make_exporter(http, time_)


QUICK = Timeouts(request=5.0, export=5.0)


def make_exporter(http: httpx.AsyncClient, time_: NoWait, timeouts: Timeouts = QUICK) -> Exporter:
    return Exporter(
        http,
        timeouts=timeouts,
        clock=time_.clock,
        sleep=time_.sleep,
        rand=lambda: 0.5,  # no jitter: intervals are exactly 2 s
    )


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    return tmp_path / "backups" / "alpha.vbundle"


def direct(runtime: Runtime, tokens: list[str] | None = None) -> RuntimeEndpoint:
    """A local/docker/custom target whose token reads give `tokens` in turn (the last repeats)."""
    reads = list(tokens or [GUARDIAN])

    def read() -> str:
        return reads.pop(0) if len(reads) > 1 else reads[0]

    return RuntimeEndpoint("alpha-id", "alpha", runtime.base_url, False, BearerAuth(read))


class Platform:
    """Connects a platform client per (re)connection, with the key the test holds now."""

    def __init__(self, http: httpx.AsyncClient, peer: VellumPeer, key: str | None) -> None:
        self.http, self.peer, self.key = http, peer, key
        self.connections = 0

    def __call__(self) -> PlatformClient | None:
        self.connections += 1
        if self.key is None:
            return None
        return PlatformClient(self.http, self.peer.url, PlatformToken(self.key, Path("/t")))


def managed(runtime: Runtime, platform: Platform) -> RuntimeEndpoint:
    return RuntimeEndpoint("mia-id", "mia", runtime.base_url, True, PlatformAuth(platform))


async def run(jobs: AsyncGenerator[Job, None]) -> list[Job]:
    async with contextlib.aclosing(jobs):
        return [job async for job in jobs]


def states(jobs: list[Job]) -> list[JobState]:
    """The states in order, each run of one state counted once."""
    seen: list[JobState] = []
    for job in jobs:
        if not seen or seen[-1] is not job.state:
            seen.append(job.state)
    return seen


def read(path: Path) -> bytes:
    return path.read_bytes()


def files(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir()) if folder.exists() else []


def assert_no_secret(jobs: list[Job]) -> None:
    text = json.dumps([job.to_json() for job in jobs])
    for secret in (GUARDIAN, API_KEY, "X-Goog-Signature", "stale-token"):
        assert secret not in text


# The synchronous route (local, docker, custom) -------------------------------------------


async def test_a_sync_export_is_streamed_verified_and_saved(
    vellum_peer: VellumPeer, exporter: Exporter, dest: Path
) -> None:
    alpha = vellum_peer.runtime("alpha", bearer=GUARDIAN)
    alpha.migrations.artifact = artifact = Artifact(SIZE)

    jobs = await run(exporter.backup(direct(alpha), dest))

    assert states(jobs) == [
        JobState.STARTING,
        JobState.EXPORTING,
        JobState.DOWNLOADING,
        JobState.VERIFYING,
        JobState.COMPLETE,
    ]
    final = jobs[-1]
    assert (final.result_path, final.size, final.sha256, final.verified) == (
        dest,
        SIZE,
        artifact.sha256,
        True,
    )
    assert (final.bytes_done, final.bytes_total, final.error, final.note) == (
        SIZE,
        SIZE,
        None,
        None,
    )
    assert final.route is JobRoute.SYNC and final.finished_at is not None
    assert {job.id for job in jobs} == {final.id}
    assert read(dest) == artifact.content()
    assert files(dest.parent) == ["alpha.vbundle"]
    [request] = vellum_peer.requests
    assert (request.method, request.path) == ("POST", f"{alpha.path}/v1/migrations/export")
    assert request.headers["authorization"] == f"Bearer {GUARDIAN}"
    assert json.loads(request.body) == {"description": "roost backup"}
    assert_no_secret(jobs)


async def test_the_guardian_token_file_is_what_a_direct_target_sends(
    vellum_peer: VellumPeer, exporter: Exporter, dest: Path
) -> None:
    alpha = vellum_peer.runtime("alpha", bearer=GUARDIAN)
    environment = VellumEnvironment.resolve()
    token_file = environment.config_dir / "assistants" / "alpha-id" / "guardian-token.json"
    token_file.parent.mkdir(parents=True)
    token_file.write_text(json.dumps({"accessToken": GUARDIAN}), encoding="utf-8")
    health = HealthTarget("alpha", "alpha-id", alpha.base_url, managed=False)

    target = RuntimeEndpoint.of(health, "alpha", environment, lambda: None)
    final = (await run(exporter.backup(target, dest)))[-1]

    assert final.state is JobState.COMPLETE
    assert vellum_peer.requests[0].headers["authorization"] == f"Bearer {GUARDIAN}"


async def test_without_a_checksum_header_the_backup_completes_unverified(
    vellum_peer: VellumPeer, exporter: Exporter, dest: Path
) -> None:
    alpha = vellum_peer.runtime("alpha")
    alpha.migrations.export_replies.append(archive_reply(alpha.migrations.artifact, checksum=False))

    final = (await run(exporter.backup(direct(alpha), dest)))[-1]

    assert (final.state, final.verified) == (JobState.COMPLETE, False)
    assert final.note == "not verified: no checksum was sent"
    assert final.sha256 == alpha.migrations.artifact.sha256  # computed all the same


async def test_a_401_reads_the_token_again_and_retries_once(
    vellum_peer: VellumPeer, exporter: Exporter, dest: Path
) -> None:
    # The Vellum CLI renewed the token file since roost read it.
    alpha = vellum_peer.runtime("alpha", bearer=GUARDIAN)

    jobs = await run(exporter.backup(direct(alpha, ["stale-token", GUARDIAN]), dest))

    assert jobs[-1].state is JobState.COMPLETE
    sent = [request.headers["authorization"] for request in vellum_peer.requests]
    assert sent == ["Bearer stale-token", f"Bearer {GUARDIAN}"]
    assert_no_secret(jobs)


async def test_a_401_once_is_retried_with_the_token_read_again(
    vellum_peer: VellumPeer, exporter: Exporter, dest: Path
) -> None:
    alpha = vellum_peer.runtime("alpha", bearer=GUARDIAN)
    alpha.migrations.export_replies.append(UNAUTHORIZED)

    assert (await run(exporter.backup(direct(alpha), dest)))[-1].state is JobState.COMPLETE
    assert len(vellum_peer.requests) == 2


async def test_a_second_401_ends_the_backup_saying_what_to_do(
    vellum_peer: VellumPeer, exporter: Exporter, dest: Path
) -> None:
    alpha = vellum_peer.runtime("alpha", bearer=GUARDIAN)

    final = (await run(exporter.backup(direct(alpha, ["stale-token"]), dest)))[-1]

    assert final.state is JobState.FAILED
    assert final.error is not None and "refused (401)" in final.error
    assert "vellum gateway token refresh" in final.error  # the command that renews it
    assert "guardian token" in final.error
    assert len(vellum_peer.requests) == 2
    assert files(dest.parent) == []


async def test_a_runtime_error_ends_the_backup_with_its_detail(
    vellum_peer: VellumPeer, exporter: Exporter, dest: Path
) -> None:
    alpha = vellum_peer.runtime("alpha")
    alpha.migrations.export_replies.append(json_reply({"detail": "disk on fire"}, status=500))

    final = (await run(exporter.backup(direct(alpha), dest)))[-1]

    assert (final.state, final.error) == (
        JobState.FAILED,
        "the export failed: the runtime answered 500: disk on fire",
    )


async def test_an_unreachable_runtime_ends_the_backup(
    http: httpx.AsyncClient, exporter: Exporter, dest: Path
) -> None:
    with refused_url() as url:
        target = RuntimeEndpoint("alpha-id", "alpha", url, False, BearerAuth(lambda: None))
        final = (await run(exporter.backup(target, dest)))[-1]

    assert final.state is JobState.FAILED
    assert final.error is not None and final.error.startswith("the export failed: unreachable")


@pytest.mark.parametrize("form", FORMS)
async def test_a_409_names_the_export_in_progress(
    vellum_peer: VellumPeer, exporter: Exporter, dest: Path, form: Form
) -> None:
    alpha = vellum_peer.runtime("alpha")
    alpha.migrations.export_replies.append(in_progress_reply("export-77", form))

    final = (await run(exporter.backup(direct(alpha), dest)))[-1]

    assert (final.state, final.in_progress_job_id) == (JobState.FAILED, "export-77")
    assert final.error == "another export is already in progress on the runtime: export-77"


async def test_a_409_without_an_id_still_says_why(
    vellum_peer: VellumPeer, exporter: Exporter, dest: Path
) -> None:
    alpha = vellum_peer.runtime("alpha")
    alpha.migrations.export_replies.append(json_reply({"error": "busy"}, status=409))

    final = (await run(exporter.backup(direct(alpha), dest)))[-1]

    assert (final.state, final.in_progress_job_id) == (JobState.FAILED, None)
    assert final.error == "another export is already in progress on the runtime"


async def test_following_the_export_in_progress_watches_it_to_its_end(
    vellum_peer: VellumPeer, exporter: Exporter, dest: Path, time_: NoWait
) -> None:
    alpha = vellum_peer.runtime("alpha", bearer=GUARDIAN)
    alpha.migrations.jobs["export-77"] = None  # started by another client
    alpha.migrations.job_steps.extend([{"status": "processing"}] * 2)

    jobs = await run(exporter.follow(direct(alpha), "export-77", dest))

    assert states(jobs) == [JobState.PROCESSING, JobState.COMPLETE]
    final = jobs[-1]
    assert final.runtime_job_id == "export-77" and final.result_path is None
    assert final.note is not None and "start a new backup" in final.note
    assert [poll.outcome for poll in final.polls] == [
        "processing",
        "processing",
        f"complete ({alpha.migrations.artifact.size} bytes)",
    ]
    assert time_.sleeps == [2.0, 2.0]
    paths = {request.path for request in vellum_peer.requests}
    assert paths == {f"{alpha.path}/v1/migrations/jobs/export-77"}
    assert files(dest.parent) == []


async def test_following_a_job_whose_result_names_its_bundle_downloads_it(
    vellum_peer: VellumPeer, exporter: Exporter, dest: Path
) -> None:
    alpha = vellum_peer.runtime("alpha")
    artifact = alpha.migrations.artifact
    alpha.migrations.jobs["export-77"] = None
    result = {"size": artifact.size, "sha256": artifact.sha256, "bundle_key": "bundle-x"}
    alpha.migrations.job_steps.append({"status": "complete", "result": result})

    final = (await run(exporter.follow(direct(alpha), "export-77", dest)))[-1]

    assert (final.state, final.result_path, final.verified) == (JobState.COMPLETE, dest, True)
    assert read(dest) == artifact.content()


async def test_a_corrupt_archive_is_kept_aside_and_never_at_dest(
    vellum_peer: VellumPeer, exporter: Exporter, dest: Path
) -> None:
    alpha = vellum_peer.runtime("alpha")
    alpha.migrations.artifact = damaged = Artifact(SIZE, corrupt=True)

    final = (await run(exporter.backup(direct(alpha), dest)))[-1]

    corrupt = dest.with_name("alpha.vbundle.corrupt")
    assert (final.state, final.corrupt_path, final.result_path) == (JobState.FAILED, corrupt, None)
    assert final.error is not None and f"expected {damaged.sha256}" in final.error
    assert read(corrupt) == damaged.content()
    assert files(dest.parent) == ["alpha.vbundle.corrupt"]


async def test_a_truncated_archive_leaves_nothing(
    vellum_peer: VellumPeer, exporter: Exporter, dest: Path
) -> None:
    alpha = vellum_peer.runtime("alpha")
    artifact = alpha.migrations.artifact = Artifact(SIZE)
    alpha.migrations.export_replies.append(archive_reply(artifact, cut_at=HANDOFF_BYTES + 1))

    final = (await run(exporter.backup(direct(alpha), dest)))[-1]

    assert final.state is JobState.FAILED
    assert final.error == f"the download was cut short after {HANDOFF_BYTES + 1} of {SIZE} bytes"
    assert files(dest.parent) == []


async def test_a_runtime_that_stalls_mid_body_ends_the_backup(
    vellum_peer: VellumPeer, http: httpx.AsyncClient, time_: NoWait, dest: Path
) -> None:
    alpha = vellum_peer.runtime("alpha")
    artifact = alpha.migrations.artifact = Artifact(SIZE)
    alpha.migrations.export_replies.append(archive_reply(artifact, cut_at=5000, cut="stall"))
    exporter = make_exporter(http, time_, Timeouts(request=5.0, export=0.3))

    final = (await run(exporter.backup(direct(alpha), dest)))[-1]

    assert final.state is JobState.FAILED
    assert final.error == "the download stalled: no data for 0.3 s after 5000 bytes"
    assert files(dest.parent) == []


async def test_stopping_a_backup_midway_leaves_nothing(
    vellum_peer: VellumPeer, http: httpx.AsyncClient, dest: Path
) -> None:
    alpha = vellum_peer.runtime("alpha")
    alpha.migrations.artifact = Artifact(SIZE)
    ticks = iter(range(1_000_000))
    exporter = Exporter(http, clock=lambda: float(next(ticks)))  # progress at every hand-off

    jobs = exporter.backup(direct(alpha), dest)
    async with contextlib.aclosing(jobs):
        async for job in jobs:
            if job.bytes_done > 0:
                break

    assert job.state is JobState.DOWNLOADING
    assert files(dest.parent) == []
    stopped = job.ended(JobState.CANCELLED, T0, "stopped by the user")
    assert (stopped.state, stopped.finished_at) == (JobState.CANCELLED, T0)


# The signed-URL route (managed) ----------------------------------------------------------


@pytest.fixture
def mia(vellum_peer: VellumPeer) -> Runtime:
    """A managed runtime: vak_ API keys travel as a bearer."""
    return vellum_peer.runtime("mia", bearer=API_KEY)


@pytest.fixture
def platform(http: httpx.AsyncClient, vellum_peer: VellumPeer) -> Platform:
    return Platform(http, vellum_peer, API_KEY)


async def test_a_managed_backup_polls_the_runtime_job_then_downloads_from_the_bucket(
    vellum_peer: VellumPeer,
    exporter: Exporter,
    mia: Runtime,
    platform: Platform,
    dest: Path,
    time_: NoWait,
) -> None:
    mia.migrations.artifact = artifact = Artifact(SIZE)
    mia.migrations.job_steps.extend([{"status": "processing"}] * 3)

    jobs = await run(exporter.backup(managed(mia, platform), dest))

    assert states(jobs) == [
        JobState.STARTING,
        JobState.PROCESSING,
        JobState.DOWNLOADING,
        JobState.VERIFYING,
        JobState.COMPLETE,
    ]
    final = jobs[-1]
    assert (final.route, final.bundle_key) == (JobRoute.SIGNED_URL, "bundle-1")
    assert final.runtime_job_id is not None and final.runtime_job_id.startswith("export-")
    assert (final.expected_size, final.expected_sha256) == (SIZE, artifact.sha256)
    assert (final.result_path, final.verified, final.size) == (dest, True, SIZE)
    assert read(dest) == artifact.content()
    assert [poll.outcome for poll in final.polls] == [
        "processing",
        "processing",
        "processing",
        f"complete ({SIZE} bytes)",
    ]
    assert time_.sleeps == [2.0, 2.0, 2.0]

    requests = vellum_peer.requests
    assert [(request.method, request.path) for request in requests] == [
        ("POST", f"{mia.path}/v1/migrations/signed-url/"),
        ("POST", f"{mia.path}/v1/assistants/mia-id/migrations/export-to-gcs"),
        *[("GET", f"{mia.path}/v1/assistants/mia-id/migrations/jobs/{final.runtime_job_id}")] * 4,
        ("POST", f"{mia.path}/v1/migrations/signed-url/"),
        ("GET", "/gcs/mia/bundle-1"),
    ]
    upload = json.loads(requests[0].body)
    assert upload == {"operation": "upload"}
    started = json.loads(requests[1].body)
    assert started["upload_url"].startswith(f"{vellum_peer.url}/gcs/mia/bundle-1?")
    assert json.loads(requests[-2].body) == {"operation": "download", "bundle_key": "bundle-1"}
    assert all(r.headers["authorization"] == f"Bearer {API_KEY}" for r in requests[:-1])
    assert "authorization" not in requests[-1].headers  # the signed URL is the credential
    assert_no_secret(jobs)


async def test_the_runtime_restarting_mid_job_loses_it(
    exporter: Exporter, mia: Runtime, platform: Platform, dest: Path, time_: NoWait
) -> None:
    mia.migrations.job_steps.extend([{"status": "processing"}] * 5)
    time_.on_sleep = mia.migrations.restart

    final = (await run(exporter.backup(managed(mia, platform), dest)))[-1]

    assert final.state is JobState.LOST
    assert final.error is not None and final.error.startswith("Migration job not found")
    assert [poll.outcome for poll in final.polls] == ["processing", "Migration job not found"]
    assert files(dest.parent) == []


async def test_an_expired_download_link_is_asked_for_again_once(
    vellum_peer: VellumPeer, exporter: Exporter, mia: Runtime, platform: Platform, dest: Path
) -> None:
    mia.migrations.download_replies.append(EXPIRED)

    final = (await run(exporter.backup(managed(mia, platform), dest)))[-1]

    assert (final.state, final.verified) == (JobState.COMPLETE, True)
    bucket = [r for r in vellum_peer.requests if r.path.startswith("/gcs/")]
    assert len(bucket) == 2 and bucket[0].target != bucket[1].target  # a fresh URL


async def test_a_download_link_refused_twice_ends_the_backup(
    vellum_peer: VellumPeer, exporter: Exporter, mia: Runtime, platform: Platform, dest: Path
) -> None:
    mia.migrations.expired = True

    final = (await run(exporter.backup(managed(mia, platform), dest)))[-1]

    assert final.state is JobState.FAILED
    assert final.error == (
        "the bucket refused the download link (403): it has expired or was revoked;"
        " retry the backup"
    )
    assert len([r for r in vellum_peer.requests if r.path.startswith("/gcs/")]) == 2
    assert files(dest.parent) == []


async def test_a_managed_409_names_the_export_to_follow(
    exporter: Exporter, mia: Runtime, platform: Platform, dest: Path
) -> None:
    mia.migrations.start_replies.append(in_progress_reply("export-9"))
    mia.migrations.jobs["export-9"] = None

    failed = (await run(exporter.backup(managed(mia, platform), dest)))[-1]
    followed = (await run(exporter.follow(managed(mia, platform), "export-9", dest)))[-1]

    assert (failed.state, failed.in_progress_job_id) == (JobState.FAILED, "export-9")
    assert (followed.state, followed.runtime_job_id) == (JobState.COMPLETE, "export-9")


async def test_a_malformed_status_is_a_transient_error(
    exporter: Exporter, mia: Runtime, platform: Platform, dest: Path
) -> None:
    mia.migrations.job_steps.extend(
        [Reply(body=b'{"status": "proc'), Reply(body=b"<html>bad gateway</html>", status=200)]
    )

    final = (await run(exporter.backup(managed(mia, platform), dest)))[-1]

    assert final.state is JobState.COMPLETE
    assert [poll.outcome for poll in final.polls][:2] == [
        "the runtime sent a status that is not JSON (transient 1/5)",
        "the runtime sent a status that is not JSON (transient 2/5)",
    ]


async def test_unknown_fields_and_states_keep_the_job_going(
    exporter: Exporter, mia: Runtime, platform: Platform, dest: Path
) -> None:
    artifact = mia.migrations.artifact
    mia.migrations.job_steps.extend(
        [
            {"status": "queued", "position": 3, "eta": {"seconds": 9}},
            {"status": "processing", "progress": 0.5, "stage": "vacuum"},
            {
                "status": "complete",
                "result": {"size": artifact.size, "manifest_sha256": artifact.sha256, "n": 1},
                "finished_at": "soon",
            },
        ]
    )

    final = (await run(exporter.backup(managed(mia, platform), dest)))[-1]

    assert (final.state, final.verified) == (JobState.COMPLETE, True)
    assert final.polls[0].outcome == "status 'queued', unknown to roost: still waiting"


async def test_transient_errors_are_retried_and_too_many_end_the_backup(
    exporter: Exporter, mia: Runtime, platform: Platform, dest: Path
) -> None:
    busy = json_reply({"detail": "slow down"}, status=429)
    down = json_reply({"detail": "bad gateway"}, status=502)
    mia.migrations.job_steps.extend([busy, down, {"status": "processing"}])
    first = (await run(exporter.backup(managed(mia, platform), dest)))[-1]

    mia.migrations.job_steps.extend([down] * 6)
    second = (await run(exporter.backup(managed(mia, platform), dest.with_name("b.vbundle"))))[-1]

    assert first.state is JobState.COMPLETE
    assert first.polls[0].outcome == "the runtime answered 429 (transient 1/5)"
    assert (second.state, second.error) == (
        JobState.FAILED,
        "the runtime answered 502 (6 transient errors in a row)",
    )


@pytest.mark.parametrize(
    ("step", "error"),
    [
        ({"status": "failed", "error": "bundle too large"}, "bundle too large"),
        ({"status": "failed"}, "Job failed without an error message"),
        (json_reply({"detail": "bad"}, status=400), "the runtime answered 400"),
    ],
)
async def test_a_failed_job_ends_the_backup_with_its_reason(
    exporter: Exporter,
    mia: Runtime,
    platform: Platform,
    dest: Path,
    step: Reply | dict[str, object],
    error: str,
) -> None:
    mia.migrations.job_steps.append(step)

    final = (await run(exporter.backup(managed(mia, platform), dest)))[-1]

    assert (final.state, final.error) == (JobState.FAILED, error)


async def test_a_401_while_polling_reconnects_to_the_platform(
    exporter: Exporter, mia: Runtime, platform: Platform, dest: Path
) -> None:
    mia.migrations.job_steps.extend([UNAUTHORIZED, {"status": "processing"}])

    final = (await run(exporter.backup(managed(mia, platform), dest)))[-1]

    assert final.state is JobState.COMPLETE
    assert platform.connections == 2
    assert final.polls[0].outcome == "401 unauthorized: refreshing credentials (1/3)"


async def test_credentials_refused_while_polling_end_the_backup_after_three_refreshes(
    exporter: Exporter, mia: Runtime, platform: Platform, dest: Path
) -> None:
    mia.migrations.job_steps.extend([UNAUTHORIZED] * 4)

    final = (await run(exporter.backup(managed(mia, platform), dest)))[-1]

    assert (final.state, final.error) == (
        JobState.FAILED,
        "the runtime refused roost's credentials",
    )
    assert platform.connections == 4


async def test_a_managed_backup_without_a_login_says_so(
    http: httpx.AsyncClient,
    vellum_peer: VellumPeer,
    exporter: Exporter,
    mia: Runtime,
    dest: Path,
) -> None:
    final = (await run(exporter.backup(managed(mia, Platform(http, vellum_peer, None)), dest)))[-1]

    assert final.state is JobState.FAILED
    assert final.error == "no credentials: not logged in to the Vellum platform: run 'vellum login'"
    assert vellum_peer.requests == ()


async def test_a_corrupt_bucket_download_is_kept_aside(
    exporter: Exporter, mia: Runtime, platform: Platform, dest: Path
) -> None:
    damaged = Artifact(mia.migrations.artifact.size, corrupt=True)
    mia.migrations.download_replies.append(archive_reply(damaged, checksum=False))

    final = (await run(exporter.backup(managed(mia, platform), dest)))[-1]

    assert (final.state, final.corrupt_path) == (
        JobState.FAILED,
        dest.with_name(dest.name + ".corrupt"),
    )
    assert files(dest.parent) == ["alpha.vbundle.corrupt"]


async def test_a_truncated_bucket_download_leaves_nothing(
    exporter: Exporter, mia: Runtime, platform: Platform, dest: Path
) -> None:
    artifact = mia.migrations.artifact
    mia.migrations.download_replies.append(archive_reply(artifact, checksum=False, cut_at=100))

    final = (await run(exporter.backup(managed(mia, platform), dest)))[-1]

    assert final.state is JobState.FAILED
    assert final.error == f"the download was cut short after 100 of {artifact.size} bytes"
    assert files(dest.parent) == []


# Restarts: the store and resuming ----------------------------------------------------------


async def start_then_stop_roost(
    exporter: Exporter, target: RuntimeEndpoint, dest: Path, until: JobState
) -> Job:
    """Run a backup until it reaches `until`, record it as a roost process would, then stop
    (that process: one with this PID that started earlier)."""
    ended = ProcessIdentity(os.getpid(), "an-earlier-boot:0", socket.gethostname())
    store = JobStore(StateDatabase.at(RoostPaths.resolve()), owner=ended)
    jobs = exporter.backup(target, dest)
    async with contextlib.aclosing(jobs):
        async for job in jobs:
            store.put(job)
            if job.state is until:
                break
    return job


async def test_a_job_running_when_roost_stopped_is_resumed_from_the_store(
    vellum_peer: VellumPeer,
    http: httpx.AsyncClient,
    mia: Runtime,
    platform: Platform,
    dest: Path,
) -> None:
    mia.migrations.job_steps.extend([{"status": "processing"}] * 3)
    before = await start_then_stop_roost(
        make_exporter(http, NoWait()), managed(mia, platform), dest, JobState.PROCESSING
    )

    store = JobStore.at(RoostPaths.resolve())  # roost starts again
    [unfinished] = store.interrupted() if store.load() else ()
    assert store.claim(unfinished)
    jobs = await run(make_exporter(http, NoWait()).resume(managed(mia, platform), unfinished))
    for job in jobs:
        store.put(job)

    final = jobs[-1]
    assert (final.id, final.started_at, final.runtime_job_id) == (
        before.id,
        before.started_at,
        before.runtime_job_id,
    )
    assert (final.state, final.result_path) == (JobState.COMPLETE, dest)
    assert JobStore.at(RoostPaths.resolve()).load() == (final,)
    starts = vellum_peer.requests_to(f"{mia.path}/v1/assistants/mia-id/migrations/export-to-gcs")
    assert len(starts) == 1  # resumed, not started again


async def test_a_resumed_job_the_runtime_forgot_is_lost(
    http: httpx.AsyncClient, mia: Runtime, platform: Platform, dest: Path
) -> None:
    mia.migrations.job_steps.append({"status": "processing"})
    before = await start_then_stop_roost(
        make_exporter(http, NoWait()), managed(mia, platform), dest, JobState.PROCESSING
    )
    mia.migrations.restart()

    final = (await run(make_exporter(http, NoWait()).resume(managed(mia, platform), before)))[-1]

    assert final.state is JobState.LOST
    assert final.error == (
        "Migration job not found: the runtime forgot the job (restarted, or it ended long ago)"
    )


async def test_a_job_stopped_while_downloading_downloads_again_without_polling(
    vellum_peer: VellumPeer, http: httpx.AsyncClient, mia: Runtime, platform: Platform, dest: Path
) -> None:
    mia.migrations.artifact = artifact = Artifact(SIZE)
    before = await start_then_stop_roost(
        make_exporter(http, NoWait()), managed(mia, platform), dest, JobState.DOWNLOADING
    )
    mia.migrations.restart()  # the bundle outlives the runtime's memory of the job
    polls = len([r for r in vellum_peer.requests if "/jobs/" in r.path])

    final = (await run(make_exporter(http, NoWait()).resume(managed(mia, platform), before)))[-1]

    assert (final.state, final.verified) == (JobState.COMPLETE, True)
    assert read(dest) == artifact.content()
    assert len([r for r in vellum_peer.requests if "/jobs/" in r.path]) == polls


async def test_a_sync_export_cannot_be_resumed_and_says_so(
    vellum_peer: VellumPeer, http: httpx.AsyncClient, dest: Path
) -> None:
    alpha = vellum_peer.runtime("alpha")
    alpha.migrations.artifact = Artifact(SIZE)
    ticks = iter(range(1_000_000))
    exporter = Exporter(http, clock=lambda: float(next(ticks)))
    before = await start_then_stop_roost(exporter, direct(alpha), dest, JobState.EXPORTING)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.with_name(dest.name + ".part").write_bytes(b"left by a crash")

    final = (await run(exporter.resume(direct(alpha), before)))[-1]

    assert final.state is JobState.FAILED
    assert final.error == "interrupted: roost stopped before this backup finished; start a new one"
    assert files(dest.parent) == []


async def test_resuming_a_finished_job_changes_nothing(
    vellum_peer: VellumPeer, exporter: Exporter, dest: Path
) -> None:
    alpha = vellum_peer.runtime("alpha")
    done = (await run(exporter.backup(direct(alpha), dest)))[-1]
    count = len(vellum_peer.requests)

    assert await run(exporter.resume(direct(alpha), done)) == [done]
    assert len(vellum_peer.requests) == count


# Targets, destinations and 409 bodies ------------------------------------------------------


def test_managed_and_direct_targets_use_their_path_forms() -> None:
    auth = BearerAuth(lambda: None)
    managed_target = RuntimeEndpoint("id/1", "m", "https://p.example/", True, auth)
    direct_target = RuntimeEndpoint("id-2", "d", "http://127.0.0.1:7821", False, auth)

    assert migrations_url(managed_target, "jobs/j") == (
        "https://p.example/v1/assistants/id%2F1/migrations/jobs/j"
    )
    assert signed_url_endpoint(managed_target) == "https://p.example/v1/migrations/signed-url/"
    assert migrations_url(direct_target, "export") == "http://127.0.0.1:7821/v1/migrations/export"


def test_a_health_target_makes_an_export_target_of_the_same_kind() -> None:
    environment = VellumEnvironment.resolve()
    health = HealthTarget("k", "mia-id", "https://p.example", managed=True)

    target = RuntimeEndpoint.of(health, "mia", environment, lambda: None)

    assert (target.assistant_id, target.name, target.managed) == ("mia-id", "mia", True)
    assert isinstance(target.auth, PlatformAuth)


def test_backups_go_under_the_data_dir_by_name_and_time(tmp_path: Path) -> None:
    data_dir = RoostPaths.resolve().data_dir

    first = backup_destination(data_dir, "my/assistant", T0)
    first.parent.mkdir(parents=True)
    first.write_bytes(b"")

    assert data_dir == tmp_path / "roost-data"
    assert first == data_dir / "backups" / "my_assistant-20250501-120000.vbundle"
    assert backup_destination(data_dir, "my/assistant", T0).name == (
        "my_assistant-20250501-120000-2.vbundle"
    )
    assert backup_destination(data_dir, "..", T0).name.startswith("assistant-")


@pytest.mark.parametrize(
    ("body", "job_id"),
    [
        ({"error": {"code": "export_in_progress", "job_id": "j-1"}}, "j-1"),
        ({"code": "export_in_progress", "job_id": "j-2"}, "j-2"),
        ({"error": {"code": "x", "message": "Export already in progress: j-3"}}, "j-3"),
        ({"error": "Export already in progress: j-4"}, "j-4"),
        ({"error": {"code": "export_in_progress"}}, None),
        (["Export already in progress: j-5"], None),
        (None, None),
    ],
)
def test_the_id_of_the_export_in_progress_is_found_in_every_form(
    body: object, job_id: str | None
) -> None:
    assert in_progress_job_id(body) == job_id


def test_the_manifest_header_is_the_runtimes() -> None:
    assert MANIFEST_HEADER == "X-Vbundle-Manifest-Sha256"
