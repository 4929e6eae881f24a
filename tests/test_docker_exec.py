"""Terminals and commands in real containers of the test image on a real engine: typing, size,
exit status, hang-up on close, tmux inside (shell, attach, a watcher that can neither type nor
resize), the clear one-line errors, and commands run to completion with a timeout.

Each test starts a container of its own (a sleeper; removed afterwards, whatever happened).
Skipped without an engine unless ROOST_REQUIRE_DOCKER is set.
"""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import pytest

from services.core.errors import RoostError
from services.docker.engines import Engine
from services.terminal.backend import SessionError, TerminalBackend, TerminalSize
from services.terminal.container_commands import (
    container_tmux_sessions,
    container_tmux_version,
    exec_in_container,
)
from services.terminal.docker_exec import DockerExec, shell_argv
from services.terminal.execs import TIMEOUT_EXIT, ExecResult
from services.terminal.tmux import TmuxListing, TmuxState, attach_args, supports_watch_flags
from tests.conftest import require
from tests.docker_fixtures import GONE, Sandbox

pytestmark = pytest.mark.docker

SIZE = TerminalSize(100, 30)
DEADLINE = 20.0
"""Seconds any one wait may take before the test fails instead of hanging."""
DONE = '; echo "<""done>"\r'
"""Typed after a command: the shell prints `<done>` once it ran (its echo shows `<""done>`)."""


@pytest.fixture
def container(sandbox: Sandbox) -> str:
    """A running container of the test image (it has busybox sh and tmux, no bash)."""
    name = sandbox.name()
    sandbox.container(name).start()
    return name


@pytest.fixture
async def sessions() -> AsyncIterator[list[DockerExec]]:
    """Sessions a test opens, closed after it."""
    opened: list[DockerExec] = []
    yield opened
    for session in opened:
        await session.close()


async def open_exec(
    sessions: list[DockerExec],
    engine: Engine,
    container: str,
    argv: Sequence[str],
    size: TerminalSize = SIZE,
    **options: Any,
) -> DockerExec:
    session = DockerExec(engine, container, argv, **options)
    sessions.append(session)
    async with asyncio.timeout(DEADLINE):
        await session.start(size)
    return session


async def read_until(session: DockerExec, wanted: bytes, count: int = 1) -> bytes:
    """Output until `wanted` has appeared `count` times, or to the end."""
    seen = b""
    async with asyncio.timeout(DEADLINE):
        while seen.count(wanted) < count:
            chunk = await session.read()
            if not chunk:
                break
            seen += chunk
    return seen


async def read_to_end(session: DockerExec) -> bytes:
    return await read_until(session, b"\0never printed\0")


async def run_line(session: DockerExec, command: str) -> str:
    """Type `command` into the shell and return what it printed until it finished."""
    session.write((command + DONE).encode())
    return (await read_until(session, b"<done>")).decode(errors="replace")


async def in_container(engine: Engine, container: str, argv: Sequence[str]) -> ExecResult:
    return await asyncio.to_thread(exec_in_container, engine, container, argv, timeout=DEADLINE)


async def processes(engine: Engine, container: str) -> str:
    return (await in_container(engine, container, ["ps", "-o", "args"])).stdout.decode()


async def tmux_listing(engine: Engine, container: str) -> TmuxListing:
    return await asyncio.to_thread(container_tmux_sessions, engine, container)


async def window_size(engine: Engine, container: str, session: str) -> str:
    size = "#{window_width}x#{window_height}"
    argv = ["tmux", "display-message", "-p", "-t", f"={session}:", size]
    return (await in_container(engine, container, argv)).stdout.decode().strip()


async def pane_text(engine: Engine, container: str, session: str) -> str:
    argv = ["tmux", "capture-pane", "-p", "-t", f"={session}:"]
    return (await in_container(engine, container, argv)).stdout.decode()


async def shows_size(session: DockerExec, size: TerminalSize) -> None:
    """Wait until `stty` in the session reports `size` (the engine applies sizes a moment after
    the command starts, as `docker exec` does)."""

    async def sized() -> bool:
        return f"{size.rows} {size.columns}\r\n" in await run_line(session, "stty size")

    await eventually(sized, f"saw {size.rows} rows of {size.columns} columns")


