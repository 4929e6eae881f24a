"""Waking, putting to sleep and retiring assistants, step by step (docs/protocol.md §6).

Docker assistants: wake is `docker start` of `<name>-assistant`, `-gateway` and
`-credential-executor` in that order, sleep is `docker stop` in reverse, as the Vellum CLI does
(`cli/src/lib/docker.ts`: `wakeContainers`, `sleepContainers`). Containers labelled
`roost.assistant=<name>` count as assistant containers too: they are woken right after
`<name>-assistant` and put to sleep right before it. A missing container, one already running
(wake) or already stopped (sleep) is reported, never an error.

Retire destroys data, so it comes in two halves: `plan_retire` (pure) says exactly which
containers, networks and volumes would go and why, for a typed confirmation; `retire_docker`
removes what the plan names and nothing else (containers and networks by id, so a container
recreated under the same name since is left alone).

Local assistants are woken by the Vellum CLI itself (`vellum wake <id>`, which is what the native
client's connect repair runs): starting the daemon, its gateway and its credential executor
involves signing keys, bootstrap secrets and ports roost does not own.

Every action is a generator of frozen `Step`s: blocking (the docker SDK and the CLI are), so a UI
runs it in a thread worker and shows each step as it comes; a CLI prints them. Failures are
steps too, in one line: nothing here raises for an engine that is down or refuses.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import partial
from typing import Any, TypeVar

import docker
from docker.errors import APIError, DockerException, NotFound
from requests.exceptions import RequestException

from services.core.errors import RoostError
from services.docker.discovery import LABEL, container_names, scan_engines
from services.docker.engines import Engine, connect, describe_error

VELLUM_VOLUME_SUFFIXES = (
    "workspace",
    "socket",
    "assistant-ipc",
    "gateway-ipc",
    "ces-sec",
    "gateway-sec",
    "data",
)
"""The named volumes the Vellum CLI creates for a docker assistant (`dockerResourceNames`);
`data` is the legacy one older CLIs created and newer ones still migrate from."""
STOP_TIMEOUT = 10
"""Seconds `docker stop` waits before killing, as the docker CLI does; the gateway drains in 5."""
LOCAL_WAKE_TIMEOUT = 180.0
"""The Vellum app stops a `vellum wake` still running after 180 s (migrations may be slow)."""
_ENGINE_ERRORS = (DockerException, RoostError, RequestException, OSError)
_T = TypeVar("_T")
_STOPPED = ("exited", "created", "dead")
"""Container states sleep has nothing to do for."""
_LONG_ID = re.compile(r"\b([0-9a-f]{12})[0-9a-f]{52}\b")


# What steps say, so a UI or a test can tell them apart without parsing.
STARTED = "started"
UNPAUSED = "unpaused"
STOPPED = "stopped"
REMOVED = "removed"
STOPPED_AND_REMOVED = "stopped and removed"
ALREADY_RUNNING = "already running"
NOT_RUNNING = "not running"
NO_SUCH_CONTAINER = "no such container"
ALREADY_GONE = "already gone"


class Kind(StrEnum):
    """What a step acted on."""

    ENGINE = "engine"
    CONTAINER = "container"
    NETWORK = "network"
    VOLUME = "volume"
    DAEMON = "daemon"
    """A local assistant's processes, started through the Vellum CLI."""


class Outcome(StrEnum):
    DONE = "done"
    """The step changed something: started, stopped, removed."""
    UNCHANGED = "unchanged"
    """Already as wanted: running for wake, stopped for sleep."""
    ABSENT = "absent"
    """Nothing by that name (or id) exists: not an error."""
    FAILED = "failed"


@dataclass(frozen=True)
class Step:
    """One thing done (or not) to one resource, in words a UI or a CLI shows as they are."""

    kind: Kind
    subject: str
    """The container, network or volume name; the engine's or the assistant's name."""
    outcome: Outcome
    detail: str
    """`started`, `already running`, `no such container`, or the engine's one-line refusal."""

    @property
    def failed(self) -> bool:
        return self.outcome is Outcome.FAILED

    def __str__(self) -> str:
        prefix = f"engine {self.subject}" if self.kind is Kind.ENGINE else self.subject
        return f"{prefix}: {self.detail}"


