"""roost's commands, derived from its key bindings: one list for the help screen and the palette.

Every roost binding has an id and a description, so remapping a key in config.toml changes the
footer, the help screen and the command palette together. The palette draws every command as
plain text (`PaletteCommands`): Textual's own provider reads titles and help as markup, where a
key such as `/` or `[` would end roost.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from textual.app import App, SystemCommand
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.content import Content
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


class PaletteCommands(Provider):
    """The command palette's one provider: `App.get_system_commands` of the screen it was
    opened on (roost's commands, then Textual's), each title and help line plain text."""

    async def discover(self) -> Hits:
        by_title = sorted(self._commands(), key=lambda command: command.title)
        for title, help_text, callback, discover in by_title:
            if discover:
                yield DiscoveryHit(_prompt(Content(title), help_text), callback, text=title)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, callback, _ in self._commands():
            score, offsets = matcher.fuzzy_search.match(matcher.query, title)
            if score > 0:
                shown = Content(title)
                for offset in offsets:
                    shown = shown.stylize(matcher.match_style, offset, offset + 1)
                yield Hit(score, _prompt(shown, help_text), callback, text=title)

    def _commands(self) -> list[SystemCommand]:
        return list(self.app.get_system_commands(self.screen))


def _prompt(title: Content, help_text: str) -> Content:
    """The title, and under it the help line dimmed as the palette dims its own."""
    if not help_text:
        return title
    return Content.assemble(title, "\n", Content.styled(help_text, "dim not bold"))
