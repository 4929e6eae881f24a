"""Building the fleet from a snapshot: one row per assistant, from every source, with its
health on top; and the health targets (how to probe each) the same sources give.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from urllib.parse import urlsplit

from services.activity.model import Activity, session_key, session_owner
from services.core.config import RuntimeConfig
from services.core.memo import Memo
from services.core.safe_text import printable
from services.docker.discovery import ContainerState, EngineScan, container_names
from services.fleet.model import (
    HOST_KEY,
    THIS_MACHINE,
    Assistant,
    AssistantKind,
    EntryFacts,
    FleetSnapshot,
    Source,
    ssh_host_key,
)
from services.health.probes import UNANSWERED, HealthRecord
from services.health.target import HealthTarget
from services.terminal.host_tmux import HostListing, host_socket
from services.terminal.tmux import TmuxListing, TmuxState, server_name
from services.vellum.lockfile import LockfileEntry


def build_fleet(snapshot: FleetSnapshot) -> tuple[Assistant, ...]:
    """The fleet a snapshot makes (for one-off use; the TUI keeps a FleetBuilder)."""
    return FleetBuilder().build(snapshot)


class FleetBuilder:
    """Builds the fleet, remembering the previous build: an assistant whose inputs are unchanged
    comes back as the very same object, so the screen redraws only the rows that changed.

    Sources refresh often and separately (tmux every few seconds, one health answer at a time),
    so the build works in layers, each reused whole when its inputs are the very same objects
    as last time: this machine; the registry's rows (lockfile, Docker, config); health on top,
    redone only for the rows whose health or last-seen time changed. With a thousand assistants
    one new health answer then costs a pass of identity checks, not a thousand new rows.
    """

    def __init__(self) -> None:
        self._memo: Memo[Assistant] = Memo()
        self._registry_inputs: tuple[object, ...] = ()
        self._registry_rows: list[Assistant] = []
        self._plain: tuple[Assistant, ...] = ()
        self._health: Mapping[str, HealthRecord] = {}
        self._seen: Mapping[str, datetime] = {}
        self._activity: Mapping[str, Activity] = {}
        self._fleet: tuple[Assistant, ...] = ()
        self._host_inputs: tuple[object, ...] = ()
        self._hosts: tuple[HostListing, ...] = ()
        self._host_rows: tuple[Assistant, ...] = ()
        self._parts: tuple[object, ...] = (None, None, None)
        """This machine, the hosts' rows and the registry's rows, as last built."""
        self._positions: dict[str, int] = {}
        """Each key's position in the fleet last built."""

    def build(self, snapshot: FleetSnapshot) -> tuple[Assistant, ...]:
        parts = (self._this_machine(snapshot), self._ssh_hosts(snapshot), self._registry(snapshot))
        changed = (
            _changed_keys(self._health, snapshot.health)
            | _changed_keys(self._seen, snapshot.last_seen)
            | {session_owner(key) for key in _changed_keys(self._activity, snapshot.activity)}
        )
        machine, hosts, registry = parts
        if self._positions and hosts is self._parts[1] and registry is self._parts[2]:
            # The same rows as last time, but for this machine's (its key and place never
            # change): only those whose inputs changed are made again, found by key (with
            # 10,000 assistants a pass over them all took longer than the rest of a row update).
            if machine is not self._plain[0]:
                self._plain = (machine, *self._plain[1:])
                changed.add(machine.key)
            self._parts = parts
            rows = list(self._fleet)
            for key in changed:
                if (index := self._positions.get(key)) is not None:
                    rows[index] = _with_activity(
                        _with_health(self._plain[index], snapshot), snapshot
                    )
            fleet = tuple(rows)
        else:
            plain = (machine, *hosts, *registry)
            reuse = len(plain) == len(self._plain)
            fleet = tuple(
                self._fleet[index]
                if reuse and row is self._plain[index] and row.key not in changed
                else _with_activity(_with_health(row, snapshot), snapshot)
                for index, row in enumerate(plain)
            )
            positions = {row.key: index for index, row in enumerate(plain)}
            # A key twice (a hand-edited file) would hide a row from the lookup: none then.
            self._positions = positions if len(positions) == len(plain) else {}
            self._plain, self._parts = plain, parts
        self._fleet = fleet
        self._health, self._seen = snapshot.health, snapshot.last_seen
        self._activity = snapshot.activity
        if snapshot.actions:  # few and short-lived: made anew each build while they last
            return tuple(
                replace(row, status=snapshot.actions[row.key])
                if row.key in snapshot.actions
                else row
                for row in fleet
            )
        return fleet

    def _this_machine(self, snapshot: FleetSnapshot) -> Assistant:
        inputs = (snapshot.tmux, snapshot.tmux_version, snapshot.tmux_seen, snapshot.hostname)
        if self._plain and all(a is b for a, b in zip(inputs, self._host_inputs, strict=True)):
            return self._plain[0]
        self._host_inputs = inputs
        return _this_machine(snapshot)

    def _ssh_hosts(self, snapshot: FleetSnapshot) -> tuple[Assistant, ...]:
        """A row per `[[hosts]]` host, each made again only when its listing changed."""
        if snapshot.hosts is self._hosts:
            return self._host_rows
        same = len(snapshot.hosts) == len(self._hosts)
        rows = tuple(
            self._host_rows[index] if same and found is self._hosts[index] else _from_host(found)
            for index, found in enumerate(snapshot.hosts)
        )
        self._hosts, self._host_rows = snapshot.hosts, rows
        return rows

    def _registry(self, snapshot: FleetSnapshot) -> list[Assistant]:
        inputs = (
            snapshot.lockfile,
            snapshot.local_alive,
            snapshot.engines,
            snapshot.runtimes,
            snapshot.hostname,
            snapshot.platform_error,
        )
        # The lockfile is read again every few seconds: the same contents (compared in C)
        # are the same rows, without a pass over its entries.
        if inputs == self._registry_inputs:
            return self._registry_rows
        self._registry_inputs, self._registry_rows = inputs, self._registry_rows_of(snapshot)
        return self._registry_rows

    def _registry_rows_of(self, snapshot: FleetSnapshot) -> list[Assistant]:
        rows: list[Assistant] = []
        read = snapshot.lockfile
        if read is not None:
            rows += [_lockfile_problem(str(problem)) for problem in read.problems]
            taken: set[str] = set()
            active = read.active
            for position, entry in enumerate(read.entries, 1):
                key = entry_key(entry.assistant_id)
                # A hand-edited file may repeat an id: each entry still gets a row of its own.
                key = f"{key}@{position}" if key in taken else key
                taken.add(key)
                inputs = (
                    entry,
                    entry.assistant_id == active,
                    snapshot.local_alive.get(entry.assistant_id),
                    snapshot.hostname,
                    snapshot.engines
                    if AssistantKind.of_cloud(entry.cloud) is AssistantKind.DOCKER
                    else None,
                )
                rows.append(
                    self._memo.get(
                        key,
                        inputs,
                        lambda entry=entry, key=key: _from_entry(  # type: ignore[misc]
                            entry, key, active, snapshot
                        ),
                    )
                )
        claimed = {a.id for a in rows if a.kind is AssistantKind.DOCKER}
        for scan in snapshot.engines:
            if scan.error is not None:
                if not scan.engine.implicit:
                    rows.append(_engine_down(scan))
                continue
            for name, container in sorted(scan.labelled().items()):
                if name not in claimed:
                    claimed.add(name)
                    rows.append(_labelled(name, container, scan))
        rows += [_from_runtime(runtime) for runtime in snapshot.runtimes]
        if snapshot.platform_error:
            rows.append(
                _problem(
                    "platform", AssistantKind.PLATFORM, "error (platform)", snapshot.platform_error
                )
            )
        self._memo.keep_only(row.key for row in rows)
        return rows


