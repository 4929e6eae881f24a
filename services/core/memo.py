"""A memo for values rebuilt often: each key's value is remade only when its inputs change.

The fleet is rebuilt on every refresh of any source, and the screen turns it into rows on every
refresh and filter keystroke; with a thousand assistants, remaking everything for one change
would cost tens of milliseconds. Inputs are compared by identity first, then equality.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from typing import Generic, TypeVar

V = TypeVar("V")


class Memo(Generic[V]):
    """Values by key; `keep_only` forgets the keys that no longer exist."""

    def __init__(self) -> None:
        self._entries: dict[Hashable, tuple[tuple[object, ...], V]] = {}

    def get(self, key: Hashable, inputs: tuple[object, ...], make: Callable[[], V]) -> V:
        old = self._entries.get(key)
        # Tuples compare item by item, each by identity first, then equality: in C.
        if old is not None and old[0] == inputs:
            return old[1]
        value = make()
        self._entries[key] = (inputs, value)
        return value

    def keep_only(self, keys: Iterable[Hashable]) -> None:
        entries = self._entries
        self._entries = {key: entries[key] for key in keys if key in entries}