def summarize(steps: Iterable[Step]) -> str:
    """The steps in one line, alike ones grouped in order of appearance:
    `started a-assistant, a-gateway; already running: a-credential-executor`."""
    groups: dict[str, list[str]] = {}
    failures: list[str] = []
    for step in steps:
        if step.failed:
            failures.append(str(step))
        elif step.kind is Kind.DAEMON:  # the Vellum CLI's own words, already a sentence
            groups.setdefault(step.detail, [])
        else:
            groups.setdefault(step.detail, []).append(step.subject)
    parts = [
        f"{detail}{':' if _is_state(detail) else ''} {', '.join(subjects)}" if subjects else detail
        for detail, subjects in groups.items()
    ]
    return "; ".join(parts + failures) or "nothing to do"


def _is_state(detail: str) -> bool:
    """Details that describe a state (`already running: x`) rather than a deed (`started x`)."""
    return detail in (ALREADY_RUNNING, NOT_RUNNING, NO_SUCH_CONTAINER, ALREADY_GONE)


# --- What the engine holds ------------------------------------------------------------------


@dataclass(frozen=True)
class VolumeMount:
    volume: str
    destination: str


@dataclass(frozen=True)
class ContainerFacts:
    id: str
    """The full id: retire removes by id, so a container recreated since is not touched."""
    name: str
    state: str
    labels: Mapping[str, str] = field(default_factory=dict)
    mounts: tuple[VolumeMount, ...] = ()
    """Volume mounts only (named and anonymous); bind mounts are the host's, never removed."""
    networks: tuple[str, ...] = ()
    """The names of the networks it is attached to, running or not."""


@dataclass(frozen=True)
class NetworkFacts:
    id: str
    name: str
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class VolumeFacts:
    name: str
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Inventory:
    """Everything on one engine that a retire plan is made from."""

    containers: tuple[ContainerFacts, ...] = ()
    networks: tuple[NetworkFacts, ...] = ()
    volumes: tuple[VolumeFacts, ...] = ()


def _containers(client: docker.DockerClient) -> tuple[ContainerFacts, ...]:
    """Every container, running or not, from one list call (it carries mounts and networks)."""
    return tuple(_container(raw) for raw in client.api.containers(all=True))


def _container(raw: Mapping[str, Any]) -> ContainerFacts:
    mounts = tuple(
        VolumeMount(str(mount["Name"]), str(mount.get("Destination") or ""))
        for mount in raw.get("Mounts") or ()
        if mount.get("Type") == "volume" and mount.get("Name")
    )
    networks = ((raw.get("NetworkSettings") or {}).get("Networks")) or {}
    return ContainerFacts(
        id=str(raw.get("Id", "")),
        name=str((raw.get("Names") or ["/?"])[0]).lstrip("/"),
        state=str(raw.get("State") or "unknown"),
        labels=dict(raw.get("Labels") or {}),
        mounts=mounts,
        networks=tuple(sorted(networks)),
    )


def read_inventory(client: docker.DockerClient) -> Inventory:
    """Containers, networks and volumes of the engine `client` speaks to (blocking)."""
    networks = tuple(
        NetworkFacts(str(raw["Id"]), str(raw["Name"]), dict(raw.get("Labels") or {}))
        for raw in client.api.networks()
    )
    volumes = tuple(
        VolumeFacts(str(raw["Name"]), dict(raw.get("Labels") or {}))
        for raw in client.api.volumes().get("Volumes") or ()
    )
    return Inventory(_containers(client), networks, volumes)


# --- Wake and sleep -------------------------------------------------------------------------