async def eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Await `check()` (a coroutine function) until it is true; fail after DEADLINE."""
    deadline = time.monotonic() + DEADLINE
    while not await check():
        assert time.monotonic() < deadline, f"never {what}"


# --- A terminal in a container ----------------------------------------------------------------


async def test_typing_is_echoed_and_run(
    engine: Engine, container: str, sessions: list[DockerExec]
) -> None:
    session = await open_exec(sessions, engine, container, ["sh"])
    backend: TerminalBackend = session  # mypy checks that it is one

    backend.write(b"echo hi\r")
    seen = await read_until(session, b"hi", count=2)  # the echo of the line, then its output

    assert seen.count(b"hi") >= 2
    assert b"hi\r\n" in seen
    assert session.description == f"sh in {container} on engine {engine.name}"


async def test_the_command_sees_the_start_size_then_each_resize(
    engine: Engine, container: str, sessions: list[DockerExec]
) -> None:
    session = await open_exec(sessions, engine, container, ["sh"])

    await shows_size(session, SIZE)
    session.resize(TerminalSize(120, 40))
    await shows_size(session, TerminalSize(120, 40))


async def test_a_resize_while_starting_is_applied_once_started(
    engine: Engine, container: str, sessions: list[DockerExec]
) -> None:
    session = DockerExec(engine, container, ["sh"])
    sessions.append(session)
    starting = asyncio.ensure_future(session.start(SIZE))
    await asyncio.sleep(0)  # start() runs up to its wait for the engine
    assert not starting.done()
    session.resize(TerminalSize(90, 20))
    async with asyncio.timeout(DEADLINE):
        await starting

    await shows_size(session, TerminalSize(90, 20))


async def test_the_terminal_environment_is_set(
    engine: Engine, container: str, sessions: list[DockerExec]
) -> None:
    session = await open_exec(sessions, engine, container, ["sh"])

    shown = await run_line(session, 'echo "[$TERM $COLORTERM $LANG]"')

    assert "[xterm-256color truecolor C.UTF-8]" in shown


async def test_the_exit_status_is_the_commands(
    engine: Engine, container: str, sessions: list[DockerExec]
) -> None:
    session = await open_exec(sessions, engine, container, ["sh"])

    session.write(b"exit 3\r")
    await read_to_end(session)

    assert session.exit_status == 3
    assert await session.read() == b""


async def test_close_hangs_the_command_up(
    engine: Engine, container: str, sessions: list[DockerExec]
) -> None:
    """The engine keeps an exec running when its connection closes: close() must stop it."""
    session = await open_exec(sessions, engine, container, ["sh", "-c", "sleep 987"])

    async with asyncio.timeout(DEADLINE):
        await session.close()

    assert session.exit_status == 128 + 1  # SIGHUP
    assert "sleep 987" not in await processes(engine, container)


async def test_start_again_after_the_end_opens_a_new_session(
    engine: Engine, container: str, sessions: list[DockerExec]
) -> None:
    session = await open_exec(sessions, engine, container, ["sh"])
    session.write(b"exit 4\r")
    await read_to_end(session)

    async with asyncio.timeout(DEADLINE):
        await session.start(SIZE)

    assert session.exit_status is None
    assert "<done>" in await run_line(session, "true")


async def test_the_docker_cli_carries_the_session_where_the_sdk_cannot(
    engine: Engine, container: str, sessions: list[DockerExec]
) -> None:
    """ssh engines go through the docker CLI; forced here, against the same engine."""
    require("docker", "ROOST_REQUIRE_DOCKER")
    session = await open_exec(sessions, engine, container, ["sh"], via_cli=True)

    await shows_size(session, SIZE)
    session.resize(TerminalSize(120, 40))
    await shows_size(session, TerminalSize(120, 40))
    session.write(b"exit 5\r")
    await read_to_end(session)
    assert session.exit_status == 5


async def test_closing_a_cli_session_hangs_up_the_command_in_the_container(
    engine: Engine, container: str, sessions: list[DockerExec]
) -> None:
    require("docker", "ROOST_REQUIRE_DOCKER")
    session = await open_exec(sessions, engine, container, ["sh", "-c", "sleep 988"], via_cli=True)

    async def started() -> bool:
        return "sleep 988" in await processes(engine, container)

    await eventually(started, "started sleep 988")  # the CLI's own exec is under way
    async with asyncio.timeout(DEADLINE):
        await session.close()

    assert "sleep 988" not in await processes(engine, container)


# --- tmux in the container ----------------------------------------------------------------


async def test_the_shell_is_a_tmux_session_that_outlives_the_terminal(
    engine: Engine, container: str, sessions: list[DockerExec]
) -> None:
    session = await open_exec(sessions, engine, container, shell_argv("alpha"))

    async def listed() -> bool:
        listing = await tmux_listing(engine, container)
        return [s.name for s in listing.sessions] == ["alpha"] and listing.sessions[0].attached == 1

    await eventually(listed, "listed session alpha with one client")
    async with asyncio.timeout(DEADLINE):
        await session.close()

    listing = await tmux_listing(engine, container)
    assert listing.state is TmuxState.RUNNING
    assert [(s.name, s.attached) for s in listing.sessions] == [("alpha", 0)]


async def test_the_shell_is_sh_where_there_is_no_tmux_nor_bash(
    engine: Engine, container: str, sessions: list[DockerExec]
) -> None:
    assert (await in_container(engine, container, ["rm", "/usr/bin/tmux"])).exit_code == 0
    session = await open_exec(sessions, engine, container, shell_argv("alpha"))

    shown = await run_line(session, 'echo "[$0|$TMUX]"')

    assert "[sh|]" in shown


async def test_attach_drives_a_session_made_in_the_container(
    engine: Engine, container: str, sessions: list[DockerExec]
) -> None:
    await new_tmux_session(engine, container, "work")
    argv = ["tmux", *attach_args("work", watch=False, watch_flags=False)]
    session = await open_exec(sessions, engine, container, argv)

    session.write(b'echo "typed""-in"\r')

    async def typed() -> bool:
        return "typed-in" in await pane_text(engine, container, "work")

    await eventually(typed, "showed what was typed")


async def test_a_watcher_can_neither_type_nor_resize_the_drivers_window(
    engine: Engine, container: str, sessions: list[DockerExec]
) -> None:
    """tmux sizes a window by the clients that do not ignore size (all of them when every one
    does), so the watcher is measured beside a driver at 80x24 (the window is 80x23 under the
    status line); `window-size smallest` makes any smaller client that counts shrink it."""
    await new_tmux_session(engine, container, "work")
    await in_container(engine, container, ["tmux", "set-option", "-g", "window-size", "smallest"])
    version = await asyncio.to_thread(container_tmux_version, engine, container)
    assert supports_watch_flags(version), version
    drive = ["tmux", *attach_args("work", watch=False, watch_flags=True)]
    driver = await open_exec(sessions, engine, container, drive, size=TerminalSize(80, 24))
    await eventually(lambda: clients_of(engine, container, 1), "attached the driver")

    async def driver_sized() -> bool:
        return await window_size(engine, container, "work") == "80x23"

    await eventually(driver_sized, "sized the window for the driver")
    watch = ["tmux", *attach_args("work", watch=True, watch_flags=True)]
    watcher = await open_exec(sessions, engine, container, watch, size=TerminalSize(50, 10))
    await eventually(lambda: clients_of(engine, container, 2), "attached the watcher")

    watcher.write(b'echo "watcher""-typed"\r')
    driver.write(b'echo "driver""-typed"\r')

    async def driven() -> bool:
        return "driver-typed" in await pane_text(engine, container, "work")

    await eventually(driven, "showed what the driver typed")
    assert "watcher-typed" not in await pane_text(engine, container, "work")
    assert await window_size(engine, container, "work") == "80x23"


async def clients_of(engine: Engine, container: str, count: int) -> bool:
    """Whether the container's only tmux session has `count` clients attached."""
    listing = await tmux_listing(engine, container)
    return [s.attached for s in listing.sessions] == [count]


