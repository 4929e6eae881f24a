"""Commands run to completion in a Docker container (no terminal), and the tmux inside one.

Blocking (the docker SDK is); callers run these in a worker thread. Failures to reach the engine
or the container are a RoostError in one line; a container that is not running says to wake it.

The engine never stops an exec: closing its connection leaves the command running (moby#9098)
and the API has no call to signal it. So every exec roost starts carries a mark in its
environment (`EXEC_MARK`), and `signal_exec` signals the processes that carry it, found by a
second exec that reads the container's /proc with `sh` and `grep` (a container without them
keeps such a command running: there is nothing else to ask).
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, BinaryIO

import docker
from docker.errors import APIError, DockerException, NotFound
from requests.exceptions import RequestException

from services.core.errors import RoostError
from services.docker.engines import Engine, connect, describe_error
from services.terminal.execs import TIMEOUT_EXIT, ExecResult
from services.terminal.tmux import (
    LIST_FORMAT,
    NO_SERVER,
    TmuxListing,
    TmuxState,
    Window,
    parse_sessions,
    parse_window,
    window_args,
)

ENGINE_ERRORS = (DockerException, RequestException, OSError)
EXEC_MARK = "ROOST_EXEC_ID"
NOT_STARTED = (126, 127)
"""Exit codes of an exec whose command could not be run (not found, not executable)."""
SETTLE = 5.0
"""Seconds the engine gets to report an exec whose output ended as no longer running."""
TMUX_TIMEOUT = 10.0

# $0 EXEC_MARK, $1 the mark, $2 the signal, $3 `top` for the exec's own process only (its parent
# is outside the container, so its PPid shows as 0) or `all` for every process that inherited it:
# those are stopped first, so that none runs on (a shell to its next command) while others die.
_SIGNAL_MARKED = """
pids=
for proc in /proc/[0-9]*; do
    grep -q "$0=$1" "$proc/environ" 2>/dev/null || continue
    [ "$3" = all ] || grep -q '^PPid:[[:space:]]*0$' "$proc/status" 2>/dev/null || continue
    pids="$pids ${proc#/proc/}"
done
[ -n "$pids" ] || exit 0
[ "$3" = all ] && kill -STOP $pids 2>/dev/null
kill -"$2" $pids 2>/dev/null
[ "$3" = all ] && kill -CONT $pids 2>/dev/null
"""


def new_mark() -> str:
    """A value for `EXEC_MARK` that names one exec."""
    return uuid.uuid4().hex


def open_engine(engine: Engine) -> docker.DockerClient:
    """A client for `engine`; RoostError when it cannot be reached."""
    try:
        return connect(engine)
    except RoostError:
        raise
    except ENGINE_ERRORS as error:
        raise RoostError(f"cannot reach engine {engine.name}: {describe_error(error)}") from None


def engine_failure(engine: Engine, error: BaseException) -> RoostError:
    """A failed call to `engine` in one line: its own refusal, else the cause of the failure."""
    if isinstance(error, APIError) and error.explanation:
        return RoostError(f"engine {engine.name}: {' '.join(str(error.explanation).split())}")
    return RoostError(f"cannot reach engine {engine.name}: {describe_error(error)}")


def require_running(client: docker.DockerClient, engine: Engine, container: str) -> None:
    """Raise RoostError unless `container` exists on `engine` and is running."""
    try:
        state = client.api.inspect_container(container).get("State") or {}
    except NotFound:
        raise RoostError(f"no container {container} on engine {engine.name}") from None
    except ENGINE_ERRORS as error:
        raise engine_failure(engine, error) from None
    if state.get("Status") == "paused":
        raise RoostError(f"{container} is paused: wake it first")
    if not state.get("Running"):
        raise RoostError(f"{container} is not running: wake it first")


def signal_exec(
    client: docker.DockerClient, container: str, mark: str, signal: str, *, everything: bool
) -> None:
    """Send `signal` (a name: HUP, KILL) to the exec marked `mark`: its own process, or with
    `everything` every process that inherited the mark too. Best effort: failures are ignored,
    since the command may be gone already, and so may the container."""
    argv = ["sh", "-c", _SIGNAL_MARKED, EXEC_MARK, mark, signal, "all" if everything else "top"]
    with contextlib.suppress(*ENGINE_ERRORS):
        exec_id = client.api.exec_create(container, argv)["Id"]
        client.api.exec_start(exec_id)


def finished_exec(
    client: docker.DockerClient, exec_id: str, within: float = SETTLE
) -> Mapping[str, Any] | None:
    """What the engine says of an exec once it is no longer running (its `ExitCode`, and a `Pid`
    of 0 when its command never started); None when it still runs after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        facts = client.api.exec_inspect(exec_id)
        if not facts.get("Running"):
            return facts
        if time.monotonic() > deadline:
            return None
        time.sleep(0.05)  # the engine notes the exit a moment after the output ends


