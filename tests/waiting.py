"""Waiting for a condition in async tests that drive no app (a pilot has `tests/pilot.py`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


async def wait_for(condition: Callable[[], bool], what: str, within: float = 20.0) -> None:
    """Poll `condition` until it holds; fail after `within` s naming `what`."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)
