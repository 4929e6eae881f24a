"""A footer that shows some keys first, so a narrow screen cuts the others, never those."""

from __future__ import annotations

from collections.abc import Iterable

from textual.app import ComposeResult
from textual.widgets import Footer
from textual.widgets._footer import FooterKey


class PinnedFooter(Footer):
    """Textual's footer lists the focused widget's keys first and the app's last, so on a
    narrow screen the app's (quit, help) fall off the end. This one puts the keys whose action
    is in `pinned` first, in the order given; the others keep their order after them."""

    def __init__(self, pinned: Iterable[str], *, compact: bool = False) -> None:
        super().__init__(compact=compact)
        self.pinned = tuple(pinned)

    def compose(self) -> ComposeResult:
        widgets = list(super().compose())

        def rank(widget: object) -> int:
            if isinstance(widget, FooterKey) and widget.action in self.pinned:
                return self.pinned.index(widget.action)
            return len(self.pinned)

        yield from sorted(widgets, key=rank)
