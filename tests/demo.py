"""Fixed scenes for snapshots and screenshots: a private tmux server with a few sessions (or, for
the scenes that need none, a tmux that is not installed), perhaps fake coding agents at work in
some or `[[hosts]]` hosts over a private sshd, state seeded into roost's database, and the app
built with a host name and a clock that make every run draw the same screen."""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import socket
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from textual.app import App
from textual.pilot import Pilot
from textual.widgets import Input

from services.activity.follower import ActivityBatch
from services.activity.model import (
    UNFOLLOWED,
    Activity,
    ActivityState,
    Choice,
    Confirmation,
    Diff,
    Interaction,
    InteractionKind,
    Question,
    Questions,
    SecretRequest,
    TrustOption,
)
from services.agents.hook import spool_name
from services.context import Context
from services.core.config import Config, EngineConfig, Host
from services.core.processes import ProcessIdentity
from services.core.state import BackupRow, Event, StateDatabase
from services.docker.engines import Engine
from services.docker.lifecycle import (
    ALREADY_RUNNING,
    STARTED,
    STOPPED,
    ContainerFacts,
    Inventory,
    Kind,
    NetworkFacts,
    Outcome,
    Step,
    VolumeFacts,
    VolumeMount,
    plan_retire,
)
from services.fleet.model import HOST_KEY
from services.jobs.exports import backup_destination
from services.jobs.library import backups_dir
from services.jobs.record import Job, JobKind, JobRoute, JobState
from services.jobs.reports import Preflight, Problem
from services.jobs.store import JobStore
from services.terminal.tmux import TmuxListing, TmuxServer, TmuxSocket, TmuxState
from services.vellum.registry import PID_FILE
from tests.conftest import new_session
from tests.peers.agent_panes import start_agent
from tests.pilot import table_names, wait_until
from tests.ssh_fixtures import DOWN_ALIAS, SshHost, ssh_server, sshd_path
from tui.app import RoostApp, create_app
from tui.lifecycle import retire_question
from tui.screens.backups import BackupsScreen
from tui.screens.confirm import ConfirmScreen, TypedConfirmScreen
from tui.screens.help import HelpScreen
from tui.screens.inbox import InboxScreen
from tui.screens.panes import PanesScreen
from tui.screens.pick import SessionPicker
from tui.screens.restore import RestoreScreen
from tui.terminal_pane import TerminalPane
from widgets.keyed_table import KeyedTable
from widgets.rewind_timeline import TimelineMark

SOCKET_NAME = "roost-demo"
Sessions = tuple[tuple[str, int], ...]
"""Sessions running `sleep` (so their activity never moves): name, windows."""
SESSIONS: Sessions = (("agent-claude", 3), ("agent-codex", 1), ("build", 2))


class DemoTmux(TmuxServer):
    """The demo's server (`tmux -L roost-demo`), knowing its sessions by name, with the times of
    those a scene pins (`pinned`: name -> created, last output) on the scene's clock: tmux
    stamps them with the wall clock, which no snapshot may show."""

    def __init__(self) -> None:
        super().__init__(TmuxSocket(SOCKET_NAME))
        self.names: list[str] = []
        self.pinned: dict[str, tuple[datetime, datetime]] = {}

    def list_sessions(self) -> TmuxListing:
        listing = super().list_sessions()
        names = {session.id: session.name for session in listing.sessions}
        sessions = tuple(
            dataclasses.replace(session, created=pin[0], activity=pin[1])
            if (pin := self.pinned.get(session.name))
            else session
            for session in listing.sessions
        )
        panes = tuple(
            dataclasses.replace(pane, activity=pin[1])
            if (pin := self.pinned.get(names.get(pane.session_id, "")))
            else pane
            for pane in listing.panes
        )
        return dataclasses.replace(listing, sessions=sessions, panes=panes)


@contextmanager
def demo_server(sessions: Sessions = SESSIONS) -> Iterator[DemoTmux]:
    """A fresh private server (`tmux -L roost-demo`) holding `sessions`, killed afterwards.

    Its socket lives in a directory of its own (TMUX_TMPDIR, which every tmux started meanwhile
    inherits), so runs side by side on one machine never share it or kill each other's.
    """
    with tempfile.TemporaryDirectory(prefix="roost-demo-") as directory:
        previous = os.environ.get("TMUX_TMPDIR")
        os.environ["TMUX_TMPDIR"] = directory
        server = DemoTmux()
        try:
            for name, windows in sessions:
                new_session(server, name, windows=windows)
                server.names.append(name)
            yield server
        finally:
            subprocess.run(server.argv("kill-server"), capture_output=True, check=False)
            if previous is None:
                os.environ.pop("TMUX_TMPDIR")
            else:
                os.environ["TMUX_TMPDIR"] = previous


@dataclass(frozen=True)
class DemoHost:
    """A `[[hosts]]` host of the hosts scene: an alias of the demo's sshd with a tmux server of
    its own there (`tmux_socket`) holding `sessions` that run `sleep`, or (`down`) an alias for a
    port where nothing listens."""

    name: str
    sessions: Sessions = ()
    down: bool = False


