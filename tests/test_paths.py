"""Where roost's files live, and the variables that move them."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.core.paths import RoostPaths


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
