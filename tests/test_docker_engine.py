"""A real Docker engine: the test image runs tmux, and roost reaches the engine with the SDK.

Skipped when no engine answers, unless ROOST_REQUIRE_DOCKER is set (CI sets it): then it fails.
The image is built from host binaries by `.ci/test-image.sh` (no registry is reachable here).
"""

from __future__ import annotations

import os
import queue
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import pytest
from docker.models.containers import Container

from services.core.config import Config, EngineConfig
from services.docker.discovery import scan_engine
from services.docker.engines import DEFAULT_DOCKER_HOST, Engine, configured_engines, connect, probe
from services.docker.events import EngineEvents
from services.fleet.builder import build_fleet
from services.fleet.model import Assistant, FleetSnapshot, Source
from services.vellum.lockfile import LockfileRead

IMAGE = "roost-test:latest"
LABEL = "roost.assistant"


def unavailable(reason: str) -> None:
    if os.environ.get("ROOST_REQUIRE_DOCKER"):
        pytest.fail(f"{reason}, and ROOST_REQUIRE_DOCKER is set")
    pytest.skip(f"{reason} (set ROOST_REQUIRE_DOCKER=1 to make this a failure)")


@pytest.fixture(scope="module")
def engine() -> Engine:
    found = Engine("test", os.environ.get("DOCKER_HOST") or DEFAULT_DOCKER_HOST, None, False)
    result = probe(found)
    if not result.reachable:
        unavailable(f"no Docker engine at {found.host}: {result.error}")
    return found


@pytest.fixture(scope="module")
def client(engine: Engine) -> Iterator[docker.DockerClient]:
    client = connect(engine)
    try:
        client.images.get(IMAGE)
    except docker.errors.ImageNotFound:
        unavailable(f"the test image {IMAGE} is missing (build it with .ci/test-image.sh)")
    yield client
    client.close()


@pytest.fixture
def tmux_container(client: docker.DockerClient) -> Iterator[Container]:
    """A container of the test image running one tmux session, `agent`, labelled for roost."""
    name = f"roost-test-{uuid.uuid4().hex[:8]}"
    container = client.containers.run(
        IMAGE,
        ["sh", "-c", "tmux new-session -d -s agent && while tmux has-session; do sleep 1; done"],
        name=name,
        labels={LABEL: name},
        network_mode="none",
        detach=True,
    )
    try:
        yield container
    finally:
        container.remove(force=True)


def tmux_sessions(container: Container) -> list[str]:
    result = container.exec_run(["tmux", "list-sessions", "-F", "#{session_name}"])
    assert isinstance(result.output, bytes)
    return result.output.decode().split() if result.exit_code == 0 else []


def test_a_container_runs_tmux_and_is_found_by_its_label(
    client: docker.DockerClient, tmux_container: Container
) -> None:
    deadline = time.monotonic() + 20
    while tmux_sessions(tmux_container) != ["agent"]:
        assert time.monotonic() < deadline, f"no tmux session: {tmux_container.logs()!r}"
        time.sleep(0.1)  # polling the container for a condition, with a deadline

    labelled = client.containers.list(filters={"label": f"{LABEL}={tmux_container.name}"})

    assert [c.id for c in labelled] == [tmux_container.id]
    assert labelled[0].status == "running"


def test_probe_reports_the_engine_version(engine: Engine, client: docker.DockerClient) -> None:
    result = probe(engine)

    assert result.reachable
    assert result.version == client.version()["Version"]


def test_an_unreachable_engine_is_a_short_error_not_an_exception() -> None:
    result = probe(Engine("gone", "unix:///nonexistent/docker.sock", None, False))

    assert not result.reachable
    assert result.error == "no engine socket there"


def test_a_missing_context_is_reported_by_name() -> None:
    result = probe(Engine("ctx", None, "roost-no-such-context", False))

    assert result.error == "no Docker context named 'roost-no-such-context'"


def test_configured_engines_replace_the_environment_default() -> None:
    assert configured_engines(Config(), {}) == [
        Engine("default", DEFAULT_DOCKER_HOST, None, implicit=True)
    ]
    assert configured_engines(Config(), {"DOCKER_HOST": "tcp://127.0.0.1:2375"}) == [
        Engine("default", "tcp://127.0.0.1:2375", None, implicit=False)
    ]
    config = Config(docker_engines=(EngineConfig("box", host="ssh://me@box"),))
    assert configured_engines(config, {"DOCKER_HOST": "tcp://127.0.0.1:2375"}) == [
        Engine("box", "ssh://me@box", None, implicit=False)
    ]


