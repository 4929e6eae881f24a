"""The shares running for this user, so `roost share --stop` can end them.

Each share writes one file in the runtime directory (`shares_dir`), named after its process
and port and holding its process identity, address and what it shows; never its token, which
lives only in the process serving it. The file is written once when the share starts and
removed when it stops; nothing rewrites it, so no lock is needed. `stop_all` sends SIGUSR1 to
each owner that is still the process that wrote its file (`ProcessIdentity`: a reused PID is
left alone), listed in a file of this user's that nobody else can write; both `roost share`
and the console end their shares on it (the console keeps running). Files of owners that have
died are removed.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from services.core.files import FileError, parse_json, read_bytes
from services.core.paths import state_dir
from services.core.processes import ProcessIdentity

RECORD_LIMIT = 4 * 1024
STOP_SIGNAL = signal.SIGUSR1
"""What `roost share --stop` sends: a share ends on it, a console only ends its shares."""


def shares_dir(environ: Mapping[str, str] | None = None) -> Path:
    """`$ROOST_RUNTIME_DIR/shares`, else `$XDG_RUNTIME_DIR/roost/shares` (the user's own,
    cleared at boot), else `shares` in the state dir: never a guessed place in /tmp, where
    another user could plant files naming processes for `--stop` to signal."""
    env = os.environ if environ is None else environ
    for variable, below in (("ROOST_RUNTIME_DIR", "shares"), ("XDG_RUNTIME_DIR", "roost/shares")):
        if env.get(variable):
            return Path(env[variable]).expanduser() / below
    return state_dir(env) / "shares"


def _foreign(path: Path, mode: int) -> str | None:
    """Only a file this user wrote, that nobody else can write, names a share to signal."""
    if path.stat().st_uid != os.getuid() or mode & 0o022:
        return "not written by roost for this user (owner or mode), ignored"
    return None


@dataclass(frozen=True)
class ShareRecord:
    owner: ProcessIdentity
    bind: str
    port: int
    what: str
    """The session shown ("ada · tmux work"), for `--stop`'s report."""

    @property
    def describe(self) -> str:
        return f"{self.what} on {self.bind}:{self.port} (process {self.owner.pid})"


def register(record: ShareRecord, directory: Path | None = None) -> Path:
    """Write `record`'s file (0600, its directory 0700); returns it for `unregister`."""
    directory = directory or shares_dir()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / f"{record.owner.pid}-{record.port}.json"
    owner = record.owner
    body = {
        "pid": owner.pid,
        "started": owner.started,
        "host": owner.host,
        "bind": record.bind,
        "port": record.port,
        "what": record.what,
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        json.dump(body, file)
    return path


def unregister(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def running(directory: Path | None = None) -> list[tuple[Path, ShareRecord]]:
    """The shares whose files are readable, oldest first; a file that is not one is skipped
    (it is not roost's to judge or delete)."""
    directory = directory or shares_dir()
    try:
        paths = sorted(directory.glob("*.json"), key=lambda path: path.stat().st_mtime)
    except OSError:
        return []
    found = []
    for path in paths:
        with contextlib.suppress(FileError, FileNotFoundError, KeyError, TypeError, ValueError):
            record = _record(
                parse_json(path, read_bytes(path, RECORD_LIMIT, refuse=_foreign).decode())
            )
            if record is not None:
                found.append((path, record))
    return found


def _record(body: object) -> ShareRecord | None:
    if not isinstance(body, dict):
        return None
    started = body["started"]
    owner = ProcessIdentity(
        int(body["pid"]), None if started is None else str(started), str(body["host"])
    )
    return ShareRecord(owner, str(body["bind"]), int(body["port"]), str(body["what"]))


def stop_all(directory: Path | None = None) -> list[ShareRecord]:
    """Signal every live share of this user to stop; returns those signalled."""
    stopped = []
    for path, record in running(directory):
        if record.owner.host != socket.gethostname():
            continue  # another machine's process (a shared directory): not ours to signal
        if not record.owner.alive():
            unregister(path)
            continue
        try:
            os.kill(record.owner.pid, STOP_SIGNAL)
        except ProcessLookupError:
            unregister(path)
            continue
        except PermissionError:
            continue
        stopped.append(record)
    return stopped