def wake_order(
    name: str, containers: Sequence[ContainerFacts]
) -> list[tuple[str, ContainerFacts | None]]:
    """The containers wake starts, in order, each with what the engine says of it (None: it does
    not exist). Labelled containers come right after `<name>-assistant`; the derived names are
    left out when none of them exists but a labelled container does (an assistant roost found by
    its label alone), so waking it does not report three missing containers."""
    by_name = {c.name: c for c in containers}
    derived = container_names(name)
    derived_set = set(derived)
    labelled = sorted(
        (c for c in containers if c.labels.get(LABEL) == name and c.name not in derived_set),
        key=lambda c: c.name,
    )
    present = [n for n in derived if n in by_name]
    if labelled and not present:
        return [(c.name, c) for c in labelled]
    assistant, *others = derived
    return [
        (assistant, by_name.get(assistant)),
        *((c.name, c) for c in labelled),
        *((n, by_name.get(n)) for n in others),
    ]


def wake_docker(engine: Engine, name: str) -> Iterator[Step]:
    """Start the assistant's containers in order; stops at the first failure, since the gateway
    and the credential executor share the assistant container's network and cannot start
    without it."""

    def wake(client: docker.DockerClient) -> Iterator[Step]:
        for subject, container in wake_order(name, _containers(client)):
            step = _start(client, subject, container)
            yield step
            if step.failed:
                return

    return _on_engine(engine, wake)


def sleep_docker(engine: Engine, name: str, stop_timeout: int = STOP_TIMEOUT) -> Iterator[Step]:
    """Stop the assistant's containers in the reverse of wake's order; a failure to stop one
    does not keep the others running."""

    def sleep(client: docker.DockerClient) -> Iterator[Step]:
        for subject, container in reversed(wake_order(name, _containers(client))):
            yield _stop(client, subject, container, stop_timeout)

    return _on_engine(engine, sleep)


def sleep_plan(engine: Engine, name: str) -> tuple[str, ...]:
    """The containers of `name` that sleep would stop, in its order: only those that exist and
    are not stopped already, so a confirmation names nothing that is not there (blocking).

    Raises RoostError, in one line, when the engine cannot be reached or read.
    """
    containers = _read_engine(engine, _containers)
    return tuple(
        subject
        for subject, container in reversed(wake_order(name, containers))
        if container is not None and container.state not in _STOPPED
    )


def _start(client: docker.DockerClient, subject: str, container: ContainerFacts | None) -> Step:
    if container is None:
        return Step(Kind.CONTAINER, subject, Outcome.ABSENT, NO_SUCH_CONTAINER)
    try:
        if container.state == "running":
            return Step(Kind.CONTAINER, subject, Outcome.UNCHANGED, ALREADY_RUNNING)
        if container.state == "paused":
            client.api.unpause(container.id)
            return Step(Kind.CONTAINER, subject, Outcome.DONE, UNPAUSED)
        client.api.start(container.id)
        state = client.api.inspect_container(container.id).get("State") or {}
    except NotFound:
        return Step(Kind.CONTAINER, subject, Outcome.ABSENT, NO_SUCH_CONTAINER)
    except _ENGINE_ERRORS as error:
        return Step(Kind.CONTAINER, subject, Outcome.FAILED, _engine_message(error))
    if state.get("Status") not in ("running", "restarting"):
        code = state.get("ExitCode")
        detail = f"stopped right after starting (exit code {code})"
        return Step(Kind.CONTAINER, subject, Outcome.FAILED, detail)
    return Step(Kind.CONTAINER, subject, Outcome.DONE, STARTED)


def _stop(
    client: docker.DockerClient, subject: str, container: ContainerFacts | None, timeout: int
) -> Step:
    if container is None:
        return Step(Kind.CONTAINER, subject, Outcome.ABSENT, NO_SUCH_CONTAINER)
    if container.state in _STOPPED:
        return Step(Kind.CONTAINER, subject, Outcome.UNCHANGED, NOT_RUNNING)
    try:
        client.api.stop(container.id, timeout=timeout)
    except NotFound:
        return Step(Kind.CONTAINER, subject, Outcome.ABSENT, NO_SUCH_CONTAINER)
    except _ENGINE_ERRORS as error:
        return Step(Kind.CONTAINER, subject, Outcome.FAILED, _engine_message(error))
    return Step(Kind.CONTAINER, subject, Outcome.DONE, STOPPED)


