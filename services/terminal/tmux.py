"""tmux servers: which one to talk to, and the sessions it holds.

Blocking on purpose (tmux answers in about a millisecond); the TUI calls it from a worker thread.
Every call passes the socket explicitly when one is configured, so tests and screenshots run
against a private server and never touch the user's.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum

from services.core.errors import RoostError
from services.core.safe_text import printable

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
_PANE_FIELDS = (
    "socket_path",
    "session_id",
    "pane_id",
    "pane_pid",
    "pane_dead",
    "window_activity",
    "window_bell_flag",
    "window_silence_flag",
    "pane_current_command",
    "pane_title",  # last: a program sets it (OSC 0/2), so it may hold anything
)
PANE_FORMAT = _SEPARATOR.join(f"#{{{name}}}" for name in _PANE_FIELDS)
"""`tmux list-panes -a -F PANE_FORMAT` prints lines that `parse_panes` reads."""
_LISTING_FIELDS = (*_FIELDS, *_PANE_FIELDS)
LISTING_FORMAT = _SEPARATOR.join(f"#{{{name}}}" for name in _LISTING_FIELDS)
"""`tmux list-panes -a -F LISTING_FORMAT` prints every pane with its session's fields: a whole
listing in one command (what a host's refresh costs over ssh), read by `parse_listing`."""
COMMAND_NOT_FOUND = 127
"""What a shell exits with when it cannot find the command (tmux, on another machine)."""
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


def server_name(socket: TmuxSocket | None) -> str:
    """The tmux server at `socket` in words: `tmux -L work`, or the default server."""
    return f"tmux {socket}" if socket else "default tmux server"


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
class TmuxPane:
    """One pane as `list-panes -a` shows it: the cheap evidence of what runs in it."""

    id: str
    """tmux's pane id (`%3`), what `$TMUX_PANE` holds inside it."""
    session_id: str
    pid: int
    dead: bool
    """Its command has exited (the pane stays on screen with `remain-on-exit`)."""
    activity: datetime
    """The last output in its window (tmux keeps it per window)."""
    bell: bool
    """Its window rang the bell since someone last looked at it."""
    silence: bool
    """Its window fell silent (only with `monitor-silence` set)."""
    command: str
    """The pane's foreground command (`claude`, `node`, `bash`), as printable text."""
    title: str
    """What the program set with OSC 0/2 (tmux's host name when none), as printable text."""


@dataclass(frozen=True)
class TmuxListing:
    """One look at a server: its state and, when running, its sessions (in tmux's order) and
    every pane of them."""

    state: TmuxState
    sessions: tuple[TmuxSession, ...] = ()
    detail: str = ""
    """Why the state is what it is, in words for the user (empty when running)."""
    panes: tuple[TmuxPane, ...] = ()
    socket_path: str = ""
    """The server's socket, as `$TMUX` names it in its panes (empty until listed)."""


def parse_version(text: str) -> tuple[int, int] | None:
    """`tmux 3.3a` gives (3, 3); development builds such as `tmux master` give None."""
    match = re.search(r"(\d+)\.(\d+)", text)
    return (int(match[1]), int(match[2])) if match else None


class TmuxServer:
    """The tmux server at `socket`, or the default server when no socket is given; on another
    machine when `ssh` is given: the ssh command line that reaches it, without a remote command
    (`Ssh.argv(host)`, ending with the destination)."""

    def __init__(
        self,
        socket: TmuxSocket | None = None,
        executable: str = "tmux",
        timeout: float = 5.0,
        ssh: Sequence[str] | None = None,
    ) -> None:
        self.socket = socket
        self.executable = executable
        self.timeout = timeout
        self.ssh = tuple(ssh) if ssh else None

    def describe(self) -> str:
        server = server_name(self.socket)
        return f"{server} on {self.ssh[-1]}" if self.ssh else server

    def argv(self, *args: str, tty: bool = False) -> list[str]:
        """The command line for `tmux ARGS` aimed at this server; over ssh, the tmux words are
        quoted for the remote shell and `tty` asks ssh for a terminal (to attach)."""
        socket = self.socket.args if self.socket else ()
        return self._over_ssh([self.executable, *socket, *args], tty)

    def _over_ssh(self, argv: list[str], tty: bool = False) -> list[str]:
        """`argv` as it is, or run over ssh. There tmux gets `-u`: ssh passes no locale, and a
        tmux that does not know it speaks UTF-8 writes `_` for every character it doubts (the
        listing's separators among them)."""
        if self.ssh is None:
            return argv
        ssh, *options = self.ssh
        executable, *args = argv
        return [ssh, *(["-t"] if tty else []), *options, shlex.join([executable, "-u", *args])]

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
            result = self._run(self._over_ssh([self.executable, "-V"]))
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
        if self.ssh is not None:
            return self._list_over_ssh(self.ssh[-1])
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
        return self._with_panes(TmuxListing(TmuxState.RUNNING, sessions))

    def _list_over_ssh(self, destination: str) -> TmuxListing:
        """The listing in one command (`LISTING_FORMAT`): over ssh each is a round trip."""
        try:
            result = self._run(self.argv("list-panes", "-a", "-F", LISTING_FORMAT))
        except subprocess.TimeoutExpired:
            return TmuxListing(TmuxState.ERROR, detail=f"no answer within {self.timeout:g} s")
        except OSError as error:
            return TmuxListing(TmuxState.ERROR, detail=f"cannot run ssh: {error.strerror}")
        if result.returncode == COMMAND_NOT_FOUND:
            detail = f"tmux is not installed on {printable(destination)}"
            return TmuxListing(TmuxState.NOT_INSTALLED, detail=detail)
        if result.returncode != 0:
            message = printable(" ".join(result.stderr.split()))  # another machine's words
            if NO_SERVER.search(message):
                return TmuxListing(TmuxState.NO_SERVER, detail=f"{self.describe()} is not running")
            return TmuxListing(
                TmuxState.ERROR, detail=message or f"exit status {result.returncode}"
            )
        return parse_listing(result.stdout)

    def _with_panes(self, listing: TmuxListing) -> TmuxListing:
        """Every pane, and each session's count of panes and dead panes (one more call; a
        failure leaves none)."""
        try:
            result = self._run(self.argv("list-panes", "-a", "-F", PANE_FORMAT))
        except (OSError, subprocess.TimeoutExpired):
            return listing
        socket_path, panes = parse_panes(result.stdout) if result.returncode == 0 else ("", ())
        return _with_pane_counts(listing, socket_path, panes)

    def capture_pane(self, pane: str) -> str:
        """The text on pane `pane`'s screen now, wrapped lines joined, without attributes.
        Raises RoostError when tmux cannot say (the pane is gone)."""
        return self._command(f"read pane {pane}", "capture-pane", "-p", "-J", "-t", pane)

    def send_keys(self, pane: str, *keys: str, literal: bool = False) -> None:
        """Type into pane `pane`: tmux key names (`Enter`, `Escape`, `1`), or with `literal`
        the text itself. Raises RoostError when tmux cannot (the pane is gone)."""
        flags = ("-l",) if literal else ()
        # tmux ends a command at an argument ending in `;` (dropping it) unless it is `\;`.
        typed = (key[:-1] + "\\;" if key.endswith(";") else key for key in keys)
        self._command(f"type into pane {pane}", "send-keys", "-t", pane, *flags, "--", *typed)


def parse_sessions(text: str) -> tuple[TmuxSession, ...]:
    """The sessions in `list-sessions -F LIST_FORMAT` output; ValueError on any other line."""
    return tuple(_parse_session(line) for line in text.splitlines() if line)


def _with_pane_counts(
    listing: TmuxListing, socket_path: str, panes: tuple[TmuxPane, ...]
) -> TmuxListing:
    """`listing` with these panes, and each session's count of panes and dead panes."""
    counts: dict[str, list[int]] = {}
    for pane in panes:
        count = counts.setdefault(pane.session_id, [0, 0])
        count[0] += 1
        count[1] += pane.dead
    sessions = tuple(
        replace(session, panes=counts[session.id][0], dead_panes=counts[session.id][1])
        if session.id in counts
        else session
        for session in listing.sessions
    )
    return replace(listing, sessions=sessions, panes=panes, socket_path=socket_path)


def parse_listing(text: str) -> TmuxListing:
    """A running server's sessions (in tmux's order) and panes from `list-panes -a -F
    LISTING_FORMAT` output; a line that is not one is skipped."""
    sessions: dict[str, TmuxSession] = {}
    pane_lines = []
    width = len(_FIELDS)
    for line in text.split("\n"):
        fields = line.split(_SEPARATOR, len(_LISTING_FIELDS) - 1)
        if len(fields) != len(_LISTING_FIELDS):
            continue
        try:
            session = _parse_session(_SEPARATOR.join(fields[:width]))
        except (ValueError, OverflowError, OSError):
            continue
        sessions.setdefault(session.id, session)
        pane_lines.append(_SEPARATOR.join(fields[width:]))
    socket_path, panes = parse_panes("\n".join(pane_lines))
    listing = TmuxListing(TmuxState.RUNNING, tuple(sessions.values()))
    return _with_pane_counts(listing, socket_path, panes)


def parse_panes(text: str) -> tuple[str, tuple[TmuxPane, ...]]:
    """The socket path and the panes in `list-panes -a -F PANE_FORMAT` output; a line that is
    not one is skipped (a title may hold anything, but it comes last; lines end at `\n` only,
    as tmux ends them: a title may hold the other characters `splitlines` would end one at)."""
    socket_path, panes = "", []
    for line in text.split("\n"):
        fields = line.split(_SEPARATOR, len(_PANE_FIELDS) - 1)
        if len(fields) != len(_PANE_FIELDS):
            continue
        path, session_id, pane_id, pid, dead, activity, bell, silence, command, title = fields
        try:
            pane = TmuxPane(
                id=pane_id,
                session_id=session_id,
                pid=int(pid or 0),
                dead=dead == "1",
                activity=datetime.fromtimestamp(int(activity or 0), UTC),
                bell=bell == "1",
                silence=silence == "1",
                command=printable(command),
                title=printable(title),
            )
        except (ValueError, OverflowError, OSError):
            continue
        socket_path = socket_path or path
        panes.append(pane)
    return socket_path, tuple(panes)


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
