"""Benchmark: the attach transports (run: python -m tests.perf.bench_attach [--quick]).

Prints one JSON object. Everything is measured at the backend (`TerminalBackend`): bytes are
written with `write()` and timed until `read()` returns them, so the figures are the transport's
share; the pane's emulation and drawing come on top (tests/perf/bench_terminal.py measures them).

Targets (issue 16, `targets`: value, target, met): a remote session's keypress to echo on
loopback at most 5 ms at the 95th percentile (`remote.keypress_p95_ms`), and its output at least
0.8x a local PTY running the same `cat` (`remote_output.ratio_median`).

Keypress to echo (`keypress_to_echo_ms`): one key at a time, the next only once the echo of the
last has come back, each key a character typed nowhere else in the run (non-ASCII letters, two
bytes of UTF-8: no escape sequence contains their bytes, so a tmux redraw cannot fake an echo).
The echo is the tty's own (`cat` in canonical mode never prints before Enter). Latency is from
just before `write()` to the return of the `read()` that completed the echo's bytes. Backends,
all open at once at 200x50, typed into in interleaved blocks (the order rotating each block), so
load that comes and goes hits them alike:

- `local_pty`: `cat` in a LocalPty, the baseline;
- `local_tmux`: `cat` in a session of a private tmux server (`-S`), reached with TmuxAttach in
  drive mode: the echo is tmux's redraw of the pane, sent to its client;
- `docker_exec`: `cat` in a DockerExec in a running container of the test image, on the engine
  `DOCKER_HOST` names; `{"skipped": why}` without one (a failure under ROOST_REQUIRE_DOCKER=1);
- `remote`: a RemoteSession on the loopback Vellum peer (its own process, so its threads do not
  share this interpreter), whose PTY runs `cat`: a key goes at once when no input request is
  out, so this is the cost of the protocol itself (a POST per key on a kept-alive connection,
  the echo back over the SSE stream). Both ends send with TCP_NODELAY (asyncio sets it on the
  client's sockets; the peer sets it, as production servers do).
`vs_local_pty` gives each one's median and p95 over the baseline's and the milliseconds added.

Remote output throughput (`remote_output`): the same command, `cat` of a generated log file
(bench_terminal's coloured log, `\\n` line ends, repeated to the size) then `sleep`, in (a) a
LocalPty, (b) a remote session on the peer as it ships (every PTY read of the peer, about 4 KiB,
an SSE event; RemoteSession de-duplicates by `seq` and hands on what each read of the stream
brought as one chunk), and (c) `peer_ceiling`: a session of the same peer whose stream is only
counted (the length of each line's base64, through the same HTTP client; nothing decoded,
checked or queued), in turn, a fresh session each round (order reversed every other round).
MB/s is 10^6 bytes of terminal output (the file with the tty's CRLF line ends) over the time from
`start()` to the `read()` that returned the last byte (`mb_s_after_first_byte_best`: from the
first byte, without the session's start); every byte of (a) and (b) is checked against the file.
`ratio_best` = (b)/(a) of the best rounds, `ratio_paired_median` compares each (b) with the (a)
of its round.

The peer and the reader share this machine's cores (with `cat` and the kernel's PTY and TCP
work), so (b) can go no faster than (c), whatever roost does: `ceiling_ratio_median` is (c)/(a),
what any client could reach here, and `remote_of_ceiling_median` is (b)/(c), roost's own share.
CPU: `cpu_ms_per_mib` of this process (the reading side) and `peer_cpu_ms_per_mib` of the peer's
process (its PTY reading and event writing threads), per MiB of terminal output, medians of
the rounds; `cpu_seconds` and `peer_cpu_seconds` per round. A production platform spends its
share on its own machine.
The `sleep` keeps the session open once the output is out: the peer answers 404 to the events
request of a session whose program has already exited, output unsent or not, and a fast `cat`
can beat the request (RemoteSession opens the stream once the session's creation is answered).
It also means no wait for the end: a remote session's end is only found by a reconnect attempt,
after the first backoff (1 s). After the last byte, QUIET_AFTER seconds must bring no more.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker.errors
import httpx

from services.core.mode import Mode
from services.docker.engines import DEFAULT_DOCKER_HOST, Engine, connect, probe
from services.terminal.attach import TmuxAttach
from services.terminal.backend import LinkNotice, TerminalBackend, TerminalSize
from services.terminal.docker_exec import DockerExec
from services.terminal.local import LocalPty
from services.terminal.remote import RemoteSession
from services.terminal.tmux import TmuxServer, TmuxSocket
from services.vellum.platform import PlatformClient
from services.vellum.tokens import PlatformToken
from tests.docker_fixtures import Sandbox
from tests.peers.terminal import API_KEY, ASSISTANT
from tests.peers.vellum import VellumPeer
from tests.perf import runner
from tests.perf.bench_health import cpu_seconds
from tests.perf.bench_terminal import SEED, log_workload, summary
from tests.test_docker_engine import IMAGE

SIZE = TerminalSize(200, 50)
WARMUP_KEYS = 5
"""Untimed keys per backend first: connections opened, code paths warm."""
SETTLE = 0.3
"""Seconds without output that count as a session having drawn its first screen."""
WITHIN = 30.0
"""Seconds any one wait may take before the benchmark gives up."""
QUIET_AFTER = 0.2
"""Seconds after the expected output in which a session must print nothing more."""
MIB = 1 << 20
MAIN = {"keys": 200, "blocks": 4, "output_mib": 16, "rounds": 5}
QUICK = {"keys": 40, "blocks": 2, "output_mib": 4, "rounds": 2}
KEY_CHARACTERS = [
    chr(code) for code in (*range(0x100, 0x180), *range(0x3B1, 0x3CA), *range(0x410, 0x450))
]
"""Latin Extended-A, Greek and Cyrillic letters: one column each, two bytes of UTF-8."""
TIMED_NOTE = (
    "Backend level: from write() to the read() that returned the echo; the pane's emulation "
    "and drawing add a few ms on top (tests/perf/bench_terminal.py, keypress_to_echo_ms)."
)


def environment() -> dict[str, str]:
    """This environment in UTF-8 (tmux draws non-ASCII only for a UTF-8 client)."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("LC_")}
    return {**env, "LANG": "C.UTF-8"}


