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
import random
import re
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from services.core.clock import utc_now
from services.core.errors import RoostError
from services.core.http import (
    CONNECT_TIMEOUT,
    AnswerError,
    TransferLimits,
    answer_detail,
    error_body,
    parse_json,
    read_body,
    send,
    timeout,
    timeout_text,
)
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
from services.jobs.polling import (
    FailureKind,
    PollFailure,
    PollPolicy,
    RuntimeJobStatus,
    Verdict,
    failure_for_status,
    is_sha256,
    poll_runtime_job,
)
from services.jobs.record import Job, JobKind, JobRoute, JobState, new_job_id
from services.jobs.store import end_interrupted
from services.vellum.auth import AuthUnavailable, RuntimeEndpoint

log = logging.getLogger(__name__)

MANIFEST_HEADER = "X-Vbundle-Manifest-Sha256"
DEFAULT_DESCRIPTION = "roost backup"
MAX_ANSWER_BYTES = 1 << 20
"""JSON answers (signed URLs, job status, errors) are small; anything past this is not one."""
_IN_PROGRESS = re.compile(r"in progress:\s*([A-Za-z0-9._:-]+)", re.IGNORECASE)


class ExportError(RoostError):
    """Ends a job: its message is the job's error."""

    def __init__(self, message: str, state: JobState = JobState.FAILED, **changes: Any) -> None:
        super().__init__(message)
        self.state = state
        self.changes = changes
        """More fields of the final snapshot, e.g. `in_progress_job_id`."""


def migrations_url(target: RuntimeEndpoint, sub: str) -> str:
    return target.url(f"migrations/{sub}")


def signed_url_endpoint(target: RuntimeEndpoint) -> str:
    """Signed URLs are asked of the runtime itself, for managed assistants too."""
    return f"{target.runtime_url.rstrip('/')}/v1/migrations/signed-url/"


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


def in_progress_job_id(body: object) -> str | None:
    """The running export's id from a 409 body: `{error:{code, job_id}}`, flat `{code, job_id}`,
    or the real runtime's `{error:{code, message:"Export already in progress: <id>"}}`."""
    if not isinstance(body, dict):
        return None
    error = body.get("error")
    nested = error if isinstance(error, dict) else {}
    for job_id in (nested.get("job_id"), body.get("job_id")):
        if isinstance(job_id, str) and job_id:
            return job_id
    for message in (nested.get("message"), body.get("message"), error, body.get("detail")):
        if isinstance(message, str) and (match := _IN_PROGRESS.search(message)):
            return match[1]
    return None


@dataclass(frozen=True)
class Timeouts:
    connect: float = CONNECT_TIMEOUT
    request: float = 30.0
    """A whole JSON request: signed URLs, starting a job, one poll."""
    export: float = 120.0
    """A synchronous export: the runtime builds the archive before it answers, and no read of
    it may wait longer than this."""
    transfer: TransferLimits = field(default_factory=TransferLimits)
    """Every archive's body (a synchronous export's, a bucket download's): a stall (too few
    bytes in a window) or the deadline ends it."""