def _changed_keys(old: Mapping[str, object], new: Mapping[str, object]) -> set[str]:
    if old is new:
        return set()
    return {key for key in old.keys() | new.keys() if old.get(key) is not new.get(key)}


def _this_machine(snapshot: FleetSnapshot) -> Assistant:
    listing = snapshot.tmux or TmuxListing(TmuxState.RUNNING)
    if snapshot.tmux is None:
        status, detail = "checking", ""
    elif listing.state is TmuxState.RUNNING:
        count = len(listing.sessions)
        status, detail = "running", f"{count} tmux session{'' if count == 1 else 's'}"
    else:
        status, detail = listing.state.value, listing.detail
    return Assistant(
        key=HOST_KEY,
        id=THIS_MACHINE,
        name=THIS_MACHINE,
        kind=AssistantKind.THIS_MACHINE,
        where=snapshot.hostname,
        status=status,
        detail=detail,
        sessions=listing.sessions,
        last_seen=snapshot.tmux_seen,
        source=Source.HOST,
        facts=(
            ("tmux", _tmux_version(snapshot)),
            ("server", snapshot.tmux_server),
        ),
    )


def _from_host(found: HostListing) -> Assistant:
    """A host's row: whether it answers, and (like this machine) its tmux sessions."""
    host, listing = found.host, found.listing
    sessions = listing.sessions if listing else ()
    if found.problem is not None:
        retry = f"; next try in {found.retry_in:.0f} s" if found.retry_in is not None else ""
        status, detail = found.problem.value, f"{found.error}{retry}"
    elif listing is None:
        status, detail = "checking", ""
    elif listing.state is TmuxState.RUNNING:
        count = len(sessions)
        status, detail = "running", f"{count} tmux session{'' if count == 1 else 's'}"
    else:
        status, detail = listing.state.value, listing.detail
    server = server_name(host_socket(host))
    return Assistant(
        key=ssh_host_key(host.name),
        id=host.name,
        name=host.name,
        kind=AssistantKind.SSH_HOST,
        where=host.name,
        status=status,
        detail=detail,
        latency_ms=found.latency_ms,
        version=found.tmux_version,
        sessions=sessions,
        last_seen=found.seen,
        source=Source.CONFIG,
        failures=found.failures,
        last_error=found.error,
        facts=(
            ("ssh", printable(host.ssh)),
            ("tmux", found.tmux_version or "unknown"),
            ("server", printable(server)),
            ("docker", "over ssh://" if host.docker else "not watched"),
        ),
    )


