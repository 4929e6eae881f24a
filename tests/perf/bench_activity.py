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
Memory per idle stream: the process's resident memory, and what Python allocated (tracemalloc),
after every stream is open and settled, less before any was, over the number of streams.
CPU per 1,000 events: the process's CPU time over a window of steady sending, over the events
the peer sent meanwhile. Targets (reported, not asserted): the inbox shows a new confirmation
within 250 ms p95 at 1,000 streams; roost's CPU at most 2x the bare reader's; under 50 KiB per
idle stream.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import httpx

from tests.perf import runner


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


FULL = Scale(streams=1000, rate=2000.0, confirm_every=50, warmup=3.0, window=20.0)
QUICK = Scale(streams=50, rate=250.0, confirm_every=10, warmup=0.5, window=2.0)
TARGETS = {"inbox_p95_ms": 250.0, "cpu_vs_bare": 2.0, "kib_per_idle_stream": 50.0}
SENT = re.compile(r"sent (\d+\.\d{6})")
"""The peer's send time as it appears in what a reader shows (a statusText, an input)."""
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


@contextmanager
def activity_peer(streams: int) -> Iterator[str]:
    """The peer in its own process; its URL."""
    peer = subprocess.Popen(
        [sys.executable, "-m", "tests.perf.activity_peer", str(streams)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert peer.stdout is not None
        yield peer.stdout.readline().strip()
    finally:
        assert peer.stdin is not None
        peer.stdin.close()
        peer.wait(timeout=30)


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
    """What a reader measured: latencies while the window is open."""

    def __init__(self) -> None:
        self.recording = False
        self.latencies: dict[str, list[float]] = {}

    def seen(self, what: str, sent: float) -> None:
        if self.recording:
            self.latencies.setdefault(what, []).append(time.monotonic() - sent)


async def measure(
    peer: Peer,
    scale: Scale,
    probe: Probe,
    open_streams: Callable[[int], Awaitable[None]],
) -> dict[str, Any]:
    """The figures every reader reports. Memory per idle stream: what opening the last nine
    tenths of the streams added (`open_streams(count)` returns once the first `count` are open
    and settled), so what the first stream costs once (imports, caches) is not counted per
    stream. Then CPU and latency over the window."""
    warm = max(1, scale.streams // 10)
    await open_streams(warm)
    await peer.wait_for_streams(warm)
    gc.collect()
    before = rss()
    tracemalloc.start()
    await open_streams(scale.streams)
    await peer.wait_for_streams(scale.streams)
    gc.collect()
    traced = tracemalloc.get_traced_memory()[0]
    tracing = tracemalloc.get_tracemalloc_memory()
    after = rss()
    tracemalloc.stop()
    added = scale.streams - warm
    idle = {
        "rss_kib_per_idle_stream": (after - before - tracing) / added / 1024,
        "python_kib_per_idle_stream": traced / added / 1024,
    }

    await peer.call("start", rate=scale.rate, confirm_every=scale.confirm_every)
    await asyncio.sleep(scale.warmup)  # steady state before the window opens
    opened, cpu = await peer.call("stats"), time.process_time()
    probe.recording = True
    await asyncio.sleep(scale.window)  # the window: steady sending, measured
    probe.recording = False
    used, closed = time.process_time() - cpu, await peer.call("stop")
    sent = closed["sent"] - opened["sent"]
    return {
        **idle,
        "cpu_s_per_1000_events": used / sent * 1000,
        "events_in_window": sent,
        "latency": {what: milliseconds(values) for what, values in probe.latencies.items()},
        "peer": closed,
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
                    probe.seen("event", message["sentAt"])

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

        report = await measure(peer, scale, probe, open_streams)
        for task in readers:
            task.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
    return report


def main(quick: bool) -> dict[str, Any]:
    scale = QUICK if quick else FULL
    limit = raise_file_limit(scale.streams)
    results: dict[str, Any] = {}
    for name, reader in (("bare_httpx", bare_httpx),):
        with activity_peer(scale.streams) as url:
            results[name] = in_fresh_process(reader, url, scale)
    return {
        "streams": scale.streams,
        "scale": {"quick": quick, **asdict(scale), "file_limit": limit},
        **results,
        "targets": TARGETS,
    }


if __name__ == "__main__":
    runner.run(main, __doc__)
