"""Hosts over ssh against a private sshd: one listing per refresh over a shared connection,
probes, the backoff of a host that does not answer, the fleet's rows, `roost hosts`, `roost ps`
and `roost doctor`."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import os
import random
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.activity.model import ActivityState
from services.context import Context
from services.core.config import Config, Host, load_config
from services.docker.engines import configured_engines
from services.doctor import Verdict, run_checks
from services.fleet.model import AssistantKind, find_assistant, ssh_host_key
from services.hosts.probe import HostBackoff, probe_host, probe_hosts
from services.hosts.ssh import HostProblem
from services.roost import Roost
from services.terminal.host_tmux import list_host
from services.terminal.tmux import (
    LISTING_FORMAT,
    TmuxState,
    parse_listing,
)
from tests.conftest import new_session
from tests.peers.agent_panes import start_agent
from tests.pilot import SIZE, make_app, table_names, wait_until
from tests.ssh_fixtures import DOWN_ALIAS, SshHost
from tests.test_cli import roost
from widgets.keyed_table import KeyedTable

DOWN = Host(name="downbox", ssh=DOWN_ALIAS)


def configure(ssh_host: SshHost, *hosts: Host) -> Config:
    """config.toml naming the private sshd's ssh config and `hosts`, where roost reads it."""
    path = Path(os.environ["ROOST_CONFIG_DIR"]) / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(ssh_host.config_toml(*hosts))
    return load_config(path)


# --- the listing --------------------------------------------------------------------------


SEP = "\x1f"
NAMES = st.text(st.characters(blacklist_characters="\x1f\n"), min_size=1, max_size=12)


@given(st.lists(st.tuples(NAMES, st.integers(1, 3), NAMES), max_size=5))
def test_a_listing_is_read_back_whole(panes: list[tuple[str, int, str]]) -> None:
    lines = [
        SEP.join(
            [
                *(f"${n}", name, "1", "0", "1700000000", "1700000100"),
                *("/s", f"${n}", f"%{n}{k}", "42", "0", "1700000100", "0", "0", "bash", title),
            ]
        )
        for n, (name, count, title) in enumerate(panes)
        for k in range(count)
    ]

    listing = parse_listing("\n".join(lines))

    assert [s.name for s in listing.sessions] == [name for name, _, _ in panes]
    assert [s.panes for s in listing.sessions] == [count for _, count, _ in panes]
    assert len(listing.panes) == sum(count for _, count, _ in panes)


@given(st.text(max_size=300))
def test_any_text_is_a_listing(text: str) -> None:
    assert parse_listing(text).state is TmuxState.RUNNING


def test_the_listing_format_has_the_session_and_pane_fields() -> None:
    assert LISTING_FORMAT.count("#{") == 16
    assert LISTING_FORMAT.endswith("#{pane_title}")


async def test_a_host_is_listed_in_one_round_trip_per_refresh(ssh_host: SshHost) -> None:
    new_session(ssh_host.tmux, "far away", windows=2)
    new_session(ssh_host.tmux, "研究")

    for _ in range(4):
        listing, version, latency_ms = await list_host(ssh_host.ssh, ssh_host.host)

    assert listing.state is TmuxState.RUNNING
    assert [(s.name, s.windows, s.panes) for s in listing.sessions] == [
        ("far away", 2, 2),
        ("研究", 1, 1),
    ]
    assert listing.sessions == ssh_host.tmux.list_sessions().sessions
    assert listing.panes == ssh_host.tmux.list_sessions().panes
    assert version == ssh_host.tmux.version()
    assert latency_ms > 0
    assert ssh_host.handshakes() == 1
    assert ssh_host.log.read_text().count("Starting session: command") == 4


async def test_a_host_without_a_tmux_server_says_so(ssh_host: SshHost) -> None:
    listing, version, _ = await list_host(ssh_host.ssh, ssh_host.host)

    assert listing.state is TmuxState.NO_SERVER
    assert "devbox" in listing.detail
    assert version is not None


# --- probes and backoff -------------------------------------------------------------------


async def test_a_probe_gives_latency_versions_and_a_shared_connection(
    ssh_host: SshHost,
) -> None:
    found = await probe_host(ssh_host.ssh, ssh_host.host)

    assert found.reachable
    assert found.latency_ms is not None and found.latency_ms > 0
    assert found.tmux_version == ssh_host.tmux.version()
    assert found.multiplexed
    assert found.docker_version is None
    assert ssh_host.handshakes() == 1


async def test_hosts_are_probed_together_and_a_down_one_is_one_row(ssh_host: SshHost) -> None:
    up, down = await probe_hosts(ssh_host.ssh, [ssh_host.host, DOWN])

    assert up.reachable
    assert (down.reachable, down.problem) == (False, HostProblem.UNREACHABLE)
    assert "downbox" in down.error


