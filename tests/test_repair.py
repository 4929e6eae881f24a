"""Repair on connect: the classifier and the policy with scripted operations, the guardian token
renewal against real token files and the loopback Vellum peer, and one real docker flow (a
stopped assistant is woken and the retry succeeds).

The Vellum CLI is a Node program not installed here: where the policy runs it, a shell script
stands in for it (`fake_vellum`), recording its arguments and doing what the real one does to
the token file.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import docker
import docker.errors
import httpx
import pytest
import requests

from services.core.errors import RoostError
from services.docker.engines import Engine
from services.docker.lifecycle import Outcome
from services.jobs.repair import (
    AssistantAsleep,
    Cause,
    Diagnosis,
    Remedy,
    RepairFailed,
    RepairReport,
    classify_failure,
    docker_wake,
    guardian_renewal,
    local_wake,
    parse_expiry,
    renew_guardian_token,
    with_repair,
)
from services.vellum.environment import VellumEnvironment
from tests.docker_fixtures import Sandbox
from tests.peers.vellum import FORBIDDEN, VellumPeer
from tests.test_lifecycle import fake_vellum

PAST = "2020-01-01T00:00:00.000Z"
FUTURE = "2999-01-01T00:00:00.000Z"


class Script:
    """An operation that fails with the given errors, in turn, then answers `done`."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "done"


class Repairs:
    """A repair that reports what it is given, counting its runs."""

    def __init__(self, report: RepairReport) -> None:
        self.report = report
        self.calls = 0

    async def __call__(self) -> RepairReport:
        self.calls += 1
        return self.report


WOKE = RepairReport(True, "woke alpha (started alpha-assistant, alpha-gateway)")


def refused() -> httpx.ConnectError:
    """A refused connection as httpx raises it: the refusal at the bottom of the chain."""
    try:
        try:
            raise ConnectionRefusedError(111, "Connect call failed")
        except ConnectionRefusedError as cause:
            raise httpx.ConnectError("All connection attempts failed") from cause
    except httpx.ConnectError as error:
        return error


def docker_error(status: int, explanation: str) -> docker.errors.APIError:
    response = requests.Response()
    response.status_code = status
    kind = docker.errors.NotFound if status == 404 else docker.errors.APIError
    return kind(f"{status} Client Error", response=response, explanation=explanation)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- The classifier -------------------------------------------------------------------------


async def test_a_real_refused_connection_is_repaired_by_waking() -> None:
    async with httpx.AsyncClient() as client:
        with pytest.raises(httpx.ConnectError) as caught:
            await client.get(f"http://127.0.0.1:{closed_port()}/v1/health")

    diagnosis = classify_failure(caught.value)

    assert (diagnosis.cause, diagnosis.remedy) == (Cause.CONNECTION_REFUSED, Remedy.WAKE)


async def test_statuses_from_a_real_runtime(vellum_peer: VellumPeer) -> None:
    runtime = vellum_peer.runtime("alpha", bearer="good")
    async with httpx.AsyncClient() as client:
        unauthorized = await client.get(f"{runtime.base_url}/v1/health")
        runtime.health = FORBIDDEN
        forbidden = await client.get(
            f"{runtime.base_url}/v1/health", headers={"Authorization": "Bearer good"}
        )

    def diagnose(response: httpx.Response) -> Diagnosis:
        with pytest.raises(httpx.HTTPStatusError) as caught:
            response.raise_for_status()
        return classify_failure(caught.value)

    assert diagnose(unauthorized) == Diagnosis(
        Cause.UNAUTHORIZED, Remedy.RENEW_TOKEN, "the guardian token was refused"
    )
    never = diagnose(forbidden)
    assert (never.cause, never.repairable) == (Cause.FORBIDDEN, False)


@pytest.mark.parametrize(
    ("error", "cause", "remedy"),
    [
        (docker_error(409, "Container 0123 is not running"), Cause.CONTAINER_STOPPED, Remedy.WAKE),
        (docker_error(404, "No such container: a-assistant"), Cause.CONTAINER_MISSING, Remedy.NONE),
        (docker_error(500, "something else"), Cause.OTHER, Remedy.NONE),
        (docker.errors.DockerException("engine down"), Cause.OTHER, Remedy.NONE),
        (AssistantAsleep("alpha-assistant exited"), Cause.ASLEEP, Remedy.WAKE),
        (refused(), Cause.CONNECTION_REFUSED, Remedy.WAKE),
        (TimeoutError(), Cause.TIMEOUT, Remedy.NONE),
        (httpx.ReadTimeout("slow"), Cause.TIMEOUT, Remedy.NONE),
        (ValueError("a bug"), Cause.OTHER, Remedy.NONE),
    ],
)
def test_the_classifier(error: BaseException, cause: Cause, remedy: Remedy) -> None:
    diagnosis = classify_failure(error)

    assert (diagnosis.cause, diagnosis.remedy) == (cause, remedy)
    assert "\n" not in str(diagnosis)


