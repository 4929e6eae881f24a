"""The one status vocabulary: every status falls in one bucket (docs/protocol.md §3).

The table, the detail panel, the command line and the log all colour and sort by these buckets.
"""

from __future__ import annotations

from enum import StrEnum


class Bucket(StrEnum):
    GOOD = "good"
    WARN = "warn"
    BAD = "bad"
    ASLEEP = "asleep"


_GOOD = {"running", "healthy", "ok", "active", "attached", "detached"}
_BAD_PREFIXES = ("error", "unreachable", "exited", "invalid")


def bucket(status: str) -> Bucket:
    """good = running, healthy, ok (and a platform's `active`, a tmux session's attached or
    detached); bad = error*, unreachable, exited*, invalid; asleep = sleeping; warn = everything
    else (checking, timeout, degraded, unknown, not found, no tmux server)."""
    status = status.strip().lower()
    if status in _GOOD:
        return Bucket.GOOD
    if status.startswith(_BAD_PREFIXES):
        return Bucket.BAD
    if status == "sleeping":
        return Bucket.ASLEEP
    return Bucket.WARN
