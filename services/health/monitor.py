"""Probing every assistant's health on its own schedule (docs/protocol.md §3).

`HealthScheduler` is the policy, a plain state machine with an injectable clock: each assistant
is probed every `interval`, never twice at once; one that is unreachable or times out backs off
exponentially (with jitter) up to five minutes and returns to the normal rate on its first
answer; a status that changed three times within two minutes is flapping. `HealthMonitor` runs
it: it sleeps until the next probe is due, keeps a bounded number of probes in flight, and hands
each result on as it comes.

Both scale to thousands of assistants: the due times are kept in a heap, so finding what is due
costs O(log n) per probe rather than a scan of the fleet, and the monitor starts a probe only
when a slot is free (no task per assistant waiting in line).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field

from services.core.backoff import JITTER, MAX_BACKOFF_SECONDS, backoff, jittered
from services.health.probes import UNANSWERED, Health, HealthRecord
from services.health.target import HealthTarget

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HealthPolicy:
    interval: float = 10.0
    max_backoff: float = MAX_BACKOFF_SECONDS
    jitter: float = JITTER
    """Each delay is spread by up to this fraction, so probes and outages do not synchronise."""
    flap_changes: int = 3
    flap_window: float = 120.0
    history: int = 60
    concurrency: int = 32


@dataclass(frozen=True)
class Transition:
    """A status change: what the events panel and the log say."""

    key: str
    before: str
    after: str
    at: float


@dataclass
class _State:
    target: HealthTarget
    due: float
    in_flight: bool = False
    failures: int = 0
    latencies: deque[float | None] = field(default_factory=deque)
    changes: deque[float] = field(default_factory=deque)
    record: HealthRecord | None = None


class HealthScheduler:
    """When each assistant is probed next, and what its results add up to."""

    def __init__(
        self,
        policy: HealthPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.policy = policy or HealthPolicy()
        self.clock = clock
        self.rng = rng or random.Random()
        self._states: dict[str, _State] = {}
        self._queue: list[tuple[float, str]] = []
        """(due, key) for every state waiting, plus stale entries (for a state since probed,
        rescheduled or gone) that are dropped when they come to the top."""

    def sync(self, targets: Iterable[HealthTarget]) -> None:
        """Follow the fleet: new assistants are due at once, gone ones are forgotten."""
        now = self.clock()
        current: dict[str, _State] = {}
        for target in targets:
            state = self._states.get(target.key)
            if state is None:
                state = _State(target, due=now)
                heapq.heappush(self._queue, (now, target.key))
            state.target = target
            current[target.key] = state
        self._states = current

    def due(self, limit: int | None = None) -> list[HealthTarget]:
        """The targets to probe now (at most `limit`, soonest due first); they count as in
        flight until `record`."""
        now, ready = self.clock(), list[HealthTarget]()
        while (limit is None or len(ready) < limit) and (state := self._first()) is not None:
            if state.due > now:
                break
            heapq.heappop(self._queue)
            state.in_flight = True
            ready.append(state.target)
        return ready

    def next_due(self) -> float | None:
        """When the next probe falls due (clock time), or None with nothing to probe."""
        state = self._first()
        return None if state is None else state.due

    def _first(self) -> _State | None:
        """The waiting state due soonest, once the stale entries above it are dropped."""
        while self._queue:
            due, key = self._queue[0]
            state = self._states.get(key)
            if state is not None and not state.in_flight and state.due == due:
                return state
            heapq.heappop(self._queue)
        return None

    def reprobe(self, keys: Iterable[str] | None = None) -> None:
        """Probe these (or all) at once, whatever their backoff."""
        now = self.clock()
        chosen = self._states if keys is None else set(keys)
        for key, state in self._states.items():
            if key in chosen:
                state.due = now
                if not state.in_flight:
                    heapq.heappush(self._queue, (now, key))

    def record(self, key: str, health: Health) -> tuple[HealthRecord, Transition | None] | None:
        """Take a probe's result; None when the assistant left the fleet meanwhile."""
        state = self._states.get(key)
        if state is None:
            return None
        policy, now = self.policy, self.clock()
        state.in_flight = False
        unanswered = health.status in UNANSWERED
        state.failures = state.failures + 1 if unanswered else 0
        if unanswered:
            delay = backoff(policy.interval, state.failures, policy.max_backoff)
        elif state.record is None:
            # After the first sweep (everything at once, to show the fleet quickly) the probes
            # spread over the interval: one at a time costs far less than a burst.
            delay = policy.interval * self.rng.uniform(0.5, 1.5)
        else:
            delay = policy.interval
        state.due = now + jittered(delay, self.rng, policy.jitter)
        heapq.heappush(self._queue, (state.due, key))
        state.latencies.append(health.latency_ms)
        while len(state.latencies) > policy.history:
            state.latencies.popleft()
        previous = state.record.health.status if state.record else None
        transition = None
        if previous is not None and previous != health.status:
            transition = Transition(key, previous, health.status, now)
            state.changes.append(now)
        while state.changes and state.changes[0] < now - policy.flap_window:
            state.changes.popleft()
        last_error = health.detail if health.failed else ""
        state.record = HealthRecord(
            health=health,
            latencies=tuple(state.latencies),
            failures=state.failures,
            last_error=last_error or (state.record.last_error if state.record else ""),
            flapping=len(state.changes) >= policy.flap_changes,
        )
        return state.record, transition


