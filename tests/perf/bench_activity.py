"""Benchmark: following 1,000 assistants' event streams (run: python -m tests.perf.bench_activity
[--quick]). Prints JSON.

The peer (tests/perf/activity_peer.py, its own process) serves one event stream per assistant
and sends events at a steady total rate spread over them, each carrying its send time. Each
reader runs in a fresh process of its own, against a fresh peer, so its memory is its own:
- bare_httpx: the baseline, a bare httpx client reading every stream and parsing each event's
  JSON: CPU seconds per 1,000 events, memory per idle stream, event to parsed latency;
- roost_follower: roost's ActivityFollower following the same streams: the same figures, and
  the latency from an event at the peer to the batch that carries it (an assistant's activity,
  and a confirmation arriving in the inbox);
- console: the whole console (RoostApp, headless) with the peer's assistants in its lockfile:
  from an event at the peer to the first frame showing it, in an assistant's row of the main
  screen, then with the inbox open, a confirmation in the inbox; and its CPU per 1,000 events,
  drawing and health probes included.
Memory per idle stream: what the process's resident memory grew by while most of the streams
opened at once (after the first tenth: what the first stream costs once is not counted), and
what Python allocated (tracemalloc) for the last twentieth, over their numbers. CPU: the
process's share of a CPU while the streams carry only heartbeats, and its CPU time per 1,000
events over a window of steady sending. Latency: median and p95 in milliseconds.
Targets (reported, not asserted): the inbox shows a new confirmation within 250 ms p95 at 1,000
streams; roost's CPU at most 2x the bare reader's; under 50 KiB per idle stream.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import re
import resource
import statistics
import tempfile
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import httpx
from rich.console import RenderableType
from textual._compositor import CompositorUpdate
from textual.screen import Screen

from services.activity.client import ActivityClient
from services.activity.follower import ActivityBatch, ActivityFollower
from services.activity.model import ActivityState
from services.core.http import http_client, stream_client
from services.vellum.auth import BearerAuth, RuntimeEndpoint
from tests.perf import runner
from tests.perf.activity_peer import tag_age
from tests.perf.bench_fleet import roost_app
from tui.app import RoostApp, collect_garbage_less_often


@dataclass(frozen=True)
class Scale:
    streams: int
    rate: float
    """Events a second, over all streams."""
    confirm_every: int
    """Every this many events, a confirmation (resolved by its stream's next event)."""
    warmup: float
    """Seconds of sending before the window opens."""
    window: float
    """Seconds of steady sending measured."""
    idle: float
    """Seconds of heartbeats only, measured."""


FULL = Scale(streams=1000, rate=500.0, confirm_every=25, warmup=3.0, window=20.0, idle=10.0)
"""A busy fleet: each assistant's activity changes every two seconds, and 20 confirmations a
second arrive (each answered by someone else two seconds later)."""
QUICK = Scale(streams=50, rate=250.0, confirm_every=10, warmup=0.5, window=2.0, idle=1.0)
TARGETS = {"inbox_p95_ms": 250.0, "cpu_vs_bare": 2.0, "kib_per_idle_stream": 50.0}
SENT = re.compile(r"sent (\d+\.\d{6})")
"""The peer's send time as it appears in full where a reader shows it (a statusText)."""
SCREEN_TAG = re.compile(r"#([0-9a-z]{3})(?![0-9a-z])")
"""The peer's send time as a short tag, as a narrow column still shows it."""
SHOWN_FOR = 10.0
"""Seconds a tag counts as on screen after it was last drawn."""
CONSOLE_SIZE = (200, 80)
"""Tall enough for every item of the inbox at the full run's rate."""
CONNECT_TIMEOUT = 120.0


def raise_file_limit(streams: int) -> int:
    """Each stream is a socket at each end, and the peer and a reader are separate processes,
    but a process holds one end of each: a little more than `streams` descriptors. The soft
    limit goes up to the hard one (children inherit it); returns it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    if soft != resource.RLIM_INFINITY and soft < streams + 256:
        raise SystemExit(f"{streams} streams need {streams + 256} file descriptors: ulimit -n")
    return int(soft)


def activity_peer(streams: int) -> AbstractContextManager[str]:
    """The peer in its own process; its URL."""
    return runner.peer_process("tests.perf.activity_peer", str(streams))


def in_fresh_process(function: Callable[..., dict[str, Any]], *args: object) -> dict[str, Any]:
    """`function(*args)` in a new interpreter (spawned, not forked): its memory and CPU are
    its own."""
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(function, *args).result()


def rss() -> int:
    """This process's resident memory, in bytes."""
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def milliseconds(seconds: list[float]) -> dict[str, float | int]:
    if not seconds:
        return {"count": 0}
    ordered = sorted(seconds)
    return {
        "count": len(ordered),
        "median_ms": statistics.median(ordered) * 1000,
        "p95_ms": ordered[int(len(ordered) * 0.95)] * 1000,
        "max_ms": ordered[-1] * 1000,
    }


class Peer:
    """The peer's control endpoint, from inside a reader."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx.AsyncClient(timeout=CONNECT_TIMEOUT)

    async def call(self, what: str, **query: float) -> dict[str, int]:
        answer = await self.http.get(f"{self.url}/control/{what}", params=query)
        return dict(answer.json())

    async def wait_for_streams(self, count: int) -> None:
        """Until the peer has `count` streams open."""
        await self.call("stats", streams=count)


class Probe:
    """Latencies a reader saw, kept while the window is open."""

    def __init__(self) -> None:
        self.recording = False
        self.latencies: dict[str, list[float]] = {}

    def sent_at(self, what: str, sent: float) -> None:
        """An event sent at the monotonic time `sent` reached `what` now."""
        self.took(what, time.monotonic() - sent)

    def took(self, what: str, seconds: float) -> None:
        if self.recording:
            self.latencies.setdefault(what, []).append(seconds)


async def measure(
    peer: Peer,
    scale: Scale,
    probe: Probe,
    open_streams: Callable[[int], Awaitable[None]],
) -> dict[str, Any]:
    """What every reader reports: memory per idle stream, CPU when idle, CPU and latency."""
    return {
        **await idle_memory(peer, scale, open_streams),
        **await idle_cpu(scale),
        **await steady(peer, scale, probe),
    }


async def idle_memory(
    peer: Peer, scale: Scale, open_streams: Callable[[int], Awaitable[None]]
) -> dict[str, float]:
    """Memory per idle stream, without what the first streams cost once (imports, caches):
    `open_streams(count)` returns once the first `count` are open and settled.

    A tenth opens first; then the resident memory grows by what most of the rest add, opened
    at once (how long that takes is reported too); then Python's allocations by what the last
    twentieth adds. tracemalloc sees only what is allocated after it starts, so the peer is
    quiet meanwhile: a heartbeat would have every open stream allocate its next read anew,
    counted as if the new streams held it (and it slows everything down: only now)."""
    tenth, last = max(1, scale.streams // 10), max(1, scale.streams // 20)
    await open_streams(tenth)
    gc.collect()
    before, started = rss(), time.monotonic()
    await open_streams(scale.streams - last)
    opened = time.monotonic() - started
    gc.collect()
    grown = rss() - before
    await peer.call("heartbeats", on=0)
    tracemalloc.start()
    await open_streams(scale.streams)
    gc.collect()
    traced = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    await peer.call("heartbeats", on=1)
    at_once = scale.streams - last - tenth
    return {
        "rss_kib_per_idle_stream": grown / at_once / 1024,
        "python_kib_per_idle_stream": traced / last / 1024,
        "streams_opened_at_once": at_once,
        "seconds_to_open_them": opened,
    }


async def idle_cpu(scale: Scale) -> dict[str, float]:
    """This process's share of a CPU while its streams carry only heartbeats."""
    cpu, started = time.process_time(), time.monotonic()
    await asyncio.sleep(scale.idle)  # the measurement itself: idling
    return {"idle_cpu_share": (time.process_time() - cpu) / (time.monotonic() - started)}


async def steady(peer: Peer, scale: Scale, probe: Probe) -> dict[str, Any]:
    """The peer sends at the scale's rate; over the window after the warm-up, this process's
    CPU time per 1,000 events sent (at the rate, over the window as this process timed it: a
    busy process asks the peer late), its share of a CPU, and the latencies `probe` saw."""
    await peer.call("start", rate=scale.rate, confirm_every=scale.confirm_every)
    await asyncio.sleep(scale.warmup)  # steady state before the window opens
    cpu, started = time.process_time(), time.monotonic()
    probe.latencies.clear()
    probe.recording = True
    await asyncio.sleep(scale.window)  # the window: steady sending, measured
    probe.recording = False
    used, lasted = time.process_time() - cpu, time.monotonic() - started
    peer_stats = await peer.call("stop")
    return {
        "cpu_s_per_1000_events": used / (scale.rate * lasted) * 1000,
        "cpu_share": used / lasted,
        "window_s": lasted,
        "latency": {what: milliseconds(values) for what, values in probe.latencies.items()},
        "peer": peer_stats,
    }


def bare_httpx(url: str, scale: Scale) -> dict[str, Any]:
    return asyncio.run(_bare_httpx(url, scale))


async def _bare_httpx(url: str, scale: Scale) -> dict[str, Any]:
    """A bare httpx client: one task per stream reading lines and parsing each event."""
    probe, peer = Probe(), Peer(url)
    opened = 0
    open_now = asyncio.Condition()

    async def read(client: httpx.AsyncClient, index: int) -> None:
        nonlocal opened
        async with client.stream("GET", f"{url}/rt/a{index}/v1/events") as response:
            async with open_now:
                opened += 1
                open_now.notify_all()
            async for line in response.aiter_lines():
                if line.startswith("data:"):
                    message = json.loads(line[5:])["message"]
                    probe.sent_at("event", message["sentAt"])

    limits = httpx.Limits(max_connections=None, max_keepalive_connections=0)
    timeouts = httpx.Timeout(10.0, read=None)
    async with httpx.AsyncClient(limits=limits, timeout=timeouts) as client:
        readers: list[asyncio.Task[None]] = []

        async def open_streams(count: int) -> None:
            readers.extend(
                asyncio.create_task(read(client, index)) for index in range(len(readers), count)
            )
            async with asyncio.timeout(CONNECT_TIMEOUT), open_now:
                await open_now.wait_for(lambda: opened == count)

        try:
            return await measure(peer, scale, probe, open_streams)
        finally:
            for task in readers:
                task.cancel()
            await asyncio.gather(*readers, return_exceptions=True)


def endpoints(url: str, count: int) -> dict[str, RuntimeEndpoint]:
    """The peer's first `count` runtimes as the console follows them, by fleet key (no token:
    the peer asks for none)."""
    return {
        f"bench:a{index}": RuntimeEndpoint(
            f"a{index}", f"a{index}", f"{url}/rt/a{index}", False, BearerAuth(lambda: None)
        )
        for index in range(count)
    }


def roost_follower(url: str, scale: Scale) -> dict[str, Any]:
    return asyncio.run(_roost_follower(url, scale))


async def _roost_follower(url: str, scale: Scale) -> dict[str, Any]:
    """roost's ActivityFollower. Latency: from the event at the peer to the batch carrying it,
    as an assistant's activity (`activity`) or an item new in the inbox (`inbox`)."""
    probe, peer = Probe(), Peer(url)
    idle: set[str] = set()
    batched = asyncio.Event()

    def on_batch(batch: ActivityBatch) -> None:
        for key, activity in batch.activities.items():
            if activity.state is ActivityState.IDLE:
                idle.add(key)
            if sent := SENT.search(activity.detail):
                probe.sent_at("activity", float(sent[1]))
        for item in batch.arrived:
            probe.sent_at("inbox", float(item.request_id.rsplit("-", 1)[1]))
        batched.set()

    async with stream_client() as streams, http_client() as http:
        follower = ActivityFollower(ActivityClient(http, streams), on_batch)
        running = asyncio.create_task(follower.run())

        async def open_streams(count: int) -> None:
            """Until each stream is connected and reconciled: its assistant idle."""
            follower.follow(endpoints(url, count))
            async with asyncio.timeout(CONNECT_TIMEOUT):
                while len(idle) < count:
                    batched.clear()
                    await batched.wait()

        try:
            return await measure(peer, scale, probe, open_streams)
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)


