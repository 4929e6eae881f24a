"""Everything roost resolves once at start-up, in one object handed to the CLI and the TUI.

Tests build their own (every path under a temporary directory, a private tmux socket, a fixed
clock and host name) and pass it to the same app factory the `roost` command uses.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from pathlib import Path

from services.core.clock import utc_now
from services.core.config import Config, load_config
from services.core.paths import RoostPaths, runtime_dir
from services.hosts.ssh import Ssh
from services.terminal.tmux import TmuxServer, TmuxSocket
from services.vellum.environment import VellumEnvironment
from services.vellum.platform import platform_url


@dataclass(frozen=True)
class Context:
    paths: RoostPaths
    config: Config
    vellum: VellumEnvironment
    tmux: TmuxServer
    environ: Mapping[str, str]
    hostname: str = field(default_factory=socket.gethostname)
    clock: Callable[[], datetime] = utc_now

    @cached_property
    def ssh(self) -> Ssh:
        """The ssh client for `[[hosts]]`: `[ssh] config`, its shared connections' sockets in
        the runtime directory. Raises RoostError when `$ROOST_RUNTIME_DIR` names an unknown
        user's home."""
        return Ssh(runtime_dir(self.environ) / "ssh", self.config.ssh_config)

    @property
    def platform_token_file(self) -> Path:
        return self.config.platform_token_file or self.vellum.platform_token_file

    def platform_url(self, lockfile_base_url: str | None) -> str:
        """config.toml's URL, else the lockfile's, else `VELLUM_PLATFORM_URL`, else the seed."""
        return platform_url(
            self.config.platform_url or lockfile_base_url, self.environ, self.vellum
        )

    @classmethod
    def load(
        cls, environ: Mapping[str, str] | None = None, config: Config | None = None
    ) -> Context:
        """Resolve paths and environments; read config.toml unless `config` is given.

        Raises ConfigError when config.toml is invalid.
        """
        env = dict(os.environ if environ is None else environ)
        paths = RoostPaths.resolve(env)
        if config is None:
            config = load_config(paths.config_file)
        socket_value = env.get("ROOST_TMUX_SOCKET") or config.tmux_socket or _enclosing_tmux(env)
        return cls(
            paths=paths,
            config=config,
            vellum=VellumEnvironment.resolve(env),
            tmux=TmuxServer(TmuxSocket(socket_value) if socket_value else None),
            environ=env,
        )


def _enclosing_tmux(env: Mapping[str, str]) -> str | None:
    """The socket of the tmux server roost runs inside (`$TMUX` is `socket,pid,session`). tmux
    commands find it through `$TMUX` themselves, but an attach drops `$TMUX` (a client inside
    a pane refuses to nest) and would look for the default server instead, where the session
    listed may not be: naming the socket sends both to the same server."""
    path = env.get("TMUX", "").split(",", 1)[0]
    return path if path.startswith("/") else None
