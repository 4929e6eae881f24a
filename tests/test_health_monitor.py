"""The health schedule (an injected clock, no waiting) and the monitor against the real peer."""

from __future__ import annotations

import asyncio
import random

import httpx

from services.health.monitor import HealthMonitor, HealthPolicy, HealthScheduler, Transition
from services.health.probes import Health, HealthRecord
from services.health.probing import Prober
from services.health.target import HealthTarget
from services.vellum.environment import VellumEnvironment
from tests.peers.vellum import VellumPeer, json_reply

HEALTHY = Health("healthy", "", "1", 5.0)
DOWN = Health("unreachable", "connection refused", None, None)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def target(key: str) -> HealthTarget:
    return HealthTarget(key, key, f"http://127.0.0.1:9/{key}", managed=False)


def next_delay(schedule: HealthScheduler, clock: Clock) -> float:
    due = schedule.next_due()
    assert due is not None
    return due - clock.now


def scheduler(clock: Clock, **policy: float) -> HealthScheduler:
    return HealthScheduler(HealthPolicy(**policy), clock, random.Random(7))  # type: ignore[arg-type]


def test_new_assistants_are_due_at_once_and_probed_one_at_a_time() -> None:
    clock = Clock()
    schedule = scheduler(clock)
    schedule.sync([target("a"), target("b")])

    assert [t.key for t in schedule.due()] == ["a", "b"]
    assert schedule.due() == []  # both in flight: never a second probe at once
    schedule.record("a", HEALTHY)
    first = next_delay(schedule, clock)
    assert 10 * 0.5 * 0.9 <= first <= 10 * 1.5 * 1.1  # after the first sweep, spread out
    clock.now += first - 0.1
    assert schedule.due() == []
    clock.now += 0.1
    assert [t.key for t in schedule.due()] == ["a"]
    schedule.record("a", HEALTHY)
    assert 9.0 <= next_delay(schedule, clock) <= 11.0  # then every interval, give or take


def test_unanswered_probes_back_off_exponentially_with_jitter_up_to_five_minutes() -> None:
    clock = Clock()
    schedule = scheduler(clock, interval=10.0, jitter=0.1)
    schedule.sync([target("a")])
    delays = []
    for _ in range(8):
        schedule.due()
        schedule.record("a", DOWN)
        due = schedule.next_due()
        assert due is not None
        delays.append(due - clock.now)
        clock.now = due

    for failures, delay in enumerate(delays, 1):
        expected = min(10.0 * 2**failures, 300.0)
        assert expected * 0.9 <= delay <= expected * 1.1
    assert max(delays) <= 330.0

    schedule.due()
    record, _ = schedule.record("a", HEALTHY) or (None, None)
    assert record is not None and record.failures == 0
    assert 9.0 <= next_delay(schedule, clock) <= 11.0  # back to the normal rate at once


def test_an_error_answer_is_an_answer_and_does_not_back_off() -> None:
    clock = Clock()
    schedule = scheduler(clock)
    schedule.sync([target("a")])
    schedule.due()

    outcome = schedule.record("a", Health("error (500)", "boom", None, 3.0))

    assert outcome is not None and outcome[0].failures == 0
    assert outcome[0].last_error == "boom"
    assert next_delay(schedule, clock) <= 10 * 1.5 * 1.1  # the normal rate, not a backoff


def test_three_changes_in_two_minutes_is_flapping_and_it_passes() -> None:
    clock = Clock()
    schedule = scheduler(clock)
    schedule.sync([target("a")])
    transitions: list[Transition] = []
    records: list[HealthRecord] = []
    for health in (HEALTHY, DOWN, HEALTHY, DOWN):
        schedule.due()
        outcome = schedule.record("a", health)
        assert outcome is not None
        records.append(outcome[0])
        if outcome[1]:
            transitions.append(outcome[1])
        clock.now += 20

    assert [(t.before, t.after) for t in transitions] == [
        ("healthy", "unreachable"),
        ("unreachable", "healthy"),
        ("healthy", "unreachable"),
    ]
    assert [r.flapping for r in records] == [False, False, False, True]
    clock.now += 121
    schedule.reprobe()
    schedule.due()
    calm = schedule.record("a", DOWN)
    assert calm is not None and calm[0].flapping is False


