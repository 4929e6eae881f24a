"""Repair on connect: when reaching a local or docker assistant fails in a way that waking it
(or re-reading its guardian token) fixes, do that once, retry once, and say what was done.

This is what the native Vellum client does when connecting fails: it runs `vellum wake <id>` and
tries again. The policy, in three parts:

- `classify_failure` turns an exception into a `Diagnosis`: the cause (connection refused,
  container stopped, 401, 403, ...), the remedy (wake, renew the token, none) and why.
  A 403 is never repaired: the assistant answered and said no.
- a repair is an async callable returning a `RepairReport` (did it work, what it did):
  `docker_wake`, `local_wake` and `guardian_renewal` build the ones roost has.
- `with_repair` runs an operation; on a repairable failure it runs the matching repair once and
  the operation once more. Never more: a failure after the repair is reported, not repaired
  again, so nothing loops. It returns the value with a `RepairRecord` of what was done
  (`container stopped: woke alpha (started alpha-assistant, alpha-gateway), retried: ok`), or
  raises `RepairFailed` (a RoostError: one line, that record) when it could not be repaired.

The guardian token: the Vellum CLI leases it (`POST /v1/guardian/init`, which revokes every other
client's token, so the CLI itself never does that from an automatic repair) and refreshes it
(`POST /v1/guardian/refresh`, which rotates the refresh token: a second process replaying the old
one revokes the whole family, so the CLI refreshes under a per-assistant lock and persists the
result). roost writes no token file, so on a 401 it does what the CLI's client does first: adopt a
newer token another process left on disk; and when the one on disk has expired, it has the CLI
refresh it (`vellum gateway token refresh <id>`, lock and all). A token refused before it expired
is left alone, as the CLI does.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Generic, TypeVar

import httpx
from docker.errors import APIError, DockerException, NotFound

from services.core.errors import RoostError
from services.core.files import FileError, read_json
from services.docker.engines import Engine, describe_error
from services.docker.lifecycle import (
    Outcome,
    Step,
    last_line,
    summarize,
    wake_docker,
    wake_local,
)
from services.vellum.environment import VellumEnvironment
from services.vellum.tokens import (
    MAX_TOKEN_FILE_BYTES,
    GuardianToken,
    TokenFileError,
    read_guardian_token,
)

T = TypeVar("T")

READY_TIMEOUT = 60.0
"""How long a woken docker assistant gets to answer before the retry goes ahead anyway (the
Vellum CLI waits about as long for the gateway after `docker start`)."""
TOKEN_REFRESH_TIMEOUT = 30.0


class AssistantAsleep(RoostError):
    """Raised by an operation that finds the assistant asleep before even trying (its container
    exited, its daemon's PID file names no live process): a wake repairs it."""


class Cause(StrEnum):
    CONNECTION_REFUSED = "connection refused"
    CONTAINER_STOPPED = "container stopped"
    ASLEEP = "assistant asleep"
    UNAUTHORIZED = "unauthorized (401)"
    FORBIDDEN = "forbidden (403)"
    CONTAINER_MISSING = "container missing"
    TIMEOUT = "timed out"
    OTHER = "failed"
    """Not a failure this policy knows: `with_repair` lets the exception through unchanged."""


class Remedy(StrEnum):
    WAKE = "wake"
    RENEW_TOKEN = "renew the guardian token"
    NONE = "none"


@dataclass(frozen=True)
class Diagnosis:
    """What went wrong, whether a repair may fix it, and why (one line)."""

    cause: Cause
    remedy: Remedy
    detail: str = ""

    @property
    def repairable(self) -> bool:
        return self.remedy is not Remedy.NONE

    def __str__(self) -> str:
        return f"{self.cause}: {self.detail}" if self.detail else str(self.cause)


def classify_failure(error: BaseException) -> Diagnosis:
    """The diagnosis of an operation's exception.

    Understood: `AssistantAsleep`; docker's 409 `... is not running` (exec into a stopped
    container) and 404 `No such container`; an HTTP status (httpx.HTTPStatusError, or any
    exception with an int `status_code`) of 401 or 403; a refused connection anywhere in the
    exception's chain; timeouts. Anything else is `Cause.OTHER`.
    """
    if isinstance(error, AssistantAsleep):
        return Diagnosis(Cause.ASLEEP, Remedy.WAKE, str(error))
    if isinstance(error, NotFound):
        detail = f"{_explanation(error)}: nothing to wake (hatch it again with the Vellum CLI)"
        return Diagnosis(Cause.CONTAINER_MISSING, Remedy.NONE, detail)
    if isinstance(error, APIError):
        if error.status_code == 409 and "is not running" in _explanation(error):
            return Diagnosis(Cause.CONTAINER_STOPPED, Remedy.WAKE)
        return Diagnosis(Cause.OTHER, Remedy.NONE, _explanation(error))
    if isinstance(error, DockerException):  # the engine itself: waking goes through it too
        return Diagnosis(Cause.OTHER, Remedy.NONE, describe_error(error))
    status = _http_status(error)
    if status == 403:
        detail = "the assistant refused this client"  # it answered: nothing to wake or renew
        return Diagnosis(Cause.FORBIDDEN, Remedy.NONE, detail)
    if status == 401:
        return Diagnosis(Cause.UNAUTHORIZED, Remedy.RENEW_TOKEN, "the guardian token was refused")
    if _refused(error):
        return Diagnosis(Cause.CONNECTION_REFUSED, Remedy.WAKE, "nothing listens at its address")
    if isinstance(error, TimeoutError | httpx.TimeoutException):
        detail = "it did not answer in time; waking a running assistant would not help"
        return Diagnosis(Cause.TIMEOUT, Remedy.NONE, detail)
    return Diagnosis(Cause.OTHER, Remedy.NONE, " ".join(str(error).split())[:200])


def _http_status(error: BaseException) -> int | None:
    if isinstance(error, httpx.HTTPStatusError):
        return error.response.status_code
    status = getattr(error, "status_code", None)
    return status if isinstance(status, int) and not isinstance(status, bool) else None


def _refused(error: BaseException) -> bool:
    seen: set[int] = set()
    cause: BaseException | None = error
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, ConnectionRefusedError):
            return True
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return False


