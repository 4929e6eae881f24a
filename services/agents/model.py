"""A coding agent's hook event, as roost keeps it (no I/O).

The agents' payloads are JSON objects whose field names are theirs (../shared/AGENT-SIGNALS.md):
Claude Code and Gemini CLI name the event in `hook_event_name` and the session in `session_id`;
Codex's `notify` program gets `type` and `thread-id`. `AgentEvent` keeps the whole payload (it
was capped when read) and reads those few names once.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from services.core.safe_text import printable
from services.core.state import AgentEventRow


class Agent(StrEnum):
    """The agents whose hooks roost installs and reads."""

    CLAUDE = "claude"
    CODEX = "codex"
    GEMINI = "gemini"


@dataclass(frozen=True)
class AgentEvent:
    """One event an agent's hook reported, with the tmux pane it ran in."""

    at: datetime
    """When the hook ran (the agents' payloads carry no time)."""
    agent: str
    """An `Agent` value, or another name a newer roost wrote."""
    server: str
    """The tmux server's socket path (from `$TMUX`); empty outside tmux."""
    pane: str
    """tmux's pane id (`$TMUX_PANE`, `%3`); empty outside tmux."""
    payload: Mapping[str, Any] = field(default_factory=dict)
    id: int = 0
    """The state database's number for it (0 until recorded)."""

    @property
    def name(self) -> str:
        """The event: `PreToolUse`, `Stop`, `agent-turn-complete`, ... (empty if unnamed)."""
        return _text(self.payload.get("hook_event_name") or self.payload.get("type"))

    @property
    def session(self) -> str:
        """The agent's own session (Claude/Gemini `session_id`, Codex `thread-id`)."""
        return _text(self.payload.get("session_id") or self.payload.get("thread-id"))

    def text(self, key: str) -> str:
        """The payload's `key` as text safe for a terminal (empty when absent or not text)."""
        return _text(self.payload.get(key))

    @classmethod
    def of_row(cls, row: AgentEventRow) -> AgentEvent:
        """The event a state database row holds; a payload that is not a JSON object is
        kept as an empty one (the row still says which pane reported something, and when)."""
        try:
            payload = json.loads(row.payload)
        except ValueError:
            payload = {}
        return cls(
            row.at,
            row.agent,
            row.server,
            row.pane,
            payload if isinstance(payload, dict) else {},
            row.id,
        )

    def to_row(self) -> AgentEventRow:
        return AgentEventRow(
            self.id,
            self.at,
            self.agent,
            self.server,
            self.pane,
            json.dumps(self.payload, ensure_ascii=False, separators=(",", ":")),
        )


def _text(value: object) -> str:
    return printable(value) if isinstance(value, str) else ""