# -- reading a backend -------------------------------------------------------------------------


class Tap:
    """Reads a backend on a task of its own, noting when each chunk came out of `read()`."""

    def __init__(self, name: str, backend: TerminalBackend) -> None:
        self.name = name
        self.backend = backend
        self.data = bytearray()
        self.ends: list[int] = []
        """The offset just past each chunk, in order."""
        self.times: list[float] = []
        """When `read()` returned each chunk."""
        self.notices: list[LinkNotice] = []
        self.ended = False
        self.error: BaseException | None = None
        self._arrived = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.backend.start(SIZE)
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        try:
            while True:
                item = await self.backend.read()
                now = time.perf_counter()
                if isinstance(item, LinkNotice):
                    self.notices.append(item)
                elif not item:
                    return
                else:
                    self.data += item
                    self.ends.append(len(self.data))
                    self.times.append(now)
                self._arrived.set()
        except Exception as error:  # reported by the waiter, with the tap's name
            self.error = error
        finally:
            self.ended = True
            self._arrived.set()

    async def until(self, condition: Callable[[], bool], what: str) -> None:
        """Wait for output until `condition` holds."""
        async with asyncio.timeout(WITHIN):
            while not condition():
                if self.error is not None:
                    raise RuntimeError(f"{self.name}: {self.error}") from self.error
                if self.ended:
                    raise RuntimeError(f"{self.name} ended while waiting for {what}")
                self._arrived.clear()
                await self._arrived.wait()

    async def settle(self) -> None:
        """Wait until the session has been silent for SETTLE seconds."""
        async with asyncio.timeout(WITHIN):
            while True:
                seen = len(self.data)
                await asyncio.sleep(SETTLE)
                if len(self.data) == seen:
                    return

    async def echo(self, key: str) -> float:
        """Type `key`; seconds until the read that completed its echo."""
        wanted, mark = key.encode(), len(self.data)
        found = -1

        def echoed() -> bool:
            nonlocal found
            found = self.data.find(wanted, mark)
            return found >= 0

        sent = time.perf_counter()
        self.backend.write(wanted)
        await self.until(echoed, f"the echo of {key!r}")
        chunk = bisect.bisect_left(self.ends, found + len(wanted))
        return self.times[chunk] - sent

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.backend.close()


