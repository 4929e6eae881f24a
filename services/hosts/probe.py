"""What roost learns of a host by asking it: whether it answers, how fast one round trip on its
shared connection is, and the versions that matter (ssh here; tmux and, where configured, docker
there). And when to ask a host that does not answer again: the health probes' backoff.

Every host is asked at once, each within its own timeout, so one that hangs costs its own row a
warning and nobody else any time.
"""

from __future__ import annotations

import asyncio
import random
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from services.core.backoff import backoff, jittered
from services.core.config import Host
from services.core.safe_text import printable
from services.hosts.ssh import HostError, HostProblem, Ssh

PROBE_TIMEOUT_SECONDS = 10.0
_VERSIONS = (
    "tmux -V 2>/dev/null || echo; "
    'if [ "$1" = docker ]; then '
    "docker version --format '{{.Server.Version}}' 2>&1 | head -n 1; fi"
)
"""One round trip for the versions: tmux's line (empty without tmux), then docker's server
version (or why there is none) when asked for."""


@dataclass(frozen=True)
class HostProbe:
    """One look at a host; `problem` and `error` say why it did not answer (None and "" when
    it did)."""

    host: Host
    latency_ms: float | None = None
    """One round trip on the shared connection, the handshake excluded."""
    tmux_version: str | None = None
    docker_version: str | None = None
    """The engine's version, or why it gave none (only for a host with `docker = true`)."""
    multiplexed: bool = False
    """Its connection is shared: the commands after the first need no handshake."""
    problem: HostProblem | None = None
    error: str = ""

    @property
    def reachable(self) -> bool:
        return self.problem is None


async def probe_host(
    ssh: Ssh,
    host: Host,
    timeout: float = PROBE_TIMEOUT_SECONDS,  # noqa: ASYNC109 (each ssh.run enforces it)
) -> HostProbe:
    """Ask `host` its versions (which opens the shared connection), time one more round trip
    on it, and check that the connection is shared."""
    try:
        words = ("sh", "-c", _VERSIONS, "sh", "docker" if host.docker else "")
        versions = await ssh.run(host, *words, timeout=timeout, limit=4096)
        started = time.monotonic()
        await ssh.run(host, "true", timeout=timeout, limit=0)
        latency_ms = (time.monotonic() - started) * 1000
        multiplexed = await ssh.shared(host)
    except HostError as error:
        return HostProbe(host, problem=error.problem, error=str(error))
    text = versions.stdout.decode(errors="replace")
    tmux, docker, *_ = [printable(line.strip()) for line in text.split("\n")] + ["", ""]
    return HostProbe(
        host,
        latency_ms=latency_ms,
        multiplexed=multiplexed,
        tmux_version=tmux or None,
        docker_version=(docker or None) if host.docker else None,
    )


async def probe_hosts(
    ssh: Ssh,
    hosts: Sequence[Host],
    timeout: float = PROBE_TIMEOUT_SECONDS,  # noqa: ASYNC109 (each host's own limit)
) -> list[HostProbe]:
    """Every host at once, in `hosts`' order."""
    return list(await asyncio.gather(*(probe_host(ssh, host, timeout) for host in hosts)))


def ssh_version(executable: str = "ssh") -> str | None:
    """What `ssh -V` says (on stderr), or None without an ssh client."""
    try:
        result = subprocess.run(
            [executable, "-V"], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return printable((result.stderr or result.stdout).strip()) or None


@dataclass
class _Tries:
    failures: int = 0
    due: float = 0.0


@dataclass
class HostBackoff:
    """When to try each host again: at once while it answers, then (like health probes,
    services/core/backoff.py) after `interval` doubled per failure in a row, up to five
    minutes; its first answer brings it back."""

    interval: float
    clock: Callable[[], float] = time.monotonic
    rng: random.Random = field(default_factory=random.Random)
    _tries: dict[str, _Tries] = field(default_factory=dict)

    def due(self, host: Host) -> bool:
        return self.clock() >= self._tries.get(host.name, _Tries()).due

    def retry_in(self, host: Host) -> float | None:
        """Seconds until `host` is tried again; None while it answers."""
        tries = self._tries.get(host.name)
        if tries is None or not tries.failures:
            return None
        return max(0.0, tries.due - self.clock())

    def failures(self, host: Host) -> int:
        tries = self._tries.get(host.name)
        return tries.failures if tries else 0

    def record(self, host: Host, answered: bool) -> None:
        tries = self._tries.setdefault(host.name, _Tries())
        tries.failures = 0 if answered else tries.failures + 1
        if answered:
            tries.due = 0.0
        else:
            delay = backoff(self.interval, tries.failures)
            tries.due = self.clock() + jittered(delay, self.rng)