def test_any_error_with_a_status_code_is_read_as_an_http_answer() -> None:
    class BackupError(Exception):
        status_code = 403

    assert classify_failure(BackupError()).cause is Cause.FORBIDDEN


# --- The policy -----------------------------------------------------------------------------


async def test_a_success_does_nothing_else() -> None:
    operation, wake = Script(), Repairs(WOKE)

    result = await with_repair(operation, wake)

    assert (result.value, result.record.describe(), wake.calls) == ("done", "ok", 0)


async def test_a_repairable_failure_wakes_once_and_retries_once() -> None:
    operation, wake = Script(refused()), Repairs(WOKE)

    result = await with_repair(operation, wake)

    assert result.value == "done"
    assert (operation.calls, wake.calls) == (2, 1)
    assert result.record.repaired
    assert result.record.describe() == (
        "connection refused: woke alpha (started alpha-assistant, alpha-gateway), retried: ok"
    )


async def test_a_403_is_never_repaired() -> None:
    class Refused(Exception):
        status_code = 403

    operation, wake, renew = Script(Refused()), Repairs(WOKE), Repairs(WOKE)

    with pytest.raises(RepairFailed) as caught:
        await with_repair(operation, wake, renew_token=renew)

    assert (operation.calls, wake.calls, renew.calls) == (1, 0, 0)
    assert str(caught.value) == "forbidden (403): the assistant refused this client; not repaired"
    assert caught.value.diagnosis is not None
    assert caught.value.diagnosis.cause is Cause.FORBIDDEN


async def test_it_never_loops() -> None:
    operation, wake = Script(refused(), refused(), refused()), Repairs(WOKE)

    with pytest.raises(RepairFailed) as caught:
        await with_repair(operation, wake)

    assert (operation.calls, wake.calls) == (2, 1)
    assert str(caught.value) == (
        "connection refused: woke alpha (started alpha-assistant, alpha-gateway), "
        "retried: connection refused: nothing listens at its address"
    )


async def test_a_different_repairable_failure_on_the_retry_is_not_repaired_either() -> None:
    """Woken, then a 401: one repair per call, so the token is not renewed on top."""
    unauthorized = httpx.HTTPStatusError(
        "401", request=httpx.Request("GET", "http://x"), response=httpx.Response(401)
    )
    operation, wake, renew = Script(refused(), unauthorized), Repairs(WOKE), Repairs(WOKE)

    with pytest.raises(RepairFailed) as caught:
        await with_repair(operation, wake, renew_token=renew)

    assert (operation.calls, wake.calls, renew.calls) == (2, 1, 0)
    assert str(caught.value).endswith("retried: unauthorized (401): the guardian token was refused")


async def test_a_failed_wake_is_not_followed_by_a_retry() -> None:
    failed = RepairReport(False, "could not wake alpha (engine default: connection refused)")
    operation, wake = Script(AssistantAsleep("alpha-assistant exited")), Repairs(failed)

    with pytest.raises(RepairFailed) as caught:
        await with_repair(operation, wake)

    assert operation.calls == 1
    assert str(caught.value) == (
        "assistant asleep: could not wake alpha (engine default: connection refused); not retried"
    )


async def test_a_repair_that_raises_a_roost_error_is_a_failed_repair() -> None:
    async def wake() -> RepairReport:
        raise RoostError("no Docker context named 'x'")

    with pytest.raises(RepairFailed, match="no Docker context named 'x'; not retried"):
        await with_repair(Script(refused()), wake)


async def test_an_unknown_failure_passes_through_untouched() -> None:
    bug = KeyError("runtimeUrl")
    wake = Repairs(WOKE)

    with pytest.raises(KeyError) as caught:
        await with_repair(Script(bug), wake)

    assert caught.value is bug
    assert wake.calls == 0