HOSTS = (
    DemoHost("gpu-rig", (("train", 2), ("notebook", 1), ("agent-claude", 3))),
    DemoHost("ci-runner", (("runner-a", 1), ("runner-b", 1))),
    DemoHost("nas", down=True),
)
"""Two hosts that answer and one that is down. Their sessions begin just after the demo server's,
so the scene's clock (2.5 minutes after those) dates them as it does this machine's. Their round
trips over 127.0.0.1 vary from run to run: the scene shows none (the table is cut before its
LATENCY column, the cursor is on this machine)."""


@dataclass(frozen=True)
class DemoHosts:
    """A scene's hosts, running: the sshd they are aliases of, and each as `[[hosts]]` says it."""

    sshd: SshHost
    hosts: tuple[Host, ...]


@contextmanager
def demo_hosts(hosts: Sequence[DemoHost]) -> Iterator[DemoHosts | None]:
    """The demo's sshd (tests/ssh_fixtures.py), each of `hosts` that is up an alias of it with
    its sessions in its own tmux server, everything stopped afterwards; None without hosts."""
    if not hosts:
        yield None
        return
    sshd = sshd_path()
    if sshd is None:
        raise RuntimeError("the hosts scene needs sshd, which is not installed")
    with ssh_server(sshd, [host.name for host in hosts if not host.down]) as server:
        servers: list[TmuxServer] = []
        config: list[Host] = []
        try:
            for host in hosts:
                if host.down:
                    config.append(Host(host.name, ssh=DOWN_ALIAS))
                    continue
                socket_path = str(server.directory / f"{host.name}.tmux")
                servers.append(tmux := TmuxServer(TmuxSocket(socket_path)))
                for name, windows in host.sessions:
                    new_session(tmux, name, windows=windows)
                config.append(Host(host.name, ssh=host.name, tmux_socket=socket_path))
            yield DemoHosts(server, tuple(config))
        finally:
            for tmux in servers:
                subprocess.run(tmux.argv("kill-server"), capture_output=True, check=False)


NO_TMUX = TmuxServer(TmuxSocket(SOCKET_NAME), executable="/nonexistent/tmux")
"""For the scenes that need no tmux: one that is never installed, so they draw the same screen
whether this machine has tmux or not."""
NO_TMUX_NOW = datetime(2026, 3, 14, 9, 30, tzinfo=UTC)
"""The clock of the scenes without tmux (with it, the clock follows the sessions' activity)."""
DEAD_PID = 2**22 + 1
"""Past the largest PID Linux hands out: a process that is certainly not running."""

REFUSED = "http://127.0.0.1:9"
"""Nothing listens there: a probe is refused at once, so what it shows never varies."""
DOWN_ENGINE = "unix:///nonexistent/lab.sock"
"""The demo's Docker engine, which is down: the scenes are the same with or without Docker."""


def demo_lockfile(directory: Path, healthy_url: str | None) -> None:
    """A Vellum lockfile with an assistant of each kind and state. Without `healthy_url` every
    health answer is instant and the same each run (refused, not logged in, asleep)."""
    alive_dir, dead_dir = directory / "ada", directory / "bob"
    for instance, pid in ((alive_dir, os.getpid()), (dead_dir, DEAD_PID)):
        (instance / PID_FILE).parent.mkdir(parents=True, exist_ok=True)
        (instance / PID_FILE).write_text(str(pid))
    entries: list[dict[str, object]] = [
        {
            "assistantId": "ada",
            "cloud": "local",
            "runtimeUrl": healthy_url or REFUSED,
            "resources": {"instanceDir": str(alive_dir), "signingKey": "never-shown"},
        },
        {
            "assistantId": "bob",
            "cloud": "local",
            "runtimeUrl": REFUSED,
            "resources": {"instanceDir": str(dead_dir)},
        },
        {"assistantId": "cora", "name": "cora", "cloud": "vellum", "runtimeUrl": REFUSED},
        {"assistantId": "eve", "cloud": "docker", "runtimeUrl": REFUSED},
        {
            "assistantId": "gpu-box",
            "cloud": "gcp",
            "runtimeUrl": REFUSED,
            "bearerToken": "never-shown",
        },
        {"name": "half-written"},
    ]
    document = {"assistants": entries, "activeAssistant": "cora"}
    (directory / ".vellum.lock.json").write_text(json.dumps(document, indent=2) + "\n")


Seed = Callable[[Context], None]
"""Writes what a scene shows from roost's state (jobs, events) before the app starts."""


@dataclass(frozen=True)
class DemoAgent:
    """The fake coding agent `agent` (tests/peers/fake_agent.py) in the session `session` of
    the demo's server, its hooks running `roost hook`, and when, in seconds before AGENTS_NOW,
    its session began, its last hook ran and it last printed."""

    session: str
    agent: str
    arguments: tuple[str, ...]
    shows: str
    """What its screen shows once it is where the scene wants it."""
    state: ActivityState
    """What roost makes of it then."""
    created: int
    event: int
    output: int
    answer: tuple[str, str] | None = None
    """What its screen shows first, and the key typed into the pane then."""


