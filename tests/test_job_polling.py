"""Runtime job statuses and the polling policy, tested without waiting."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

import pytest

from services.jobs.polling import (
    AUTHENTICATION_REFUSED,
    JOB_FAILED_SILENTLY,
    JOB_NOT_FOUND,
    FailureKind,
    PollFailure,
    PollOutcome,
    PollPolicy,
    RuntimeJobStatus,
    Verdict,
    failure_for_status,
    poll_runtime_job,
)

SHA = "ab" * 32


# Runtime job statuses --------------------------------------------------------------------


def test_a_status_is_read_leniently() -> None:
    body = {
        "job_id": "export-1",
        "type": "export",
        "status": "complete",
        "result": {"size": 12, "manifest_sha256": SHA.upper(), "files": 3},
        "progress": {"percent": 100},
    }

    status = RuntimeJobStatus.parse(json.dumps(body).encode())

    assert (status.status, status.job_id, status.result_size) == ("complete", "export-1", 12)
    assert status.result_sha256 == SHA  # manifest_sha256, lower-cased
    assert status.raw["progress"] == {"percent": 100}


def test_sha256_wins_over_manifest_sha256_and_garbage_is_no_checksum() -> None:
    other = "cd" * 32
    both = RuntimeJobStatus.parse(
        json.dumps(
            {"status": "complete", "result": {"sha256": SHA, "manifest_sha256": other}}
        ).encode()
    )
    garbage = RuntimeJobStatus.parse(
        json.dumps({"status": "complete", "result": {"sha256": "xyz", "size": -1}}).encode()
    )

    assert both.result_sha256 == SHA
    assert (garbage.result_sha256, garbage.result_size) == (None, None)


@pytest.mark.parametrize(
    "body", [b"<html>502 Bad Gateway</html>", b"[]", b'{"job_id": "x"}', b'{"status": ""}']
)
def test_an_answer_that_is_no_status_is_a_transient_failure(body: bytes) -> None:
    with pytest.raises(PollFailure) as raised:
        RuntimeJobStatus.parse(body)

    assert raised.value.kind is FailureKind.TRANSIENT


def test_an_error_object_gives_its_message() -> None:
    body = {"status": "failed", "error": {"code": "boom", "message": "disk full on runtime"}}

    assert RuntimeJobStatus.parse(json.dumps(body).encode()).error == "disk full on runtime"


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (401, FailureKind.AUTH),
        (404, FailureKind.NOT_FOUND),
        (429, FailureKind.TRANSIENT),
        (500, FailureKind.TRANSIENT),
        (503, FailureKind.TRANSIENT),
        (400, FailureKind.PERMANENT),
        (403, FailureKind.PERMANENT),
        (410, FailureKind.PERMANENT),
    ],
)
def test_status_codes_are_classified_as_the_reference_does(code: int, kind: FailureKind) -> None:
    assert failure_for_status(code).kind is kind


# The polling policy ----------------------------------------------------------------------

Step = RuntimeJobStatus | PollFailure


class Scripted:
    """A runtime job whose polls answer the script in order; time passes only in `sleep`."""

    def __init__(self, *steps: Step) -> None:
        self.steps = list(steps)
        self.now = 0.0
        self.sleeps: list[float] = []
        self.polled_at: list[float] = []
        self.refreshes = 0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    async def fetch(self) -> RuntimeJobStatus:
        self.polled_at.append(self.now)
        step = self.steps.pop(0) if len(self.steps) > 1 else self.steps[0]
        if isinstance(step, PollFailure):
            raise step
        return step

    async def refresh(self) -> None:
        self.refreshes += 1

    async def run(
        self,
        policy: PollPolicy | None = None,
        rand: Callable[[], float] = lambda: 0.5,
        refresh: Callable[[], Awaitable[None]] | None = None,
    ) -> list[PollOutcome]:
        outcomes = poll_runtime_job(
            self.fetch,
            refresh or self.refresh,
            policy=policy,
            clock=self.clock,
            sleep=self.sleep,
            rand=rand,
        )
        return [outcome async for outcome in outcomes]


def status(name: str, **fields: object) -> RuntimeJobStatus:
    return RuntimeJobStatus.parse(json.dumps({"status": name, **fields}).encode())


PROCESSING = status("processing")
COMPLETE = status("complete", result={"size": 5, "sha256": SHA})
TRANSIENT = PollFailure(FailureKind.TRANSIENT, "the runtime answered 503")
AUTH = failure_for_status(401)


async def test_the_first_poll_is_at_once_then_every_two_seconds() -> None:
    job = Scripted(PROCESSING, PROCESSING, COMPLETE)

    outcomes = await job.run()

    assert job.polled_at == [0.0, 2.0, 4.0]
    assert [outcome.verdict for outcome in outcomes] == [
        Verdict.WAITING,
        Verdict.WAITING,
        Verdict.COMPLETE,
    ]
    assert [outcome.text for outcome in outcomes] == [
        "processing",
        "processing",
        "complete (5 bytes)",
    ]
    assert outcomes[-1].status == COMPLETE


@pytest.mark.parametrize(("rand", "interval"), [(0.0, 1.8), (1.0, 2.2), (0.5, 2.0)])
async def test_jitter_spreads_polls_by_a_tenth_either_way(rand: float, interval: float) -> None:
    job = Scripted(PROCESSING, COMPLETE)

    await job.run(rand=lambda: rand)

    assert job.sleeps == [pytest.approx(interval)]


async def test_the_deadline_ends_polling_with_the_reference_message() -> None:
    job = Scripted(PROCESSING)

    outcomes = await job.run(PollPolicy(deadline=10.0))

    last = outcomes[-1]
    assert last.verdict is Verdict.FAILED
    assert last.error == "Timed out waiting for export job after 10s"
    assert last.text == "processing; Timed out waiting for export job after 10s"
    assert job.polled_at == [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]
    assert all(outcome.verdict is Verdict.WAITING for outcome in outcomes[:-1])


async def test_a_failed_job_gives_its_error_or_the_reference_words() -> None:
    with_error = await Scripted(status("failed", error="no space")).run()
    without = await Scripted(status("failed")).run()

    assert (with_error[-1].verdict, with_error[-1].error) == (Verdict.FAILED, "no space")
    assert without[-1].error == JOB_FAILED_SILENTLY == "Job failed without an error message"


async def test_a_forgotten_job_is_lost_at_once() -> None:
    job = Scripted(PROCESSING, failure_for_status(404))

    outcomes = await job.run()

    assert (outcomes[-1].verdict, outcomes[-1].error) == (Verdict.LOST, JOB_NOT_FOUND)
    assert len(job.polled_at) == 2


async def test_a_permanent_failure_ends_polling_at_once() -> None:
    outcomes = await Scripted(failure_for_status(400)).run()

    assert [(outcome.verdict, outcome.error) for outcome in outcomes] == [
        (Verdict.FAILED, "the runtime answered 400")
    ]


async def test_five_transient_failures_in_a_row_are_tolerated_not_six() -> None:
    tolerated = Scripted(*[TRANSIENT] * 5, COMPLETE)
    too_many = Scripted(*[TRANSIENT] * 6, COMPLETE)

    assert (await tolerated.run())[-1].verdict is Verdict.COMPLETE
    outcomes = await too_many.run()

    assert outcomes[-1].verdict is Verdict.FAILED
    assert outcomes[-1].error == "the runtime answered 503 (6 transient errors in a row)"
    assert outcomes[0].text == "the runtime answered 503 (transient 1/5)"
    assert too_many.polled_at == [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]


async def test_a_good_poll_resets_the_transient_count() -> None:
    job = Scripted(*[TRANSIENT] * 5, PROCESSING, *[TRANSIENT] * 5, COMPLETE)

    assert (await job.run())[-1].verdict is Verdict.COMPLETE


async def test_a_401_refreshes_credentials_and_polls_again_at_once() -> None:
    job = Scripted(AUTH, COMPLETE)

    outcomes = await job.run()

    assert job.refreshes == 1
    assert job.polled_at == [0.0, 0.0]
    assert outcomes[0].text == "401 unauthorized: refreshing credentials (1/3)"
    assert outcomes[-1].verdict is Verdict.COMPLETE


async def test_three_refreshes_in_a_row_at_most() -> None:
    job = Scripted(AUTH)

    outcomes = await job.run()

    assert job.refreshes == 3
    assert len(job.polled_at) == 4
    assert (outcomes[-1].verdict, outcomes[-1].error) == (Verdict.FAILED, AUTHENTICATION_REFUSED)


async def test_a_good_poll_resets_the_refresh_count() -> None:
    job = Scripted(AUTH, AUTH, AUTH, PROCESSING, AUTH, AUTH, AUTH, COMPLETE)

    assert (await job.run())[-1].verdict is Verdict.COMPLETE
    assert job.refreshes == 6


async def test_a_refresh_that_fails_ends_polling_with_its_reason() -> None:
    async def refused() -> None:
        raise PollFailure(FailureKind.PERMANENT, "no credentials: not logged in")

    outcomes = await Scripted(AUTH, COMPLETE).run(refresh=refused)

    assert (outcomes[-1].verdict, outcomes[-1].error) == (
        Verdict.FAILED,
        "no credentials: not logged in",
    )


async def test_an_unknown_status_keeps_polling() -> None:
    job = Scripted(status("queued", eta=3), status("uploading"), COMPLETE)

    outcomes = await job.run()

    assert [outcome.text for outcome in outcomes[:2]] == [
        "status 'queued', unknown to roost: still waiting",
        "status 'uploading', unknown to roost: still waiting",
    ]
    assert outcomes[-1].verdict is Verdict.COMPLETE


async def test_the_reference_defaults() -> None:
    policy = PollPolicy()

    assert (policy.interval, policy.deadline) == (2.0, 3600.0)
    assert (policy.max_auth_refreshes, policy.max_transient_errors) == (3, 5)
    assert 0 < policy.jitter < 0.5
