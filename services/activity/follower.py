"""SCRATCH stand-in for lane DOMAIN's follower (signatures of the plan only); dropped later."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from services.activity.client import ActivityClient
from services.activity.model import Activity, Interaction, TimelineEntry
from services.vellum.auth import RuntimeEndpoint


@dataclass(frozen=True)
class StreamPolicy:
    backoff: float = 1.0


@dataclass(frozen=True)
class ActivityBatch:
    activities: Mapping[str, Activity]
    inbox: tuple[Interaction, ...]
    arrived: tuple[Interaction, ...]
    changes: tuple[str, ...]


class ActivityFollower:
    def __init__(
        self,
        client: ActivityClient,
        on_batch: Callable[[ActivityBatch], None],
        *,
        policy: StreamPolicy = StreamPolicy(),
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.on_batch = on_batch
        self._inbox: tuple[Interaction, ...] = ()
        self.timelines: dict[str, tuple[TimelineEntry, ...]] = {}

    def follow(self, endpoints: Mapping[str, RuntimeEndpoint]) -> None:
        self.endpoints = dict(endpoints)

    async def run(self) -> None:
        await asyncio.Event().wait()

    def activity(self, key: str) -> Activity | None:
        return None

    def timeline(self, key: str) -> tuple[TimelineEntry, ...]:
        return self.timelines.get(key, ())

    @property
    def inbox(self) -> tuple[Interaction, ...]:
        return self._inbox

    def answered(self, interaction: Interaction) -> None:
        self._inbox = tuple(i for i in self._inbox if i.id != interaction.id)