AGENTS_NOW = datetime(2025, 3, 14, 9, 30, tzinfo=UTC)
"""The clock of the scenes with agents. Before any machine's own: the agent watch takes an
event stamped later than its wall clock for one of a clock running ahead."""
EVENT_STEP = timedelta(seconds=2)
"""Between an agent's hook events, the last at its `event` time."""
AGENTS = (
    DemoAgent(
        "api",
        "claude",
        ("--session-id", "7c0a4f1e-2b9d-4e63-9a07-5d1f3c8e6b24"),
        "Do you want to proceed?",
        ActivityState.NEEDS_YOU,
        created=1040,
        event=42,
        output=38,  # it printed since its dialog came up, so roost reads its screen
    ),
    DemoAgent(
        "web",
        "codex",
        ("--work", "--session-id", "0195a3c2-81c0-7800-8aa1-bbab2a035a53"),
        "esc to interrupt",
        ActivityState.WORKING,  # Codex reports only finished turns: its screen says it works
        created=610,
        event=0,  # (no hook has run)
        output=1,
    ),
    DemoAgent(
        "docs",
        "gemini",
        ("--session-id", "d4b8e2a6-3f1c-4c9e-8b57-2e6a9f0c1d83"),
        "ANSWER: allow",
        ActivityState.IDLE,
        created=1655,
        event=193,
        output=193,
        answer=("Allow execution", "1"),
    ),
    DemoAgent(
        "ml",
        "claude",
        ("--fail", "rate_limit", "--session-id", "b61d0c9a-5e27-4f08-a3c4-7d92e1f6a0b5"),
        "FAILED: rate_limit",
        ActivityState.ERRORED,
        created=2330,
        event=297,
        output=297,
    ),
    DemoAgent(
        "infra",
        "codex",
        ("--end", "--session-id", "0195a2f7-4c3e-7a10-9d6b-58e0c4a1f2d9"),
        "SESSION END",
        ActivityState.STOPPED,  # its pane stays on screen, dead (`remain-on-exit`)
        created=3105,
        event=1322,
        output=1321,
        answer=("Would you like to run", "y"),
    ),
)
"""One of each state: waiting on a permission dialog for `npm test`, working, done, failed on a
rate limit, ended."""
ASKING = "api"
"""The session of the agent that waits on its dialog."""
AGENT_SESSIONS: Sessions = (("build", 2),)
"""The sessions beside the agents': one with no agent in it."""
SLEEPING_FOR = timedelta(minutes=75)
"""How long before AGENTS_NOW those began (and last printed)."""
ROOST = Path(sys.executable).parent / "roost"
"""The console script the agents' hooks run."""


def start_agents(server: DemoTmux, agents: Sequence[DemoAgent], directory: Path) -> Path:
    """Start `agents` one after the other in `server`, each waited for until its screen shows
    where the scene wants it (its hooks have run by then), then pin every time roost will see
    on the scene's clock: the sessions' (DemoTmux.pinned) and the events' in the hooks' spool,
    which this returns (`$ROOST_AGENT_SPOOL`: roost drains it once it runs).

    Gemini reads its hooks from `~/.gemini` (`$HOME` is a scratch directory here): one agent at
    a time, each reads the hooks it was started with."""
    spool, programs = directory / "agent-spool", directory / "bin"
    programs.mkdir(parents=True)
    began = AGENTS_NOW - SLEEPING_FOR
    server.pinned = dict.fromkeys(server.names, (began, began))
    last_event: dict[str, datetime] = {}
    for each in agents:
        program = programs / each.agent  # so tmux lists the pane's command as the agent's
        if not program.exists():
            program.symlink_to(sys.executable)
        hook = f"ROOST_AGENT_SPOOL={shlex.quote(str(spool))} {shlex.quote(str(ROOST))}"
        pane = start_agent(
            server,
            directory / each.session,
            *each.arguments,
            agent=each.agent,
            hook=f"{hook} hook {each.agent}",
            session=each.session,
            python=str(program),
        )
        if each.answer is not None:
            asks, key = each.answer
            pane.wait_for(asks)
            server.send_keys(pane.pane, key)
        pane.wait_for(each.shows)
        server.names.append(each.session)
        server.pinned[each.session] = (
            AGENTS_NOW - timedelta(seconds=each.created),
            AGENTS_NOW - timedelta(seconds=each.output),
        )
        last_event[pane.pane] = AGENTS_NOW - timedelta(seconds=each.event)
    pin_events(spool, last_event)
    return spool


def pin_events(spool: Path, last_event: dict[str, datetime]) -> None:
    """Stamp the spooled events of each pane EVENT_STEP apart, its last at `last_event[pane]`,
    in the order the hooks wrote them."""
    records: dict[str, list[tuple[Path, dict[str, Any]]]] = {}
    for _, path in sorted(
        (key, path) for path in spool.iterdir() if (key := spool_name(path.name))
    ):
        record = json.loads(path.read_text())
        records.setdefault(record["pane"], []).append((path, record))
    for pane, written in records.items():
        for back, (path, record) in enumerate(reversed(written)):
            record["at"] = (last_event[pane] - back * EVENT_STEP).isoformat()
            path.write_text(json.dumps(record))


