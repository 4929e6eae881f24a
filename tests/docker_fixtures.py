"""Docker fixtures shared by the lifecycle and repair tests: the engine `DOCKER_HOST` names, a
client that has the test image, and a `Sandbox` that removes whatever a test created. Loaded by
conftest.py (`pytest_plugins`), so test modules use the fixtures without importing them."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import docker
import docker.errors
import pytest
from docker.models.containers import Container

from services.docker.engines import DEFAULT_DOCKER_HOST, Engine, connect, probe
from services.docker.lifecycle import Kind
from tests.test_docker_engine import IMAGE, unavailable

QUIET_SLEEPER = ["sh", "-c", 'trap "exit 0" TERM; sleep 3600 & wait']
"""Stops at once on `docker stop` (a bare `sleep` as PID 1 ignores SIGTERM for 10 s)."""
GONE = Engine("gone", "unix:///nonexistent/docker.sock", None, False)


def reachable_engine() -> Engine:
    """The engine `DOCKER_HOST` names; skips (or fails under ROOST_REQUIRE_DOCKER) without one."""
    found = Engine("test", os.environ.get("DOCKER_HOST") or DEFAULT_DOCKER_HOST, None, False)
    result = probe(found)
    if not result.reachable:
        unavailable(f"no Docker engine at {found.host}: {result.error}")
    return found


def image_client(engine: Engine) -> docker.DockerClient:
    client = connect(engine)
    try:
        client.images.get(IMAGE)
    except docker.errors.ImageNotFound:
        client.close()
        unavailable(f"the test image {IMAGE} is missing (build it with .ci/test-image.sh)")
    return client


@dataclass
class Sandbox:
    """Creates resources with a unique prefix and removes every one of them afterwards."""

    client: docker.DockerClient
    prefix: str = field(default_factory=lambda: f"roost-lc-{uuid.uuid4().hex[:8]}")
    count: int = 0

    def name(self) -> str:
        self.count += 1
        return f"{self.prefix}-{self.count}"

    def container(
        self,
        name: str,
        *,
        network: str = "none",
        volumes: dict[str, str] | None = None,
        labels: dict[str, str] | None = None,
        entrypoint: list[str] | None = None,
    ) -> Container:
        """A container of the test image that sleeps until stopped; created, not started."""
        return self.client.containers.create(
            IMAGE,
            QUIET_SLEEPER,
            name=name,
            network_mode=network,
            volumes={v: {"bind": path, "mode": "rw"} for v, path in (volumes or {}).items()},
            labels=labels or {},
            entrypoint=entrypoint,
        )

    def vellum_assistant(self, name: str) -> dict[str, Container]:
        """The Vellum CLI's layout for `name`, created but not started."""
        self.client.networks.create(f"{name}-net", driver="bridge")
        for suffix in ("workspace", "socket", "gateway-sec", "ces-sec"):
            self.client.volumes.create(f"{name}-{suffix}")
        assistant = self.container(
            f"{name}-assistant",
            network=f"{name}-net",
            volumes={f"{name}-workspace": "/workspace", f"{name}-socket": "/run/ces-bootstrap"},
        )
        shared = f"container:{assistant.id}"
        gateway = self.container(
            f"{name}-gateway",
            network=shared,
            volumes={f"{name}-workspace": "/workspace", f"{name}-gateway-sec": "/gateway-security"},
        )
        executor = self.container(
            f"{name}-credential-executor",
            network=shared,
            volumes={f"{name}-socket": "/run/ces-bootstrap", f"{name}-ces-sec": "/ces-security"},
        )
        return {"assistant": assistant, "gateway": gateway, "credential-executor": executor}

    def state(self, container: Container) -> str:
        container.reload()
        return str(container.status)

    def exists(self, kind: Kind, name: str) -> bool:
        try:
            if kind is Kind.CONTAINER:
                self.client.containers.get(name)
            elif kind is Kind.NETWORK:
                self.client.networks.get(name)
            else:
                self.client.volumes.get(name)
        except docker.errors.NotFound:
            return False
        return True

    def clean(self) -> None:
        mine: dict[str, str | list[str] | bool] = {"name": self.prefix}
        for container in self.client.containers.list(all=True, filters=mine):
            container.remove(force=True)
        for network in self.client.networks.list(filters=mine):
            network.remove()
        for volume in self.client.volumes.list(filters=mine):
            volume.remove(force=True)


@pytest.fixture(scope="module")
def engine() -> Engine:
    return reachable_engine()


@pytest.fixture(scope="module")
def client(engine: Engine) -> Iterator[docker.DockerClient]:
    client = image_client(engine)
    yield client
    client.close()


@pytest.fixture
def sandbox(client: docker.DockerClient) -> Iterator[Sandbox]:
    sandbox = Sandbox(client)
    try:
        yield sandbox
    finally:
        sandbox.clean()