class ScreenWatch:
    """Reads every frame the console would send to its terminal for the peer's tags: the first
    frame showing a tag is when its event reached the screen (`what`: where it shows now)."""

    def __init__(self, app: RoostApp, probe: Probe) -> None:
        self.what = "row"
        self._probe = probe
        self._shown: dict[str, float] = {}
        """When each tag was last on screen: one shown again is a redraw, not news."""
        display = app._display

        def watched(screen: Screen[Any], renderable: RenderableType | None) -> None:
            display(screen, renderable)
            if isinstance(renderable, CompositorUpdate):
                self.frame(renderable.render_segments(app.console))

        # Headless, Textual composes every frame and writes none: the one place to see them.
        app._display = watched  # type: ignore[method-assign]

    def frame(self, text: str) -> None:
        now = time.monotonic()
        for tagged in set(SCREEN_TAG.findall(text)):
            if now - self._shown.get(tagged, -SHOWN_FOR) >= SHOWN_FOR:
                self._probe.took(self.what, tag_age(tagged, now))
            self._shown[tagged] = now


def write_lockfile(directory: Path, url: str, count: int) -> None:
    """The peer's runtimes as `custom` assistants (a runtime URL, no token)."""
    entries = [
        {"assistantId": f"a{index}", "cloud": "custom", "runtimeUrl": f"{url}/rt/a{index}"}
        for index in range(count)
    ]
    (directory / ".vellum.lock.json").write_text(json.dumps({"assistants": entries}))