def test_a_host_that_does_not_answer_backs_off_like_health_probes() -> None:
    now = [0.0]
    backoff = HostBackoff(3.0, clock=lambda: now[0], rng=random.Random(1))
    host = Host(name="box", ssh="box")
    assert backoff.due(host) and backoff.retry_in(host) is None

    delays = []
    for _ in range(9):
        backoff.record(host, answered=False)
        delay = backoff.retry_in(host)
        assert delay is not None and not backoff.due(host)
        delays.append(delay)
        now[0] += delay
        assert backoff.due(host)

    assert 6 * 0.9 <= delays[0] <= 6 * 1.1
    assert all(later > earlier for earlier, later in itertools.pairwise(delays[:6]))
    assert max(delays) <= 300 * 1.1
    backoff.record(host, answered=True)
    assert backoff.due(host) and backoff.failures(host) == 0


# --- the fleet, ps, hosts, doctor -------------------------------------------------------------


async def test_a_host_and_its_sessions_are_rows_of_the_fleet(ssh_host: SshHost) -> None:
    new_session(ssh_host.tmux, "agent")
    config = configure(ssh_host, ssh_host.host, DOWN)

    async with Roost.opened(Context.load(config=config)) as application:
        fleet = await application.sweep(health=False)

    host = find_assistant(fleet, "devbox")
    assert (host.key, host.kind, host.where) == (ssh_host_key("devbox"), "ssh host", "devbox")
    assert (host.status, host.detail) == ("running", "1 tmux session")
    assert [s.name for s in host.sessions] == ["agent"]
    assert host.version == ssh_host.tmux.version()
    down = find_assistant(fleet, "downbox")
    assert down.kind is AssistantKind.SSH_HOST
    assert down.status == "unreachable"
    assert "next try in" in down.detail
    assert down.failures == 1


async def test_a_host_backing_off_is_not_asked_and_keeps_its_error(ssh_host: SshHost) -> None:
    config = configure(ssh_host, ssh_host.host)
    async with Roost.opened(Context.load(config=config)) as application:
        sources = application.sources
        application.apply(await sources.look_at_host(ssh_host.host))
        ssh_host.stop()
        application.apply(await sources.look_at_host(ssh_host.host))
        ssh_host.start()
        application.apply(await sources.look_at_host(ssh_host.host))  # backing off: not asked
        row = find_assistant(application.fleet, "devbox")
        assert row.status == "unreachable"
        assert ssh_host.handshakes() == 1

        sources.host_backoff.clock = lambda: float("inf")  # the retry falls due
        application.apply(await sources.look_at_host(ssh_host.host))

        row = find_assistant(application.fleet, "devbox")
        assert (row.status, row.failures) == ("no tmux server", 0)


async def test_a_slow_host_holds_up_no_other(ssh_host: SshHost) -> None:
    """Each host is looked at on its own; one that hangs (a port that never speaks) leaves
    the others' results to be applied as they come."""
    silent = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    ssh_host.config_file.write_text(
        ssh_host.config_file.read_text()
        + f"Host roost-silent\n    HostName 127.0.0.1\n    Port {port}\n"
    )
    hung = Host(name="hung", ssh="roost-silent")
    config = configure(ssh_host, ssh_host.host, hung)
    async with silent, Roost.opened(Context.load(config=config)) as application:
        waiting = asyncio.create_task(application.sources.look_at_host(hung))
        application.apply(await application.sources.look_at_host(ssh_host.host))
        assert not waiting.done()
        assert find_assistant(application.fleet, "devbox").status == "no tmux server"
        assert find_assistant(application.fleet, "hung").status == "checking"
        application.apply(await waiting)

    assert find_assistant(application.fleet, "hung").status in ("timeout", "unreachable")


def test_ps_json_shows_the_host_and_its_sessions(ssh_host: SshHost) -> None:
    new_session(ssh_host.tmux, "agent one")
    configure(ssh_host)

    result = roost("ps", "--json")

    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["devbox"]["kind"] == "ssh host"
    assert rows["devbox"]["status"] == "running"
    session = rows["agent one"]
    assert (session["kind"], session["where"], session["on"]) == (
        "tmux session",
        "devbox",
        "devbox",
    )


