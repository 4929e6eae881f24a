"""What keeps the fleet on screen current: a poller per source, the health monitor, the
Docker engines' events and the assistants' activity streams (tui/activity.py), each applying
its updates through the app (`RoostApp.apply_update`)."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from textual.worker import Worker, WorkerCancelled, WorkerFailed

from services.core.config import Host
from services.core.errors import RoostError
from services.core.poller import Poller
from services.docker.events import EngineEvents
from services.fleet.builder import health_targets
from services.fleet.sources import with_health
from services.health.monitor import HealthMonitor, HealthPolicy, HealthScheduler, Transition
from services.health.probes import HealthRecord
from tui.messages import EngineChanged

if TYPE_CHECKING:
    from tui.app import RoostApp

log = logging.getLogger(__name__)

REGISTRY_SECONDS = 2.0
"""The lockfile is re-read this often, so `vellum use` or a new assistant shows up at once."""
AGENTS_SECONDS = 1.0
"""How often the console reads what coding agents' hooks reported (a directory listing when
nothing did) and looks again at their panes as last listed."""
HEALTH_BATCH_SECONDS = 0.5
OTHER_ROOSTS_SECONDS = 2.0
"""How often the console looks for jobs that other roost processes started, changed or left."""


class FleetRefresh:
    """The console's pollers, health monitor and engine events (one per console)."""

    def __init__(self, app: RoostApp) -> None:
        self._app = app
        self._roost = app.roost
        self.pollers: dict[str, Poller] = {}
        self._pending_health: dict[str, HealthRecord] = {}
        self._engine_events: list[EngineEvents] = []
        self._health: Worker[None] | None = None
        config = app.context.config
        policy = HealthPolicy(
            interval=config.health_interval_seconds, concurrency=config.health_concurrency
        )
        self.monitor = HealthMonitor(
            HealthScheduler(policy), self._roost.sources.prober, self._health_result
        )

    def start(self) -> None:
        """Poll every source, probe the fleet's health, and follow the engines' events (once
        the lockfile was read: it names the platform, if any)."""
        config, background = self._app.context.config, self._app.background
        steps: dict[str, tuple[float, Callable[[], Awaitable[None]]]] = {
            "this machine": (config.tmux_refresh_seconds, self._look_at_this_machine),
            "lockfile": (REGISTRY_SECONDS, self._read_registry),
            "docker": (config.docker_refresh_seconds, self._scan_engines),
            "job history": (OTHER_ROOSTS_SECONDS, self._app.jobs.follow_other_roosts),
            "agents": (AGENTS_SECONDS, self._app.activity.look_at_agents),
        }
        for host in config.hosts:  # each on its own: one slow to answer holds up no other
            look = functools.partial(self._look_at_host, host)
            steps[f"host {host.name}"] = (config.tmux_refresh_seconds, look)
        if self._roost.sources.platform is not None:
            steps["platform"] = (config.platform_refresh_seconds, self._list_platform)
        for name, (interval, step) in steps.items():
            poller = Poller(name, interval, step, self._poll_failed)
            self.pollers[name] = poller
            background.run(poller.run(), name=name, group="pollers")
        self._app.activity.start()
        self.follow_fleet()
        self._health = background.run(self.monitor.run(), name="health", group="pollers")
        for engine in self._roost.engines:
            events = EngineEvents(engine, self._engine_changed)
            self._engine_events.append(events)
            background.run(events.run, name="docker events", group="docker-events", thread=True)

    async def close(self) -> None:
        """Stop following the engines, and stop the health monitor: when this returns no probe
        is running, so the app may close the HTTP client they use."""
        for events in self._engine_events:
            events.close()
        if self._health is not None:
            self._health.cancel()
            with contextlib.suppress(WorkerCancelled, WorkerFailed):  # a failure is logged
                await self._health.wait()

    def refresh(self, assistant_key: str | None) -> None:
        """Probe one assistant now, or (None) look at every source and probe every one."""
        if assistant_key is not None:
            self.monitor.reprobe([assistant_key])
            return
        for poller in self.pollers.values():
            poller.wake()
        self.monitor.reprobe()

    def _poll_failed(self, name: str, error: BaseException) -> None:
        """A source's step failed (the poller logged it with its traceback, and goes on)."""
        what = error if isinstance(error, RoostError) else self._app.background.problem
        self._app.notify(f"{name}: {what}", title="Refresh failed", severity="error", timeout=15)

    async def _look_at_this_machine(self) -> None:
        previous = self._roost.snapshot.tmux
        self._app.apply_update(await self._roost.sources.this_machine())
        listing, tmux = self._roost.snapshot.tmux, self._app.context.tmux
        if listing and (previous is None or listing.state != previous.state):
            log.info("%s: %s %s", tmux.describe(), listing.state.value, listing.detail)

    async def _look_at_host(self, host: Host) -> None:
        self._app.apply_update(await self._roost.sources.look_at_host(host))

    async def _read_registry(self) -> None:
        if self._app.apply_update(await self._roost.sources.registry()):
            self.follow_fleet()

    async def _scan_engines(self) -> None:
        if self._app.apply_update(await self._roost.sources.engines()):
            self.follow_fleet()

    async def _list_platform(self) -> None:
        update, lockfile_changed = await self._roost.sources.platform_listing()
        self._app.apply_update(update)
        if lockfile_changed:
            self.pollers["lockfile"].wake()

    def follow_fleet(self) -> None:
        """Probe what is probeable now and follow its activity; forget the health of what no
        longer is (it sleeps)."""
        self._app.activity.follow_fleet()
        snapshot = self._roost.snapshot
        targets = health_targets(snapshot, self._roost.fleet)
        self.monitor.follow(targets)
        keys = {target.key for target in targets}
        if set(snapshot.health) - keys:
            self._app.apply_update(
                lambda s: dataclasses.replace(
                    s, health={k: v for k, v in s.health.items() if k in keys}
                )
            )

    def _health_result(self, key: str, record: HealthRecord, change: Transition | None) -> None:
        """One probe's result. Results are applied in batches, at most twice a second,
        so a sweep of a thousand assistants is a few redraws, not a thousand."""
        if not self._app.is_running:
            return  # shutting down: the screen is going away
        self._pending_health[key] = record
        if change is not None:
            name = next((a.name for a in self._roost.fleet if a.key == key), key)
            line = f"{name}: {change.before} → {change.after}"
            log.info("health: %s", line)
            self._app.events.add(line)
        if len(self._pending_health) == 1:
            self._app.set_timer(HEALTH_BATCH_SECONDS, self._apply_health)

    def _apply_health(self) -> None:
        if not self._app.is_running:
            return  # a batch due while shutting down: the screen is going away
        records, self._pending_health = self._pending_health, {}
        self._app.apply_update(with_health(records, self._app.context.clock()))

    def _engine_changed(self) -> None:
        """Called from an engine's event thread: rescan the engines now."""
        self._app.post_message(EngineChanged())