def console(url: str, scale: Scale) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as scratch:
        for variable in ("TMUX", "TMUX_PANE", "VELLUM_ENVIRONMENT", "NO_COLOR"):
            os.environ.pop(variable, None)
        os.environ.update(
            HOME=scratch,
            XDG_CONFIG_HOME=f"{scratch}/.config",
            XDG_STATE_HOME=f"{scratch}/.local/state",
            XDG_CACHE_HOME=f"{scratch}/.cache",
            ROOST_CONFIG_DIR=f"{scratch}/config",
            ROOST_STATE_DIR=f"{scratch}/state",
            ROOST_CACHE_DIR=f"{scratch}/cache",
            ROOST_LOG_DIR=f"{scratch}/log",
            ROOST_DATA_DIR=f"{scratch}/data",
            ROOST_TMUX_SOCKET=f"{scratch}/no-tmux",
            VELLUM_PLATFORM_URL="http://127.0.0.1:9",
        )
        write_lockfile(Path(scratch), url, scale.streams)
        app = roost_app(Path(scratch))
        collect_garbage_less_often()  # as `roost` does before it runs the console
        return asyncio.run(_console(url, scale, app))


async def _console(url: str, scale: Scale, app: RoostApp) -> dict[str, Any]:
    """The console, headless, following the peer: from an event at the peer to the frame
    showing it in an assistant's row of the main screen (`row`: an activity, or a confirmation
    making it need you), then, with the inbox open, to the frame showing the confirmation in
    the inbox (`inbox`). CPU per 1,000 events: the whole console, drawing included."""
    probe, peer = Probe(), Peer(url)
    watch = ScreenWatch(app, probe)
    started = time.monotonic()
    async with app.run_test(size=CONSOLE_SIZE) as pilot:
        await peer.wait_for_streams(scale.streams)
        following = {"seconds_to_follow_every_stream": time.monotonic() - started}
        idle = await idle_cpu(scale)
        main_screen = await steady(peer, scale, probe)
        await pilot.press("i")
        watch.what = "inbox"
        inbox = await steady(peer, scale, probe)
    return {**following, **idle, "main_screen": main_screen, "inbox_open": inbox}


