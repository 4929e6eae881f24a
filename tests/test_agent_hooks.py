"""`roost hook AGENT`: the real console script, run as the agents run it, writes one spool file
per event with its tmux pane, prints nothing and exits 0 whatever it is given; the spool is
drained into a real state database (services/agents/spool.py)."""

from __future__ import annotations

import json
import os
import shlex
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.agents import hook
from services.agents.spool import drain, read_spool, spool_dir, spool_status
from services.core.errors import RoostError
from services.core.paths import RoostPaths
from services.core.state import StateDatabase
from services.terminal.tmux import TmuxServer
from tests.conftest import new_session

ROOST = Path(sys.executable).parent / "roost"
PRE_TOOL_USE = {
    "session_id": "9f2c1c4e-5d2a-4c7e-9a55-3f0e6b1d2a10",
    "transcript_path": "/home/u/.claude/projects/x/9f2c1c4e.jsonl",
    "cwd": "/home/u/src/roost",
    "permission_mode": "default",
    "hook_event_name": "PreToolUse",
    "tool_name": "Bash",
    "tool_input": {"command": "pytest -q tests/test_state.py", "description": "Run tests"},
    "tool_use_id": "toolu_01ABCDEF",
}
CODEX_TURN = {
    "type": "agent-turn-complete",
    "thread-id": "0199a213-81c0-7800-8aa1-bbab2a035a53",
    "turn-id": "12",
    "cwd": "/home/u/src/roost",
    "input-messages": ["fix the failing test"],
    "last-assistant-message": "Done: the test passes.",
}


@pytest.fixture
def spool(tmp_path: Path) -> Path:
    """The spool the isolated environment's hooks write to (the state dir's)."""
    return tmp_path / "roost-state" / hook.SPOOL_DIR_NAME


def run_hook(
    *args: str, payload: bytes = b"", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [str(ROOST), "hook", *args],
        input=payload,
        capture_output=True,
        env={**os.environ, **(env or {})},
        timeout=30,
    )


def spooled(directory: Path) -> list[dict[str, object]]:
    names = sorted(p.name for p in directory.iterdir() if hook.spool_name(p.name))
    return [json.loads((directory / name).read_text()) for name in names]


def assert_silent(ran: subprocess.CompletedProcess[bytes]) -> None:
    assert (ran.returncode, ran.stdout, ran.stderr) == (0, b"", b"")


def test_a_claude_event_is_one_spool_file_naming_its_pane(spool: Path) -> None:
    ran = run_hook(
        "claude",
        payload=json.dumps(PRE_TOOL_USE).encode(),
        env={"TMUX": "/run/tmux-1000/default,4242,0", "TMUX_PANE": "%7"},
    )
    assert_silent(ran)
    [path] = [p for p in spool.iterdir() if hook.spool_name(p.name)]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(spool.stat().st_mode) == 0o700
    record = json.loads(path.read_text())
    assert record["v"] == 1 and record["agent"] == "claude"
    assert (record["server"], record["pane"]) == ("/run/tmux-1000/default", "%7")
    assert record["payload"] == PRE_TOOL_USE
    [event] = read_spool(spool)
    assert (event.name, event.session, event.text("tool_name")) == (
        "PreToolUse",
        PRE_TOOL_USE["session_id"],
        "Bash",
    )
    assert event.at.tzinfo is not None
    assert path.exists(), "read_spool leaves the files for drain"