# --- Retire ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Planned:
    """One resource in a retire plan, and why it is there (or, in `kept`, why it stays)."""

    kind: Kind
    name: str
    id: str
    """Containers and networks are removed by id; a volume's name is its identity."""
    why: str

    def __str__(self) -> str:
        return f"{self.kind} {self.name} ({self.why})"


@dataclass(frozen=True)
class RetirePlan:
    """Exactly what retiring an assistant removes from one engine, in removal order."""

    assistant: str
    engine: Engine
    containers: tuple[Planned, ...] = ()
    networks: tuple[Planned, ...] = ()
    volumes: tuple[Planned, ...] = ()
    kept: tuple[Planned, ...] = ()
    """Related resources retire leaves alone, each with the reason (another container uses it)."""

    @property
    def removals(self) -> tuple[Planned, ...]:
        return self.containers + self.networks + self.volumes

    @property
    def empty(self) -> bool:
        return not self.removals

    def describe(self) -> list[str]:
        """One line per resource, for the confirmation: what goes, then what stays and why."""
        lines = [f"remove {planned}" for planned in self.removals]
        return lines + [f"keep {planned}" for planned in self.kept]


def plan_retire(engine: Engine, name: str, inventory: Inventory) -> RetirePlan:
    """What retiring `name` removes, decided from `inventory` alone (no I/O).

    Containers: `<name>-assistant`, `-gateway`, `-credential-executor`, the legacy
    single container `<name>` (all of which the Vellum CLI removes) and containers labelled
    `roost.assistant=<name>`. Network: `<name>-net` and networks labelled for the assistant.
    Volumes: the Vellum CLI's named volumes (`<name>-workspace`, ...), volumes labelled for the
    assistant, and volumes its containers mount. A network or volume that a container outside
    the plan also uses is kept, and `kept` says so: retire never breaks another container.
    """
    planned_containers = _retire_containers(name, inventory.containers)
    planned_ids = {p.id for p in planned_containers}
    others = [c for c in inventory.containers if c.id not in planned_ids]
    kept: list[Planned] = []

    networks: list[Planned] = []
    for network in inventory.networks:
        reasons = []
        if network.name == f"{name}-net":
            reasons.append("the Vellum CLI's network for it")
        if network.labels.get(LABEL) == name:
            reasons.append(f"labelled {LABEL}={name}")
        if not reasons:
            continue
        planned = Planned(Kind.NETWORK, network.name, network.id, "; ".join(reasons))
        users = sorted(c.name for c in others if network.name in c.networks)
        if users:
            kept.append(Planned(Kind.NETWORK, network.name, network.id, _also_used(users)))
        else:
            networks.append(planned)

    mounted: dict[str, list[str]] = {}
    planned_by_id = {c.id: c for c in inventory.containers if c.id in planned_ids}
    for planned_container in planned_containers:
        for mount in planned_by_id[planned_container.id].mounts:
            where = f"mounted by {planned_container.name} at {mount.destination}"
            mounted.setdefault(mount.volume, []).append(where)
    derived_volumes = {f"{name}-{suffix}" for suffix in VELLUM_VOLUME_SUFFIXES}
    volumes: list[Planned] = []
    for volume in inventory.volumes:
        reasons = []
        if volume.name in derived_volumes:
            reasons.append("the Vellum CLI's volume for it")
        if volume.labels.get(LABEL) == name:
            reasons.append(f"labelled {LABEL}={name}")
        reasons += mounted.get(volume.name, [])
        if not reasons:
            continue
        users = sorted(c.name for c in others if any(m.volume == volume.name for m in c.mounts))
        if users:
            kept.append(Planned(Kind.VOLUME, volume.name, volume.name, _also_used(users)))
        else:
            volumes.append(Planned(Kind.VOLUME, volume.name, volume.name, "; ".join(reasons)))

    return RetirePlan(
        name,
        engine,
        tuple(planned_containers),
        tuple(sorted(networks, key=lambda p: p.name)),
        tuple(sorted(volumes, key=lambda p: p.name)),
        tuple(kept),
    )


