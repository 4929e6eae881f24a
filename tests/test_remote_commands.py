"""Commands in a managed assistant through throwaway terminal sessions (docs/protocol.md §5):
`remote_exec` read with sentinels, and the tmux sessions of the assistant's tmux server, against
the loopback platform whose sessions are real shells in real PTYs."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from services.terminal.backend import SessionError
from services.terminal.execs import DEFAULT_TIMEOUT, TIMEOUT_EXIT, ExecResult
from services.terminal.remote_commands import (
    MAX_OUTPUT,
    Sentinels,
    Transcript,
    remote_exec,
    remote_tmux_sessions,
)
from tests.conftest import new_session, require
from tests.peers.terminal import ASSISTANT, Remote, until

TOKEN = "0a1b2c"
S = Sentinels(TOKEN)


def shell_transcript(*lines: str) -> bytes:
    """What a PTY shows: CRLF line ends, a coloured prompt, the echoed command line first."""
    echo = "\x1b[32muser@box\x1b[0m:~$ " + S.line("cmd")
    return "\r\n".join((echo, *lines)).encode()


def test_the_output_follows_the_last_start_sentinel_and_ends_at_the_end_one() -> None:
    raw = shell_transcript(S.start, "one", "\x1b[1mtwo\x1b[0m", S.end, f"{S.exit}7", "")
    assert S.finished(raw)
    assert S.result(raw) == ExecResult(7, b"one\ntwo\n")


def test_output_without_a_final_newline_stops_at_the_end_sentinel() -> None:
    raw = shell_transcript(S.start, f"a b|it's|{S.end}", f"{S.exit}0", "")
    assert S.result(raw) == ExecResult(0, b"a b|it's|")


def test_the_echoed_line_alone_is_not_an_answer() -> None:
    raw = shell_transcript("")
    assert not S.finished(raw)
    assert not S.finished(shell_transcript(S.start, S.end, f"{S.exit}12"))  # digits may go on
    assert S.result(raw, timed_out=True) == ExecResult(TIMEOUT_EXIT, b"", timed_out=True)


def test_a_timeout_keeps_what_the_command_printed() -> None:
    raw = shell_transcript(S.start, "partial", "more")
    assert S.result(raw, timed_out=True) == ExecResult(
        TIMEOUT_EXIT, b"partial\nmore", timed_out=True
    )


def test_a_transcript_keeps_the_last_of_a_long_output_and_counts_the_rest() -> None:
    transcript = Transcript(S, max_output=100)
    lines = [f"line {n:04}" for n in range(1000)]
    after_start = "\r\n".join((*lines, S.end, f"{S.exit}0", "")).encode()
    stream = shell_transcript(S.start, "") + after_start
    for at in range(0, len(stream), 7):  # sentinels split across chunks too
        transcript.add(stream[at : at + 7])

    result = transcript.result()

    assert transcript.finished and result.exit_code == 0
    assert result.dropped == len(after_start) - 100
    assert 0 < len(result.stdout) < 100
    assert "".join(f"{line}\n" for line in lines).endswith(result.stdout.decode())


async def exec_in(
    remote: Remote,
    argv: list[str],
    *,
    timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109 (passed on to remote_exec)
    max_output: int = MAX_OUTPUT,
) -> ExecResult:
    return await remote_exec(
        remote.http, remote.platform, ASSISTANT, argv, timeout=timeout, max_output=max_output
    )


def assert_cleaned_up(remote: Remote) -> None:
    """Every session was deleted and its program stopped."""
    sessions = remote.terminals.sessions.values()
    assert sessions and len(remote.requests("delete")) == len(sessions)
    assert not any(session.process.isalive() for session in sessions)


async def test_exec_gives_the_output_and_the_exit_code(remote: Remote) -> None:
    result = await exec_in(remote, ["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert result == ExecResult(3, b"out\nerr\n")
    [create] = [r for r in remote.peer.requests if r.path.endswith("/terminal/sessions/")]
    assert create.body == b'{"cols":120,"rows":24}'
    assert_cleaned_up(remote)


async def test_exec_quotes_every_argument(remote: Remote) -> None:
    result = await exec_in(remote, ["printf", "%s|", "a b", "it's", "$HOME", "`id`", ";"])
    assert result == ExecResult(0, b"a b|it's|$HOME|`id`|;|")


async def test_exec_reads_on_through_a_noisy_stream_that_drops(
    remote: Remote, tmp_path: Path
) -> None:
    terminals = remote.terminals
    terminals.crlf = terminals.envelope = terminals.noise = terminals.replay = True
    go = tmp_path / "go"
    command = f"echo before; while [ ! -e {go} ]; do sleep 0.02; done; echo after"
    running = asyncio.create_task(exec_in(remote, ["sh", "-c", command]))
    await until(
        lambda: bool(terminals.sessions) and b"before\r\n" in terminals.latest.output, "before"
    )
    terminals.drop_streams()
    await until(lambda: len(remote.requests("events")) == 2, "the reconnect")
    go.touch()
    assert await running == ExecResult(0, b"before\nafter\n")
    assert len(remote.requests("create")) == 1  # the command never ran twice


async def test_a_command_that_outlives_its_timeout(remote: Remote) -> None:
    result = await exec_in(remote, ["sh", "-c", "echo partial; exec sleep 30"], timeout=1.5)
    assert result == ExecResult(TIMEOUT_EXIT, b"partial\n", timed_out=True)
    assert_cleaned_up(remote)


async def test_exec_where_there_is_no_terminal(remote: Remote) -> None:
    with pytest.raises(SessionError, match="has no terminal"):
        await remote_exec(remote.http, remote.platform, "asst-9", ["true"])


@pytest.fixture
def remote_tmux(remote: Remote) -> Remote:
    require("tmux", "ROOST_REQUIRE_TMUX")
    return remote


async def test_the_sessions_of_the_assistants_tmux_server(remote_tmux: Remote) -> None:
    server = remote_tmux.terminals.tmux
    new_session(server, "alpha")
    new_session(server, "beta two", windows=2)
    sessions = await remote_tmux_sessions(remote_tmux.http, remote_tmux.platform, ASSISTANT)
    assert [(s.name, s.windows, s.attached) for s in sessions] == [
        ("alpha", 1, 0),
        ("beta two", 2, 0),
    ]
    assert [s.id for s in sessions] == [s.id for s in server.list_sessions().sessions]
    assert_cleaned_up(remote_tmux)


async def test_no_tmux_server_means_no_sessions(remote_tmux: Remote) -> None:
    assert await remote_tmux_sessions(remote_tmux.http, remote_tmux.platform, ASSISTANT) == ()
    assert_cleaned_up(remote_tmux)


async def test_an_assistant_without_tmux(remote: Remote, tmp_path: Path) -> None:
    remote.terminals.environ["PATH"] = str(tmp_path)  # the shell finds no tmux there
    with pytest.raises(SessionError, match=r"^tmux list-sessions in asst-1: .*tmux: not found$"):
        await remote_tmux_sessions(remote.http, remote.platform, ASSISTANT)
    assert_cleaned_up(remote)
