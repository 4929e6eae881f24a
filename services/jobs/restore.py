"""Restores (imports) of assistants, for every kind (docs/protocol.md §4.6).

A restore is a `Job` of kind `restore`, in two phases so that a front end can ask the user in
between without this module calling back into it:

- `Restorer.prepare` (1) verifies the file against roost's record of it (services/jobs/library.py:
  a file roost did not save, or whose bytes changed, is refused unless forced); (2) has the
  runtime preflight it (`import-preflight` with the bundle as the body; for a managed assistant,
  an upload through a signed URL, then `preflight-from-gcs`) and keeps the report; a dry run
  ends there; (3) takes a safety backup of the current state (the caller's, so it is the very
  backup `Roost.backup` makes, recorded in the library like any) and requires it verified; then
  (4) ends in `AWAITING`, waiting for the user.
- `Restorer.finish` (5) imports: `import` with the bundle as the body, or `import-from-gcs`
  (a runtime job, polled like an export's). `Restorer.decline` ends an awaiting job instead.

Both are async generators of snapshots (the safety backup's own job's snapshots pass through
too, so the front end records and shows it like any backup). A failed step ends the job FAILED
with one line saying which step and what to do, and nothing after it runs: nothing is imported
after a failed step. A 409 ends it with `in_progress_job_id`: `follow` watches that import.
Every bundle sent is streamed from disk and checked against the verified size and sha256 before
its last byte goes (services/jobs/uploads.py). After a restart, an import job the runtime runs
is polled again (`resume`), as an export is.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx

from services.core.errors import RoostError
from services.core.http import AnswerError, answer_detail, parse_json, read_body, timeout
from services.jobs.library import BackupCheck, BackupLibrary, LibraryError, Verification
from services.jobs.record import Job, JobKind, JobRoute, JobState
from services.jobs.reports import ImportOutcome, Preflight, Problem
from services.jobs.runtime import (
    MAX_ANSWER_BYTES,
    JobError,
    Refusal,
    RuntimeJobs,
    in_progress,
    migrations_url,
    new_runtime_job,
    signed_url_endpoint,
)
from services.jobs.store import end_interrupted
from services.jobs.uploads import BundleBody, BundleChanged
from services.vellum.auth import RuntimeEndpoint

REPORT_BYTES = 8 << 20
"""A preflight report lists every file of the bundle: larger than other JSON answers."""
PROGRESS_INTERVAL = 0.2
"""Seconds between two progress snapshots while a bundle is sent."""
UPLOAD_MARGIN = timedelta(minutes=5)
"""A managed bundle is uploaded again before the import when its link expires sooner."""
PROBLEMS_SHOWN = 3
"""Problems named in a job's one-line error (the report keeps them all)."""

T = TypeVar("T")
SafetyBackup = Callable[[], AsyncGenerator[Job, None]]
"""Starts the safety backup: a backup job's snapshots."""


@dataclass(frozen=True)
class RestoreOptions:
    dry_run: bool = False
    """Stop after the preflight: nothing is backed up or imported."""
    safety_backup: bool = True
    force_unverified: bool = False
    """Restore a file roost did not record, or whose bytes changed since."""


@dataclass(frozen=True)
class _Upload:
    """Where a managed restore's bundle is in the bucket: kept in memory only (the URL is a
    signed one, a credential), for the import to use when it is still fresh."""

    url: str
    expires_at: datetime | None