def _explanation(error: APIError) -> str:
    return " ".join(str(error.explanation or error).split())[:200]


# --- Repairs --------------------------------------------------------------------------------


@dataclass(frozen=True)
class RepairReport:
    """What a repair did: `woke alpha (started alpha-assistant, alpha-gateway)`."""

    ok: bool
    """False when the repair did not happen or failed: the operation is then not retried."""
    summary: str
    steps: tuple[Step, ...] = ()


Repair = Callable[[], Awaitable[RepairReport]]


def docker_wake(
    engine: Engine,
    name: str,
    *,
    ready: Callable[[], Awaitable[bool]] | None = None,
    ready_timeout: float = READY_TIMEOUT,
    poll_interval: float = 0.25,
) -> Repair:
    """A repair that starts the assistant's containers (`docker.lifecycle.wake_docker`, in a
    thread) and then, if `ready` is given, polls it until it says True or `ready_timeout`
    passes: a started container takes a moment before its runtime listens. `ready` answers,
    never raises (`services.health.probes.probe_direct(...)` turned into a bool, say)."""

    async def wake() -> RepairReport:
        steps = await asyncio.to_thread(lambda: tuple(wake_docker(engine, name)))
        report = woke(name, steps)
        if not report.ok or ready is None:
            return report
        if await _until(ready, ready_timeout, poll_interval):
            return report
        return replace(report, summary=f"{report.summary}; not ready within {ready_timeout:g} s")

    return wake


def local_wake(assistant_id: str, *, vellum: str | None = None) -> Repair:
    """A repair that wakes a local assistant with `vellum wake <id>` (in a thread); the CLI
    waits for the daemon to be ready before it returns."""

    async def wake() -> RepairReport:
        steps = await asyncio.to_thread(lambda: tuple(wake_local(assistant_id, vellum)))
        return woke(assistant_id, steps)

    return wake


