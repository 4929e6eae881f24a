"""roost's commands, derived from its key bindings: one list for the help screen and the palette.

Every roost binding has an id and a description, so remapping a key in config.toml changes the
footer, the help screen and the command palette together.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from textual.app import App
from textual.binding import Binding
from textual.dom import DOMNode
from textual.screen import Screen


@dataclass(frozen=True)
class Command:
    """A roost binding as the user sees it: the keys that run it and what it does."""

    binding_id: str
    keys: tuple[str, ...]
    description: str
    tooltip: str
    action: str
    node: DOMNode
    enabled: bool


def commands(app: App[Any], screen: Screen[Any]) -> list[Command]:
    """The roost bindings active on `screen` (app-wide ones included), one entry per id."""
    found: dict[str, Command] = {}
    for active in screen.active_bindings.values():
        binding = active.binding
        if binding.id is None:
            continue
        key = app.get_key_display(binding)
        previous = found.get(binding.id)
        keys = (*previous.keys, key) if previous and key not in previous.keys else (key,)
        found[binding.id] = Command(
            binding.id,
            keys,
            binding.description,
            binding.tooltip,
            binding.action,
            active.node,
            active.enabled,
        )
    return list(found.values())


def binding_ids(*bindings_lists: list[Binding]) -> Iterator[str]:
    for bindings in bindings_lists:
        for binding in bindings:
            if binding.id is not None:
                yield binding.id
