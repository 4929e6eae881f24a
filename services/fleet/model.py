"""The fleet: every assistant roost knows of, assembled from its sources without any I/O.

Each source (this machine's tmux, the Vellum lockfile, Docker engines, roost's own runtimes, the
platform, health probes) refreshes on its own and replaces its part of a `FleetSnapshot`;
`build_fleet` turns a snapshot into the rows the table, the detail panel and `roost ps` show.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from functools import cached_property
from urllib.parse import urlsplit

from services.core.config import RuntimeConfig
from services.core.errors import RoostError
from services.core.memo import Memo
from services.core.safe_text import printable
from services.docker.discovery import ContainerState, EngineScan, container_names
from services.health.probes import UNANSWERED, HealthRecord
from services.health.status import Bucket, bucket
from services.terminal.tmux import TmuxListing, TmuxSession, TmuxState
from services.vellum.lockfile import LockfileEntry, LockfileRead

TMUX_SESSION = "tmux session"
THIS_MACHINE = "this machine"
HOST_KEY = "host:this-machine"


class Source(StrEnum):
    """Where roost learned of an assistant."""

    HOST = "this machine"
    LOCKFILE = "lockfile"
    DOCKER_LABEL = "docker label"
    CONFIG = "config.toml"
    PROBLEM = "problem"


class AssistantKind(StrEnum):
    """What a row of the fleet is: it decides what roost can do to an assistant
    (`services.roost.Roost.capabilities`). The value is what the KIND column, `roost ps` and a
    `kind:` filter show."""

    THIS_MACHINE = "local host"
    LOCAL = "local"
    DOCKER = "docker"
    MANAGED = "vellum"
    GCP = "gcp"
    AWS = "aws"
    CUSTOM = "custom"
    # Rows that stand for a source that could not be read (`Source.PROBLEM`).
    LOCKFILE = "lockfile"
    PLATFORM = "platform"
    DOCKER_ENGINE = "docker engine"

    @staticmethod
    def of_cloud(cloud: str) -> AssistantKind | str:
        """The kind a lockfile entry's `cloud` names. The lockfile's clouds are an open set:
        one roost does not know stays its text, shown as it is (reached over HTTP only)."""
        return _CLOUDS.get(cloud, cloud)


_CLOUDS = {
    kind.value: kind
    for kind in (
        AssistantKind.LOCAL,
        AssistantKind.DOCKER,
        AssistantKind.MANAGED,
        AssistantKind.GCP,
        AssistantKind.AWS,
        AssistantKind.CUSTOM,
    )
}
"""The kinds a lockfile's `cloud` can name (never this machine's nor a problem row's)."""


@dataclass(frozen=True)
class Assistant:
    """One row of the fleet, with the terminal sessions shown under it."""

    key: str
    """Unique and stable across refreshes: the table's row key."""
    id: str
    name: str
    kind: AssistantKind | str
    """A lockfile `cloud` roost does not know is kept as its text (`AssistantKind.of_cloud`)."""
    where: str
    status: str
    """Lifecycle as its owner reports it: running, sleeping, exited, active (platform), ..."""
    detail: str = ""
    health: str = ""
    """What the runtime's health endpoint said; empty until probed or when not probed."""
    latency_ms: float | None = None
    version: str | None = None
    runtime_url: str | None = None
    sessions: tuple[TmuxSession, ...] = ()
    last_seen: datetime | None = None
    source: Source = Source.LOCKFILE
    active: bool = False
    facts: tuple[tuple[str, str], ...] = ()
    """Further (label, value) pairs for the detail panel, secrets already masked."""
    latencies: tuple[float | None, ...] = ()
    """The last health probes' latencies, oldest first (None: no answer)."""
    failures: int = 0
    """Unanswered health probes in a row."""
    last_error: str = ""
    flapping: bool = False
    """The health status changed three times or more within two minutes."""

    @cached_property
    def search_text(self) -> SearchText:
        """What the filter matches, computed once per assistant object."""
        return SearchText.of({name: get(self) for name, get in FILTER_FIELDS.items()})

    @property
    def summary(self) -> str:
        """One status for a line of text (`roost ps`, the log): asleep wins, then health."""
        if self.status in ("sleeping", "invalid") or not self.health:
            return self.status
        return self.health