async def new_tmux_session(engine: Engine, container: str, name: str) -> None:
    argv = ["tmux", "new-session", "-d", "-s", name, "-x", "80", "-y", "24"]
    assert (await in_container(engine, container, argv)).exit_code == 0


async def test_tmux_sessions_are_listed_or_their_absence_explained(
    engine: Engine, container: str
) -> None:
    listing = await tmux_listing(engine, container)
    assert (listing.state, listing.detail) == (
        TmuxState.NO_SERVER,
        f"no tmux server in {container}",
    )

    await new_tmux_session(engine, container, "one")
    await new_tmux_session(engine, container, "two")
    listing = await tmux_listing(engine, container)
    assert listing.state is TmuxState.RUNNING
    assert [(s.name, s.windows, s.attached) for s in listing.sessions] == [
        ("one", 1, 0),
        ("two", 1, 0),
    ]

    await in_container(engine, container, ["tmux", "kill-server"])
    await in_container(engine, container, ["rm", "/usr/bin/tmux"])
    listing = await tmux_listing(engine, container)
    assert (listing.state, listing.detail) == (TmuxState.NOT_INSTALLED, f"no tmux in {container}")
    assert await asyncio.to_thread(container_tmux_version, engine, container) is None


def test_tmux_version_is_read_in_the_container(engine: Engine, container: str) -> None:
    version = container_tmux_version(engine, container)

    assert version is not None
    assert version.startswith("tmux ")