class Restorer(RuntimeJobs):
    """Runs restores with one HTTP client (see `RuntimeJobs` for what else it takes)."""

    def __init__(self, http: httpx.AsyncClient, library: BackupLibrary, **options: Any) -> None:
        super().__init__(http, **options)
        self.library = library
        """What the file is checked against; it keeps retention off the file while a restore
        reads it (a safety backup applies retention)."""
        self._uploads: dict[str, _Upload] = {}

    def new_job(self, target: RuntimeEndpoint, source: Path, dry_run: bool = False) -> Job:
        return new_runtime_job(JobKind.RESTORE, target, source, self.now(), dry_run)

    def prepare(
        self,
        target: RuntimeEndpoint,
        source: Path,
        options: RestoreOptions,
        safety: SafetyBackup | None,
    ) -> AsyncGenerator[Job, None]:
        """Steps 1 to 4: verify, preflight, safety backup (`safety`; None when the options
        skip it); the job ends COMPLETE after a dry run, else waits in AWAITING."""
        job = self.new_job(target, source, options.dry_run)
        return self._run(job, self._until_confirmation(target, job, options, safety))

    def finish(self, target: RuntimeEndpoint, job: Job) -> AsyncGenerator[Job, None]:
        """Step 5, once the user confirmed: import what `prepare` checked. Raises RoostError
        when `job` does not await confirmation."""
        if job.state is not JobState.AWAITING:
            raise RoostError(f"restore {job.id} is {job.state.value}, not awaiting confirmation")
        return self._run(job, self._import(target, job))

    def decline(self, job: Job) -> Job:
        """The user said no: the job ends CANCELLED, nothing imported."""
        self._uploads.pop(job.id, None)
        return job.ended(JobState.CANCELLED, self.now(), note="not confirmed: nothing was imported")

    def follow(
        self, target: RuntimeEndpoint, runtime_job_id: str, source: Path
    ) -> AsyncGenerator[Job, None]:
        """Follow an import the runtime already runs (the id a 409 named) to its end."""
        job = replace(
            self.new_job(target, source),
            route=JobRoute.SIGNED_URL,
            state=JobState.PROCESSING,
            runtime_job_id=runtime_job_id,
            note=f"following import {runtime_job_id}, started elsewhere",
        )
        return self._run(job, self._poll_import(target, job))

    def resume(self, target: RuntimeEndpoint, job: Job) -> AsyncGenerator[Job, None]:
        """Carry on with a restore whose process ended before it did: an import job the runtime
        runs is polled again (404: LOST); any other step cannot go on, and fails saying so."""
        return self._run(job, self._resume(target, job))

    async def _resume(self, target: RuntimeEndpoint, job: Job) -> AsyncGenerator[Job, None]:
        if job.state.finished:
            return
        if job.runtime_job_id is None:
            yield end_interrupted(job, self.now(), None)
            return
        steps = self._poll_import(target, replace(job, state=JobState.PROCESSING))
        async with contextlib.aclosing(steps):
            async for snapshot in steps:
                yield snapshot

    # Preparing ------------------------------------------------------------------------------

    async def _until_confirmation(
        self,
        target: RuntimeEndpoint,
        job: Job,
        options: RestoreOptions,
        safety: SafetyBackup | None,
    ) -> AsyncGenerator[Job, None]:
        """`_prepare`'s steps; a bundle uploaded for a restore that ends before the user's
        answer (a dry run, a failure) is forgotten: only an awaiting one is imported."""
        awaiting = False
        try:
            async with contextlib.aclosing(self._prepare(target, job, options, safety)) as steps:
                async for snapshot in steps:
                    if snapshot.id == job.id:
                        awaiting = snapshot.state is JobState.AWAITING
                    yield snapshot
        finally:
            if not awaiting:
                self._uploads.pop(job.id, None)

    async def _prepare(
        self,
        target: RuntimeEndpoint,
        job: Job,
        options: RestoreOptions,
        safety: SafetyBackup | None,
    ) -> AsyncGenerator[Job, None]:
        job = replace(job, state=JobState.VERIFYING)
        yield job
        check: BackupCheck | None = None
        checking = self._verify(job)
        async with contextlib.aclosing(checking):
            async for job, report in checking:
                check = report
                yield job
        assert check is not None
        job = _verified(job, check, options.force_unverified)
        yield job
        with _step("preflight", target):
            job = replace(job, state=JobState.PREFLIGHT)
            yield job
            steps = self._preflight(target, job)
            async with contextlib.aclosing(steps):
                async for job in steps:
                    yield job
        assert job.preflight is not None
        if not job.preflight.can_import:
            problems = _problems(job.preflight.errors + job.preflight.conflicts)
            raise JobError(f"preflight: {target.name} cannot import this bundle: {problems}")
        if options.dry_run:
            yield job.ended(JobState.COMPLETE, self.now(), note="dry run: nothing was imported")
            return
        if safety is None:
            job = replace(job, note=_joined(job.note, "no safety backup was taken (as asked)"))
        else:
            job = replace(job, state=JobState.BACKING_UP)
            yield job
            backup: Job | None = None
            with self.library.holding(job.destination):
                async with contextlib.aclosing(safety()) as snapshots:
                    async for backup in snapshots:
                        yield backup
            job = _with_safety_backup(job, backup)
        yield replace(job, state=JobState.AWAITING, bytes_done=0)

    async def _verify(self, job: Job) -> AsyncGenerator[tuple[Job, BackupCheck | None], None]:
        """Hash the file against its record (services/jobs/library.py), in a thread, a chunk at
        a time: progress snapshots, the last with the check."""
        reports = self.library.verifying(job.destination)
        reported = self.clock()
        try:
            while (report := await asyncio.to_thread(next, reports, None)) is not None:
                job = replace(job, bytes_done=report.done, bytes_total=report.total)
                if report.check is not None or self.clock() - reported >= PROGRESS_INTERVAL:
                    reported = self.clock()
                    yield job, report.check
        except LibraryError as error:
            raise JobError(f"verify: {error}") from None

    async def _preflight(self, target: RuntimeEndpoint, job: Job) -> AsyncGenerator[Job, None]:
        if target.managed:
            steps = self._upload(target, job)
            async with contextlib.aclosing(steps):
                async for job in steps:
                    yield job
            job = replace(job, state=JobState.PREFLIGHT)
            yield job
            answer = await self.call(
                target,
                migrations_url(target, "preflight-from-gcs"),
                {"bundle_url": self._uploads[job.id].url},
                _refusal(target),
            )
        else:
            answer = {}
            sent = self._post_bundle(target, job, "import-preflight")
            async with contextlib.aclosing(sent):
                async for job, reply in sent:
                    if reply is None:
                        yield job
                    else:
                        answer = reply
        yield replace(job, preflight=Preflight.parse(answer))

    # Importing ------------------------------------------------------------------------------

    async def _import(self, target: RuntimeEndpoint, job: Job) -> AsyncGenerator[Job, None]:
        with self.library.holding(job.destination), _step("import", target):
            if not target.managed:
                job = replace(job, state=JobState.IMPORTING, bytes_done=0)
                yield job
                answer: dict[str, Any] = {}
                sent = self._post_bundle(target, job, "import")
                async with contextlib.aclosing(sent):
                    async for job, reply in sent:
                        if reply is None:
                            yield job
                        else:
                            answer = reply
                yield _imported(target, job, ImportOutcome.parse(answer), self.now())
                return
            upload = self._uploads.get(job.id)
            if upload is None or _expiring(upload, self.now()):
                steps = self._upload(target, job)
                async with contextlib.aclosing(steps):
                    async for job in steps:
                        yield job
            started = await self.call(
                target,
                migrations_url(target, "import-from-gcs"),
                {"bundle_url": self._uploads.pop(job.id).url},
                _refusal(target),
            )
            runtime_job_id = started.get("job_id")
            if not isinstance(runtime_job_id, str) or not runtime_job_id:
                raise JobError("the runtime started an import but sent no job id")
            job = replace(job, state=JobState.PROCESSING, runtime_job_id=runtime_job_id)
            yield job
            steps = self._poll_import(target, job)
            async with contextlib.aclosing(steps):
                async for job in steps:
                    yield job

    async def _poll_import(self, target: RuntimeEndpoint, job: Job) -> AsyncGenerator[Job, None]:
        with _step("import", target):
            polls = self.poll(target, job, "import job")
            result: dict[str, object] = {}
            async with contextlib.aclosing(polls):
                async for job, status in polls:
                    if status is not None:
                        result = dict(status.result)
                    yield job
            # A job that completed succeeded unless its result says otherwise.
            outcome = ImportOutcome.parse({"success": True, **result})
            yield _imported(target, job, outcome, self.now())

    # Sending the bundle ---------------------------------------------------------------------

    async def _post_bundle(
        self, target: RuntimeEndpoint, job: Job, sub: str
    ) -> AsyncGenerator[tuple[Job, dict[str, Any] | None], None]:
        """POST the bundle as the body of `sub` (a 401 reads the credentials again once, and
        sends it again): progress snapshots (with None), then the last with the answer, which
        must be a JSON object."""
        headers = await target.auth.headers()
        url = migrations_url(target, sub)
        for attempt in (1, 2):
            body = _body(job)
            request = self.http.build_request(
                "POST",
                url,
                headers={**headers, **body.headers},
                content=body,
                timeout=timeout(self.timeouts.export, connect=self.timeouts.connect),
            )
            reply: tuple[int, object] | None = None
            sent = self._transfer(job, body, self._exchange_bundle(request))
            async with contextlib.aclosing(sent):
                async for job, reply in sent:
                    if reply is None:
                        yield job, None
            assert reply is not None
            status, answer = reply
            if status == 401 and attempt == 1:
                headers = await target.auth.refresh()
                continue
            if not 200 <= status < 300:
                raise _refusal(target)(status, answer)
            if not isinstance(answer, dict):
                raise JobError("the runtime's answer is not a JSON object")
            yield job, answer
            return

    async def _exchange_bundle(self, request: httpx.Request) -> tuple[int, object]:
        response = await self.send(request, "sending the bundle")
        async with contextlib.aclosing(response):
            if not response.is_success:
                return response.status_code, await self.refusal_of(response)
            try:
                return response.status_code, parse_json(await read_body(response, REPORT_BYTES))
            except AnswerError as error:
                raise JobError(f"the runtime's answer was refused: {error}") from None

    async def _upload(self, target: RuntimeEndpoint, job: Job) -> AsyncGenerator[Job, None]:
        """Put the bundle in the bucket through a signed upload URL (no credentials go there)."""
        job = replace(job, state=JobState.UPLOADING, bytes_done=0, bytes_total=job.size)
        yield job
        answer = await self.call(
            target, signed_url_endpoint(target), {"operation": "upload"}, _refusal(target)
        )
        url, bundle_key = answer.get("url"), answer.get("bundle_key")
        if not isinstance(url, str) or not url:
            raise JobError("upload: the runtime sent no upload URL")
        body = _body(job)
        try:
            request = self.http.build_request(
                "PUT",
                url,
                headers=body.headers,
                content=body,
                timeout=timeout(self.timeouts.export, connect=self.timeouts.connect),
            )
        except (httpx.InvalidURL, httpx.UnsupportedProtocol):
            raise JobError("upload: the runtime sent an invalid upload URL") from None
        status: int | None = None
        sent = self._transfer(job, body, self._put(request))
        async with contextlib.aclosing(sent):
            async for job, status in sent:
                if status is None:
                    yield job
        if status in (401, 403):
            raise JobError(
                f"upload: the bucket refused the upload link ({status}): it expired or was"
                " revoked; start the restore again"
            )
        if status is None or not 200 <= status < 300:
            raise JobError(f"upload: the bucket answered {status}")
        self._uploads[job.id] = _Upload(url, _time(answer.get("expires_at")))
        yield replace(job, bundle_key=bundle_key if isinstance(bundle_key, str) else None)

    async def _put(self, request: httpx.Request) -> int:
        response = await self.send(request, "the upload")
        async with contextlib.aclosing(response):
            with contextlib.suppress(httpx.HTTPError, AnswerError):
                await read_body(response, MAX_ANSWER_BYTES)
            return response.status_code

    async def _transfer(
        self, job: Job, body: BundleBody, sending: Awaitable[T]
    ) -> AsyncGenerator[tuple[Job, T | None], None]:
        """Run `sending` (a request whose body is `body`): a progress snapshot every
        `PROGRESS_INTERVAL` while it goes, then the last one with its result. The whole transfer
        is bounded by the transfer deadline."""
        task = asyncio.ensure_future(_within(self.timeouts.transfer.deadline, sending))
        try:
            while True:
                done, _ = await asyncio.wait([task], timeout=PROGRESS_INTERVAL)
                job = replace(job, bytes_done=body.sent, bytes_total=body.size)
                if done:
                    break
                yield job, None
            try:
                result = task.result()
            except BundleChanged as error:
                raise JobError(str(error)) from None
            except TimeoutError:
                deadline = self.timeouts.transfer.deadline
                raise JobError(f"the bundle was still being sent after {deadline:g} s") from None
            yield job, result
        finally:
            if not task.done():
                task.cancel()
                await asyncio.wait([task])