def woke(name: str, steps: tuple[Step, ...]) -> RepairReport:
    """The report of a wake's steps: ok when nothing failed and something exists to wake."""
    ok = not any(step.failed for step in steps) and any(
        step.outcome is not Outcome.ABSENT for step in steps
    )
    verb = "woke" if ok else "could not wake"
    return RepairReport(ok, f"{verb} {name} ({summarize(steps)})", steps)


async def _until(ready: Callable[[], Awaitable[bool]], seconds: float, interval: float) -> bool:
    """Poll `ready` (a remote condition: there is no event to wait on) until it holds."""
    try:
        async with asyncio.timeout(seconds):
            while True:
                if await ready():
                    return True
                await asyncio.sleep(interval)
    except TimeoutError:
        return False


def guardian_renewal(
    environment: VellumEnvironment,
    assistant_id: str,
    used_token: str | None,
    *,
    vellum: str | None = None,
) -> Repair:
    """A repair for a 401: `renew_guardian_token` in a thread. `used_token` is the access token
    the failed request sent (None if none was): a secret, never shown."""

    async def renew() -> RepairReport:
        return await asyncio.to_thread(
            renew_guardian_token, environment, assistant_id, used_token, vellum=vellum
        )

    return renew


def renew_guardian_token(
    environment: VellumEnvironment,
    assistant_id: str,
    used_token: str | None,
    *,
    vellum: str | None = None,
    now: datetime | None = None,
    timeout: float = TOKEN_REFRESH_TIMEOUT,
) -> RepairReport:
    """Make a newer guardian token available on disk, if that is safe (blocking).

    1. The token on disk differs from the one refused: another process renewed it; use it.
    2. It has expired: `vellum gateway token refresh <id>` (its output, the token, is discarded).
    3. Otherwise (refused before it expired, or no token at all): nothing, and the report says
       why. roost never leases a token: that revokes every other client's.
    The operation reads the token again when it is retried.
    """
    try:
        stored = read_guardian_token(environment, assistant_id)
    except TokenFileError as error:
        return RepairReport(False, str(error))
    if stored is None:
        summary = f"no guardian token for {assistant_id} on disk: pair it with the Vellum CLI"
        return RepairReport(False, summary)
    if stored.access_token != used_token:
        what = "the one on disk is newer" if used_token else "none was sent"
        return RepairReport(True, f"re-read the guardian token ({what})")
    expiry = token_expiry(stored)
    if expiry is None or expiry > (now or datetime.now(UTC)):
        why = "its expiry is unknown" if expiry is None else "it has not expired"
        summary = (
            f"the guardian token was refused though {why}: not renewed "
            "(re-leasing it would revoke other clients' tokens)"
        )
        return RepairReport(False, summary)
    if assistant_id.startswith("-"):
        return RepairReport(False, f"{assistant_id!r} is not a name the Vellum CLI accepts")
    command = f"vellum gateway token refresh {assistant_id}"
    executable = vellum or shutil.which("vellum")
    if executable is None:
        summary = f"the guardian token expired and the Vellum CLI is not on PATH: run `{command}`"
        return RepairReport(False, summary)
    try:
        result = subprocess.run(
            [executable, "gateway", "token", "refresh", assistant_id],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,  # it prints the new token: never read it
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return RepairReport(False, f"`{command}` did not finish within {timeout:g} s")
    except OSError as error:
        return RepairReport(False, f"cannot run the Vellum CLI ({error.strerror or error})")
    if result.returncode:
        said = last_line(result.stderr)
        summary = f"`{command}` failed (exit {result.returncode})" + (f": {said}" if said else "")
        return RepairReport(False, summary)
    try:
        renewed = read_guardian_token(environment, assistant_id)
    except TokenFileError as error:
        return RepairReport(False, f"`{command}` left a token roost cannot use: {error}")
    if renewed is None or renewed.access_token == used_token:
        return RepairReport(False, f"`{command}` left no newer token on disk")
    return RepairReport(True, f"refreshed the guardian token with `{command}`")


def token_expiry(token: GuardianToken) -> datetime | None:
    """When the access token expires: `accessTokenExpiresAt` is an ISO date or epoch
    milliseconds (the gateway writes numbers; vellum.tokens keeps only strings, so a number is
    read from the file again). None when unknown."""
    raw: object = token.expires_at
    if raw is None:
        raw = _stored_field(token.path, "accessTokenExpiresAt")
    return parse_expiry(raw)


def parse_expiry(raw: object) -> datetime | None:
    try:
        if isinstance(raw, int | float) and not isinstance(raw, bool):
            return datetime.fromtimestamp(raw / 1000, UTC)
        if isinstance(raw, str):
            text = raw.strip()
            if text.isdigit():
                return datetime.fromtimestamp(int(text) / 1000, UTC)
            moment = datetime.fromisoformat(text)
            return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):
        return None
    return None


