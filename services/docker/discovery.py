"""Finding assistants' containers on Docker engines (docs/protocol.md §6).

A lockfile `docker` entry named N owns the containers `N-assistant`, `N-gateway` and
`N-credential-executor`; any container labelled `roost.assistant=<name>` is an assistant too,
whoever started it. One list call per engine (the low-level API answers with every container's
state in a single request); blocking, so the TUI runs it in a worker thread.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from docker.errors import DockerException

from services.core.errors import RoostError
from services.docker.engines import Engine, connect, describe_error

LABEL = "roost.assistant"
ROLES = ("assistant", "gateway", "credential-executor")
_HEALTH = re.compile(r"\((healthy|unhealthy|health: starting)\)")


@dataclass(frozen=True)
class ContainerState:
    """What the engine says of one container."""

    id: str
    name: str
    state: str
    """The engine's word: running, exited, paused, restarting, created, dead."""
    status: str
    """The engine's sentence, e.g. `Up 5 minutes (healthy)` or `Exited (1) 2 hours ago`."""
    health: str | None
    """The healthcheck's verdict (healthy, unhealthy, starting), None without a healthcheck."""
    image: str
    labels: Mapping[str, str]
    created: datetime


@dataclass(frozen=True)
class EngineScan:
    """One engine's containers, or why it could not be reached."""

    engine: Engine
    containers: tuple[ContainerState, ...] = ()
    error: str | None = None

    def named(self, name: str) -> ContainerState | None:
        return next((c for c in self.containers if c.name == name), None)

    def labelled(self) -> dict[str, ContainerState]:
        """Containers carrying the roost label, by the assistant name it gives."""
        return {c.labels[LABEL]: c for c in self.containers if c.labels.get(LABEL)}


def scan_engine(engine: Engine, timeout: int = 5) -> EngineScan:
    """Every container on `engine` (running or not); never raises for an unreachable engine."""
    try:
        client = connect(engine, timeout)
        try:
            listed = client.api.containers(all=True)
        finally:
            client.close()
    except (DockerException, RoostError, OSError) as error:
        return EngineScan(engine, error=describe_error(error))
    return EngineScan(engine, tuple(_container(raw) for raw in listed))


def _container(raw: Mapping[str, Any]) -> ContainerState:
    status = str(raw.get("Status") or "")
    health = _HEALTH.search(status)
    return ContainerState(
        id=str(raw.get("Id", ""))[:12],
        name=str((raw.get("Names") or ["/?"])[0]).lstrip("/"),
        state=str(raw.get("State") or "unknown"),
        status=status,
        health=health[1].removeprefix("health: ") if health else None,
        image=str(raw.get("Image") or ""),
        labels=dict(raw.get("Labels") or {}),
        created=datetime.fromtimestamp(int(raw.get("Created") or 0), UTC),
    )


def container_names(assistant: str) -> tuple[str, ...]:
    """The containers the Vellum CLI derives from an assistant's name, in wake order."""
    return tuple(f"{assistant}-{role}" for role in ROLES)


def scan_engines(engines: Sequence[Engine]) -> tuple[EngineScan, ...]:
    """Scan every engine at once: a slow or unreachable engine does not hold up the others."""
    if len(engines) <= 1:
        return tuple(scan_engine(engine) for engine in engines)
    with ThreadPoolExecutor(max_workers=min(8, len(engines))) as pool:
        return tuple(pool.map(scan_engine, engines))