def exec_in_container(
    engine: Engine,
    container: str,
    argv: Sequence[str],
    *,
    timeout: float,
    stdout: BinaryIO | None = None,
    stderr: BinaryIO | None = None,
) -> ExecResult:
    """`argv` in `container` without a terminal, to completion.

    Each stream's output is written to `stdout`/`stderr` as it arrives when given (and not
    kept), else collected into the result. After `timeout` seconds the command and everything it
    started are killed, and the result (exit code TIMEOUT_EXIT) keeps what was collected. A
    command the container cannot run ends with the engine's message and exit code 126 or 127,
    as `docker exec` reports it. Raises RoostError when the engine or the container cannot be
    reached, or the container is not running.
    """
    client = open_engine(engine)
    try:
        require_running(client, engine, container)
        return _run(client, engine, container, argv, timeout, (stdout, stderr))
    except ENGINE_ERRORS as error:
        raise engine_failure(engine, error) from None
    finally:
        client.close()


def run_with(
    client: docker.DockerClient,
    engine: Engine,
    container: str,
    argv: Sequence[str],
    *,
    timeout: float,
) -> ExecResult:
    """`argv` in `container` to completion through an open client, output collected."""
    return _run(client, engine, container, argv, timeout, (None, None))


def _run(
    client: docker.DockerClient,
    engine: Engine,
    container: str,
    argv: Sequence[str],
    timeout: float,
    sinks: tuple[BinaryIO | None, BinaryIO | None],
) -> ExecResult:
    mark = new_mark()
    exec_id = client.api.exec_create(container, list(argv), environment={EXEC_MARK: mark})["Id"]
    stream = client.api.exec_start(exec_id, stream=True, demux=True)
    collected = (bytearray(), bytearray())
    timed_out = threading.Event()

    def stop() -> None:
        timed_out.set()
        signal_exec(client, container, mark, "KILL", everything=True)
        with contextlib.suppress(*ENGINE_ERRORS):  # ends the output where the kill could not
            stream.close()

    watchdog = threading.Timer(timeout, stop)
    watchdog.start()
    try:
        for chunks in stream:
            for chunk, sink, kept in zip(chunks, sinks, collected, strict=True):
                if not chunk:
                    continue
                if sink is None:
                    kept += chunk
                else:
                    sink.write(chunk)
                    sink.flush()
    finally:
        watchdog.cancel()
        watchdog.join()  # a kill under way finishes before the client is closed
    facts = None if timed_out.is_set() else finished_exec(client, exec_id)
    if facts is None:
        if not timed_out.is_set():  # its output ended but it still runs: stop it all the same
            stop()
        return ExecResult(TIMEOUT_EXIT, bytes(collected[0]), bytes(collected[1]), timed_out=True)
    return ExecResult(int(facts.get("ExitCode") or 0), bytes(collected[0]), bytes(collected[1]))


def container_tmux_sessions(engine: Engine, container: str) -> TmuxListing:
    """The sessions of the tmux server in `container` (its default socket), as
    `TmuxServer.list_sessions` reports a local one; a failure is an ERROR listing, never raised.
    Pane counts are not asked for (they stay 0)."""
    try:
        result = exec_in_container(
            engine, container, ["tmux", "list-sessions", "-F", LIST_FORMAT], timeout=TMUX_TIMEOUT
        )
    except RoostError as error:
        return TmuxListing(TmuxState.ERROR, detail=str(error))
    message = result.stderr.decode(errors="replace").strip()
    if result.exit_code in NOT_STARTED:
        return TmuxListing(TmuxState.NOT_INSTALLED, detail=f"no tmux in {container}")
    if result.timed_out:
        return TmuxListing(TmuxState.ERROR, detail=f"no answer within {TMUX_TIMEOUT:g} s")
    if result.exit_code != 0:
        if NO_SERVER.search(message):
            return TmuxListing(TmuxState.NO_SERVER, detail=f"no tmux server in {container}")
        return TmuxListing(TmuxState.ERROR, detail=message or f"exit status {result.exit_code}")
    try:
        sessions = parse_sessions(result.stdout.decode(errors="replace"))
    except ValueError:
        return TmuxListing(TmuxState.ERROR, detail="unexpected list-sessions output")
    return TmuxListing(TmuxState.RUNNING, sessions)


def container_tmux_version(engine: Engine, container: str) -> str | None:
    """What `tmux -V` prints in `container` (for `tmux.supports_watch_flags`), or None when
    tmux is not there. Raises RoostError when the engine or the container cannot be reached,
    or the container is not running: nothing there to attach to."""
    result = exec_in_container(engine, container, ["tmux", "-V"], timeout=TMUX_TIMEOUT)
    text = result.stdout.decode(errors="replace").strip()
    return text or None if result.exit_code == 0 else None


def container_tmux_window(engine: Engine, container: str, session: str) -> Window | None:
    """Session `session`'s current window in `container` (None when tmux cannot say)."""
    try:
        result = exec_in_container(
            engine, container, ["tmux", *window_args(session)], timeout=TMUX_TIMEOUT
        )
    except RoostError:
        return None
    return parse_window(result.stdout.decode(errors="replace")) if result.exit_code == 0 else None
