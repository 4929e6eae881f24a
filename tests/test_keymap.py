"""[keys] in config.toml: one check at load, for the console and every command alike."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.context import Context
from services.core.config import Config, ConfigError
from tests.test_cli import roost
from tui.app import KEY_SCOPES, create_app
from tui.keymap import (
    MODIFIERS,
    NAMED_KEYS,
    binding_ids,
    check_keymap,
    key_problem,
)

CONFIG = Path("/config.toml")


def check(**keys: str) -> None:
    check_keymap(CONFIG, {key.replace("__", "."): value for key, value in keys.items()}, KEY_SCOPES)


def refused(**keys: str) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        check(**keys)
    return caught.value


def test_every_default_key_is_a_key_and_restating_the_defaults_changes_nothing() -> None:
    defaults = {b.id: b.key for scope in KEY_SCOPES for b in scope.expanded() if b.id}
    for key in defaults.values():
        assert key_problem(key) is None, key

    check_keymap(CONFIG, defaults, KEY_SCOPES)


@given(
    st.lists(st.sampled_from(MODIFIERS), unique=True).map(sorted),
    # "+" and "," join modifiers and separate keys: as keys they are "plus" and "comma".
    st.sampled_from(sorted(NAMED_KEYS))
    | st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="+,"),
)
def test_modifiers_in_order_and_any_key_name_or_character_is_a_key(
    modifiers: list[str], name: str
) -> None:
    assert key_problem("+".join([*modifiers, name])) is None


@given(
    st.dictionaries(
        st.sampled_from(sorted(binding_ids(KEY_SCOPES))) | st.text(max_size=12),
        st.text(max_size=30) | st.sampled_from(["q", "s", "ctrl+q", "escape,q", "?"]),
        max_size=4,
    )
)
def test_any_keymap_is_accepted_or_a_config_error(keys: dict[str, str]) -> None:
    try:
        check_keymap(CONFIG, keys, KEY_SCOPES)
    except ConfigError as error:
        assert error.key is not None and error.key.startswith("keys.")


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        ("ctrl+nonsense", "'nonsense' is not the name of a key"),
        ("nonsense", "'nonsense' is not the name of a key"),
        ("cmd+r", "'cmd' is not a modifier"),
        ("shift+ctrl+up", "in the order 'ctrl+shift+up'"),
        ("ctrl+ctrl+r", "in the order 'ctrl+r'"),
        ("", "an empty key"),
        (" ", "is not a key"),
    ],
)
def test_a_key_textual_never_reports_is_named_with_the_reason(key: str, problem: str) -> None:
    assert problem in (key_problem(key) or "")


def test_an_entry_naming_no_binding_lists_the_ids() -> None:
    error = refused(frobnicate="x")

    assert error.key == "keys.frobnicate" and "refresh" in error.problem


def test_a_nonsense_key_names_the_entry_and_the_key() -> None:
    error = refused(refresh="f5,ctrl+nonsense")

    assert str(error) == (
        f"{CONFIG}: keys.refresh: 'ctrl+nonsense': 'nonsense' is not the name of a key "
        '(e.g. "r", "f5", "escape", "slash")'
    )


def test_a_key_another_binding_has_in_the_same_scope_is_a_conflict() -> None:
    error = refused(quit="s")

    assert str(error) == f"{CONFIG}: keys.quit: 's' is already the key of sort on the main screen"


@pytest.mark.parametrize(
    "keys",
    [
        {"quit": "q,ctrl+c"},  # q closes help there too, by design: unchanged
        {"sort": "f7", "quit": "s"},  # sort moved away first
        {"panes.close": "s"},  # s is the main screen's, and panes are elsewhere
        {"help": "?"},  # the same key, written as the character
    ],
)
def test_keys_that_share_no_scope_or_only_as_the_defaults_do_are_accepted(
    keys: dict[str, str],
) -> None:
    check_keymap(CONFIG, keys, KEY_SCOPES)


def test_the_console_refuses_a_conflicting_keymap() -> None:
    context = dataclasses.replace(Context.load(), config=Config(keys={"quit": "s"}))

    with pytest.raises(ConfigError, match="'s' is already the key of sort"):
        create_app(context)


@pytest.mark.parametrize(
    ("keys", "problem"),
    [
        ('quit = "s"', "keys.quit: 's' is already the key of sort on the main screen"),
        ('help = "ctrl+nonsense"', "keys.help: 'ctrl+nonsense': 'nonsense' is not the name"),
    ],
)
def test_commands_refuse_the_keymaps_the_console_refuses(
    tmp_path: Path, keys: str, problem: str
) -> None:
    config = tmp_path / "roost-config" / "config.toml"
    config.parent.mkdir()
    config.write_text(f"[keys]\n{keys}\n")

    listed = roost("ps")
    checked = roost("doctor")

    assert listed.returncode == 1 and listed.stdout == ""
    assert listed.stderr == f"roost: {config}: {problem}" + listed.stderr.split(problem)[1]
    assert listed.stderr.count("\n") == 1
    assert checked.returncode == 1 and problem in checked.stdout
