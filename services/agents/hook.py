"""`roost hook AGENT [ARGS...]`: what every agent hook runs, in the agent's own process tree.

It records the agent's event as one spool file and does nothing else the agent could notice:
it prints nothing (Claude Code reads a hook's stdout on exit 0 as its opinion), always exits 0,
and never blocks for long (stdin is read for at most `READ_SECONDS`, at most `MAX_PAYLOAD`
bytes kept). The spool, not the state database, because a hook must never wait on a lock; the
console and `roost ps` ingest the files later (spool.py).

A spool file is one JSON object, `{"v": 1, "at": ISO-8601 UTC, "agent", "server": the tmux
socket path from $TMUX, "pane": $TMUX_PANE, "payload": the agent's object}`, written as
`.<name>.tmp` and renamed to `<time_ns>-<pid>.json`, so a reader never sees half a file. A
payload that cannot be read is kept as a minimal event, `{"hook_event_name" (or Codex's "type"):
..., "unreadable": why}`. What went wrong last is one line in `.last-error`, which `roost hooks
status` shows.

Codex runs one `notify` program with the payload as its last argument; `--then PROG ARGS...`
chains the user's own program, started detached with the payload appended once roost is done.

The agent waits for this process, so it imports only the standard library (and the paths module,
itself light, when `$ROOST_AGENT_SPOOL` does not say where the spool is): see
tests/perf/bench_hook.py.
"""

from __future__ import annotations

import json
import os
import re
import select
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

TYPE_CHECKING = False  # typing itself takes milliseconds to import; mypy knows this name
if TYPE_CHECKING:
    from typing import Any

    from services.core.paths import RoostPaths

SPOOL_VERSION = 1
SPOOL_DIR_NAME = "agent-spool"
SPOOL_VARIABLE = "ROOST_AGENT_SPOOL"
"""Where the spool is instead of the state dir's: a container's agents write to a mount the
host's roost reads."""
MAX_PAYLOAD = 256 * 1024
"""The most of an agent's payload kept: a tool's whole input (a file written) can be larger, and
is then kept as a minimal event."""
MAX_SPOOL_FILE = 1024 * 1024
"""No spool file is larger (a payload of control characters grows six times as JSON)."""
READ_SECONDS = 1.0
"""How long stdin is read at most: an agent that never closes it cannot hold the hook."""
MAX_SPOOL_FILES = 10_000
"""Past this many files nobody is draining the spool: new events are dropped, and said so."""
LAST_ERROR_NAME = ".last-error"
THEN = "--then"
STDIN_AGENTS = frozenset({"claude", "gemini"})
"""Agents that pipe the payload to stdin; Codex passes it as the last argument."""

_QUOTED_FIELD = rb'"([a-z_-]{1,32})"\s*:\s*("(?:[^"\\]|\\.){0,512}")'
"""Compiled only for a payload that needs it (re caches it)."""
_KEPT_FIELDS = {"codex": ("type", "thread-id", "turn-id")}
"""The fields worth keeping of a payload too large or broken to parse, per agent (the event's
name first); the first occurrence of each is taken."""
_CLAUDE_FIELDS = ("hook_event_name", "session_id", "tool_use_id")


def main(argv: Sequence[str], environ: Mapping[str, str] | None = None, stdin: int = 0) -> int:
    """Record the event of `argv` (`AGENT [ARGS...]`); 0 whatever happens."""
    env = os.environ if environ is None else environ
    agent = argv[0] if argv else ""
    args = list(argv[1:])
    then: list[str] = []
    payload_text: bytes | None = None
    try:
        if agent in STDIN_AGENTS:
            payload_text, problem = read_stdin(stdin)
        else:
            if len(args) > 1 and args[0] == THEN:
                then = args[1:-1]
            payload_text, problem = (
                (args[-1].encode("utf-8", "surrogateescape"), "") if args else (b"", "no payload")
            )
        payload = parse_payload(payload_text, problem, agent)
        spool_event(spool_directory(env), agent, env, payload)
    except BaseException as error:  # anything at all: the agent must not notice
        _note(env, agent, f"{type(error).__name__}: {error}")
    if then:
        chain(then, payload_text or b"", env, agent)
    return 0


def spool_dir(paths: RoostPaths, environ: Mapping[str, str]) -> Path:
    """Where hooks write their events and roost reads them: `$ROOST_AGENT_SPOOL`, else the
    state dir's `agent-spool`. Raises RoostError when the variable names an unknown user's home."""
    from services.core.paths import expand_user  # loaded already: the caller holds `paths`

    override = environ.get(SPOOL_VARIABLE, "")
    return expand_user(override) if override else paths.state_dir / SPOOL_DIR_NAME


def spool_directory(environ: Mapping[str, str]) -> Path:
    """`spool_dir` for a hook, which needs only the state dir of all `RoostPaths` (the paths
    module finds it without loading platformdirs: tests/perf/bench_hook.py)."""
    override = environ.get(SPOOL_VARIABLE, "")
    if override:
        return Path(override).expanduser()
    from services.core.paths import state_dir

    return state_dir(environ) / SPOOL_DIR_NAME


def spool_name(name: str) -> tuple[int, int] | None:
    """A spool file's (time_ns, pid), or None when `name` is not one."""
    stem, dash, pid = name.removesuffix(".json").partition("-")
    if name.endswith(".json") and dash and stem.isdecimal() and pid.isdecimal():
        return int(stem), int(pid)
    return None