async def test_a_401_without_a_way_to_renew_is_not_repaired() -> None:
    class Unauthorized(Exception):
        status_code = 401

    with pytest.raises(RepairFailed, match=r"^unauthorized \(401\): .*; not repaired$"):
        await with_repair(Script(Unauthorized()), Repairs(WOKE))


# --- The guardian token ---------------------------------------------------------------------


def write_token(access: str, expires: object) -> Path:
    path = VellumEnvironment.resolve().config_dir / "assistants/alpha/guardian-token.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"accessToken": access, "accessTokenExpiresAt": expires}))
    path.chmod(0o600)
    return path


REFRESHING_CLI = """echo "$@" >> "$HOME/vellum-calls"
printf '{"accessToken": "fresh-secret", "accessTokenExpiresAt": "%s"}' 2999-01-01T00:00:00Z \\
    > "$XDG_CONFIG_HOME/vellum/assistants/$4/guardian-token.json"
echo fresh-secret"""


def calls(home: Path) -> list[str]:
    path = home / "vellum-calls"
    return path.read_text().splitlines() if path.exists() else []


def test_a_newer_token_on_disk_is_adopted_without_the_cli(isolated_env: Path) -> None:
    write_token("newer-secret", FUTURE)

    report = renew_guardian_token(VellumEnvironment.resolve(), "alpha", "old-secret")

    assert report == RepairReport(True, "re-read the guardian token (the one on disk is newer)")
    assert calls(isolated_env) == []


def test_an_expired_token_is_refreshed_by_the_vellum_cli(
    isolated_env: Path, tmp_path: Path
) -> None:
    write_token("old-secret", PAST)
    vellum = fake_vellum(tmp_path, REFRESHING_CLI)

    report = renew_guardian_token(
        VellumEnvironment.resolve(), "alpha", "old-secret", vellum=str(vellum)
    )

    assert report.ok
    assert report.summary == (
        "refreshed the guardian token with `vellum gateway token refresh alpha`"
    )
    assert calls(isolated_env) == ["gateway token refresh alpha"]
    assert "secret" not in repr(report)


def test_a_token_refused_before_it_expired_is_left_alone(
    isolated_env: Path, tmp_path: Path
) -> None:
    write_token("old-secret", FUTURE)
    vellum = fake_vellum(tmp_path, REFRESHING_CLI)

    report = renew_guardian_token(
        VellumEnvironment.resolve(), "alpha", "old-secret", vellum=str(vellum)
    )

    assert not report.ok
    assert "refused though it has not expired: not renewed" in report.summary
    assert calls(isolated_env) == []


def test_renewal_failures_say_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    environment = VellumEnvironment.resolve()
    missing = renew_guardian_token(environment, "alpha", "old-secret")
    assert (missing.ok, missing.summary) == (
        False,
        "no guardian token for alpha on disk: pair it with the Vellum CLI",
    )

    write_token("old-secret", 1_000)  # epoch milliseconds, as the gateway writes them
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    no_cli = renew_guardian_token(environment, "alpha", "old-secret")
    assert no_cli.summary == (
        "the guardian token expired and the Vellum CLI is not on PATH: "
        "run `vellum gateway token refresh alpha`"
    )

    failing = fake_vellum(
        tmp_path, "echo secret-on-stdout\necho 'Failed to refresh guardian token.' >&2\nexit 1"
    )
    refused_by_cli = renew_guardian_token(environment, "alpha", "old-secret", vellum=str(failing))
    assert refused_by_cli.summary == (
        "`vellum gateway token refresh alpha` failed (exit 1): Failed to refresh guardian token."
    )


def test_expiry_formats() -> None:
    moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    millis = int(moment.timestamp() * 1000)

    assert parse_expiry("2026-01-02T03:04:05.000Z") == moment
    assert parse_expiry("2026-01-02T03:04:05") == moment
    assert parse_expiry(millis) == moment
    assert parse_expiry(str(millis)) == moment
    assert parse_expiry("soon") is None
    assert parse_expiry(True) is None
    assert parse_expiry(10**30) is None


