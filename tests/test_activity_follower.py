"""The follower (services/activity/follower.py) against the loopback peer: one stream per
assistant, batches, reconnecting with backoff and reconciling, stale streams, following a
changing fleet, and many streams in one loop."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import datetime

import pytest

from services.activity.client import ActivityClient
from services.activity.events import Event
from services.activity.follower import ActivityBatch, ActivityFollower, StreamPolicy
from services.activity.model import UNFOLLOWED, Activity, ActivityState
from services.activity.tracker import AssistantActivity
from services.core.http import stream_client
from services.vellum.auth import RuntimeEndpoint
from tests.peers.vellum import Runtime, VellumPeer, json_reply
from tests.test_activity_client import TOKEN, endpoint_of
from tests.test_activity_tracker import T0

FAST = StreamPolicy(backoff=0.05, max_backoff=0.2, jitter=0.1, batch=0.01)


class Following:
    """A follower running in the test's loop, and every batch it handed on."""

    def __init__(self, follower: ActivityFollower) -> None:
        self.follower = follower
        self.batches: list[ActivityBatch] = []

    def state(self, key: str) -> ActivityState | None:
        activity = self.follower.activity(key)
        return activity.state if activity is not None else None

    def batched_activity(self, key: str) -> Activity | None:
        """The activity the batches last carried for `key`."""
        for batch in reversed(self.batches):
            if key in batch.activities:
                return batch.activities[key]
        return None

    def batched(self, key: str) -> ActivityState | None:
        activity = self.batched_activity(key)
        return activity.state if activity is not None else None

    @property
    def changes(self) -> list[str]:
        return [line for batch in self.batches for line in batch.changes]

    @property
    def arrived(self) -> list[str]:
        return [item.request_id for batch in self.batches for item in batch.arrived]

    @property
    def last_inbox(self) -> list[str]:
        return [item.request_id for item in self.batches[-1].inbox] if self.batches else []