def test_a_hook_in_a_tmux_pane_records_that_server_and_pane(
    tmux_server: TmuxServer, tmp_path: Path, spool: Path
) -> None:
    payload = tmp_path / "payload.json"
    payload.write_text(json.dumps({**PRE_TOOL_USE, "hook_event_name": "Stop"}))
    new_session(tmux_server, "agent")
    panes = subprocess.run(
        tmux_server.argv("list-panes", "-a", "-F", "#{pane_id} #{socket_path}"),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    command = f"{shlex.quote(str(ROOST))} hook claude < {shlex.quote(str(payload))}"
    subprocess.run(tmux_server.argv("split-window", "-t", "agent", command), check=True)
    deadline = time.monotonic() + 20
    while not (spool.is_dir() and spooled(spool)):
        assert time.monotonic() < deadline, "no spool file from the hook in the tmux pane"
        time.sleep(0.05)
    [record] = spooled(spool)
    assert record["server"] == panes[1]
    assert record["pane"] not in {"", panes[0]}, "the new pane, not the session's first"
    assert str(record["pane"]).startswith("%")


def test_codex_payload_is_the_last_argument_and_the_users_notify_still_runs(
    tmp_path: Path, spool: Path
) -> None:
    received = tmp_path / "received.json"
    theirs = [
        sys.executable,
        "-c",
        "import pathlib, sys; pathlib.Path(sys.argv[1]).write_text(sys.argv[2])",
        str(received),
    ]
    payload = json.dumps(CODEX_TURN)
    ran = run_hook("codex", hook.THEN, *theirs, payload)
    assert_silent(ran)
    [record] = spooled(spool)
    assert record["agent"] == "codex" and record["payload"] == CODEX_TURN
    deadline = time.monotonic() + 20
    while not (received.exists() and received.read_text()):
        assert time.monotonic() < deadline, "the user's notify program never ran"
        time.sleep(0.05)
    assert json.loads(received.read_text()) == CODEX_TURN


def test_a_users_notify_that_cannot_start_is_the_last_error(spool: Path) -> None:
    ran = run_hook("codex", hook.THEN, "/nonexistent/notifier", json.dumps(CODEX_TURN))
    assert_silent(ran)
    assert len(spooled(spool)) == 1
    assert "cannot start /nonexistent/notifier" in spool_status(spool).last_error


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        (b'garbage {"hook_event_name": "Stop", "session_id": "s-1"', "not JSON"),
        (b"[1, 2, 3]", "not a JSON object"),
        (b"\xff\xfe not utf-8", "not JSON"),
        (b"", "not JSON"),
    ],
)
def test_garbage_is_kept_as_a_minimal_event(spool: Path, payload: bytes, problem: str) -> None:
    assert_silent(run_hook("claude", payload=payload))
    [record] = spooled(spool)
    minimal = record["payload"]
    assert isinstance(minimal, dict) and problem in minimal["unreadable"]
    if b"Stop" in payload:
        assert (minimal["hook_event_name"], minimal["session_id"]) == ("Stop", "s-1")


def test_a_payload_over_the_cap_keeps_its_event_name(spool: Path) -> None:
    big = {**PRE_TOOL_USE, "tool_input": {"content": "x" * (hook.MAX_PAYLOAD + 1)}}
    assert_silent(run_hook("claude", payload=json.dumps(big).encode()))
    [record] = spooled(spool)
    minimal = record["payload"]
    assert isinstance(minimal, dict)
    assert minimal["hook_event_name"] == "PreToolUse"
    assert minimal["session_id"] == PRE_TOOL_USE["session_id"]
    assert "more than" in minimal["unreadable"]


def test_codex_without_a_payload_is_a_minimal_event(spool: Path) -> None:
    assert_silent(run_hook("codex"))
    [record] = spooled(spool)
    assert record["payload"] == {"type": "", "unreadable": "no payload"}


