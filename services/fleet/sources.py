"""The fleet's sources, each one async step that returns how it changes the snapshot.

A step returns an `Update` (a function of the latest snapshot) rather than a new snapshot, so
steps running concurrently never overwrite each other's results. The TUI runs each step on its
own poller; `roost ps` runs them all once with `sweep`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Mapping
from datetime import datetime

import httpx

from services.activity.model import Activity, session_key, session_owner
from services.context import Context
from services.core.config import Host
from services.core.errors import RoostError
from services.docker.discovery import scan_engines
from services.docker.engines import configured_engines
from services.fleet.builder import build_fleet, health_targets
from services.fleet.model import Assistant, FleetSnapshot
from services.health.probes import HealthRecord
from services.health.probing import Prober, probe_all
from services.hosts.probe import HostBackoff
from services.hosts.ssh import HostError
from services.terminal.host_tmux import HostListing, list_host
from services.terminal.tmux import TmuxState
from services.vellum.lockfile import sync_managed
from services.vellum.platform import PlatformClient
from services.vellum.registry import read_registry
from services.vellum.tokens import read_platform_token

log = logging.getLogger(__name__)

Update = Callable[[FleetSnapshot], FleetSnapshot]


def _set(**changes: object) -> Update:
    return lambda snapshot: dataclasses.replace(snapshot, **changes)  # type: ignore[arg-type]


def with_health(records: Mapping[str, HealthRecord], now: datetime) -> Update:
    """Merge these health records; the assistants that answered were seen `now`."""
    answered = [key for key, record in records.items() if record.health.latency_ms is not None]

    def update(latest: FleetSnapshot) -> FleetSnapshot:
        return dataclasses.replace(
            latest,
            health={**latest.health, **records},
            last_seen={**latest.last_seen, **dict.fromkeys(answered, now)},
        )

    return update


def with_activity(activities: Mapping[str, Activity]) -> Update:
    """Merge these assistants' activity (key -> its latest)."""

    def update(latest: FleetSnapshot) -> FleetSnapshot:
        return dataclasses.replace(latest, activity={**latest.activity, **activities})

    return update


def with_session_activity(owner: str, activities: Mapping[str, Activity]) -> Update:
    """Replace what the agents in `owner`'s tmux sessions are doing (session id -> activity):
    sessions left out have no agent any more."""
    mine = {session_key(owner, session_id): found for session_id, found in activities.items()}

    def update(latest: FleetSnapshot) -> FleetSnapshot:
        kept = {k: v for k, v in latest.activity.items() if session_owner(k) != owner or k == owner}
        if kept.keys() | mine.keys() == latest.activity.keys() and all(
            latest.activity[k] == v for k, v in mine.items()
        ):
            return latest
        return dataclasses.replace(latest, activity={**kept, **mine})

    return update