def read_stdin(
    fd: int, limit: int = MAX_PAYLOAD, seconds: float = READ_SECONDS
) -> tuple[bytes, str]:
    """What the agent writes to `fd` (its first `limit` bytes) and why it is incomplete ("" when
    it is not). Stops at end of file, at a complete JSON object (the agent may keep the pipe
    open), or after `seconds`; past `limit`, reads on and drops, so the agent never finds its
    pipe closed while it writes."""
    deadline = time.monotonic() + seconds
    kept = bytearray()
    size = 0
    while True:
        left = deadline - time.monotonic()
        try:
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return bytes(kept), f"stdin still open after {seconds:g} s"
            chunk = os.read(fd, 65536)
        except OSError as error:  # closed, or not something to read
            return bytes(kept), f"stdin unreadable ({error.strerror})"
        if not chunk:
            break
        size += len(chunk)
        if len(kept) < limit:
            kept += chunk[: limit - len(kept)]
            if size <= limit and _complete(kept):
                return bytes(kept), ""
    if size > limit:
        return bytes(kept), f"payload of {size} bytes, more than {limit}"
    return bytes(kept), ""


def _complete(data: bytearray) -> bool:
    if not data.rstrip().endswith(b"}"):
        return False
    try:
        json.loads(data)
    except ValueError:
        return False
    return True


def parse_payload(data: bytes, problem: str, agent: str) -> dict[str, Any]:
    """The agent's JSON object, or a minimal event saying why it is unreadable."""
    if not problem:
        try:
            payload = json.loads(data)
        except (ValueError, RecursionError) as error:
            problem = f"not JSON ({error})"
        else:
            if isinstance(payload, dict):
                return payload
            problem = f"not a JSON object but {type(payload).__name__}"
    fields = _KEPT_FIELDS.get(agent, _CLAUDE_FIELDS)
    minimal: dict[str, Any] = {fields[0]: ""}
    for match in re.finditer(_QUOTED_FIELD, data):
        key = match[1].decode()
        if key in fields and not minimal.get(key):
            try:
                minimal[key] = json.loads(match[2])
            except ValueError:
                continue
    minimal["unreadable"] = problem
    return minimal


def spool_event(
    directory: Path, agent: str, environ: Mapping[str, str], payload: Mapping[str, Any]
) -> Path:
    """Write one event into `directory` (made 0700 if missing); returns its file.

    Raises OSError when it cannot be written, SpoolFull past `MAX_SPOOL_FILES`.
    """
    now = time.time_ns()
    record = {
        "v": SPOOL_VERSION,
        "at": _iso_utc(now),
        "agent": agent,
        "server": tmux_socket(environ.get("TMUX", "")),
        "pane": environ.get("TMUX_PANE", ""),
        "payload": payload,
    }
    # A lone surrogate (JSON allows "\udc80") becomes "?": the database refuses it.
    data = json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "replace")
    if len(data) > MAX_SPOOL_FILE:
        key = _KEPT_FIELDS.get(agent, _CLAUDE_FIELDS)[0]
        name = payload.get(key)
        record["payload"] = {
            key: name[:512] if isinstance(name, str) else "",
            "unreadable": f"{len(data)} bytes as JSON, more than {MAX_SPOOL_FILE}",
        }
        data = json.dumps(record, ensure_ascii=False).encode("utf-8", "replace")
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    with os.scandir(directory) as entries:
        full = sum(1 for _ in entries) >= MAX_SPOOL_FILES
    if full:
        raise SpoolFull(f"{MAX_SPOOL_FILES} files waiting in {directory}: event dropped")
    path = directory / f"{now}-{os.getpid()}.json"
    write_atomic(path, data)
    return path


def _iso_utc(time_ns: int) -> str:
    """`datetime.isoformat` of a UTC time, without loading datetime."""
    seconds, nanoseconds = divmod(time_ns, 1_000_000_000)
    day_time = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    return f"{day_time}.{nanoseconds // 1000:06d}+00:00"


class SpoolFull(Exception):
    """The spool holds `MAX_SPOOL_FILES` files: nobody drains it."""


def tmux_socket(tmux: str) -> str:
    """The socket path in `$TMUX` (`path,server pid,session`); empty outside tmux."""
    parts = tmux.rsplit(",", 2)
    return parts[0] if len(parts) == 3 else ""


def write_atomic(path: Path, data: bytes) -> None:
    """`path` holds `data` (mode 0600), or is not there: written aside, then renamed."""
    temp = path.with_name(f".{path.name}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
        temp.replace(path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def _note(environ: Mapping[str, str], agent: str, problem: str) -> None:
    """Keep `problem` as the spool's last error, if the spool can be written at all."""
    try:
        line = f"{_iso_utc(time.time_ns())} {agent or '?'}: {problem}"
        write_atomic(
            spool_directory(environ) / LAST_ERROR_NAME,
            line.replace("\n", " ")[:1000].encode("utf-8", "replace") + b"\n",
        )
    except BaseException:
        pass  # nowhere left to say it, and the agent must not notice


def chain(then: Sequence[str], payload: bytes, environ: Mapping[str, str], agent: str) -> None:
    """Start the user's own notify program with the payload appended, never waiting for it."""
    try:
        import subprocess  # only Codex chains: the other hooks never pay for it

        subprocess.Popen(
            [*then, payload.decode("utf-8", "surrogateescape")],
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            close_fds=True,
        )
    except BaseException as error:
        _note(environ, agent, f"cannot start {then[0]}: {error}")
