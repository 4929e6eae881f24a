"""roost's ssh client against a private sshd: commands, exit codes, ssh's failures told apart,
one handshake shared by many commands, and tmux over ssh."""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.core.config import Host
from services.hosts.ssh import HostError, HostProblem, Ssh
from services.terminal.tmux import TmuxServer, TmuxSocket, TmuxState
from tests.conftest import new_session
from tests.ssh_fixtures import SshHost


async def test_runs_a_command_and_returns_its_output_and_exit_code(ssh_host: SshHost) -> None:
    result = await ssh_host.ssh.run(ssh_host.host, "sh", "-c", "echo 'it is'; exit 3", timeout=20)

    assert (result.exit_code, result.stdout, result.stderr) == (3, b"it is\n", "")


async def test_the_remote_words_are_quoted_for_the_remote_shell(ssh_host: SshHost) -> None:
    words = ("printf", "%s|", "a b", "$HOME", "'; echo injected", "*")

    result = await ssh_host.ssh.run(ssh_host.host, *words, timeout=20)

    assert result.stdout == b"a b|$HOME|'; echo injected|*|"


async def test_a_remote_exit_of_255_without_an_ssh_error_is_a_result(ssh_host: SshHost) -> None:
    result = await ssh_host.ssh.run(ssh_host.host, "sh", "-c", "exit 255", timeout=20)

    assert result.exit_code == 255


async def test_output_is_capped(ssh_host: SshHost) -> None:
    result = await ssh_host.ssh.run(
        ssh_host.host, "head", "-c", "100000", "/dev/zero", timeout=20, limit=1000
    )

    assert (result.exit_code, len(result.stdout)) == (0, 1000)


async def test_many_commands_share_one_handshake(ssh_host: SshHost) -> None:
    for number in range(5):
        result = await ssh_host.ssh.run(ssh_host.host, "echo", str(number), timeout=20)
        assert result.stdout == f"{number}\n".encode()
    await asyncio.gather(*(ssh_host.ssh.run(ssh_host.host, "true", timeout=20) for _ in range(5)))

    assert ssh_host.handshakes() == 1


async def test_the_control_socket_is_short_and_its_directory_private(ssh_host: SshHost) -> None:
    await ssh_host.ssh.run(ssh_host.host, "true", timeout=20)

    control = ssh_host.ssh.control_path(ssh_host.host)
    assert control.is_socket()
    assert stat.S_IMODE(ssh_host.control_dir.stat().st_mode) == 0o700
    assert len(str(control)) < 100


async def test_a_host_that_is_down_is_unreachable(ssh_host: SshHost) -> None:
    ssh_host.stop()

    with pytest.raises(HostError) as caught:
        await ssh_host.ssh.run(ssh_host.host, "true", timeout=20)

    assert caught.value.problem is HostProblem.UNREACHABLE
    assert "devbox" in str(caught.value)
    assert "\n" not in str(caught.value)


async def test_a_dropped_connection_is_made_again_when_the_host_is_back(
    ssh_host: SshHost,
) -> None:
    await ssh_host.ssh.run(ssh_host.host, "true", timeout=20)
    ssh_host.stop()
    ssh_host.start()

    result = await ssh_host.ssh.run(ssh_host.host, "echo", "back", timeout=20)

    assert result.stdout == b"back\n"
    assert ssh_host.handshakes() == 2


async def test_an_unknown_host_key_says_how_to_accept_it(ssh_host: SshHost) -> None:
    ssh_host.forget_host_key()

    with pytest.raises(HostError) as caught:
        await ssh_host.ssh.run(ssh_host.host, "true", timeout=20)

    assert caught.value.problem is HostProblem.HOST_KEY
    assert f"ssh -F {ssh_host.config_file} roost-test-host" in str(caught.value)
    assert ssh_host.known_hosts.read_text() == ""  # never accepted for the user


async def test_a_changed_host_key_is_told_apart(ssh_host: SshHost) -> None:
    fields = ssh_host.host_key_line.split()
    other = (ssh_host.directory / "client_key.pub").read_text().split()
    ssh_host.known_hosts.write_text(f"{fields[0]} {other[0]} {other[1]}\n")

    with pytest.raises(HostError) as caught:
        await ssh_host.ssh.run(ssh_host.host, "true", timeout=20)

    assert caught.value.problem is HostProblem.CHANGED_HOST_KEY


