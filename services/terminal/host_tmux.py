"""A host's tmux, listed over its shared ssh connection: one round trip per refresh (tmux's
version and one `list-panes -a`), read into the same listing as this machine's."""

from __future__ import annotations

import shlex
import time
from dataclasses import dataclass
from datetime import datetime

from services.core.config import Host
from services.core.safe_text import printable
from services.hosts.ssh import HostProblem, Ssh
from services.terminal.tmux import (
    COMMAND_NOT_FOUND,
    LISTING_FORMAT,
    NO_SERVER,
    TmuxListing,
    TmuxServer,
    TmuxSocket,
    TmuxState,
    parse_listing,
)

LIST_TIMEOUT_SECONDS = 10.0
MAX_LISTING_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class HostListing:
    """The latest look at a host's tmux, or why there is none."""

    host: Host
    listing: TmuxListing | None = None
    """None while it has not answered (or no longer does)."""
    tmux_version: str | None = None
    latency_ms: float | None = None
    """The listing's round trip."""
    seen: datetime | None = None
    """When it last answered."""
    problem: HostProblem | None = None
    error: str = ""
    """Why it did not answer this time (one line, naming the host)."""
    failures: int = 0
    """Tries in a row it did not answer."""
    retry_in: float | None = None
    """Seconds until it is tried again, while it does not answer."""


def host_socket(host: Host) -> TmuxSocket | None:
    """The socket of `host`'s tmux server as configured (None: its default server)."""
    return TmuxSocket(host.tmux_socket) if host.tmux_socket else None


def tmux_words(host: Host, *args: str) -> list[str]:
    """The words of `tmux ARGS` on `host`, aimed at its configured socket (`-L` or `-S`), with
    `-u` as `TmuxServer` over ssh has it (ssh passes no locale)."""
    socket = host_socket(host)
    return ["tmux", *(socket.args if socket else ()), "-u", *args]


def host_tmux(ssh: Ssh, host: Host, timeout: float = 5.0) -> TmuxServer:
    """`host`'s tmux server (its configured socket), reached over the shared connection."""
    return TmuxServer(host_socket(host), timeout=timeout, ssh=ssh.argv(host))


async def list_host(
    ssh: Ssh,
    host: Host,
    timeout: float = LIST_TIMEOUT_SECONDS,  # noqa: ASYNC109 (ssh.run enforces it)
) -> tuple[TmuxListing, str | None, float]:
    """`host`'s tmux sessions and panes, its tmux version, and the round trip in milliseconds.
    Raises HostError when ssh cannot reach it."""
    listing = shlex.join(tmux_words(host, "list-panes", "-a", "-F", LISTING_FORMAT))
    script = f"tmux -V || exit {COMMAND_NOT_FOUND}; exec {listing}"
    started = time.monotonic()
    result = await ssh.run(host, "sh", "-c", script, timeout=timeout, limit=MAX_LISTING_BYTES)
    latency_ms = (time.monotonic() - started) * 1000
    version, _, text = result.stdout.decode(errors="replace").partition("\n")
    version = printable(version.strip())
    if result.exit_code == COMMAND_NOT_FOUND:
        detail = f"tmux is not installed on {host.name}"
        return TmuxListing(TmuxState.NOT_INSTALLED, detail=detail), None, latency_ms
    if result.exit_code != 0:
        message = printable(result.stderr.strip().replace("\n", " "))
        if NO_SERVER.search(message):
            state, detail = TmuxState.NO_SERVER, f"no tmux server running on {host.name}"
        else:
            state, detail = TmuxState.ERROR, message or f"exit status {result.exit_code}"
        return TmuxListing(state, detail=detail), version or None, latency_ms
    return parse_listing(text), version or None, latency_ms
