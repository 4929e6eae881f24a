"""Whether a process lives, by PID: for lock owners and local assistants' daemons."""

from __future__ import annotations

import os


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
