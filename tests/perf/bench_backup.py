"""Benchmark: verified backup downloads (run: python -m tests.perf.bench_backup [--quick]).

Prints JSON.

A 512 MiB archive is served on loopback by the Vellum peer's bucket (in its own process,
streamed block by block, never whole in memory). Side by side, alternately, each in a fresh
process:

- roost: `jobs.downloads.save_verified` into a file (sha256 while streaming, fsync, size and
  checksum check, rename), the way every backup ends;
- bare: an httpx stream of the same URL written to /dev/null, nothing checked.

`ratio` is roost's best throughput over the bare one's (target >= 0.9), saving to a tmpfs
(/dev/shm) so that it measures roost's own cost rather than the disk's; `ratio_on_disk` saves
to the temporary directory's file system instead, where a slow disk, not roost, may set the pace.
`ratio_paired_median` compares each roost run with the bare run just
before it. `roost_peak_rss_mib` is the largest resident size of a roost download process
(target < 100 MiB), next to the bare one's for scale. CPU seconds (all threads) show the price
of checking: sha256 and the file writes run on a second thread, so on a machine with a core to
spare they cost little time.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import httpx

from services.core.http import http_client
from services.jobs.downloads import DownloadError, Expected, save_verified
from tests.perf import runner

MIB = 1 << 20
SIZE, ROUNDS = 512 * MIB, 7
QUICK_SIZE, QUICK_ROUNDS = 8 * MIB, 2
TMPFS = Path("/dev/shm")  # noqa: S108 - only the parent of a private TemporaryDirectory


def serve(size: int) -> None:
    """Child: the peer with one bundle of `size` bytes; prints its URL and sha256, serves until
    stdin closes."""
    # Imported here: the download processes, whose memory is measured, need none of it.
    from tests.peers.vellum import Artifact, VellumPeer

    with VellumPeer() as peer:
        artifact = Artifact(size)
        peer.runtime("bench").migrations.artifact = artifact
        print(json.dumps({"url": f"{peer.url}/gcs/bench/bundle-1", "sha256": artifact.sha256}))
        sys.stdout.flush()
        sys.stdin.read()


async def download_roost(url: str, sha256: str, size: int, dest: Path) -> None:
    async with http_client() as http, http.stream("GET", url) as response:
        response.raise_for_status()
        async for report in save_verified(response, dest, Expected(size, sha256)):
            if report.saved is not None and not report.saved.verified:
                raise DownloadError("not verified")


async def download_bare(url: str, sink: BinaryIO) -> None:
    async with httpx.AsyncClient() as http, http.stream("GET", url) as response:
        async for chunk in response.aiter_bytes():
            sink.write(chunk)


def measure(mode: str, url: str, sha256: str, size: int, dest: str) -> None:
    """Child: one download; prints its seconds, CPU seconds (all threads) and peak RSS."""
    started, cpu_started = time.perf_counter(), time.process_time()
    if mode == "roost":
        asyncio.run(download_roost(url, sha256, size, Path(dest)))
    else:
        with Path(os.devnull).open("wb") as sink:
            asyncio.run(download_bare(url, sink))
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(json.dumps({"seconds": seconds, "cpu_seconds": cpu, "peak_rss_mib": peak_kib / 1024}))


@contextmanager
def bundle_server(size: int) -> Iterator[tuple[str, str]]:
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.perf.bench_backup", "serve", str(size)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        announced = json.loads(server.stdout.readline())
        yield announced["url"], announced["sha256"]
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(timeout=30)


def run_child(mode: str, url: str, sha256: str, size: int, dest: Path) -> dict[str, float]:
    child = subprocess.run(
        [sys.executable, "-m", "tests.perf.bench_backup", mode, url, sha256, str(size), str(dest)],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, float] = json.loads(child.stdout)
    if mode == "roost":
        assert dest.stat().st_size == size
        dest.unlink()
    return result


def main(quick: bool) -> dict[str, object]:
    size, rounds = (QUICK_SIZE, QUICK_ROUNDS) if quick else (SIZE, ROUNDS)
    runs: dict[str, list[dict[str, float]]] = {"bare": [], "roost": [], "roost_on_disk": []}
    with (
        bundle_server(size) as (url, sha256),
        tempfile.TemporaryDirectory(dir=TMPFS if TMPFS.is_dir() else None) as fast,
        tempfile.TemporaryDirectory() as disk,
    ):
        for _ in range(rounds):
            runs["bare"].append(run_child("bare", url, sha256, size, Path(fast) / "b"))
            runs["roost"].append(run_child("roost", url, sha256, size, Path(fast) / "b"))
        for _ in range(max(1, rounds // 2)):
            runs["roost_on_disk"].append(run_child("roost", url, sha256, size, Path(disk) / "b"))

    def best_mb_s(mode: str) -> float:
        return size / 1e6 / min(run["seconds"] for run in runs[mode])

    def seconds(mode: str) -> list[float]:
        return [round(run["seconds"], 3) for run in runs[mode]]

    roost, bare, on_disk = best_mb_s("roost"), best_mb_s("bare"), best_mb_s("roost_on_disk")
    # Each roost run against the bare run just before it: load that comes and goes (this is
    # often a shared machine) hits both of a pair alike.
    paired = statistics.median(
        b["seconds"] / r["seconds"] for b, r in zip(runs["bare"], runs["roost"], strict=True)
    )
    return {
        "size_mib": size // MIB,
        "rounds": rounds,
        "roost_mb_s": round(roost, 1),
        "bare_httpx_mb_s": round(bare, 1),
        "ratio": round(roost / bare, 3),
        "ratio_target": 0.9,
        "ratio_paired_median": round(paired, 3),
        "roost_on_disk_mb_s": round(on_disk, 1),
        "ratio_on_disk": round(on_disk / bare, 3),
        "roost_seconds": seconds("roost"),
        "bare_seconds": seconds("bare"),
        "roost_on_disk_seconds": seconds("roost_on_disk"),
        "roost_cpu_seconds": round(min(run["cpu_seconds"] for run in runs["roost"]), 3),
        "bare_cpu_seconds": round(min(run["cpu_seconds"] for run in runs["bare"]), 3),
        "roost_peak_rss_mib": round(
            max(run["peak_rss_mib"] for mode in ("roost", "roost_on_disk") for run in runs[mode]),
            1,
        ),
        "bare_peak_rss_mib": round(max(run["peak_rss_mib"] for run in runs["bare"]), 1),
        "peak_rss_target_mib": 100,
        "cpus": os.cpu_count(),
        "quick": quick,
    }


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        serve(int(sys.argv[2]))
    elif sys.argv[1:2] in (["roost"], ["bare"]):
        measure(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
    else:
        runner.run(main, __doc__)