async def test_a_refused_key_is_an_auth_error(ssh_host: SshHost) -> None:
    (ssh_host.directory / "authorized_keys").write_text("")

    with pytest.raises(HostError) as caught:
        await ssh_host.ssh.run(ssh_host.host, "true", timeout=20)

    assert caught.value.problem is HostProblem.AUTH
    assert "password" in str(caught.value)


async def test_a_command_that_does_not_finish_in_time_is_a_timeout(ssh_host: SshHost) -> None:
    with pytest.raises(HostError) as caught:
        await ssh_host.ssh.run(ssh_host.host, "sleep", "30", timeout=1)

    assert caught.value.problem is HostProblem.TIMEOUT


async def test_a_missing_ssh_client_is_a_host_error(tmp_path: Path) -> None:
    ssh = Ssh(tmp_path / "control", executable=str(tmp_path / "no-ssh"))

    with pytest.raises(HostError) as caught:
        await ssh.run(Host(name="box", ssh="box"), "true", timeout=5)

    assert caught.value.problem is HostProblem.NO_CLIENT


async def test_a_control_directory_that_cannot_be_made_is_a_host_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    ssh = Ssh(tmp_path / "file" / "control")

    with pytest.raises(HostError) as caught:
        await ssh.run(Host(name="box", ssh="box"), "true", timeout=5)

    assert caught.value.problem is HostProblem.CONTROL_DIR
    assert "ROOST_RUNTIME_DIR" in str(caught.value)


@given(st.text(max_size=400))
def test_any_error_output_is_no_failure_or_a_one_line_host_error(stderr: str) -> None:
    failure = Ssh(Path("/run/roost")).failure(Host(name="box", ssh="box"), stderr)

    assert failure is None or ("\n" not in str(failure) and "box" in str(failure))


def test_argv_has_roosts_options_and_never_prompts(tmp_path: Path) -> None:
    ssh = Ssh(tmp_path, tmp_path / "config")
    host = Host(name="box", ssh="me@box")

    argv = ssh.argv(host, "echo", "a b", tty=True)

    assert argv[:3] == ["ssh", "-F", str(tmp_path / "config")]
    assert argv[-3:] == ["--", "me@box", "echo 'a b'"]
    for option in ("ControlMaster=auto", "BatchMode=yes", "StrictHostKeyChecking=yes"):
        assert option in argv
    assert "-t" in argv
    assert Ssh(tmp_path).argv(host)[-2:] == ["--", "me@box"]


def test_tmux_over_ssh_lists_and_drives_the_remote_server(ssh_host: SshHost) -> None:
    new_session(ssh_host.tmux, "far away")
    remote = TmuxServer(
        TmuxSocket(ssh_host.tmux_socket), ssh=ssh_host.ssh.argv(ssh_host.host), timeout=20
    )

    before = ssh_host.log.read_text().count("Starting session: command")
    listing = remote.list_sessions()
    commands = ssh_host.log.read_text().count("Starting session: command") - before
    here = ssh_host.tmux.list_sessions()
    pane = listing.panes[0].id
    remote.send_keys(pane, "echo 'quoted; $HOME'", literal=True)

    assert listing.state is TmuxState.RUNNING
    assert [session.name for session in listing.sessions] == ["far away"]
    assert listing == here
    assert commands == 1  # one list-panes: over ssh each command is a round trip
    assert remote.version() == ssh_host.tmux.version()
    assert "roost-test-host" in remote.describe()
    assert remote.capture_pane(pane) == ssh_host.tmux.capture_pane(pane)
    assert "quoted; $HOME" in remote.capture_pane(pane)
    assert ssh_host.handshakes() == 1


def test_tmux_over_ssh_without_a_server_says_so(ssh_host: SshHost) -> None:
    remote = TmuxServer(
        TmuxSocket(ssh_host.tmux_socket), ssh=ssh_host.ssh.argv(ssh_host.host), timeout=20
    )

    listing = remote.list_sessions()

    assert listing.state is TmuxState.NO_SERVER
    assert "roost-test-host" in listing.detail


def test_tmux_over_ssh_attach_asks_for_a_terminal(tmp_path: Path) -> None:
    remote = TmuxServer(TmuxSocket("/run/s"), ssh=["ssh", "-o", "BatchMode=yes", "--", "box"])

    assert remote.argv("attach-session", "-t", "=a b", tty=True) == [
        *("ssh", "-t", "-o", "BatchMode=yes", "--", "box"),
        "tmux -u -S /run/s attach-session -t '=a b'",
    ]
    assert TmuxServer().argv("ls", tty=True) == ["tmux", "ls"]
