"""Where roost's files live, and the variables that move them."""

from __future__ import annotations

import copy
import os
from pathlib import Path

import platformdirs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.core.paths import APP_NAME, RoostPaths, platform_state_dir, runtime_dir, state_dir


def test_defaults_follow_the_platform_conventions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # platformdirs reads the process environment; the mapping passed in holds only overrides.
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "c"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "s"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "k"))

    paths = RoostPaths.resolve({})

    assert paths.config_dir == tmp_path / "c" / "roost"
    assert paths.state_dir == tmp_path / "s" / "roost"
    assert paths.cache_dir == tmp_path / "k" / "roost"
    assert paths.log_dir == tmp_path / "s" / "roost" / "log"
    assert paths.config_file == tmp_path / "c" / "roost" / "config.toml"
    assert paths.log_file == paths.log_dir / "roost.log"


def test_each_directory_has_its_own_override(tmp_path: Path) -> None:
    paths = RoostPaths.resolve(
        {
            "ROOST_CONFIG_DIR": str(tmp_path / "1"),
            "ROOST_STATE_DIR": str(tmp_path / "2"),
            "ROOST_CACHE_DIR": str(tmp_path / "3"),
            "ROOST_LOG_DIR": str(tmp_path / "4"),
        }
    )

    assert (paths.config_dir, paths.state_dir, paths.cache_dir, paths.log_dir) == (
        tmp_path / "1",
        tmp_path / "2",
        tmp_path / "3",
        tmp_path / "4",
    )


def test_resolving_creates_nothing(tmp_path: Path) -> None:
    RoostPaths.resolve({"ROOST_CONFIG_DIR": str(tmp_path / "never")})

    assert not (tmp_path / "never").exists()


HOMES = st.sampled_from(["/home/u", "/home/u/", "/", "//srv/u", "relative", "", None])
XDG_VALUES = st.one_of(
    st.sampled_from(["/x/state", "/x/state/", "/", "relative/state", "", " ", "~/state", None]),
    st.text(alphabet="/ab ~.", max_size=8),
)


@given(home=HOMES, xdg=XDG_VALUES, android=st.booleans())
def test_the_state_dir_is_platformdirs_own(
    home: str | None, xdg: str | None, android: bool
) -> None:
    """The hook's way to the state dir, which spares it loading platformdirs, gives what
    platformdirs gives, whatever $HOME and $XDG_STATE_HOME say."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        for variable, value in (("HOME", home), ("XDG_STATE_HOME", xdg)):
            if value is None:
                monkeypatch.delenv(variable, raising=False)
            else:
                monkeypatch.setenv(variable, value)
        if android:
            monkeypatch.setenv("ANDROID_DATA", "/data")
        try:
            expected = Path(platformdirs.user_state_dir(APP_NAME))
        except RuntimeError:  # no home directory to be found: platformdirs' error stands
            with pytest.raises(RuntimeError):
                platform_state_dir()
        else:
            assert platform_state_dir() == expected
            assert state_dir({}) == expected
            assert RoostPaths.resolve({}).state_dir == expected


def test_the_state_dir_variable_wins(tmp_path: Path) -> None:
    assert state_dir({"ROOST_STATE_DIR": str(tmp_path)}) == tmp_path


def test_paths_are_a_frozen_value(tmp_path: Path) -> None:
    paths = RoostPaths.resolve({"ROOST_STATE_DIR": str(tmp_path)})
    same = RoostPaths.resolve({"ROOST_STATE_DIR": str(tmp_path)})
    other = RoostPaths.resolve({"ROOST_STATE_DIR": str(tmp_path / "other")})

    assert paths == same and hash(paths) == hash(same)
    assert paths != other and copy.deepcopy(paths) == paths
    assert repr(paths).startswith(f"RoostPaths(config_dir={paths.config_dir!r}, state_dir=")
    with pytest.raises(AttributeError):
        paths.state_dir = tmp_path
    with pytest.raises(AttributeError):
        del paths.log_dir


def test_the_runtime_dir_is_short_and_overridable(tmp_path: Path) -> None:
    assert runtime_dir({"ROOST_RUNTIME_DIR": str(tmp_path)}) == tmp_path
    assert runtime_dir({"XDG_RUNTIME_DIR": "/run/user/7"}) == Path("/run/user/7/roost")
    fallback = runtime_dir({"XDG_RUNTIME_DIR": "relative"})
    assert fallback.name == f"roost-{os.getuid()}"