def _tmux_version(snapshot: FleetSnapshot) -> str:
    """tmux's version once asked; `not found` only when listing found it not installed."""
    if snapshot.tmux_version:
        return snapshot.tmux_version
    if snapshot.tmux is None:
        return "checking"
    return "not found" if snapshot.tmux.state is TmuxState.NOT_INSTALLED else "unknown"


def entry_key(assistant_id: str) -> str:
    return f"lockfile:{assistant_id}"


def _from_entry(
    entry: LockfileEntry, key: str, active: str | None, snapshot: FleetSnapshot
) -> Assistant:
    # Where the runtime URL's host, unless the kind says better (parsing 10,000 URLs was a
    # good part of a first render, for local assistants that show this machine's name).
    status, detail, where = "", "", None
    kind = AssistantKind.of_cloud(entry.cloud)
    container_facts: list[tuple[str, str]] = []
    if entry.problems:
        status, detail = "invalid", "; ".join(entry.problems)
    elif key != entry_key(entry.assistant_id):
        status, detail = "invalid", f"assistantId {entry.assistant_id!r} appears more than once"
    elif kind is AssistantKind.LOCAL:
        where = snapshot.hostname
        alive = snapshot.local_alive.get(entry.assistant_id)
        status = {True: "running", False: "sleeping", None: "unknown"}[alive]
        if alive is False:
            detail = "its daemon is not running (no live PID in vellum.pid)"
    elif kind is AssistantKind.DOCKER:
        status, detail, where, container_facts = _docker_state(entry.assistant_id, snapshot)
    elif kind is AssistantKind.MANAGED:
        status, where = "active", _host_of(entry.runtime_url) or "platform"
    else:
        status = "remote"
    if where is None:
        where = _host_of(entry.runtime_url) or ""
    return Assistant(
        key=key,
        id=entry.assistant_id,
        name=entry.display_name,
        kind=kind,
        where=where,
        status=status,
        detail=detail,
        runtime_url=entry.base_url,
        source=Source.LOCKFILE,
        active=bool(active) and active == entry.assistant_id,
        facts=EntryFacts(entry, tuple(container_facts)),
    )