@dataclass(frozen=True)
class HealthTarget:
    """How to probe one assistant's health: direct (`/v1/health`) or managed (platform)."""

    key: str
    assistant_id: str
    url: str
    managed: bool
    token_file: str | None = None
    """A file holding the bearer token (a guardian token or a config runtime's token file)."""
    inline_token: str | None = field(default=None, repr=False)
    """The lockfile entry's `bearerToken`: a secret, never shown."""
    lockfile: str = "the lockfile"
    """The file `inline_token` comes from, for errors about it."""


@dataclass(frozen=True)
class FleetSnapshot:
    """The latest result of every source. Each worker replaces only its own part."""

    hostname: str
    tmux_server: str
    tmux: TmuxListing | None = None
    tmux_version: str | None = None
    tmux_seen: datetime | None = None
    lockfile: LockfileRead | None = None
    local_alive: Mapping[str, bool] = field(default_factory=dict)
    """assistantId -> whether its daemon's PID file names a live process (local entries)."""
    engines: tuple[EngineScan, ...] = ()
    runtimes: tuple[RuntimeConfig, ...] = ()
    platform_error: str | None = None
    health: Mapping[str, HealthRecord] = field(default_factory=dict)
    last_seen: Mapping[str, datetime] = field(default_factory=dict)
    actions: Mapping[str, str] = field(default_factory=dict)
    """assistant key -> the lifecycle action under way (`stopping…`), shown as its status."""


