"""A memo for values rebuilt in rounds: each key's value is remade only when its inputs change.

The fleet is rebuilt on every refresh of any source, and the screen turns it into rows each
time; with a thousand assistants, remaking everything for one change would cost tens of
milliseconds. Inputs are compared by identity first, then equality.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class Memo(Generic[V]):
    """Call `new_round()` before each rebuild; keys not asked for in a round are forgotten."""

    def __init__(self) -> None:
        self._previous: dict[Hashable, tuple[tuple[object, ...], V]] = {}
        self._current: dict[Hashable, tuple[tuple[object, ...], V]] = {}

    def new_round(self) -> None:
        self._previous, self._current = self._current, {}

    def get(self, key: Hashable, inputs: tuple[object, ...], make: Callable[[], V]) -> V:
        old = self._current.get(key) or self._previous.get(key)
        if (
            old is not None
            and len(old[0]) == len(inputs)
            and all(a is b or a == b for a, b in zip(old[0], inputs, strict=True))
        ):
            value = old[1]
        else:
            value = make()
        self._current[key] = (inputs, value)
        return value