def demo_app(
    server: DemoTmux | None,
    directory: Path,
    healthy_url: str | None = None,
    seed: Seed | None = None,
    shell: str | None = None,
    agents: Sequence[DemoAgent] = (),
    hosts: DemoHosts | None = None,
) -> RoostApp:
    """The app on `server` (None: tmux is not installed) and a demo lockfile in `directory`,
    with ages frozen: its clock stands 2.5 minutes after the sessions began (they run `sleep`,
    so their activity never moves), at AGENTS_NOW with `agents` at work in the server, or at
    NO_TMUX_NOW without tmux. `t` runs `shell`, by default the demo agent. With `hosts`, their
    sshd's ssh config and `[[hosts]]`, its shared connections' sockets in its directory."""
    environ = {**os.environ, "VELLUM_LOCKFILE_DIR": str(directory)}
    environ.pop("DOCKER_HOST", None)
    if hosts is not None:
        environ["ROOST_RUNTIME_DIR"] = str(hosts.sshd.control_dir.parent)
    tmux: TmuxServer
    if server is None:
        tmux, frozen = NO_TMUX, NO_TMUX_NOW
    elif agents:
        environ["ROOST_AGENT_SPOOL"] = str(start_agents(server, agents, directory / "agents"))
        tmux, frozen = server, AGENTS_NOW
    else:
        listing = server.list_sessions()
        assert listing.state is TmuxState.RUNNING, listing.detail
        frozen = max(session.activity for session in listing.sessions) + timedelta(seconds=150)
        tmux = server
    demo_lockfile(directory, healthy_url)
    config = Config(
        terminal_shell=shell or f"{shlex.quote(sys.executable)} {shlex.quote(str(DEMO_AGENT))}",
        tmux_refresh_seconds=3600,
        docker_engines=(EngineConfig("lab", host=DOWN_ENGINE),),
        hosts=hosts.hosts if hosts else (),
        ssh_config=hosts.sshd.config_file if hosts else None,
    )
    context = dataclasses.replace(
        Context.load(environ, config=config),
        tmux=tmux,
        hostname="workstation",
        clock=lambda: frozen,
    )
    if seed is not None:
        seed(context)
    return create_app(context)


DEMO_AGENT = Path(__file__).parent / "terminal" / "demo_agent.py"


def demo_rows(app: App[Any]) -> int:
    """This machine and its sessions, the lockfile's six entries, the engine that is down."""
    tmux = app.context.tmux if isinstance(app, RoostApp) else None
    sessions = len(tmux.names) if isinstance(tmux, DemoTmux) else 0
    return 1 + sessions + 6 + 1


def probed(app: App[Any]) -> bool:
    """Every demo assistant has its health, and those with one their activity (their streams
    are refused): the screen will not change any more."""
    fleet = getattr(app, "fleet", ())
    return sum(1 for a in fleet if a.health) == 4 and all(a.activity for a in fleet if a.health)


async def fleet_listed(pilot: Pilot[None]) -> None:
    """The main screen once every demo row is listed and probed."""
    await wait_until(
        pilot,
        lambda: len(table_names(pilot.app)) == demo_rows(pilot.app) and probed(pilot.app),
        "the fleet",
    )


async def fleet_filtered(pilot: Pilot[None]) -> None:
    """The filter narrowed to this machine and the local assistants."""
    await fleet_listed(pilot)
    await pilot.press("slash", *"kind", "colon", *"local")
    local_rows = demo_rows(pilot.app) - 4  # not cora, eve, gpu-box, nor the engine
    await wait_until(pilot, lambda: len(table_names(pilot.app)) == local_rows, "the filter")
    steady_cursors(pilot)


async def help_open(pilot: Pilot[None]) -> None:
    """The help screen over the main screen."""
    await fleet_listed(pilot)
    await pilot.press("question_mark")
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, HelpScreen), "the help")


async def agent_drawn(pilot: Pilot[None], pane: TerminalPane) -> None:
    """The demo agent's whole screen drawn in `pane`."""

    def drawn() -> bool:
        rows = [pane.view.render_line(y).text for y in range(pane.view.size.height)]
        return any("waiting for input" in row for row in rows) and pane.queued == 0

    await wait_until(pilot, drawn, "the agent's screen")


async def terminal_open(pilot: Pilot[None]) -> None:
    """A terminal pane with an agent's screen in it (`t` runs the demo agent)."""
    await fleet_listed(pilot)
    await pilot.press("t")
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, PanesScreen), "the pane")
    screen = pilot.app.screen
    assert isinstance(screen, PanesScreen) and screen.pane is not None
    await agent_drawn(pilot, screen.pane)


async def panes_grid(pilot: Pilot[None]) -> None:
    """Two agents side by side, one driven and one watched, with the pane keys shown."""
    await terminal_open(pilot)
    await pilot.press("ctrl+right_square_bracket", "escape", "t")
    screen = pilot.app.screen
    assert isinstance(screen, PanesScreen)
    await wait_until(pilot, lambda: len(screen.panes) == 2, "the second pane")
    await pilot.press("ctrl+right_square_bracket", "w", "g")
    for pane in screen.panes:
        await wait_until(pilot, lambda pane=pane: pane.view.size.width <= 80, "the grid")  # type: ignore[misc]
        await agent_drawn(pilot, pane)


