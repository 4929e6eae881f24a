"""Polling a runtime's migration job (docs/protocol.md §4).

`poll_runtime_job` follows a runtime's job with the reference CLI's policy
(`cli/src/lib/job-polling.ts`) plus jitter, with the clock, the sleep and the random source
injectable so the policy is tested without waiting.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType

from services.core.errors import RoostError
from services.core.safe_text import printable

AUTHENTICATION_REFUSED = "the runtime refused roost's credentials"
JOB_NOT_FOUND = "Migration job not found"
JOB_FAILED_SILENTLY = "Job failed without an error message"
WAITING_STATUSES = frozenset({"pending", "processing"})


@dataclass(frozen=True)
class PollPolicy:
    """The reference policy; `jitter` spreads polls by up to this fraction either way."""

    interval: float = 2.0
    deadline: float = 60 * 60.0
    max_auth_refreshes: int = 3
    max_transient_errors: int = 5
    jitter: float = 0.1


class FailureKind(Enum):
    AUTH = "auth"
    """401: refresh the credentials and poll again."""
    NOT_FOUND = "not found"
    """The runtime does not know the job: permanent."""
    TRANSIENT = "transient"
    """429, 5xx, network trouble, a garbled answer: poll again later."""
    PERMANENT = "permanent"


class PollFailure(RoostError):
    """One poll got no usable status; `kind` decides what happens next."""

    def __init__(self, kind: FailureKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def failure_for_status(code: int) -> PollFailure:
    """The reference classification of a non-2xx status."""
    if code == 401:
        return PollFailure(FailureKind.AUTH, "401 unauthorized")
    if code == 404:
        return PollFailure(FailureKind.NOT_FOUND, JOB_NOT_FOUND)
    if code == 429 or code >= 500:
        return PollFailure(FailureKind.TRANSIENT, f"the runtime answered {code}")
    return PollFailure(FailureKind.PERMANENT, f"the runtime answered {code}")


@dataclass(frozen=True)
class RuntimeJobStatus:
    """A job status as the runtime sent it, read leniently: unknown keys are kept in `raw`."""

    status: str
    job_id: str | None = None
    error: str | None = None
    result: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}))
    raw: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}), repr=False)

    @property
    def result_size(self) -> int | None:
        size = self.result.get("size")
        return size if isinstance(size, int) and not isinstance(size, bool) and size >= 0 else None

    @property
    def result_sha256(self) -> str | None:
        """`sha256`, else `manifest_sha256` (both seen in the wild), when it is 64 hex digits."""
        for key in ("sha256", "manifest_sha256"):
            value = self.result.get(key)
            if isinstance(value, str) and is_sha256(value):
                return value.lower()
        return None

    @classmethod
    def parse(cls, body: bytes) -> RuntimeJobStatus:
        """Raises a TRANSIENT PollFailure when the answer is not a job status (a proxy's error
        page, a half-written body): the next poll may well get a good one."""
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):
            raise PollFailure(
                FailureKind.TRANSIENT, "the runtime sent a status that is not JSON"
            ) from None
        status = data.get("status") if isinstance(data, dict) else None
        if not isinstance(data, dict) or not isinstance(status, str) or not status:
            raise PollFailure(FailureKind.TRANSIENT, "the runtime sent a status without `status`")
        job_id, error, result = data.get("job_id"), data.get("error"), data.get("result")
        if isinstance(error, dict):
            error = error.get("message")
        return cls(
            status=status,
            job_id=job_id if isinstance(job_id, str) else None,
            error=printable(error) if isinstance(error, str) and error else None,
            result=MappingProxyType(dict(result) if isinstance(result, dict) else {}),
            raw=MappingProxyType(data),
        )


def is_sha256(value: str) -> bool:
    return len(value) == 64 and all(char in "0123456789abcdefABCDEF" for char in value)


class Verdict(Enum):
    WAITING = "waiting"
    """Not finished: another poll follows."""
    COMPLETE = "complete"
    FAILED = "failed"
    """The job failed, or roost gave up on it (see `error`)."""
    LOST = "lost"


@dataclass(frozen=True)
class PollOutcome:
    verdict: Verdict
    text: str
    """What this poll found, in words for the job's poll log."""
    status: RuntimeJobStatus | None = None
    error: str | None = None
    """Why, when the verdict is FAILED or LOST."""


