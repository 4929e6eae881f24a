"""The command line at its edges: without a terminal, with usage errors, with a broken or
missing lockfile, and `roost attach` to something that does not exist (run in a real PTY, as a
user runs it)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from services.terminal.tmux import TmuxServer
from tests.test_cli import ROOST, in_a_terminal, roost, screen_text
from tests.test_panes import start_session

NO_TERMINAL = "roost: the console needs a terminal (stdin and stdout); "


def without_terminal(*args: str) -> subprocess.CompletedProcess[str]:
    """roost as a script runs it: stdin from /dev/null, stdout a pipe; it must end at once."""
    return subprocess.run(
        [ROOST, *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )


@pytest.mark.parametrize("args", [(), ("attach", "local"), ("attach", "local", "agent")])
def test_the_console_without_a_terminal_says_so_and_exits_2(args: tuple[str, ...]) -> None:
    result = without_terminal(*args)

    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith(NO_TERMINAL) and result.stderr.count("\n") == 1


def test_commands_work_without_a_terminal_and_into_a_closed_pipe(tmp_path: Path) -> None:
    listed = without_terminal("ps", "--json")
    shown = without_terminal("paths")
    # `head` closes the pipe after one line: roost stops quietly, as a tool killed by SIGPIPE.
    cut = subprocess.run(
        ["sh", "-c", f"{ROOST} doctor </dev/null | head -1; echo $?"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout)[0]["name"] == "this machine"
    assert shown.returncode == 0 and "config" in shown.stdout
    assert "internal error" not in cut.stderr, cut.stderr
    assert (
        not (tmp_path / "roost-log" / "roost.log").exists()
        or "Traceback" not in (tmp_path / "roost-log" / "roost.log").read_text()
    )


def test_attach_to_a_session_that_does_not_exist_is_one_line_before_any_screen(
    tmux_server: TmuxServer,
) -> None:
    start_session(tmux_server, "alpha", "sleep 3600")

    output, status = in_a_terminal("attach", "local", "nosuchsession")

    assert status == 1
    assert "\x1b[?1049h" not in output  # no screen was ever drawn
    assert output.strip() == (
        "roost: no tmux session 'nosuchsession' (the sessions there are: alpha)"
    )


def test_attach_to_an_assistant_that_does_not_exist_is_one_line(tmp_path: Path) -> None:
    output, status = in_a_terminal("attach", "nobody", "alpha")

    assert status == 1
    assert output.strip() == "roost: no assistant 'nobody'; the choices are: this machine"


def test_attach_without_a_session_offers_the_picker(tmux_server: TmuxServer) -> None:
    start_session(tmux_server, "alpha", "sleep 3600")
    start_session(tmux_server, "beta", "sleep 3600")

    # Only the picker says "a new shell": the session names show in the fleet's table first.
    output, status = in_a_terminal("attach", "local", until="a new shell")

    shown = screen_text(output.encode())
    assert "attach to" in shown and "alpha" in shown and "beta" in shown
    assert status == 0


def test_exec_without_a_command_is_a_usage_error_with_its_usage() -> None:
    result = roost("exec", "local")

    assert result.returncode == 2
    assert result.stderr.startswith("usage: roost exec ")
    assert "no command to run" in result.stderr


@pytest.mark.parametrize(
    ("args", "usage"),
    [
        (("ps", "--bogus"), "usage: roost ps [-h] [--json]"),
        (("ps", "--", "x"), "usage: roost ps [-h] [--json]"),
        (("sessions", "local", "extra"), "usage: roost sessions "),
    ],
)
def test_a_subcommand_usage_error_shows_that_subcommands_usage(
    args: tuple[str, ...], usage: str
) -> None:
    result = roost(*args)

    assert result.returncode == 2
    assert result.stderr.startswith(usage), result.stderr
    assert "unrecognized arguments" in result.stderr


def broken_lockfile(home: Path) -> Path:
    lockfile = home / ".vellum.lock.json"
    lockfile.write_text('{"assistants": [\n')
    return lockfile


def test_ps_exits_1_on_a_broken_lockfile_and_still_lists(isolated_env: Path) -> None:
    broken_lockfile(isolated_env)

    result = roost("ps")
    as_json = roost("ps", "--json")

    assert result.returncode == as_json.returncode == 1
    assert "this machine" in result.stdout and "error (lockfile)" in result.stdout
    rows = {row["name"]: row for row in json.loads(as_json.stdout)}
    assert rows["lockfile"]["source"] == "problem" and "this machine" in rows


def test_an_assistant_missing_because_the_lockfile_is_broken_says_why(
    isolated_env: Path,
) -> None:
    lockfile = broken_lockfile(isolated_env)

    result = roost("sessions", "ada")

    assert result.returncode == 1
    assert result.stderr.startswith("roost: no assistant 'ada'; ")
    assert f"lockfile could not be read: {lockfile}, line 2" in result.stderr


def test_use_without_a_lockfile_says_it_does_not_exist(isolated_env: Path) -> None:
    result = roost("use")

    assert result.returncode == 1
    assert result.stderr == (
        f"roost: no Vellum assistants yet: {isolated_env / '.vellum.lock.json'} does not exist\n"
    )
