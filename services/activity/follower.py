"""One event stream per assistant, followed in the caller's event loop (docs/protocol.md §7).

Each stream is a task: open the stream, mark the assistant connected, reconcile with the pending
list (nothing is replayed, so whatever came or went while it was down is learned there), then
apply every event to the assistant's `AssistantActivity`. When the stream fails or ends, the
assistant is *unknown* until it is back: the task waits (exponential backoff with jitter, reset
by a session that proved itself: one that carried an event or lived `stale_after`) and starts
over. A stream that carries nothing, not even a heartbeat, for `stale_after` is dropped and
opened again: a runtime that vanished without closing the connection looks exactly like that.
At most `openings` streams open (connect and reconcile) at once; those that are open read on.

What changed is handed on in batches (`ActivityBatch`, at most one per `batch` seconds), never
one call per event. Costs are per event only where an event matters: a heartbeat or an ignored
frame costs a clock reading; the staleness check is one timer per stream that re-arms when it
fires, not one per frame. Memory per assistant is bounded: its tracker (a fixed timeline, the
recent conversations, the pending items) and the stream's buffers, capped in core/http.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from services.activity.client import MAX_EVENT, MAX_LINE, ActivityClient, ActivityError
from services.activity.events import Resolved
from services.activity.model import (
    UNFOLLOWED,
    Activity,
    ActivityState,
    Interaction,
    TimelineEntry,
)
from services.activity.tracker import AssistantActivity
from services.core.clock import utc_now
from services.core.safe_text import error_text
from services.vellum.auth import RuntimeEndpoint

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StreamPolicy:
    backoff: float = 1.0
    """Seconds before reconnecting after a drop; doubled after each attempt that failed."""
    max_backoff: float = 60.0
    jitter: float = 0.2
    """Each delay is spread by up to this fraction, so streams that dropped together (a
    restarted host) do not come back together."""
    stale_after: float = 20.0
    """Seconds without a frame (heartbeats come every 5-7 s) before the stream is reopened."""
    batch: float = 0.05
    """Seconds between two batches at most: what changed meanwhile goes together."""
    timeline: int = 20
    """Events kept per assistant for its timeline."""
    max_line: int = MAX_LINE
    max_event: int = MAX_EVENT
    openings: int = 64
    """Streams opening (connecting and reading the pending list) at once at most: a console
    starting with a thousand assistants opens them in waves, not all in one burst."""

    def retry_delay(self, failures: int, spread: float) -> float:
        """Seconds before the next attempt after `failures` failed ones in a row (0: after a
        session that proved itself); `spread` in [-1, 1] picks where in the jitter it falls."""
        delay = min(self.backoff * 2.0 ** max(failures - 1, 0), self.max_backoff)
        return delay * (1 + self.jitter * spread)


@dataclass(frozen=True)
class ActivityBatch:
    """What changed since the last batch."""

    activities: Mapping[str, Activity]
    """The assistants whose activity changed, by fleet key (one no longer followed: *unknown*,
    with `UNFOLLOWED` as its evidence)."""
    inbox: tuple[Interaction, ...]
    """The whole inbox now, oldest first."""
    arrived: tuple[Interaction, ...]
    """Items new since the last batch (what to notify)."""
    changes: tuple[str, ...]
    """Lines for the events panel: `kit: working → needs you`."""


class _Stream:
    """One assistant's stream and what the follower knows of it."""

    __slots__ = ("busy", "endpoint", "last", "sent", "settled", "stale", "task", "timer", "tracker")

    def __init__(self, endpoint: RuntimeEndpoint, tracker: AssistantActivity) -> None:
        self.endpoint = endpoint
        self.tracker = tracker
        self.task: asyncio.Task[None] | None = None
        self.last = 0.0
        """Loop time of the last frame (or of the start of this attempt)."""
        self.busy = False
        """Reconciling: the stream is not read meanwhile, so its silence means nothing."""
        self.stale = False
        """The staleness timer cancelled the task."""
        self.timer: asyncio.TimerHandle | None = None
        self.sent: Activity | None = None
        """The activity the last batch carried."""
        self.settled = False
        """A state other than the first *unknown* has been handed on (changes are reported
        from then on, so starting up is not a flood of lines)."""