def _docker_state(
    name: str, snapshot: FleetSnapshot
) -> tuple[str, str, str, list[tuple[str, str]]]:
    """(status, detail, where, facts) of a docker assistant from its derived containers."""
    facts: list[tuple[str, str]] = []
    found_on: EngineScan | None = None
    for scan in snapshot.engines:
        for container_name in container_names(name):
            container = scan.named(container_name)
            if container is not None:
                found_on = found_on or scan
                facts.append(
                    (container_name, f"{printable(container.status)} on {scan.engine.name}")
                )
    main = found_on.named(container_names(name)[0]) if found_on else None
    if main is None:
        down = [s.engine.name for s in snapshot.engines if s.error]
        if down:
            return "unknown", f"engine {', '.join(down)} unreachable", "", facts
        return "sleeping", f"no container {container_names(name)[0]}", "", facts
    assert found_on is not None
    where = found_on.engine.name
    if main.state != "running":
        return "sleeping", printable(f"{main.name}: {main.status}"), where, facts
    if main.health == "unhealthy":
        return "running", f"{main.name} healthcheck: unhealthy", where, facts
    return "running", "", where, facts


STOPPED_STATES = ("exited", "created")
"""A container in one of these states was stopped (or never started): its assistant sleeps."""


def _labelled(name: str, container: ContainerState, scan: EngineScan) -> Assistant:
    asleep = container.state in STOPPED_STATES
    return Assistant(
        key=f"docker:{scan.engine.name}/{container.id}",
        id=name,
        name=printable(name),
        kind=AssistantKind.DOCKER,
        where=scan.engine.name,
        status="sleeping" if asleep else printable(container.state),
        detail=f"{printable(container.name)}: {printable(container.status)}" if asleep else "",
        health=printable(container.health or ""),  # the engine's healthcheck: no HTTP probe
        source=Source.DOCKER_LABEL,
        facts=(
            ("container", printable(container.name)),
            ("container id", printable(container.id)),
            ("image", printable(container.image)),
            ("engine", f"{scan.engine.name} ({scan.engine.describe()})"),
            ("state", printable(container.status)),
        ),
    )


def _from_runtime(runtime: RuntimeConfig) -> Assistant:
    return Assistant(
        key=f"runtime:{runtime.name}",
        id=runtime.name,
        name=runtime.name,
        kind=AssistantKind.CUSTOM,
        where=_host_of(runtime.url) or runtime.url,
        status="remote",
        runtime_url=runtime.url,
        source=Source.CONFIG,
        facts=(
            ("url", runtime.url),
            ("token file", str(runtime.token_file) if runtime.token_file else "none"),
        ),
    )


def _engine_down(scan: EngineScan) -> Assistant:
    return _problem(
        f"engine:{scan.engine.name}",
        AssistantKind.DOCKER_ENGINE,
        "unreachable",
        f"{scan.engine.name} ({scan.engine.describe()}): {scan.error}",
        name=f"engine {scan.engine.name}",
    )


def _lockfile_problem(problem: str) -> Assistant:
    return _problem(f"problem:{problem}", AssistantKind.LOCKFILE, "error (lockfile)", problem)


def _problem(key: str, kind: AssistantKind, status: str, detail: str, name: str = "") -> Assistant:
    return Assistant(
        key=key,
        id=name or kind.value,
        name=name or kind.value,
        kind=kind,
        where="",
        status=status,
        detail=printable(detail),  # an engine's or the platform's error text
        source=Source.PROBLEM,
    )


