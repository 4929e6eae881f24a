"""The fleet's model: every assistant roost knows of (`Assistant`), where roost learned of it
(`Source`), and the latest result of every source (`FleetSnapshot`), without any I/O.

Each source (this machine's tmux, the Vellum lockfile, Docker engines, roost's own runtimes, the
platform, health probes) refreshes on its own and replaces its part of a `FleetSnapshot`;
fleet/builder.py turns a snapshot into the rows the table, the detail panel and `roost ps` show,
fleet/filter.py and fleet/sort.py pick and order them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from functools import cached_property

from services.activity.model import Activity
from services.core.config import RuntimeConfig
from services.core.errors import RoostError
from services.docker.discovery import EngineScan
from services.health.probes import HealthRecord
from services.terminal.host_tmux import HostListing
from services.terminal.tmux import TmuxListing, TmuxSession
from services.vellum.lockfile import LockfileEntry, LockfileRead

TMUX_SESSION = "tmux session"
THIS_MACHINE = "this machine"
HOST_KEY = "host:this-machine"


def ssh_host_key(name: str) -> str:
    """The fleet key of the `[[hosts]]` host called `name`."""
    return f"ssh:{name}"


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
    SSH_HOST = "ssh host"
    """Another machine reached over ssh (`[[hosts]]`): like this machine, its tmux sessions
    are rows under it."""

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


class EntryFacts(Sequence[tuple[str, str]]):
    """A lockfile assistant's facts: its entry's fields (secrets masked), then `more`. The
    entry's are listed when first asked for: masking ten thousand entries' fields was a fifth
    of a first render, for a detail panel that shows one assistant."""

    def __init__(self, entry: LockfileEntry, more: tuple[tuple[str, str], ...] = ()) -> None:
        self.entry, self.more = entry, more

    def _all(self) -> tuple[tuple[str, str], ...]:
        return self.entry.masked + self.more

    def __getitem__(self, index: int) -> tuple[str, str]:  # type: ignore[override]
        return self._all()[index]

    def __len__(self) -> int:
        return len(self._all())

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._all())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, EntryFacts):
            return self.entry == other.entry and self.more == other.more
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return repr(self._all())  # secrets masked


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
    facts: Sequence[tuple[str, str]] = ()
    """Further (label, value) pairs for the detail panel, secrets already masked."""
    latencies: tuple[float | None, ...] = ()
    """The last health probes' latencies, oldest first (None: no answer)."""
    failures: int = 0
    """Unanswered health probes in a row."""
    last_error: str = ""
    flapping: bool = False
    """The health status changed three times or more within two minutes."""
    activity: Activity | None = None
    """What it is doing, from its event stream (docs/protocol.md §7); None when roost does not
    follow one for it (no runtime, or a front end that follows no streams). For this machine,
    the most urgent of its sessions' coding agents."""
    session_activity: Mapping[str, Activity] = field(default_factory=dict)
    """tmux session id -> what the coding agents in that session are doing (services/agents);
    sessions with no agent roost knows of are not in it."""

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
    hosts: tuple[HostListing, ...] = ()
    """The latest look at each `[[hosts]]` host, in config.toml's order."""
    runtimes: tuple[RuntimeConfig, ...] = ()
    platform_error: str | None = None
    health: Mapping[str, HealthRecord] = field(default_factory=dict)
    last_seen: Mapping[str, datetime] = field(default_factory=dict)
    activity: Mapping[str, Activity] = field(default_factory=dict)
    """key -> what the assistant is doing (the console's activity follower)."""
    actions: Mapping[str, str] = field(default_factory=dict)
    """assistant key -> the lifecycle action under way (`stopping…`), shown as its status."""


def session_status(session: TmuxSession) -> str:
    """`exited` once every pane's command has ended, else whether a client is attached."""
    if session.panes and session.dead_panes == session.panes:
        return "exited"
    return "attached" if session.attached else "detached"


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


FILTER_FIELDS: Mapping[str, Callable[[Assistant], str]] = {
    "name": lambda a: f"{a.name} {a.id}",
    "kind": lambda a: a.kind,
    "where": lambda a: a.where,
    "status": lambda a: a.status,
    "health": lambda a: a.health,
    "source": lambda a: a.source,  # a StrEnum is its value (`.value` is slow to read)
    "version": lambda a: a.version or "",
    "activity": lambda a: f"{a.activity.state} {a.activity.detail}" if a.activity else "",
}
"""`field:value` filter tokens; a bare word matches any of them. The language is in
fleet/filter.py; the fields are here because each `Assistant` keeps its `search_text`."""


@dataclass(frozen=True)
class SearchText:
    """What a filter looks at, lower-cased: all the fields in one string, where a bare word is
    looked for; each field on its own is lowered only once a `field:` term asks for it (a
    filter's first keystroke makes the search text of every assistant)."""

    raw: Mapping[str, str]
    everything: str

    @classmethod
    def of(cls, fields: Mapping[str, str]) -> SearchText:
        return cls(fields, "\x00".join(fields.values()).lower())

    @cached_property
    def fields(self) -> Mapping[str, str]:
        return {name: value.lower() for name, value in self.raw.items()}
