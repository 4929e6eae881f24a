"""The system `ssh` client with roost's options: one multiplexed connection per host, no prompt
ever (no password, no host key question), and ssh's failures told apart in one line each.

roost never holds a key or a password: ssh's own configuration (or `[ssh] config`) decides users,
ports, keys and jump hosts. Connections are shared through a control socket per host in roost's
runtime directory (mode 0700), so a refresh of many hosts costs one round trip each, not one
handshake each.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import shlex
import subprocess
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from services.core.config import Host
from services.core.errors import RoostError
from services.core.safe_text import printable

CONNECT_TIMEOUT_SECONDS = 5
PERSIST_SECONDS = 300
"""How long an idle shared connection stays up after its last use."""
ALIVE_INTERVAL_SECONDS = 15
"""A keep-alive every this often; three unanswered ones drop the connection."""
MAX_STDOUT_BYTES = 8 * 1024 * 1024
MAX_STDERR_BYTES = 16 * 1024
SSH_FAILED = 255
"""ssh's own exit status when it, not the remote command, failed."""


class HostProblem(StrEnum):
    """Why ssh could not run a command on a host."""

    UNREACHABLE = "unreachable"
    HOST_KEY = "unknown host key"
    CHANGED_HOST_KEY = "changed host key"
    AUTH = "auth refused"
    TIMEOUT = "timeout"
    NO_CLIENT = "no ssh client"
    CONTROL_DIR = "no control directory"
    """The shared connections' directory cannot be made private here."""


class HostError(RoostError):
    """ssh could not run a command on `host`; the message says why in one line, and what to do."""

    def __init__(self, host: Host, problem: HostProblem, message: str) -> None:
        self.host, self.problem = host, problem
        super().__init__(f"host {host.name} ({printable(host.ssh)}): {message}")


@dataclass(frozen=True)
class SshResult:
    """What a remote command gave back; its own non-zero exit is a result, not an error."""

    exit_code: int
    stdout: bytes
    """Capped at the `limit` given to `run`."""
    stderr: str
    """Capped, as printable text."""


_HOST_KEY_CHANGED = re.compile(
    r"REMOTE HOST IDENTIFICATION HAS CHANGED|Host key for .* has changed"
)
_HOST_KEY_UNKNOWN = re.compile(r"host key is known|Host key verification failed")
_AUTH = re.compile(r"Permission denied|Too many authentication failures|no matching .*method")
_TIMEOUT = re.compile(r"timed out", re.IGNORECASE)
_UNREACHABLE = re.compile(
    r"^ssh: |Connection refused|Connection closed|Connection reset|No route to host|"
    r"Could not resolve|Network is unreachable|kex_exchange_identification|Broken pipe",
    re.MULTILINE,
)