def main(quick: bool) -> dict[str, Any]:
    scale = QUICK if quick else FULL
    limit = raise_file_limit(scale.streams)
    results: dict[str, Any] = {}
    readers = {"bare_httpx": bare_httpx, "roost_follower": roost_follower, "console": console}
    for name, reader in readers.items():
        with activity_peer(scale.streams) as url:
            results[name] = in_fresh_process(reader, url, scale)
    return {
        "streams": scale.streams,
        "scale": {"quick": quick, **asdict(scale), "file_limit": limit},
        **results,
        "ratios": ratios(scale, results),
        "targets": TARGETS,
    }


def ratios(scale: Scale, results: dict[str, Any]) -> dict[str, float | None]:
    """roost against the bare reader and against the targets. CPU above idle: what the events
    cost beyond the heartbeats' steady cost (a reader at a whole CPU has nothing above)."""
    bare, follower, console = results["bare_httpx"], results["roost_follower"], results["console"]

    def above_idle(reader: dict[str, Any], window: dict[str, Any]) -> float:
        share: float = window["cpu_share"] - reader["idle_cpu_share"]
        return share / scale.rate * 1000

    inbox = console["inbox_open"]["latency"].get("inbox", {})
    cpu_per_event = bare["cpu_s_per_1000_events"]
    return {
        "follower_cpu_vs_bare": follower["cpu_s_per_1000_events"] / cpu_per_event,
        "follower_cpu_above_idle_vs_bare": above_idle(follower, follower) / above_idle(bare, bare),
        "console_cpu_vs_bare": console["main_screen"]["cpu_s_per_1000_events"] / cpu_per_event,
        "follower_rss_per_idle_stream_vs_bare": follower["rss_kib_per_idle_stream"]
        / bare["rss_kib_per_idle_stream"],
        "follower_kib_per_idle_stream_vs_target": follower["rss_kib_per_idle_stream"]
        / TARGETS["kib_per_idle_stream"],
        "console_inbox_p95_vs_target": inbox["p95_ms"] / TARGETS["inbox_p95_ms"]
        if "p95_ms" in inbox
        else None,
    }


if __name__ == "__main__":
    runner.run(main, __doc__)