async def poll_runtime_job(
    fetch: Callable[[], Awaitable[RuntimeJobStatus]],
    refresh_auth: Callable[[], Awaitable[None]],
    *,
    label: str = "export job",
    policy: PollPolicy | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    rand: Callable[[], float] = random.random,
) -> AsyncGenerator[PollOutcome, None]:
    """Poll until the job completes, fails, is lost, or roost gives up; one outcome per poll.

    The first poll is at once, the next ones `interval` apart (with jitter). `fetch` raises
    PollFailure when a poll gets no status. A 401 refreshes the credentials (`refresh_auth`,
    which may raise PollFailure itself) and polls again at once, at most `max_auth_refreshes`
    times in a row; more than `max_transient_errors` transient failures in a row, a permanent
    one, or the deadline, end it as FAILED. A status roost does not know is not an error: the
    job keeps being polled (the deadline still bounds it), so a newer runtime's new intermediate
    states do not break backups. Any good poll resets both counters.
    """
    policy = policy or PollPolicy()
    started = clock()
    auth_refreshes = transient = 0
    while True:
        try:
            status = await fetch()
        except PollFailure as failure:
            if failure.kind is FailureKind.AUTH:
                auth_refreshes += 1
                if auth_refreshes > policy.max_auth_refreshes:
                    text = f"{failure} after {policy.max_auth_refreshes} credential refreshes"
                    yield PollOutcome(Verdict.FAILED, text, error=AUTHENTICATION_REFUSED)
                    return
                limit = policy.max_auth_refreshes
                yield PollOutcome(
                    Verdict.WAITING, f"{failure}: refreshing credentials ({auth_refreshes}/{limit})"
                )
                try:
                    await refresh_auth()
                except PollFailure as refusal:
                    yield PollOutcome(Verdict.FAILED, str(refusal), error=str(refusal))
                    return
                continue
            if failure.kind is FailureKind.NOT_FOUND:
                yield PollOutcome(Verdict.LOST, str(failure), error=str(failure))
                return
            if failure.kind is FailureKind.PERMANENT:
                yield PollOutcome(Verdict.FAILED, str(failure), error=str(failure))
                return
            transient += 1
            if transient > policy.max_transient_errors:
                text = f"{failure} ({transient} transient errors in a row)"
                yield PollOutcome(Verdict.FAILED, text, error=text)
                return
            outcome = PollOutcome(
                Verdict.WAITING, f"{failure} (transient {transient}/{policy.max_transient_errors})"
            )
        else:
            auth_refreshes = transient = 0
            if status.status == "complete":
                yield PollOutcome(Verdict.COMPLETE, _describe(status), status)
                return
            if status.status == "failed":
                error = status.error or JOB_FAILED_SILENTLY
                yield PollOutcome(Verdict.FAILED, f"failed: {error}", status, error)
                return
            outcome = PollOutcome(Verdict.WAITING, _describe(status), status)
        if clock() - started >= policy.deadline:
            error = f"Timed out waiting for {label} after {round(policy.deadline)}s"
            yield PollOutcome(Verdict.FAILED, f"{outcome.text}; {error}", outcome.status, error)
            return
        yield outcome
        await sleep(policy.interval * (1 + policy.jitter * (2 * rand() - 1)))


def _describe(status: RuntimeJobStatus) -> str:
    if status.status == "complete":
        size = status.result_size
        return "complete" if size is None else f"complete ({size} bytes)"
    if status.status in WAITING_STATUSES:
        return status.status
    return f"status {status.status!r}, unknown to roost: still waiting"
