"""`roost sessions HOST`, `roost exec HOST -- CMD` and `roost attach HOST SESSION` against the
private sshd (`ssh_host`), run as users run them (the installed command in a fresh process; the
console through the app factory `roost attach` uses), with the host in config.toml."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import pytest

from services.context import Context
from services.core.mode import Mode
from services.fleet.model import Assistant, AssistantKind, Source, ssh_host_key
from services.roost import AttachRequest
from services.terminal.attach import SshPlace
from services.terminal.signals import SignalKind, TerminalSignal
from tests.pilot import SIZE, make_app, wait_until
from tests.ssh_fixtures import ALIAS, SshHost
from tests.test_app_shell import select_row
from tests.test_attach_hosts import kill_master, screen
from tests.test_cli import in_a_terminal, roost
from tests.test_panes import start_session
from tui.app import create_app
from tui.terminal_pane import Connection
from widgets.keyed_table import KeyedTable


@pytest.fixture
def configured(ssh_host: SshHost, tmp_path: Path) -> SshHost:
    """config.toml naming the private sshd as host `devbox`, through its ssh config."""
    config = tmp_path / "roost-config" / "config.toml"
    config.parent.mkdir(exist_ok=True)
    config.write_text(
        f'[ssh]\nconfig = "{ssh_host.config_file}"\n\n'
        f'[[hosts]]\nname = "devbox"\nssh = "{ALIAS}"\ntmux_socket = "{ssh_host.tmux_socket}"\n'
    )
    return ssh_host


def host_row() -> Assistant:
    """The fleet's row for host `devbox`, as `roost attach devbox` finds it."""
    return Assistant(
        key=ssh_host_key("devbox"),
        id="devbox",
        name="devbox",
        kind=AssistantKind.SSH_HOST,
        where="devbox",
        status="reachable",
        source=Source.CONFIG,
    )


def test_sessions_lists_a_hosts_tmux_sessions(configured: SshHost) -> None:
    start_session(configured.tmux, "agent", "sleep 3600")
    start_session(configured.tmux, "train two", "sleep 3600")

    listed = roost("sessions", "devbox", "--json")
    table = roost("sessions", "devbox")

    assert listed.returncode == 0, listed.stderr
    assert [row["name"] for row in json.loads(listed.stdout)] == ["agent", "train two"]
    assert table.stdout.splitlines()[2].startswith("train two ")


@pytest.mark.parametrize(
    ("command", "status", "stdout", "stderr"),
    [
        (["sh", "-c", "echo out; echo err >&2"], 0, "out\n", "err\n"),
        (["sh", "-c", "echo 'two words'; exit 3"], 3, "two words\n", ""),
        (["no-such-command-here", "--flag"], 127, "", "not found"),
    ],
)
def test_exec_on_a_host_passes_output_and_the_exit_status_through(
    configured: SshHost, command: list[str], status: int, stdout: str, stderr: str
) -> None:
    result = roost("exec", "devbox", "--", *command)

    assert result.returncode == status, result.stderr
    assert result.stdout == stdout
    assert stderr in result.stderr
    if not stderr:
        assert result.stderr == ""


def test_exec_on_a_host_that_is_down_is_one_line(configured: SshHost) -> None:
    configured.stop()

    result = roost("exec", "devbox", "--", "true")

    assert result.returncode == 1
    assert result.stderr.startswith("roost: host devbox (roost-test-host): ")
    assert "Connection refused" in result.stderr
    assert result.stderr.count("\n") == 1


def test_exec_on_a_host_with_an_unknown_key_says_how_to_accept_it(configured: SshHost) -> None:
    configured.forget_host_key()

    result = roost("sessions", "devbox")

    assert result.returncode == 1
    assert "its host key is not known: run `ssh -F " in result.stderr
    assert result.stderr.count("\n") == 1


def test_an_unknown_name_lists_the_hosts_too(configured: SshHost) -> None:
    result = roost("exec", "nohost", "--", "true")

    assert result.returncode == 1
    assert result.stderr.startswith("roost: no assistant 'nohost'; the choices are: ")
    assert result.stderr.rstrip().endswith("; the hosts are: devbox")