def test_roost_hosts_lists_reachability_latency_and_versions(ssh_host: SshHost) -> None:
    configure(ssh_host, ssh_host.host, DOWN)

    shown = roost("hosts")
    listed = roost("hosts", "--json")

    assert shown.returncode == listed.returncode == 1  # downbox does not answer
    assert "devbox" in shown.stdout and "reachable" in shown.stdout
    assert "OpenSSH" in shown.stdout
    document = json.loads(listed.stdout)
    assert document["ssh_version"].startswith("OpenSSH")
    up, down = document["hosts"]
    assert (up["name"], up["reachable"], up["multiplexed"]) == ("devbox", True, True)
    assert up["tmux_version"].startswith("tmux")
    assert up["latency_ms"] > 0
    assert (down["reachable"], down["problem"]) == (False, "unreachable")


def test_doctor_checks_each_host(ssh_host: SshHost) -> None:
    config = configure(ssh_host, ssh_host.host, DOWN)
    checks = {(check.subject, check.verdict) for check in run_checks(Context.load(config=config))}

    assert ("ssh", Verdict.OK) in checks
    assert ("host devbox", Verdict.OK) in checks
    assert ("host downbox", Verdict.FAIL) in checks


def test_doctor_says_how_to_accept_an_unknown_host_key(ssh_host: SshHost) -> None:
    ssh_host.forget_host_key()
    configure(ssh_host)

    result = roost("doctor")

    assert result.returncode == 1
    line = next(line for line in result.stdout.splitlines() if "host devbox" in line)
    assert "FAIL" in line
    assert f"ssh -F {ssh_host.config_file} roost-test-host" in line
    assert ssh_host.known_hosts.read_text() == ""


def test_a_host_with_docker_brings_its_engine_over_ssh() -> None:
    hosts = (Host("gpu", "me@gpu", docker=True), Host("lab", "ssh://lab:2222", docker=True))
    engines = configured_engines(Config(hosts=(*hosts, Host("plain", "plain"))), {})

    assert [(e.name, e.host) for e in engines] == [
        ("default", "unix:///var/run/docker.sock"),
        ("gpu", "ssh://me@gpu"),
        ("lab", "ssh://lab:2222"),
    ]
    assert not any(e.implicit for e in engines[1:])


@pytest.mark.parametrize("problem", list(HostProblem))
def test_every_problem_is_a_status_word(problem: HostProblem) -> None:
    assert problem.value and "\n" not in problem.value


def test_the_context_shares_connections_in_the_runtime_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ROOST_RUNTIME_DIR", str(tmp_path / "rt"))
    context = Context.load(config=Config(ssh_config=tmp_path / "cfg"))

    assert context.ssh.control_dir == tmp_path / "rt" / "ssh"
    assert context.ssh.config_file == tmp_path / "cfg"
    assert dataclasses.replace(context).ssh.control_dir == context.ssh.control_dir


async def test_a_coding_agent_on_a_host_is_known_from_its_pane_and_screen(
    ssh_host: SshHost, tmp_path: Path
) -> None:
    """No hook of the host's agent reaches this machine: its command and its screen, read over
    the shared connection, say it waits on a dialog."""
    claude = tmp_path / "bin" / "claude"
    claude.parent.mkdir()
    claude.symlink_to(sys.executable)
    agent = start_agent(ssh_host.tmux, tmp_path, python=str(claude), session="agent")
    agent.wait_for("Do you want to proceed?")
    config = configure(ssh_host)

    async with Roost.opened(Context.load(config=config)) as application:
        deadline = time.monotonic() + 20
        while True:
            application.apply(await application.sources.look_at_host(ssh_host.host))
            application.apply(await application.look_at_agents())
            row = find_assistant(application.fleet, "devbox")
            activity = next(iter(row.session_activity.values()), None)
            if activity is not None and activity.state is ActivityState.NEEDS_YOU:
                break
            assert time.monotonic() < deadline, f"the agent's state: {activity}"
            await asyncio.sleep(0.1)

    assert row.activity is not None and row.activity.state is ActivityState.NEEDS_YOU
    assert "screen" in activity.evidence
    assert agent.event_names()  # its hooks ran, on the host, and told roost nothing


async def test_the_console_shows_each_host_with_its_sessions(ssh_host: SshHost) -> None:
    new_session(ssh_host.tmux, "far agent")
    app = make_app(config=configure(ssh_host, ssh_host.host, DOWN))

    async with app.run_test(size=SIZE) as pilot:
        want = ["this machine", "devbox", "far agent", "downbox"]
        await wait_until(pilot, lambda: table_names(app) == want, "the hosts' rows")
        rows = app.screen.query_one("#assistants", KeyedTable).rows_shown
        shown = {row.cells[0].plain.lstrip("├└* "): row for row in rows}
        assert [c.plain for c in shown["devbox"].cells[1:4]] == [
            "ssh host",
            "devbox",
            "● running",
        ]
        assert [c.plain for c in shown["far agent"].cells[1:3]] == ["tmux session", "devbox"]
        assert "unreachable" in shown["downbox"].cells[3].plain