class HealthMonitor:
    """Runs a scheduler: probes what is due, at most `concurrency` at once, until cancelled.

    When `run` has ended, so have its probes: its owner may close what they use (the HTTP
    client) straight after.
    """

    def __init__(
        self,
        scheduler: HealthScheduler,
        probe: Callable[[HealthTarget], Awaitable[Health]],
        on_result: Callable[[str, HealthRecord, Transition | None], None],
    ) -> None:
        self.scheduler = scheduler
        self.probe = probe
        self.on_result = on_result
        self._wake = asyncio.Event()
        self._running = asyncio.Event()
        self._running.set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._busy = 0
        """Slots taken: a probe gives its slot back before it wakes the monitor (a task leaves
        `_tasks` only a turn after it ends, and probes often end several in one turn)."""

    def follow(self, targets: Sequence[HealthTarget]) -> None:
        self.scheduler.sync(targets)
        self._wake.set()

    def reprobe(self, keys: Iterable[str] | None = None) -> None:
        self.scheduler.reprobe(keys)
        self._wake.set()

    def pause(self) -> None:
        """Stop starting probes (while the app is suspended); those in flight finish."""
        self._running.clear()

    def resume(self) -> None:
        """Start again at once, probing everything that fell due meanwhile."""
        self._running.set()
        self._wake.set()

    async def run(self) -> None:
        scheduler, concurrency = self.scheduler, self.scheduler.policy.concurrency
        try:
            while True:
                await self._running.wait()
                self._wake.clear()
                for target in scheduler.due(concurrency - self._busy):
                    self._busy += 1
                    task = asyncio.create_task(self._probe(target))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
                # With every slot taken only a finishing probe can start another.
                due = None if self._busy >= concurrency else scheduler.next_due()
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for drops a cancel that
                # comes as the event is set, and the monitor would go on probing.
                delay = None if due is None else max(0.0, due - scheduler.clock())
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._wake.wait()
        finally:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _probe(self, target: HealthTarget) -> None:
        try:
            health = await self.probe(target)
        except Exception as error:  # a bug must not leave the target "in flight" forever
            log.exception("health probe of %s failed", target.key)
            health = Health("error (probe)", str(error), None, None)
        self._busy -= 1
        outcome = self.scheduler.record(target.key, health)
        if outcome is not None:
            self.on_result(target.key, *outcome)
        self._wake.set()  # a slot is free, and its next probe time is known now