def test_history_keeps_the_last_sixty_latencies() -> None:
    clock = Clock()
    schedule = scheduler(clock)
    schedule.sync([target("a")])
    for index in range(65):
        schedule.reprobe()
        schedule.due()
        outcome = schedule.record("a", Health("healthy", "", None, float(index)))
    assert outcome is not None
    assert outcome[0].latencies == tuple(float(i) for i in range(5, 65))


def test_reprobe_and_sync() -> None:
    clock = Clock()
    schedule = scheduler(clock)
    schedule.sync([target("a"), target("b")])
    schedule.due()
    schedule.record("a", DOWN)
    schedule.record("b", HEALTHY)

    schedule.reprobe(["a"])
    assert [t.key for t in schedule.due()] == ["a"]
    schedule.sync([target("b")])  # "a" left the fleet
    assert schedule.record("a", HEALTHY) is None


async def test_the_monitor_probes_a_real_peer_and_recovers_after_an_outage(
    vellum_peer: VellumPeer,
) -> None:
    runtime = vellum_peer.runtime("flaky")
    results: asyncio.Queue[tuple[str, HealthRecord, Transition | None]] = asyncio.Queue()
    clock = Clock()
    schedule = HealthScheduler(HealthPolicy(interval=10.0), clock, random.Random(1))
    async with httpx.AsyncClient() as http:
        prober = Prober(http, VellumEnvironment.resolve(), None)
        monitor = HealthMonitor(schedule, prober, lambda *r: results.put_nowait(r))
        runner = asyncio.create_task(monitor.run())
        try:
            runtime.health = json_reply({"status": "healthy", "version": "3"})
            monitor.follow([HealthTarget("k", "flaky", runtime.base_url, managed=False)])
            _, record, _ = await asyncio.wait_for(results.get(), 5)
            assert record.health.status == "healthy"

            runtime.health = json_reply({}, delay=3)  # hangs past the 1.5 s timeout
            clock.now += 10
            monitor.reprobe()
            _, record, change = await asyncio.wait_for(results.get(), 5)
            assert record.health.status == "timeout" and record.failures == 1
            assert change is not None and change.after == "timeout"
            due = schedule.next_due()
            assert due is not None and due - clock.now >= 18  # backing off

            runtime.health = json_reply({"status": "healthy", "version": "3"})
            clock.now = due  # the next backed-off probe comes round: the peer is back
            monitor.reprobe()
            _, record, change = await asyncio.wait_for(results.get(), 5)
            assert record.health.status == "healthy" and record.failures == 0
            assert 9.0 <= next_delay(schedule, clock) <= 11.0
        finally:
            runner.cancel()


async def test_the_monitor_keeps_at_most_its_concurrency_in_flight(
    vellum_peer: VellumPeer,
) -> None:
    runtimes = [
        vellum_peer.runtime(f"r{i}", health=json_reply({"status": "healthy"}, delay=0.2))
        for i in range(12)
    ]
    done: asyncio.Queue[str] = asyncio.Queue()
    in_flight = peak = 0
    async with httpx.AsyncClient() as http:
        prober = Prober(http, VellumEnvironment.resolve(), None)

        async def counting(target: HealthTarget) -> Health:
            nonlocal in_flight, peak
            in_flight += 1
            peak = max(peak, in_flight)
            try:
                return await prober(target)
            finally:
                in_flight -= 1

        schedule = HealthScheduler(HealthPolicy(concurrency=4))
        monitor = HealthMonitor(schedule, counting, lambda key, *_: done.put_nowait(key))
        runner = asyncio.create_task(monitor.run())
        try:
            monitor.follow([HealthTarget(r.name, r.name, r.base_url, False) for r in runtimes])
            keys = {await asyncio.wait_for(done.get(), 10) for _ in runtimes}
        finally:
            runner.cancel()

    assert keys == {r.name for r in runtimes}
    assert peak == 4


