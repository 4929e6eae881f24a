"""tmux servers: which one to talk to, and the sessions it holds.

Blocking on purpose (tmux answers in about a millisecond); the TUI calls it from a worker thread.
Every call passes the socket explicitly when one is configured, so tests and screenshots run
against a private server and never touch the user's.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum

from services.core.errors import RoostError

WATCH_FLAGS_VERSION = (3, 2)
"""`attach -f read-only,ignore-size` (a watcher that cannot shrink the driver) needs this tmux."""

_FIELDS = (
    "session_id",
    "session_name",
    "session_windows",
    "session_attached",
    "session_created",
    "session_activity",
)
_SEPARATOR = "\x1f"  # tmux passes the ASCII unit separator through untouched; names rarely hold it
LIST_FORMAT = _SEPARATOR.join(f"#{{{name}}}" for name in _FIELDS)
"""`tmux list-sessions -F LIST_FORMAT` prints lines that `parse_sessions` reads, wherever tmux
runs (here, in a container, or in a remote session)."""
_PANE_FORMAT = f"#{{session_id}}{_SEPARATOR}#{{pane_dead}}"
NO_SERVER = re.compile(
    r"no server running|error connecting to .*\((No such file|Connection refused)"
)


@dataclass(frozen=True)
class TmuxSocket:
    """A socket name (`tmux -L NAME`) or, when the value contains a `/`, a socket path (`-S`)."""

    value: str

    @property
    def args(self) -> tuple[str, str]:
        return ("-S", self.value) if "/" in self.value else ("-L", self.value)

    def __str__(self) -> str:
        flag, value = self.args
        return f"{flag} {value}"


class TmuxState(StrEnum):
    RUNNING = "running"
    NO_SERVER = "no tmux server"
    NOT_INSTALLED = "tmux not installed"
    ERROR = "error"


@dataclass(frozen=True)
class TmuxSession:
    id: str
    name: str
    windows: int
    attached: int
    """How many clients are attached."""
    created: datetime
    activity: datetime
    panes: int = 0
    dead_panes: int = 0
    """Panes whose command has exited (kept on screen by `remain-on-exit`)."""


@dataclass(frozen=True)
class TmuxListing:
    """One look at a server: its state and, when running, its sessions (in tmux's order)."""

    state: TmuxState
    sessions: tuple[TmuxSession, ...] = ()
    detail: str = ""
    """Why the state is what it is, in words for the user (empty when running)."""


def parse_version(text: str) -> tuple[int, int] | None:
    """`tmux 3.3a` gives (3, 3); development builds such as `tmux master` give None."""
    match = re.search(r"(\d+)\.(\d+)", text)
    return (int(match[1]), int(match[2])) if match else None


class TmuxServer:
    """The tmux server at `socket`, or the default server when no socket is given."""

    def __init__(
        self, socket: TmuxSocket | None = None, executable: str = "tmux", timeout: float = 5.0
    ) -> None:
        self.socket = socket
        self.executable = executable
        self.timeout = timeout

    def describe(self) -> str:
        return f"tmux {self.socket}" if self.socket else "default tmux server"

    def argv(self, *args: str) -> list[str]:
        """The command line for `tmux ARGS` aimed at this server."""
        return [self.executable, *(self.socket.args if self.socket else ()), *args]

    def _run(
        self, argv: Sequence[str], environ: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            argv,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=self.timeout,
            stdin=subprocess.DEVNULL,
            env=None if environ is None else dict(environ),
            check=False,
        )

    def _command(self, what: str, *args: str, environ: Mapping[str, str] | None = None) -> str:
        """The output of `tmux ARGS`; RoostError saying it could not `what` otherwise."""
        try:
            result = self._run(self.argv(*args), environ)
        except (OSError, subprocess.TimeoutExpired) as error:
            raise RoostError(f"cannot {what}: {error}") from None
        if result.returncode != 0:
            raise RoostError(f"cannot {what}: {result.stderr.strip()}")
        return result.stdout

    def version(self) -> str | None:
        """What `tmux -V` prints, or None when tmux is not installed or does not answer."""
        try:
            result = self._run([self.executable, "-V"])
        except (OSError, subprocess.TimeoutExpired):
            return None
        return result.stdout.strip() or None if result.returncode == 0 else None

    def capture(self, session: str, lines: int) -> bytes:
        """What `capture_args` prints for `session`; RoostError when tmux cannot say."""
        what = f"read tmux's history of {session!r}"
        return self._command(what, *capture_args(session, lines)).encode()

    def new_session(self, session: str, size: tuple[int, int], environ: Mapping[str, str]) -> None:
        """Start a detached session `session` of `size` (columns, rows) running tmux's default
        command, in `environ` (the server's own when this starts it)."""
        columns, rows = map(str, size)
        new = ("new-session", "-d", "-s", session, "-x", columns, "-y", rows)
        self._command(f"start tmux session {session!r}", *new, environ=environ)

    def window(self, session: str) -> Window | None:
        """Session `session`'s current window (None when tmux cannot say)."""
        try:
            result = self._run(self.argv(*window_args(session)))
        except (OSError, subprocess.TimeoutExpired):
            return None
        return parse_window(result.stdout) if result.returncode == 0 else None

    def list_sessions(self) -> TmuxListing:
        try:
            result = self._run(self.argv("list-sessions", "-F", LIST_FORMAT))
        except FileNotFoundError:
            return TmuxListing(
                TmuxState.NOT_INSTALLED, detail=f"{self.executable!r} is not on PATH"
            )
        except subprocess.TimeoutExpired:
            return TmuxListing(TmuxState.ERROR, detail=f"no answer within {self.timeout:g} s")
        except OSError as error:
            return TmuxListing(TmuxState.ERROR, detail=f"cannot run tmux: {error.strerror}")
        message = result.stderr.strip()
        if result.returncode != 0:
            if NO_SERVER.search(message):
                return TmuxListing(TmuxState.NO_SERVER, detail=f"{self.describe()} is not running")
            return TmuxListing(
                TmuxState.ERROR, detail=message or f"exit status {result.returncode}"
            )
        try:
            sessions = parse_sessions(result.stdout)
        except ValueError:
            return TmuxListing(TmuxState.ERROR, detail="unexpected list-sessions output")
        return TmuxListing(TmuxState.RUNNING, self._with_panes(sessions))

    def _with_panes(self, sessions: tuple[TmuxSession, ...]) -> tuple[TmuxSession, ...]:
        """Count each session's panes and dead panes (one more call; a failure leaves 0)."""
        try:
            result = self._run(self.argv("list-panes", "-a", "-F", _PANE_FORMAT))
        except (OSError, subprocess.TimeoutExpired):
            return sessions
        counts: dict[str, list[int]] = {}
        for line in result.stdout.splitlines():
            session_id, _, dead = line.partition(_SEPARATOR)
            count = counts.setdefault(session_id, [0, 0])
            count[0] += 1
            count[1] += dead == "1"
        return tuple(
            replace(session, panes=counts[session.id][0], dead_panes=counts[session.id][1])
            if session.id in counts
            else session
            for session in sessions
        )


def parse_sessions(text: str) -> tuple[TmuxSession, ...]:
    """The sessions in `list-sessions -F LIST_FORMAT` output; ValueError on any other line."""
    return tuple(_parse_session(line) for line in text.splitlines() if line)


PIN_HOOK = "73"
"""The index of the hooks that unpin a watched window, in their arrays: the session's other
`client-attached` and `client-detached` hooks are left alone."""
WINDOW_FORMAT = "#{session_attached} #{window_id} #{window_width} #{window_height}"


@dataclass(frozen=True)
class Window:
    """A session's current window, as a watcher is about to find it."""

    clients: int
    """Clients attached to its session."""
    id: str
    columns: int
    rows: int


def window_args(name: str) -> list[str]:
    """`tmux` arguments that print session `name`'s current window for `parse_window`."""
    return ["display-message", "-p", "-t", f"={name}:", WINDOW_FORMAT]


def parse_window(text: str) -> Window | None:
    """What `window_args` printed, or None for anything else."""
    match = re.fullmatch(r"(\d+) (@\d+) (\d+) (\d+)", text.strip())
    if match is None:
        return None
    return Window(int(match[1]), match[2], int(match[3]), int(match[4]))


def attach_args(
    name: str, *, watch: bool, watch_flags: bool, window: Window | None = None
) -> list[str]:
    """`tmux` arguments that attach to session `name` exactly (never a prefix match).

    Watching attaches read-only (`-r`); with `watch_flags` (tmux >= 3.2 wherever it runs) also
    `-f ignore-size,read-only`, so the watcher's size never shrinks the driver's window. With no
    driver attached tmux would size the window to the watcher alone all the same (the program
    in it would see a resize), so a watcher given the session's current `window` while no client
    is attached pins it at its size first (`resize-window` makes its `window-size` manual);
    hooks put it back as soon as another client attaches (the window then follows that one) or
    any client detaches, the watcher included, however it goes: a closed pane, roost's exit, or
    roost killed (its terminal closes, and with it the client).
    """
    target = f"={name}"
    if not watch:
        return ["attach-session", "-t", target]
    if not watch_flags:
        return ["attach-session", "-r", "-t", target]
    attach = ["attach-session", "-r", "-f", "ignore-size,read-only", "-t", target]
    if window is None or window.clients:
        return attach
    unpin = (
        f"set-option -w -u -t {window.id} window-size ; "
        f"set-hook -u -t {window.id} client-attached[{PIN_HOOK}] ; "
        f"set-hook -u -t {window.id} client-detached[{PIN_HOOK}]"
    )
    another = "if -F '#{m:*ignore-size*,#{client_flags}}' {} { " + unpin + " }"
    return [
        *("set-hook", "-t", window.id, f"client-attached[{PIN_HOOK}]", another, ";"),
        *("set-hook", "-t", window.id, f"client-detached[{PIN_HOOK}]", unpin, ";"),
        *("resize-window", "-t", window.id, "-x", str(window.columns), "-y", str(window.rows)),
        ";",
        *attach,
    ]


def capture_args(name: str, lines: int) -> list[str]:
    """`tmux` arguments that print the last `lines` lines of history of session `name`'s
    active pane and its screen, with their colours (`-e`) and wrapped lines joined (`-J`), so
    a pane of another width wraps them again."""
    return ["capture-pane", "-p", "-e", "-J", "-S", f"-{lines}", "-t", f"={name}:"]


def capture_as_stream(captured: bytes) -> bytes:
    """What `capture_args` printed, as a terminal would receive it: lines end in CRLF, the
    blank rows below the last line written are left out, and attributes end with it."""
    return captured.rstrip(b"\n").replace(b"\n", b"\r\n") + b"\x1b[0m"


def supports_watch_flags(version_text: str | None) -> bool:
    """Whether `tmux -V` output names a tmux with `attach -f` (development builds do)."""
    if not version_text:
        return False
    version = parse_version(version_text)
    return version is None or version >= WATCH_FLAGS_VERSION


def _parse_session(line: str) -> TmuxSession:
    session_id, name, windows, attached, created, activity = line.split(_SEPARATOR)
    return TmuxSession(
        id=session_id,
        name=name,
        windows=int(windows),
        attached=int(attached),
        created=datetime.fromtimestamp(int(created), UTC),
        activity=datetime.fromtimestamp(int(activity), UTC),
    )
