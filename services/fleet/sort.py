"""Sorting the fleet by a column: what needs attention first, this machine always on top."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from services.activity.model import ActivityState
from services.fleet.model import HOST_KEY, Assistant
from services.health.status import Bucket, bucket

_TRIAGE = {Bucket.BAD: 0, Bucket.WARN: 1, Bucket.ASLEEP: 2, Bucket.GOOD: 3}
"""Sorting by status or health puts what needs attention first."""

SORT_KEYS: Mapping[str, Callable[[Assistant], tuple[object, ...]]] = {
    "name": lambda a: (a.name.lower(),),
    "kind": lambda a: (a.kind, a.name.lower()),
    "where": lambda a: (a.where, a.name.lower()),
    "status": lambda a: (_TRIAGE[bucket(a.status)], a.status, a.name.lower()),
    "health": lambda a: (not a.health, _TRIAGE[bucket(a.health)], a.health, a.name.lower()),
    "latency": lambda a: (a.latency_ms is None, a.latency_ms or 0.0, a.name.lower()),
    "version": lambda a: (a.version or "", a.name.lower()),
    "activity": lambda a: (
        a.activity.state.triage if a.activity else len(ActivityState),
        a.activity.since.timestamp() if a.activity else 0.0,  # the longest waiting first
        a.name.lower(),
    ),
    "sessions": lambda a: (-len(a.sessions), a.name.lower()),
    "last_seen": lambda a: (a.last_seen is None, -(a.last_seen.timestamp() if a.last_seen else 0)),
}


def sort_fleet(
    assistants: Sequence[Assistant], column: str | None, reverse: bool = False
) -> list[Assistant]:
    """Sorted by `column` (None keeps source order); this machine always stays on top."""
    if column is None:
        return list(assistants)
    host = [a for a in assistants if a.key == HOST_KEY]
    rest = sorted(
        (a for a in assistants if a.key != HOST_KEY), key=SORT_KEYS[column], reverse=reverse
    )
    return host + rest