def _retire_containers(name: str, containers: Sequence[ContainerFacts]) -> list[Planned]:
    """In removal order: the reverse of wake's (dependents first), then the legacy container."""
    order = [c for _, c in reversed(wake_order(name, containers)) if c is not None]
    legacy = next((c for c in containers if c.name == name), None)
    if legacy is not None and legacy not in order:
        order.append(legacy)
    derived = dict(
        zip(container_names(name), ("assistant", "gateway", "credential executor"), strict=True)
    )

    def why(container: ContainerFacts) -> str:
        if container.name in derived:
            return f"the Vellum CLI's {derived[container.name]} container"
        if container.labels.get(LABEL) == name:
            return f"labelled {LABEL}={name}"
        return "the Vellum CLI's legacy single container"

    return [Planned(Kind.CONTAINER, c.name, c.id, why(c)) for c in order]


def _also_used(users: Sequence[str]) -> str:
    return f"also used by {', '.join(users)}"


def inspect_retire(engine: Engine, name: str) -> RetirePlan:
    """The retire plan for `name` on `engine` as it is now (blocking).

    Raises RoostError, in one line, when the engine cannot be reached or read.
    """
    return plan_retire(engine, name, _read_engine(engine, read_inventory))


def retire_docker(plan: RetirePlan, stop_timeout: int = STOP_TIMEOUT) -> Iterator[Step]:
    """Remove what `plan` names, in its order: containers (stopped first), then networks, then
    volumes. Nothing outside the plan is touched; a resource already gone is reported, and a
    failure does not stop the rest (each later removal reports its own refusal)."""

    def retire(client: docker.DockerClient) -> Iterator[Step]:
        for container in plan.containers:
            yield _remove_container(client, container, stop_timeout)
        for network in plan.networks:
            yield _remove(network, partial(client.api.remove_network, network.id))
        for volume in plan.volumes:
            yield _remove(volume, partial(client.api.remove_volume, volume.name))

    return _on_engine(plan.engine, retire)


def _remove_container(client: docker.DockerClient, container: Planned, timeout: int) -> Step:
    try:
        state = (client.api.inspect_container(container.id).get("State") or {}).get("Status")
        stopped = state in ("running", "paused", "restarting")
        if stopped:
            client.api.stop(container.id, timeout=timeout)
        client.api.remove_container(container.id)
    except NotFound:
        return Step(Kind.CONTAINER, container.name, Outcome.ABSENT, ALREADY_GONE)
    except _ENGINE_ERRORS as error:
        return Step(Kind.CONTAINER, container.name, Outcome.FAILED, _engine_message(error))
    return Step(
        Kind.CONTAINER, container.name, Outcome.DONE, STOPPED_AND_REMOVED if stopped else REMOVED
    )


def _remove(planned: Planned, remove: Callable[[], None]) -> Step:
    try:
        remove()
    except NotFound:
        return Step(planned.kind, planned.name, Outcome.ABSENT, ALREADY_GONE)
    except _ENGINE_ERRORS as error:
        return Step(planned.kind, planned.name, Outcome.FAILED, _engine_message(error))
    return Step(planned.kind, planned.name, Outcome.DONE, REMOVED)


# --- Local assistants -----------------------------------------------------------------------