async def pane_rewound(pilot: Pilot[None]) -> None:
    """A pane rewound (ctrl+] then h): the agent's screen still, the timeline in place of the
    status line. Its times are pinned (a recording's length is the wall clock's): a quarter
    hour with an attach, a resize and a reconnect, the position on the reconnect."""
    await terminal_open(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, PanesScreen) and screen.pane is not None
    pane = screen.pane
    await pilot.press("ctrl+right_square_bracket", "h")
    await wait_until(pilot, lambda: pane.rewound is not None, "the recording read")
    marks = (
        TimelineMark(0.0, "attach", "drive"),
        TimelineMark(312.0, "resize", "120x40"),
        TimelineMark(431.0, "reconnect"),
    )
    pane.timeline.load(905.0, marks)
    pane.timeline.position = 431.0


async def row_selected(pilot: Pilot[None], name: str) -> None:
    """The cursor on the assistants table's row `name`."""
    table = pilot.app.screen.query_one("#assistants", KeyedTable)
    index = table_names(pilot.app).index(name)
    table.move_cursor(index)
    key = table.rows_shown[index].key
    await wait_until(pilot, lambda: table.selected_key == key, f"{name}'s row")


async def toasts_gone(pilot: Pilot[None]) -> None:
    """No notification on screen: each stays for its own timeout, so when a snapshot is taken
    would decide whether one shows. Clearing them takes those of the current screen away; those
    drawn on a screen below it (a dialog's) go when they expire."""
    app = pilot.app
    app.clear_notifications()
    await wait_until(
        pilot, lambda: not any(s.query("Toast") for s in app.screen_stack), "the toasts to go"
    )


async def quit_asked(pilot: Pilot[None]) -> None:
    """The quit key with a pane open: the question says what ends and what keeps running."""
    await terminal_open(pilot)
    await pilot.press("ctrl+right_square_bracket", "ctrl+q")
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, ConfirmScreen), "the question")


RETIRED = "eve"
"""The docker assistant the retire scene asks about."""


def retire_inventory(name: str) -> Inventory:
    """What an engine holds for a docker assistant the Vellum CLI made, and one other
    container sharing a volume with it (which retire keeps)."""
    volumes = tuple(VolumeFacts(f"{name}-{suffix}") for suffix in ("workspace", "data"))
    containers = tuple(
        ContainerFacts(
            f"{index:x}" * 64,
            f"{name}-{part}",
            "exited",
            mounts=(VolumeMount(f"{name}-workspace", "/workspace"),),
            networks=(f"{name}-net",),
        )
        for index, part in enumerate(("assistant", "gateway", "credential-executor"), start=1)
    )
    other = ContainerFacts(
        "f" * 64, "notebook", "running", mounts=(VolumeMount(f"{name}-data", "/data"),)
    )
    network = NetworkFacts("e" * 64, f"{name}-net")
    return Inventory(containers=(*containers, other), networks=(network,), volumes=volumes)


async def retire_asked(pilot: Pilot[None]) -> None:
    """The typed confirmation of `X` on a docker assistant. Planning a retire asks a Docker
    engine, which the demo has none of: the plan is made from a fixed inventory by the same
    function (`plan_retire`), and the question is the one the console asks
    (tui/lifecycle.py: `retire_question`)."""
    await fleet_listed(pilot)
    await row_selected(pilot, RETIRED)
    engine = Engine("lab", DOWN_ENGINE, None, implicit=False)
    plan = plan_retire(engine, RETIRED, retire_inventory(RETIRED))
    await pilot.app.push_screen(retire_question(RETIRED, RETIRED, plan))
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, TypedConfirmScreen), "retire")
    steady_cursors(pilot)


async def restore_asked(pilot: Pilot[None]) -> None:
    """The restore screen at its question: the file checked against its record, the preflight
    report (a conflict with its path), the safety backup taken. The demo has no runtime to
    import into, so the screen is given the job as the console's restore flow would."""
    await fleet_listed(pilot)
    app = pilot.app
    assert isinstance(app, RoostApp)
    now = app.context.clock()
    folder = Path("/home/you/.local/share/roost")  # where the paths say; never written
    source = backup_destination(folder, "ada", now - timedelta(days=2))
    screen = RestoreScreen("ada", source)
    await app.push_screen(screen)
    screen.job = Job(
        id=f"{now:%H%M%S}",
        kind=JobKind.RESTORE,
        assistant_id="ada",
        assistant_name="ada",
        route=JobRoute.SYNC,
        state=JobState.AWAITING,
        destination=source,
        started_at=now - timedelta(seconds=40),
        size=723_517_440,
        sha256="5f1d" * 16,
        verified=True,
        verification="verified",
        preflight=Preflight(
            True, 12, 3, 1_204, 1_219, conflicts=(Problem("edited since", "memory/notes.md"),)
        ),
        safety_backup=backup_destination(folder, "ada", now),
        safety_job_id=f"{now:%H%M%S}-s",
    )
    await wait_until(pilot, lambda: screen.query_one("#restore-name").display, "the question")
    steady_cursors(pilot)


def steady_cursors(pilot: Pilot[None]) -> None:
    """The text fields' cursors stop blinking (shown): when the snapshot is taken would
    otherwise decide whether one shows."""
    for field in pilot.app.screen.query(Input):
        field.cursor_blink = False