# -- the peers: the Vellum peer, a private tmux server, a container ----------------------------


@dataclass
class PeerProcess:
    """The loopback Vellum peer in a child process; `run(argv)` sets what new sessions run."""

    process: subprocess.Popen[str]
    url: str

    @property
    def pid(self) -> int:
        return self.process.pid

    def run(self, argv: list[str]) -> None:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps(argv) + "\n")
        self.process.stdin.flush()
        if self.process.stdout.readline().strip() != "ok":
            raise RuntimeError("the peer did not take the command")


def serve() -> None:
    """Child: the peer, letting API_KEY in and giving ASSISTANT a terminal; prints its URL, then
    takes one JSON argv per stdin line (what new sessions run), answering `ok`, until EOF."""
    with VellumPeer() as peer:
        peer.platform.api_keys.add(API_KEY)
        peer.terminals.assistants.add(ASSISTANT)
        print(peer.url, flush=True)
        for line in sys.stdin:
            peer.terminals.argv = json.loads(line)
            print("ok", flush=True)


@contextlib.contextmanager
def peer_process() -> Iterator[PeerProcess]:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.perf.bench_attach", "serve"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        if not url.startswith("http://127.0.0.1:"):
            raise RuntimeError(f"the peer did not start (it said {url!r})")
        yield PeerProcess(process, url)
    finally:
        assert process.stdin is not None
        with contextlib.suppress(OSError):
            process.stdin.close()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def private_tmux() -> Iterator[TmuxServer]:
    """A tmux server on a socket of its own, with a session `bench` running `cat`."""
    directory = tempfile.mkdtemp(prefix="roost-bench-tmux-")
    server = TmuxServer(TmuxSocket(f"{directory}/sock"))
    try:
        size = ("-x", str(SIZE.columns), "-y", str(SIZE.rows))
        subprocess.run(
            server.argv("new-session", "-d", "-s", "bench", *size, "cat"),
            check=True,
            env=environment(),
            capture_output=True,
        )
        yield server
    finally:
        subprocess.run(server.argv("kill-server"), capture_output=True, check=False)
        shutil.rmtree(directory, ignore_errors=True)


@dataclass(frozen=True)
class DockerPlace:
    engine: Engine
    container: str
    version: str


@contextlib.contextmanager
def docker_container() -> Iterator[DockerPlace | str]:
    """A running container of the test image (removed afterwards), or why there is none."""
    engine = Engine("bench", os.environ.get("DOCKER_HOST") or DEFAULT_DOCKER_HOST, None, False)
    found = probe(engine)
    if not found.reachable:
        yield unavailable(f"no Docker engine at {engine.host}: {found.error}")
        return
    client = connect(engine)
    sandbox = Sandbox(client, prefix=f"roost-bench-attach-{uuid.uuid4().hex[:8]}")
    try:
        try:
            client.images.get(IMAGE)
        except docker.errors.ImageNotFound:
            yield unavailable(f"the test image {IMAGE} is missing (build it: .ci/test-image.sh)")
            return
        name = sandbox.name()
        sandbox.container(name).start()
        yield DockerPlace(engine, name, found.version or "unknown")
    finally:
        sandbox.clean()
        client.close()


def unavailable(reason: str) -> str:
    if os.environ.get("ROOST_REQUIRE_DOCKER"):
        raise RuntimeError(f"{reason}, and ROOST_REQUIRE_DOCKER is set")
    return reason


@dataclass(frozen=True)
class Platform:
    """A peer and a platform client for it, as tests/peers/terminal.py's `Remote` has them."""

    peer: PeerProcess
    http: httpx.AsyncClient
    client: PlatformClient