async def until(condition: Callable[[], bool], what: str, *, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def following(
    endpoints: Mapping[str, RuntimeEndpoint], policy: StreamPolicy = FAST
) -> AsyncIterator[Following]:
    async with stream_client() as http:
        batches: list[ActivityBatch] = []
        follower = ActivityFollower(
            ActivityClient(http), batches.append, policy=policy, clock=lambda: T0
        )
        result = Following(follower)
        result.batches = batches
        follower.follow(endpoints)
        task = asyncio.create_task(follower.run())
        try:
            yield result
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


@pytest.fixture
def runtime(vellum_peer: VellumPeer) -> Runtime:
    return vellum_peer.runtime("kit", bearer=TOKEN)


async def test_states_go_out_in_batches_with_the_inbox_and_what_arrived(runtime: Runtime) -> None:
    script = runtime.activity
    async with following({"local:kit": endpoint_of(runtime)}) as seen:
        await until(lambda: seen.batched("local:kit") is ActivityState.IDLE, "connected")
        script.activity("c1", "tool_running", status_text="Running the tests")
        await until(lambda: seen.batched("local:kit") is ActivityState.WORKING, "working")
        request_id = script.confirmation("c1", "bash", {"command": "ls"}, risk="high")
        await until(lambda: seen.last_inbox == [request_id], "the item in a batch")
        activity = seen.follower.activity("local:kit")
        assert activity is not None
        assert (activity.state, activity.detail) == (ActivityState.NEEDS_YOU, "bash (high risk)")
        script.resolve(request_id)
        await until(lambda: seen.follower.inbox == (), "the item resolved elsewhere")
        await until(lambda: seen.last_inbox == [], "a batch without it")
    assert seen.arrived == [request_id]
    assert "kit: idle → working" in seen.changes
    assert "kit: working → needs you" in seen.changes
    assert not any(line.startswith("kit: unknown") for line in seen.changes[:1])
    batched = [key for batch in seen.batches for key in batch.activities]
    assert batched.count("local:kit") < len(seen.batches) + 1
    timeline = [entry.text for entry in seen.follower.timeline("local:kit")]
    assert "tool_running · Running the tests" in timeline


async def test_a_dropped_stream_reconnects_and_reconciles_what_changed_meanwhile(
    runtime: Runtime,
) -> None:
    script = runtime.activity
    async with following({"local:kit": endpoint_of(runtime)}) as seen:
        await until(lambda: seen.state("local:kit") is ActivityState.IDLE, "connected")
        gone = script.confirmation("c1", "bash", {})
        await until(lambda: seen.last_inbox == [gone], "the first item")
        # While it is down no stream can open: whatever happens now is never streamed.
        script.stream_replies.extend([json_reply({"error": "busy"}, status=503)] * 1000)
        script.drop_streams()
        await until(lambda: seen.state("local:kit") is ActivityState.UNKNOWN, "down")
        script.resolve(gone)
        made = script.question("c2")
        script.stream_replies.clear()
        await until(lambda: seen.last_inbox == [made], "reconciled after reconnecting")
        assert seen.state("local:kit") is ActivityState.NEEDS_YOU
        assert script.opened == 2
        [item] = seen.follower.inbox
        assert item.request is not None  # its details read from its conversation's view
    assert seen.arrived == [gone, made]
    assert "kit: needs you → unknown" in seen.changes


def test_the_backoff_doubles_up_to_its_cap_and_is_spread_by_the_jitter() -> None:
    policy = StreamPolicy(backoff=1.0, max_backoff=60.0, jitter=0.2)
    assert [policy.retry_delay(failures, 0.0) for failures in range(9)] == [
        1.0,
        1.0,
        2.0,
        4.0,
        8.0,
        16.0,
        32.0,
        60.0,
        60.0,
    ]
    assert policy.retry_delay(3, -1.0) == pytest.approx(3.2)
    assert policy.retry_delay(3, 1.0) == pytest.approx(4.8)


async def test_a_runtime_that_refuses_is_asked_again_until_it_lets_in(
    vellum_peer: VellumPeer, runtime: Runtime
) -> None:
    script = runtime.activity
    script.stream_replies.extend([json_reply({"error": "busy"}, status=503)] * 4)
    policy = StreamPolicy(backoff=0.05, max_backoff=0.4, jitter=0.0, batch=0.01)
    async with following({"local:kit": endpoint_of(runtime)}, policy) as seen:
        await until(lambda: seen.state("local:kit") is ActivityState.IDLE, "connected at last")
        activity = seen.follower.activity("local:kit")
        assert activity is not None
    requests = [r for r in vellum_peer.requests if r.path.endswith("/v1/events")]
    assert len(requests) == 5
    assert any("503" in entry.text for entry in seen.follower.timeline("local:kit"))


async def test_a_stream_without_heartbeats_is_opened_again(runtime: Runtime) -> None:
    script = runtime.activity
    script.heartbeat_seconds = 60.0
    policy = StreamPolicy(backoff=0.05, jitter=0.0, stale_after=0.3, batch=0.01)
    async with following({"local:kit": endpoint_of(runtime)}, policy) as seen:
        await until(lambda: script.opened >= 2, "a second stream")
        await until(lambda: seen.state("local:kit") is ActivityState.IDLE, "connected again")
        script.activity("c1", "thinking")
        await until(lambda: seen.state("local:kit") is ActivityState.WORKING, "events flow")
    texts = [entry.text for entry in seen.follower.timeline("local:kit")]
    assert "stream down: nothing received for 0.3 s" in texts


async def test_heartbeats_keep_a_quiet_stream_open(runtime: Runtime) -> None:
    script = runtime.activity
    script.heartbeat_seconds = 0.05
    policy = StreamPolicy(backoff=0.05, jitter=0.0, stale_after=0.3, batch=0.01)
    async with following({"local:kit": endpoint_of(runtime)}, policy) as seen:
        await until(lambda: seen.state("local:kit") is ActivityState.IDLE, "connected")
        started = time.monotonic()
        await until(lambda: time.monotonic() - started > 1.0, "three stale periods")
        assert script.opened == 1


async def test_a_line_past_its_cap_ends_the_stream_which_starts_over(runtime: Runtime) -> None:
    script = runtime.activity
    policy = StreamPolicy(backoff=0.05, jitter=0.0, batch=0.01, max_line=1024, max_event=4096)
    async with following({"local:kit": endpoint_of(runtime)}, policy) as seen:
        await until(lambda: seen.state("local:kit") is ActivityState.IDLE, "connected")
        script.raw(b"data: " + b"x" * 10_000 + b"\n\n")
        await until(lambda: script.opened == 2, "reconnected")
        await until(lambda: seen.state("local:kit") is ActivityState.IDLE, "connected again")
    texts = [entry.text for entry in seen.follower.timeline("local:kit")]
    assert any("line larger than 1 KiB" in text for text in texts)


async def test_an_older_runtime_is_reconciled_per_conversation_seen(runtime: Runtime) -> None:
    script = runtime.activity
    script.legacy = True
    async with following({"local:kit": endpoint_of(runtime)}) as seen:
        await until(lambda: seen.state("local:kit") is ActivityState.IDLE, "connected")
        script.activity("c1", "thinking")
        first = script.confirmation("c1", "bash", {})
        await until(lambda: seen.last_inbox == [first], "the item")
        script.stream_replies.extend([json_reply({"error": "busy"}, status=503)] * 1000)
        script.drop_streams()
        await until(lambda: seen.state("local:kit") is ActivityState.UNKNOWN, "down")
        script.resolve(first)
        second = script.confirmation("c1", "curl", {})
        script.stream_replies.clear()
        await until(lambda: seen.last_inbox == [second], "reconciled per conversation")


async def test_following_a_changing_fleet(vellum_peer: VellumPeer, runtime: Runtime) -> None:
    other = vellum_peer.runtime("ada", bearer=TOKEN)
    other.activity.heartbeat_seconds = 0.05  # the peer sees a hang-up when it next writes
    endpoints = {"local:kit": endpoint_of(runtime), "local:ada": endpoint_of(other)}
    async with following(endpoints) as seen:
        follower = seen.follower
        await until(lambda: seen.state("local:ada") is ActivityState.IDLE, "ada connected")
        request_id = other.activity.confirmation("c1", "bash", {})
        await until(lambda: len(follower.inbox) == 1, "ada's item")
        follower.follow({"local:kit": endpoint_of(runtime)})
        assert not follower.inbox
        assert follower.activity("local:ada") is None
        await until(
            lambda: (
                seen.batched_activity("local:ada")
                == Activity(ActivityState.UNKNOWN, UNFOLLOWED, T0, UNFOLLOWED)
            ),
            "a batch saying ada is no longer followed",
        )
        assert seen.last_inbox == []
        await until(lambda: other.activity.streams == 0, "ada's stream closed")
        follower.follow(endpoints)
        await until(lambda: len(follower.inbox) == 1, "ada's item again, from its pending list")
        assert follower.inbox[0].request_id == request_id
        assert runtime.activity.opened == 1  # kit's stream was left alone


async def test_answered_leaves_the_inbox_at_once(runtime: Runtime) -> None:
    script = runtime.activity
    script.stream_replies.clear()
    async with following({"local:kit": endpoint_of(runtime)}) as seen:
        await until(lambda: seen.state("local:kit") is ActivityState.IDLE, "connected")
        script.confirmation("c1", "bash", {})
        await until(lambda: len(seen.follower.inbox) == 1, "the item")
        seen.follower.answered(seen.follower.inbox[0])
        assert not seen.follower.inbox
        await until(lambda: seen.last_inbox == [], "a batch without it")


async def test_a_receiver_that_fails_does_not_stop_the_streams(
    runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[ActivityBatch] = []

    def broken(batch: ActivityBatch) -> None:
        calls.append(batch)
        raise RuntimeError("the screen's bug")

    async with stream_client() as http:
        follower = ActivityFollower(ActivityClient(http), broken, policy=FAST)
        follower.follow({"local:kit": endpoint_of(runtime)})
        task = asyncio.create_task(follower.run())
        await until(lambda: follower.activity("local:kit") is not None and len(calls) >= 1, "one")
        runtime.activity.activity("c1", "thinking")
        await until(lambda: len(calls) >= 2, "another batch")
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert "an activity batch could not be applied" in caplog.text


async def test_cancelling_run_closes_every_stream(runtime: Runtime) -> None:
    runtime.activity.heartbeat_seconds = 0.05  # the peer sees a hang-up when it next writes
    async with following({"local:kit": endpoint_of(runtime)}) as seen:
        await until(lambda: seen.state("local:kit") is ActivityState.IDLE, "connected")
    await until(lambda: runtime.activity.streams == 0, "the stream closed")


async def test_two_hundred_streams_in_one_loop(vellum_peer: VellumPeer) -> None:
    runtimes = [vellum_peer.runtime(f"a{number}", bearer=TOKEN) for number in range(200)]
    endpoints = {f"local:{r.name}": endpoint_of(r) for r in runtimes}
    async with following(endpoints) as seen:
        await until(
            lambda: all(seen.state(key) is ActivityState.IDLE for key in endpoints),
            "every stream connected",
            within=60,
        )
        asked = [r.activity.confirmation("c1", "bash", {}) for r in runtimes[::20]]
        await until(lambda: len(seen.last_inbox) == len(asked), "ten items", within=20)
        assert set(seen.last_inbox) == set(asked)
        assert sum(r.activity.opened for r in runtimes) == 200


async def test_a_moved_runtime_is_followed_at_its_new_place_as_the_same_assistant(
    vellum_peer: VellumPeer, runtime: Runtime
) -> None:
    runtime.activity.heartbeat_seconds = 0.05  # the peer sees a hang-up when it next writes
    moved = vellum_peer.runtime("kit-moved", bearer=TOKEN)
    async with following({"local:kit": endpoint_of(runtime)}) as seen:
        await until(lambda: seen.state("local:kit") is ActivityState.IDLE, "connected")
        first = runtime.activity.confirmation("c1", "bash", {})
        await until(lambda: seen.last_inbox == [first], "the item")
        elsewhere = RuntimeEndpoint("kit", "kit", moved.base_url, False, endpoint_of(runtime).auth)
        seen.follower.follow({"local:kit": elsewhere})
        await until(lambda: runtime.activity.streams == 0, "the old stream closed")
        await until(lambda: moved.activity.streams == 1, "the new stream open")
        again = moved.activity.confirmation("c1", "curl", {})
        await until(lambda: seen.last_inbox == [again], "reconciled at the new place")
    texts = [entry.text for entry in seen.follower.timeline("local:kit")]
    assert texts.count("stream connected") == 2  # one timeline: the same assistant
    assert "stream down: its runtime changed: opening it again" in texts
    assert all(
        batch.activities["local:kit"].evidence != UNFOLLOWED
        for batch in seen.batches
        if "local:kit" in batch.activities
    )


async def test_a_bug_in_one_event_restarts_the_stream_and_is_logged(
    runtime: Runtime, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = AssistantActivity.apply
    broken = {"once": True}

    def apply(self: AssistantActivity, event: Event, now: datetime) -> None:
        if broken.pop("once", False):
            raise RuntimeError("a tracker bug")
        original(self, event, now)

    monkeypatch.setattr(AssistantActivity, "apply", apply)
    async with following({"local:kit": endpoint_of(runtime)}) as seen:
        await until(lambda: seen.state("local:kit") is ActivityState.IDLE, "connected")
        runtime.activity.activity("c1", "thinking")
        await until(lambda: runtime.activity.opened == 2, "opened again")
        runtime.activity.activity("c1", "streaming")
        await until(lambda: seen.state("local:kit") is ActivityState.WORKING, "events flow")
    assert "the activity stream of local:kit failed" in caplog.text
    assert "RuntimeError: a tracker bug" in caplog.text
