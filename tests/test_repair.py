"""The repair on connect: a backup that finds nothing listening wakes the assistant once and
tries once more; nothing else is repaired. The wake repairs themselves run against the real
Docker engine and a stand-in for the Vellum CLI (`fake_vellum`: a Node program not installed
here).
"""

from __future__ import annotations

import socket
from pathlib import Path

from services.core.http import http_client
from services.docker.engines import Engine
from services.docker.lifecycle import Outcome
from services.jobs.exports import Exporter
from services.jobs.record import Job, JobState
from services.jobs.repair import Repair, RepairReport, backup_with_repair, docker_wake, local_wake
from services.vellum.auth import BearerAuth, RuntimeEndpoint
from tests.docker_fixtures import Sandbox
from tests.peers.vellum import VellumPeer, refused_url
from tests.test_lifecycle import fake_vellum

# --- The policy, on a real backup -------------------------------------------------------------


async def backed_up(target: RuntimeEndpoint, destination: Path, wake: Repair | None) -> list[Job]:
    async with http_client() as http:
        return [job async for job in backup_with_repair(Exporter(http), target, destination, wake)]


async def test_a_backup_that_finds_nothing_listening_wakes_once_and_retries(
    tmp_path: Path,
) -> None:
    """The repair on connect: refused, woken (here: the runtime starts), retried, saved."""
    held = socket.socket()
    held.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
    port = held.getsockname()[1]
    peers: list[VellumPeer] = []

    async def wake() -> RepairReport:
        held.close()
        peer = VellumPeer(port)
        peer.start()
        peer.runtime("ada")
        peers.append(peer)
        return RepairReport(True, "woke ada (started ada-assistant)")

    target = RuntimeEndpoint(
        "ada", "ada", f"http://127.0.0.1:{port}/rt/ada", False, BearerAuth(lambda: None)
    )
    try:
        async with http_client() as http:
            jobs = [
                job
                async for job in backup_with_repair(
                    Exporter(http), target, tmp_path / "a.vbundle", wake
                )
            ]
    finally:
        held.close()
        for peer in peers:
            peer.close()
    first_attempt = [job for job in jobs if job.id == jobs[0].id]
    assert first_attempt[-1].state is JobState.FAILED and first_attempt[-1].unreachable
    final = jobs[-1]
    assert final.id != jobs[0].id and final.state is JobState.COMPLETE and final.verified
    assert (
        final.note
        == "the first attempt found nothing listening; woke ada (started ada-assistant), retried"
    )
    assert len(peers) == 1  # woken once


async def test_a_refused_backup_is_not_repaired_twice(tmp_path: Path) -> None:
    wakes: list[int] = []

    async def wake() -> RepairReport:
        wakes.append(1)
        return RepairReport(True, "woke it")

    with refused_url() as url:
        target = RuntimeEndpoint("x", "x", url, False, BearerAuth(lambda: None))
        async with http_client() as http:
            jobs = [
                job
                async for job in backup_with_repair(
                    Exporter(http), target, tmp_path / "x.vbundle", wake
                )
            ]
    assert wakes == [1]
    assert jobs[-1].state is JobState.FAILED and jobs[-1].note and "retried" in jobs[-1].note
    assert not (tmp_path / "x.vbundle").exists()


async def test_a_failure_with_an_answer_is_not_repaired(
    vellum_peer: VellumPeer, tmp_path: Path
) -> None:
    """Something answered (here: 401, the token refused): waking would not help."""
    runtime = vellum_peer.runtime("ada", bearer="secret")
    wakes: list[int] = []

    async def wake() -> RepairReport:
        wakes.append(1)
        return RepairReport(True, "woke it")

    target = RuntimeEndpoint("ada", "ada", runtime.base_url, False, BearerAuth(lambda: None))
    jobs = await backed_up(target, tmp_path / "a.vbundle", wake)

    assert wakes == []
    assert {job.id for job in jobs} == {jobs[0].id}
    assert jobs[-1].state is JobState.FAILED and not jobs[-1].unreachable
    assert jobs[-1].note is None


async def test_a_failed_wake_is_not_followed_by_a_retry(tmp_path: Path) -> None:
    async def wake() -> RepairReport:
        return RepairReport(False, "could not wake x (engine default: connection refused)")

    with refused_url() as url:
        target = RuntimeEndpoint("x", "x", url, False, BearerAuth(lambda: None))
        jobs = await backed_up(target, tmp_path / "x.vbundle", wake)

    assert {job.id for job in jobs} == {jobs[0].id}
    assert jobs[-1].state is JobState.FAILED
    assert jobs[-1].note == ("not repaired: could not wake x (engine default: connection refused)")


# --- The wake repairs ---------------------------------------------------------------------------


async def test_a_local_assistant_is_woken_by_the_vellum_cli(tmp_path: Path) -> None:
    vellum = fake_vellum(tmp_path, 'echo "Assistant started (pid 42)."')

    report = await local_wake("alpha", vellum=str(vellum))()

    assert report.ok
    assert report.summary == "woke alpha (`vellum wake alpha`: Assistant started (pid 42).)"


async def test_a_stopped_docker_assistant_is_woken(engine: Engine, sandbox: Sandbox) -> None:
    name = sandbox.name()
    containers = sandbox.vellum_assistant(name)

    report = await docker_wake(engine, name)()

    assert report.ok
    assert report.summary == (
        f"woke {name} (started {name}-assistant, {name}-gateway, {name}-credential-executor)"
    )
    assert [s.outcome for s in report.steps] == [Outcome.DONE] * 3
    assert {sandbox.state(c) for c in containers.values()} == {"running"}


async def test_an_assistant_not_ready_in_time_is_still_woken(
    engine: Engine, sandbox: Sandbox
) -> None:
    name = sandbox.name()
    sandbox.vellum_assistant(name)
    probes: list[None] = []

    async def never_ready() -> bool:
        probes.append(None)
        return False

    wake = docker_wake(engine, name, ready=never_ready, ready_timeout=0.2, poll_interval=0.05)
    report = await wake()

    assert report.ok
    assert report.summary.endswith("; not ready within 0.2 s")
    assert len(probes) >= 2


async def test_a_removed_docker_assistant_cannot_be_woken(engine: Engine, sandbox: Sandbox) -> None:
    name = sandbox.name()

    report = await docker_wake(engine, name)()

    assert not report.ok
    assert report.summary.startswith(f"could not wake {name} (")
