"""App-wide messages: what background work tells the console, named in the past tense.

Threads never touch widgets (STYLE 4): a lifecycle thread or a Docker engine's event thread
posts one of these to the app, and the app's handler, on the event loop, shows it.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from services.core.errors import RoostError
from services.docker.lifecycle import RetirePlan, Step
from services.fleet.model import Assistant
from services.roost import Action


@dataclass
class EngineChanged(Message):
    """A Docker engine reported a container event: its assistants may have changed."""


@dataclass
class EventsNotSaved(Message):
    """The state database refused the events of the last batch."""

    error: RoostError


@dataclass
class SleepPlanned(Message):
    """The engine said which of the assistant's containers sleep would stop (maybe none)."""

    assistant: Assistant
    names: tuple[str, ...]


@dataclass
class RetirePlanned(Message):
    """The engine said what retiring the assistant would remove."""

    assistant: Assistant
    plan: RetirePlan


@dataclass
class LifecycleStarted(Message):
    """A wake, sleep or retire began its steps on the assistant."""

    assistant: Assistant
    action: Action


@dataclass
class LifecycleStepped(Message):
    """One step of a lifecycle action is done (or failed): a line for the events panel."""

    assistant: Assistant
    step: Step


@dataclass
class LifecycleEnded(Message):
    """A lifecycle action ran all its steps; `summary` says how they went."""

    assistant: Assistant
    action: Action
    summary: str
    failed: bool


@dataclass
class LifecycleFailed(Message):
    """A lifecycle action could not start or go on (no engine, unreadable): `error` says why."""

    assistant: Assistant
    action: Action
    error: str