class Ssh:
    """Runs commands on hosts with the system ssh client and roost's options."""

    def __init__(
        self,
        control_dir: Path,
        config_file: Path | None = None,
        *,
        executable: str = "ssh",
        connect_timeout: int = CONNECT_TIMEOUT_SECONDS,
    ) -> None:
        self.control_dir = control_dir
        self.config_file = config_file
        self.executable = executable
        self.connect_timeout = connect_timeout

    def control_path(self, host: Host) -> Path:
        """The shared connection's socket: a hash of the destination and the config file, so
        the path stays short (unix sockets allow about 104 bytes) and never holds a `%`,
        which ssh would expand."""
        key = f"{self.config_file or ''}\0{host.ssh}".encode()
        return self.control_dir / hashlib.sha256(key).hexdigest()[:16]

    def options(self, host: Host) -> list[str]:
        """ssh's options for `host`, before its destination."""
        config = ["-F", str(self.config_file)] if self.config_file else []
        return [
            *config,
            *("-S", str(self.control_path(host))),
            *("-o", "ControlMaster=auto"),
            *("-o", f"ControlPersist={PERSIST_SECONDS}"),
            *("-o", "BatchMode=yes"),
            *("-o", "StrictHostKeyChecking=yes"),
            *("-o", f"ConnectTimeout={self.connect_timeout}"),
            *("-o", f"ServerAliveInterval={ALIVE_INTERVAL_SECONDS}"),
            *("-o", "ServerAliveCountMax=3"),
        ]

    def argv(self, host: Host, *remote: str, tty: bool = False) -> list[str]:
        """The whole command line running `remote` on `host` (its words quoted for the remote
        shell), or ssh's login shell there when `remote` is empty; `tty` asks for a terminal.
        Makes the control directory, so that whoever runs the line finds it (when it cannot,
        ssh says so when run; `run` says it first)."""
        with contextlib.suppress(RoostError):
            self.prepare()
        command = [shlex.join(remote)] if remote else []
        return [
            self.executable,
            *self.options(host),
            *(["-t"] if tty else []),
            "--",
            host.ssh,
            *command,
        ]

    def prepare(self) -> None:
        """Make the control directory, private (mode 0700) whoever made it before. Raises
        RoostError when it cannot."""
        try:
            self.control_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            self.control_dir.chmod(0o700)
        except OSError as error:
            raise RoostError(
                f"cannot make ssh's control directory {self.control_dir} private: "
                f"{error.strerror} (ROOST_RUNTIME_DIR moves it)"
            ) from None

    def accept_hint(self, host: Host) -> str:
        """The command that shows a host's key to the user, to accept it by hand."""
        config = ["-F", str(self.config_file)] if self.config_file else []
        return printable(shlex.join([self.executable, *config, host.ssh]))

    async def run(
        self,
        host: Host,
        *remote: str,
        timeout: float,  # noqa: ASYNC109 (running out of time is a HostError of its own)
        limit: int = MAX_STDOUT_BYTES,
    ) -> SshResult:
        """Run `remote` on `host`; HostError when ssh itself fails (unreachable, host key,
        authentication, no answer within `timeout`)."""
        try:
            self.prepare()
        except RoostError as error:
            raise HostError(host, HostProblem.CONTROL_DIR, str(error)) from None
        argv = self.argv(host, *remote)
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        except OSError as error:
            raise HostError(
                host, HostProblem.NO_CLIENT, f"cannot run {self.executable!r}: {error.strerror}"
            ) from None
        assert process.stdout is not None and process.stderr is not None
        try:
            async with asyncio.timeout(timeout):
                stdout, stderr = await asyncio.gather(
                    _read_capped(process.stdout, limit),
                    _read_capped(process.stderr, MAX_STDERR_BYTES),
                )
                exit_code = await process.wait()
        except TimeoutError:
            raise HostError(host, HostProblem.TIMEOUT, f"no answer within {timeout:g} s") from None
        finally:
            if process.returncode is None:
                process.kill()
                # The shared connection holds our pipes (ssh hands them to it): close our ends,
                # or waiting would last as long as the remote command.
                process._transport.close()  # type: ignore[attr-defined]
                await process.wait()
        text = stderr.decode(errors="replace")
        if exit_code == SSH_FAILED:
            failure = self.failure(host, text)
            if failure is not None:
                raise failure
        return SshResult(exit_code, stdout, printable(text.strip(), keep_newlines=True))

    async def shared(self, host: Host) -> bool:
        """Whether a shared connection to `host` is up (`ssh -O check`): what makes every
        command after the first one round trip, not one handshake."""
        argv = [self.executable, *self.options(host), "-O", "check", "--", host.ssh]
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        except OSError:
            return False
        try:
            async with asyncio.timeout(self.connect_timeout):
                return await process.wait() == 0
        except TimeoutError:
            process.kill()
            await process.wait()
            return False

    def failure(self, host: Host, stderr: str) -> HostError | None:
        """What ssh's own error output means, or None when it is not ssh's (the remote
        command's)."""
        accept = self.accept_hint(host)
        if _HOST_KEY_CHANGED.search(stderr):
            return HostError(
                host,
                HostProblem.CHANGED_HOST_KEY,
                "its host key CHANGED: if it was reinstalled, remove the old key with "
                f"ssh-keygen -R and accept the new one by running `{accept}` once by hand; "
                "otherwise someone may be intercepting the connection",
            )
        if _HOST_KEY_UNKNOWN.search(stderr):
            return HostError(
                host,
                HostProblem.HOST_KEY,
                f"its host key is not known: run `{accept}` once by hand to check and accept "
                "it (roost never answers a host key prompt)",
            )
        if _AUTH.search(stderr):
            return HostError(
                host,
                HostProblem.AUTH,
                "refused key authentication (roost never asks for a password): load the key "
                "in ssh-agent or set IdentityFile for it in your ssh config",
            )
        reason = _last_line(stderr)
        if _TIMEOUT.search(stderr):
            return HostError(host, HostProblem.TIMEOUT, reason)
        if _UNREACHABLE.search(stderr):
            return HostError(host, HostProblem.UNREACHABLE, reason)
        return None


async def _read_capped(stream: asyncio.StreamReader, limit: int) -> bytes:
    """The first `limit` bytes of `stream`; the rest is read and dropped, so the writer is
    never blocked on a full pipe."""
    kept = bytearray()
    while chunk := await stream.read(64 * 1024):
        kept += chunk[: max(0, limit - len(kept))]
    return bytes(kept)


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return printable(lines[-1].removeprefix("ssh: ")) if lines else "ssh failed"
