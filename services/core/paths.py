"""Where roost keeps its files: the one place that knows, from platformdirs plus overrides.

Nothing here creates a directory; the code that writes a file creates its parent when it writes.

Every agent hook imports this module to find its spool (services/agents/hook.py), and the agent
waits for the hook: so it loads only the standard library up front (platformdirs loads tempfile,
dataclasses loads inspect: tens of milliseconds, tests/perf/bench_hook.py), and `state_dir` finds
the usual Linux state directory without platformdirs.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from services.core.errors import RoostError

APP_NAME = "roost"


def expand_user(text: str) -> Path:
    """`text` as a path with a leading `~` or `~name` expanded.

    Raises RoostError when `~name` names a user this machine does not know.
    """
    try:
        return Path(text).expanduser()
    except RuntimeError:
        from services.core.safe_text import printable  # only for the error: re patterns to build

        user = printable(text.split("/", 1)[0])
        raise RoostError(f"{user} is not a home directory here (no such user)") from None


def _override(environ: Mapping[str, str], variable: str) -> Path | None:
    """The directory `variable` names, None when it is unset or empty.

    Raises RoostError when it names the home of an unknown user.
    """
    value = environ.get(variable, "")
    if not value:
        return None
    try:
        return expand_user(value)
    except RoostError as error:
        raise RoostError(f"${variable}: {error}") from None


def state_dir(environ: Mapping[str, str]) -> Path:
    """roost's state directory: `$ROOST_STATE_DIR`, else the platform's (`platform_state_dir`).

    Raises RoostError when the variable names the home of an unknown user.
    """
    return _override(environ, "ROOST_STATE_DIR") or platform_state_dir()


def platform_state_dir() -> Path:
    """`platformdirs.user_state_dir(APP_NAME)`, worked out here where every platformdirs release
    pyproject.toml accepts agrees: on Linux, `$XDG_STATE_HOME/roost` when that is an absolute
    path, `~/.local/state/roost` when it is unset or empty and `$HOME` is absolute. Anything else
    (another platform, Android, a relative variable) is platformdirs' to say; tests/test_paths.py
    holds the two to the same answers. Like platformdirs, reads the process environment."""
    if sys.platform == "linux" and "ANDROID_DATA" not in os.environ:
        xdg = os.environ.get("XDG_STATE_HOME", "")
        if Path(xdg).is_absolute():
            return Path(xdg, APP_NAME)
        if not xdg and Path(os.environ.get("HOME", "")).is_absolute():
            return Path("~/.local/state", APP_NAME).expanduser()
    import platformdirs

    return Path(platformdirs.user_state_dir(APP_NAME))


def runtime_dir(environ: Mapping[str, str]) -> Path:
    """Where roost keeps sockets (ssh's control sockets): `$ROOST_RUNTIME_DIR`, else
    `$XDG_RUNTIME_DIR/roost`, else `roost-<uid>` in the temporary directory. Short on purpose: a
    unix socket's path is limited to about 104 bytes.

    Raises RoostError when the variable names the home of an unknown user.
    """
    override = _override(environ, "ROOST_RUNTIME_DIR")
    if override is not None:
        return override
    xdg = environ.get("XDG_RUNTIME_DIR", "")
    if Path(xdg).is_absolute():
        return Path(xdg, APP_NAME)
    import tempfile

    return Path(tempfile.gettempdir(), f"{APP_NAME}-{os.getuid()}")


class RoostPaths:
    """Roost's own directories, resolved once at start-up: a frozen value like a frozen
    dataclass (compared, hashed and shown by its fields, in their order), written out because
    loading dataclasses would cost every agent hook its largest share of time (see the module's
    docstring)."""

    config_dir: Path
    state_dir: Path
    cache_dir: Path
    log_dir: Path
    data_dir: Path
    """What roost makes for the user to keep: backups."""

    def __init__(
        self, config_dir: Path, state_dir: Path, cache_dir: Path, log_dir: Path, data_dir: Path
    ) -> None:
        self.__dict__.update(
            config_dir=config_dir,
            state_dir=state_dir,
            cache_dir=cache_dir,
            log_dir=log_dir,
            data_dir=data_dir,
        )

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field {name!r} of frozen RoostPaths")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r} of frozen RoostPaths")

    def __eq__(self, other: object) -> bool:
        return vars(self) == vars(other) if isinstance(other, RoostPaths) else NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(vars(self).values()))

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={value!r}" for name, value in vars(self).items())
        return f"RoostPaths({fields})"

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
        import platformdirs

        env = os.environ if environ is None else environ

        def pick(variable: str, default: str) -> Path:
            return _override(env, variable) or Path(default)

        return cls(
            config_dir=pick("ROOST_CONFIG_DIR", platformdirs.user_config_dir(APP_NAME)),
            state_dir=state_dir(env),
            cache_dir=pick("ROOST_CACHE_DIR", platformdirs.user_cache_dir(APP_NAME)),
            log_dir=pick("ROOST_LOG_DIR", platformdirs.user_log_dir(APP_NAME)),
            data_dir=pick("ROOST_DATA_DIR", platformdirs.user_data_dir(APP_NAME)),
        )
