"""The wall clock roost stamps jobs, events and backups with: timezone-aware UTC.

Whatever reads it takes it as an injectable callable (`Context.clock`, `Exporter(now=...)`,
`JobStore(now=...)`), so tests pass a fixed one.
"""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    return datetime.now(UTC)