def _with_health(assistant: Assistant, snapshot: FleetSnapshot) -> Assistant:
    record = snapshot.health.get(assistant.key)
    seen = snapshot.last_seen.get(assistant.key, assistant.last_seen)
    if record is None:
        return assistant if seen is None else replace(assistant, last_seen=seen)
    health, status = record.health, assistant.status
    if status in ("remote", "unknown"):  # nothing else could tell; the runtime's answer does
        status = "unreachable" if health.status in UNANSWERED else "running"
    return replace(
        assistant,
        status=status,
        detail=assistant.detail or health.detail,
        health=health.status,
        latency_ms=health.latency_ms,
        version=health.version or assistant.version,
        last_seen=seen,
        latencies=record.latencies,
        failures=record.failures,
        last_error=record.last_error,
        flapping=record.flapping,
    )


def _with_activity(assistant: Assistant, snapshot: FleetSnapshot) -> Assistant:
    """Its own activity, or (this machine) its sessions' agents' and the most urgent of them,
    named after its session."""
    activity = snapshot.activity.get(assistant.key)
    if not assistant.sessions or not snapshot.activity:
        return assistant if activity is None else replace(assistant, activity=activity)
    sessions = {
        session.id: (session.name, found)
        for session in assistant.sessions
        if (found := snapshot.activity.get(session_key(assistant.key, session.id)))
    }
    if not sessions:
        return assistant if activity is None else replace(assistant, activity=activity)
    if activity is None:
        name, urgent = min(sessions.values(), key=lambda pair: pair[1].state.triage)
        activity = replace(urgent, detail=f"{printable(name)}: {urgent.detail}".rstrip(": "))
    return replace(
        assistant,
        activity=activity,
        session_activity={key: found for key, (_, found) in sessions.items()},
    )


def _host_of(url: str | None) -> str | None:
    return urlsplit(url).hostname if url else None


def health_targets(snapshot: FleetSnapshot, fleet: Iterable[Assistant]) -> list[HealthTarget]:
    """What to probe: every assistant with a runtime URL that is not asleep or invalid."""
    entries = {e.assistant_id: e for e in snapshot.lockfile.entries} if snapshot.lockfile else {}
    runtimes = {f"runtime:{r.name}": r for r in snapshot.runtimes}
    lockfile = _lockfile_name(snapshot)
    targets = (
        _target(assistant, entries, runtimes, lockfile)
        for assistant in fleet
        if assistant.status not in ("sleeping", "invalid")
    )
    return [target for target in targets if target is not None]


def health_target(snapshot: FleetSnapshot, assistant: Assistant) -> HealthTarget | None:
    """How to reach `assistant`'s runtime (URL and credentials); None when it has none."""
    entries = {e.assistant_id: e for e in snapshot.lockfile.entries} if snapshot.lockfile else {}
    runtimes = {f"runtime:{r.name}": r for r in snapshot.runtimes}
    return _target(assistant, entries, runtimes, _lockfile_name(snapshot))


def _lockfile_name(snapshot: FleetSnapshot) -> str:
    path = snapshot.lockfile.path if snapshot.lockfile else None
    return str(path) if path else "the lockfile"


def _target(
    assistant: Assistant,
    entries: Mapping[str, LockfileEntry],
    runtimes: Mapping[str, RuntimeConfig],
    lockfile: str,
) -> HealthTarget | None:
    if not assistant.runtime_url:
        return None
    entry = entries.get(assistant.id) if assistant.source is Source.LOCKFILE else None
    runtime = runtimes.get(assistant.key)
    inline = entry.raw.get("bearerToken") if entry else None
    return HealthTarget(
        key=assistant.key,
        assistant_id=assistant.id,
        url=assistant.runtime_url,
        managed=assistant.kind is AssistantKind.MANAGED,
        token_file=str(runtime.token_file) if runtime and runtime.token_file else None,
        inline_token=inline if isinstance(inline, str) else None,
        lockfile=lockfile,
    )
