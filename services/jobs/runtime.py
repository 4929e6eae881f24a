"""Calling a runtime's migrations endpoints (docs/protocol.md §4 and §4.6): the one home of what
backups (jobs/exports.py) and restores (jobs/restore.py) share.

`RuntimeJobs` holds the HTTP client, the timeouts, the polling policy and the injectable clocks,
and makes the small calls both need: a JSON POST whose 401 reads the credentials again once
(`call`), sending a request whose transport failures become one line (`send`), and following a
runtime's own job with the reference policy (`poll`). Every failure that ends a job is a
`JobError`, whose message is the job's error and whose `changes` are more fields of its last
snapshot (`in_progress_job_id` after a 409, `unreachable` when nothing answered).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
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
from services.jobs.polling import (
    FailureKind,
    PollFailure,
    PollPolicy,
    RuntimeJobStatus,
    Verdict,
    failure_for_status,
    poll_runtime_job,
)
from services.jobs.record import Job, JobKind, JobRoute, JobState, new_job_id
from services.vellum.auth import AuthUnavailable, RuntimeEndpoint

MAX_ANSWER_BYTES = 1 << 20
"""JSON answers (signed URLs, job status, errors) are small; anything past this is not one."""
_IN_PROGRESS = re.compile(r"in progress:\s*([A-Za-z0-9._:-]+)", re.IGNORECASE)


class JobError(RoostError):
    """Ends a job: its message is the job's error."""

    def __init__(self, message: str, state: JobState = JobState.FAILED, **changes: Any) -> None:
        super().__init__(message)
        self.state = state
        self.changes = changes
        """More fields of the final snapshot, e.g. `in_progress_job_id`."""


Refusal = Callable[[int, object], JobError]
"""Turns a non-2xx answer (status, parsed body or None) into the error that ends the job."""


def migrations_url(target: RuntimeEndpoint, sub: str) -> str:
    return target.url(f"migrations/{sub}")


def signed_url_endpoint(target: RuntimeEndpoint) -> str:
    """Signed URLs are asked of the runtime itself, for managed assistants too."""
    return f"{target.runtime_url.rstrip('/')}/v1/migrations/signed-url/"


def in_progress_job_id(body: object) -> str | None:
    """The running job's id from a 409 body: `{error:{code, job_id}}`, flat `{code, job_id}`,
    or the real runtime's `{error:{code, message:"Export already in progress: <id>"}}` (an
    import's says `Import`)."""
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


def in_progress(answer: object, operation: str = "export") -> JobError:
    """The error a 409 ends a job with, naming the running `operation` to follow if it can."""
    job_id = in_progress_job_id(answer)
    if job_id is None:
        return JobError(f"another {operation} is already in progress on the runtime")
    return JobError(
        f"another {operation} is already in progress on the runtime: {job_id}",
        in_progress_job_id=job_id,
    )


def runtime_refused(status: int, answer: object) -> JobError:
    """The plain refusal: the status and whatever the answer says."""
    if status == 409:
        return in_progress(answer)
    return JobError(f"the runtime answered {status}{answer_detail(answer)}")


@dataclass(frozen=True)
class Timeouts:
    connect: float = CONNECT_TIMEOUT
    request: float = 30.0
    """A whole JSON request: signed URLs, starting a job, one poll."""
    export: float = 120.0
    """A synchronous export or import: the runtime builds (or applies) the archive before it
    answers, and no read of the answer may wait longer than this."""
    transfer: TransferLimits = field(default_factory=TransferLimits)
    """Every archive's body (a synchronous export's, a bucket download's, an upload): a stall
    (too few bytes in a window) or the deadline ends it."""


