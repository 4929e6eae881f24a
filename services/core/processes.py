"""Whether a process lives: by PID for lock owners and local assistants' daemons, and by an
identity that survives PID reuse for the owners of roost's jobs."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from functools import cache
from pathlib import Path


def process_alive(pid: int) -> bool:
    """True while a process with this PID exists (whoever owns it)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    return True


@dataclass(frozen=True)
class ProcessIdentity:
    """One process for as long as it lives: its PID, when it started, and on which machine.

    A PID alone is reused once its process ends; the start time (the boot's id and the
    kernel's start tick, from /proc) tells a new process with the same PID from the one that
    was recorded. Where /proc is missing, `started` is None and the PID alone decides.
    """

    pid: int
    started: str | None
    host: str

    @classmethod
    def current(cls) -> ProcessIdentity:
        return cls(os.getpid(), process_start(os.getpid()), socket.gethostname())

    def alive(self) -> bool:
        """False only when this process has certainly ended. A process of another machine
        (a state dir shared over the network) cannot be looked at, so it counts as alive."""
        if self.host != socket.gethostname():
            return True
        if not process_alive(self.pid):
            return False
        return self.started is None or process_start(self.pid) == self.started


def process_start(pid: int) -> str | None:
    """`<boot id>:<start tick>` of a process, None when it is gone or /proc cannot say."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    after_name = stat.rpartition(")")[2].split()
    if len(after_name) < 20:
        return None
    boot = _boot_id()
    return f"{boot}:{after_name[19]}" if boot else after_name[19]


@cache
def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii").strip()
    except OSError:
        return ""
