"""The Vellum CLI's own lockfile writes, played by the tests: `save_entry` and `remove_entry`
(roost itself only sets the active assistant and syncs managed entries), and, run as its own
process, a second writer for the concurrency test in test_lockfile.py.

Usage: python tests/lockfile_writer.py PREFIX COUNT

It resolves the Vellum environment from its own environment variables, prints `ready`, waits for
a line on stdin (so every writer starts at once), then saves COUNT entries `PREFIX-0`,
`PREFIX-1`, ... and prints how often the lock was busy. Any other failure ends it with a
traceback and exit code 1.

Writers in tight loops starve each other: the lock gives up after the reference's ~250 ms, and
the one that just released it usually takes it again first. `LockfileBusy` says so without
losing anything, so this writer tries that entry again, a bounded number of times.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

from services.vellum.environment import VellumEnvironment
from services.vellum.lockfile import LockfileBusy, drop_entries, locked_update

MAX_BUSY_PER_ENTRY = 50


def save_entry(environment: VellumEnvironment, entry: Mapping[str, Any]) -> None:
    """Put `entry` first, replacing any other entry with the same `assistantId`."""
    assistant_id = entry.get("assistantId")
    if not isinstance(assistant_id, str) or not assistant_id:
        raise ValueError("a lockfile entry needs a non-empty string assistantId")
    with locked_update(environment) as data:
        others = [
            e
            for e in data.get("assistants", [])
            if not (isinstance(e, dict) and e.get("assistantId") == assistant_id)
        ]
        data["assistants"] = [dict(entry), *others]


def remove_entry(environment: VellumEnvironment, assistant_id: str) -> None:
    """Remove the entry; if it was active, the first remaining one becomes active (or none is).

    Removing an entry that is not there changes nothing.
    """
    with locked_update(environment) as data:
        drop_entries(data, {assistant_id})


def main(prefix: str, count: int) -> None:
    environment = VellumEnvironment.resolve()
    print("ready", flush=True)
    sys.stdin.readline()
    busy = 0
    for index in range(count):
        entry = {"assistantId": f"{prefix}-{index}", "runtimeUrl": "http://127.0.0.1:7830"}
        for attempt in range(MAX_BUSY_PER_ENTRY):
            try:
                save_entry(environment, entry)
                break
            except LockfileBusy:
                busy += 1
                if attempt == MAX_BUSY_PER_ENTRY - 1:
                    raise
    print(f"busy {busy}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