class ActivityFollower:
    """Follows the event streams of the assistants it is given, in the loop that runs `run()`."""

    def __init__(
        self,
        client: ActivityClient,
        on_batch: Callable[[ActivityBatch], None],
        *,
        policy: StreamPolicy | None = None,
        clock: Callable[[], datetime] = utc_now,
        rng: random.Random | None = None,
    ) -> None:
        self.client = client
        self.on_batch = on_batch
        self.policy = policy or StreamPolicy()
        self.clock = clock
        self.rng = rng or random.Random()
        self.client_id = str(uuid.uuid4())
        """`X-Vellum-Client-Id`: one per follower, the same for every stream and reconnect."""
        self._streams: dict[str, _Stream] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._dirty: set[str] = set()
        self._gone: dict[str, Activity] = {}
        self._flush_timer: asyncio.TimerHandle | None = None
        self._openings: asyncio.Semaphore | None = None
        """Turns to open a stream; made in the loop that runs the follower."""
        self._inboxes: dict[str, tuple[Interaction, ...]] = {}
        """The trackers' inboxes that are not empty, as last merged."""
        self._inbox: tuple[Interaction, ...] | None = ()
        """The merged inbox; None when one of `_inboxes` changed since."""
        self._notified: set[str] = set()
        """Ids of the items a batch has already carried as arrived (the inbox's, at the time)."""

    def follow(self, endpoints: Mapping[str, RuntimeEndpoint]) -> None:
        """Follow these assistants (fleet key -> runtime): new ones start, gone ones stop (their
        items leave the inbox), changed ones start over."""
        for key in [key for key in self._streams if key not in endpoints]:
            self._stop(self._streams.pop(key))
            self._gone[key] = Activity(ActivityState.UNKNOWN, UNFOLLOWED, self.clock(), UNFOLLOWED)
            self._changed(key)
        for key, endpoint in endpoints.items():
            old = self._streams.get(key)
            if old is not None and old.endpoint == endpoint:
                continue
            if old is not None:
                self._stop(old)
            if old is not None and old.endpoint.assistant_id == endpoint.assistant_id:
                # Moved or renamed: the same assistant and items, through a new stream.
                tracker = old.tracker
                tracker.name = endpoint.name
                tracker.disconnected(self.clock(), "its runtime changed: opening it again")
            else:
                tracker = AssistantActivity(
                    key,
                    endpoint.assistant_id,
                    endpoint.name,
                    timeline=self.policy.timeline,
                    since=self.clock(),
                )
            stream = self._streams[key] = _Stream(endpoint, tracker)
            if old is not None and old.tracker is tracker:
                stream.sent, stream.settled = old.sent, old.settled
            self._gone.pop(key, None)
            self._changed(key)
            if self._loop is not None:
                self._start(key, stream)

    async def run(self) -> None:
        """Follow the streams until cancelled; cancelling closes every stream."""
        self._loop = asyncio.get_running_loop()
        self._openings = asyncio.Semaphore(self.policy.openings)
        for key, stream in self._streams.items():
            self._start(key, stream)
        if self._dirty:
            self._schedule_flush()
        try:
            await asyncio.Event().wait()
        finally:
            streams = list(self._streams.values())
            for stream in streams:
                self._stop(stream)
            tasks = [stream.task for stream in streams if stream.task is not None]
            await asyncio.gather(*tasks, return_exceptions=True)
            if self._flush_timer is not None:
                self._flush_timer.cancel()
                self._flush_timer = None
            self._loop = None

    def activity(self, key: str) -> Activity | None:
        stream = self._streams.get(key)
        return stream.tracker.activity if stream is not None else None

    def timeline(self, key: str) -> tuple[TimelineEntry, ...]:
        stream = self._streams.get(key)
        return stream.tracker.timeline if stream is not None else ()

    @property
    def inbox(self) -> tuple[Interaction, ...]:
        """Every assistant's pending items, oldest first."""
        for key in self._dirty:  # only they may have changed since the last merge
            stream = self._streams.get(key)
            items = stream.tracker.inbox if stream is not None else ()
            known = self._inboxes.get(key, ())
            if items is not known and (items or known):
                if items:
                    self._inboxes[key] = items
                else:
                    del self._inboxes[key]
                self._inbox = None
        if self._inbox is None:
            merged = [item for items in self._inboxes.values() for item in items]
            self._inbox = tuple(sorted(merged, key=lambda item: item.since))
        return self._inbox

    def answered(self, interaction: Interaction) -> None:
        """An answer was accepted, or came too late (404): the item leaves the inbox now, not
        when the runtime's `interaction_resolved` arrives."""
        stream = self._streams.get(interaction.assistant_key)
        if stream is None or interaction.request_id not in {
            item.request_id for item in stream.tracker.inbox
        }:
            return
        resolved = Resolved(
            interaction.request_id, interaction.conversation, "answered", interaction.kind
        )
        stream.tracker.apply(resolved, self.clock())
        self._changed(interaction.assistant_key)

    # -- one stream --------------------------------------------------------------------------

    def _start(self, key: str, stream: _Stream) -> None:
        assert self._loop is not None
        stream.task = self._loop.create_task(self._follow(key, stream), name=f"activity {key}")
        stream.task.add_done_callback(_log_bug)

    def _stop(self, stream: _Stream) -> None:
        if stream.task is not None:
            stream.task.cancel()
            stream.task = None
        self._unwatch(stream)

    async def _follow(self, key: str, stream: _Stream) -> None:
        """Sessions one after the other, for ever, with backoff between those that failed."""
        policy, failures = self.policy, 0
        while True:
            why, proved = await self._session(key, stream)
            stream.tracker.disconnected(self.clock(), why)
            self._changed(key)
            failures = 0 if proved else failures + 1
            await asyncio.sleep(policy.retry_delay(failures, self.rng.uniform(-1, 1)))

    async def _session(self, key: str, stream: _Stream) -> tuple[str, bool]:
        """Wait for a turn to open, open the stream, reconcile, read it until it ends. Returns
        why it ended and whether it proved itself (carried an event, or lived `stale_after`)."""
        loop = asyncio.get_running_loop()
        tracker, policy, openings = stream.tracker, self.policy, self._openings
        assert openings is not None
        carried = opening = False
        stream.stale = False
        stream.busy = True  # waiting for a turn: silence means nothing yet
        opened = stream.last = loop.time()
        self._watch(stream)
        try:
            await openings.acquire()
            opening = True
            stream.busy = False
            opened = stream.last = loop.time()
            events = self.client.events(
                stream.endpoint,
                self.client_id,
                max_line=policy.max_line,
                max_event=policy.max_event,
            )
            async with contextlib.aclosing(events):
                async for event in events:
                    stream.last = loop.time()
                    if event is not None:
                        carried = True
                        tracker.apply(event, self.clock())
                        self._changed(key)
                    elif opening:
                        tracker.connected(self.clock())
                        await self._reconcile(key, stream)
                        opening = False
                        openings.release()
            why = "the stream ended"  # events() raises when it ends; this is only a net
        except ActivityError as error:
            why = str(error)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if not stream.stale or task is None or task.uncancel() > 0:
                raise
            why = f"nothing received for {policy.stale_after:g} s"
        except Exception as error:  # a bug: logged, and the stream starts over
            log.exception("the activity stream of %s failed", key)
            why = f"internal error: {error_text(error)}"
        finally:
            if opening:
                openings.release()
            self._unwatch(stream)
        return why, carried or loop.time() - opened >= policy.stale_after

    async def _reconcile(self, key: str, stream: _Stream) -> None:
        """Take in the pending list; the stream is not read meanwhile (busy)."""
        tracker = stream.tracker
        stream.busy = True
        try:
            pending = await self.client.pending(
                stream.endpoint,
                tracker.conversations,
                known={item.request_id for item in tracker.inbox if item.request is not None},
            )
        finally:
            stream.busy = False
            stream.last = asyncio.get_running_loop().time()
        tracker.reconcile(pending, self.clock())
        self._changed(key)

    # -- staleness ---------------------------------------------------------------------------

    def _watch(self, stream: _Stream) -> None:
        self._unwatch(stream)
        loop = asyncio.get_running_loop()
        stream.timer = loop.call_at(stream.last + self.policy.stale_after, self._check, stream)

    def _unwatch(self, stream: _Stream) -> None:
        if stream.timer is not None:
            stream.timer.cancel()
            stream.timer = None

    def _check(self, stream: _Stream) -> None:
        """The staleness timer fired: re-arm it if a frame came meanwhile (or the stream is not
        being read), else end the session."""
        assert self._loop is not None
        now, stale_after = self._loop.time(), self.policy.stale_after
        if stream.busy or now < stream.last + stale_after:
            due = now + stale_after if stream.busy else stream.last + stale_after
            stream.timer = self._loop.call_at(due, self._check, stream)
            return
        stream.timer = None
        if stream.task is not None:
            stream.stale = True
            stream.task.cancel()

    # -- batches -----------------------------------------------------------------------------

    def _changed(self, key: str) -> None:
        self._dirty.add(key)
        if self._loop is not None:
            self._schedule_flush()

    def _schedule_flush(self) -> None:
        if self._flush_timer is None and self._loop is not None:
            self._flush_timer = self._loop.call_later(self.policy.batch, self._flush)

    def _flush(self) -> None:
        self._flush_timer = None
        inbox = self.inbox  # merged first: the dirty trackers' inboxes are taken in
        dirty, self._dirty = self._dirty, set()
        activities: dict[str, Activity] = {}
        changes: list[str] = []
        for key in dirty:
            stream = self._streams.get(key)
            if stream is None:
                continue
            activity = stream.tracker.activity
            if activity is stream.sent:
                continue
            before, stream.sent = stream.sent, activity
            activities[key] = activity
            if before is not None and before.state is not activity.state and stream.settled:
                changes.append(f"{stream.endpoint.name}: {before.state} → {activity.state}")
            stream.settled = stream.settled or activity.state is not ActivityState.UNKNOWN
        activities.update(self._gone)
        self._gone = {}
        arrived = tuple(item for item in inbox if item.id not in self._notified)
        self._notified = {item.id for item in inbox}
        batch = ActivityBatch(activities, inbox, arrived, tuple(changes))
        try:
            self.on_batch(batch)
        except Exception:  # the receiver's bug must not stop the streams
            log.exception("an activity batch could not be applied")


def _log_bug(task: asyncio.Task[None]) -> None:
    """A stream's task ended other than by being cancelled: a bug, which stops that stream."""
    if not task.cancelled() and task.exception() is not None:
        log.error("the activity stream task %s failed", task.get_name(), exc_info=task.exception())
