"""Shared fixtures: every test runs with roost's and Vellum's paths under a temporary directory,
no inherited tmux server, and a platform URL on loopback; real tmux servers are private."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.terminal.tmux import TmuxServer, TmuxSocket

# The loopback Vellum peer (`vellum_peer`) and its terminal sessions (before it: it imports
# them), the Docker engine, client and sandbox fixtures, and the private sshd (`ssh_host`).
pytest_plugins = (
    "tests.peers.terminal",
    "tests.peers.vellum",
    "tests.docker_fixtures",
    "tests.ssh_fixtures",
)


def require(tool: str, variable: str) -> None:
    """Skip when `tool` is missing, unless `variable` is set: then fail, so CI cannot skip it."""
    if shutil.which(tool) is None:
        message = f"{tool} is not installed"
        if os.environ.get(variable):
            pytest.fail(f"{message}, and {variable} is set")
        pytest.skip(f"{message} (set {variable}=1 to make this a failure)")


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point every file roost or Vellum would touch at `tmp_path`; returns the fake home."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / ".local/state"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.setenv("ROOST_CONFIG_DIR", str(tmp_path / "roost-config"))
    monkeypatch.setenv("ROOST_STATE_DIR", str(tmp_path / "roost-state"))
    monkeypatch.setenv("ROOST_CACHE_DIR", str(tmp_path / "roost-cache"))
    monkeypatch.setenv("ROOST_LOG_DIR", str(tmp_path / "roost-log"))
    monkeypatch.setenv("ROOST_DATA_DIR", str(tmp_path / "roost-data"))
    monkeypatch.setenv("ROOST_RUNTIME_DIR", str(tmp_path / "roost-run"))
    monkeypatch.setenv("VELLUM_PLATFORM_URL", "http://127.0.0.1:9")
    # A private socket that no server listens on: nothing can reach the user's tmux by accident.
    monkeypatch.setenv("ROOST_TMUX_SOCKET", str(tmp_path / "no-tmux-server"))
    for variable in ("TMUX", "TMUX_PANE", "VELLUM_ENVIRONMENT", "VELLUM_LOCKFILE_DIR", "NO_COLOR"):
        monkeypatch.delenv(variable, raising=False)
    return home


@pytest.fixture
def tmux_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[TmuxServer]:
    """A private tmux server (its own socket path), killed afterwards; ROOST_TMUX_SOCKET names it.

    The socket lives in a short temporary directory: socket paths are limited to ~100 bytes.
    """
    require("tmux", "ROOST_REQUIRE_TMUX")
    directory = tempfile.mkdtemp(prefix="roost-tmux-")
    server = TmuxServer(TmuxSocket(f"{directory}/sock"))
    monkeypatch.setenv("ROOST_TMUX_SOCKET", f"{directory}/sock")
    try:
        yield server
    finally:
        subprocess.run(server.argv("kill-server"), capture_output=True, check=False)
        shutil.rmtree(directory, ignore_errors=True)


def new_session(server: TmuxServer, name: str, *, windows: int = 1) -> None:
    """Start a detached session running a quiet command, so its activity time stays put."""
    env = {**os.environ, "LANG": "C.UTF-8"}
    subprocess.run(
        server.argv("new-session", "-d", "-s", name, "-x", "80", "-y", "24", "sleep 3600"),
        check=True,
        env=env,
    )
    for _ in range(windows - 1):
        subprocess.run(server.argv("new-window", "-d", "-t", name, "sleep 3600"), check=True)