def wake_local(
    assistant_id: str, vellum: str | None = None, timeout: float = LOCAL_WAKE_TIMEOUT
) -> Iterator[Step]:
    """Wake a local assistant with `vellum wake <id>` (the CLI found on PATH unless `vellum`
    names one): one step, whose detail is the CLI's last line of output."""
    command = f"vellum wake {assistant_id}"
    if not assistant_id or assistant_id.startswith("-"):
        yield Step(Kind.DAEMON, assistant_id, Outcome.FAILED, "not a name the Vellum CLI accepts")
        return
    executable = vellum or shutil.which("vellum")
    if executable is None:
        detail = f"the Vellum CLI is not on PATH: run `{command}` where it is installed"
        yield Step(Kind.DAEMON, assistant_id, Outcome.FAILED, detail)
        return
    try:
        result = subprocess.run(
            [executable, "wake", assistant_id],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        detail = f"`{command}` did not finish within {timeout:g} s"
        yield Step(Kind.DAEMON, assistant_id, Outcome.FAILED, detail)
        return
    except OSError as error:
        detail = f"cannot run the Vellum CLI ({error.strerror or error})"
        yield Step(Kind.DAEMON, assistant_id, Outcome.FAILED, detail)
        return
    said = _last_line(result.stderr if result.returncode else result.stdout) or _last_line(
        result.stdout + result.stderr
    )
    if result.returncode:
        detail = f"`{command}` failed (exit {result.returncode})" + (f": {said}" if said else "")
        yield Step(Kind.DAEMON, assistant_id, Outcome.FAILED, detail)
        return
    yield Step(
        Kind.DAEMON, assistant_id, Outcome.DONE, f"`{command}`" + (f": {said}" if said else "")
    )


def _last_line(text: str, limit: int = 200) -> str:
    """The last non-blank line of a command's output, trimmed for a one-line message."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:limit] if lines else ""


# --- The engine -----------------------------------------------------------------------------


def _read_engine(engine: Engine, read: Callable[[docker.DockerClient], _T]) -> _T:
    """What `read` finds on a client for `engine`, closed afterwards (blocking); an engine that
    cannot be reached or read raises RoostError, in one line."""
    try:
        client = connect(engine)
        try:
            return read(client)
        finally:
            client.close()
    except _ENGINE_ERRORS as error:
        raise RoostError(f"engine {engine.name}: {_engine_message(error)}") from None


def _on_engine(
    engine: Engine, act: Callable[[docker.DockerClient], Iterator[Step]]
) -> Iterator[Step]:
    """`act`'s steps on a client for `engine`, closed afterwards (also when the caller abandons
    the generator half way); an engine that cannot be reached or read is one failed step."""
    try:
        client = connect(engine)
    except _ENGINE_ERRORS as error:
        yield Step(Kind.ENGINE, engine.name, Outcome.FAILED, _engine_message(error))
        return
    try:
        yield from act(client)
    except _ENGINE_ERRORS as error:  # listing the containers failed: each step catches its own
        yield Step(Kind.ENGINE, engine.name, Outcome.FAILED, _engine_message(error))
    finally:
        client.close()


def _engine_message(error: BaseException) -> str:
    """The engine's own refusal in one line (`cannot join network of a non running container:
    <id>`), ids shortened; else the most specific cause of a connection failure."""
    if isinstance(error, APIError) and error.explanation:
        text = " ".join(str(error.explanation).split())
        return _LONG_ID.sub(r"\1", text)[:200]
    return describe_error(error)


def engine_of(name: str, engines: Sequence[Engine], seen_on: str = "") -> Engine:
    """The engine holding docker assistant `name`'s containers: the one named `seen_on` (where
    the fleet last saw them) without asking, else the one whose containers (derived names or
    the `roost.assistant` label) are there; with a single engine configured, that one. Raises
    RoostError naming the engines looked at when none has them or one cannot be reached."""
    for engine in engines:
        if seen_on and engine.name == seen_on:
            return engine
    scans = scan_engines(engines)
    for scan in scans:
        if any(scan.named(container) for container in container_names(name)):
            return scan.engine
        if name in scan.labelled():
            return scan.engine
    down = [f"{scan.engine.name} ({scan.error})" for scan in scans if scan.error]
    if len(engines) == 1 and not down:
        return engines[0]
    looked = ", ".join(engine.name for engine in engines)
    if down:
        raise RoostError(f"no container of {name} found; unreachable: {', '.join(down)}")
    raise RoostError(f"no container of {name} on any engine ({looked})")