def test_an_unwritable_spool_is_silent_and_exit_0(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    ran = run_hook(
        "claude",
        payload=json.dumps(PRE_TOOL_USE).encode(),
        env={hook.SPOOL_VARIABLE: str(blocker / "spool")},
    )
    assert_silent(ran)


def test_a_bad_roost_path_variable_is_silent_and_exit_0() -> None:
    ran = run_hook("claude", payload=b"{}", env={"ROOST_STATE_DIR": "~no-such-user-here/x"})
    assert_silent(ran)


def test_stdin_never_closed_does_not_hold_the_hook(spool: Path) -> None:
    """An agent that keeps the pipe open: the hook ends on its own (the timeout is the
    failure), with what it had."""
    for written, complete in ((b"", False), (json.dumps(PRE_TOOL_USE).encode(), True)):
        with subprocess.Popen(
            [str(ROOST), "hook", "claude"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        ) as process:
            assert process.stdin is not None
            assert process.stdout is not None and process.stderr is not None
            process.stdin.write(written)
            process.stdin.flush()
            assert process.wait(timeout=20) == 0  # with its stdin still open
            output = process.stdout.read() + process.stderr.read()
        assert output == b""
        records = spooled(spool)
        payload = records[-1]["payload"]
        if complete:
            assert payload == PRE_TOOL_USE
        else:
            assert isinstance(payload, dict) and "still open" in payload["unreadable"]


def test_a_closed_stdin_is_a_minimal_event(spool: Path) -> None:
    ran = subprocess.run(
        ["sh", "-c", 'exec "$0" hook claude <&-', str(ROOST)], capture_output=True, timeout=30
    )
    assert_silent(ran)
    [record] = spooled(spool)
    assert record["payload"] == {
        "hook_event_name": "",
        "unreadable": "stdin unreadable (Bad file descriptor)",
    }


def test_a_lone_surrogate_reaches_the_database_as_a_question_mark(
    tmp_path: Path, spool: Path
) -> None:
    assert_silent(run_hook("claude", payload=b'{"hook_event_name": "Stop", "x": "a\\udc80b"}'))
    database = StateDatabase(tmp_path / "state.db")
    assert drain(spool, database) == 1
    assert json.loads(database.agent_events()[0].payload) == {"hook_event_name": "Stop", "x": "a?b"}


def test_a_full_spool_drops_the_event_and_says_so(spool: Path) -> None:
    spool.mkdir(parents=True)
    for number in range(hook.MAX_SPOOL_FILES):
        (spool / f"{number}-1.json").touch()
    assert_silent(run_hook("claude", payload=json.dumps(PRE_TOOL_USE).encode()))
    status = spool_status(spool)
    assert status.waiting == hook.MAX_SPOOL_FILES
    assert "event dropped" in status.last_error and "claude" in status.last_error


def test_help_reaches_the_command_line() -> None:
    ran = subprocess.run([str(ROOST), "hook", "--help"], capture_output=True, text=True)
    assert ran.returncode == 0 and "--then" in ran.stdout


@pytest.mark.parametrize(
    ("tmux", "server"),
    [
        ("/run/tmux-1000/default,123,0", "/run/tmux-1000/default"),
        ("/a,b/c,1,2", "/a,b/c"),
        ("", ""),
        ("x", ""),
    ],
)
def test_the_socket_is_what_precedes_the_last_two_commas(tmux: str, server: str) -> None:
    assert hook.tmux_socket(tmux) == server


@given(st.binary(max_size=300))
def test_any_payload_parses_to_an_object(data: bytes) -> None:
    payload = hook.parse_payload(data, "", "claude")
    assert isinstance(payload, dict)
    json.dumps(payload)


# Draining --------------------------------------------------------------------------------


def write_events(spool: Path, count: int) -> None:
    for number in range(count):
        event = {**PRE_TOOL_USE, "tool_use_id": f"toolu_{number}"}
        hook.spool_event(spool, "claude", {"TMUX_PANE": f"%{number}"}, event)


def test_drain_records_the_events_and_sets_a_bad_file_aside(tmp_path: Path, spool: Path) -> None:
    write_events(spool, 3)
    (spool / "1-1.json").write_text('{"v": 1, "at": "yesterday"')  # oldest, and truncated
    (spool / "2-1.json").write_text('{"v": 99}')  # a newer roost's format
    hostile = '{"v":1,"at":"2026-12-02T22:00:00+00:00","agent":"x","server":"","pane":"",'
    (spool / "3-1.json").write_text(hostile + '"payload":{"a":"\\udc80"}}')
    database = StateDatabase(tmp_path / "state.db")
    assert drain(spool, database) == 3
    rows = database.agent_events()
    assert [json.loads(row.payload)["tool_use_id"] for row in rows] == [
        "toolu_0",
        "toolu_1",
        "toolu_2",
    ]
    assert [row.pane for row in rows] == ["%0", "%1", "%2"]
    assert sorted(p.name for p in spool.iterdir()) == [f"{n}-1.json.bad" for n in (1, 2, 3)]
    assert (spool / "1-1.json.bad").read_text() == '{"v": 1, "at": "yesterday"', "never lost"
    assert drain(spool, database) == 0
    assert spool_status(spool).bad == 3


def test_drain_takes_the_oldest_first_up_to_its_limit(tmp_path: Path, spool: Path) -> None:
    write_events(spool, 5)
    database = StateDatabase(tmp_path / "state.db")
    assert drain(spool, database, limit=2) == 2
    assert drain(spool, database) == 3
    assert [json.loads(r.payload)["tool_use_id"] for r in database.agent_events()] == [
        f"toolu_{n}" for n in range(5)
    ]


def test_a_database_that_cannot_be_written_leaves_the_files(tmp_path: Path, spool: Path) -> None:
    write_events(spool, 2)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(RoostError):
        drain(spool, StateDatabase(blocker / "state.db"))
    assert len(read_spool(spool)) == 2


def test_drain_of_a_missing_spool_is_nothing(tmp_path: Path) -> None:
    assert drain(tmp_path / "nowhere", StateDatabase(tmp_path / "state.db")) == 0
    assert read_spool(tmp_path / "nowhere") == []


def test_the_hook_loads_no_more_than_it_needs(tmp_path: Path) -> None:
    """What keeps the hook fast (tests/perf/bench_hook.py measures it): the launcher never
    loads the command line, and the hook only the standard library and, without
    $ROOST_AGENT_SPOOL, the paths module, which finds the state dir without platformdirs (nor
    dataclasses, typing, ...: tens of milliseconds)."""
    report = tmp_path / "modules.json"
    script = (
        "import json, sys\n"
        "sys.argv = ['roost', 'hook', 'claude']\n"
        "from tui import launcher\n"
        "launcher.main()\n"
        f"open({str(report)!r}, 'w').write(json.dumps(sorted(sys.modules)))\n"
    )
    hook_only = {"tui", "tui.launcher", "services", "services.agents", "services.agents.hook"}
    paths = {"services.core", "services.core.paths", "services.core.errors"}
    heavy = {"platformdirs", "dataclasses", "inspect", "typing", "tempfile", "textual", "sqlite3"}
    # Without $ROOST_STATE_DIR the state dir is under the isolated $XDG_STATE_HOME (conftest.py).
    state = {key: value for key, value in os.environ.items() if key != "ROOST_STATE_DIR"}
    environments = {
        "spool variable": ({**os.environ, hook.SPOOL_VARIABLE: str(tmp_path / "s")}, hook_only),
        "ROOST_STATE_DIR": (dict(os.environ), hook_only | paths),
        "XDG_STATE_HOME": (state, hook_only | paths),
    }
    for name, (env, expected) in environments.items():
        subprocess.run([sys.executable, "-c", script], input=b"{}", env=env, check=True, timeout=30)
        loaded = set(json.loads(report.read_text()))
        ours = {
            module for module in loaded if module.split(".")[0] in {"services", "tui", "widgets"}
        }
        assert ours == expected, name
        assert not loaded & heavy, name
    xdg_spool = Path(os.environ["XDG_STATE_HOME"], "roost", hook.SPOOL_DIR_NAME)
    assert len(spooled(xdg_spool)) == 1


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"ROOST_STATE_DIR": "~/elsewhere"},
        {"ROOST_STATE_DIR": ""},
        {"ROOST_STATE_DIR": None, "XDG_STATE_HOME": "/srv/state/"},
        {"ROOST_STATE_DIR": None, "XDG_STATE_HOME": None},
        {"ROOST_STATE_DIR": None, "XDG_STATE_HOME": "relative"},
        {"ROOST_STATE_DIR": None, "XDG_STATE_HOME": "", "HOME": "/"},
        {"ROOST_STATE_DIR": "/x", hook.SPOOL_VARIABLE: "~/spool"},
    ],
)
def test_the_hook_writes_where_roost_reads(
    changes: dict[str, str | None], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hook finds its spool without resolving all of RoostPaths; roost reads it from them."""
    for variable, value in changes.items():
        if value is None:
            monkeypatch.delenv(variable, raising=False)
        else:
            monkeypatch.setenv(variable, value)
    assert hook.spool_directory(os.environ) == spool_dir(RoostPaths.resolve(), os.environ)
