"""A second lockfile writer for the concurrency test in test_lockfile.py, run as its own process.

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

from services.vellum.environment import VellumEnvironment
from services.vellum.lockfile import LockfileBusy, save_entry

MAX_BUSY_PER_ENTRY = 50


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