def test_tmux_on_an_unreachable_engine_is_an_error_listing() -> None:
    listing = container_tmux_sessions(GONE, "anything")

    assert listing.state is TmuxState.ERROR
    assert listing.detail == "cannot reach engine gone: no engine socket there"


# --- What cannot start says why, in one line ----------------------------------------------


async def test_a_missing_container_is_named(engine: Engine, sandbox: Sandbox) -> None:
    missing = sandbox.name()

    with pytest.raises(SessionError) as raised:
        async with asyncio.timeout(DEADLINE):
            await DockerExec(engine, missing, ["sh"]).start(SIZE)

    assert str(raised.value) == f"no container {missing} on engine {engine.name}"


async def test_a_stopped_container_says_to_wake_it(engine: Engine, sandbox: Sandbox) -> None:
    stopped = sandbox.name()
    sandbox.container(stopped)

    with pytest.raises(SessionError) as raised:
        async with asyncio.timeout(DEADLINE):
            await DockerExec(engine, stopped, ["sh"]).start(SIZE)

    assert str(raised.value) == f"{stopped} is not running: wake it first"


async def test_an_unreachable_engine_is_a_short_error() -> None:
    with pytest.raises(SessionError) as raised:
        async with asyncio.timeout(DEADLINE):
            await DockerExec(GONE, "anything", ["sh"]).start(SIZE)

    assert str(raised.value) == "cannot reach engine gone: no engine socket there"


async def test_a_command_the_container_lacks_is_named(
    engine: Engine, container: str, sessions: list[DockerExec]
) -> None:
    session = await open_exec(sessions, engine, container, ["no-such-command"])

    with pytest.raises(SessionError) as raised:
        await read_to_end(session)

    assert str(raised.value) == (
        f"cannot run 'no-such-command' in {container}: not found or not executable"
    )
    assert session.exit_status in (126, 127)


# --- Commands run to completion -----------------------------------------------------------


def test_a_command_gives_its_exit_code_and_both_streams(engine: Engine, container: str) -> None:
    result = exec_in_container(
        engine, container, ["sh", "-c", "echo out; echo err >&2; exit 7"], timeout=DEADLINE
    )

    assert result == ExecResult(7, b"out\n", b"err\n")


def test_output_goes_to_the_given_streams_as_it_comes(engine: Engine, container: str) -> None:
    out, err = io.BytesIO(), io.BytesIO()

    result = exec_in_container(
        engine,
        container,
        ["sh", "-c", "echo out; echo err >&2"],
        timeout=DEADLINE,
        stdout=out,
        stderr=err,
    )

    assert result == ExecResult(0)
    assert (out.getvalue(), err.getvalue()) == (b"out\n", b"err\n")


def test_a_command_past_its_timeout_is_stopped_and_keeps_its_output(
    engine: Engine, container: str
) -> None:
    started = time.monotonic()

    result = exec_in_container(
        engine, container, ["sh", "-c", "echo early; sleep 989; echo late"], timeout=1
    )

    assert result == ExecResult(TIMEOUT_EXIT, b"early\n", b"", timed_out=True)
    assert time.monotonic() - started < DEADLINE
    ps = exec_in_container(engine, container, ["ps", "-o", "args"], timeout=DEADLINE)
    assert b"sleep 989" not in ps.stdout


def test_a_command_in_a_missing_or_stopped_container_is_a_roost_error(
    engine: Engine, sandbox: Sandbox
) -> None:
    stopped = sandbox.name()
    sandbox.container(stopped)

    with pytest.raises(RoostError, match=f"^{stopped} is not running: wake it first"):
        exec_in_container(engine, stopped, ["true"], timeout=DEADLINE)
    with pytest.raises(RoostError, match=r"^no container roost-none-such on engine"):
        exec_in_container(engine, "roost-none-such", ["true"], timeout=DEADLINE)
    with pytest.raises(RoostError, match=r"^cannot reach engine gone: no engine socket there$"):
        exec_in_container(GONE, stopped, ["true"], timeout=DEADLINE)
