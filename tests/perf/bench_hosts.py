"""Benchmark: hosts over ssh (run: python -m tests.perf.bench_hosts [--quick]).

Prints one JSON object. One private sshd on 127.0.0.1 (tests/ssh_fixtures.py: its own host key,
client key and port) stands for HOSTS hosts: one ssh config gives it HOSTS `Host` aliases, each
with a tmux server of its own (a socket per host) holding SESSIONS sessions.

A refresh of every host (`refresh_ms`), all hosts at once as the fleet asks them, timed per
round (median and best over the rounds), the three ways in the same run:

- `roost`: what roost's refresh runs per host (`list_host`: tmux's version and one `list-panes
  -a` in one command), over its shared connections (already up);
- `multiplexed`: one bare round trip per host over the same shared connections (`ssh HOST tmux
  list-sessions`, ControlMaster=auto and the master up): the floor for a refresh over ssh;
- `fresh`: the same command with ControlMaster=no and no control socket: a handshake per host
  per refresh, what roost would cost without multiplexing.

`one_command_ms`: one `ssh HOST true` over the shared connection, alone: the floor of any
command on a host. The "hosts" are this machine: sshd, the remote shells and tmux share its CPUs
with the client, and every command starts the user's login shell there (sshd runs commands
through it; bash reads ~/.bashrc when run by sshd), whose start-up is part of every figure.

`ratios`: `fresh` over `multiplexed` (what multiplexing saves) and `roost` over `multiplexed`
(roost's overhead on the floor), medians of the rounds. `handshakes` counts the connections sshd
accepted during each way's rounds, from its log: none for the multiplexed ways.

Keypress to echo (`keypress_to_echo_ms`), measured as tests/perf/bench_attach.py does (one key
at a time, at the backend: from `write()` to the `read()` that completed its echo; the pane's
drawing comes on top): `cat` in a tmux session attached (a) here (`TmuxAttach`, a private tmux
server) and (b) on the host over ssh (`SshTmuxAttach`, through the shared connection), typed
into in interleaved blocks; `vs_local_tmux` gives (b) over (a).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from services.core.config import Host
from services.core.mode import Mode
from services.hosts.ssh import Ssh
from services.terminal.attach import TmuxAttach
from services.terminal.backend import TerminalBackend
from services.terminal.host_tmux import list_host, tmux_words
from services.terminal.ssh_attach import SshTmuxAttach
from services.terminal.tmux import TmuxServer, TmuxSocket
from tests.perf import runner
from tests.perf.bench_attach import (
    SIZE,
    WARMUP_KEYS,
    Tap,
    Typist,
    environment,
    figures,
    private_tmux,
)
from tests.ssh_fixtures import ALIAS, SshHost, sshd_path

MAIN = {"hosts": 20, "sessions": 10, "rounds": 10, "keys": 200, "blocks": 4}
QUICK = {"hosts": 20, "sessions": 10, "rounds": 2, "keys": 20, "blocks": 2}
TIMEOUT = 120.0
"""Seconds a refresh of every host may take before the benchmark gives up (a loaded machine
starts 20 ssh clients and their remote shells at once)."""


@contextlib.contextmanager
def hosts(count: int, sessions: int) -> Iterator[tuple[SshHost, list[Host]]]:
    """The private sshd, and `count` hosts: aliases of it, each with a tmux server of its own
    holding `sessions` sessions running `sleep`."""
    sshd = sshd_path()
    if sshd is None:
        raise RuntimeError("sshd is not installed (apt-get install openssh-server)")
    directory = Path(tempfile.mkdtemp(prefix="roost-bench-ssh-"))
    server = SshHost(sshd, directory)
    aliases = [f"{ALIAS}-{index}" for index in range(count)]
    config = server.config_file.read_text()
    server.config_file.write_text(config.replace(f"Host {ALIAS}\n", f"Host {' '.join(aliases)}\n"))
    made = [
        Host(name=f"host{index}", ssh=alias, tmux_socket=str(directory / f"tmux-{index}"))
        for index, alias in enumerate(aliases)
    ]
    try:
        server.start()
        server.ssh.prepare()
        for host in made:
            tmux = TmuxServer(TmuxSocket(str(host.tmux_socket)))
            for number in range(sessions):
                new_session(tmux, f"agent-{number}", "sleep 3600")
        # What keys are typed into, on the first host, as bench_attach's local tmux has it.
        size = ("-x", str(SIZE.columns), "-y", str(SIZE.rows))
        new_session(TmuxServer(TmuxSocket(str(made[0].tmux_socket))), "bench", "cat", *size)
        yield server, made
    finally:
        for host in made:
            tmux = TmuxServer(TmuxSocket(str(host.tmux_socket)))
            subprocess.run(tmux.argv("kill-server"), capture_output=True, check=False)
        server.close()
        subprocess.run(["rm", "-rf", str(directory)], check=False)


def new_session(tmux: TmuxServer, name: str, command: str, *size: str) -> None:
    size = size or ("-x", "80", "-y", "24")
    argv = tmux.argv("new-session", "-d", "-s", name, *size, command)
    subprocess.run(argv, check=True, env=environment())


# -- a refresh of every host ----------------------------------------------------------------------


async def roost_refresh(ssh: Ssh, made: list[Host]) -> None:
    """What roost's refresh runs for every host, at once (`FleetSources.host`: `list_host`)."""
    listings = await asyncio.gather(*(list_host(ssh, host) for host in made))
    assert all(len(listing.sessions) for listing, _, _ in listings), listings


