"""roost's own settings: `config.toml` parsed into a typed, validated model.

Every error names the file, the key and the problem. A missing file means the defaults; the file
is only ever read, never written back.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.core.errors import RoostError
from services.core.files import FileError, read_toml
from services.core.mode import Mode
from services.core.paths import expand_user

DEFAULT_TMUX_REFRESH_SECONDS = 3.0
DEFAULT_DOCKER_REFRESH_SECONDS = 30.0
"""A safety net: the engines' event streams say when a container changes."""
DEFAULT_HEALTH_INTERVAL_SECONDS = 10.0
DEFAULT_HEALTH_CONCURRENCY = 32
DEFAULT_PLATFORM_REFRESH_SECONDS = 60.0
DEFAULT_SCROLLBACK_LINES = 10_000
DEFAULT_RECORDINGS_MB = 256
MAX_RECORDINGS_MB = 1 << 20
MAX_SCROLLBACK_LINES = 1_000_000
MAX_BACKUPS_KEPT = 100_000
MAX_CONFIG_BYTES = 256 * 1024
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class ConfigError(RoostError):
    """The config file is not valid; the message names the file, the key and the problem."""

    def __init__(self, path: Path, key: str | None, problem: str) -> None:
        self.path, self.key, self.problem = path, key, problem
        where = f"{path}: {key}" if key else str(path)
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True)
class EngineConfig:
    """A Docker engine to watch: a `DOCKER_HOST` style URL or the name of a Docker context."""

    name: str
    host: str | None = None
    context: str | None = None


@dataclass(frozen=True)
class RuntimeConfig:
    """An assistant runtime reached over HTTP that no lockfile lists (kind `custom`)."""

    name: str
    url: str
    token_file: Path | None = None


@dataclass(frozen=True)
class Config:
    """The validated contents of `config.toml`; every field has a working default."""

    tmux_socket: str | None = None
    """A socket name (`tmux -L`) or, when it contains a `/`, a socket path (`tmux -S`)."""
    tmux_refresh_seconds: float = DEFAULT_TMUX_REFRESH_SECONDS
    docker_engines: tuple[EngineConfig, ...] = ()
    docker_refresh_seconds: float = DEFAULT_DOCKER_REFRESH_SECONDS
    platform_url: str | None = None
    """Wins over the lockfile's `platformBaseUrl` and `VELLUM_PLATFORM_URL`."""
    platform_token_file: Path | None = None
    """Instead of the Vellum CLI's `platform-token`."""
    platform_refresh_seconds: float = DEFAULT_PLATFORM_REFRESH_SECONDS
    runtimes: tuple[RuntimeConfig, ...] = ()
    health_interval_seconds: float = DEFAULT_HEALTH_INTERVAL_SECONDS
    health_concurrency: int = DEFAULT_HEALTH_CONCURRENCY
    keys: Mapping[str, str] = field(default_factory=dict)
    """Binding id to key(s), e.g. `quit = "q,ctrl+q"`: remaps roost's keys."""
    terminal_scrollback: int = DEFAULT_SCROLLBACK_LINES
    """Lines each terminal pane keeps above its screen."""
    terminal_shell: str | None = None
    """The program a new local terminal runs; else `$SHELL`, else `/bin/sh`."""
    local_mode: Mode = Mode.DRIVE
    """How `enter` attaches to a tmux session on this machine: "drive" or "watch"."""
    remote_mode: Mode = Mode.DRIVE
    """The same for a Docker or managed assistant's tmux session."""
    recordings_mb: int = DEFAULT_RECORDINGS_MB
    """Megabytes of asciicast recordings kept (oldest removed first); 0 records nothing."""
    notify_bell: bool = True
    """Ring the terminal bell when something new needs you (`[notifications] bell`)."""
    notify_desktop: bool = True
    """Send a desktop notification through the terminal, where it supports one
    (`[notifications] desktop`)."""
    backups_keep: int | None = None
    """How many backups of each assistant retention keeps (`[backups] keep`); None keeps all."""


def load_config(path: Path) -> Config:
    """Read `path`; a missing file gives the defaults, anything invalid raises `ConfigError`."""
    try:
        document = read_toml(path, MAX_CONFIG_BYTES)
    except FileNotFoundError:
        return Config()
    except FileError as error:
        at = f" (at line {error.line})" if error.line is not None else ""
        raise ConfigError(path, None, f"{error.problem}{at}") from None
    return _Reader(path).config(document)