class Exporter:
    """Runs backups with one HTTP client. Clocks, sleep and randomness are injectable."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        description: str = DEFAULT_DESCRIPTION,
        policy: PollPolicy | None = None,
        timeouts: Timeouts | None = None,
        now: Callable[[], datetime] = utc_now,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rand: Callable[[], float] = random.random,
        library: BackupLibrary | None = None,
    ) -> None:
        self.http = http
        self.library = library
        """Where each saved backup is recorded, and retention applied (None: nowhere)."""
        self.description = description
        self.policy = policy or PollPolicy()
        self.timeouts = timeouts or Timeouts()
        self.now = now
        self.clock = clock
        self.sleep = sleep
        self.rand = rand

    def new_job(self, target: RuntimeEndpoint, destination: Path) -> Job:
        started = self.now()
        return Job(
            id=new_job_id(started),
            kind=JobKind.BACKUP,
            assistant_id=target.assistant_id,
            assistant_name=target.name,
            route=JobRoute.SIGNED_URL if target.managed else JobRoute.SYNC,
            state=JobState.STARTING,
            destination=destination,
            started_at=started,
        )

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

    async def _run(self, job: Job, steps: AsyncGenerator[Job, None]) -> AsyncGenerator[Job, None]:
        """Yield each step's snapshot; turn the failure that ends a job into its last one."""
        yield job
        try:
            async with contextlib.aclosing(steps):
                async for job in steps:
                    yield job
        except ExportError as error:
            yield job.ended(error.state, self.now(), str(error), **error.changes)
        except AuthUnavailable as error:
            yield job.ended(JobState.FAILED, self.now(), f"no credentials: {error}")

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
            response = await self._send(request, "the export")
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
        upload = await self._call(target, signed_url_endpoint(target), {"operation": "upload"})
        upload_url, bundle_key = upload.get("url"), upload.get("bundle_key")
        if not isinstance(upload_url, str) or not isinstance(bundle_key, str):
            raise ExportError("the runtime sent no upload URL")
        started = await self._call(
            target,
            migrations_url(target, "export-to-gcs"),
            {"upload_url": upload_url, "description": self.description},
        )
        runtime_job_id = started.get("job_id")
        if not isinstance(runtime_job_id, str) or not runtime_job_id:
            raise ExportError("the runtime started an export but sent no job id")
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
        assert job.runtime_job_id is not None
        url = migrations_url(target, f"jobs/{quote(job.runtime_job_id, safe='')}")

        async def fetch() -> RuntimeJobStatus:
            return RuntimeJobStatus.parse(await self._poll_once(target, url))

        async def refresh_auth() -> None:
            try:
                await target.auth.refresh()
            except AuthUnavailable as error:
                raise PollFailure(FailureKind.PERMANENT, f"no credentials: {error}") from None

        outcomes = poll_runtime_job(
            fetch,
            refresh_auth,
            policy=self.policy,
            clock=self.clock,
            sleep=self.sleep,
            rand=self.rand,
        )
        status: RuntimeJobStatus | None = None
        async with contextlib.aclosing(outcomes):
            async for outcome in outcomes:
                job = job.with_poll(self.now(), outcome.text)
                if outcome.verdict is Verdict.WAITING:
                    yield job
                    continue
                if outcome.verdict is not Verdict.COMPLETE:
                    state = JobState.LOST if outcome.verdict is Verdict.LOST else JobState.FAILED
                    error = outcome.error or outcome.text
                    if state is JobState.LOST:
                        error = (
                            f"{error}: the runtime forgot the job (restarted, or it ended long ago)"
                        )
                    yield job
                    raise ExportError(error, state)
                status = outcome.status
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
            answer = await self._call(target, signed_url_endpoint(target), ask)
            url = answer.get("url")
            if not isinstance(url, str) or not url:
                raise ExportError("the runtime sent no download URL")
            try:
                request = self.http.build_request("GET", url, timeout=limits)
            except (httpx.InvalidURL, httpx.UnsupportedProtocol):
                raise ExportError("the runtime sent an invalid download URL") from None
            response = await self._send(request, "the download")
            async with contextlib.aclosing(response):
                if response.status_code in (401, 403):
                    if attempt == 1:
                        continue
                    raise ExportError(
                        f"the bucket refused the download link ({response.status_code}):"
                        " it has expired or was revoked; retry the backup"
                    )
                if not response.is_success:
                    raise ExportError(
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
            raise ExportError(str(error), corrupt_path=error.corrupt_path) from None
        except DownloadError as error:
            raise ExportError(str(error)) from None

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

    async def _call(
        self, target: RuntimeEndpoint, url: str, body: Mapping[str, object]
    ) -> dict[str, Any]:
        """POST a JSON request; a 401 refreshes the credentials once. The answer must be a 2xx
        JSON object; a 409 ends the job naming the export in progress."""
        headers = await target.auth.headers()
        for attempt in (1, 2):
            status, answer = await self._json_request("POST", url, headers, body)
            if status == 401 and attempt == 1:
                headers = await target.auth.refresh()
                continue
            if status == 409:
                raise _in_progress(answer)
            if not 200 <= status < 300:
                raise ExportError(f"the runtime answered {status}{answer_detail(answer)}")
            if not isinstance(answer, dict):
                raise ExportError("the runtime's answer is not a JSON object")
            return answer
        raise AssertionError("unreachable")  # pragma: no cover

    async def _poll_once(self, target: RuntimeEndpoint, url: str) -> bytes:
        try:
            headers = await target.auth.headers()
        except AuthUnavailable as error:
            # Transient: past its cache the platform client looks the organization up again,
            # and one failed lookup must not end an export that may be nearly done.
            raise PollFailure(FailureKind.TRANSIENT, f"no credentials: {error}") from None
        try:
            status, body = await self._exchange("GET", url, headers)
        except (TimeoutError, httpx.TimeoutException):
            message = f"no answer within {self.timeouts.request:g} s"
            raise PollFailure(FailureKind.TRANSIENT, message) from None
        except (httpx.HTTPError, httpx.InvalidURL) as error:
            reason = error_text(error)
            raise PollFailure(FailureKind.TRANSIENT, f"runtime unreachable ({reason})") from None
        except AnswerError as error:
            raise PollFailure(FailureKind.PERMANENT, str(error)) from None
        if not 200 <= status < 300:
            raise failure_for_status(status)
        return body

    async def _json_request(
        self, method: str, url: str, headers: Mapping[str, str], body: Mapping[str, object]
    ) -> tuple[int, object]:
        """The status and the parsed answer (None when it is not JSON)."""
        try:
            status, answer = await self._exchange(method, url, headers, body)
        except (TimeoutError, httpx.TimeoutException):
            raise ExportError(
                f"the runtime did not answer within {self.timeouts.request:g} s"
            ) from None
        except (httpx.HTTPError, httpx.InvalidURL) as error:
            reason = error_text(error)
            refused = isinstance(error, httpx.ConnectError)
            raise ExportError(
                f"the runtime is unreachable ({reason})", unreachable=refused
            ) from None
        except AnswerError as error:
            raise ExportError(f"the runtime's answer was refused: {error}") from None
        return status, parse_json(answer)

    async def _exchange(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: Mapping[str, object] | None = None,
    ) -> tuple[int, bytes]:
        """One small request within `timeouts.request`: its status and its body (capped)."""
        # httpx's errors pass through: callers turn them into their own, `from None` (an httpx
        # error holds the request, and so its credentials).
        seconds = self.timeouts.request
        request = self.http.build_request(
            method,
            url,
            headers=headers,
            json=body,
            timeout=timeout(seconds, connect=self.timeouts.connect),
        )
        async with asyncio.timeout(seconds):
            response = await send(self.http, request)
            async with contextlib.aclosing(response):
                return response.status_code, await read_body(response, MAX_ANSWER_BYTES)

    async def _send(self, request: httpx.Request, what: str) -> httpx.Response:
        # `from None`: an httpx error holds the request, and so its credentials or signed URL.
        try:
            return await send(self.http, request)
        except httpx.TimeoutException as error:
            raise ExportError(
                f"{what} got no answer within {timeout_text(error, request)}"
            ) from None
        except httpx.HTTPError as error:
            reason = error_text(error)
            refused = isinstance(error, httpx.ConnectError)
            raise ExportError(
                f"{what} failed: unreachable ({reason})", unreachable=refused
            ) from None

    async def _refuse_unless_success(self, response: httpx.Response, what: str) -> None:
        if response.is_success:
            return
        answer = parse_json(await error_body(response, MAX_ANSWER_BYTES))
        if response.status_code == 409:
            raise _in_progress(answer)
        if response.status_code == 401:
            raise ExportError(
                f"the {what} was refused (401) with a fresh read of the token; renew the"
                " assistant's guardian token: vellum gateway token refresh"
            )
        raise ExportError(
            f"the {what} failed: the runtime answered {response.status_code}{answer_detail(answer)}"
        )


def _in_progress(answer: object) -> ExportError:
    job_id = in_progress_job_id(answer)
    if job_id is None:
        return ExportError("another export is already in progress on the runtime")
    return ExportError(
        f"another export is already in progress on the runtime: {job_id}",
        in_progress_job_id=job_id,
    )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