class FleetSources:
    """The steps, sharing one HTTP client and, when logged in, one platform client."""

    def __init__(self, context: Context, http: httpx.AsyncClient) -> None:
        self.context = context
        self.http = http
        self.platform: PlatformClient | None = None
        self._tmux_version: str | None = None
        """Asked once: tmux is not upgraded under a running roost often enough to ask more."""
        self.host_backoff = HostBackoff(context.config.tmux_refresh_seconds)
        """When each host that does not answer is tried again."""
        self._hosts: dict[str, HostListing] = {}

    def empty_snapshot(self) -> FleetSnapshot:
        return FleetSnapshot(
            hostname=self.context.hostname,
            tmux_server=self.context.tmux.describe(),
            runtimes=self.context.config.runtimes,
            hosts=tuple(HostListing(host) for host in self.context.config.hosts),
        )

    def connect_platform(self, lockfile_base_url: str | None) -> None:
        """Make the platform client, only when logged in: without a token nothing is sent.

        Raises RoostError when the token file is unreadable or not private (mode 0600).
        """
        token = read_platform_token(self.context.platform_token_file)
        if token is not None:
            url = self.context.platform_url(lockfile_base_url)
            self.platform = PlatformClient(self.http, url, token)

    async def this_machine(self) -> Update:
        tmux = self.context.tmux
        listing = await asyncio.to_thread(tmux.list_sessions)
        version = self._tmux_version
        if version is None and listing.state is not TmuxState.NOT_INSTALLED:
            version = self._tmux_version = await asyncio.to_thread(tmux.version)
        return _set(tmux=listing, tmux_version=version, tmux_seen=self.context.clock())

    async def hosts(self) -> Update:
        """Every `[[hosts]]` host's tmux, all at once (`roost ps`; the TUI polls each host on
        its own, so that one slow to answer holds up nobody else)."""
        found = await asyncio.gather(*(self.host(host) for host in self.context.config.hosts))
        return _set(hosts=tuple(found))

    async def host(self, host: Host) -> HostListing:
        """`host`'s tmux, within its timeout; a host that does not answer is tried again after
        a backoff, and meanwhile keeps its last error (saying when it is tried again)."""
        backoff = self.host_backoff
        previous = self._hosts.get(host.name, HostListing(host))
        if not backoff.due(host):
            return dataclasses.replace(previous, retry_in=backoff.retry_in(host))
        try:
            listing, version, latency_ms = await list_host(self.context.ssh, host)
        except HostError as error:
            backoff.record(host, answered=False)
            if not previous.error:
                log.warning("%s", error)
            found = HostListing(
                host,
                seen=previous.seen,
                problem=error.problem,
                error=str(error),
                failures=backoff.failures(host),
                retry_in=backoff.retry_in(host),
            )
        else:
            backoff.record(host, answered=True)
            found = HostListing(host, listing, version, latency_ms, self.context.clock())
        self._hosts[host.name] = found
        return found

    async def look_at_host(self, host: Host) -> Update:
        """`host`'s part of the snapshot, looked at now (or still backing off)."""
        found = await self.host(host)

        def update(latest: FleetSnapshot) -> FleetSnapshot:
            hosts = tuple(found if h.host.name == host.name else h for h in latest.hosts)
            return dataclasses.replace(latest, hosts=hosts)

        return update

    async def registry(self) -> Update:
        read, alive = await asyncio.to_thread(read_registry, self.context.vellum)
        if self.platform is not None:
            self.platform.base_url = self.context.platform_url(read.platform_base_url)
        return _set(lockfile=read, local_alive=alive)

    async def engines(self) -> Update:
        engines = configured_engines(self.context.config, self.context.environ)
        return _set(engines=await asyncio.to_thread(scan_engines, engines))

    async def platform_listing(self) -> tuple[Update, bool]:
        """Record the platform's assistants in the lockfile; True when the lockfile changed.

        Only a successful listing changes anything: an error or a timeout removes nothing
        (the reference CLI wipes every managed entry on a 5xx).
        """
        if self.platform is None:
            return _set(platform_error=None), False
        listing = await self.platform.list_assistants()
        if not listing.ok:
            return _set(platform_error=f"platform listing failed: {listing.error}"), False
        listed = [(a.id, a.name or a.id) for a in listing.assistants]
        try:
            result = await asyncio.to_thread(
                sync_managed, self.context.vellum, listed, self.platform.base_url
            )
        except RoostError as error:
            return _set(platform_error=f"cannot record the platform's assistants: {error}"), False
        log.info("platform listing: %s", result)
        return _set(platform_error=None), bool(result.added or result.removed)

    @property
    def prober(self) -> Prober:
        return Prober(self.http, self.context.vellum, self.platform)

    async def health(self, snapshot: FleetSnapshot, fleet: tuple[Assistant, ...]) -> Update:
        """One probe of every assistant (`roost ps`; the TUI's monitor keeps its own times)."""
        targets = health_targets(snapshot, fleet)
        results = await probe_all(self.prober, targets)
        records = {key: HealthRecord.single(health) for key, health in results.items()}
        return with_health(records, self.context.clock())

    async def sweep(self, *, health: bool = True) -> tuple[FleetSnapshot, tuple[Assistant, ...]]:
        """Every source once, health last (it needs to know what is asleep): `roost ps`.
        Without `health`, only what is there (the commands that attach or run something)."""
        snapshot = self.empty_snapshot()
        steps = (self.this_machine(), self.hosts(), self.registry(), self.engines())
        for update in await asyncio.gather(*steps):
            snapshot = update(snapshot)
        assert snapshot.lockfile is not None
        self.connect_platform(snapshot.lockfile.platform_base_url)
        update, changed = await self.platform_listing()
        snapshot = update(snapshot)
        if changed:
            snapshot = (await self.registry())(snapshot)
        if health:
            snapshot = (await self.health(snapshot, build_fleet(snapshot)))(snapshot)
        return snapshot, build_fleet(snapshot)
