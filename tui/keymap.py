"""The `[keys]` table of config.toml checked against roost's bindings, once, when it is loaded.

It lives in tui/ because everything it checks against is here: the binding ids and their
scopes are the screens' `BINDINGS`, and the key names are Textual's (`textual.keys`); services/
may not import either. Every front end calls it where the config is loaded (`create_app` for the
console, `tui.cli` for the commands), so `roost ps` refuses exactly the keymaps the console would.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from textual.binding import Binding, BindingType
from textual.keys import REPLACED_KEYS, Keys, key_to_character

from services.core.config import ConfigError

MODIFIERS = ("alt", "ctrl", "hyper", "meta", "shift", "super")
"""In the order Textual names them in a key (`ctrl+shift+up`)."""
NAMED_KEYS = frozenset(
    key.value for key in Keys if "+" not in key.value and key.value.isidentifier()
)
"""Keys with a name of their own (`escape`, `f5`, `pageup`...), beside characters."""


@dataclass(frozen=True)
class Scope:
    """Bindings active at the same time (the focused widget's, its screen's, the app's), so a
    key may run only one of them."""

    name: str
    bindings: tuple[list[BindingType], ...]

    def expanded(self) -> Iterable[Binding]:
        """One Binding per key (`escape,q` is two), keys named as Textual names them."""
        for bindings in self.bindings:
            yield from Binding.make_bindings(bindings)


def check_keymap(path: Path, keys: Mapping[str, str], scopes: Iterable[Scope]) -> None:
    """Raise ConfigError naming `path`, the `[keys]` entry and the problem when an entry names
    no binding, a key Textual cannot produce, or a key that another binding of the same scope
    already has (keys that the defaults share on purpose, such as `q` for quit and for closing
    help, are left as they are)."""
    scopes = tuple(scopes)
    known = binding_ids(scopes)
    for binding_id, value in keys.items():
        where = f"keys.{binding_id}"
        if binding_id not in known:
            raise ConfigError(
                path, where, f"no key has this id (known: {', '.join(sorted(known))})"
            )
        for key in value.split(","):
            if problem := key_problem(key.strip()):
                raise ConfigError(path, where, problem)
    for scope in scopes:
        before, after = _holders(scope, {}), _holders(scope, keys)
        for key, ids in after.items():
            # Only a binding remapped onto the key can have joined the ids the defaults give it.
            joined = ids - before.get(key, frozenset())
            if len(ids) > 1 and joined:
                mine = min(joined)
                others = " and ".join(sorted(ids - {mine}))
                raise ConfigError(
                    path, f"keys.{mine}", f"{key!r} is already the key of {others} on {scope.name}"
                )


def key_problem(key: str) -> str | None:
    """Why `key` is not a key Textual reports (None when it is one): `q`, `?`, `ctrl+r`, `f5`,
    `question_mark`, `ctrl+shift+up`."""
    if not key:
        return 'an empty key: write keys such as "q" or "ctrl+r,f5"'
    if len(key) == 1:
        return None if key.isprintable() and not key.isspace() else f"{key!r} is not a key"
    *modifiers, name = key.split("+")
    unknown = [modifier for modifier in modifiers if modifier not in MODIFIERS]
    if unknown:
        return f"{key!r}: {unknown[0]!r} is not a modifier (they are {', '.join(MODIFIERS)})"
    if modifiers != sorted(set(modifiers)):
        ordered = "+".join([*sorted(set(modifiers)), name])
        return f"{key!r}: write the modifiers once each, in the order {ordered!r}"
    if len(name) == 1 or name in NAMED_KEYS or key_to_character(REPLACED_KEYS.get(name, name)):
        return None
    return f'{key!r}: {name!r} is not the name of a key (e.g. "r", "f5", "escape", "slash")'


def binding_ids(scopes: Iterable[Scope]) -> frozenset[str]:
    """The id of every binding in `scopes`: what `[keys]` may remap."""
    return frozenset(binding.id for scope in scopes for binding in scope.expanded() if binding.id)


def _holders(scope: Scope, keys: Mapping[str, str]) -> dict[str, frozenset[str]]:
    """Each key of `scope` and the binding ids it runs, with `keys` remapping some ids."""
    holders: dict[str, set[str]] = {}
    for binding in scope.expanded():
        if binding.id is None:
            continue
        remapped = keys.get(binding.id)
        # One Binding per key, named as Textual names it (`?` is `question_mark`).
        for key in Binding.make_bindings([binding.with_key(remapped)]) if remapped else [binding]:
            holders.setdefault(key.key, set()).add(binding.id)
    return {key: frozenset(ids) for key, ids in holders.items()}
