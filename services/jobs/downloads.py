"""Saving an HTTP body to a file that is either whole and verified, or not there at all.

docs/protocol.md §4, as roost does it: the bytes go to `<dest>.part`, hashed (sha256) while they
stream, then fsync, then size and checksum are checked against what the runtime promised, and
only then is the file renamed to `<dest>`. A checksum or size mismatch keeps the bytes as
`<dest>.corrupt` for inspection; a transfer that breaks off (cut short, stalled, disk full,
cancelled) leaves neither `<dest>` nor `<dest>.part` behind. A sender that stalls (too few bytes
in a window) or is still sending at the deadline ends the transfer
(services/core/http.py `Watchdog`).

Hashing and writing run on one worker thread per download, a few MiB at a time, while the event
loop reads the next bytes: hashlib and file writes release the GIL, so the two overlap and the
event loop (a TUI's, say) stays free. One thread keeps the writes in order, and its queue also
holds the final close and clean-up, so no write can land after the file is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import os
import time
from collections.abc import AsyncGenerator, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import BinaryIO, TypeVar

import httpx

from services.core.errors import RoostError
from services.core.http import AnswerError, TransferLimits, Watchdog, timeout_text
from services.core.safe_text import error_text

HANDOFF_BYTES = 4 << 20
"""Bytes gathered before they are handed to the worker thread: large enough that the hand-off
costs nothing next to hashing them, small enough that two of them are all a download holds."""
PROGRESS_INTERVAL = 0.2
"""Seconds between two progress reports while bytes arrive."""
_DISK_FULL = frozenset({errno.ENOSPC, errno.EFBIG, errno.EDQUOT})

T = TypeVar("T")


class DownloadError(RoostError):
    """The bytes did not arrive whole: nothing is left at the destination, nor a `.part` file."""


class DownloadMismatch(DownloadError):
    """The bytes arrived but differ from what was promised; they are kept at `corrupt_path`."""

    def __init__(self, message: str, corrupt_path: Path) -> None:
        super().__init__(message)
        self.corrupt_path = corrupt_path


@dataclass(frozen=True)
class Expected:
    """What the sender promised about the bytes; None where it said nothing."""

    size: int | None = None
    sha256: str | None = None
    """Lower-case hex."""


@dataclass(frozen=True)
class SavedFile:
    path: Path
    size: int
    sha256: str
    verified: bool
    """The sha256 was checked against a promised one (not only computed)."""


class Phase(Enum):
    RECEIVING = "receiving"
    VERIFYING = "verifying"
    """Every byte is in: flushing to disk and checking."""
    SAVED = "saved"


@dataclass(frozen=True)
class Progress:
    phase: Phase
    done: int
    """Bytes received so far."""
    total: int | None
    """The promised size, else the Content-Length, else None."""
    saved: SavedFile | None = None
    """Set on the last report, the one in phase SAVED."""


def part_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


def corrupt_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".corrupt")


def content_length(response: httpx.Response) -> int | None:
    value = response.headers.get("content-length", "")
    return int(value) if value.isdigit() else None


async def save_verified(
    response: httpx.Response,
    dest: Path,
    expected: Expected,
    *,
    limits: TransferLimits | None = None,
    clock: Callable[[], float] = time.monotonic,
    progress_interval: float = PROGRESS_INTERVAL,
) -> AsyncGenerator[Progress, None]:
    """Stream `response`'s body (opened with `stream=True`, status already checked) to `dest`.

    Reports progress as it goes (at once, then at most every `progress_interval` seconds, then
    VERIFYING and SAVED). Raises DownloadError when the bytes do not arrive whole, and
    DownloadMismatch when they arrive but fail the check. `limits` bound the transfer (stall and
    deadline; the defaults of `TransferLimits` when None). The caller must close this
    generator (`contextlib.aclosing`) so that an abandoned download is cleaned up at once.
    """
    part = part_path(dest)
    total = expected.size if expected.size is not None else content_length(response)
    file = _open_part(dest, part)
    writer = _Writer(file)
    kept = False
    done = 0
    try:
        yield Progress(Phase.RECEIVING, 0, total)
        watchdog = Watchdog(limits or TransferLimits(), "the download")
        reported = clock()
        buffer = bytearray()
        try:
            async for chunk in watchdog.guard(response.aiter_bytes()):
                buffer += chunk
                if len(buffer) < HANDOFF_BYTES:
                    continue
                done += len(buffer)
                await writer.absorb(buffer)
                buffer = bytearray()
                if clock() - reported >= progress_interval:
                    yield Progress(Phase.RECEIVING, done, total)
                    reported = clock()
        except httpx.ReadTimeout as error:
            waited = timeout_text(error, response.request)
            raise DownloadError(
                f"the download stalled: no data for {waited} after {done + len(buffer)} bytes"
            ) from None
        except AnswerError as error:
            raise DownloadError(str(error)) from None
        except httpx.RemoteProtocolError:
            raise DownloadError(_cut_short(done + len(buffer), total)) from None
        except httpx.HTTPError as error:
            reason = error_text(error)
            raise DownloadError(f"the download failed ({reason})") from None
        done += len(buffer)
        await writer.absorb(buffer)
        yield Progress(Phase.VERIFYING, done, total)
        sha256 = await writer.finish()
        if expected.size is not None and done != expected.size:
            problem = f"size {done} bytes, expected {expected.size}"
        elif expected.sha256 is not None and sha256 != expected.sha256.lower():
            problem = f"sha256 {sha256}, expected {expected.sha256.lower()}"
        else:
            problem = None
        if problem is not None:
            kept_at = corrupt_path(dest)
            part.replace(kept_at)
            kept = True
            raise DownloadMismatch(
                f"the download does not match: {problem}; the bytes are kept in {kept_at}", kept_at
            )
        part.replace(dest)
        kept = True
        await writer.run(_fsync_directory, dest.parent)
        saved = SavedFile(dest, done, sha256, verified=expected.sha256 is not None)
        yield Progress(Phase.SAVED, done, total, saved)
    except OSError as error:
        raise _write_error(error, part) from None
    finally:
        await writer.close(None if kept else part)


class _Writer:
    """One worker thread that hashes and writes, in order, then closes and cleans up."""

    def __init__(self, file: BinaryIO) -> None:
        self._file = file
        self._digest = hashlib.sha256()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="roost-download")
        self._pending: Future[None] | None = None

    async def absorb(self, data: bytearray) -> None:
        """Hand `data` over (never touched again here); waits only for the previous hand-off,
        so reading goes on while the worker hashes and writes."""
        await self._settle()
        if data:
            self._pending = self._executor.submit(self._absorb, data)

    async def finish(self) -> str:
        """Every byte on disk (fsync); the hex sha256 of them all."""
        await self._settle()
        return await self.run(self._flush)

    async def run(self, function: Callable[..., T], *args: object) -> T:
        return await asyncio.wrap_future(self._executor.submit(function, *args))

    async def close(self, remove: Path | None) -> None:
        """Close the file and remove `remove`, after every write handed over (even when the
        waiting is cancelled: the worker's queue keeps the order)."""
        cleanup = self._executor.submit(self._close, remove)
        self._executor.shutdown(wait=False)
        await asyncio.wrap_future(cleanup)

    async def _settle(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            await asyncio.wrap_future(pending)

    def _absorb(self, data: bytearray) -> None:
        self._digest.update(data)
        self._file.write(data)

    def _flush(self) -> str:
        self._file.flush()
        os.fsync(self._file.fileno())
        return self._digest.hexdigest()

    def _close(self, remove: Path | None) -> None:
        with contextlib.suppress(OSError):  # a write already failed and said why
            self._file.close()
        if remove is not None:
            remove.unlink(missing_ok=True)


def _open_part(dest: Path, part: Path) -> BinaryIO:
    """A new `part` only its owner may read (a backup holds the assistant's memory)."""
    if dest.exists():
        raise DownloadError(f"{dest} already exists; roost never overwrites a file")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    except OSError as error:
        raise _write_error(error, part) from None
    return os.fdopen(fd, "wb")


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _cut_short(received: int, total: int | None) -> str:
    of_total = f" of {total}" if total is not None else ""
    return f"the download was cut short after {received}{of_total} bytes"


def _write_error(error: OSError, path: Path) -> DownloadError:
    reason = error.strerror or str(error)
    if error.errno in _DISK_FULL:
        return DownloadError(f"no room to save the download in {path.parent} ({reason})")
    return DownloadError(f"cannot write {path} ({reason})")
