"""The retry schedule of whatever stops answering (a runtime's health, a host over ssh): the
interval doubled per failure in a row up to a ceiling, each delay spread by a little jitter so
that probes and outages do not synchronise."""

from __future__ import annotations

import random

MAX_BACKOFF_SECONDS = 300.0
JITTER = 0.1


def backoff(interval: float, failures: int, maximum: float = MAX_BACKOFF_SECONDS) -> float:
    """The delay before the next try after `failures` failures in a row (0: the interval)."""
    return min(interval * 2**failures, maximum) if failures else interval


def jittered(delay: float, rng: random.Random, jitter: float = JITTER) -> float:
    """`delay` spread by up to `jitter` of itself either way."""
    return delay * (1 + jitter * rng.uniform(-1, 1))
