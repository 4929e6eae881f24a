"""What a terminal stream says besides its text: a new title (OSC 0/2), a desktop notification
(OSC 9, OSC 777;notify, OSC 99) or a bell. Supporting evidence of what a program in it does
(services/agents/watch.py); `text` is printable and capped where it is made."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class SignalKind(StrEnum):
    TITLE = "title"
    BELL = "bell"
    NOTIFICATION = "notification"


@dataclass(frozen=True)
class TerminalSignal:
    kind: SignalKind
    text: str
    at: datetime