# -- keypress to echo --------------------------------------------------------------------------


@dataclass
class Typist:
    tap: Tap
    extra: dict[str, Any] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    typed: int = 0

    async def type(self, count: int) -> list[float]:
        seconds = []
        for _ in range(count):
            seconds.append(await self.tap.echo(KEY_CHARACTERS[self.typed]))
            self.typed += 1
        return seconds


def figures(values: list[float]) -> dict[str, float]:
    return {key: round(value, 3) for key, value in {**summary(values), "min": min(values)}.items()}


async def keypress_to_echo(
    settings: dict[str, int],
    tmux: TmuxServer,
    place: DockerPlace | str,
    remote: Platform,
) -> dict[str, Any]:
    keys, blocks = settings["keys"], settings["blocks"]
    assert keys % blocks == 0 and keys + WARMUP_KEYS <= len(KEY_CHARACTERS)
    env = environment()
    backends: dict[str, tuple[TerminalBackend, dict[str, Any]]] = {
        "local_pty": (LocalPty(["cat"], environ=env), {}),
        "local_tmux": (TmuxAttach(tmux, "bench", Mode.DRIVE, env), {}),
    }
    if isinstance(place, DockerPlace):
        backends["docker_exec"] = (DockerExec(place.engine, place.container, ["cat"]), {})
    remote.peer.run(["cat"])
    backends["remote"] = (RemoteSession(remote.http, remote.client, ASSISTANT), {})
    typists: dict[str, Typist] = {}
    try:
        for name, (backend, extra) in backends.items():
            tap = Tap(name, backend)
            typists[name] = Typist(tap, extra)
            await tap.start()
        for typist in typists.values():
            await typist.tap.settle()
            await typist.type(WARMUP_KEYS)
        order = list(typists)
        for block in range(blocks):
            shift = block % len(order)
            for name in order[shift:] + order[:shift]:
                typists[name].latencies += await typists[name].type(keys // blocks)
        for name, typist in typists.items():
            assert not typist.tap.notices, f"{name} lost its link: {typist.tap.notices}"
    finally:
        for typist in typists.values():
            await typist.tap.close()
    results: dict[str, Any] = {
        name: {**figures([s * 1000 for s in typist.latencies]), **typist.extra}
        for name, typist in typists.items()
    }
    if isinstance(place, str):
        results["docker_exec"] = {"skipped": place}
    base = results["local_pty"]
    results["vs_local_pty"] = {
        name: {
            "median_ratio": round(result["median"] / base["median"], 1),
            "p95_ratio": round(result["p95"] / base["p95"], 1),
            "median_added_ms": round(result["median"] - base["median"], 3),
            "p95_added_ms": round(result["p95"] - base["p95"], 3),
        }
        for name, result in results.items()
        if name != "local_pty" and "median" in result
    }
    return {
        "keys": keys,
        "warmup_keys": WARMUP_KEYS,
        "blocks": blocks,
        "terminal": f"{SIZE.columns}x{SIZE.rows}",
        **{name: results[name] for name in ["local_pty", "local_tmux", "docker_exec", "remote"]},
        "vs_local_pty": results["vs_local_pty"],
        "note": TIMED_NOTE,
    }


# -- remote output throughput ------------------------------------------------------------------


def log_file(mib: int) -> bytes:
    """bench_terminal's coloured log with `\\n` line ends, repeated and cut after the last whole
    line within `mib` MiB."""
    block = log_workload(random.Random(SEED), coloured=True).replace(b"\r\n", b"\n")
    data = block * -(-(mib * MIB) // len(block))
    return data[: data.rindex(b"\n", 0, mib * MIB) + 1]


@dataclass(frozen=True)
class OutputRun:
    seconds: float
    first_byte_s: float
    reads: int
    cpu_seconds: float
    peer_cpu_seconds: float


async def output_run(backend: TerminalBackend, expected: bytes, peer_pid: int) -> OutputRun:
    """Start `backend` and read all of `expected`; checks every byte, and that no more come."""
    chunks: list[bytes] = []
    received = reads = 0
    cpu, peer_cpu = time.process_time(), cpu_seconds(peer_pid)
    started = first = time.perf_counter()
    try:
        await backend.start(SIZE)
        async with asyncio.timeout(WITHIN * 4):
            while received < len(expected):
                item = await backend.read()
                if isinstance(item, LinkNotice):
                    raise RuntimeError(f"{backend.description} lost its link: {item}")
                if not item:
                    raise RuntimeError(f"{backend.description} ended after {received} bytes")
                if not chunks:
                    first = time.perf_counter()
                chunks.append(item)
                received += len(item)
                reads += 1
        last = time.perf_counter()
        cpu, peer_cpu = time.process_time() - cpu, cpu_seconds(peer_pid) - peer_cpu
        more = await more_output(backend)
    finally:
        await backend.close()
    assert not more, f"{backend.description}: {len(more)} bytes more than the command printed"
    assert b"".join(chunks) == expected, f"{backend.description} garbled its output"
    return OutputRun(last - started, first - started, reads, cpu, peer_cpu)


async def more_output(backend: TerminalBackend) -> bytes:
    """What the session prints in the next QUIET_AFTER seconds."""
    more = bytearray()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(QUIET_AFTER):
            while True:
                item = await backend.read()
                if isinstance(item, LinkNotice):
                    raise RuntimeError(f"{backend.description} lost its link: {item}")
                if not item:
                    raise RuntimeError(f"{backend.description} ended before its `sleep`")
                more += item
    return bytes(more)


async def ceiling_run(platform_: Platform, size: int) -> OutputRun:
    """A session of the peer read the cheapest way: its events stream through the same HTTP
    client, each line's output counted from the length of its base64, nothing decoded, checked
    or queued. Its rate is what the peer can send here, sharing this machine's cores with the
    reader: no client can do better on this machine."""
    http, peer = platform_.http, platform_.peer
    headers = await platform_.client.auth_headers()
    sessions = f"{peer.url}/v1/assistants/{ASSISTANT}/terminal/sessions/"
    cpu, peer_cpu = time.process_time(), cpu_seconds(peer.pid)
    started = first = time.perf_counter()
    created = await http.post(
        sessions, json={"cols": SIZE.columns, "rows": SIZE.rows}, headers=headers
    )
    session = created.raise_for_status().json()["session_id"]
    received = reads = 0
    pending = b""
    try:
        async with http.stream("GET", f"{sessions}{session}/events/", headers=headers) as stream:
            async for chunk in stream.aiter_raw():
                if not reads:
                    first = time.perf_counter()
                reads += 1
                lines = (pending + chunk).split(b"\n")
                pending = lines.pop()
                for line in lines:
                    if line.startswith(b"data:"):  # the peer's own `{"seq": n, "data": "..."}`
                        start, end = line.index(b'"data": "') + 9, len(line) - 2
                        padding = (line[end - 1] == ord("=")) + (line[end - 2] == ord("="))
                        received += (end - start) // 4 * 3 - padding
                if received >= size:
                    break
        last = time.perf_counter()
        cpu, peer_cpu = time.process_time() - cpu, cpu_seconds(peer.pid) - peer_cpu
    finally:
        await http.delete(f"{sessions}{session}/", headers=headers)
    assert received == size, f"the peer ceiling read {received} bytes, not {size}"
    return OutputRun(last - started, first - started, reads, cpu, peer_cpu)


def output_side(runs: list[OutputRun], size: int) -> dict[str, Any]:
    rates = [size / run.seconds / 1e6 for run in runs]
    mib = size / MIB
    return {
        "mb_s_best": round(max(rates), 1),
        "mb_s_median": round(statistics.median(rates), 1),
        "mb_s_after_first_byte_best": round(
            max(size / (run.seconds - run.first_byte_s) / 1e6 for run in runs), 1
        ),
        "seconds": [round(run.seconds, 3) for run in runs],
        "first_byte_ms": [round(run.first_byte_s * 1000, 1) for run in runs],
        "reads": [run.reads for run in runs],
        "cpu_seconds": [round(run.cpu_seconds, 3) for run in runs],
        "cpu_ms_per_mib": round(1000 * statistics.median(run.cpu_seconds for run in runs) / mib, 1),
    }


def with_peer_cpu(side: dict[str, Any], runs: list[OutputRun], size: int) -> dict[str, Any]:
    """`side` with the peer's CPU seconds per round, and its median per MiB."""
    seconds = [run.peer_cpu_seconds for run in runs]
    return {
        **side,
        "peer_cpu_seconds": [round(value, 3) for value in seconds],
        "peer_cpu_ms_per_mib": round(1000 * statistics.median(seconds) / (size / MIB), 1),
    }


async def remote_output(
    settings: dict[str, int],
    scratch: Path,
    platform_: Platform,
) -> dict[str, Any]:
    content = log_file(settings["output_mib"])
    path = scratch / "output.log"
    path.write_bytes(content)
    expected = content.replace(b"\n", b"\r\n")  # the tty's onlcr
    command = ["sh", "-c", 'cat "$1"; exec sleep 3600', "sh", str(path)]
    peer = platform_.peer
    peer.run(command)
    runs: dict[str, list[OutputRun]] = {"local_pty": [], "remote": [], "peer_ceiling": []}
    for round_ in range(settings["rounds"]):
        sides = list(runs) if round_ % 2 == 0 else list(reversed(runs))
        for side in sides:
            if side == "peer_ceiling":
                runs[side].append(await ceiling_run(platform_, len(expected)))
                continue
            backend: TerminalBackend = (
                LocalPty(command, environ=environment())
                if side == "local_pty"
                else RemoteSession(platform_.http, platform_.client, ASSISTANT)
            )
            runs[side].append(await output_run(backend, expected, peer.pid))
    size = len(expected)
    local, remote, ceiling = (output_side(runs[side], size) for side in runs)
    remote = with_peer_cpu(remote, runs["remote"], size)
    ceiling = with_peer_cpu(ceiling, runs["peer_ceiling"], size)
    paired = statistics.median(
        a.seconds / b.seconds for a, b in zip(runs["local_pty"], runs["remote"], strict=True)
    )
    return {
        "command": "cat <generated coloured log>; sleep",
        "file_bytes": len(content),
        "terminal_bytes": size,
        "rounds": settings["rounds"],
        "local_pty": local,
        "remote": remote,
        "peer_ceiling": ceiling,
        "ratio_best": round(remote["mb_s_best"] / local["mb_s_best"], 3),
        "ratio_median": round(remote["mb_s_median"] / local["mb_s_median"], 3),
        "ratio_paired_median": round(paired, 3),
        "ceiling_ratio_median": round(ceiling["mb_s_median"] / local["mb_s_median"], 3),
        "remote_of_ceiling_median": round(remote["mb_s_median"] / ceiling["mb_s_median"], 3),
    }


# -- report ------------------------------------------------------------------------------------


async def main(quick: bool) -> dict[str, Any]:
    settings = QUICK if quick else MAIN
    load_before = os.getloadavg()
    with contextlib.ExitStack() as stack:
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="roost-bench-")))
        peer = stack.enter_context(peer_process())
        tmux = stack.enter_context(private_tmux())
        place = stack.enter_context(docker_container())
        async with httpx.AsyncClient() as http:
            token = PlatformToken(API_KEY, Path("/nowhere/platform-token"))
            remote = Platform(peer, http, PlatformClient(http, peer.url, token))
            echo = await keypress_to_echo(settings, tmux, place, remote)
            output = await remote_output(settings, scratch, remote)
        versions = {
            "tmux": tmux.version(),
            "docker_engine": place.version if isinstance(place, DockerPlace) else None,
        }
    return {
        "keypress_to_echo_ms": echo,
        "remote_output": output,
        "targets": {
            "remote.keypress_p95_ms": runner.target(echo["remote"]["p95"], "<=", 5),
            "remote_output.ratio_median": runner.target(output["ratio_median"], ">=", 0.8),
        },
        "machine": runner.machine(load_before[0], **versions),
        "setup": {"quick": quick, **settings},
    }


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        serve()
    else:
        runner.run(main, __doc__)
