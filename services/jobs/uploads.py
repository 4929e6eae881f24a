"""A bundle file as the body of an HTTP request: streamed from disk, checked as it goes.

`BundleBody` is what a restore sends (the body of `import-preflight` and `import`, or the PUT
of a signed upload URL: docs/protocol.md §4.6). It is an async iterable that httpx sends with
the Content-Length given, so the file is never in memory whole: one block is read (and hashed,
sha256) on a worker thread while the one before it is sent, which keeps two blocks in hand.

The file must still be what the restore verified: the last block is held back until every byte
has been read and the hash and size match; a file that changed since (grown, shrunk, rewritten)
makes the body fail before its end, so the receiver gets an incomplete request, which it acts
on never, and the restore fails saying so.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

from services.core.errors import RoostError

BLOCK_BYTES = 1 << 20
"""Read and sent at a time: large enough that the hand-off to the thread costs nothing next to
hashing it, small enough that two of them are all an upload holds."""


class BundleChanged(RoostError):
    """The file no longer holds the bytes that were verified: nothing was sent whole."""


class BundleBody:
    """The bytes of `path`, which must be `size` bytes whose sha256 is `sha256` (lower-case
    hex). Iterate it once per request; `sent` counts the bytes handed to the connection."""

    def __init__(self, path: Path, size: int, sha256: str, block: int = BLOCK_BYTES) -> None:
        self.path = path
        self.size = size
        self.sha256 = sha256
        self.block = block
        self.sent = 0

    @property
    def headers(self) -> dict[str, str]:
        """Content-Length makes httpx send the body as it is, not chunked."""
        return {"Content-Length": str(self.size), "Content-Type": "application/octet-stream"}

    async def __aiter__(self) -> AsyncIterator[bytes]:
        self.sent = 0
        digest = hashlib.sha256()
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as error:
            raise BundleChanged(f"{self.path} cannot be read ({error.strerror})") from None
        file = os.fdopen(fd, "rb", buffering=0)

        def read() -> bytes:
            data = file.read(self.block)
            digest.update(data)
            return data

        pending: asyncio.Future[bytes] | None = asyncio.ensure_future(asyncio.to_thread(read))
        read_so_far = 0
        try:
            while pending is not None:
                data = await pending
                pending = None
                read_so_far += len(data)
                if read_so_far > self.size or (not data and read_so_far < self.size):
                    raise self._changed(f"it is no longer {self.size} bytes")
                if read_so_far == self.size:
                    if await asyncio.to_thread(file.read, 1):
                        raise self._changed(f"it is longer than {self.size} bytes")
                    if digest.hexdigest() != self.sha256:
                        raise self._changed("its sha256 differs")
                else:
                    pending = asyncio.ensure_future(asyncio.to_thread(read))
                self.sent += len(data)
                yield data
        finally:
            if pending is not None:  # given up midway: the read in flight ends first
                await asyncio.wait([pending])
            file.close()

    def _changed(self, why: str) -> BundleChanged:
        return BundleChanged(
            f"{self.path} changed after it was verified ({why}): nothing was sent whole;"
            " verify it again"
        )
