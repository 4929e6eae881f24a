"""A private sshd on 127.0.0.1 for the hosts tests: its own host key, a generated client key,
its own config and port, and a private "remote" tmux server; never the system sshd, the user's
keys, ~/.ssh or port 22.

`ssh_host` yields an `SshHost`: `config_file` is an ssh config with a `Host` alias for it (its
port, the client key, a known_hosts holding its host key), `host` the `Host` roost is given,
`tmux_socket` the remote tmux server's socket (`tmux` the same server, reached directly: it is
this machine), `log` sshd's log (`handshakes()` counts the connections it accepted), and
`stop()` / `start()` take the host down (every connection dropped) and back. The demo's hosts
scene (tests/demo.py) runs one too, through `ssh_server`, its hosts extra aliases of it.

Skipped when sshd is not installed, unless ROOST_REQUIRE_SSH is set (CI sets it).
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from services.core.config import Host
from services.hosts.ssh import Ssh
from services.terminal.tmux import TmuxServer, TmuxSocket

ALIAS = "roost-test-host"
DOWN_ALIAS = "roost-down-host"
"""An alias for a port where nothing listens: a host that is down."""
SSHD_CANDIDATES = ("/usr/sbin/sshd", "/usr/local/sbin/sshd")
START_TIMEOUT = 10.0


def sshd_path() -> str | None:
    """sshd must be run by its absolute path (it re-executes itself)."""
    found = shutil.which("sshd")
    if found:
        return found
    return next((path for path in SSHD_CANDIDATES if os.access(path, os.X_OK)), None)


class SshHost:
    """A private sshd and everything a client needs to reach it; `aliases` are `Host` aliases
    for it besides ALIAS."""

    def __init__(self, sshd: str, directory: Path, aliases: Sequence[str] = ()) -> None:
        self.sshd = sshd
        self.directory = directory
        self.port = _free_port()
        self.user = getpass.getuser()
        self.log = directory / "sshd.log"
        self.config_file = directory / "ssh_config"
        self.known_hosts = directory / "known_hosts"
        self.tmux_socket = str(directory / "tmux")
        self.tmux = TmuxServer(TmuxSocket(self.tmux_socket))
        self.host = Host(name="devbox", ssh=ALIAS, tmux_socket=self.tmux_socket)
        self.control_dir = directory / "runtime" / "ssh"
        """Where `Context.ssh` keeps the control sockets too (ROOST_RUNTIME_DIR is set)."""
        self.ssh = Ssh(self.control_dir, self.config_file)
        self._process: subprocess.Popen[bytes] | None = None
        host_key, client_key = directory / "host_key", directory / "client_key"
        for key in (host_key, client_key):
            subprocess.run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "roost-test", "-f", key],
                check=True,
            )
        (directory / "authorized_keys").write_text(client_key.with_suffix(".pub").read_text())
        public = host_key.with_suffix(".pub").read_text().split()
        self.host_key_line = f"[127.0.0.1]:{self.port} {public[0]} {public[1]}\n"
        self.known_hosts.write_text(self.host_key_line)
        (directory / "sshd_config").write_text(
            "\n".join(
                [
                    f"Port {self.port}",
                    "ListenAddress 127.0.0.1",
                    f"HostKey {host_key}",
                    f"PidFile {directory / 'sshd.pid'}",
                    f"AuthorizedKeysFile {directory / 'authorized_keys'}",
                    f"AllowUsers {self.user}",
                    "PermitRootLogin prohibit-password",
                    "PubkeyAuthentication yes",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "UsePAM no",
                    "StrictModes no",  # tmp directories are world-writable
                    "LogLevel VERBOSE",
                    "PrintMotd no",
                    "PrintLastLog no",
                    "MaxSessions 100",
                    "MaxStartups 100:30:200",
                    # The default tmux server on the "remote" side is private too. SHLVL=1:
                    # bash run by sshd for a command reads ~/.bashrc only as a top-level shell,
                    # so the tests' commands do not depend on this machine's shell set-up
                    # (a pyenv init there costs 0.3 s a command and takes a lock).
                    f"SetEnv TMUX_TMPDIR={directory} SHLVL=1",
                    "",
                ]
            )
        )
        self.config_file.write_text(
            "\n".join(
                [
                    f"Host {' '.join((ALIAS, *aliases))}",
                    "    HostName 127.0.0.1",
                    f"    Port {self.port}",
                    f"    User {self.user}",
                    f"    IdentityFile {client_key}",
                    "    IdentitiesOnly yes",
                    "    IdentityAgent none",
                    f"    UserKnownHostsFile {self.known_hosts}",
                    "    GlobalKnownHostsFile /dev/null",
                    "    PasswordAuthentication no",
                    "    KbdInteractiveAuthentication no",
                    "    LogLevel ERROR",
                    f"Host {DOWN_ALIAS}",
                    "    HostName 127.0.0.1",
                    f"    Port {_free_port()}",
                    "",
                ]
            )
        )

    def config_toml(self, *hosts: Host) -> str:
        """config.toml's text naming this ssh config and `hosts` (default: this host)."""
        lines = ["[ssh]", f'config = "{self.config_file}"']
        for host in hosts or (self.host,):
            lines += ["[[hosts]]", f'name = "{host.name}"', f'ssh = "{host.ssh}"']
            if host.tmux_socket:
                lines.append(f'tmux_socket = "{host.tmux_socket}"')
            if host.docker:
                lines.append("docker = true")
        return "\n".join(lines) + "\n"

    def start(self) -> None:
        """Start sshd and wait until it listens."""
        assert self._process is None, "already started"
        if os.geteuid() == 0:
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation
        offset = self.log.stat().st_size if self.log.exists() else 0
        self._process = subprocess.Popen(
            [self.sshd, "-D", "-f", str(self.directory / "sshd_config"), "-E", str(self.log)],
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while "Server listening on" not in self._log_text(offset):
            if self._process.poll() is not None:
                raise RuntimeError(f"sshd exited: {self._log_text(0)}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"sshd did not start: {self._log_text(0)}")
            time.sleep(0.02)

    def stop(self) -> None:
        """Stop sshd and drop every connection it holds (so shared connections break)."""
        process, self._process = self._process, None
        if process is None:
            return
        victims = [process.pid, *_descendants(process.pid)]
        for pid in victims:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        process.wait()

    def close(self) -> None:
        self.stop()
        subprocess.run(self.tmux.argv("kill-server"), capture_output=True, check=False)

    def handshakes(self) -> int:
        """How many connections sshd has accepted a key on (one per ssh handshake)."""
        return self._log_text(0).count("Accepted publickey")

    def forget_host_key(self) -> None:
        """Empty the client's known_hosts: the host key becomes unknown."""
        self.known_hosts.write_text("")

    def _log_text(self, offset: int) -> str:
        try:
            with self.log.open("rb") as file:
                file.seek(offset)
                return file.read().decode(errors="replace")
        except FileNotFoundError:
            return ""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _descendants(pid: int) -> list[int]:
    """Every process below `pid` (sshd's connection handlers and their sessions), from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rpartition(")")[2].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found, queue = [], [pid]
    while queue:
        for child in children.get(queue.pop(), []):
            found.append(child)
            queue.append(child)
    return found


def require_ssh() -> str:
    """sshd's path; skips when sshd or ssh is not installed, unless ROOST_REQUIRE_SSH is set:
    then fails, so CI cannot skip it."""
    sshd = sshd_path()
    if sshd is None or shutil.which("ssh") is None:
        message = "sshd or ssh is not installed"
        if os.environ.get("ROOST_REQUIRE_SSH"):
            pytest.fail(f"{message}, and ROOST_REQUIRE_SSH is set")
        pytest.skip(f"{message} (set ROOST_REQUIRE_SSH=1 to make this a failure)")
    return sshd


@contextlib.contextmanager
def ssh_server(sshd: str, aliases: Sequence[str] = ()) -> Iterator[SshHost]:
    """A private sshd on 127.0.0.1, started; stopped (its tmux server killed, its files removed)
    afterwards. Its files live in a short temporary directory: socket paths are limited to
    ~100 bytes."""
    directory = Path(tempfile.mkdtemp(prefix="roost-ssh-"))
    host = SshHost(sshd, directory, aliases)
    try:
        host.start()
        yield host
    finally:
        host.close()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def ssh_host(monkeypatch: pytest.MonkeyPatch) -> Iterator[SshHost]:
    """A private sshd on 127.0.0.1 (`ssh_server`). ROOST_RUNTIME_DIR points into its directory,
    so control sockets are private to the test."""
    with ssh_server(require_ssh()) as host:
        monkeypatch.setenv("ROOST_RUNTIME_DIR", str(host.control_dir.parent))
        yield host
