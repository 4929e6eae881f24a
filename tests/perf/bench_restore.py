"""Benchmark: restore uploads (run: python -m tests.perf.bench_restore [--quick]).

Prints JSON.

A 512 MiB bundle (`--quick`: 8 MiB) on a tmpfs (/dev/shm) is PUT to the Vellum peer's bucket
(a signed upload URL, the managed restore's route; the peer in its own process, reading and
hashing what arrives block by block, never holding it whole). Side by side, alternately, each
upload in a fresh process:

- roost: the restore's upload path, `jobs.uploads.BundleBody` through roost's HTTP client
  (`core/http.py`): read from disk on a worker thread, hashed as it goes, the last block held
  back until size and sha256 match the verified ones;
- bare: an httpx streamed upload of the same file to the same URL (1 MiB blocks read in the
  event loop, Content-Length set), nothing checked.

`ratio` is roost's best throughput over the bare one's (target >= 0.9); `ratio_paired_median`
compares each roost run with the bare run just before it. `roost_peak_rss_mib` is the largest
resident size of a roost upload process (target < 100 MiB), next to the bare one's for scale;
CPU seconds (all threads) show the price of hashing while sending. The peer checks that every
upload arrived whole with the file's sha256.
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
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.perf import runner

MIB = 1 << 20
SIZE, ROUNDS = 512 * MIB, 7
QUICK_SIZE, QUICK_ROUNDS = 8 * MIB, 2
TMPFS = Path("/dev/shm")  # noqa: S108 - only the parent of a private TemporaryDirectory


def serve() -> None:
    """Child: the peer; prints its bucket's upload URL, then for each line it reads (a bundle
    key) the size, sha256 and completeness of what was uploaded there; ends when stdin closes."""
    from tests.peers.vellum import VellumPeer

    with VellumPeer() as peer:
        runtime = peer.runtime("bench")
        print(f"{peer.url}/gcs/bench/", flush=True)
        for line in sys.stdin:
            got = runtime.migrations.bucket.pop(line.strip())
            print(json.dumps([got.size, got.sha256, got.complete]), flush=True)


async def upload_roost(url: str, path: Path, size: int, sha256: str) -> None:
    # Imported here, as the console would have them: their import is part of the process.
    from services.core.http import http_client, send, timeout
    from services.jobs.uploads import BundleBody

    body = BundleBody(path, size, sha256)
    async with http_client() as http:
        request = http.build_request(
            "PUT", url, headers=body.headers, content=body, timeout=timeout(120.0)
        )
        response = await send(http, request)
        await response.aclose()
        response.raise_for_status()


async def upload_bare(url: str, path: Path, size: int) -> None:
    async def blocks() -> AsyncIterator[bytes]:
        with path.open("rb", buffering=0) as file:
            while block := file.read(MIB):
                yield block

    async with httpx.AsyncClient(timeout=120.0) as http:
        response = await http.put(url, content=blocks(), headers={"Content-Length": str(size)})
        response.raise_for_status()


def measure(mode: str, url: str, path: str, size: int, sha256: str) -> None:
    """Child: one upload; prints its seconds, CPU seconds (all threads) and peak RSS."""
    started, cpu_started = time.perf_counter(), time.process_time()
    if mode == "roost":
        asyncio.run(upload_roost(url, Path(path), size, sha256))
    else:
        asyncio.run(upload_bare(url, Path(path), size))
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(json.dumps({"seconds": seconds, "cpu_seconds": cpu, "peak_rss_mib": peak_kib / 1024}))


@contextmanager
def bucket() -> Iterator[subprocess.Popen[str]]:
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.perf.bench_restore", "serve"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        yield server
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(timeout=30)


def make_bundle(path: Path, size: int) -> str:
    """Write `size` deterministic bytes to `path`; their sha256."""
    from tests.peers.vellum import Artifact

    artifact = Artifact(size, seed="restore")
    with path.open("wb") as file:
        for chunk in artifact.chunks():
            file.write(chunk)
    return artifact.sha256


def main(quick: bool) -> dict[str, object]:
    size, rounds = (QUICK_SIZE, QUICK_ROUNDS) if quick else (SIZE, ROUNDS)
    runs: dict[str, list[dict[str, float]]] = {"bare": [], "roost": []}
    with (
        tempfile.TemporaryDirectory(dir=TMPFS if TMPFS.is_dir() else None) as folder,
        bucket() as server,
    ):
        requests, answers = server.stdin, server.stdout
        assert requests is not None and answers is not None
        base = answers.readline().strip()
        path = Path(folder) / "bundle.vbundle"
        sha256 = make_bundle(path, size)
        serial = 0

        def upload(mode: str) -> None:
            nonlocal serial
            serial += 1
            key = f"{mode}-{serial}"
            child = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "tests.perf.bench_restore",
                    mode,
                    base + key,
                    str(path),
                    str(size),
                    sha256,
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            runs[mode].append(json.loads(child.stdout))
            requests.write(key + "\n")
            requests.flush()
            arrived = json.loads(answers.readline())
            assert arrived == [size, sha256, True], (mode, arrived)

        for _ in range(rounds):
            upload("bare")
            upload("roost")

    def best_mb_s(mode: str) -> float:
        return size / 1e6 / min(run["seconds"] for run in runs[mode])

    def seconds(mode: str) -> list[float]:
        return [round(run["seconds"], 3) for run in runs[mode]]

    roost, bare = best_mb_s("roost"), best_mb_s("bare")
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
        "roost_seconds": seconds("roost"),
        "bare_seconds": seconds("bare"),
        "roost_cpu_seconds": round(min(run["cpu_seconds"] for run in runs["roost"]), 3),
        "bare_cpu_seconds": round(min(run["cpu_seconds"] for run in runs["bare"]), 3),
        "roost_peak_rss_mib": round(max(run["peak_rss_mib"] for run in runs["roost"]), 1),
        "bare_peak_rss_mib": round(max(run["peak_rss_mib"] for run in runs["bare"]), 1),
        "peak_rss_target_mib": 100,
        "all_arrived_whole": True,
        "cpus": os.cpu_count(),
        "quick": quick,
    }


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        serve()
    elif sys.argv[1:2] in (["roost"], ["bare"]):
        measure(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
    else:
        runner.run(main, __doc__)