def session_status(session: TmuxSession) -> str:
    """`exited` once every pane's command has ended, else whether a client is attached."""
    if session.panes and session.dead_panes == session.panes:
        return "exited"
    return "attached" if session.attached else "detached"


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
        self._fleet: tuple[Assistant, ...] = ()
        self._host_inputs: tuple[object, ...] = ()

    def build(self, snapshot: FleetSnapshot) -> tuple[Assistant, ...]:
        plain = (self._this_machine(snapshot), *self._registry(snapshot))
        changed = _changed_keys(self._health, snapshot.health) | _changed_keys(
            self._seen, snapshot.last_seen
        )
        reuse = len(plain) == len(self._plain)
        fleet = tuple(
            self._fleet[index]
            if reuse and row is self._plain[index] and row.key not in changed
            else _with_health(row, snapshot)
            for index, row in enumerate(plain)
        )
        self._plain, self._fleet = plain, fleet
        self._health, self._seen = snapshot.health, snapshot.last_seen
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

    def _registry(self, snapshot: FleetSnapshot) -> list[Assistant]:
        inputs = (
            snapshot.lockfile,
            snapshot.local_alive,
            snapshot.engines,
            snapshot.runtimes,
            snapshot.hostname,
            snapshot.platform_error,
        )
        if len(inputs) == len(self._registry_inputs) and all(
            a is b for a, b in zip(inputs, self._registry_inputs, strict=True)
        ):
            return self._registry_rows
        self._registry_inputs, self._registry_rows = inputs, self._registry_rows_of(snapshot)
        return self._registry_rows

    def _registry_rows_of(self, snapshot: FleetSnapshot) -> list[Assistant]:
        rows: list[Assistant] = []
        read = snapshot.lockfile
        if read is not None:
            rows += [_lockfile_problem(str(problem)) for problem in read.problems]
            taken: set[str] = set()
            for position, entry in enumerate(read.entries, 1):
                key = entry_key(entry.assistant_id)
                # A hand-edited file may repeat an id: each entry still gets a row of its own.
                key = f"{key}@{position}" if key in taken else key
                taken.add(key)
                inputs = (
                    entry,
                    entry.assistant_id == read.active,
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
                            entry, key, read.active, snapshot
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


def _tmux_version(snapshot: FleetSnapshot) -> str:
    """tmux's version once asked; `not found` only when listing found it not installed."""
    if snapshot.tmux_version:
        return snapshot.tmux_version
    if snapshot.tmux is None:
        return "checking"
    return "not found" if snapshot.tmux.state is TmuxState.NOT_INSTALLED else "unknown"


HOST_NAMES = (THIS_MACHINE, "this-machine", "local")
"""What names this machine on the command line (`roost sessions local`)."""


def find_assistant(fleet: Iterable[Assistant], name: str) -> Assistant:
    """The assistant called `name`: an exact id, then a display name, then this machine by one
    of HOST_NAMES or its host name. Raises RoostError listing the choices, and the sources that
    could not be read (a broken lockfile may be why `name` is missing)."""
    candidates = [a for a in fleet if a.source is not Source.PROBLEM]
    unread = [a for a in fleet if a.source is Source.PROBLEM]
    for matches in (
        [a for a in candidates if a.id == name],
        [a for a in candidates if a.name == name],
        [a for a in candidates if a.source is Source.HOST and name in (*HOST_NAMES, a.where)],
    ):
        if len(matches) == 1:
            return matches[0]
        if matches:
            where = ", ".join(f"{a.id} ({a.kind} on {a.where})" for a in matches)
            raise RoostError(f"{len(matches)} assistants are called {name!r}: {where}")
    choices = ", ".join(a.id for a in candidates)
    problems = "".join(f"; {a.name} could not be read: {a.detail}" for a in unread)
    raise RoostError(f"no assistant {name!r}; the choices are: {choices}{problems}")


def entry_key(assistant_id: str) -> str:
    return f"lockfile:{assistant_id}"


def _from_entry(
    entry: LockfileEntry, key: str, active: str | None, snapshot: FleetSnapshot
) -> Assistant:
    status, detail, where = "", "", _host_of(entry.runtime_url) or ""
    kind = AssistantKind.of_cloud(entry.cloud)
    facts = list(entry.masked)
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
        facts += container_facts
    elif kind is AssistantKind.MANAGED:
        status, where = "active", _host_of(entry.runtime_url) or "platform"
    else:
        status = "remote"
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
        facts=tuple(facts),
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


# Filtering and sorting -------------------------------------------------------------------------

FILTER_FIELDS: Mapping[str, Callable[[Assistant], str]] = {
    "name": lambda a: f"{a.name} {a.id}",
    "kind": lambda a: a.kind,
    "where": lambda a: a.where,
    "status": lambda a: a.status,
    "health": lambda a: a.health,
    "source": lambda a: a.source.value,
    "version": lambda a: a.version or "",
}
"""`field:value` filter tokens; a bare word matches any of them."""

_FIELD = re.compile(r"([A-Za-z_]\w*):")


class FilterError(RoostError):
    """A filter the user typed that cannot mean anything (a field that does not exist)."""


@dataclass(frozen=True)
class FilterTerm:
    """One word of a filter: `value` (lower-cased) must occur in `field`, or in any field."""

    field: str | None
    value: str


def parse_filter(query: str) -> tuple[FilterTerm, ...]:
    """The terms of `query`: words separated by blanks, each `field:value` or a bare value; a
    value in double quotes may hold blanks (`name:"my bot"`), and an unclosed quote runs to the
    end (the user is still typing it). Raises FilterError for a field that does not exist."""
    terms: list[FilterTerm] = []
    position, end = 0, len(query)
    while position < end:
        if query[position].isspace():
            position += 1
            continue
        field_name: str | None = None
        if (named := _FIELD.match(query, position)) is not None:
            field_name = named[1].lower()
            if field_name not in FILTER_FIELDS:
                raise FilterError(
                    f"unknown field {named[1]!r}; fields: {', '.join(FILTER_FIELDS)} "
                    '(quote a word to search for it as typed: "a:b")'
                )
            position = named.end()
        if query.startswith('"', position):
            closing = query.find('"', position + 1)
            stop = end if closing < 0 else closing
            value, position = query[position + 1 : stop], stop + 1
        else:
            stop = position
            while stop < end and not query[stop].isspace():
                stop += 1
            value, position = query[position:stop], stop
        terms.append(FilterTerm(field_name, value.lower()))
    return tuple(terms)


@dataclass(frozen=True)
class SearchText:
    """What a filter looks at, lower-cased: each field, and all of them in one string."""

    fields: Mapping[str, str]
    everything: str

    @classmethod
    def of(cls, fields: Mapping[str, str]) -> SearchText:
        lowered = {name: value.lower() for name, value in fields.items()}
        return cls(lowered, "\x00".join(lowered.values()))

    def has(self, term: FilterTerm) -> bool:
        if term.field is None:
            return term.value in self.everything
        return term.value in self.fields[term.field]


def filter_fleet(
    assistants: Iterable[Assistant], query: str
) -> list[tuple[Assistant, tuple[TmuxSession, ...]]]:
    """The assistants and sessions matching `query` (see `parse_filter`): every term must match,
    a bare one anywhere, a `field:value` one in that field (kind:docker, status:sleeping).

    An assistant that matches keeps all its sessions; one that does not is still shown, for
    context, when any of its sessions match. Raises FilterError for a field that does not exist.
    """
    terms = parse_filter(query)
    if not terms:
        return [(assistant, assistant.sessions) for assistant in assistants]

    def matches(text: SearchText) -> bool:
        return all(text.has(term) for term in terms)

    shown: list[tuple[Assistant, tuple[TmuxSession, ...]]] = []
    for assistant in assistants:
        if matches(assistant.search_text):
            shown.append((assistant, assistant.sessions))
            continue
        sessions = tuple(
            session for session in assistant.sessions if matches(_session_text(assistant, session))
        )
        if sessions:
            shown.append((assistant, sessions))
    return shown


def _session_text(assistant: Assistant, session: TmuxSession) -> SearchText:
    return SearchText.of(
        {
            **dict.fromkeys(FILTER_FIELDS, ""),
            "name": session.name,
            "kind": TMUX_SESSION,
            "where": assistant.where,
            "status": session_status(session),
        }
    )


_TRIAGE = {Bucket.BAD: 0, Bucket.WARN: 1, Bucket.ASLEEP: 2, Bucket.GOOD: 3}
"""Sorting by status or health puts what needs attention first."""

SORT_KEYS: Mapping[str, Callable[[Assistant], tuple[object, ...]]] = {
    "name": lambda a: (a.name.lower(),),
    "kind": lambda a: (a.kind, a.name.lower()),
    "where": lambda a: (a.where, a.name.lower()),
    "status": lambda a: (_TRIAGE[bucket(a.status)], a.status, a.name.lower()),
    "health": lambda a: (not a.health, _TRIAGE[bucket(a.health)], a.health, a.name.lower()),
    "latency": lambda a: (a.latency_ms is None, a.latency_ms or 0.0, a.name.lower()),
    "version": lambda a: (a.version or "", a.name.lower()),
    "sessions": lambda a: (-len(a.sessions), a.name.lower()),
    "last_seen": lambda a: (a.last_seen is None, -(a.last_seen.timestamp() if a.last_seen else 0)),
}


def sort_fleet(
    assistants: Sequence[Assistant], column: str | None, reverse: bool = False
) -> list[Assistant]:
    """Sorted by `column` (None keeps source order); this machine always stays on top."""
    if column is None:
        return list(assistants)
    host = [a for a in assistants if a.key == HOST_KEY]
    rest = sorted(
        (a for a in assistants if a.key != HOST_KEY), key=SORT_KEYS[column], reverse=reverse
    )
    return host + rest