async def bare_refresh(ssh: Ssh, made: list[Host], *, fresh: bool = False) -> None:
    """`ssh HOST tmux list-sessions` for every host at once; `fresh`: without the shared
    connection (its control socket left out, ControlMaster=no), a handshake each."""

    async def one(host: Host) -> None:
        argv = ssh.argv(host, *tmux_words(host, "list-sessions"))
        if fresh:
            argv = without_multiplexing(argv)
        process = await asyncio.create_subprocess_exec(
            *argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        out, err = await process.communicate()
        if process.returncode != 0 or out.count(b"\n") == 0:
            raise RuntimeError(f"{host.name}: {err.decode(errors='replace')}")

    await asyncio.wait_for(asyncio.gather(*(one(host) for host in made)), TIMEOUT)


def without_multiplexing(argv: list[str]) -> list[str]:
    """`argv` (an `Ssh.argv`) with ssh's first-wins control options replaced: no socket, no
    master."""
    kept: list[str] = []
    words = iter(argv)
    for word in words:
        if word == "-S":
            next(words)
        elif word == "-o" and (option := next(words)).startswith("Control"):
            continue
        elif word == "-o":
            kept += [word, option]
        else:
            kept.append(word)
    at = kept.index("--")
    return [*kept[:at], "-o", "ControlMaster=no", "-o", "ControlPath=none", *kept[at:]]


async def refresh(server: SshHost, made: list[Host], rounds: int) -> dict[str, Any]:
    ssh = server.ssh
    ways = {
        "roost": lambda: roost_refresh(ssh, made),
        "multiplexed": lambda: bare_refresh(ssh, made),
        "fresh": lambda: bare_refresh(ssh, made, fresh=True),
    }
    await ways["multiplexed"]()  # the shared connections come up: roost keeps them up
    seconds: dict[str, list[float]] = {name: [] for name in ways}
    handshakes = dict.fromkeys(ways, 0)
    for round_ in range(rounds):
        order = list(ways) if round_ % 2 == 0 else list(reversed(ways))
        for name in order:
            before = server.handshakes()
            started = time.perf_counter()
            await ways[name]()
            seconds[name].append(time.perf_counter() - started)
            handshakes[name] += server.handshakes() - before
    floor = []
    for _ in range(rounds):
        started = time.perf_counter()
        await ssh.run(made[0], "true", timeout=TIMEOUT)
        floor.append(time.perf_counter() - started)
    results: dict[str, Any] = {
        name: {
            "median": round(statistics.median(values) * 1000, 2),
            "best": round(min(values) * 1000, 2),
        }
        for name, values in seconds.items()
    }
    median = {name: statistics.median(values) for name, values in seconds.items()}
    return {
        "hosts": len(made),
        "rounds": rounds,
        **results,
        "one_command_ms": round(statistics.median(floor) * 1000, 2),
        "handshakes": handshakes,
        "ratios": {
            "fresh_over_multiplexed": round(median["fresh"] / median["multiplexed"], 2),
            "roost_over_multiplexed": round(median["roost"] / median["multiplexed"], 2),
        },
    }


# -- keypress to echo -----------------------------------------------------------------------------


async def keypress_to_echo(settings: dict[str, int], ssh: Ssh, host: Host) -> dict[str, Any]:
    keys, blocks = settings["keys"], settings["blocks"]
    env = environment()
    typists: dict[str, Typist] = {}
    with private_tmux() as local:
        backends: dict[str, TerminalBackend] = {
            "local_tmux": TmuxAttach(local, "bench", Mode.DRIVE, env),
            "ssh_tmux": SshTmuxAttach(ssh, host, "bench", Mode.DRIVE, env),
        }
        try:
            for name, backend in backends.items():
                typists[name] = Typist(Tap(name, backend))
                await typists[name].tap.start()
            for typist in typists.values():
                await typist.tap.settle()
                await typist.type(WARMUP_KEYS)
            order = list(typists)
            for block in range(blocks):
                first = order[block % 2 :] + order[: block % 2]
                for name in first:
                    typists[name].latencies += await typists[name].type(keys // blocks)
            for name, typist in typists.items():
                assert not typist.tap.notices, f"{name} lost its link: {typist.tap.notices}"
        finally:
            for typist in typists.values():
                await typist.tap.close()
        tmux_version = local.version()
    results = {name: figures([s * 1000 for s in t.latencies]) for name, t in typists.items()}
    base, over = results["local_tmux"], results["ssh_tmux"]
    return {
        "keys": keys,
        "warmup_keys": WARMUP_KEYS,
        "blocks": blocks,
        "terminal": f"{SIZE.columns}x{SIZE.rows}",
        **results,
        "vs_local_tmux": {
            "median_ratio": round(over["median"] / base["median"], 1),
            "p95_ratio": round(over["p95"] / base["p95"], 1),
            "median_added_ms": round(over["median"] - base["median"], 3),
            "p95_added_ms": round(over["p95"] - base["p95"], 3),
        },
        "tmux": tmux_version,
    }


# -- report ---------------------------------------------------------------------------------------


async def main(quick: bool) -> dict[str, Any]:
    settings = QUICK if quick else MAIN
    load_before = os.getloadavg()
    with hosts(settings["hosts"], settings["sessions"]) as (server, made):
        refreshed = await refresh(server, made, settings["rounds"])
        echo = await keypress_to_echo(settings, server.ssh, made[0])
        ssh_version = (
            await asyncio.to_thread(subprocess.run, ["ssh", "-V"], capture_output=True, text=True)
        ).stderr
    return {
        "refresh_ms": {"sessions_per_host": settings["sessions"], **refreshed},
        "keypress_to_echo_ms": echo,
        "machine": runner.machine(load_before[0], ssh=ssh_version.strip()),
        "setup": {"quick": quick, **settings},
    }


if __name__ == "__main__":
    runner.run(main, __doc__)