def test_scans_find_labelled_and_name_derived_containers(
    engine: Engine, client: docker.DockerClient, tmux_container: Container
) -> None:
    """The fleet shows a labelled container as an assistant, and a lockfile `docker` entry
    takes its state from `<name>-assistant`: running, then sleeping once stopped."""
    derived = f"roost-derived-{uuid.uuid4().hex[:6]}"
    main = client.containers.create(
        IMAGE, ["sleep", "600"], name=f"{derived}-assistant", network_mode="none"
    )
    try:
        main.start()
        entry = {"assistantId": derived, "cloud": "docker", "runtimeUrl": "http://127.0.0.1:9"}
        path = Path("/nonexistent/.vellum.lock.json")
        read = LockfileRead(path, {"assistants": [entry]}, (), path)

        def fleet() -> dict[str, Assistant]:
            state = FleetSnapshot(
                hostname="h", tmux_server="-", lockfile=read, engines=(scan_engine(engine),)
            )
            return {assistant.name: assistant for assistant in build_fleet(state)}

        running = fleet()
        assert running[derived].status == "running"
        assert running[derived].where == engine.name
        labelled = running[str(tmux_container.name)]
        assert (labelled.kind, labelled.status, labelled.source) == (
            "docker",
            "running",
            Source.DOCKER_LABEL,
        )

        main.stop(timeout=0)
        stopped = fleet()[derived]
        assert stopped.status == "sleeping"
        assert f"{derived}-assistant: Exited" in stopped.detail
    finally:
        main.remove(force=True)


def test_engine_events_report_container_changes_and_stop_when_closed(
    engine: Engine, client: docker.DockerClient
) -> None:
    changes: queue.Queue[None] = queue.Queue()
    events = EngineEvents(engine, lambda: changes.put(None))
    thread = threading.Thread(target=events.run, daemon=True)
    thread.start()
    try:
        changes.get(timeout=10)  # once connected: whatever was missed meanwhile
        container = client.containers.run(IMAGE, ["sleep", "60"], network_mode="none", detach=True)
        try:
            changes.get(timeout=10)  # create, start, ...: each is an event
        finally:
            container.remove(force=True)
    finally:
        events.close()
        thread.join(timeout=10)
    assert not thread.is_alive()


def test_closing_ends_the_watch_even_while_an_engine_is_down() -> None:
    calls: list[None] = []
    events = EngineEvents(
        Engine("gone", "unix:///nonexistent/d.sock", None, False), lambda: calls.append(None)
    )
    thread = threading.Thread(target=events.run, daemon=True)
    thread.start()
    events.close()  # wakes the backoff wait at once
    thread.join(timeout=10)

    assert not thread.is_alive()
    assert calls == []


def test_a_failing_healthcheck_makes_a_labelled_assistant_unhealthy(
    engine: Engine, client: docker.DockerClient
) -> None:
    name = f"roost-sick-{uuid.uuid4().hex[:6]}"
    second = 1_000_000_000
    container = client.containers.run(
        IMAGE,
        ["sleep", "60"],
        name=name,
        labels={LABEL: name},
        network_mode="none",
        healthcheck={"test": ["CMD", "false"], "interval": second, "retries": 1},
        detach=True,
    )
    try:
        deadline = time.monotonic() + 30
        while (found := scan_engine(engine).named(name)) is None or found.health != "unhealthy":
            assert time.monotonic() < deadline, found
            time.sleep(0.2)  # the engine runs the healthcheck once a second

        fleet = build_fleet(
            FleetSnapshot(hostname="h", tmux_server="-", engines=(scan_engine(engine),))
        )
        [sick] = [a for a in fleet if a.name == name]
        assert (sick.status, sick.health) == ("running", "unhealthy")

        container.stop(timeout=0)
        fleet = build_fleet(
            FleetSnapshot(hostname="h", tmux_server="-", engines=(scan_engine(engine),))
        )
        [stopped] = [a for a in fleet if a.name == name]
        assert stopped.status == "sleeping"  # stopped is asleep; the exit code is in the detail
        assert stopped.detail.startswith(f"{name}: Exited (")
    finally:
        container.remove(force=True)