async def test_a_paused_monitor_starts_no_probe_and_resumes_at_once() -> None:
    probed: asyncio.Queue[str] = asyncio.Queue()

    async def probe(target: HealthTarget) -> Health:
        probed.put_nowait(target.key)
        return HEALTHY

    monitor = HealthMonitor(HealthScheduler(), probe, lambda *_: None)
    monitor.pause()
    runner = asyncio.create_task(monitor.run())
    try:
        monitor.follow([target("a")])
        await asyncio.sleep(0)  # let the loop run: it must be parked on the pause
        assert probed.empty()
        monitor.resume()
        assert await asyncio.wait_for(probed.get(), 5) == "a"
    finally:
        runner.cancel()


async def test_a_monitor_cancelled_as_a_result_arrives_stops() -> None:
    """A result wakes the monitor and whoever waits for it in one step; that waiter may cancel
    the monitor at once (a sweep done, the app closing). asyncio.wait_for on Python 3.11
    returned the wake-up and dropped the cancel: the monitor went on probing with the HTTP
    client its owner had just closed ("Cannot send a request, as the client has been closed")."""
    release = asyncio.Event()
    answered: asyncio.Queue[str] = asyncio.Queue()

    async def probe(target: HealthTarget) -> Health:
        if target.key == "slow":
            await release.wait()
        return HEALTHY

    monitor = HealthMonitor(HealthScheduler(), probe, lambda key, *_: answered.put_nowait(key))
    runner = asyncio.create_task(monitor.run())
    monitor.follow([target("quick"), target("slow")])
    assert await asyncio.wait_for(answered.get(), 5) == "quick"  # now it waits for a time
    release.set()
    assert await asyncio.wait_for(answered.get(), 5) == "slow"
    runner.cancel()
    await asyncio.wait({runner}, timeout=5)
    assert runner.cancelled()


async def test_no_probe_outlives_a_stopped_monitor() -> None:
    """When `run` has ended, its probes have too: the owner may close the HTTP client."""
    running: set[str] = set()
    started = asyncio.Event()

    async def probe(target: HealthTarget) -> Health:
        running.add(target.key)
        started.set()
        try:
            await asyncio.Event().wait()  # a request that never answers
        finally:
            await asyncio.sleep(0.01)  # closing a connection takes a moment
            running.discard(target.key)
        return HEALTHY

    monitor = HealthMonitor(HealthScheduler(), probe, lambda *_: None)
    runner = asyncio.create_task(monitor.run())
    monitor.follow([target("a"), target("b")])
    await asyncio.wait_for(started.wait(), 5)
    runner.cancel()
    await asyncio.wait({runner}, timeout=5)
    assert runner.cancelled()
    assert running == set()


async def test_probes_that_end_together_free_their_slots_together() -> None:
    """Every slot's probe ends in the same turn of the loop: the monitor, woken by the first,
    must still see every slot free (it once counted the others as busy, and slept for ever)."""
    release = asyncio.Event()
    started: asyncio.Queue[str] = asyncio.Queue()

    async def probe(target: HealthTarget) -> Health:
        started.put_nowait(target.key)
        await release.wait()
        return HEALTHY

    policy = HealthPolicy(interval=0.01, concurrency=2)
    monitor = HealthMonitor(HealthScheduler(policy), probe, lambda *_: None)
    runner = asyncio.create_task(monitor.run())
    try:
        monitor.follow([target("a"), target("b")])
        assert {await asyncio.wait_for(started.get(), 5) for _ in range(2)} == {"a", "b"}
        release.set()  # both end in the same turn
        assert await asyncio.wait_for(started.get(), 5) in {"a", "b"}  # and are probed again
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
