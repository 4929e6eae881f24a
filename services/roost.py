"""The application layer: every operation roost offers, once, for the console and the commands.

`Roost` is built from the `Context` and owns what operations share: the HTTP client, the fleet's
sources (and through them the platform client), the fleet as last seen, the job store, the
exporter and the attacher. Each operation is one method; the command line formats its results
and exits, the console binds a key to it and draws what it yields. Domains never import this
module; it may import every domain (see docs/architecture.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path

import httpx

from services.activity.client import ActivityClient, AnswerRefused
from services.activity.model import (
    Activity,
    ActivityState,
    Allow,
    Answer,
    AnswerRecord,
    Interaction,
    InteractionKind,
    OptionAnswer,
    Outcome,
    Questions,
    Secret,
    SkipAnswer,
    TextAnswer,
    interaction_id,
    session_key,
)
from services.activity.tracker import AssistantActivity
from services.agents.answer import answer_in_pane
from services.agents.monitor import AgentMonitor
from services.agents.spool import spool_dir
from services.context import Context
from services.core.config import Host
from services.core.errors import RoostError
from services.core.http import http_client
from services.core.mode import Mode
from services.core.safe_text import error_text
from services.core.state import AnswerRow, StateDatabase
from services.docker.discovery import container_names
from services.docker.engines import Engine, configured_engines
from services.docker.lifecycle import (
    RetirePlan,
    Step,
    engine_of,
    inspect_retire,
    retire_docker,
    sleep_docker,
    sleep_plan,
    wake_docker,
    wake_local,
)
from services.fleet.builder import FleetBuilder, health_target, health_targets
from services.fleet.model import (
    HOST_KEY,
    Assistant,
    AssistantKind,
    FleetSnapshot,
    Source,
    find_assistant,
    ssh_host_key,
)
from services.fleet.sources import FleetSources, Update, with_activity, with_session_activity
from services.health.probes import UNANSWERED
from services.health.probing import DEFAULT_CONCURRENCY, Prober
from services.health.target import HealthTarget
from services.hosts.probe import HostProbe, probe_hosts, ssh_version
from services.jobs.exports import Exporter, backup_destination
from services.jobs.library import BackupEntry, BackupLibrary, Hashing, backups_dir
from services.jobs.record import Job, JobKind
from services.jobs.repair import Repair, RepairReport, backup_with_repair, docker_wake, local_wake
from services.jobs.restore import RestoreOptions, Restorer
from services.jobs.store import JobStore
from services.terminal.attach import (
    Attacher,
    Attachment,
    ContainerPlace,
    HostPlace,
    ManagedPlace,
    Place,
    SshPlace,
)
from services.terminal.backend import TerminalBackend, TerminalSize
from services.terminal.host_tmux import host_tmux
from services.terminal.signals import TerminalSignal
from services.terminal.tmux import TmuxListing, TmuxSession
from services.vellum.auth import RuntimeEndpoint
from services.vellum.lockfile import choose_target, set_active
from services.vellum.platform import PlatformClient

log = logging.getLogger(__name__)

ANSWERS_LOOKED_AT = 1000
"""How far back `Roost.answered` looks for an answer already sent."""


class Action(StrEnum):
    """What an operator can do to an assistant (its row's keys, and the commands)."""

    ATTACH = "attach"
    BACKUP = "backup"
    WAKE = "wake"
    SLEEP = "sleep"
    RETIRE = "retire"
    USE = "use"


@dataclass(frozen=True)
class Capabilities:
    """The actions an assistant supports, and why each other one is refused (one line)."""

    actions: frozenset[Action]
    refusals: tuple[tuple[Action, str], ...] = ()

    def __contains__(self, action: object) -> bool:
        return action in self.actions

    def refusal(self, action: Action) -> str:
        """Why `action` is not offered; empty when it is."""
        return dict(self.refusals).get(action, "")

    @staticmethod
    def of(assistant: Assistant) -> Capabilities:
        """What can be done to `assistant`, and why not the rest: its kind decides, then
        whether the lockfile lists it and whether it has a runtime."""
        name, kind, known = assistant.name, assistant.kind, _known_kind(assistant)
        # What the row is, as a refusal opens: this machine is no assistant of any kind.
        what = (
            f"{name} is not an assistant"
            if known in (AssistantKind.THIS_MACHINE, AssistantKind.SSH_HOST)
            else f"{name} is a {kind} assistant"
        )
        refusals: dict[Action, str] = {}
        if known not in TERMINAL_KINDS:
            refusals[Action.ATTACH] = (
                f"{what}: roost reaches it over HTTP only and has no terminal for it"
            )
        if assistant.source is not Source.LOCKFILE:
            outside = f"{name} is not in the Vellum lockfile"
            refusals[Action.USE] = f"{outside}: only its assistants can be the active one"
            refusals[Action.BACKUP] = f"{outside}: roost backs up Vellum assistants"
        elif not assistant.runtime_url:
            refusals[Action.BACKUP] = f"{name} has no runtime URL: there is nothing to export from"
        if known not in WAKE_KINDS:
            refusals[Action.WAKE] = f"{what}: roost wakes docker and local ones"
        if known not in CONTAINER_KINDS:
            # `vellum sleep` stops a local assistant's daemon; roost leaves that to it.
            hint = f"; run `vellum sleep {assistant.id}`" if known is AssistantKind.LOCAL else ""
            refusals[Action.SLEEP] = f"{what}: roost puts docker ones to sleep{hint}"
            refusals[Action.RETIRE] = f"{what}: roost retires docker ones"
        return Capabilities(frozenset(Action) - refusals.keys(), tuple(refusals.items()))


TERMINAL_KINDS = frozenset(
    {
        AssistantKind.THIS_MACHINE,
        AssistantKind.LOCAL,
        AssistantKind.DOCKER,
        AssistantKind.MANAGED,
        AssistantKind.SSH_HOST,
    }
)
"""The kinds whose terminal roost reaches: this machine's (where local assistants run too), a
container's, a managed assistant's through the platform's terminal sessions, and a host's over
ssh."""
WAKE_KINDS = frozenset({AssistantKind.LOCAL, AssistantKind.DOCKER})
"""The kinds roost wakes: a local daemon (through `vellum wake`), docker containers."""
CONTAINER_KINDS = frozenset({AssistantKind.DOCKER})
"""The kinds made of containers roost can stop and remove (sleep, retire)."""


def _known_kind(assistant: Assistant) -> AssistantKind | None:
    """`assistant`'s kind; None for a lockfile cloud roost does not know, whose text may even
    spell a kind's value (a `cloud` of "local host" is not this machine)."""
    return assistant.kind if isinstance(assistant.kind, AssistantKind) else None


def _require(assistant: Assistant, action: Action) -> None:
    """Raise RoostError, saying why, unless `assistant` supports `action`."""
    refusal = Capabilities.of(assistant).refusal(action)
    if refusal:
        raise RoostError(refusal)


@dataclass(frozen=True)
class HostsReport:
    """What `Roost.hosts` found: this machine's ssh client, and each host's probe (in
    config.toml's order)."""

    ssh_version: str | None
    probes: tuple[HostProbe, ...]


@dataclass(frozen=True)
class AttachRequest:
    """Open a pane on `session` of `assistant` (None: choose one, or a new shell), watching or
    driving (None: as configured): from the main screen's keys or `roost attach`."""

    assistant: Assistant
    session: str | None
    mode: Mode | None
    choose: bool = False
    """Offer the session picker even where a new shell is the default (driving on this
    machine): `roost attach` without SESSION."""
    shell: bool = False
    """A new shell, without asking, wherever the assistant's terminal lives (`t` on a host)."""


class Roost:
    """The operations, over one HTTP client and one view of the fleet."""

    def __init__(self, context: Context, http: httpx.AsyncClient) -> None:
        self.context = context
        self.http = http
        self.sources = FleetSources(context, http)
        self.snapshot = self.sources.empty_snapshot()
        self._builder = FleetBuilder()
        self.fleet: tuple[Assistant, ...] = self._builder.build(self.snapshot)
        self.jobs = JobStore.at(context.paths)
        self.state = StateDatabase.at(context.paths)
        """Where answers are recorded (the jobs have theirs in `jobs`)."""
        self.activity_client = ActivityClient(http)
        self.agents = AgentMonitor(
            context.tmux, self.state, spool_dir(context.paths, context.environ), HOST_KEY
        )
        """The coding agents in this machine's tmux sessions (services/agents)."""
        self.library = BackupLibrary(
            self.state,
            backups_dir(context.paths.data_dir),
            keep=context.config.backups_keep,
            now=context.clock,
        )
        """Every backup roost saved (the exporter records them) and the backups directory."""
        self.exporter = Exporter(http, library=self.library)
        self.restorer = Restorer(http, self.library)
        self.host_agents = {
            host.name: AgentMonitor(
                host_tmux(context.ssh, host), self.state, None, ssh_host_key(host.name)
            )
            for host in context.config.hosts
        }
        """The coding agents in each host's tmux sessions, from their panes and signals."""
        self.engines = configured_engines(context.config, context.environ)
        """The Docker engines roost watches (config.toml's, else `DOCKER_HOST`'s)."""
        self.attacher = Attacher(
            context.tmux,
            context.environ,
            shell=context.config.terminal_shell,
            engines=self.engines,
            http=http,
            platform=lambda: self.sources.platform,
            ssh=context.ssh,
        )

    @classmethod
    @contextlib.asynccontextmanager
    async def opened(cls, context: Context) -> AsyncIterator[Roost]:
        """A `Roost` with an HTTP client of its own, closed on the way out (the commands)."""
        async with http_client() as http:
            yield cls(context, http)

    # -- the fleet ---------------------------------------------------------------------------

    def apply(self, update: Update) -> bool:
        """Apply a source's update to the fleet; True when anything changed. Unchanged
        assistants stay the very same objects, so a screen redraws only what changed."""
        snapshot = update(self.snapshot)
        if snapshot == self.snapshot:
            return False
        self.snapshot = snapshot
        self.fleet = self._builder.build(snapshot)
        return True

    async def sweep(self, *, health: bool = True, activity: bool = False) -> tuple[Assistant, ...]:
        """Every source once, then together health (unless `health` is False) and, with
        `activity`, each runtime's pending list (`roost ps`, which follows no event stream);
        the fleet it makes."""
        snapshot, fleet = await self.sources.sweep(health=False)
        self.apply(lambda _: snapshot)
        steps = [self.sources.health(snapshot, fleet)] if health else []
        if activity:
            steps += [self._pending_activity(), self.look_at_agents()]
        for update in await asyncio.gather(*steps):
            self.apply(update)
        return self.fleet

    async def find(self, name: str) -> Assistant:
        """Any row of the fleet by id or name (`local`: this machine); sweeps without health.
        Raises RoostError listing the choices."""
        return find_assistant(await self.sweep(health=False), name)

    async def choose(self, name: str | None) -> Assistant:
        """An assistant of the lockfile by id or name, else the active one (the commands'
        default). Reads the lockfile and the engines again (where a docker assistant runs),
        nothing else: no platform listing, no health. Raises RoostError."""
        for update in await asyncio.gather(self.sources.registry(), self.sources.engines()):
            self.apply(update)
        assert self.snapshot.lockfile is not None  # the registry's reading is there now
        entry = choose_target(self.snapshot.lockfile, name)
        return next(
            a for a in self.fleet if a.id == entry.assistant_id and a.source is Source.LOCKFILE
        )

    def assistant(self, assistant_id: str) -> Assistant | None:
        """The lockfile's assistant `assistant_id` as last seen; None when it is gone."""
        return next(
            (a for a in self.fleet if a.id == assistant_id and a.source is Source.LOCKFILE), None
        )

    def named(self, name: str) -> Assistant:
        """The lockfile's assistant called `name` (its backups are filed by name), as last
        seen. Raises RoostError when none is, any more."""
        for assistant in self.fleet:
            if assistant.name == name and assistant.source is Source.LOCKFILE:
                return assistant
        raise RoostError(f"{name} is no longer in the Vellum lockfile")

    def capabilities(self, assistant: Assistant) -> Capabilities:
        """What can be done to `assistant`, and why not the rest (`Capabilities.of`)."""
        return Capabilities.of(assistant)

    # -- hosts -------------------------------------------------------------------------------

    async def hosts(self) -> HostsReport:
        """Every `[[hosts]]` host probed at once (reachable, round trip, versions, shared
        connection), with this machine's ssh client: `roost hosts`, `roost doctor`."""
        ssh = self.context.ssh
        client, probes = await asyncio.gather(
            asyncio.to_thread(ssh_version, ssh.executable),
            probe_hosts(ssh, self.context.config.hosts),
        )
        return HostsReport(client, tuple(probes))

    # -- jobs --------------------------------------------------------------------------------

    def backup(self, assistant: Assistant, output: Path | None = None) -> AsyncGenerator[Job]:
        """Back `assistant` up to `output` (default: a new file in the backups dir), yielding
        the job's snapshots; an export that finds nothing listening wakes a docker or local
        assistant once and tries again. Raises RoostError, before any job, when it has no
        runtime to export from."""
        target = _endpoint(self.sources, self.snapshot, assistant)
        wake = _wake_repair(self, assistant)
        return backup_with_repair(
            self.exporter, target, output or self._destination(assistant), wake
        )

    def resume(self, job: Job) -> AsyncGenerator[Job]:
        """Carry on with a job (a backup or a restore) whose roost process ended before it did
        (claimed first). Raises RoostError when its assistant is gone or has no runtime any
        more."""
        assistant = self.assistant(job.assistant_id)
        if assistant is None:
            raise RoostError("its assistant is gone")
        target = _endpoint(self.sources, self.snapshot, assistant)
        if job.kind is JobKind.RESTORE:
            return self.restorer.resume(target, job)
        return self.exporter.resume(target, job)

    def follow(self, assistant: Assistant, runtime_job: str) -> AsyncGenerator[Job]:
        """Follow an export the assistant's runtime already runs, into a new backup file."""
        target = _endpoint(self.sources, self.snapshot, assistant)
        return self.exporter.follow(target, runtime_job, self._destination(assistant))

    def prepare_restore(
        self, assistant: Assistant, source: Path, options: RestoreOptions
    ) -> AsyncGenerator[Job]:
        """Restoring `assistant` from the bundle `source`, up to the user's word
        (services/jobs/restore.py): the file checked against the library, the runtime's
        preflight, a safety backup (`backup`, so recorded like any). The job then awaits
        confirmation (the assistant's name typed back): `restore` it, or `decline_restore`;
        after a dry run it is COMPLETE. The safety backup's own snapshots come through too.
        Raises RoostError, before any job, when it has no runtime to restore into."""
        target = _restore_target(self, assistant)
        wanted = options.safety_backup and not options.dry_run
        safety = (lambda: self.backup(assistant)) if wanted else None
        return self.restorer.prepare(target, source.absolute(), options, safety)

    def restore(self, job: Job) -> AsyncGenerator[Job]:
        """Import what `prepare_restore` checked, once the user confirmed. Raises RoostError
        when the job does not await confirmation or its assistant is gone."""
        assistant = self.assistant(job.assistant_id)
        if assistant is None:
            raise RoostError(f"{job.assistant_name} is gone: nothing was imported")
        return self.restorer.finish(_restore_target(self, assistant), job)

    def decline_restore(self, job: Job) -> Job:
        """The user did not confirm: the job ends CANCELLED, nothing imported."""
        return self.restorer.decline(job)

    def follow_restore(
        self, assistant: Assistant, runtime_job: str, source: Path
    ) -> AsyncGenerator[Job]:
        """Follow an import the assistant's runtime already runs (a 409 named it)."""
        return self.restorer.follow(_restore_target(self, assistant), runtime_job, source)

    # -- the backup library (blocking: run these in a thread) ------------------------------------

    def backups(self, name: str | None = None) -> list[BackupEntry]:
        """The backups of the assistant called `name` (every one's when None), newest first:
        those roost recorded and the `.vbundle` files it finds in the backups directory.
        Raises StateError."""
        return self.library.entries(name)

    def verify_backup(self, path: Path) -> Iterator[Hashing]:
        """Hash the backup at `path` again against its record, with progress; the last report
        carries the `BackupCheck`. Raises RoostError when it cannot be read."""
        return self.library.verifying(path)

    def delete_backup(self, path: Path) -> None:
        """Delete a backup file and its record. Raises RoostError."""
        self.library.delete(path)

    def _destination(self, assistant: Assistant) -> Path:
        return backup_destination(self.context.paths.data_dir, assistant.name, self.exporter.now())

    # -- lifecycle (blocking: run these in a thread) --------------------------------------------

    def engine(self, assistant: Assistant) -> Engine:
        """The engine the fleet saw a docker assistant on, else the one holding its containers.
        Raises RoostError."""
        return engine_of(assistant.id, self.engines, seen_on=assistant.where)

    def wake(self, assistant: Assistant) -> Iterator[Step]:
        """Start a docker assistant's containers, or a local one's daemon, step by step."""
        _require(assistant, Action.WAKE)
        if assistant.kind is AssistantKind.LOCAL:
            return wake_local(assistant.id)
        return wake_docker(self.engine(assistant), assistant.id)

    def plan_sleep(self, assistant: Assistant) -> tuple[str, ...]:
        """The containers sleep would stop (only those running), to name in a confirmation."""
        _require(assistant, Action.SLEEP)
        return sleep_plan(self.engine(assistant), assistant.id)

    def sleep(self, assistant: Assistant) -> Iterator[Step]:
        """Stop a docker assistant's containers, step by step."""
        _require(assistant, Action.SLEEP)
        return sleep_docker(self.engine(assistant), assistant.id)

    def plan_retire(self, assistant: Assistant) -> RetirePlan:
        """What retiring a docker assistant removes for good, as it is now."""
        _require(assistant, Action.RETIRE)
        return inspect_retire(self.engine(assistant), assistant.id)

    def retire(self, plan: RetirePlan) -> Iterator[Step]:
        """Remove what `plan` names, step by step; nothing outside it."""
        return retire_docker(plan)

    # -- terminals ---------------------------------------------------------------------------

    async def place(self, assistant: Assistant) -> Place:
        """Where `assistant`'s terminal lives. Raises RoostError when roost has none for it."""
        if _known_kind(assistant) is AssistantKind.SSH_HOST:
            return SshPlace(self.host(assistant.name))
        return await _place_of(self.attacher, assistant)

    def host(self, name: str) -> Host:
        """The host of `[[hosts]]` called `name`. Raises RoostError listing those there are."""
        hosts = self.context.config.hosts
        found = next((host for host in hosts if host.name == name), None)
        if found is None:
            names = ", ".join(host.name for host in hosts) or "none (add [[hosts]] to config.toml)"
            raise RoostError(f"no host {name!r} in config.toml; the hosts are: {names}")
        return found

    async def terminal_place(self, name: str) -> Place:
        """Where the terminal called `name` lives (the commands' ASSISTANT): a host of
        `[[hosts]]` by its name, at once (no other host is asked anything), else an assistant
        by id or name (`Roost.find`). Raises RoostError listing both kinds of choice."""
        if any(host.name == name for host in self.context.config.hosts):
            return SshPlace(self.host(name))
        return await self.place(await self.find_terminal(name))

    async def find_terminal(self, name: str) -> Assistant:
        """`Roost.find`, whose error names the hosts of `[[hosts]]` too (`roost attach`)."""
        try:
            return await self.find(name)
        except RoostError as error:
            hosts = ", ".join(host.name for host in self.context.config.hosts)
            raise RoostError(f"{error}; the hosts are: {hosts}" if hosts else str(error)) from None

    async def sessions(self, place: Place) -> TmuxListing:
        """The tmux sessions at `place`; failures come back as the listing's state."""
        return await self.attacher.sessions(place)

    async def session(self, place: Place, name: str) -> TmuxSession:
        """The tmux session `name` at `place`. Raises RoostError when there is none of that
        name (listing those there are) or roost cannot list them."""
        return await self.attacher.running_session(place, name)

    def new_shell(self, assistant: Assistant, place: Place) -> Attachment:
        """A new shell of `assistant` at `place` (numbered, for its pane's title)."""
        return self.attacher.new_shell(assistant.name, place)

    def open(self, attachment: Attachment, mode: Mode, *, revive: bool = False) -> TerminalBackend:
        """The backend that carries `attachment`'s bytes in `mode` (started by its pane)."""
        return self.attacher.backend(attachment, mode, revive=revive)

    async def watch_for_share(
        self, assistant: Assistant, name: str
    ) -> tuple[Attachment, TerminalBackend, TerminalSize]:
        """What `roost share` serves: a read-only attach to tmux session `name` of `assistant`,
        at its window's size on this machine (so the page shows the window whole), else 80x24.
        Raises RoostError when there is no such session."""
        place = await self.place(assistant)
        await self.session(place, name)
        attachment = Attachment(assistant.name, place, name)
        window = None
        if isinstance(place, HostPlace):
            window = await asyncio.to_thread(self.context.tmux.window, name)
        size = TerminalSize(window.columns, window.rows) if window else TerminalSize(80, 24)
        return attachment, self.open(attachment, Mode.WATCH), size

    # -- activity and the needs-you inbox ------------------------------------------------------

    def activity_endpoints(self) -> dict[str, RuntimeEndpoint]:
        """The runtime of every assistant that has one and is not asleep or invalid (what
        health probes), by fleet key: what the console follows and `roost inbox` asks."""
        names = {assistant.key: assistant.name for assistant in self.fleet}
        return {
            target.key: _runtime_endpoint(self.sources, self.snapshot, target, names[target.key])
            for target in health_targets(self.snapshot, self.fleet)
        }

    async def look_at_agents(self) -> Update:
        """What the coding agents in this machine's and each host's tmux sessions are doing
        now (one look at each, at once: their hooks' new events here, the panes as last
        listed, the screens worth reading)."""
        now = self.context.clock()
        listings = {found.host.name: found.listing for found in self.snapshot.hosts}
        owners = [HOST_KEY, *(ssh_host_key(name) for name in self.host_agents)]
        reports = await asyncio.gather(
            asyncio.to_thread(self.agents.look, self.snapshot.tmux, now),
            *(
                asyncio.to_thread(monitor.look, listings.get(name), now)
                for name, monitor in self.host_agents.items()
            ),
        )
        updates = [
            with_session_activity(owner, report.sessions)
            for owner, report in zip(owners, reports, strict=True)
        ]
        return functools.reduce(lambda first, then: lambda s: then(first(s)), updates)

    def agent_signals(
        self, session: str, signals: Sequence[TerminalSignal], host: str | None = None
    ) -> None:
        """What an attached pane's output said (titles, bells, notifications), as evidence for
        the agents in the tmux session `session` of this machine, or of the `[[hosts]]` host
        called `host` (its panes, as last listed)."""
        monitor: AgentMonitor | None = self.agents
        if host is None:
            listing = self.snapshot.tmux
        else:
            found = next((h for h in self.snapshot.hosts if h.host.name == host), None)
            listing, monitor = (found.listing if found else None), self.host_agents.get(host)
        if listing is None or monitor is None:
            return
        ids = {s.id for s in listing.sessions if s.name == session}
        for pane in listing.panes:
            if pane.session_id in ids:
                for signal in signals:
                    monitor.signal(pane.id, signal, signal.at)

    async def inbox(self, names: Sequence[str] = ()) -> InboxReading:
        """What waits for a human now on the assistants called `names` (default: every one
        roost can ask), read from each runtime's pending list with the details of each item,
        and the coding agents' prompts in this machine's tmux sessions (a name may be one of
        those sessions); an assistant that cannot be asked is one line of the reading's
        problems. Raises RoostError for a name that is no assistant nor session."""
        fleet = await self.sweep(health=False)
        self.apply(await self.look_at_agents())
        agent_items = self.agents.report.inbox
        endpoints = self.activity_endpoints()
        problems: list[str] = []
        if names:
            host = next(a for a in fleet if a.key == HOST_KEY)
            by_name = {s.name: session_key(HOST_KEY, s.id) for s in host.sessions}
            chosen = {
                find_assistant(fleet, name).key: name for name in names if name not in by_name
            }
            if HOST_KEY not in chosen:
                wanted = {by_name[name] for name in names if name in by_name}
                agent_items = tuple(i for i in agent_items if i.assistant_key in wanted)
            for key in chosen.keys() - endpoints.keys() - {HOST_KEY}:
                assistant = next(a for a in fleet if a.key == key)
                problems.append(f"{assistant.name}: {_unasked(self.snapshot, assistant)}")
            endpoints = {key: endpoints[key] for key in chosen if key in endpoints}
        readings = await self._read_pending(endpoints)
        items = sorted(
            (*agent_items, *(item for reading in readings.values() for item in reading.items)),
            key=lambda item: item.since,
        )
        problems += [line for reading in readings.values() for line in reading.problems]
        return InboxReading(tuple(items), tuple(problems))

    async def answer(
        self, interaction: Interaction, answer: Answer, front_end: str
    ) -> AnswerRecord:
        """Send `answer` to the runtime that asked, and record it whatever comes of it (never
        a secret's value): accepted, already answered (404: someone else did), refused (403:
        roost is not the guardian) or failed, with why."""
        outcome, detail = Outcome.FAILED, ""
        try:
            if interaction.pane is not None:
                outcome, detail = await self._answer_in_pane(interaction, answer)
            else:
                endpoint = self._endpoint_of_key(interaction.assistant_key)
                outcome = await self.activity_client.answer(endpoint, interaction, answer)
        except AnswerRefused as error:
            outcome, detail = Outcome.REFUSED, error_text(error)
        except RoostError as error:
            detail = error_text(error)
        except Exception:
            await asyncio.to_thread(
                self._record, interaction, answer, front_end, outcome, "internal error"
            )
            raise
        return await asyncio.to_thread(
            self._record, interaction, answer, front_end, outcome, detail
        )

    async def _answer_in_pane(
        self, interaction: Interaction, answer: Answer
    ) -> tuple[Outcome, str]:
        """Type `answer` into the coding agent's pane, once its prompt is seen still there
        (services/agents/answer.py); the item leaves the inbox once typed or gone from the
        screen (a refused answer leaves it, and the dialog, as they were)."""
        if self.context.config.local_mode is Mode.WATCH:
            return Outcome.REFUSED, WATCHING
        if isinstance(answer, Secret):
            return Outcome.REFUSED, "a coding agent's prompt takes no secret"
        outcome, detail = await asyncio.to_thread(
            answer_in_pane, self.context.tmux, interaction, answer
        )
        if outcome in (Outcome.ACCEPTED, Outcome.ALREADY_ANSWERED):  # typed, or the dialog gone
            note = detail or f"answered: {answered_text(interaction, answer)}"
            self.agents.retire(interaction, note, self.context.clock())
        return outcome, detail

    def answered(self, reference: str) -> AnswerRecord | None:
        """The answer roost already got accepted for the request `reference` names (its id, a
        prefix of 4 or more, or its request id), newest first; None when roost sent none
        (blocking). Raises StateError."""
        wanted = reference.strip().lower()
        for record in self.history(ANSWERS_LOOKED_AT):
            known = interaction_id(record.assistant_id, record.request_id)
            if record.outcome is Outcome.ACCEPTED and (
                known == wanted
                or record.request_id == reference
                or (len(wanted) >= 4 and known.startswith(wanted))
            ):
                return record
        return None

    def history(self, limit: int = 100) -> list[AnswerRecord]:
        """The answers recorded, newest first (blocking). Raises StateError."""
        records = []
        for row in self.state.answers(limit):
            try:
                kind, outcome = InteractionKind(row.kind), Outcome(row.outcome)
            except ValueError:  # written by a newer roost: its words are not this one's
                log.info(
                    "answer history: skipped a row of kind %r, outcome %r", row.kind, row.outcome
                )
                continue
            records.append(
                AnswerRecord(
                    row.at,
                    row.assistant_id,
                    row.assistant,
                    row.request_id,
                    kind,
                    row.asked,
                    row.answered,
                    row.front_end,
                    outcome,
                    row.detail,
                )
            )
        return records

    def _record(
        self,
        interaction: Interaction,
        answer: Answer,
        front_end: str,
        outcome: Outcome,
        detail: str,
    ) -> AnswerRecord:
        """Keep one answer in the history (blocking). A history that cannot be written is
        logged: the answer went (or not) all the same, and its outcome is still returned."""
        record = AnswerRecord(
            self.context.clock(),
            interaction.assistant_id,
            interaction.assistant,
            interaction.request_id,
            interaction.kind,
            interaction.summary,
            answered_text(interaction, answer),
            front_end,
            outcome,
            detail,
        )
        row = AnswerRow(
            record.at,
            record.assistant_id,
            record.assistant,
            record.request_id,
            str(record.kind),
            record.asked,
            record.answered,
            record.front_end,
            str(record.outcome),
            record.detail,
        )
        try:
            self.state.add_answer(row)
        except RoostError as error:
            log.warning("answer to %s not recorded: %s", interaction.request_id, error)
        return record

    def _endpoint_of_key(self, key: str) -> RuntimeEndpoint:
        """The runtime of the fleet's assistant `key`, as last seen. Raises RoostError."""
        assistant = next((a for a in self.fleet if a.key == key), None)
        target = health_target(self.snapshot, assistant) if assistant else None
        if assistant is None or target is None:
            raise RoostError("its assistant is gone, or has no runtime any more")
        return _runtime_endpoint(self.sources, self.snapshot, target, assistant.name)

    async def _pending_activity(self) -> Update:
        """Every followed assistant's activity as its pending list shows it now."""
        readings = await self._read_pending(self.activity_endpoints())
        return with_activity({key: reading.activity for key, reading in readings.items()})

    async def _read_pending(self, endpoints: Mapping[str, RuntimeEndpoint]) -> dict[str, _Pending]:
        """Each runtime's pending list, read at once (a few at a time)."""
        now = self.context.clock()
        gate = asyncio.Semaphore(DEFAULT_CONCURRENCY)

        async def read(key: str, endpoint: RuntimeEndpoint) -> tuple[str, _Pending]:
            async with gate:
                return key, await _pending_of(self.activity_client, key, endpoint, now)

        return dict(await asyncio.gather(*(read(k, e) for k, e in endpoints.items())))

    # -- the Vellum lockfile -----------------------------------------------------------------

    def use(self, assistant: Assistant) -> None:
        """Make `assistant` the active one in the lockfile the vellum CLI shares (blocking)."""
        _require(assistant, Action.USE)
        set_active(self.context.vellum, assistant.id)


def _endpoint(
    sources: FleetSources, snapshot: FleetSnapshot, assistant: Assistant
) -> RuntimeEndpoint:
    """What backing `assistant` up needs: its runtime URL and credentials, as its health probe
    uses them. Raises RoostError when it has no runtime to export from."""
    target = health_target(snapshot, assistant)
    if target is None:
        raise RoostError(Capabilities.of(assistant).refusal(Action.BACKUP))
    return _runtime_endpoint(sources, snapshot, target, assistant.name)


def _restore_target(roost: Roost, assistant: Assistant) -> RuntimeEndpoint:
    """What restoring `assistant` needs: what backing it up needs (a runtime). Raises
    RoostError."""
    try:
        return _endpoint(roost.sources, roost.snapshot, assistant)
    except RoostError as error:
        raise RoostError(f"cannot restore {assistant.name}: {error}") from None


def _runtime_endpoint(
    sources: FleetSources, snapshot: FleetSnapshot, target: HealthTarget, name: str
) -> RuntimeEndpoint:
    """The runtime `target` names, with the credentials its health probe sends."""
    base_url = snapshot.lockfile.platform_base_url if snapshot.lockfile else None

    def platform_now() -> PlatformClient | None:
        sources.connect_platform(base_url)  # reads the token again: a new login counts
        return sources.platform

    return RuntimeEndpoint.of(target, name, sources.context.vellum, platform_now)


def _wake_repair(roost: Roost, assistant: Assistant) -> Repair | None:
    """How to wake `assistant` before a backup's second attempt; None when roost cannot wake
    it (its capabilities say so)."""
    if Action.WAKE not in Capabilities.of(assistant):
        return None
    if _known_kind(assistant) is AssistantKind.LOCAL:
        return local_wake(assistant.id)
    target = health_target(roost.snapshot, assistant)

    async def ready() -> bool:
        """The runtime answers (any answer): the retry can go."""
        if target is None:
            return True
        health = await Prober(roost.http, roost.context.vellum, None)(target)
        return health.status not in UNANSWERED

    async def wake() -> RepairReport:
        try:
            engine = await asyncio.to_thread(roost.engine, assistant)
        except RoostError as error:
            return RepairReport(False, str(error))
        return await docker_wake(engine, assistant.id, ready=ready)()

    return wake


async def _place_of(attacher: Attacher, assistant: Assistant) -> Place:
    """Where `assistant`'s terminal lives: this machine for it and for local assistants, a
    docker assistant's container, a managed assistant's platform sessions (logged in). Raises
    RoostError when roost has none for it."""
    _require(assistant, Action.ATTACH)
    match _known_kind(assistant):
        case AssistantKind.DOCKER:
            return await asyncio.to_thread(_container_of, attacher, assistant)
        case AssistantKind.MANAGED:
            attacher.logged_in()  # said now rather than by a pane that cannot connect
            return ManagedPlace(assistant.id)
    return attacher.here()  # this machine, or a local assistant: it runs here


def _container_of(attacher: Attacher, assistant: Assistant) -> ContainerPlace:
    if assistant.source is Source.DOCKER_LABEL:
        engine = next((e for e in attacher.engines if e.name == assistant.where), None)
        if engine is None:
            raise RoostError(f"engine {assistant.where!r} is no longer configured")
        return attacher.container(engine, dict(assistant.facts)["container"])
    # With one engine the container can only be there: no scan, and an engine that has gone
    # away is reported by the session itself, in its pane.
    only = attacher.engines[0] if len(attacher.engines) == 1 else None
    engine = only or engine_of(assistant.id, attacher.engines, assistant.where)
    return attacher.container(engine, container_names(assistant.id)[0])


# -- activity and the needs-you inbox ----------------------------------------------------------

SECRET_ANSWERED = "secret (value not recorded)"
"""What the history says was answered to a secret request, whatever the value."""
PER_CONVERSATION = (
    "its runtime lists pending requests only per conversation (an older runtime), and a"
    " command follows no conversation: the console's inbox shows them"
)
WATCHING = (
    'this console only watches local sessions ([terminal] local_mode = "watch" in config.toml):'
    " answering would type into the agent's pane"
)
NO_STREAM = "pending list (no event stream)"
"""The evidence of an activity read from the pending list alone: nothing pending is not idle."""
PER_CONVERSATION_EVIDENCE = "pending list per conversation only (no event stream)"


@dataclass(frozen=True)
class InboxReading:
    """What waits for a human, as the runtimes' pending lists say now: the items, oldest
    first, and one line per assistant that could not be asked (or only in part), naming it."""

    items: tuple[Interaction, ...]
    problems: tuple[str, ...] = ()

    def find(self, reference: str) -> Interaction:
        """The item `reference` names: its id, a unique prefix of it (4 digits or more), or
        its request id. Raises RoostError saying what is pending instead."""
        wanted = reference.strip().lower()
        for matches in (
            [item for item in self.items if item.id == wanted],
            [item for item in self.items if item.request_id == reference],
            [item for item in self.items if len(wanted) >= 4 and item.id.startswith(wanted)],
        ):
            if len(matches) == 1:
                return matches[0]
            if matches:
                ids = ", ".join(f"{item.id} ({item.assistant})" for item in matches)
                raise RoostError(f"{reference!r} names {len(matches)} pending requests: {ids}")
        pending = (
            f"{len(self.items)} pending: `roost inbox` lists them" if self.items else "none pending"
        )
        unread = "".join(f"; not asked: {problem}" for problem in self.problems)
        raise RoostError(f"no pending request has the id {reference!r} ({pending}){unread}")


@dataclass(frozen=True)
class _Pending:
    """One runtime's pending list as read once."""

    items: tuple[Interaction, ...]
    activity: Activity
    problems: tuple[str, ...] = ()


async def _pending_of(
    client: ActivityClient, key: str, endpoint: RuntimeEndpoint, now: datetime
) -> _Pending:
    """What `endpoint` has pending now, each item with its details, and the activity that
    shows: *needs you*, else *unknown*, since without an event stream nothing says idle or
    working (the tracker, which knows no stream here, makes the items)."""
    name = endpoint.name
    try:
        pending = await client.pending(endpoint, ())
    except RoostError as error:
        why = error_text(error)
        unknown = Activity(ActivityState.UNKNOWN, "", now, f"pending list unreadable: {why}")
        return _Pending((), unknown, (f"{name}: {why}",))
    tracker = AssistantActivity(key, endpoint.assistant_id, name, since=now)
    tracker.reconcile(pending, now)
    if tracker.inbox:
        oldest = tracker.inbox[0]
        needs = Activity(ActivityState.NEEDS_YOU, oldest.summary, oldest.since, NO_STREAM)
        return _Pending(tracker.inbox, needs)
    if pending.per_conversation:
        unknown = Activity(ActivityState.UNKNOWN, "", now, PER_CONVERSATION_EVIDENCE)
        return _Pending((), unknown, (f"{name}: {PER_CONVERSATION}",))
    return _Pending((), Activity(ActivityState.UNKNOWN, "nothing pending", now, NO_STREAM))


def _unasked(snapshot: FleetSnapshot, assistant: Assistant) -> str:
    """Why an assistant's runtime is not asked what is pending."""
    if health_target(snapshot, assistant) is None:
        return "it has no runtime to ask"
    return f"it is {assistant.status}: its runtime is not running"


def answered_text(interaction: Interaction, answer: Answer) -> str:
    """What was answered, in words, as the history keeps it: `allow`, `always allow: npm test
    (project)`, `q1 = Yes; q2: "later"`, `closed`; for a secret, never its value."""
    if isinstance(answer, Secret):
        return SECRET_ANSWERED
    if isinstance(answer, Allow):
        if answer.pattern is not None or answer.scope is not None:
            return f"always {answer.decision}: {answer.pattern} ({answer.scope})"
        return str(answer.decision)
    if answer.close:
        return "closed"
    request = interaction.request
    labels = {
        (question.id, choice.id): choice.label
        for question in (request.questions if isinstance(request, Questions) else ())
        for choice in question.options
    }
    words = []
    for response in answer.responses:
        if isinstance(response, OptionAnswer):
            key = (response.question_id, response.option_id)
            words.append(f"{response.question_id} = {labels.get(key, response.option_id)}")
        elif isinstance(response, TextAnswer):
            words.append(f"{response.question_id}: {response.text!r}")
        elif isinstance(response, SkipAnswer):
            words.append(f"{response.question_id}: skipped")
    return "; ".join(words) or "submitted"