async def test_a_401_with_an_expired_token_is_renewed_and_retried(
    vellum_peer: VellumPeer, tmp_path: Path
) -> None:
    """End to end: the operation reads the token from disk each time, as it must."""
    runtime = vellum_peer.runtime("alpha", bearer="fresh-secret")
    write_token("old-secret", (datetime.now(UTC) - timedelta(minutes=1)).isoformat())
    environment = VellumEnvironment.resolve()
    vellum = fake_vellum(tmp_path, REFRESHING_CLI)
    sent: list[str] = []

    async with httpx.AsyncClient() as client:

        async def health() -> int:
            token = json.loads(
                (environment.config_dir / "assistants/alpha/guardian-token.json").read_text()
            )["accessToken"]
            sent.append(token)
            response = await client.get(
                f"{runtime.base_url}/v1/health", headers={"Authorization": f"Bearer {token}"}
            )
            response.raise_for_status()
            return response.status_code

        result = await with_repair(
            health,
            Repairs(WOKE),
            renew_token=guardian_renewal(environment, "alpha", "old-secret", vellum=str(vellum)),
        )

    assert result.value == 200
    assert sent == ["old-secret", "fresh-secret"]
    assert result.record.describe() == (
        "unauthorized (401): refreshed the guardian token with "
        "`vellum gateway token refresh alpha`, retried: ok"
    )


async def test_a_real_403_is_reported_not_repaired(vellum_peer: VellumPeer) -> None:
    runtime = vellum_peer.runtime("alpha")
    runtime.health = FORBIDDEN
    wake = Repairs(WOKE)

    async with httpx.AsyncClient() as client:

        async def health() -> None:
            (await client.get(f"{runtime.base_url}/v1/health")).raise_for_status()

        with pytest.raises(RepairFailed, match=r"^forbidden \(403\)"):
            await with_repair(health, wake)

    assert wake.calls == 0
    assert len(vellum_peer.requests_to(f"{runtime.path}/v1/health")) == 1


async def test_a_local_assistant_is_woken_by_the_vellum_cli(tmp_path: Path) -> None:
    vellum = fake_vellum(tmp_path, 'echo "Assistant started (pid 42)."')

    result = await with_repair(
        Script(AssistantAsleep("alpha's daemon is not running")),
        local_wake("alpha", vellum=str(vellum)),
    )

    assert result.record.describe() == (
        "assistant asleep: woke alpha (`vellum wake alpha`: Assistant started (pid 42).), "
        "retried: ok"
    )


# --- A real docker flow ---------------------------------------------------------------------


def exec_in(client: docker.DockerClient, container: str) -> Callable[[], Awaitable[int]]:
    """Attaching, as roost does it for a docker assistant: exec in `<name>-assistant`."""

    def run() -> int:
        result = client.containers.get(container).exec_run(["true"])
        assert result.exit_code is not None
        return result.exit_code

    async def operation() -> int:
        return await asyncio.to_thread(run)

    return operation


async def test_a_stopped_container_is_woken_and_the_retry_succeeds(
    engine: Engine, client: docker.DockerClient, sandbox: Sandbox
) -> None:
    name = sandbox.name()
    containers = sandbox.vellum_assistant(name)

    result = await with_repair(exec_in(client, f"{name}-assistant"), docker_wake(engine, name))

    assert result.value == 0
    assert result.record.describe() == (
        f"container stopped: woke {name} (started {name}-assistant, {name}-gateway, "
        f"{name}-credential-executor), retried: ok"
    )
    assert result.record.repair is not None
    assert [s.outcome for s in result.record.repair.steps] == [Outcome.DONE] * 3
    assert {sandbox.state(c) for c in containers.values()} == {"running"}


async def test_an_assistant_not_ready_in_time_is_still_retried_once(
    engine: Engine, client: docker.DockerClient, sandbox: Sandbox
) -> None:
    name = sandbox.name()
    sandbox.vellum_assistant(name)
    probes: list[None] = []

    async def never_ready() -> bool:
        probes.append(None)
        return False

    wake = docker_wake(engine, name, ready=never_ready, ready_timeout=0.2, poll_interval=0.05)
    result = await with_repair(exec_in(client, f"{name}-assistant"), wake)

    assert result.record.describe().endswith("; not ready within 0.2 s, retried: ok")
    assert len(probes) >= 2


async def test_a_removed_container_is_not_repaired(
    engine: Engine, client: docker.DockerClient, sandbox: Sandbox
) -> None:
    name = sandbox.name()
    wake_calls: list[None] = []
    wake = docker_wake(engine, name)

    async def counted() -> RepairReport:
        wake_calls.append(None)
        return await wake()

    with pytest.raises(RepairFailed) as caught:
        await with_repair(exec_in(client, f"{name}-assistant"), counted)

    assert wake_calls == []
    assert str(caught.value) == (
        f"container missing: No such container: {name}-assistant: nothing to wake "
        "(hatch it again with the Vellum CLI); not repaired"
    )