def _stored_field(path: Path, key: str) -> object:
    try:
        data = read_json(path, MAX_TOKEN_FILE_BYTES)
    except (OSError, FileError):
        return None
    return data.get(key) if isinstance(data, dict) else None


# --- The policy -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RepairRecord:
    """What `with_repair` did, for the events panel or the CLI's output."""

    failure: Diagnosis | None = None
    """The first attempt's failure; None when it succeeded (nothing else was done)."""
    repair: RepairReport | None = None
    """None when the failure was not repairable (or no repair for it was given)."""
    retried: bool = False
    retry_failure: Diagnosis | None = None

    @property
    def repaired(self) -> bool:
        return self.retried and self.retry_failure is None

    def describe(self) -> str:
        if self.failure is None:
            return "ok"
        if self.repair is None:
            return f"{self.failure}; not repaired"
        if not self.retried:
            return f"{self.failure.cause}: {self.repair.summary}; not retried"
        outcome = "ok" if self.retry_failure is None else str(self.retry_failure)
        return f"{self.failure.cause}: {self.repair.summary}, retried: {outcome}"


class RepairFailed(RoostError):
    """The operation failed and repairing it did not help (or was not possible): the message is
    the record's one line."""

    def __init__(self, record: RepairRecord) -> None:
        super().__init__(record.describe())
        self.record = record

    @property
    def diagnosis(self) -> Diagnosis | None:
        """The last failure: the retry's, else the first attempt's."""
        return self.record.retry_failure or self.record.failure


@dataclass(frozen=True)
class Repaired(Generic[T]):
    value: T
    record: RepairRecord


async def with_repair(
    operation: Callable[[], Awaitable[T]],
    wake: Repair | None,
    classify: Callable[[BaseException], Diagnosis] = classify_failure,
    *,
    renew_token: Repair | None = None,
) -> Repaired[T]:
    """Run `operation`; on a failure `classify` deems repairable, run the repair for it once
    (`wake`, or `renew_token` for a 401) and `operation` once more.

    `operation` runs at most twice and must read its credentials each time, so a renewed token
    is used. Returns the value and the record of what was done. Raises RepairFailed (one line)
    when the failure is understood but not repairable, the repair fails, or the retry fails;
    a failure `classify` does not understand (`Cause.OTHER`) on the first attempt is raised
    unchanged.
    """
    try:
        return Repaired(await operation(), RepairRecord())
    except Exception as error:
        failure = classify(error)
        if failure.cause is Cause.OTHER:
            raise
        repair = {Remedy.WAKE: wake, Remedy.RENEW_TOKEN: renew_token}.get(failure.remedy)
        if repair is None:
            # `from None`: an HTTP error holds its request, and so the token in its headers.
            raise RepairFailed(RepairRecord(failure)) from None
    try:
        report = await repair()
    except RoostError as error:
        report = RepairReport(False, str(error))
    if not report.ok:
        raise RepairFailed(RepairRecord(failure, report))
    try:
        value = await operation()
    except Exception as error:
        retry = classify(error)
        record = RepairRecord(failure, report, retried=True, retry_failure=retry)
        if retry.cause is Cause.OTHER:
            raise RepairFailed(record) from error  # keep the unexpected one's traceback
        raise RepairFailed(record) from None
    return Repaired(value, RepairRecord(failure, report, retried=True))