async def _within(seconds: float, work: Awaitable[T]) -> T:
    async with asyncio.timeout(seconds):
        return await work


def _body(job: Job) -> BundleBody:
    assert job.size is not None and job.sha256 is not None  # set by the verification
    return BundleBody(job.destination, job.size, job.sha256)


def _verified(job: Job, check: BackupCheck, force: bool) -> Job:
    """The job once its file is checked: refused (JobError) when roost cannot vouch for it,
    unless forced, and saying then what was risked."""
    path, name = job.destination, job.assistant_name
    verification = check.verification
    if verification is Verification.MISSING or check.size is None or check.sha256 is None:
        raise JobError(f"verify: {path} is not there (moved or deleted): nothing to restore")
    risk = {
        Verification.CHANGED: "its bytes differ from what roost recorded when it saved it"
        " (damaged, or replaced)",
        Verification.UNRECORDED: "roost did not save it, so nothing vouches for what it holds",
    }.get(verification)
    changes: dict[str, Any] = {
        "verification": str(verification),
        "size": check.size,
        "sha256": check.sha256,
        "bytes_total": check.size,
        "verified": verification is Verification.VERIFIED,
    }
    if risk is not None and not force:
        raise JobError(
            f"verify: {path} is not a verified backup: {risk}. Restoring it anyway"
            f" (--force-unverified) may put damaged or foreign data into {name},"
            " overwriting what it has now",
            **changes,
        )
    note = f"unverified: {risk}; restored anyway (--force-unverified)" if risk else None
    record = check.record
    if record is not None and record.assistant not in (job.assistant_id, name):
        note = _joined(note, f"this is a backup of {record.assistant}, restored into {name}")
    return replace(job, note=note, **changes)


