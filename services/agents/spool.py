"""Reading the agents' spool (what `roost hook` writes, hook.py): into the state database, or
as events for a reader without one.

`drain` is the one consumer that deletes: it ingests the oldest files into `agent_events` in one
transaction and deletes them only after the commit, so an event is never lost and, under the
spool's lock (an flock of the directory), never recorded twice by two drainers. A file that is
not a spool record (truncated, a newer roost's version, hostile) is moved aside as
`<name>.bad`, logged, and kept for a human.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from services.agents.hook import (
    LAST_ERROR_NAME,
    MAX_SPOOL_FILE,
    SPOOL_DIR_NAME,
    SPOOL_VERSION,
    spool_dir,
    spool_name,
)
from services.agents.model import AgentEvent
from services.core.files import FileError, read_json, read_text
from services.core.safe_text import printable
from services.core.state import StateDatabase

__all__ = [
    "SPOOL_DIR_NAME",
    "SpoolStatus",
    "drain",
    "read_spool",
    "spool_dir",
    "spool_status",
]

log = logging.getLogger(__name__)

BAD_SUFFIX = ".bad"
MAX_FIELD = 4096
"""The longest agent name, socket path or pane id a record may hold."""
STALE_TEMP_SECONDS = 600.0
"""A hook's temporary file this old belongs to a hook that died before its rename."""
MAX_LAST_ERROR = 4096


class SpoolError(Exception):
    """A spool file is not a record this roost reads."""


@dataclass(frozen=True)
class SpoolStatus:
    """What waits in the spool, for `roost hooks status`."""

    directory: Path
    waiting: int
    """Spool files not yet ingested."""
    bad: int
    """Files set aside as unreadable (`*.bad`)."""
    last_error: str
    """The last problem a hook had (`<time> <agent>: <what>`, printable), or empty."""


def read_spool(directory: Path, limit: int = 1000) -> list[AgentEvent]:
    """The oldest `limit` events waiting in `directory`, oldest first, leaving the files where
    they are; an unreadable file is skipped (drain sets it aside)."""
    events = []
    for path in _oldest(directory, limit):
        with contextlib.suppress(FileNotFoundError, SpoolError):
            events.append(read_record(path))
    return events


def drain(directory: Path, database: StateDatabase, limit: int = 1000) -> int:
    """Move the oldest `limit` events of `directory` into `database`'s `agent_events`; returns
    how many. Raises StateError when the database cannot be written (the files then stay)."""
    try:
        lock = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        return 0
    except OSError as error:
        log.warning("agent spool %s cannot be read: %s", directory, error.strerror)
        return 0
    with _locked(lock):
        events: list[AgentEvent] = []
        ingested: list[Path] = []
        for path in _oldest(directory, limit):
            try:
                events.append(read_record(path))
            except FileNotFoundError:
                continue
            except SpoolError as error:
                _set_aside(path, str(error))
                continue
            ingested.append(path)
        database.add_agent_events([event.to_row() for event in events])
        for path in ingested:
            path.unlink(missing_ok=True)
        _remove_stale_temps(directory)
    return len(events)


def read_record(path: Path) -> AgentEvent:
    """The event in one spool file. Raises SpoolError when it is not a record, and
    FileNotFoundError when it has gone (another drainer took it)."""
    try:
        record = read_json(path, MAX_SPOOL_FILE)
    except FileError as error:
        raise SpoolError(error.problem) from None
    if not isinstance(record, dict):
        raise SpoolError("not a JSON object")
    version = record.get("v")
    if version != SPOOL_VERSION:
        raise SpoolError(f"spool format {printable(repr(version))[:40]}, not {SPOOL_VERSION}")
    agent, server, pane = (record.get(key) for key in ("agent", "server", "pane"))
    if not all(isinstance(text, str) and len(text) <= MAX_FIELD for text in (agent, server, pane)):
        raise SpoolError("agent, server and pane must be short texts")
    payload = record.get("payload")
    if not isinstance(payload, dict):
        raise SpoolError("payload is not a JSON object")
    try:  # what the database could not store (sqlite refuses lone surrogates)
        json.dumps([agent, server, pane, payload], ensure_ascii=False).encode()
    except UnicodeEncodeError:
        raise SpoolError("a text holds a lone surrogate") from None
    return AgentEvent(_time(record.get("at")), str(agent), str(server), str(pane), payload)


def spool_status(directory: Path) -> SpoolStatus:
    """How many files wait and were set aside in `directory`, and the hooks' last error."""
    waiting = bad = 0
    with contextlib.suppress(OSError):
        for name in _names(directory):
            waiting += spool_name(name) is not None
            bad += name.endswith(BAD_SUFFIX)
    try:
        last_error = read_text(directory / LAST_ERROR_NAME, MAX_LAST_ERROR).strip()
    except (OSError, FileError):
        last_error = ""
    return SpoolStatus(directory, waiting, bad, printable(last_error))


def _time(value: Any) -> datetime:
    if not isinstance(value, str):
        raise SpoolError("no time")
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise SpoolError(f"not a time: {printable(value)[:40]}") from None
    if at.tzinfo is None:
        raise SpoolError("a time without its zone")
    return at


def _oldest(directory: Path, limit: int) -> list[Path]:
    try:
        names = _names(directory)
    except FileNotFoundError:
        return []
    except OSError as error:
        log.warning("agent spool %s cannot be listed: %s", directory, error.strerror)
        return []
    spooled = sorted((key, name) for name in names if (key := spool_name(name)) is not None)
    return [directory / name for _, name in spooled[:limit]]


def _names(directory: Path) -> list[str]:
    with os.scandir(directory) as entries:
        return [entry.name for entry in entries]


def _set_aside(path: Path, problem: str) -> None:
    aside = path.with_name(path.name + BAD_SUFFIX)
    try:
        path.replace(aside)
    except FileNotFoundError:
        return
    except OSError as error:
        log.warning(
            "agent spool: %s is unreadable (%s) and cannot be moved aside: %s",
            path,
            problem,
            error.strerror,
        )
        return
    log.warning("agent spool: %s is unreadable (%s): kept as %s", path, problem, aside.name)


def _remove_stale_temps(directory: Path) -> None:
    """Temporary files of hooks that died between writing and renaming."""
    old = time.time() - STALE_TEMP_SECONDS
    with contextlib.suppress(OSError):
        for entry in os.scandir(directory):
            if entry.name.startswith(".") and entry.name.endswith(".tmp"):
                with contextlib.suppress(OSError):
                    if entry.stat().st_mtime < old:
                        Path(entry.path).unlink()


@contextlib.contextmanager
def _locked(fd: int) -> Iterator[None]:
    """One drainer at a time (the console, `roost ps`): none records what another already did.
    Closing `fd`, the spool directory, releases it."""
    try:
        with contextlib.suppress(OSError):  # a file system without locks: drain all the same
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
