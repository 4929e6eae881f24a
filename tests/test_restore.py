"""Restores of every kind against the loopback Vellum peer (docs/protocol.md §4.6): every step,
every refusal, and the bytes that reached the runtime.

The file is checked against roost's backup library in the test's state database; the whole
path from `roost restore` is tested in tests/test_restore_cli.py.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncGenerator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import httpx
import pytest

from services.core.paths import RoostPaths
from services.core.state import StateDatabase
from services.jobs.exports import Exporter
from services.jobs.library import BackupLibrary
from services.jobs.record import Job, JobKind, JobRoute, JobState
from services.jobs.reports import ImportOutcome, Preflight, Problem
from services.jobs.restore import RestoreOptions, Restorer, SafetyBackup
from services.jobs.runtime import Timeouts
from services.jobs.store import JobStore
from services.vellum.auth import BearerAuth, RuntimeEndpoint
from tests.peers.vellum import (
    FORBIDDEN,
    KEPT_BODY,
    NOT_FOUND,
    UNAUTHORIZED,
    UNREACHABLE,
    Artifact,
    Received,
    Reply,
    VellumPeer,
    import_reply,
    import_result,
    in_progress_reply,
    json_reply,
    preflight_reply,
    problem,
    refused_url,
)
from tests.test_exports import (
    API_KEY,
    GUARDIAN,
    NoWait,
    Platform,
    assert_no_secret,
    direct,
    managed,
    read,
    run,
    states,
)
from tests.waiting import wait_for

Form = Literal["nested", "flat", "message"]
QUICK = Timeouts(request=5.0, export=5.0)
BUNDLE = b"vbundle:" + bytes(range(256)) * 300


@pytest.fixture
def library(tmp_path: Path) -> BackupLibrary:
    """roost's backup library, in the test's state database."""
    return BackupLibrary(StateDatabase.at(RoostPaths.resolve()), tmp_path / "backups")


def record(library: BackupLibrary, path: Path, assistant: str = "alpha") -> None:
    """Record `path` as a backup roost saved, as the exporter does."""
    data = path.read_bytes()
    library.record(assistant, path, len(data), hashlib.sha256(data).hexdigest(), None)


@pytest.fixture
def bundle(tmp_path: Path, library: BackupLibrary) -> Path:
    """A backup roost saved and recorded."""
    path = tmp_path / "backups" / "alpha-20250501-120000.vbundle"
    path.parent.mkdir()
    path.write_bytes(BUNDLE)
    record(library, path)
    return path


@pytest.fixture
def time_() -> NoWait:
    return NoWait()


@pytest.fixture
def restorer(http: httpx.AsyncClient, time_: NoWait, library: BackupLibrary) -> Restorer:
    return Restorer(
        http,
        library,
        timeouts=QUICK,
        clock=time_.clock,
        sleep=time_.sleep,
        rand=lambda: 0.5,
    )


@pytest.fixture
async def http() -> AsyncGenerator[httpx.AsyncClient]:
    async with httpx.AsyncClient(headers={"Accept-Encoding": "identity"}) as client:
        yield client


def safety_of(http: httpx.AsyncClient, target: RuntimeEndpoint, folder: Path) -> SafetyBackup:
    """The safety backup as roost takes it: a backup of the target into `folder`."""
    exporter = Exporter(http, timeouts=QUICK, sleep=NoWait().sleep, rand=lambda: 0.5)
    return lambda: exporter.backup(target, folder / "safety.vbundle")


def write(path: Path, data: bytes) -> None:
    path.write_bytes(data)


def unlink(path: Path) -> None:
    path.unlink()


def received(data: bytes) -> Received:
    return Received(len(data), hashlib.sha256(data).hexdigest(), True)


def restore_states(jobs: list[Job]) -> list[JobState]:
    return states([job for job in jobs if job.kind is JobKind.RESTORE])


async def prepared(
    restorer: Restorer,
    target: RuntimeEndpoint,
    bundle: Path,
    safety: SafetyBackup | None,
    **options: bool,
) -> list[Job]:
    return await run(restorer.prepare(target, bundle, RestoreOptions(**options), safety))


# Local, docker, custom: the bundle as the body ------------------------------------------------


async def test_a_restore_verifies_preflights_backs_up_waits_then_imports_the_exact_bytes(
    vellum_peer: VellumPeer,
    restorer: Restorer,
    http: httpx.AsyncClient,
    bundle: Path,
    tmp_path: Path,
) -> None:
    alpha = vellum_peer.runtime("alpha", bearer=GUARDIAN)
    alpha.migrations.artifact = current = Artifact(5000)
    target = direct(alpha)

    jobs = await prepared(restorer, target, bundle, safety_of(http, target, tmp_path))

    assert restore_states(jobs) == [
        JobState.STARTING,
        JobState.VERIFYING,
        JobState.PREFLIGHT,
        JobState.BACKING_UP,
        JobState.AWAITING,
    ]
    waiting = jobs[-1]
    assert (waiting.verified, waiting.verification, waiting.size) == (
        True,
        "verified",
        len(BUNDLE),
    )
    assert waiting.preflight is not None
    assert waiting.preflight.can_import
    assert waiting.preflight.summary() == "1 to create, 1 to overwrite, 1 unchanged (3 files)"
    safety = [job for job in jobs if job.kind is JobKind.BACKUP]
    assert safety[-1].state is JobState.COMPLETE and safety[-1].verified
    assert waiting.safety_backup == tmp_path / "safety.vbundle" == safety[-1].result_path
    assert waiting.safety_job_id == safety[-1].id
    assert read(tmp_path / "safety.vbundle") == current.content()
    assert alpha.migrations.preflights == [received(BUNDLE)]
    assert alpha.migrations.imports == []  # nothing until confirmed

    done = await run(restorer.finish(target, waiting))

    assert states(done) == [JobState.AWAITING, JobState.IMPORTING, JobState.COMPLETE]
    final = done[-1]
    assert final.outcome is not None and final.outcome.success
    assert final.outcome.summary() == (
        "1 created, 1 overwritten, 1 skipped (3 files, 1 kept by the runtime as backups)"
    )
    assert alpha.migrations.imports == [received(BUNDLE)]
    [request] = vellum_peer.requests_to(alpha.path + "/v1/migrations/import")
    assert request.body == BUNDLE
    assert request.headers["content-type"] == "application/octet-stream"
    assert request.headers["authorization"] == f"Bearer {GUARDIAN}"
    assert "transfer-encoding" not in request.headers
    assert_no_secret(jobs + done)


async def test_a_large_bundle_arrives_whole_and_reports_its_progress(
    vellum_peer: VellumPeer, restorer: Restorer, tmp_path: Path, library: BackupLibrary
) -> None:
    alpha = vellum_peer.runtime("alpha", bearer=GUARDIAN)
    big = tmp_path / "big.vbundle"
    data = Artifact(3 * KEPT_BODY + 12345).content()
    write(big, data)
    record(library, big)

    jobs = await prepared(restorer, direct(alpha), big, None)
    done = await run(restorer.finish(direct(alpha), jobs[-1]))

    assert done[-1].state is JobState.COMPLETE
    assert alpha.migrations.preflights == alpha.migrations.imports == [received(data)]
    assert done[-1].bytes_done == done[-1].bytes_total == len(data)


async def test_a_dry_run_stops_after_the_preflight(
    vellum_peer: VellumPeer, restorer: Restorer, http: httpx.AsyncClient, bundle: Path
) -> None:
    alpha = vellum_peer.runtime("alpha", bearer=GUARDIAN)
    target = direct(alpha)

    jobs = await prepared(
        restorer, target, bundle, safety_of(http, target, bundle.parent), dry_run=True
    )

    assert restore_states(jobs) == [
        JobState.STARTING,
        JobState.VERIFYING,
        JobState.PREFLIGHT,
        JobState.COMPLETE,
    ]
    assert jobs[-1].dry_run and jobs[-1].note == "dry run: nothing was imported"
    assert jobs[-1].preflight is not None
    assert not any(job.kind is JobKind.BACKUP for job in jobs)
    assert vellum_peer.requests_to(alpha.path + "/v1/migrations/export") == []
    assert alpha.migrations.imports == []


async def test_declining_ends_the_restore_with_nothing_imported(
    vellum_peer: VellumPeer, restorer: Restorer, bundle: Path
) -> None:
    alpha = vellum_peer.runtime("alpha", bearer=GUARDIAN)
    jobs = await prepared(restorer, direct(alpha), bundle, None)

    declined = restorer.decline(jobs[-1])

    assert declined.state is JobState.CANCELLED
    assert declined.note == "not confirmed: nothing was imported"
    assert alpha.migrations.imports == []
    assert "no safety backup was taken" in (jobs[-1].note or "")


async def test_a_changed_file_is_refused_and_nothing_is_sent(
    vellum_peer: VellumPeer, restorer: Restorer, bundle: Path
) -> None:
    alpha = vellum_peer.runtime("alpha", bearer=GUARDIAN)
    write(bundle, BUNDLE[:-1] + b"!")

    jobs = await prepared(restorer, direct(alpha), bundle, None)

    final = jobs[-1]
    assert final.state is JobState.FAILED
    assert final.verification == "changed" and not final.verified
    assert final.error is not None
    assert final.error.startswith(f"verify: {bundle} is not a verified backup: its bytes differ")
    assert "--force-unverified" in final.error and "overwriting what it has now" in final.error
    assert vellum_peer.requests == ()


async def test_a_file_roost_did_not_save_is_refused_unless_forced(
    vellum_peer: VellumPeer, restorer: Restorer, tmp_path: Path
) -> None:
    alpha = vellum_peer.runtime("alpha", bearer=GUARDIAN)
    stranger = tmp_path / "found.vbundle"
    write(stranger, BUNDLE)

    refused = await prepared(restorer, direct(alpha), stranger, None)
    assert refused[-1].state is JobState.FAILED
    assert "roost did not save it, so nothing vouches for what it holds" in (
        refused[-1].error or ""
    )
    assert vellum_peer.requests == ()

    forced = await prepared(restorer, direct(alpha), stranger, None, force_unverified=True)
    assert forced[-1].state is JobState.AWAITING
    assert forced[-1].verification == "unrecorded" and not forced[-1].verified
    assert "restored anyway (--force-unverified)" in (forced[-1].note or "")
    done = await run(restorer.finish(direct(alpha), forced[-1]))
    assert alpha.migrations.imports == [received(BUNDLE)]
    assert done[-1].state is JobState.COMPLETE


async def test_a_missing_file_is_refused(
    vellum_peer: VellumPeer, restorer: Restorer, bundle: Path
) -> None:
    alpha = vellum_peer.runtime("alpha", bearer=GUARDIAN)
    unlink(bundle)

    jobs = await prepared(restorer, direct(alpha), bundle, None, force_unverified=True)

    assert jobs[-1].state is JobState.FAILED
    assert jobs[-1].error == f"verify: {bundle} is not there (moved or deleted): nothing to restore"


async def test_a_failed_preflight_shows_every_error_and_conflict_with_its_path(
    vellum_peer: VellumPeer, restorer: Restorer, http: httpx.AsyncClient, bundle: Path
) -> None:
    alpha = vellum_peer.runtime("alpha", bearer=GUARDIAN)
    alpha.migrations.preflight_replies.append(
        preflight_reply(
            can_import=False,
            errors=[problem("bad manifest", "manifest.json", "invalid_manifest")],
            conflicts=[problem("changed since", "memory/notes.md", "conflict"), "loose text"],
        )
    )
    target = direct(alpha)

    jobs = await prepared(restorer, target, bundle, safety_of(http, target, bundle.parent))

    final = jobs[-1]
    assert final.state is JobState.FAILED
    assert final.error == (
        "preflight: alpha cannot import this bundle: manifest.json: bad manifest;"
        " memory/notes.md: changed since; loose text"
    )
    assert final.preflight is not None and not final.preflight.can_import
    assert [(p.path, p.code) for p in final.preflight.errors] == [
        ("manifest.json", "invalid_manifest")
    ]
    assert [str(p) for p in final.preflight.conflicts] == [
        "memory/notes.md: changed since",
        "loose text",
    ]
    assert vellum_peer.requests_to(alpha.path + "/v1/migrations/export") == []
    assert alpha.migrations.imports == []


async def test_a_failed_safety_backup_stops_the_restore(
    vellum_peer: VellumPeer, restorer: Restorer, http: httpx.AsyncClient, bundle: Path
) -> None:
    alpha = vellum_peer.runtime("alpha", bearer=GUARDIAN)
    alpha.migrations.export_replies.append(json_reply({"detail": "disk full"}, status=500))
    target = direct(alpha)

    jobs = await prepared(restorer, target, bundle, safety_of(http, target, bundle.parent))

    final = jobs[-1]
    backup = [job for job in jobs if job.kind is JobKind.BACKUP][-1]
    assert backup.state is JobState.FAILED
    assert final.state is JobState.FAILED and final.safety_job_id == backup.id
    assert final.error == (
        "safety backup: the export failed: the runtime answered 500: disk full; nothing was"
        " imported. Fix that, or restore without one (--no-safety-backup)"
    )
    assert alpha.migrations.imports == []


async def test_a_failed_import_says_why_and_where_the_safety_backup_is(
    vellum_peer: VellumPeer, restorer: Restorer, http: httpx.AsyncClient, bundle: Path
) -> None:
    alpha = vellum_peer.runtime("alpha", bearer=GUARDIAN)
    alpha.migrations.import_replies.append(
        import_reply(
            success=False,
            reason="schema mismatch",
            errors=[problem("unknown version 9", "manifest.json")],
        )
    )
    target = direct(alpha)
    jobs = await prepared(restorer, target, bundle, safety_of(http, target, bundle.parent))

    done = await run(restorer.finish(target, jobs[-1]))

    final = done[-1]
    assert final.state is JobState.FAILED
    assert final.outcome is not None and not final.outcome.success
    assert final.error == (
        "import: alpha did not import the bundle (schema mismatch): manifest.json: unknown"
        f" version 9; the safety backup {bundle.parent / 'safety.vbundle'} holds the state before"
    )


async def test_an_import_with_warnings_completes_and_counts_them(
    vellum_peer: VellumPeer, restorer: Restorer, bundle: Path
) -> None:
    alpha = vellum_peer.runtime("alpha", bearer=GUARDIAN)
    alpha.migrations.import_replies.append(import_reply(warnings=["skipped a.tmp", "old key"]))
    jobs = await prepared(restorer, direct(alpha), bundle, None)

    done = await run(restorer.finish(direct(alpha), jobs[-1]))

    assert done[-1].state is JobState.COMPLETE
    assert done[-1].outcome is not None
    assert done[-1].outcome.warnings == ("skipped a.tmp", "old key")
    assert (done[-1].note or "").endswith("2 warnings")


@pytest.mark.parametrize("form", ["nested", "flat", "message"])
async def test_a_409_names_the_import_in_progress_and_it_can_be_followed(
    vellum_peer: VellumPeer, restorer: Restorer, bundle: Path, form: Form
) -> None:
    alpha = vellum_peer.runtime("alpha", bearer=GUARDIAN)
    alpha.migrations.import_replies.append(in_progress_reply("import-77", form, "import"))
    jobs = await prepared(restorer, direct(alpha), bundle, None)

    done = await run(restorer.finish(direct(alpha), jobs[-1]))

    assert done[-1].state is JobState.FAILED
    assert done[-1].in_progress_job_id == "import-77"
    assert done[-1].error == (
        "import: another import is already in progress on the runtime: import-77"
    )
    alpha.migrations.jobs["import-77"] = None
    alpha.migrations.job_steps.append({"status": "processing"})

    followed = await run(restorer.follow(direct(alpha), "import-77", bundle))

    assert states(followed) == [JobState.PROCESSING, JobState.COMPLETE]
    assert followed[-1].outcome is not None and followed[-1].outcome.success
    assert alpha.migrations.imports == []  # roost sent nothing: it only watched


async def test_a_401_reads_the_token_again_and_sends_the_bundle_once_more(
    vellum_peer: VellumPeer, restorer: Restorer, bundle: Path
) -> None:
    alpha = vellum_peer.runtime("alpha", bearer=GUARDIAN)

    jobs = await prepared(restorer, direct(alpha, ["stale-token", GUARDIAN]), bundle, None)

    assert jobs[-1].state is JobState.AWAITING
    sent = vellum_peer.requests_to(alpha.path + "/v1/migrations/import-preflight")
    assert [r.headers["authorization"] for r in sent] == [
        "Bearer stale-token",
        f"Bearer {GUARDIAN}",
    ]
    assert sent[-1].received == received(BUNDLE)


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (
            UNAUTHORIZED,
            "preflight: authentication failed (401); renew its guardian token:"
            " vellum gateway token refresh",
        ),
        (
            FORBIDDEN,
            "preflight: authentication failed (403); renew its guardian token:"
            " vellum gateway token refresh",
        ),
        (
            NOT_FOUND,
            "preflight: the runtime has no such endpoint (404): it may be too old to import",
        ),
        (
            UNREACHABLE,
            "preflight: the assistant is unreachable (502); try waking it first (roost wake alpha)",
        ),
    ],
)
async def test_refused_preflights_say_what_to_do(
    vellum_peer: VellumPeer, restorer: Restorer, bundle: Path, reply: Reply, error: str
) -> None:
    alpha = vellum_peer.runtime("alpha", bearer=GUARDIAN)
    alpha.migrations.preflight_replies.extend([reply, reply])

    jobs = await prepared(restorer, direct(alpha), bundle, None)

    assert jobs[-1].state is JobState.FAILED
    assert jobs[-1].error == error
    assert alpha.migrations.imports == []


async def test_an_unreachable_runtime_says_to_wake_it(restorer: Restorer, bundle: Path) -> None:
    with refused_url() as url:
        target = RuntimeEndpoint("alpha-id", "alpha", url, False, BearerAuth(lambda: GUARDIAN))
        jobs = await prepared(restorer, target, bundle, None)

    final = jobs[-1]
    assert final.state is JobState.FAILED and final.unreachable
    assert final.error is not None
    assert final.error.startswith("preflight: sending the bundle failed: unreachable")
    assert final.error.endswith("; try waking it first (roost wake alpha)")


async def test_a_file_changed_after_its_check_is_never_sent_whole(
    vellum_peer: VellumPeer, restorer: Restorer, bundle: Path
) -> None:
    alpha = vellum_peer.runtime("alpha", bearer=GUARDIAN)
    jobs = await prepared(restorer, direct(alpha), bundle, None)
    write(bundle, BUNDLE[:-1] + b"!")  # same size, other bytes

    done = await run(restorer.finish(direct(alpha), jobs[-1]))

    assert done[-1].state is JobState.FAILED
    assert done[-1].error == (
        f"import: {bundle} changed after it was verified (its sha256 differs): nothing was"
        " sent whole; verify it again"
    )
    assert alpha.migrations.imports == []
    path = alpha.path + "/v1/migrations/import"
    # The peer records the request once it has read what came, after the client gave up.
    await wait_for(lambda: bool(vellum_peer.requests_to(path)), "the cut request at the peer")
    [request] = vellum_peer.requests_to(path)
    assert request.received is not None and not request.received.complete


# Managed: upload, preflight-from-gcs, import-from-gcs polled ---------------------------------


async def test_a_managed_restore_uploads_preflights_and_imports_as_a_polled_job(
    vellum_peer: VellumPeer,
    restorer: Restorer,
    http: httpx.AsyncClient,
    bundle: Path,
    time_: NoWait,
) -> None:
    vellum_peer.platform.api_keys.add(API_KEY)
    mia = vellum_peer.runtime("mia", bearer=API_KEY)
    target = managed(mia, Platform(http, vellum_peer, API_KEY))

    jobs = await prepared(restorer, target, bundle, safety_of(http, target, bundle.parent))

    assert restore_states(jobs) == [
        JobState.STARTING,
        JobState.VERIFYING,
        JobState.PREFLIGHT,
        JobState.UPLOADING,
        JobState.PREFLIGHT,
        JobState.BACKING_UP,
        JobState.AWAITING,
    ]
    assert jobs[-1].route is JobRoute.SIGNED_URL
    [key] = mia.migrations.bucket
    assert mia.migrations.bucket[key] == received(BUNDLE)
    assert jobs[-1].bundle_key == key
    [put] = [r for r in vellum_peer.requests if r.method == "PUT"]
    assert "authorization" not in put.headers and put.body == BUNDLE
    assert mia.migrations.preflights == [received(BUNDLE)]
    mia.migrations.job_steps.extend([{"status": "processing"}, {"status": "processing"}])

    done = await run(restorer.finish(target, jobs[-1]))

    assert states(done) == [JobState.AWAITING, JobState.PROCESSING, JobState.COMPLETE]
    assert done[-1].runtime_job_id is not None and done[-1].runtime_job_id.startswith("import-")
    assert [poll.outcome for poll in done[-1].polls] == ["processing", "processing", "complete"]
    assert done[-1].outcome is not None and done[-1].outcome.success
    assert mia.migrations.imports == [received(BUNDLE)]
    assert len(mia.migrations.bucket) == 1  # uploaded once, for the preflight and the import
    assert_no_secret(jobs + done)


async def test_a_managed_bundle_whose_link_expires_is_uploaded_again_before_the_import(
    vellum_peer: VellumPeer, restorer: Restorer, http: httpx.AsyncClient, bundle: Path
) -> None:
    vellum_peer.platform.api_keys.add(API_KEY)
    mia = vellum_peer.runtime("mia", bearer=API_KEY)
    mia.migrations.expires_at = "2000-01-01T00:00:00Z"
    target = managed(mia, Platform(http, vellum_peer, API_KEY))
    jobs = await prepared(restorer, target, bundle, None)

    done = await run(restorer.finish(target, jobs[-1]))

    assert states(done) == [
        JobState.AWAITING,
        JobState.UPLOADING,
        JobState.PROCESSING,
        JobState.COMPLETE,
    ]
    first, second = mia.migrations.bucket
    assert done[-1].bundle_key == second != first
    [started] = vellum_peer.requests_to(
        mia.path + "/v1/assistants/mia-id/migrations/import-from-gcs"
    )
    assert second in json.loads(started.body)["bundle_url"]
    assert mia.migrations.imports == [received(BUNDLE)]


async def test_a_failed_managed_import_job_ends_the_restore(
    vellum_peer: VellumPeer, restorer: Restorer, http: httpx.AsyncClient, bundle: Path
) -> None:
    vellum_peer.platform.api_keys.add(API_KEY)
    mia = vellum_peer.runtime("mia", bearer=API_KEY)
    target = managed(mia, Platform(http, vellum_peer, API_KEY))
    jobs = await prepared(restorer, target, bundle, None)
    mia.migrations.job_steps.append({"status": "failed", "error": "bundle rejected"})

    done = await run(restorer.finish(target, jobs[-1]))

    assert done[-1].state is JobState.FAILED
    assert done[-1].error == "import: bundle rejected"


async def test_a_managed_job_result_saying_it_failed_is_a_failure(
    vellum_peer: VellumPeer, restorer: Restorer, http: httpx.AsyncClient, bundle: Path
) -> None:
    vellum_peer.platform.api_keys.add(API_KEY)
    mia = vellum_peer.runtime("mia", bearer=API_KEY)
    target = managed(mia, Platform(http, vellum_peer, API_KEY))
    jobs = await prepared(restorer, target, bundle, None)
    mia.migrations.job_steps.append(
        {"status": "complete", "result": import_result(success=False, reason="quota exceeded")}
    )

    done = await run(restorer.finish(target, jobs[-1]))

    assert done[-1].state is JobState.FAILED
    assert done[-1].error == "import: mia did not import the bundle (quota exceeded)"


async def test_a_managed_restore_without_a_login_says_so(
    vellum_peer: VellumPeer, restorer: Restorer, http: httpx.AsyncClient, bundle: Path
) -> None:
    mia = vellum_peer.runtime("mia", bearer=API_KEY)
    target = managed(mia, Platform(http, vellum_peer, None))

    jobs = await prepared(restorer, target, bundle, None)

    assert jobs[-1].state is JobState.FAILED
    assert (jobs[-1].error or "").startswith("no credentials: ")
    assert mia.migrations.bucket == {}


async def test_a_managed_404_names_the_assistant(
    vellum_peer: VellumPeer, restorer: Restorer, http: httpx.AsyncClient, bundle: Path
) -> None:
    vellum_peer.platform.api_keys.add(API_KEY)
    mia = vellum_peer.runtime("mia", bearer=API_KEY)
    mia.migrations.preflight_replies.append(NOT_FOUND)
    target = managed(mia, Platform(http, vellum_peer, API_KEY))

    jobs = await prepared(restorer, target, bundle, None)

    assert jobs[-1].error == "preflight: no managed assistant mia-id found (404)"


async def test_an_interrupted_managed_import_is_polled_again_after_a_restart(
    vellum_peer: VellumPeer,
    restorer: Restorer,
    http: httpx.AsyncClient,
    bundle: Path,
    tmp_path: Path,
) -> None:
    vellum_peer.platform.api_keys.add(API_KEY)
    mia = vellum_peer.runtime("mia", bearer=API_KEY)
    target = managed(mia, Platform(http, vellum_peer, API_KEY))
    jobs = await prepared(restorer, target, bundle, None)
    mia.migrations.job_steps.append({"status": "processing"})
    steps = restorer.finish(target, jobs[-1])
    running = [job async for job in steps if job.state is JobState.PROCESSING][:1]
    await steps.aclose()  # the process "stops" while the runtime imports
    [interrupted] = running

    resumed = await run(restorer.resume(target, interrupted))

    assert resumed[-1].state is JobState.COMPLETE
    assert resumed[-1].runtime_job_id == interrupted.runtime_job_id
    mia.migrations.restart()
    lost = await run(restorer.resume(target, interrupted))
    assert lost[-1].state is JobState.LOST


async def test_a_restore_before_its_import_job_cannot_resume(
    vellum_peer: VellumPeer, restorer: Restorer, bundle: Path
) -> None:
    alpha = vellum_peer.runtime("alpha", bearer=GUARDIAN)
    jobs = await prepared(restorer, direct(alpha), bundle, None)

    resumed = await run(restorer.resume(direct(alpha), jobs[-1]))

    assert resumed[-1].state is JobState.FAILED
    assert resumed[-1].error == (
        "interrupted: roost stopped before this restore finished; start a new one"
    )
    assert read(bundle) == BUNDLE  # the file restored from is never touched


# The audit in the job history -----------------------------------------------------------------


async def test_the_history_keeps_the_report_the_safety_backup_and_the_outcome(
    vellum_peer: VellumPeer,
    restorer: Restorer,
    http: httpx.AsyncClient,
    bundle: Path,
    tmp_path: Path,
) -> None:
    alpha = vellum_peer.runtime("alpha", bearer=GUARDIAN)
    target = direct(alpha)
    store = JobStore(StateDatabase.at(RoostPaths.resolve()))
    store.load()
    jobs = await prepared(restorer, target, bundle, safety_of(http, target, tmp_path))
    jobs += await run(restorer.finish(target, jobs[-1]))
    for job in jobs:
        store.put(job)

    history = JobStore(StateDatabase.at(RoostPaths.resolve())).load()

    [restore] = [job for job in history if job.kind is JobKind.RESTORE]
    [backup] = [job for job in history if job.kind is JobKind.BACKUP]
    assert restore == jobs[-1]
    assert restore.destination == bundle
    assert restore.safety_backup == backup.result_path and restore.safety_job_id == backup.id
    assert restore.preflight is not None and restore.preflight.to_create == 1
    assert restore.outcome is not None and restore.outcome.created == 1
    stored = json.dumps(restore.to_json())
    assert GUARDIAN not in stored and "X-Goog-Signature" not in stored


def test_a_stored_restore_reads_back_whole() -> None:
    job = Job(
        id="1",
        kind=JobKind.RESTORE,
        assistant_id="a",
        assistant_name="a",
        route=JobRoute.SYNC,
        state=JobState.AWAITING,
        destination=Path("/b.vbundle"),
        started_at=datetime(2025, 1, 1, tzinfo=UTC),
    )
    full = replace(
        job,
        preflight=Preflight(True, 1, 2, 3, 6, (Problem("x", "p", "c"),), (Problem("y"),), 4),
        outcome=ImportOutcome(True, "ok", 6, 1, 2, 3, 1, (Problem("z", "q"),), ("w",), 2),
        safety_backup=Path("/s.vbundle"),
        safety_job_id="2",
        verification="verified",
        dry_run=True,
    )

    assert Job.from_json(json.loads(json.dumps(full.to_json()))) == full