def _with_safety_backup(job: Job, backup: Job | None) -> Job:
    """The job with its safety backup, which must be saved and verified (else JobError)."""
    if backup is None:
        raise JobError("safety backup: it did not start; nothing was imported")
    if backup.state is JobState.COMPLETE and backup.verified and backup.result_path is not None:
        return replace(job, safety_backup=backup.result_path, safety_job_id=backup.id)
    why = backup.error or backup.note or backup.state.value
    if backup.state is JobState.COMPLETE:
        why = f"saved but not verified ({why})"
    raise JobError(
        f"safety backup: {why}; nothing was imported. Fix that, or restore without one"
        " (--no-safety-backup)",
        safety_job_id=backup.id,
    )


def _imported(target: RuntimeEndpoint, job: Job, outcome: ImportOutcome, now: datetime) -> Job:
    """The job's end once the runtime answered the import (JobError when it says it failed)."""
    job = replace(job, outcome=outcome)
    if not outcome.success:
        why = outcome.reason or "the runtime gave no reason"
        problems = f": {_problems(outcome.errors)}" if outcome.errors else ""
        undo = (
            f"; the safety backup {job.safety_backup} holds the state before"
            if job.safety_backup
            else ""
        )
        raise JobError(
            f"import: {target.name} did not import the bundle ({why}){problems}{undo}",
            outcome=outcome,
        )
    warnings = f"{len(outcome.warnings)} warnings" if outcome.warnings else None
    return job.ended(JobState.COMPLETE, now, note=_joined(job.note, warnings))


