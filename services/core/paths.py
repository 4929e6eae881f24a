"""Where roost keeps its files: the one place that knows, from platformdirs plus overrides.

Nothing here creates a directory; the code that writes a file creates its parent when it writes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from services.core.errors import RoostError
from services.core.safe_text import printable

APP_NAME = "roost"


def expand_user(text: str) -> Path:
    """`text` as a path with a leading `~` or `~name` expanded.

    Raises RoostError when `~name` names a user this machine does not know.
    """
    try:
        return Path(text).expanduser()
    except RuntimeError:
        user = printable(text.split("/", 1)[0])
        raise RoostError(f"{user} is not a home directory here (no such user)") from None


@dataclass(frozen=True)
class RoostPaths:
    """Roost's own directories, resolved once at start-up."""

    config_dir: Path
    state_dir: Path
    cache_dir: Path
    log_dir: Path
    data_dir: Path
    """What roost makes for the user to keep: backups."""

    @property
    def config_file(self) -> Path:
        return self.config_dir / "config.toml"

    @property
    def state_database(self) -> Path:
        """roost's own state (services/core/state.py): job history, events."""
        return self.state_dir / "roost.db"

    @property
    def recordings_dir(self) -> Path:
        """asciicast recordings of attached panes (terminal output: kept private)."""
        return self.state_dir / "recordings"

    @property
    def log_file(self) -> Path:
        return self.log_dir / "roost.log"

    @classmethod
    def resolve(cls, environ: Mapping[str, str] | None = None) -> RoostPaths:
        """Platform defaults, each replaced by its `ROOST_*_DIR` variable when that is set.

        Raises RoostError when a variable names the home of an unknown user.
        """
        env = os.environ if environ is None else environ

        def pick(variable: str, default: str) -> Path:
            override = env.get(variable, "")
            if not override:
                return Path(default)
            try:
                return expand_user(override)
            except RoostError as error:
                raise RoostError(f"${variable}: {error}") from None

        return cls(
            config_dir=pick("ROOST_CONFIG_DIR", platformdirs.user_config_dir(APP_NAME)),
            state_dir=pick("ROOST_STATE_DIR", platformdirs.user_state_dir(APP_NAME)),
            cache_dir=pick("ROOST_CACHE_DIR", platformdirs.user_cache_dir(APP_NAME)),
            log_dir=pick("ROOST_LOG_DIR", platformdirs.user_log_dir(APP_NAME)),
            data_dir=pick("ROOST_DATA_DIR", platformdirs.user_data_dir(APP_NAME)),
        )