def test_attach_to_a_session_a_host_does_not_have_is_one_line(configured: SshHost) -> None:
    start_session(configured.tmux, "agent", "sleep 3600")

    output, status = in_a_terminal("attach", "devbox", "nothing")

    assert status == 1
    assert "roost: no tmux session 'nothing' (the sessions there are: agent)" in output


async def test_attach_opens_a_pane_on_a_hosts_session_and_shows_a_reconnect(
    configured: SshHost,
) -> None:
    start_session(configured.tmux, "work", "sh", "80x24")
    app = create_app(Context.load(), AttachRequest(host_row(), "work", None))
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: bool(app.panes_screen.panes), "the pane")
        [pane] = app.panes_screen.panes
        assert isinstance(pane.attachment.place, SshPlace) and pane.mode is Mode.DRIVE
        await wait_until(pilot, lambda: pane.connection is Connection.LIVE, "attached")
        assert "devbox · tmux work · ssh · live" in str(pane.status.render())
        await pilot.press(*"echo first-$((1+1))", "enter")
        await wait_until(pilot, lambda: "first-2" in screen(configured.tmux, "work"), "typed")

        kill_master(app.roost.context.ssh, configured.host)
        await wait_until(
            pilot, lambda: pane.connection is Connection.RECONNECTING, "the reconnect shown"
        )
        assert pane.detail == "reconnecting 1/5 (the ssh connection to devbox dropped)"
        await wait_until(pilot, lambda: pane.connection is Connection.LIVE, "attached again")
        await pilot.press(*"echo again-$((2+2))", "enter")
        await wait_until(
            pilot,
            lambda: any("again-4" in pane.view.render_line(y).text for y in range(24)),
            "output after the reconnect",
        )


async def test_enter_on_a_hosts_session_row_attaches_to_it(configured: SshHost) -> None:
    """...and what its output says (a bell here) is evidence for the host's coding agents."""
    start_session(configured.tmux, "work", "sh", "80x24")
    app = make_app()
    told: list[tuple[str, tuple[SignalKind, ...], str | None]] = []
    given = app.roost.agent_signals

    def agent_signals(
        session: str, signals: Sequence[TerminalSignal], host: str | None = None
    ) -> None:
        told.append((session, tuple(signal.kind for signal in signals), host))
        given(session, signals, host)

    app.roost.agent_signals = agent_signals  # type: ignore[method-assign]
    async with app.run_test(size=SIZE) as pilot:
        table = app.main_screen.query_one("#assistants", KeyedTable)
        under = f"{ssh_host_key('devbox')}/"

        def keys() -> list[str]:
            return [row.key for row in table.rows_shown]

        await wait_until(pilot, lambda: any(k.startswith(under) for k in keys()), "its row")
        table.move_cursor(next(i for i, k in enumerate(keys()) if k.startswith(under)))
        await pilot.press("enter")
        await wait_until(pilot, lambda: bool(app.panes_screen.panes), "the pane")
        [pane] = app.panes_screen.panes
        assert pane.attachment.place == SshPlace(configured.host)
        assert pane.attachment.session == "work"
        await wait_until(pilot, lambda: pane.connection is Connection.LIVE, "attached")
        await pilot.press(*"echo entered-$((5+5))", "enter")
        await wait_until(pilot, lambda: "entered-10" in screen(configured.tmux, "work"), "typed")
        await pilot.press(*"printf '\\a'", "enter")
        await wait_until(pilot, lambda: ("work", (SignalKind.BELL,), "devbox") in told, "a bell")


async def test_t_on_a_hosts_row_opens_a_shell_there(configured: SshHost) -> None:
    """The new-shell key on a host's row: a tmux session of its own on the host, ended with
    its pane."""
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await select_row(pilot, app, "devbox")
        await pilot.press("t")
        await wait_until(pilot, lambda: bool(app.panes_screen.panes), "the pane")
        [pane] = app.panes_screen.panes
        await wait_until(pilot, lambda: pane.connection is Connection.LIVE, "the shell")
        shell = pane.attachment.shell_session
        assert shell == f"roost-{os.getpid()}-1"
        assert pane.attachment.place == SshPlace(configured.host)
        assert [s.name for s in configured.tmux.list_sessions().sessions] == [shell]
    assert configured.tmux.list_sessions().sessions == ()  # it ended with its pane