def _refusal(target: RuntimeEndpoint) -> Refusal:
    """docs/protocol.md §4.6's words for a refused call, with what to do."""

    def refused(status: int, answer: object) -> JobError:
        if status == 409:
            return in_progress(answer, "import")
        if status in (401, 403):
            fix = (
                "run 'vellum login' to refresh"
                if target.managed
                else "renew its guardian token: vellum gateway token refresh"
            )
            return JobError(f"authentication failed ({status}); {fix}")
        if status == 404:
            if target.managed:
                return JobError(f"no managed assistant {target.assistant_id} found (404)")
            return JobError("the runtime has no such endpoint (404): it may be too old to import")
        if status in (502, 503, 504):
            return JobError(f"the assistant is unreachable ({status})", unreachable=True)
        return JobError(f"the runtime answered {status}{answer_detail(answer)}")

    return refused


@contextlib.contextmanager
def _step(name: str, target: RuntimeEndpoint) -> Iterator[None]:
    """Name the step a JobError ends the job at, and what to do when nothing answered."""
    try:
        yield
    except JobError as error:
        message = str(error)
        if not message.startswith(f"{name}:") and not message.startswith("upload:"):
            message = f"{name}: {message}"
        if error.changes.get("unreachable"):
            message += f"; try waking it first (roost wake {target.name})"
        raise JobError(message, error.state, **error.changes) from None


def _problems(problems: tuple[Problem, ...]) -> str:
    if not problems:
        return "the runtime gave no reason"
    shown = "; ".join(str(problem) for problem in problems[:PROBLEMS_SHOWN])
    more = len(problems) - PROBLEMS_SHOWN
    return shown + (f" (and {more} more)" if more > 0 else "")


def _joined(*notes: str | None) -> str | None:
    return "; ".join(note for note in notes if note) or None


def _expiring(upload: _Upload, now: datetime) -> bool:
    return upload.expires_at is not None and upload.expires_at - now < UPLOAD_MARGIN


def _time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None