async def sessions_offered(pilot: Pilot[None]) -> None:
    """`w` on this machine: which of its tmux sessions to watch."""
    await fleet_listed(pilot)
    await row_selected(pilot, "this machine")
    await pilot.press("w")
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, SessionPicker), "the picker")
    await toasts_gone(pilot)


def demo_jobs(context: Context) -> None:
    """Four backups, newest first: one downloading, one interrupted (its roost process died
    mid-export), one failed, one complete and verified. Written through the real JobStore,
    as the processes that ran them would have."""
    now = context.clock()
    database = StateDatabase.at(context.paths)
    folder = Path("/home/you/.local/share/roost")  # where the paths say; never written

    def job(name: str, minutes_ago: float, route: JobRoute, state: JobState, **facts: Any) -> Job:
        started = now - timedelta(minutes=minutes_ago)
        return Job(
            id=f"{started:%H%M%S}",
            kind=JobKind.BACKUP,
            assistant_id=name,
            assistant_name=name,
            route=route,
            state=state,
            destination=backup_destination(folder, name, started),
            started_at=started,
            **facts,
        )

    mib = 1 << 20
    running = job(
        "ada",
        2,
        JobRoute.SIGNED_URL,
        JobState.DOWNLOADING,
        runtime_job_id="export-7f3a",
        bytes_done=276 * mib,
        bytes_total=690 * mib,
    )
    interrupted = job("bob", 25, JobRoute.SYNC, JobState.EXPORTING)
    failed = job(
        "cora",
        48,
        JobRoute.SIGNED_URL,
        JobState.FAILED,
        finished_at=now - timedelta(minutes=47),
        error="the runtime answered 503: an upgrade is in progress",
    )
    done = job(
        "ada",
        95,
        JobRoute.SIGNED_URL,
        JobState.COMPLETE,
        finished_at=now - timedelta(minutes=88),
        size=655 * mib,
        sha256="9f2c" * 16,
        verified=True,
    )
    done = dataclasses.replace(done, result_path=done.destination)
    dead = ProcessIdentity(DEAD_PID, None, socket.gethostname())
    JobStore(database, owner=dead).put(interrupted)
    store = JobStore(database, now=context.clock)
    for each in (done, failed, running):
        store.put(each)
    store.load()  # as the next roost to start would: the dead process's export is over


def demo_events(context: Context) -> None:
    """Status changes of the last run, as the events panel shows them at start: eve woken (one
    container was up already), put to sleep, then its engine gone."""
    now = context.clock()
    steps = (
        Step(Kind.CONTAINER, "eve-assistant", Outcome.DONE, STARTED),
        Step(Kind.CONTAINER, "eve-gateway", Outcome.DONE, STARTED),
        Step(Kind.CONTAINER, "eve-credential-executor", Outcome.UNCHANGED, ALREADY_RUNNING),
        Step(Kind.CONTAINER, "eve-credential-executor", Outcome.DONE, STOPPED),
        Step(Kind.CONTAINER, "eve-gateway", Outcome.DONE, STOPPED),
        Step(Kind.CONTAINER, "eve-assistant", Outcome.DONE, STOPPED),
        Step(Kind.ENGINE, "lab", Outcome.FAILED, "cannot connect: the engine is not running"),
    )
    minutes = (41, 41, 41, 12, 12, 12, 3)
    events = [
        Event(now - timedelta(minutes=ago, seconds=-index), str(step))
        for index, (ago, step) in enumerate(zip(minutes, steps, strict=True))
    ]
    StateDatabase.at(context.paths).add_events(events)


def demo_backups(context: Context) -> None:
    """ada's backups, newest first: two verified, one whose bytes changed since, one whose file
    is gone, one copied into the backups directory by hand (unrecorded), and an old verified
    one. Sparse files: the sizes are real, the disk holds nothing."""
    now = context.clock()
    database = StateDatabase.at(context.paths)
    folder = backups_dir(context.paths.data_dir)
    folder.mkdir(parents=True)
    mib = 1 << 20
    rows = (
        (timedelta(hours=2), 655 * mib, "verified"),
        (timedelta(days=1, hours=3), 651 * mib, "verified"),
        (timedelta(days=2), 648 * mib, "changed"),
        (timedelta(days=4), 640 * mib, "missing"),
        (timedelta(days=9), 612 * mib, "unrecorded"),
        (timedelta(days=30), 590 * mib, "verified"),
    )
    for age, size, state in rows:
        created = now - age
        path = backup_destination(context.paths.data_dir, "ada", created)
        if state != "missing":
            with path.open("wb") as file:
                file.truncate(size)
            os.utime(path, (created.timestamp(), created.timestamp()))
        if state != "unrecorded":
            verified = None if state == "changed" else created
            job = f"{created:%Y%m%d-%H%M%S}-a1b2c3"
            database.put_backup(BackupRow("ada", path, created, size, "9f2c" * 16, job, verified))


async def backups_shown(pilot: Pilot[None]) -> None:
    """B on ada's row: the backups screen with each state, the newest under the cursor."""
    await fleet_listed(pilot)
    await row_selected(pilot, "ada")
    await pilot.press("B")
    app = pilot.app
    await wait_until(pilot, lambda: isinstance(app.screen, BackupsScreen), "the backups screen")
    table = app.screen.query_one("#backups", KeyedTable)
    await wait_until(pilot, lambda: len(table.rows_shown) == 6, "the backups")


