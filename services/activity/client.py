"""SCRATCH stand-in for lane DOMAIN's client (signatures of the plan only); dropped later."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass

import httpx

from services.activity.model import Answer, Interaction, InteractionKind, Outcome, Request
from services.core.errors import RoostError
from services.vellum.auth import RuntimeEndpoint


class AnswerRefused(RoostError):
    pass


class StreamError(RoostError):
    pass


@dataclass(frozen=True)
class PendingItem:
    request_id: str
    conversation: str
    kind: InteractionKind
    tool: str = ""
    risk: str = ""
    request: Request | None = None


@dataclass(frozen=True)
class PendingList:
    items: tuple[PendingItem, ...]
    complete: bool


class ActivityClient:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    def events(self, endpoint: RuntimeEndpoint, client_id: str) -> AsyncIterator[object]:
        raise NotImplementedError

    async def pending(self, endpoint: RuntimeEndpoint, conversations: Iterable[str]) -> PendingList:
        raise NotImplementedError

    async def details(
        self, endpoint: RuntimeEndpoint, conversation: str
    ) -> tuple[PendingItem, ...]:
        raise NotImplementedError

    async def answer(
        self, endpoint: RuntimeEndpoint, interaction: Interaction, answer: Answer
    ) -> Outcome:
        raise NotImplementedError
