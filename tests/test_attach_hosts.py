"""Terminals on a host over ssh, against the private sshd (`ssh_host`): attach, watch and drive
a tmux session there, a new shell, its history, commands run there with their exit codes, and
what happens when the host is down, its key unknown, or the connection drops mid-attach."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import subprocess
from collections.abc import AsyncIterator, Callable

import pytest

from services.core.config import Host
from services.core.http import http_client
from services.core.mode import Mode
from services.hosts.ssh import HostError, Ssh
from services.terminal.attach import Attacher, Attachment, SshPlace
from services.terminal.backend import (
    LinkNotice,
    SessionError,
    SessionLost,
    TerminalBackend,
    TerminalSize,
)
from services.terminal.ssh_attach import SshTmuxAttach
from services.terminal.tmux import TmuxServer, TmuxState
from tests.ssh_fixtures import SshHost
from tests.test_panes import start_session, window_size
from tests.waiting import wait_for

WITHIN = 20.0
SIZE = TerminalSize(80, 24)
FAST = (0.1,) * 100
"""A backoff that keeps trying for as long as a test needs, quickly."""


class Tap:
    """Reads a backend on a task of its own: its output, its link notices, how it ended."""

    def __init__(self, backend: TerminalBackend) -> None:
        self.backend = backend
        self.data = bytearray()
        self.notices: list[LinkNotice] = []
        self.error: BaseException | None = None
        self.ended = False
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self, size: TerminalSize = SIZE) -> Tap:
        await self.backend.start(size)
        self._task = asyncio.create_task(self._run())
        return self

    async def _run(self) -> None:
        try:
            while item := await self.backend.read():
                if isinstance(item, LinkNotice):
                    self.notices.append(item)
                else:
                    self.data += item
                self._changed.set()
        except Exception as error:
            self.error = error
        finally:
            self.ended = True
            self._changed.set()

    def text(self, since: int = 0) -> str:
        return self.data[since:].decode(errors="replace")

    async def until(self, condition: Callable[[], bool], what: str) -> None:
        async with asyncio.timeout(WITHIN):
            while not condition():
                if self.ended and not condition():
                    raise AssertionError(f"ended ({self.error!r}) while waiting for {what}")
                self._changed.clear()
                await self._changed.wait()

    async def close(self) -> None:
        await self.backend.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


@contextlib.asynccontextmanager
async def attacher(ssh_host: SshHost) -> AsyncIterator[Attacher]:
    async with http_client() as http:
        yield Attacher(
            TmuxServer(),
            dict(os.environ),
            shell=None,
            engines=(),
            http=http,
            platform=lambda: None,
            ssh=ssh_host.ssh,
        )


def screen(server: TmuxServer, session: str) -> str:
    return server.capture_pane(f"={session}:")


def kill_master(ssh: Ssh, host: Host) -> None:
    """Kill `host`'s shared connection's master process, as a dropped network would end it."""
    check = subprocess.run(
        [ssh.executable, *ssh.options(host), "-O", "check", host.ssh],
        capture_output=True,
        text=True,
        check=True,
    )
    pid = int(check.stderr.split("pid=")[1].split(")")[0])
    os.kill(pid, 9)


# -- listing ------------------------------------------------------------------------------------


async def test_the_sessions_on_a_host_are_listed(ssh_host: SshHost) -> None:
    start_session(ssh_host.tmux, "agent", "sleep 3600")
    start_session(ssh_host.tmux, "build two", "sleep 3600")
    async with attacher(ssh_host) as attach:
        listing = await attach.sessions(SshPlace(ssh_host.host))
        found = await attach.running_session(SshPlace(ssh_host.host), "build two")

    assert listing.state is TmuxState.RUNNING
    assert [session.name for session in listing.sessions] == ["agent", "build two"]
    assert found.name == "build two"


# -- attach, drive, watch -------------------------------------------------------------------------


async def test_driving_a_session_on_a_host_types_into_it(ssh_host: SshHost) -> None:
    start_session(ssh_host.tmux, "work", "sh", "80x24")
    async with attacher(ssh_host) as attach:
        backend = attach.backend(Attachment("devbox", SshPlace(ssh_host.host), "work"), Mode.DRIVE)
        tap = await Tap(backend).start()
        try:
            backend.write(b"echo driven-$((40+2))\r")
            await tap.until(lambda: "driven-42" in tap.text(), "the echo")
            await wait_for(lambda: "driven-42" in screen(ssh_host.tmux, "work"), "the host's pane")
        finally:
            await tap.close()
    assert backend.description == "tmux session work on devbox"


async def test_watching_a_session_on_a_host_sends_nothing_and_keeps_its_size(
    ssh_host: SshHost,
) -> None:
    start_session(ssh_host.tmux, "agent", "cat", "80x24")
    ssh_host.tmux.send_keys("=agent:", "before", "Enter")
    await wait_for(lambda: screen(ssh_host.tmux, "agent").count("before") == 2, "cat's echo")
    async with attacher(ssh_host) as attach:
        attachment = Attachment("devbox", SshPlace(ssh_host.host), "agent")
        backend = attach.backend(attachment, Mode.WATCH)
        tap = await Tap(backend).start(TerminalSize(120, 40))
        try:
            await tap.until(lambda: "before" in tap.text(), "the session's screen")
            backend.write(b"typed by a watcher\r")
            # A barrier: a line typed on the host reaches the watcher after the keys above
            # would have reached the session.
            ssh_host.tmux.send_keys("=agent:", "marker", "Enter")
            await tap.until(lambda: "marker" in tap.text(), "the marker, shown to the watcher")
            await wait_for(
                lambda: screen(ssh_host.tmux, "agent").count("marker") == 2, "cat's marker"
            )
            after = screen(ssh_host.tmux, "agent")
        finally:
            await tap.close()

    assert after.split() == ["before", "before", "marker", "marker"]  # nothing typed between
    assert window_size(ssh_host.tmux, "agent") == "80x24"


async def test_a_watcher_on_a_host_is_read_only_even_if_it_wrote(ssh_host: SshHost) -> None:
    """The tmux client itself is read-only (`attach -r`): keys that reached it go nowhere."""
    start_session(ssh_host.tmux, "agent", "cat", "80x24")
    backend = SshTmuxAttach(
        ssh_host.ssh, ssh_host.host, "agent", Mode.WATCH, dict(os.environ), backoff=FAST
    )
    tap = await Tap(backend).start()
    try:
        await tap.until(lambda: bool(tap.data), "the screen")
        assert backend._client is not None
        backend._client.write(b"forced\r")  # past write(), straight into the ssh client
        ssh_host.tmux.send_keys("=agent:", "marker", "Enter")
        await tap.until(lambda: "marker" in tap.text(), "the marker")
        assert "forced" not in screen(ssh_host.tmux, "agent")
    finally:
        await tap.close()


async def test_a_new_shell_on_a_host_is_a_session_of_its_own_ended_with_its_pane(
    ssh_host: SshHost,
) -> None:
    async with attacher(ssh_host) as attach:
        attachment = attach.new_shell("devbox", SshPlace(ssh_host.host))
        assert attachment.shell_session is not None
        backend = attach.backend(attachment, Mode.DRIVE)
        tap = await Tap(backend).start()
        try:
            backend.write(b"echo shell-$((6*7))\r")
            await tap.until(lambda: "shell-42" in tap.text(), "the shell's echo")
            listing = await attach.sessions(SshPlace(ssh_host.host))
            assert [s.name for s in listing.sessions] == [attachment.shell_session]
            history = await attach.history(attachment, 100)
            assert b"shell-42" in history
        finally:
            await tap.close()
        listing = await attach.sessions(SshPlace(ssh_host.host))
    assert attachment.title == "devbox · shell 1"
    assert listing.sessions == ()


async def test_the_history_of_a_session_on_a_host_is_read_over_ssh(ssh_host: SshHost) -> None:
    start_session(ssh_host.tmux, "log", "seq 1 300; sleep 3600", "80x24")
    await wait_for(lambda: "300" in screen(ssh_host.tmux, "log"), "the output")
    async with attacher(ssh_host) as attach:
        history = await attach.history(Attachment("devbox", SshPlace(ssh_host.host), "log"), 1000)
    lines = history.decode().split("\n")
    assert lines[0] == "1" and "300" in lines


async def test_attaching_to_a_session_that_is_not_there_says_so(ssh_host: SshHost) -> None:
    async with attacher(ssh_host) as attach:
        backend = attach.backend(Attachment("devbox", SshPlace(ssh_host.host), "gone"), Mode.DRIVE)
        with pytest.raises(SessionError, match="no tmux session 'gone' on devbox"):
            await backend.start(SIZE)


async def test_revive_makes_a_session_that_ended_again(ssh_host: SshHost) -> None:
    async with attacher(ssh_host) as attach:
        attachment = Attachment("devbox", SshPlace(ssh_host.host), "again")
        tap = await Tap(attach.backend(attachment, Mode.DRIVE, revive=True)).start()
        try:
            await tap.until(lambda: bool(tap.data), "the new session's screen")
            assert ssh_host.tmux.list_sessions().sessions[0].name == "again"
        finally:
            await tap.close()


# -- reconnecting ---------------------------------------------------------------------------------


async def test_a_dropped_connection_is_shown_and_the_session_attached_again(
    ssh_host: SshHost,
) -> None:
    start_session(ssh_host.tmux, "work", "sh", "80x24")
    backend = SshTmuxAttach(
        ssh_host.ssh, ssh_host.host, "work", Mode.DRIVE, dict(os.environ), backoff=FAST
    )
    tap = await Tap(backend).start()
    try:
        backend.write(b"echo first-$((1+1))\r")
        await tap.until(lambda: "first-2" in tap.text(), "the first echo")
        kill_master(ssh_host.ssh, ssh_host.host)
        await tap.until(lambda: any(n.live for n in tap.notices), "the reconnect")
        assert tap.notices[0] == LinkNotice(
            False, 1, len(FAST), "the ssh connection to devbox dropped"
        )
        mark = len(tap.data)
        backend.write(b"echo again-$((2+2))\r")
        await tap.until(lambda: "again-4" in tap.text(mark), "the echo after the reconnect")
    finally:
        await tap.close()
    assert "again-4" in screen(ssh_host.tmux, "work")


async def test_a_host_that_goes_down_and_comes_back_is_reattached(ssh_host: SshHost) -> None:
    start_session(ssh_host.tmux, "work", "sh", "80x24")
    backend = SshTmuxAttach(
        ssh_host.ssh, ssh_host.host, "work", Mode.DRIVE, dict(os.environ), backoff=FAST
    )
    tap = await Tap(backend).start()
    try:
        await tap.until(lambda: bool(tap.data), "the screen")
        ssh_host.stop()
        await tap.until(lambda: len(tap.notices) >= 2, "two failed attempts")
        assert not any(notice.live for notice in tap.notices)
        assert "unreachable" in tap.notices[-1].reason or "refused" in tap.notices[-1].reason
        ssh_host.start()
        await tap.until(lambda: tap.notices[-1].live, "the reconnect")
        mark = len(tap.data)
        backend.write(b"echo back-$((3+3))\r")
        await tap.until(lambda: "back-6" in tap.text(mark), "output after the reconnect")
    finally:
        await tap.close()


async def test_reconnecting_gives_up_when_the_session_no_longer_exists(ssh_host: SshHost) -> None:
    start_session(ssh_host.tmux, "work", "sh", "80x24")
    backend = SshTmuxAttach(
        ssh_host.ssh, ssh_host.host, "work", Mode.DRIVE, dict(os.environ), backoff=FAST
    )
    tap = await Tap(backend).start()
    try:
        await tap.until(lambda: bool(tap.data), "the screen")
        ssh_host.stop()
        await tap.until(lambda: bool(tap.notices), "the drop")
        kill = ssh_host.tmux.argv("kill-session", "-t", "=work")
        await asyncio.to_thread(subprocess.run, kill, check=True)
        ssh_host.start()
        await tap.until(lambda: tap.ended, "giving up")
    finally:
        await tap.close()
    assert isinstance(tap.error, SessionLost)
    assert str(tap.error) == "the tmux session 'work' no longer exists on devbox"


async def test_reconnecting_gives_up_after_its_last_attempt(ssh_host: SshHost) -> None:
    start_session(ssh_host.tmux, "work", "sh", "80x24")
    backend = SshTmuxAttach(
        ssh_host.ssh, ssh_host.host, "work", Mode.DRIVE, dict(os.environ), backoff=(0.05, 0.05)
    )
    tap = await Tap(backend).start()
    try:
        await tap.until(lambda: bool(tap.data), "the screen")
        ssh_host.stop()
        await tap.until(lambda: tap.ended, "giving up")
    finally:
        await tap.close()
    assert [(n.live, n.attempt) for n in tap.notices] == [(False, 1), (False, 2)]
    assert isinstance(tap.error, SessionLost)
    assert str(tap.error).startswith("lost the connection to tmux session work on devbox: host")


async def test_a_session_that_ends_on_the_host_ends_the_pane(ssh_host: SshHost) -> None:
    start_session(ssh_host.tmux, "short", "sh", "80x24")
    backend = SshTmuxAttach(ssh_host.ssh, ssh_host.host, "short", Mode.DRIVE, dict(os.environ))
    tap = await Tap(backend).start()
    try:
        await tap.until(lambda: bool(tap.data), "the screen")
        backend.write(b"exit\r")
        await tap.until(lambda: tap.ended, "the end")
    finally:
        await tap.close()
    assert tap.error is None and not tap.notices
    assert backend.exit_status == 0


# -- commands -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "status", "out", "err"),
    [
        (["sh", "-c", "echo out; echo err >&2"], 0, b"out\n", b"err\n"),
        (["sh", "-c", "echo three; exit 3"], 3, b"three\n", b""),
        (["no-such-command-here"], 127, b"", b"not found"),
    ],
)
async def test_a_command_on_a_host_streams_its_output_and_exits_with_its_status(
    ssh_host: SshHost, command: list[str], status: int, out: bytes, err: bytes
) -> None:
    stdout, stderr = io.BytesIO(), io.BytesIO()
    async with attacher(ssh_host) as attach:
        result = await _run_to_files(attach, ssh_host, command, stdout, stderr)
    assert result == status
    assert stdout.getvalue() == out
    assert err in stderr.getvalue()


async def _run_to_files(
    attach: Attacher, ssh_host: SshHost, command: list[str], stdout: io.BytesIO, stderr: io.BytesIO
) -> int:
    """`run` writes to real files (it hands them to a process): read them back into the buffers."""
    import tempfile

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        result = await attach.run(
            SshPlace(ssh_host.host), command, timeout=WITHIN, stdout=out, stderr=err
        )
        out.seek(0), err.seek(0)
        stdout.write(out.read())
        stderr.write(err.read())
    return result.exit_code


async def test_a_host_that_is_down_is_one_clear_error_at_once(ssh_host: SshHost) -> None:
    ssh_host.stop()
    async with attacher(ssh_host) as attach:
        with pytest.raises(HostError, match=r"host devbox .*Connection refused"):
            await attach.run(SshPlace(ssh_host.host), ["true"], timeout=WITHIN)
        backend = attach.backend(Attachment("devbox", SshPlace(ssh_host.host), "x"), Mode.DRIVE)
        with pytest.raises(SessionError, match="host devbox"):
            await backend.start(SIZE)
        listing = await attach.sessions(SshPlace(ssh_host.host))
    assert listing.state is TmuxState.ERROR


async def test_an_unknown_host_key_says_how_to_accept_it(ssh_host: SshHost) -> None:
    ssh_host.forget_host_key()
    async with attacher(ssh_host) as attach:
        with pytest.raises(
            HostError, match=r"host key is not known: run `ssh -F .* roost-test-host`"
        ):
            await attach.run(SshPlace(ssh_host.host), ["true"], timeout=WITHIN)
        backend = attach.backend(Attachment("devbox", SshPlace(ssh_host.host), "x"), Mode.DRIVE)
        with pytest.raises(SessionError, match="host key is not known"):
            await backend.start(SIZE)


def test_a_host_place_says_ssh() -> None:
    host = Host(name="gpu", ssh="me@gpu")
    attachment = Attachment("gpu", SshPlace(host), "train")
    assert attachment.transport.value == "ssh"
    assert attachment.reopens_on_mode_change