async def jobs_shown(pilot: Pilot[None]) -> None:
    """The jobs table with the cursor in it: the newest job's details beside it."""
    await fleet_listed(pilot)
    await wait_until(
        pilot,
        lambda: len(pilot.app.screen.query_one("#jobs", KeyedTable).rows_shown) == 4,
        "the jobs",
    )
    await pilot.press("j")


async def events_shown(pilot: Pilot[None]) -> None:
    """The events panel open on the last run's status changes."""
    await fleet_listed(pilot)
    await pilot.press("e")
    await wait_until(pilot, lambda: pilot.app.screen.query_one("#events-panel").display, "events")


MISSING_SHELL = "/opt/agents/bin/claude --resume"
"""A `terminal.shell` naming a program that is not there."""


async def pane_failed(pilot: Pilot[None]) -> None:
    """`t` with a shell that cannot start: the pane stays, and its status line says why."""
    await fleet_listed(pilot)
    await pilot.press("t")
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, PanesScreen), "the pane")
    screen = pilot.app.screen
    assert isinstance(screen, PanesScreen)
    await wait_until(
        pilot, lambda: bool(screen.panes) and screen.panes[0].connection.over, "the failure"
    )
    await toasts_gone(pilot)


OLD_TEST = """import { run } from "./runner";

export async function suite() {
  await run("unit", { parallel: false });
}
"""
NEW_TEST = """import { run } from "./runner";

export async function suite() {
  await run("unit", { parallel: true, retries: 2 });
  await run("integration");
}
"""


def demo_inbox(app: RoostApp) -> ActivityBatch:
    """What the follower would report for the demo fleet: ada waits on a file edit (with its
    diff) and a high-risk command, gpu-box on two questions, eve on a secret; cora works."""
    now = app.context.clock()
    keys = {a.id: a.key for a in app.fleet}

    def item(name: str, minutes: float, kind: InteractionKind, request: object) -> Interaction:
        return Interaction(
            assistant_key=keys[name],
            assistant_id=name,
            assistant=name,
            request_id=f"req-{name}-{minutes}",
            kind=kind,
            conversation=f"conv-{name}-7f3a",
            since=now - timedelta(minutes=minutes),
            request=request,  # type: ignore[arg-type]
        )

    edit = Confirmation(
        tool="file_edit",
        input_json=json.dumps(
            {"path": "test/suite.ts", "old_string": "parallel: false", "new_string": "..."},
            indent=2,
        ),
        risk="medium",
        risk_reason="writes a file in the workspace",
        execution_target="sandbox",
        patterns=(TrustOption("test/**", "test/**"), TrustOption("any file", "**")),
        scopes=(TrustOption("this project", "project"), TrustOption("everywhere", "global")),
        diff=Diff("test/suite.ts", OLD_TEST, NEW_TEST),
    )
    command = Confirmation(
        tool="bash",
        input_json=json.dumps({"command": "rm -rf build && npm ci"}, indent=2),
        risk="high",
        risk_reason="deletes files outside the sandbox",
        execution_target="host",
    )
    questions = Questions(
        (
            Question(
                "q1",
                "Which GPU should the training run use?",
                options=(Choice("a100", "A100 (80 GB)"), Choice("l4", "L4", "cheaper, slower")),
            ),
            Question("q2", "Anything to tell the reviewers?", placeholder="a note"),
        )
    )
    secret = SecretRequest("github", "token", "A token with repo scope")
    inbox = (
        item("ada", 6, InteractionKind.CONFIRMATION, edit),
        item("ada", 4, InteractionKind.CONFIRMATION, command),
        item("gpu-box", 2.5, InteractionKind.QUESTION, questions),
        item("eve", 1, InteractionKind.SECRET, secret),
    )
    activities = {
        each.assistant_key: Activity(
            ActivityState.NEEDS_YOU, each.summary, each.since, "event stream"
        )
        for each in reversed(inbox)  # an assistant's oldest item says what it waits for
    }
    activities[keys["cora"]] = Activity(
        ActivityState.WORKING,
        "tool_running · Running the test suite",
        now - timedelta(seconds=12),
        "event stream",
    )
    return ActivityBatch(activities, inbox, (), ())


async def streams_stopped(pilot: Pilot[None]) -> None:
    """The console follows no event stream any more (the demo's runtimes refuse them), so what
    a scene then gives it by hand (`RoostApp.activity.show_batch`) is what stays on screen."""
    app = pilot.app
    assert isinstance(app, RoostApp)
    followed = app.roost.activity_endpoints().keys()
    # A later refresh of the fleet (an engine's first scan, under load) must not follow them
    # again: the console stops looking for streams to follow, then drops those it has.
    app.activity.follow_fleet = lambda: None  # type: ignore[method-assign]
    app.activity.follower.follow({})

    def stopped() -> bool:
        activity = {a.key: a.activity for a in app.fleet}
        return all((a := activity.get(key)) and a.evidence == UNFOLLOWED for key in followed)

    await wait_until(pilot, stopped, "the streams stopped")