class RuntimeJobs:
    """The calls backups and restores make of a runtime, over one HTTP client. Clocks, sleep
    and randomness are injectable, so polling is tested without waiting."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        policy: PollPolicy | None = None,
        timeouts: Timeouts | None = None,
        now: Callable[[], datetime] = utc_now,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.http = http
        self.policy = policy or PollPolicy()
        self.timeouts = timeouts or Timeouts()
        self.now = now
        self.clock = clock
        self.sleep = sleep
        self.rand = rand

    async def _run(self, job: Job, steps: AsyncGenerator[Job, None]) -> AsyncGenerator[Job, None]:
        """Yield each step's snapshot; turn the failure that ends the job into its last one.
        Steps may pass on snapshots of other jobs they run (a restore's safety backup): the one
        that ends is always `job`."""
        yield job
        try:
            async with contextlib.aclosing(steps):
                async for snapshot in steps:
                    if snapshot.id == job.id:
                        job = snapshot
                    yield snapshot
        except JobError as error:
            yield job.ended(error.state, self.now(), str(error), **error.changes)
        except AuthUnavailable as error:
            yield job.ended(JobState.FAILED, self.now(), f"no credentials: {error}")

    async def call(
        self,
        target: RuntimeEndpoint,
        url: str,
        body: Mapping[str, object],
        refused: Refusal = runtime_refused,
    ) -> dict[str, Any]:
        """POST a JSON request; a 401 refreshes the credentials once. The answer must be a 2xx
        JSON object; anything else ends the job with `refused`'s error."""
        headers = await target.auth.headers()
        for attempt in (1, 2):
            status, answer = await self.json_request("POST", url, headers, body)
            if status == 401 and attempt == 1:
                headers = await target.auth.refresh()
                continue
            if not 200 <= status < 300:
                raise refused(status, answer)
            if not isinstance(answer, dict):
                raise JobError("the runtime's answer is not a JSON object")
            return answer
        raise AssertionError("unreachable")  # pragma: no cover

    async def poll(
        self, target: RuntimeEndpoint, job: Job, label: str
    ) -> AsyncGenerator[tuple[Job, RuntimeJobStatus | None], None]:
        """Follow the runtime's job `job.runtime_job_id` (docs/protocol.md §4): each poll's
        snapshot, with the status once it is complete (None while it waits). A failed job ends
        as a JobError (FAILED, or LOST when the runtime no longer knows it)."""
        assert job.runtime_job_id is not None
        url = migrations_url(target, f"jobs/{quote(job.runtime_job_id, safe='')}")

        async def fetch() -> RuntimeJobStatus:
            return RuntimeJobStatus.parse(await self.poll_once(target, url))

        async def refresh_auth() -> None:
            try:
                await target.auth.refresh()
            except AuthUnavailable as error:
                raise PollFailure(FailureKind.PERMANENT, f"no credentials: {error}") from None

        outcomes = poll_runtime_job(
            fetch,
            refresh_auth,
            label=label,
            policy=self.policy,
            clock=self.clock,
            sleep=self.sleep,
            rand=self.rand,
        )
        async with contextlib.aclosing(outcomes):
            async for outcome in outcomes:
                job = job.with_poll(self.now(), outcome.text)
                if outcome.verdict is Verdict.WAITING:
                    yield job, None
                    continue
                if outcome.verdict is Verdict.COMPLETE:
                    assert outcome.status is not None
                    yield job, outcome.status
                    return
                state = JobState.LOST if outcome.verdict is Verdict.LOST else JobState.FAILED
                error = outcome.error or outcome.text
                if state is JobState.LOST:
                    error = f"{error}: the runtime forgot the job (restarted, or it ended long ago)"
                yield job, None
                raise JobError(error, state)

    async def poll_once(self, target: RuntimeEndpoint, url: str) -> bytes:
        try:
            headers = await target.auth.headers()
        except AuthUnavailable as error:
            # Transient: past its cache the platform client looks the organization up again,
            # and one failed lookup must not end a job that may be nearly done.
            raise PollFailure(FailureKind.TRANSIENT, f"no credentials: {error}") from None
        try:
            status, body = await self.exchange("GET", url, headers)
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

    async def json_request(
        self, method: str, url: str, headers: Mapping[str, str], body: Mapping[str, object]
    ) -> tuple[int, object]:
        """The status and the parsed answer (None when it is not JSON)."""
        try:
            status, answer = await self.exchange(method, url, headers, body)
        except (TimeoutError, httpx.TimeoutException):
            raise JobError(
                f"the runtime did not answer within {self.timeouts.request:g} s"
            ) from None
        except (httpx.HTTPError, httpx.InvalidURL) as error:
            reason = error_text(error)
            refused = isinstance(error, httpx.ConnectError)
            raise JobError(f"the runtime is unreachable ({reason})", unreachable=refused) from None
        except AnswerError as error:
            raise JobError(f"the runtime's answer was refused: {error}") from None
        return status, parse_json(answer)

    async def exchange(
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

    async def send(self, request: httpx.Request, what: str) -> httpx.Response:
        # `from None`: an httpx error holds the request, and so its credentials or signed URL.
        try:
            return await send(self.http, request)
        except httpx.TimeoutException as error:
            raise JobError(f"{what} got no answer within {timeout_text(error, request)}") from None
        except httpx.HTTPError as error:
            reason = error_text(error)
            refused = isinstance(error, httpx.ConnectError)
            raise JobError(f"{what} failed: unreachable ({reason})", unreachable=refused) from None

    async def refusal_of(self, response: httpx.Response) -> object:
        """What came with a non-2xx answer, parsed (None when it is not JSON)."""
        return parse_json(await error_body(response, MAX_ANSWER_BYTES))


def new_runtime_job(
    kind: JobKind, target: RuntimeEndpoint, path: Path, started: datetime, dry_run: bool = False
) -> Job:
    """A backup or restore of `target` just starting: its route follows the assistant's kind
    (a managed one's goes through signed URLs and a polled runtime job); `path` is the file it
    writes (backup) or reads (restore)."""
    return Job(
        id=new_job_id(started),
        kind=kind,
        assistant_id=target.assistant_id,
        assistant_name=target.name,
        route=JobRoute.SIGNED_URL if target.managed else JobRoute.SYNC,
        state=JobState.STARTING,
        destination=path,
        started_at=started,
        dry_run=dry_run,
    )