class _Reader:
    """Walks the TOML document, checking each key's type and rejecting unknown keys."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, key: str, problem: str) -> ConfigError:
        return ConfigError(self.path, key, problem)

    def table(self, parent: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
        value = parent.get(key, {})
        if not isinstance(value, dict):
            raise self.fail(where, f"must be a table, not {_toml_type(value)}")
        return value

    def string(self, table: Mapping[str, Any], key: str, where: str) -> str | None:
        value = table.get(key)
        if value is not None and not isinstance(value, str):
            raise self.fail(where, f"must be a string, not {_toml_type(value)}")
        return value

    def only(self, table: Mapping[str, Any], allowed: set[str], prefix: str) -> None:
        for key in table:
            if key not in allowed:
                known = ", ".join(sorted(allowed))
                raise self.fail(f"{prefix}{key}", f"unknown key (known here: {known})")

    def config(self, document: Mapping[str, Any]) -> Config:
        self.only(
            document,
            {
                "tmux",
                "docker",
                "platform",
                "runtimes",
                "health",
                "keys",
                "terminal",
                "notifications",
                "backups",
            },
            "",
        )
        tmux = self.table(document, "tmux", "tmux")
        self.only(tmux, {"socket", "refresh_seconds"}, "tmux.")
        socket = self.string(tmux, "socket", "tmux.socket")
        if socket is not None and not socket.strip():
            raise self.fail("tmux.socket", "must not be empty")
        docker = self.table(document, "docker", "docker")
        self.only(docker, {"engines", "refresh_seconds"}, "docker.")
        platform = self.table(document, "platform", "platform")
        self.only(platform, {"url", "token_file", "refresh_seconds"}, "platform.")
        health = self.table(document, "health", "health")
        self.only(health, {"interval_seconds", "concurrency"}, "health.")
        terminal = self.table(document, "terminal", "terminal")
        self.only(
            terminal,
            {"scrollback", "shell", "local_mode", "remote_mode", "recordings_mb"},
            "terminal.",
        )
        notifications = self.table(document, "notifications", "notifications")
        self.only(notifications, {"bell", "desktop"}, "notifications.")
        backups = self.table(document, "backups", "backups")
        self.only(backups, {"keep"}, "backups.")
        shell = self.string(terminal, "shell", "terminal.shell")
        if shell is not None and not shell.strip():
            raise self.fail("terminal.shell", "must not be empty")
        return Config(
            tmux_socket=socket,
            tmux_refresh_seconds=self.number(
                tmux, "refresh_seconds", "tmux.", DEFAULT_TMUX_REFRESH_SECONDS
            ),
            docker_engines=self.engines(docker),
            docker_refresh_seconds=self.number(
                docker, "refresh_seconds", "docker.", DEFAULT_DOCKER_REFRESH_SECONDS
            ),
            platform_url=self.url(platform, "url", "platform.url"),
            platform_token_file=self.file_path(platform, "token_file", "platform.token_file"),
            platform_refresh_seconds=self.number(
                platform, "refresh_seconds", "platform.", DEFAULT_PLATFORM_REFRESH_SECONDS
            ),
            runtimes=self.runtimes(document.get("runtimes", [])),
            health_interval_seconds=self.number(
                health, "interval_seconds", "health.", DEFAULT_HEALTH_INTERVAL_SECONDS
            ),
            health_concurrency=self.whole_number(
                health, "concurrency", "health.", DEFAULT_HEALTH_CONCURRENCY, (1, 512)
            ),
            keys=self.keys(self.table(document, "keys", "keys")),
            terminal_scrollback=self.whole_number(
                terminal,
                "scrollback",
                "terminal.",
                DEFAULT_SCROLLBACK_LINES,
                (0, MAX_SCROLLBACK_LINES),
            ),
            terminal_shell=shell,
            local_mode=self.mode(terminal, "local_mode"),
            remote_mode=self.mode(terminal, "remote_mode"),
            recordings_mb=self.whole_number(
                terminal,
                "recordings_mb",
                "terminal.",
                DEFAULT_RECORDINGS_MB,
                (0, MAX_RECORDINGS_MB),
            ),
            notify_bell=self.boolean(notifications, "bell", "notifications."),
            notify_desktop=self.boolean(notifications, "desktop", "notifications."),
            backups_keep=(
                self.whole_number(backups, "keep", "backups.", 1, (1, MAX_BACKUPS_KEPT))
                if "keep" in backups
                else None
            ),
        )

    def mode(self, table: Mapping[str, Any], key: str) -> Mode:
        value = self.string(table, key, f"terminal.{key}") or Mode.DRIVE.value
        if value not in set(Mode):
            raise self.fail(f"terminal.{key}", f'must be "drive" or "watch", not {value!r}')
        return Mode(value)

    def whole_number(
        self,
        table: Mapping[str, Any],
        key: str,
        prefix: str,
        default: int,
        bounds: tuple[int, int],
    ) -> int:
        value = table.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(f"{prefix}{key}", f"must be a whole number, not {_toml_type(value)}")
        low, high = bounds
        if not low <= value <= high:
            raise self.fail(f"{prefix}{key}", f"must be between {low} and {high}, not {value}")
        return value

    def boolean(self, table: Mapping[str, Any], key: str, prefix: str) -> bool:
        """An on/off switch, on when absent."""
        value = table.get(key, True)
        if not isinstance(value, bool):
            raise self.fail(f"{prefix}{key}", f"must be true or false, not {_toml_type(value)}")
        return value

    def url(self, table: Mapping[str, Any], key: str, where: str) -> str | None:
        value = self.string(table, key, where)
        if value is not None and not value.startswith(("http://", "https://")):
            raise self.fail(where, f"{value!r} is not an http:// or https:// URL")
        return value.rstrip("/") if value else value

    def file_path(self, table: Mapping[str, Any], key: str, where: str) -> Path | None:
        value = self.string(table, key, where)
        if value is not None and not value.strip():
            raise self.fail(where, "must not be empty")
        if not value:
            return None
        try:
            return expand_user(value)
        except RoostError as error:
            raise self.fail(where, str(error)) from None

    def tables(
        self, entries: Any, where: str, keys: set[str]
    ) -> Iterator[tuple[str, Mapping[str, Any]]]:
        """Each table of an array of tables (`[[where]]`), with only the `keys` known."""
        if not isinstance(entries, list):
            raise self.fail(where, f"must be an array of tables ([[{where}]])")
        for index, entry in enumerate(entries):
            at = f"{where}[{index}]"
            if not isinstance(entry, dict):
                raise self.fail(at, f"must be a table, not {_toml_type(entry)}")
            self.only(entry, keys, f"{at}.")
            yield at, entry

    def runtimes(self, entries: Any) -> tuple[RuntimeConfig, ...]:
        runtimes: list[RuntimeConfig] = []
        for where, entry in self.tables(entries, "runtimes", {"name", "url", "token_file"}):
            name = self.name(entry, where, (r.name for r in runtimes), "lab-box")
            url = self.url(entry, "url", f"{where}.url")
            if url is None:
                raise self.fail(f"{where}.url", "required: the runtime's base URL")
            token_file = self.file_path(entry, "token_file", f"{where}.token_file")
            runtimes.append(RuntimeConfig(name=name, url=url, token_file=token_file))
        return tuple(runtimes)

    def name(self, entry: Mapping[str, Any], where: str, taken: Iterable[str], example: str) -> str:
        name = self.string(entry, "name", f"{where}.name")
        if not name or not _NAME.match(name):
            raise self.fail(
                f"{where}.name", f"required: letters, digits, '.', '_' or '-' (e.g. '{example}')"
            )
        if name in set(taken):
            raise self.fail(f"{where}.name", f"{name!r} is defined twice")
        return name

    def number(self, table: Mapping[str, Any], key: str, prefix: str, default: float) -> float:
        where, value = f"{prefix}{key}", table.get(key)
        if value is None:
            return default
        # bool is an int in Python, but `refresh_seconds = true` is not a number of seconds.
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(where, f"must be a number of seconds, not {_toml_type(value)}")
        if not 0.2 <= value <= 3600:
            raise self.fail(where, f"must be between 0.2 and 3600 seconds, not {value}")
        return float(value)

    def engines(self, docker: Mapping[str, Any]) -> tuple[EngineConfig, ...]:
        engines: list[EngineConfig] = []
        keys = {"name", "host", "context"}
        for where, entry in self.tables(docker.get("engines", []), "docker.engines", keys):
            name = self.name(entry, where, (e.name for e in engines), "build-box")
            host = self.string(entry, "host", f"{where}.host")
            context = self.string(entry, "context", f"{where}.context")
            if (host is None) == (context is None):
                raise self.fail(where, "needs exactly one of 'host' (a URL) or 'context' (a name)")
            if host is not None and "://" not in host:
                raise self.fail(
                    f"{where}.host",
                    f"{host!r} is not a URL (e.g. unix:///var/run/docker.sock, ssh://me@box)",
                )
            engines.append(EngineConfig(name=name, host=host, context=context))
        return tuple(engines)

    def keys(self, keys: Mapping[str, Any]) -> Mapping[str, str]:
        for binding_id, key in keys.items():
            if not isinstance(key, str) or not key.strip():
                raise self.fail(f"keys.{binding_id}", 'must be a key such as "q" or "ctrl+r,f5"')
        return dict(keys)


def _toml_type(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return "a date or time"