async def inbox_open(pilot: Pilot[None]) -> None:
    """The inbox over the demo fleet, the oldest item (a file edit with its diff) selected."""
    await fleet_listed(pilot)
    await streams_stopped(pilot)
    app = pilot.app
    assert isinstance(app, RoostApp)
    app.activity.show_batch(demo_inbox(app))
    await pilot.press("i")
    await wait_until(pilot, lambda: isinstance(app.screen, InboxScreen), "the inbox")
    await wait_until(pilot, lambda: app.screen.query_one("#inbox-detail").region.height > 3, "it")


async def activity_shown(pilot: Pilot[None]) -> None:
    """The fleet with its activity: four items need you (the count in the title), cora works."""
    await fleet_listed(pilot)
    await streams_stopped(pilot)
    app = pilot.app
    assert isinstance(app, RoostApp)
    app.activity.show_batch(demo_inbox(app))
    await row_selected(pilot, "cora")  # (ada's facts name a temporary directory)


async def agents_seen(pilot: Pilot[None]) -> None:
    """The fleet once roost has made out every demo agent: each session's row has its state,
    the one that needs you resting on its hook and on its screen, and the inbox has its dialog."""
    await fleet_listed(pilot)
    app = pilot.app
    assert isinstance(app, RoostApp)
    wanted = {each.session: each.state for each in AGENTS}

    def seen() -> bool:
        host = next(a for a in app.fleet if a.key == HOST_KEY)
        names = {session.id: session.name for session in host.sessions}
        shown = {names.get(key): found for key, found in host.session_activity.items()}
        return (
            {name: found.state for name, found in shown.items()} == wanted
            and "screen shows the dialog" in shown[ASKING].evidence
            and len(app.activity.inbox) == 1
        )

    await wait_until(pilot, seen, "the agents")
    await pilot.pause()  # the app takes the notification ("api needs you") first
    await toasts_gone(pilot)


async def agents_shown(pilot: Pilot[None]) -> None:
    """The agents' sessions, the cursor on the one that needs you: the detail panel says what
    it asks and what roost knows it from."""
    await agents_seen(pilot)
    await row_selected(pilot, ASKING)


async def agent_inbox(pilot: Pilot[None]) -> None:
    """The inbox with the agent's permission dialog selected (the only item)."""
    await agents_seen(pilot)
    app = pilot.app
    await pilot.press("i")
    await wait_until(pilot, lambda: isinstance(app.screen, InboxScreen), "the inbox")
    await wait_until(pilot, lambda: app.screen.query_one("#inbox-detail").region.height > 3, "it")


async def hosts_shown(pilot: Pilot[None]) -> None:
    """The fleet with HOSTS: two that answer, their sessions under them, and one that is down."""
    app = pilot.app
    assert isinstance(app, RoostApp)

    def listed() -> bool:
        found = app.roost.snapshot.hosts
        rows = demo_rows(app) + sum(1 + len(h.listing.sessions if h.listing else ()) for h in found)
        answered = all(h.listing is not None or h.problem is not None for h in found)
        return answered and len(table_names(app)) == rows and probed(app)

    await wait_until(pilot, listed, "the hosts")


@dataclass(frozen=True)
class Scene:
    """A key screen: how the app gets there, and what roost's state holds before it starts."""

    show: Callable[[Pilot[None]], Awaitable[None]]
    seed: Seed | None = None
    tmux: bool = True
    """Whether it needs the demo's tmux server (without, tmux is not installed)."""
    shell: str | None = None
    """What `t` runs, when not the demo agent."""
    screenshot: bool = True
    """Whether screenshots/ shows it too (a screen worth showing in the README)."""
    sessions: Sessions = SESSIONS
    """The sessions of the demo's tmux server that run `sleep`."""
    agents: tuple[DemoAgent, ...] = ()
    """Coding agents started in sessions of their own too (the clock is then AGENTS_NOW)."""
    hosts: tuple[DemoHost, ...] = ()
    """`[[hosts]]` hosts, over the demo's sshd (the scene needs sshd)."""


SCENES: dict[str, Scene] = {
    "main": Scene(fleet_listed),
    "filter": Scene(fleet_filtered),
    "help": Scene(help_open),
    "terminal": Scene(terminal_open),
    "panes": Scene(panes_grid),
    "rewind": Scene(pane_rewound),
    "sessions": Scene(sessions_offered),
    "hosts": Scene(hosts_shown, hosts=HOSTS),
    "quit": Scene(quit_asked, tmux=False, screenshot=False),
    "retire": Scene(retire_asked, tmux=False),
    "restore": Scene(restore_asked, tmux=False),
    "jobs": Scene(jobs_shown, demo_jobs, tmux=False),
    "events": Scene(events_shown, demo_events, tmux=False),
    "pane-failed": Scene(pane_failed, tmux=False, shell=MISSING_SHELL, screenshot=False),
    "inbox": Scene(inbox_open, tmux=False),
    "backups": Scene(backups_shown, demo_backups, tmux=False),
    "activity": Scene(activity_shown, tmux=False),
    "agents": Scene(agents_shown, sessions=AGENT_SESSIONS, agents=AGENTS),
    "agents-inbox": Scene(agent_inbox, sessions=AGENT_SESSIONS, agents=AGENTS),
}
"""Each key screen by name: the snapshot tests and screenshots/ draw these same scenes."""
