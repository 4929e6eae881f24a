"""Backups (exports) of assistants, for every kind (docs/protocol.md §4).

Local, docker and custom runtimes export synchronously: the answer to
`POST <runtimeUrl>/v1/migrations/export` is the archive. Managed assistants take the signed-URL
route: an upload URL, `export-to-gcs` (a runtime job), polling, a download URL, and a download
from the bucket without credentials. Either way the archive is saved only whole and verified
(services/jobs/downloads.py), then recorded in the backup library when the exporter has one
(services/jobs/library.py), whose retention may delete older backups of the assistant: the last
snapshot's `pruned` lists them.

Driving it: `Exporter.backup`, `Exporter.follow` and `Exporter.resume` are async generators of
`Job` snapshots, one per change (state, progress, each poll). A UI and a CLI both iterate them,
showing and storing each snapshot (services/jobs/store.py `JobStore`); nothing here calls back into
either. Expected failures never raise: they end the job, and its last snapshot says why
(`FAILED`, or `LOST` when the runtime forgot the job). A refused start because another export
runs (409) ends with `in_progress_job_id` set: `follow` that id to watch it instead. Stopping a
job is closing its generator (`contextlib.aclosing`): the partial download is removed and the
caller records `job.ended(JobState.CANCELLED, ...)`. Retrying is starting a new backup.

    exporter = Exporter(http)
    target = RuntimeEndpoint.of(health_target, name, vellum_environment, connect_platform)
    destination = backup_destination(paths.data_dir, name, exporter.now())
    async with contextlib.aclosing(exporter.backup(target, destination)) as jobs:
        async for job in jobs:
            store.put(job)  # services.jobs.store.JobStore; blocking, so a TUI does it in a thread
            show(job)

After a restart: `store.load()`, then `exporter.resume(target, job)` for each job of
`store.interrupted()` that `store.claim(job)` makes this process's, driven the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from services.core.errors import RoostError
from services.core.http import answer_detail, timeout
from services.core.safe_text import error_text
from services.jobs.downloads import (
    DownloadError,
    DownloadMismatch,
    Expected,
    Phase,
    Progress,
    SavedFile,
    content_length,
    part_path,
    save_verified,
)
from services.jobs.library import BackupLibrary, backups_dir, file_name_part
from services.jobs.polling import RuntimeJobStatus, is_sha256
from services.jobs.record import Job, JobKind, JobRoute, JobState
from services.jobs.runtime import (
    JobError,
    RuntimeJobs,
    in_progress,
    migrations_url,
    new_runtime_job,
    signed_url_endpoint,
)
from services.jobs.store import end_interrupted
from services.vellum.auth import RuntimeEndpoint

log = logging.getLogger(__name__)

MANIFEST_HEADER = "X-Vbundle-Manifest-Sha256"
DEFAULT_DESCRIPTION = "roost backup"


def backup_destination(data_dir: Path, name: str, when: datetime) -> Path:
    """`<data dir>/backups/<name>-<UTC time>.vbundle`, never an existing file."""
    stem = f"{file_name_part(name)}-{when.astimezone(UTC):%Y%m%d-%H%M%S}"
    folder = backups_dir(data_dir)
    candidate = folder / f"{stem}.vbundle"
    number = 2
    while candidate.exists() or part_path(candidate).exists():
        candidate = folder / f"{stem}-{number}.vbundle"
        number += 1
    return candidate


class Exporter(RuntimeJobs):
    """Runs backups with one HTTP client (see `RuntimeJobs` for what else it takes)."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        description: str = DEFAULT_DESCRIPTION,
        library: BackupLibrary | None = None,
        **options: Any,
    ) -> None:
        super().__init__(http, **options)
        self.library = library
        """Where each saved backup is recorded, and retention applied (None: nowhere)."""
        self.description = description

    def new_job(self, target: RuntimeEndpoint, destination: Path) -> Job:
        return new_runtime_job(JobKind.BACKUP, target, destination, self.now())

    def backup(self, target: RuntimeEndpoint, destination: Path) -> AsyncGenerator[Job, None]:
        """Back `target` up to `destination` (see `backup_destination`)."""
        job = self.new_job(target, destination)
        steps = self._signed_url_backup if target.managed else self._sync_backup
        return self._run(job, steps(target, job))

    def follow(
        self, target: RuntimeEndpoint, runtime_job_id: str, destination: Path
    ) -> AsyncGenerator[Job, None]:
        """Follow an export the runtime already runs (the id a 409 named) until it ends.

        Its archive went where whoever started it asked, so roost cannot download it unless the
        finished job names its bundle (`result.bundle_key`); otherwise the job completes with a
        note, and a new backup can start now that the runtime is free.
        """
        job = replace(
            self.new_job(target, destination),
            route=JobRoute.SIGNED_URL,
            state=JobState.PROCESSING,
            runtime_job_id=runtime_job_id,
        )
        return self._run(job, self._poll_then_download(target, job))

    def resume(self, target: RuntimeEndpoint, job: Job) -> AsyncGenerator[Job, None]:
        """Carry on with a job whose process ended before it did (`JobStore.interrupted`, once
        claimed). A synchronous export died with its connection: it fails, saying so. A runtime
        job is polled again (404: LOST); one whose archive was known complete is downloaded
        again.
        """
        return self._run(job, self._resume(target, job))

    async def _resume(self, target: RuntimeEndpoint, job: Job) -> AsyncGenerator[Job, None]:
        if job.state.finished:
            return
        if job.route is JobRoute.SYNC or job.runtime_job_id is None:
            yield end_interrupted(job, self.now(), None)
            return
        part_path(job.destination).unlink(missing_ok=True)
        job = replace(job, bytes_done=0)
        if job.state in (JobState.DOWNLOADING, JobState.VERIFYING) and job.bundle_key:
            steps = self._download(target, job)
        else:
            steps = self._poll_then_download(target, replace(job, state=JobState.PROCESSING))
        async with contextlib.aclosing(steps):
            async for snapshot in steps:
                yield snapshot

    # The synchronous route -----------------------------------------------------------------

    async def _sync_backup(self, target: RuntimeEndpoint, job: Job) -> AsyncGenerator[Job, None]:
        job = replace(job, state=JobState.EXPORTING)
        yield job
        headers = await target.auth.headers()
        # Each read may wait for the export to be built; the body's pace is the watchdog's.
        limits = timeout(self.timeouts.export, connect=self.timeouts.connect)
        body = {"description": self.description}
        for attempt in (1, 2):
            request = self.http.build_request(
                "POST", migrations_url(target, "export"), json=body, headers=headers, timeout=limits
            )
            response = await self.send(request, "the export")
            async with contextlib.aclosing(response):
                if response.status_code == 401 and attempt == 1:
                    headers = await target.auth.refresh()
                    continue
                await self._refuse_unless_success(response, "export")
                header = response.headers.get(MANIFEST_HEADER, "").strip()
                expected = Expected(sha256=header.lower() if is_sha256(header) else None)
                steps = self._save(job, response, expected)
                async with contextlib.aclosing(steps):
                    async for job in steps:
                        yield job
                return

    # The signed-URL route ------------------------------------------------------------------

    async def _signed_url_backup(
        self, target: RuntimeEndpoint, job: Job
    ) -> AsyncGenerator[Job, None]:
        upload = await self.call(target, signed_url_endpoint(target), {"operation": "upload"})
        upload_url, bundle_key = upload.get("url"), upload.get("bundle_key")
        if not isinstance(upload_url, str) or not isinstance(bundle_key, str):
            raise JobError("the runtime sent no upload URL")
        started = await self.call(
            target,
            migrations_url(target, "export-to-gcs"),
            {"upload_url": upload_url, "description": self.description},
        )
        runtime_job_id = started.get("job_id")
        if not isinstance(runtime_job_id, str) or not runtime_job_id:
            raise JobError("the runtime started an export but sent no job id")
        job = replace(
            job,
            state=JobState.PROCESSING,
            runtime_job_id=runtime_job_id,
            bundle_key=bundle_key,
        )
        yield job
        steps = self._poll_then_download(target, job)
        async with contextlib.aclosing(steps):
            async for job in steps:
                yield job

    async def _poll_then_download(
        self, target: RuntimeEndpoint, job: Job
    ) -> AsyncGenerator[Job, None]:
        status: RuntimeJobStatus | None = None
        polls = self.poll(target, job, "export job")
        async with contextlib.aclosing(polls):
            async for job, complete in polls:
                status = complete
                yield job
        assert status is not None
        bundle_key = job.bundle_key or _text(status.result.get("bundle_key"))
        job = replace(
            job,
            bundle_key=bundle_key,
            expected_size=status.result_size,
            expected_sha256=status.result_sha256,
            bytes_total=status.result_size,
        )
        if bundle_key is None:
            yield job.ended(
                JobState.COMPLETE,
                self.now(),
                note=(
                    f"export {job.runtime_job_id} finished on the runtime; it was started"
                    " elsewhere, so its archive went where that client asked: start a new backup"
                    " for a copy here"
                ),
            )
            return
        steps = self._download(target, job)
        async with contextlib.aclosing(steps):
            async for job in steps:
                yield job

    async def _download(self, target: RuntimeEndpoint, job: Job) -> AsyncGenerator[Job, None]:
        """Ask for a download URL and fetch it without credentials; once more with a fresh URL
        when the bucket refuses the first (it may have expired while roost waited)."""
        assert job.bundle_key is not None
        job = replace(job, state=JobState.DOWNLOADING, bytes_done=0)
        yield job
        ask = {"operation": "download", "bundle_key": job.bundle_key}
        limits = timeout(self.timeouts.transfer.stall_seconds, connect=self.timeouts.connect)
        for attempt in (1, 2):
            answer = await self.call(target, signed_url_endpoint(target), ask)
            url = answer.get("url")
            if not isinstance(url, str) or not url:
                raise JobError("the runtime sent no download URL")
            try:
                request = self.http.build_request("GET", url, timeout=limits)
            except (httpx.InvalidURL, httpx.UnsupportedProtocol):
                raise JobError("the runtime sent an invalid download URL") from None
            response = await self.send(request, "the download")
            async with contextlib.aclosing(response):
                if response.status_code in (401, 403):
                    if attempt == 1:
                        continue
                    raise JobError(
                        f"the bucket refused the download link ({response.status_code}):"
                        " it has expired or was revoked; retry the backup"
                    )
                if not response.is_success:
                    raise JobError(
                        f"the download failed: the bucket answered {response.status_code}"
                    )
                expected = Expected(job.expected_size, job.expected_sha256)
                steps = self._save(job, response, expected)
                async with contextlib.aclosing(steps):
                    async for job in steps:
                        yield job
                return

    # Shared steps --------------------------------------------------------------------------

    async def _save(
        self, job: Job, response: httpx.Response, expected: Expected
    ) -> AsyncGenerator[Job, None]:
        total = expected.size if expected.size is not None else content_length(response)
        job = replace(job, state=JobState.DOWNLOADING, bytes_done=0, bytes_total=total)
        progress: AsyncGenerator[Progress, None] = save_verified(
            response, job.destination, expected, limits=self.timeouts.transfer, clock=self.clock
        )
        try:
            async with contextlib.aclosing(progress):
                async for report in progress:
                    job = replace(job, bytes_done=report.done, bytes_total=report.total)
                    if report.phase is Phase.VERIFYING:
                        job = replace(job, state=JobState.VERIFYING)
                    if report.saved is not None:
                        saved = report.saved
                        notes = [] if saved.verified else ["not verified: no checksum was sent"]
                        pruned, problem = await self._record(job, saved)
                        notes += [problem] if problem else []
                        job = job.ended(
                            JobState.COMPLETE,
                            self.now(),
                            result_path=saved.path,
                            size=saved.size,
                            sha256=saved.sha256,
                            verified=saved.verified,
                            pruned=pruned,
                            note="; ".join(notes) or None,
                        )
                    yield job
        except DownloadMismatch as error:
            raise JobError(str(error), corrupt_path=error.corrupt_path) from None
        except DownloadError as error:
            raise JobError(str(error)) from None

    async def _record(self, job: Job, saved: SavedFile) -> tuple[tuple[Path, ...], str | None]:
        """Record the saved file in the library, then apply retention: the files retention
        deleted, and what went wrong (None: nothing). A library that cannot be written leaves
        the backup as good as it is, and the job's note says so."""
        library = self.library
        if library is None:
            return (), None
        try:
            await asyncio.to_thread(
                library.record, job.assistant_name, saved.path, saved.size, saved.sha256, job.id
            )
        except RoostError as error:
            log.warning("backup %s not recorded: %s", saved.path, error)
            return (), f"not recorded in the backup library: {error_text(error)}"
        try:
            deleted = await asyncio.to_thread(library.retain, job.assistant_name)
        except RoostError as error:
            log.warning("retention after %s: %s", saved.path, error)
            return (), f"retention not applied: {error_text(error)}"
        return tuple(record.path for record in deleted), None

    async def _refuse_unless_success(self, response: httpx.Response, what: str) -> None:
        if response.is_success:
            return
        answer = await self.refusal_of(response)
        if response.status_code == 409:
            raise in_progress(answer)
        if response.status_code == 401:
            raise JobError(
                f"the {what} was refused (401) with a fresh read of the token; renew the"
                " assistant's guardian token: vellum gateway token refresh"
            )
        raise JobError(
            f"the {what} failed: the runtime answered {response.status_code}{answer_detail(answer)}"
        )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
