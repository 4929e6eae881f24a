"""Reading the registry: the Vellum lockfile, plus whether each local assistant's daemon lives.

A local assistant sleeps when its daemon's PID file is missing or names a dead process
(docs/protocol.md §3): decided without any HTTP request.
"""

from __future__ import annotations

from pathlib import Path

from services.core.files import MAX_PID_BYTES, FileError, read_text
from services.core.processes import process_alive
from services.vellum.environment import VellumEnvironment
from services.vellum.lockfile import LockfileEntry, LockfileRead, read_lockfile

PID_FILE = Path(".vellum/workspace/vellum.pid")


def daemon_alive(entry: LockfileEntry) -> bool | None:
    """Whether the local daemon runs; None when the entry does not say where it lives."""
    instance_dir = entry.resources.get("instanceDir")
    if not isinstance(instance_dir, str) or not instance_dir:
        return None
    try:
        pid = int(read_text(Path(instance_dir) / PID_FILE, MAX_PID_BYTES).strip())
    except (OSError, ValueError, FileError):
        return False
    return process_alive(pid)


def read_registry(environment: VellumEnvironment) -> tuple[LockfileRead, dict[str, bool]]:
    """The lockfile, and the liveness of every local entry's daemon that can be known."""
    read = read_lockfile(environment)
    alive: dict[str, bool] = {}
    for entry in read.entries:
        if entry.cloud == "local" and (state := daemon_alive(entry)) is not None:
            alive[entry.assistant_id] = state
    return read, alive
