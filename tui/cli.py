"""The `roost` command: the TUI by default, and subcommands for scripts.

Expected failures print one line on stderr and exit 1; anything unexpected is logged with its
traceback and reported in one line naming the log file. Usage errors exit 2, with the usage of
the command they concern; so does the console without a terminal.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import difflib
import getpass
import json
import logging
import os
import shlex
import signal
import sys
from collections import Counter
from collections.abc import AsyncGenerator, Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from importlib.metadata import version
from pathlib import Path
from typing import Any, TextIO, TypeVar

from services.activity.model import (
    Activity,
    Allow,
    Answer,
    AnswerRecord,
    Confirmation,
    Decision,
    Interaction,
    InteractionKind,
    OptionAnswer,
    Outcome,
    Questions,
    Reply,
    Secret,
    SecretRequest,
    SkipAnswer,
    TextAnswer,
)
from services.agents.hook import main as hook_main
from services.agents.install import (
    AgentFiles,
    Change,
    apply,
    plan_install,
    plan_uninstall,
    roost_executable,
)
from services.agents.install import status as hook_status
from services.agents.model import Agent
from services.agents.spool import spool_dir, spool_status
from services.context import Context
from services.core.config import Config, ConfigError
from services.core.errors import RoostError
from services.core.logs import configure_logging
from services.core.mode import Mode
from services.core.paths import RoostPaths
from services.core.safe_text import error_text, printable
from services.docker.lifecycle import Step
from services.doctor import Verdict, run_checks
from services.fleet.model import TMUX_SESSION, Assistant, Source, session_status
from services.jobs.library import BackupCheck, BackupEntry, Hashing, Verification
from services.jobs.record import Job, JobKind, JobState
from services.jobs.restore import RestoreOptions
from services.jobs.store import JobStore
from services.roost import AttachRequest, Roost
from services.share.share import LOOPBACK, Share, exposed, exposure_warning, feed
from services.share.shares import STOP_SIGNAL, stop_all
from services.terminal.backend import TerminalBackend, TerminalSize
from services.terminal.execs import DEFAULT_TIMEOUT, ExecResult
from services.terminal.playback import Timeline, screen_text
from services.terminal.tmux import TmuxListing, TmuxState
from services.vellum.environment import VellumEnvironment
from tui.formats import activity_line, format_age, format_bytes, job_progress, job_result

log = logging.getLogger("roost")

Handler = Callable[[argparse.Namespace], int]
T = TypeVar("T")


class UsageError(RoostError):
    """The command line is wrong in a way argparse cannot see: shown with the usage of the
    command it concerns, exit status 2."""


class _Command(argparse.ArgumentParser):
    """A subcommand's parser: its usage errors (an unknown option too) show its own usage, not
    the top level's; it is kept in the arguments (`command_parser`) for errors found later."""

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        parsed, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error(f"unrecognized arguments: {shlex.join(extras)}")
        parsed.command_parser = self
        return parsed, extras


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    words = list(sys.argv[1:] if argv is None else argv)
    # What follows `--` is a command line for `roost exec`, kept whole (argparse would read
    # its options as roost's).
    cut = words.index("--") if "--" in words else len(words)
    args = parser.parse_args(words[:cut])
    args.command = words[cut + 1 :]
    usage: argparse.ArgumentParser = getattr(args, "command_parser", parser)
    if cut < len(words) and args.handler is not exec_command:
        usage.error(f"unrecognized arguments: {shlex.join(words[cut:])}")
    try:
        paths = RoostPaths.resolve()
    except RoostError as error:  # before the log exists: the terminal is all there is
        print(f"roost: {error_text(error)}", file=sys.stderr)
        return 1
    configure_logging(paths.log_file)
    handler: Handler = args.handler
    try:
        return handler(args)
    except UsageError as error:
        usage.error(str(error))
    except RoostError as error:
        log.warning("%s", error)
        print(f"roost: {error_text(error)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`roost ps | head -1`): stop quietly, as a tool killed by
        # SIGPIPE does, with nothing more written to the closed pipe at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE
    except Exception:
        log.exception("unexpected error running %s", sys.argv)
        print(f"roost: internal error; details are in {paths.log_file}", file=sys.stderr)
        return 1


def say(line: str, *, file: TextIO | None = None, flush: bool = False) -> None:
    """Print one line that holds text from outside (names, versions, messages), escaped:
    the last line of defence, should anything unescaped have reached roost's models."""
    print(printable(line), file=file, flush=flush)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="roost",
        description="A keyboard-driven console for the AI assistants and agents you run: "
        "local tmux sessions, Docker containers and cloud assistants on one screen.",
        epilog="With no command, roost opens the full-screen console. "
        "Press ? inside it for every key.",
    )
    parser.add_argument("--version", action="version", version=f"roost {version('roost')}")
    parser.set_defaults(handler=run_tui)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", parser_class=_Command)

    paths = commands.add_parser(
        "paths",
        help="show where roost keeps config, state, cache and logs, and the Vellum lockfile",
        description="Show where roost keeps its files and which Vellum lockfile it reads.",
    )
    paths.add_argument("--json", action="store_true", help="print one JSON object")
    paths.set_defaults(handler=show_paths)

    doctor = commands.add_parser(
        "doctor",
        help="check tmux, Docker engines, the Vellum lockfile, token files and the log dir",
        description="Check what roost depends on. Exit status 0 unless a check FAILs.",
    )
    doctor.set_defaults(handler=run_doctor)

    ps = commands.add_parser(
        "ps",
        help="list every assistant with its status (health probed now), like `vellum ps`",
        description="List every assistant roost knows of; health is probed concurrently. "
        "The active assistant is marked with *. Exit status 1 when a source (the lockfile, a "
        "Docker engine) could not be read: the list may be incomplete.",
    )
    ps.add_argument("--json", action="store_true", help="print a JSON list with stable keys")
    ps.set_defaults(handler=list_assistants)

    hosts = commands.add_parser(
        "hosts",
        help="list the [[hosts]] of config.toml: reachable, round trip, ssh/tmux/docker versions",
        description="Probe every host of config.toml's [[hosts]] at once over ssh (roost's "
        "shared connections; never a password or host key prompt): whether it answers, one "
        "round trip's time, and the versions of ssh here and of tmux and docker there. Exit "
        "status 1 when a host does not answer.",
    )
    hosts.add_argument("--json", action="store_true", help="print one JSON object")
    hosts.set_defaults(handler=list_hosts)

    use = commands.add_parser(
        "use",
        help="show the active assistant, or make NAME the active one",
        description="Show the active assistant, or make NAME (an assistant id or name) the "
        "active one, in the Vellum lockfile that the vellum CLI shares.",
    )
    use.add_argument("name", nargs="?", metavar="NAME", help="assistant id or name")
    use.set_defaults(handler=use_assistant)

    backup = commands.add_parser(
        "backup",
        help="back an assistant up to a verified .vbundle file",
        description="Export an assistant's data (a .vbundle archive) and check it: written to "
        "PATH.part, hashed while it downloads, its size and sha256 checked, then renamed. "
        "Prints the path, size and sha256; exit status 0 only when the file is verified.",
    )
    backup.add_argument("name", nargs="?", metavar="ASSISTANT", help="id or name (default: active)")
    backup.add_argument(
        "--output", "-o", metavar="PATH", help="where to save it (default: roost's backups dir)"
    )
    backup.set_defaults(handler=backup_assistant)

    restore = commands.add_parser(
        "restore",
        help="put a backup back into an assistant (checked, preflighted, confirmed)",
        description="Restore an assistant from a .vbundle file, step by step: the file is "
        "checked against roost's record of it, the assistant's runtime preflights it (the "
        "report lists files to create, overwrite or leave, conflicts and errors), a verified "
        "safety backup of its current state is taken, you confirm by typing its name, and "
        "only then is it imported. Exit status 0 when restored (or when a dry run passed), 1 "
        "when nothing was imported (refused, failed before the import, or not confirmed), 3 "
        "when the import itself failed (the safety backup holds the state before).",
    )
    restore.add_argument("name", metavar="ASSISTANT", help="id or name of the assistant")
    restore.add_argument(
        "--from",
        dest="source",
        metavar="FILE",
        required=True,
        help="the .vbundle to restore (one roost saved: `roost backups` lists them)",
    )
    restore.add_argument(
        "--dry-run", action="store_true", help="stop after the preflight report: change nothing"
    )
    restore.add_argument(
        "--yes",
        action="store_true",
        help="do not ask for the assistant's name (required without a terminal)",
    )
    restore.add_argument(
        "--no-safety-backup",
        action="store_true",
        help="skip the backup of the current state (a bad restore then cannot be undone)",
    )
    restore.add_argument(
        "--force-unverified",
        action="store_true",
        help="restore a file roost did not save, or whose bytes changed since: nothing then "
        "vouches for what is imported",
    )
    restore.set_defaults(handler=restore_assistant)

    backups = commands.add_parser(
        "backups",
        help="list the backups roost saved, newest first, or verify them",
        description="List the backups roost saved (newest first: assistant, time, size, age, "
        "path, state), with the .vbundle files found in the backups directory that roost did "
        "not record (unrecorded: nothing to check them against). With --verify, hash each file "
        "again and compare it with its record; exit status 1 when any changed or vanished.",
    )
    backups.add_argument(
        "name", nargs="?", metavar="NAME", help="only this assistant's (its name), default: all"
    )
    backups.add_argument(
        "--verify", action="store_true", help="hash each file again against its record"
    )
    backups.add_argument("--json", action="store_true", help="print a JSON list")
    backups.set_defaults(handler=list_backups)

    jobs = commands.add_parser(
        "jobs",
        help="list the job history (backups and restores), newest first",
        description="List the jobs of every roost process, newest first. A job whose roost "
        "process ended before it did shows as interrupted: a backup of a managed assistant is "
        "resumed by the next console, any other has failed.",
    )
    jobs.add_argument("--json", action="store_true", help="print a JSON list")
    jobs.set_defaults(handler=list_jobs)

    wake = commands.add_parser(
        "wake",
        help="start a sleeping docker or local assistant",
        description="Start a docker assistant's containers (assistant, gateway, credential "
        "executor, in that order) or a local assistant's daemon (through `vellum wake`). "
        "Exit status 0 when every step worked.",
    )
    wake.add_argument("name", nargs="?", metavar="ASSISTANT", help="id or name (default: active)")
    wake.set_defaults(handler=wake_assistant)

    sleep = commands.add_parser(
        "sleep",
        help="stop a docker assistant's containers (asks first)",
        description="Stop a docker assistant's containers, in the reverse order of wake. "
        "Asks for confirmation unless --yes is given; without a terminal, --yes is required.",
    )
    sleep.add_argument("name", nargs="?", metavar="ASSISTANT", help="id or name (default: active)")
    sleep.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    sleep.set_defaults(handler=sleep_assistant)

    name_help = "id or name (`local`: this machine), or a host's name ([[hosts]])"
    sessions = commands.add_parser(
        "sessions",
        help="list an assistant's tmux sessions",
        description="List the tmux sessions of an assistant: this machine's tmux server, the "
        "assistant's container (docker), its managed shell (through a throwaway terminal "
        "session), or a host's tmux server over ssh.",
    )
    sessions.add_argument("assistant", metavar="ASSISTANT", help=name_help)
    sessions.add_argument("--json", action="store_true", help="print a JSON list")
    sessions.set_defaults(handler=list_sessions)

    attach = commands.add_parser(
        "attach",
        help="open roost on an assistant's tmux session (or a new shell in it)",
        description="Open the console straight onto a pane attached to SESSION of ASSISTANT; "
        "without SESSION, choose one of its sessions or a new shell. ctrl+] then ? lists "
        "the pane keys.",
    )
    attach.add_argument("assistant", metavar="ASSISTANT", help=name_help)
    attach.add_argument("session", nargs="?", metavar="SESSION", help="tmux session name")
    attach.add_argument(
        "--watch", action="store_true", help="read-only: no key is sent, the size never changes"
    )
    attach.set_defaults(handler=attach_session)

    run = commands.add_parser(
        "exec",
        help="run a command in an assistant's environment; exit with its status",
        description="Run CMD non-interactively where ASSISTANT runs (this machine, its "
        "container, a host over ssh, or its managed shell) and exit with its exit status; 124 "
        "when it outlives --timeout (what it printed is kept). On a host CMD's words are quoted "
        "for its shell, and its output streams as it comes.",
        usage="roost exec [-h] [--timeout S] ASSISTANT -- CMD [ARGS...]",
    )
    run.add_argument("assistant", metavar="ASSISTANT", help=name_help)
    run.add_argument(
        "--timeout",
        type=_seconds,
        default=DEFAULT_TIMEOUT,
        metavar="S",
        help=f"seconds before the command is stopped (default {DEFAULT_TIMEOUT:g})",
    )
    run.set_defaults(handler=exec_command)

    share = commands.add_parser(
        "share",
        help="show a tmux session read-only in a browser, live",
        description="Serve SESSION of ASSISTANT read-only to a browser: the first line printed "
        "is the page's URL, with a token that expires when the share stops (interrupted, or "
        "roost share --stop). Viewers joining and leaving are said on stderr.",
        usage="roost share [-h] [--bind ADDR] [--port N] ASSISTANT SESSION | roost share --stop",
    )
    share.add_argument("assistant", nargs="?", metavar="ASSISTANT", help=name_help)
    share.add_argument("session", nargs="?", metavar="SESSION", help="tmux session name")
    share.add_argument(
        "--bind",
        default=LOOPBACK,
        metavar="ADDR",
        help=f"the address to listen on (default {LOOPBACK}: this machine only)",
    )
    share.add_argument("--port", type=int, default=0, metavar="N", help="default: any free port")
    share.add_argument("--stop", action="store_true", help="stop every share you started")
    share.set_defaults(handler=share_session)

    inbox = commands.add_parser(
        "inbox",
        help="list what assistants wait on you for (a tool to allow, questions, a secret)",
        description="List every request an assistant waits on a human for, oldest first, as "
        "each runtime's pending list says now: confirmations (a tool to allow or deny), "
        "question batches and secrets. Answer them with `roost answer ID`. An assistant that "
        "cannot be asked is one line on stderr, the others are listed all the same, and the "
        "exit status is 1: the list may be incomplete.",
    )
    inbox.add_argument(
        "names", nargs="*", metavar="NAME", help="only these assistants (id or name)"
    )
    inbox.add_argument("--json", action="store_true", help="print a JSON list (or object)")
    inbox.add_argument(
        "--show",
        metavar="ID",
        help="show one request whole: a tool's full input and diff, each question's options",
    )
    inbox.add_argument(
        "--history",
        action="store_true",
        help="list the answers roost sent instead (newest first; never a secret's value)",
    )
    inbox.add_argument(
        "--limit",
        type=_count,
        metavar="N",
        help="with --history: at most N answers (default 100)",
    )
    inbox.set_defaults(handler=show_inbox)

    answer = commands.add_parser(
        "answer",
        help="answer a request of the inbox without attaching",
        description="Answer the pending request ID (from `roost inbox`: its id, a unique prefix "
        "of 4 digits or more, or its request id): allow or deny a confirmation, answer a "
        "question batch, or send a secret read from standard input. Exit status 0 when the "
        "assistant accepted it, and when someone had already answered it (a note says so); 1 "
        "otherwise. Every answer is recorded (`roost inbox --history`), a secret's value never.",
        usage="roost answer [-h] ID {allow,deny} [--always PATTERN --scope SCOPE]\n"
        "       roost answer ID [--option QID=OID]... [--text QID=TEXT]... [--skip QID]...\n"
        "       roost answer ID --close\n"
        "       roost answer ID --secret [--transient]",
    )
    answer.add_argument("id", metavar="ID", help="the request's id, as `roost inbox` lists it")
    answer.add_argument(
        "decision",
        nargs="?",
        choices=[str(decision) for decision in Decision],
        help="a confirmation: allow or deny the tool",
    )
    answer.add_argument(
        "--always",
        metavar="PATTERN",
        help="with allow: allow what matches PATTERN from now on (one of the request's "
        "patterns, `roost inbox --show ID`); needs --scope",
    )
    answer.add_argument(
        "--scope",
        metavar="SCOPE",
        help="with --always: where that rule holds (one of the request's scopes)",
    )
    answer.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="QID=OID",
        help="a question: choose option OID for question QID (once per question)",
    )
    answer.add_argument(
        "--text",
        action="append",
        default=[],
        metavar="QID=TEXT",
        help="a question: answer question QID in free text",
    )
    answer.add_argument(
        "--skip",
        action="append",
        default=[],
        metavar="QID",
        help="a question: leave QID unanswered (so is every question not named)",
    )
    answer.add_argument(
        "--close", action="store_true", help="a question: dismiss the whole batch unanswered"
    )
    answer.add_argument(
        "--secret",
        action="store_true",
        help="a secret: read its value from standard input (not echoed at a terminal), never "
        "from the command line",
    )
    answer.add_argument(
        "--transient",
        action="store_true",
        help="with --secret: the assistant uses the value once instead of storing it",
    )
    answer.set_defaults(handler=answer_request)

    play = commands.add_parser(
        "play",
        help="play a recording (asciicast v2) with rewind's seeking",
        description="Show a recording (a pane's, from `roost paths`'s state dir, or any "
        "asciicast v2 file) in a pane-like view: left/right move a second, shift+left/right "
        "jump between markers, home goes to the start, space plays, end or esc quits. "
        "--dump prints the screen at --at (default: the end) as plain text instead.",
    )
    play.add_argument("file", metavar="FILE", type=Path, help="the .cast file")
    play.add_argument(
        "--at", type=_moment, metavar="SECONDS", help="where to start (seconds into it)"
    )
    play.add_argument(
        "--dump", action="store_true", help="print the screen at --at as plain text and exit"
    )
    play.set_defaults(handler=play_recording)
    add_hook_commands(commands)
    return parser


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {text}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < value < 1e6:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, not {text}")
    return value


def _moment(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 <= value < 1e9:
        raise argparse.ArgumentTypeError(f"must be 0 seconds or more, not {text}")
    return value


def load_context() -> Context:
    """The context every command runs in: config.toml read and checked whole, its [keys] too,
    so a command refuses what the console would. Raises ConfigError."""
    context = Context.load()
    if context.config.keys:
        from tui.app import check_keys  # Textual loads only when there are keys to check.

        check_keys(context)
    return context


def with_roost(
    operation: Callable[[Roost], Coroutine[Any, Any, T]], context: Context | None = None
) -> T:
    """`operation` on the application layer, in `context` (default: the command's, see
    `load_context`), run to its end in an event loop of its own."""
    context = context or load_context()

    async def run() -> T:
        async with Roost.opened(context) as roost:
            return await operation(roost)

    return asyncio.run(run())


NO_TERMINAL = 2
"""The exit status of the console started without a terminal (a usage error)."""


def _without_terminal() -> bool:
    """The console draws on a terminal and reads keys from it: without one (a pipe, a script)
    it says so at once instead of drawing into the pipe."""
    if sys.stdin.isatty() and sys.stdout.isatty():
        return False
    print(
        "roost: the console needs a terminal (stdin and stdout); "
        "scripts use its commands (roost --help)",
        file=sys.stderr,
    )
    return True


def run_tui(args: argparse.Namespace, attach: AttachRequest | None = None) -> int:
    if _without_terminal():
        return NO_TERMINAL
    from tui.app import collect_garbage_less_often, create_app  # Textual loads only here.

    context = Context.load()  # create_app checks [keys]
    log.info("roost %s starting", version("roost"))
    app = create_app(context, attach)
    collect_garbage_less_often()
    app.run()
    return app.return_code or 0


def play_recording(args: argparse.Namespace) -> int:
    """`roost play`: the screen at a moment of a recording, printed or shown."""
    timeline = Timeline.load(args.file)
    if timeline.index_problem is not None:
        say(f"roost: index not used ({timeline.index_problem}): rebuilt it", file=sys.stderr)
    at = timeline.duration if args.at is None else min(args.at, timeline.duration)
    if args.dump:
        for row in screen_text(timeline.screen_at(at)):
            say(row)
        return 0
    if _without_terminal():
        return NO_TERMINAL
    from tui.play import PlayApp  # Textual loads only here.

    PlayApp(timeline, at).run()
    return 0


def show_paths(args: argparse.Namespace) -> int:
    paths = RoostPaths.resolve()
    vellum = VellumEnvironment.resolve()
    lockfile = next((p for p in vellum.lockfile_candidates if p.exists()), None)
    table = {
        "config": str(paths.config_dir),
        "config_file": str(paths.config_file),
        "state": str(paths.state_dir),
        "cache": str(paths.cache_dir),
        "logs": str(paths.log_dir),
        "log_file": str(paths.log_file),
        "vellum_environment": vellum.name,
        "vellum_config": str(vellum.config_dir),
        "lockfile": str(lockfile or vellum.lockfile_candidates[0]),
        "lockfile_exists": lockfile is not None,
    }
    if args.json:
        print(json.dumps(table, indent=2))
        return 0
    overrides = {
        "config": "ROOST_CONFIG_DIR",
        "state": "ROOST_STATE_DIR",
        "cache": "ROOST_CACHE_DIR",
        "logs": "ROOST_LOG_DIR",
    }
    for name, value in table.items():
        if name == "lockfile_exists":
            continue
        note = f"  (${overrides[name]})" if name in overrides else ""
        if name == "lockfile" and lockfile is None:
            note = "  (absent: no Vellum assistants yet)"
        if name == "vellum_environment":
            note = f"  (from {vellum.source})"
        say(f"{name.replace('_', ' '):<20}{value}{note}")
    if vellum.warning:
        say(f"roost: warning: {vellum.warning}", file=sys.stderr)
    return 0


def run_doctor(args: argparse.Namespace) -> int:
    config_error: ConfigError | None = None
    try:
        context = load_context()
    except ConfigError as error:
        config_error = error
        context = Context.load(config=Config())
    failed = False
    for check in run_checks(context, config_error):
        failed |= check.verdict is Verdict.FAIL
        hint = f"  → {check.hint}" if check.hint and check.verdict is not Verdict.OK else ""
        say(f"{check.verdict.value:<5} {check.subject:<15} {check.message}{hint}", flush=True)
    return 1 if failed else 0


ACTIVITY_WIDTH = 40
"""The ACTIVITY column's widest text: what a tool waits for can be long."""


def list_assistants(args: argparse.Namespace) -> int:
    fleet = with_roost(lambda roost: roost.sweep(activity=True))
    # A source that could not be read is a row of its own, and the list may be incomplete.
    status = 1 if any(a.source is Source.PROBLEM for a in fleet) else 0
    rows = [row for a in fleet for row in (_ps_row(a), *_session_rows(a))]
    if args.json:
        print(json.dumps([row.json for row in rows], indent=2))
        return status
    now = _now()
    activities = [_cut(activity_line(row.activity, now), ACTIVITY_WIDTH) for row in rows]
    width = max(len(row.shown_name) for row in rows) + 2
    active_width = max(len("ACTIVITY"), *map(len, activities)) + 2
    print(f"  {'NAME':<{width}}{'KIND':<15}{'STATUS':<20}{'ACTIVITY':<{active_width}}INFO")
    for row, activity in zip(rows, activities, strict=True):
        say(
            f"{row.mark} {row.shown_name:<{width}}{row.kind:<15}{row.status:<20}"
            f"{activity:<{active_width}}{row.info}".rstrip()
        )
    return status


def list_hosts(args: argparse.Namespace) -> int:
    report = with_roost(lambda roost: roost.hosts())
    status = 0 if all(probe.reachable for probe in report.probes) else 1
    if args.json:
        hosts = [
            {
                "name": probe.host.name,
                "ssh": probe.host.ssh,
                "reachable": probe.reachable,
                "problem": probe.problem.value if probe.problem else None,
                "error": probe.error or None,
                "latency_ms": probe.latency_ms,
                "multiplexed": probe.multiplexed,
                "tmux_version": probe.tmux_version,
                "docker": probe.host.docker,
                "docker_version": probe.docker_version,
            }
            for probe in report.probes
        ]
        print(json.dumps({"ssh_version": report.ssh_version, "hosts": hosts}, indent=2))
        return status
    say(f"ssh: {report.ssh_version or 'not found'}")
    if not report.probes:
        print("no hosts: add [[hosts]] to config.toml (see the README)", file=sys.stderr)
        return status
    width = max(len("NAME"), *(len(probe.host.name) for probe in report.probes)) + 2
    print(f"{'NAME':<{width}}{'STATUS':<18}{'LATENCY':<10}{'TMUX':<14}DOCKER")
    for probe in report.probes:
        if not probe.reachable:
            say(f"{probe.host.name:<{width}}{probe.problem or '':<18}{probe.error}")
            continue
        latency = f"{probe.latency_ms:.0f} ms" if probe.latency_ms is not None else "?"
        docker = (probe.docker_version or "?") if probe.host.docker else "-"
        say(
            f"{probe.host.name:<{width}}{'reachable':<18}{latency:<10}"
            f"{probe.tmux_version or 'no tmux':<14}{docker}"
        )
    return status


@dataclass(frozen=True)
class _PsRow:
    """One line of `roost ps`: an assistant, or a tmux session under this machine."""

    json: Mapping[str, object]
    shown_name: str
    kind: str
    status: str
    activity: Activity | None
    info: str
    mark: str = " "


def _ps_row(a: Assistant) -> _PsRow:
    json_row = {
        "name": a.name,
        "id": a.id,
        "kind": a.kind,
        "where": a.where,
        "status": a.summary,
        "detail": a.detail,
        "version": a.version,
        "runtime_url": a.runtime_url,
        "active": a.active,
        "source": a.source.value,
        "activity": _activity_json(a.activity),
    }
    mark = "*" if a.active else " "
    return _PsRow(json_row, a.name, a.kind, a.summary, a.activity, _info(a), mark)


def _session_rows(a: Assistant) -> list[_PsRow]:
    """A row per tmux session of `a`, as the console shows them under it."""
    rows = []
    for index, session in enumerate(a.sessions):
        activity = a.session_activity.get(session.id)
        name, status = printable(session.name), session_status(session)
        info = f"{session.windows} window{'' if session.windows == 1 else 's'}"
        json_row = {
            "name": name,
            "id": session.id,
            "kind": TMUX_SESSION,
            "where": a.where,
            "status": status,
            "detail": info,
            "on": a.id,
            "source": a.source.value,
            "activity": _activity_json(activity),
        }
        branch = "└" if index == len(a.sessions) - 1 else "├"
        rows.append(_PsRow(json_row, f"{branch} {name}", TMUX_SESSION, status, activity, info))
    return rows


def _activity_json(activity: Activity | None) -> dict[str, str] | None:
    """An assistant's activity as `roost ps --json` gives it; None when roost asks it nothing
    (no runtime, asleep)."""
    if activity is None:
        return None
    return {
        "state": str(activity.state),
        "detail": activity.detail,
        "since": activity.since.isoformat(),
        "evidence": activity.evidence,
    }


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _now() -> datetime:
    return datetime.now(UTC)


def _info(assistant: Assistant) -> str:
    """What `vellum ps` calls INFO: why, else where it is, its version and latency."""
    parts = [assistant.detail] if assistant.detail else []
    if not parts:
        parts = [p for p in (assistant.where, assistant.version) if p]
        if assistant.latency_ms is not None:
            parts.append(f"{assistant.latency_ms:.0f} ms")
    return " · ".join(parts)


def use_assistant(args: argparse.Namespace) -> int:
    async def use(roost: Roost) -> Assistant:
        assistant = await roost.choose(args.name)
        if args.name is not None:
            await asyncio.to_thread(roost.use, assistant)
        return assistant

    # `use` needs only the lockfile: a config.toml roost cannot read does not stop it.
    assistant = with_roost(use, Context.load(config=Config()))
    if args.name is None:
        say(f"{assistant.name}{' (active)' if assistant.active else ' (the only one)'}")
        return 0
    log.info("active assistant set to %s", assistant.id)
    say(f"{assistant.name} is now the active assistant")
    return 0


def _report(steps: Iterable[Step]) -> int:
    """Print each step as it happens; exit status 1 if any failed."""
    failed = False
    for step in steps:
        say(str(step), flush=True)
        failed |= step.failed
    return 1 if failed else 0


def wake_assistant(args: argparse.Namespace) -> int:
    async def wake(roost: Roost) -> int:
        assistant = await roost.choose(args.name)
        return await asyncio.to_thread(lambda: _report(roost.wake(assistant)))

    return with_roost(wake)


def sleep_assistant(args: argparse.Namespace) -> int:
    async def sleep(roost: Roost) -> int:
        assistant = await roost.choose(args.name)
        if not args.yes and not await asyncio.to_thread(_confirm_sleep, roost, assistant):
            return 1
        return await asyncio.to_thread(lambda: _report(roost.sleep(assistant)))

    return with_roost(sleep)


def _confirm_sleep(roost: Roost, assistant: Assistant) -> bool:
    """Ask before stopping what runs of `assistant` (blocking); False when the answer is no."""
    names = roost.plan_sleep(assistant)  # a refusal comes first, terminal or not
    if not sys.stdin.isatty():
        raise RoostError("not at a terminal to confirm: add --yes to stop the containers")
    if not names:
        return True  # nothing to ask about: the steps say what is already stopped
    engine = roost.engine(assistant)
    answer = input(f"Stop {', '.join(names)} on engine {engine.name}? [y/N] ")
    if answer.strip().lower() in {"y", "yes"}:
        return True
    print("Nothing stopped.")
    return False


def backup_assistant(args: argparse.Namespace) -> int:
    context = load_context()
    output = Path(args.output).expanduser().absolute() if args.output else None
    if output is not None and (output.exists() or output.is_dir()):
        raise RoostError(f"{output} already exists: choose a new file name")
    job = with_roost(lambda roost: _backup(roost, args.name, output), context)
    for path in job.pruned:
        say(f"roost: retention ([backups] keep) deleted {path}", file=sys.stderr)
    if job.state is JobState.COMPLETE and job.verified and job.result_path is not None:
        say(str(job.result_path))
        print(f"size    {job.size} bytes ({format_bytes(job.size or 0)})")
        print(f"sha256  {job.sha256} (verified)")
        if job.note:
            say(f"note    {job.note}")
        return 0
    if job.state is JobState.COMPLETE and job.result_path is not None:
        say(str(job.result_path))
        raise RoostError(f"saved, but not verified: {job.note or 'no checksum to check against'}")
    if job.in_progress_job_id:
        raise RoostError(
            f"an export is already running on the assistant (job {job.in_progress_job_id}); "
            "follow it in the TUI (b, then answer y), or try again when it ends"
        )
    raise RoostError(f"backup {job.state.value}: {job.error or job.note or 'no reason given'}")


def list_backups(args: argparse.Namespace) -> int:
    def look(roost: Roost) -> int:
        entries = roost.backups(args.name)
        if not entries:
            print(
                f"no backups{f' of {printable(args.name)}' if args.name else ''} yet",
                file=sys.stderr,
            )
            return 0
        if args.verify:
            return _verify_backups(roost, entries, as_json=args.json)
        if args.json:
            print(json.dumps([_backup_json(entry) for entry in entries], indent=2))
            return 0
        now = _now()
        names = [printable(entry.assistant) for entry in entries]  # as wide as they show
        width = max(len("ASSISTANT"), *map(len, names)) + 2
        print(f"{'ASSISTANT':<{width}}{'CREATED':<18}{'SIZE':>10}  {'AGE':<6}{'STATE':<12}PATH")
        for name, entry in zip(names, entries, strict=True):
            created = entry.created_at.astimezone().strftime("%Y-%m-%d %H:%M")
            size, age = format_bytes(entry.size), format_age(entry.created_at, now)
            say(
                f"{name:<{width}}{created:<18}{size:>10}  {age:<6}"
                f"{entry.verification:<12}{entry.path}"
            )
        return 0

    return with_roost(lambda roost: asyncio.to_thread(look, roost))


def _backup_json(entry: BackupEntry) -> dict[str, object]:
    record = entry.record
    return {
        "assistant": entry.assistant,
        "path": str(entry.path),
        "created_at": entry.created_at.isoformat(),
        "size": entry.size,
        "state": str(entry.verification),
        "sha256": record.sha256 if record else None,
        "job_id": record.job_id if record else None,
        "verified_at": record.verified_at.isoformat() if record and record.verified_at else None,
    }


def _verify_backups(roost: Roost, entries: Sequence[BackupEntry], *, as_json: bool) -> int:
    """Hash each file again (progress on a terminal for big ones) and print one line per
    file, or a JSON list; 1 when any changed, vanished or could not be read."""
    progress = _HashProgress(sys.stderr)
    results: list[dict[str, object]] = []
    bad = 0
    for entry in entries:
        try:
            check = None
            for report in roost.verify_backup(entry.path):
                progress.show(entry.assistant, report)
                check = report.check or check
        except RoostError as error:
            progress.close()
            bad += 1
            results.append({"path": str(entry.path), "state": "unreadable", "error": str(error)})
            if not as_json:
                say(f"{'unreadable':<12}{error_text(error)}")
            continue
        progress.close()
        assert check is not None
        bad += check.verification in (Verification.CHANGED, Verification.MISSING)
        results.append(_check_json(entry, check))
        if not as_json:
            say(_check_line(check))
    if as_json:
        print(json.dumps(results, indent=2))
    counts = Counter(str(result["state"]) for result in results)
    print(", ".join(f"{n} {state}" for state, n in sorted(counts.items())), file=sys.stderr)
    return 1 if bad else 0


def _check_line(check: BackupCheck) -> str:
    """`verified    PATH`, or what differs from the record."""
    head = f"{check.verification.value:<12}{check.path}"
    record = check.record
    if check.verification is Verification.CHANGED and record is not None:
        if check.size != record.size:
            return f"{head}: {check.size} bytes, recorded {record.size}"
        return f"{head}: sha256 {check.sha256}, recorded {record.sha256}"
    if check.verification is Verification.MISSING:
        return f"{head}: the file is gone (its record stays)"
    if check.verification is Verification.UNRECORDED:
        return f"{head}: sha256 {check.sha256} (roost did not record it)"
    return head


def _check_json(entry: BackupEntry, check: BackupCheck) -> dict[str, object]:
    record = check.record
    return {
        "path": str(check.path),
        "assistant": entry.assistant,
        "state": str(check.verification),
        "size": check.size,
        "sha256": check.sha256,
        "recorded_size": record.size if record else None,
        "recorded_sha256": record.sha256 if record else None,
    }


BIG_FILE = 32 << 20
"""`roost backups --verify` draws a file's progress on a terminal from this size up: a
smaller one is hashed before a bar could be read."""


class _HashProgress:
    """A file's hashing, redrawn in place on a terminal when it is big enough to wait for;
    nothing otherwise."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.drawn = False

    def show(self, assistant: str, report: Hashing) -> None:
        if not self.tty or report.total < BIG_FILE or report.check is not None:
            return
        share = report.done / report.total if report.total else 1.0
        bar = "█" * int(share * 30)
        line = (
            f"verifying {assistant}: {bar:<30} {format_bytes(report.done)}"
            f" of {format_bytes(report.total)}"
        )
        self.stream.write("\r\x1b[K" + printable(line))
        self.stream.flush()
        self.drawn = True

    def close(self) -> None:
        if self.drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self.drawn = False


async def _backup(roost: Roost, name: str | None, output: Path | None) -> Job:
    """Run one backup, showing its progress, recording it in the jobs history."""
    try:
        await asyncio.to_thread(roost.jobs.load)
    except RoostError as error:  # the backup goes on; the log says what was not saved
        log.warning("job history not read: %s", error)
    assistant = await roost.choose(name)
    progress = _Progress(sys.stderr)
    job: Job | None = None
    async with contextlib.aclosing(roost.backup(assistant, output)) as jobs:
        async for job in jobs:
            progress.show(job)
            await asyncio.to_thread(_record, roost.jobs, job)
    progress.close()
    assert job is not None
    return job


def _record(store: JobStore, job: Job) -> None:
    try:
        store.put(job)
    except RoostError as error:  # an unwritable history is reported; the backup goes on
        log.warning("job history not updated: %s", error)


RESTORE_FAILED = 1
"""`roost restore`'s exit status when nothing was imported."""
IMPORT_FAILED = 3
"""`roost restore`'s exit status when the import itself failed."""


def restore_assistant(args: argparse.Namespace) -> int:
    context = load_context()
    source = Path(args.source).expanduser().absolute()
    options = RestoreOptions(
        dry_run=args.dry_run,
        safety_backup=not args.no_safety_backup,
        force_unverified=args.force_unverified,
    )
    ask = not (args.yes or args.dry_run)
    if ask and not sys.stdin.isatty():
        raise RoostError("not at a terminal to confirm: add --yes to restore (nothing was done)")
    run = _Restore(source, options, ask)
    job = with_roost(lambda roost: run(roost, args.name), context)
    return run.result(job)


class _Restore:
    """`roost restore`: the steps as they go, the preflight report, the typed confirmation,
    the outcome; every snapshot (the safety backup's too) recorded in the job history."""

    def __init__(self, source: Path, options: RestoreOptions, ask: bool) -> None:
        self.source = source
        self.options = options
        self.ask = ask
        self.imported = False
        """The import was started: a failure now may have left part of it."""
        self.progress = _Progress(sys.stderr)
        self.step: JobState | None = None
        self.reported = False
        """The preflight report is printed (once, as soon as it comes)."""

    async def __call__(self, roost: Roost, name: str) -> Job:
        try:
            await asyncio.to_thread(roost.jobs.load)
        except RoostError as error:  # the restore goes on; the log says what was not saved
            log.warning("job history not read: %s", error)
        assistant = await roost.choose(name)
        job = await self._follow(roost, roost.prepare_restore(assistant, self.source, self.options))
        if job.state is JobState.AWAITING:
            if self.ask and not await asyncio.to_thread(_confirm_restore, job):
                job = roost.decline_restore(job)
                await asyncio.to_thread(_record, roost.jobs, job)
                return job
            self.imported = True
            job = await self._follow(roost, roost.restore(job))
        runtime_job = job.in_progress_job_id
        if runtime_job and sys.stdin.isatty():
            question = (
                f"{assistant.name} is already running an import (job {runtime_job}). "
                "Follow it here? [y/N] "
            )
            if await asyncio.to_thread(_confirmed, question):
                self.imported = False  # roost's own import never started
                job = await self._follow(
                    roost, roost.follow_restore(assistant, runtime_job, self.source)
                )
        return job

    async def _follow(self, roost: Roost, jobs: AsyncGenerator[Job]) -> Job:
        job: Job | None = None
        async with contextlib.aclosing(jobs) as snapshots:
            async for snapshot in snapshots:
                self._show(snapshot)
                await asyncio.to_thread(_record, roost.jobs, snapshot)
                if snapshot.kind is JobKind.RESTORE:
                    job = snapshot
        self.progress.close()
        assert job is not None
        return job

    def _show(self, job: Job) -> None:
        """A line per step of the restore as it starts; a bar for the running one on a
        terminal, and the safety backup's progress as a backup's."""
        if job.kind is not JobKind.RESTORE:
            self.progress.show(job, f"{job.assistant_name} (safety backup)")
            return
        if job.preflight is not None and not self.reported:
            self.progress.close()
            _print_preflight(job)
            self.reported = True
        if job.state is not self.step and job.state in RESTORE_STEPS:
            self.progress.close()
            say(f"{job.assistant_name}: {RESTORE_STEPS[job.state]}", file=sys.stderr, flush=True)
        self.step = job.state
        if self.progress.tty and not job.state.finished and job.bytes_total:
            self.progress.show(job)

    def result(self, job: Job) -> int:
        """Say how it ended; the exit status."""
        name = job.assistant_name
        if job.state is JobState.COMPLETE and job.dry_run:
            say(f"Dry run: {name} can import {job.destination}; nothing was imported.")
            return 0
        if job.state is JobState.COMPLETE:
            say(f"Restored {name} from {job.destination}")
            if job.outcome is not None:
                say(f"imported  {job.outcome.summary()}")
                for warning in job.outcome.warnings:
                    say(f"warning   {warning}")
                if job.outcome.more:
                    say(f"          (and {job.outcome.more} more errors or warnings)")
            if job.safety_backup is not None:
                say(f"undo      roost restore {name} --from {job.safety_backup}")
            if job.note:
                say(f"note      {job.note}")
            return 0
        if job.state is JobState.CANCELLED:
            say(f"Not confirmed: nothing was imported into {name}.", file=sys.stderr)
            return RESTORE_FAILED
        say(f"roost: restore of {name} {job.state.value}: {job.error}", file=sys.stderr)
        if job.in_progress_job_id:
            say(
                f"roost: follow it in the console, or try again when job"
                f" {job.in_progress_job_id} ends",
                file=sys.stderr,
            )
        if self.imported and job.safety_backup is not None:
            say(f"roost: to undo: roost restore {name} --from {job.safety_backup}", file=sys.stderr)
        return IMPORT_FAILED if self.imported and not job.in_progress_job_id else RESTORE_FAILED


RESTORE_STEPS = {
    JobState.VERIFYING: "1/5 checking the file against roost's record",
    JobState.PREFLIGHT: "2/5 preflight: the runtime checks the bundle",
    JobState.UPLOADING: "    uploading the bundle",
    JobState.BACKING_UP: "3/5 safety backup of the current state",
    JobState.AWAITING: "4/5 ready to import",
    JobState.IMPORTING: "5/5 importing",
    JobState.PROCESSING: "5/5 importing (the runtime's job)",
}
"""What `roost restore` says as each step starts."""


def _print_preflight(job: Job) -> None:
    report = job.preflight
    assert report is not None
    verdict = "can import" if report.can_import else "CANNOT import"
    say(f"Preflight: {job.assistant_name} {verdict} {job.destination}")
    say(f"  files     {report.summary()}")
    for problem in report.errors:
        say(f"  error     {problem}")
    for problem in report.conflicts:
        say(f"  conflict  {problem}")
    if report.more:
        say(f"  (and {report.more} more errors or conflicts)")
    if job.note:
        say(f"  note      {job.note}")
    sys.stdout.flush()


def _confirm_restore(job: Job) -> bool:
    """The typed confirmation (blocking): the assistant's name, as the console asks it."""
    name = job.assistant_name
    backup = f"; safety backup: {job.safety_backup}" if job.safety_backup else ""
    say(f"Restoring overwrites {name}'s data with {job.destination}{backup}.")
    return input(printable(f"Type {name} to import, anything else to stop: ")).strip() == name


INTERRUPTED_NOTE = "its roost process ended: the console resumes it when it next starts"


def list_jobs(args: argparse.Namespace) -> int:
    store = JobStore.at(RoostPaths.resolve())
    jobs = store.load()
    for problem in store.problems:
        print(f"roost: warning: {problem}", file=sys.stderr)
    if args.json:
        rows = [
            {
                **job.to_json(),
                "state": store.shown_state(job),
                "interrupted": store.is_interrupted(job),
            }
            for job in jobs
        ]
        print(json.dumps(rows, indent=2))
        return 0
    if not jobs:
        print("no jobs yet", file=sys.stderr)
        return 0
    width = max(len("ASSISTANT"), *(len(job.assistant_name) for job in jobs)) + 2
    print(f"{'ID':<24}{'ASSISTANT':<{width}}{'KIND':<9}{'STATE':<13}{'STARTED':<18}RESULT")
    for job in jobs:
        started = job.started_at.astimezone().strftime("%Y-%m-%d %H:%M")
        result = INTERRUPTED_NOTE if store.is_interrupted(job) else job_result(job)
        state = store.shown_state(job)
        who = f"{job.id:<24}{job.assistant_name:<{width}}{job.kind:<9}"
        say(f"{who}{state:<13}{started:<18}{result}".rstrip())
    return 0


class _Progress:
    """A bar redrawn in place on a terminal; one line per change of state otherwise."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.last_state: JobState | None = None
        self.ticks = 0

    def show(self, job: Job, label: str | None = None) -> None:
        """`label` names the job (default: its assistant)."""
        label = label or job.assistant_name
        if self.tty:
            self.ticks += 1
            done = f" {format_bytes(job.bytes_done)}" if job.bytes_done else ""
            line = f"{label}: {job.state.value}{done} {job_progress(job, 30, self.ticks)}"
            self.stream.write("\r\x1b[K" + printable(line))
            self.stream.flush()
        elif job.state is not self.last_state:
            self.stream.write(printable(f"{label}: {job.state.value}") + "\n")
            self.stream.flush()
        self.last_state = job.state

    def close(self) -> None:
        if self.tty:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


# -- sessions, attach, exec ------------------------------------------------------------------


def list_sessions(args: argparse.Namespace) -> int:
    async def look(roost: Roost) -> TmuxListing:
        return await roost.sessions(await roost.terminal_place(args.assistant))

    listing = with_roost(look)
    if listing.state in (TmuxState.ERROR, TmuxState.NOT_INSTALLED):
        raise RoostError(listing.detail)
    if args.json:
        rows = [
            {
                "name": session.name,
                "id": session.id,
                "windows": session.windows,
                "attached": session.attached,
                "created": session.created.isoformat(),
                "activity": session.activity.isoformat(),
            }
            for session in listing.sessions
        ]
        print(json.dumps(rows, indent=2))
        return 0
    if not listing.sessions:
        say(f"no tmux sessions ({listing.detail or 'none running'})", file=sys.stderr)
        return 0
    width = max(len(session.name) for session in listing.sessions) + 2
    print(f"{'NAME':<{width}}{'WINDOWS':<9}{'ATTACHED':<10}CREATED")
    for session in listing.sessions:
        created = session.created.astimezone().strftime("%Y-%m-%d %H:%M")
        say(f"{session.name:<{width}}{session.windows:<9}{session.attached:<10}{created}")
    return 0


def attach_session(args: argparse.Namespace) -> int:
    """The assistant, where its terminal lives and SESSION are checked before the console
    starts: what does not exist is one line and exit status 1, never a dead pane."""
    if _without_terminal():
        return NO_TERMINAL

    async def find(roost: Roost) -> Assistant:
        assistant = await roost.find_terminal(args.assistant)
        place = await roost.place(assistant)
        if args.session is not None:
            await roost.session(place, args.session)
        return assistant

    assistant = with_roost(find)
    mode = Mode.WATCH if args.watch else None
    return run_tui(args, AttachRequest(assistant, args.session, mode, choose=True))


def exec_command(args: argparse.Namespace) -> int:
    command = args.command
    if not command:
        raise UsageError("no command to run: roost exec ASSISTANT -- CMD [ARGS...]")

    async def run(roost: Roost) -> ExecResult:
        place = await roost.terminal_place(args.assistant)
        sys.stdout.flush()
        return await roost.attacher.run(
            place, command, timeout=args.timeout, stdout=sys.stdout.buffer, stderr=sys.stderr.buffer
        )

    result = with_roost(run)
    sys.stdout.buffer.write(result.stdout)
    sys.stdout.buffer.flush()
    if result.dropped:
        print(
            f"roost: the first {result.dropped} bytes of output were dropped; only the last"
            f" {len(result.stdout)} were kept",
            file=sys.stderr,
        )
    if result.timed_out:
        say(f"roost: {shlex.join(command)} timed out after {args.timeout:g} s", file=sys.stderr)
    return result.exit_code


def share_session(args: argparse.Namespace) -> int:
    if args.stop:
        if args.assistant is not None:
            raise UsageError("--stop stops every share: it takes no session")
        stopped = stop_all()
        for record in stopped:
            say(f"stopping the share of {record.describe}")
        if not stopped:
            print("no share is running")
        return 0
    if args.session is None:
        raise UsageError("which session? roost share ASSISTANT SESSION")
    if not 0 <= args.port < 65536:
        raise UsageError(f"--port {args.port} is not a port")

    async def serve(roost: Roost) -> None:
        attachment, backend, size = await roost.watch_for_share(
            await roost.find(args.assistant), args.session
        )
        share = Share(attachment.title, size, bind=args.bind, port=args.port)
        await share.start()
        try:
            print(share.url, flush=True)  # the first line: the one place the token is shown
            if exposed(args.bind):
                say(f"roost: {exposure_warning(args.bind)}", file=sys.stderr)
            await _serve_until_stopped(share, backend, size)
        finally:
            await share.stop()

    with_roost(serve)
    say(f"roost: the share of {args.session} has stopped", file=sys.stderr)
    return 0


async def _serve_until_stopped(share: Share, backend: TerminalBackend, size: TerminalSize) -> None:
    """Serve until the session ends, or an interrupt, TERM or `roost share --stop` arrives."""
    loop = asyncio.get_running_loop()
    stopped = asyncio.Event()
    for number in (signal.SIGINT, signal.SIGTERM, STOP_SIGNAL):
        loop.add_signal_handler(number, stopped.set)
    feeding = asyncio.create_task(feed(share, backend, size))
    stopping = asyncio.create_task(stopped.wait())
    telling = asyncio.create_task(_tell_viewers(share))
    try:
        await asyncio.wait((feeding, stopping), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for number in (signal.SIGINT, signal.SIGTERM, STOP_SIGNAL):
            loop.remove_signal_handler(number)
        stopping.cancel()
        feeding.cancel()
        await share.stop()
        await telling
        with contextlib.suppress(asyncio.CancelledError):
            await feeding  # a session that could not start raises its error here


async def _tell_viewers(share: Share) -> None:
    async for change in share.server.changes():
        say(f"roost: {change.line}", file=sys.stderr, flush=True)


# -- the needs-you inbox ---------------------------------------------------------------------

FRONT_END = "command line"
"""How the answer history names answers sent with `roost answer`."""
SECRET_CAP = 64 * 1024
"""The longest secret read from standard input."""


def show_inbox(args: argparse.Namespace) -> int:
    if args.history:
        if args.names or args.show:
            raise UsageError("--history lists every answer: no NAME, no --show")
        return _show_history(args.json, args.limit or 100)
    if args.limit is not None:
        raise UsageError("--limit goes with --history")
    reading = with_roost(lambda roost: roost.inbox(args.names))
    for problem in reading.problems:
        say(f"roost: {problem}", file=sys.stderr)
    status = 1 if reading.problems else 0
    if args.show:
        item = reading.find(args.show)
        if args.json:
            print(json.dumps(_item_json(item), indent=2))
        else:
            for line in _item_lines(item):
                say(line)
        return status
    if args.json:
        print(json.dumps([_item_json(item) for item in reading.items], indent=2))
        return status
    if not reading.items:
        if not reading.problems:  # else what was not asked may be pending
            print("nothing pending", file=sys.stderr)
        return status
    now = _now()
    width = max(len("ASSISTANT"), *(len(item.assistant) for item in reading.items)) + 2
    print(f"{'ID':<12}{'ASSISTANT':<{width}}{'KIND':<14}{'AGE':<6}WHAT")
    for item in reading.items:
        age = format_age(item.since, now)
        say(f"{item.id:<12}{item.assistant:<{width}}{item.kind:<14}{age:<6}{item.summary}")
    return status


def _show_history(as_json: bool, limit: int) -> int:
    async def read(roost: Roost) -> list[AnswerRecord]:
        return await asyncio.to_thread(roost.history, limit)

    records = with_roost(read)
    if as_json:
        print(json.dumps([_record_json(record) for record in records], indent=2))
        return 0
    if not records:
        print("no answers yet", file=sys.stderr)
        return 0
    width = max(len("ASSISTANT"), *(len(record.assistant) for record in records)) + 2
    print(f"{'WHEN':<18}{'ASSISTANT':<{width}}{'KIND':<14}{'OUTCOME':<18}ANSWERED  (ASKED)")
    for record in records:
        when = record.at.astimezone().strftime("%Y-%m-%d %H:%M")
        line = f"{when:<18}{record.assistant:<{width}}{record.kind:<14}{record.outcome:<18}"
        say(f"{line}{record.answered}  ({record.asked})")
    return 0


def _record_json(record: AnswerRecord) -> dict[str, str]:
    return {
        "at": record.at.isoformat(),
        "assistant": record.assistant,
        "assistant_id": record.assistant_id,
        "request_id": record.request_id,
        "kind": str(record.kind),
        "asked": record.asked,
        "answered": record.answered,
        "front_end": record.front_end,
        "outcome": str(record.outcome),
        "detail": record.detail,
    }


def _item_json(item: Interaction) -> dict[str, object]:
    """One inbox item for scripts: what identifies it, then what it asks (by kind)."""
    row: dict[str, object] = {
        "id": item.id,
        "assistant": item.assistant,
        "assistant_id": item.assistant_id,
        "request_id": item.request_id,
        "kind": str(item.kind),
        "conversation": item.conversation,
        "summary": item.summary,
        "since": item.since.isoformat(),
    }
    request = item.request
    if item.kind is InteractionKind.CONFIRMATION:
        row |= {"tool": item.tool, "risk": item.risk}
    if isinstance(request, Confirmation):
        diff = request.diff
        row |= {
            "tool": request.tool,
            "risk": request.risk,
            "risk_reason": request.risk_reason,
            "execution_target": request.execution_target,
            "input": _json_or_text(request.input_json),
            "diff": None
            if diff is None
            else {
                "file_path": diff.file_path,
                "old": diff.old,
                "new": diff.new,
                "is_new_file": diff.is_new_file,
            },
            "patterns": [
                {"label": o.label, "pattern": o.value, "description": o.description}
                for o in request.patterns
            ],
            "scopes": [
                {"label": o.label, "scope": o.value, "description": o.description}
                for o in request.scopes
            ],
            "persistent_decisions_allowed": request.persistent_decisions_allowed,
        }
    elif isinstance(request, Questions):
        row["questions"] = [
            {
                "id": question.id,
                "question": question.question,
                "description": question.description,
                "options": [
                    {"id": c.id, "label": c.label, "description": c.description}
                    for c in question.options
                ],
                "placeholder": question.placeholder,
            }
            for question in request.questions
        ]
    elif isinstance(request, SecretRequest):
        row |= {"service": request.service, "field": request.field, "label": request.label}
    return row


def _json_or_text(text: str) -> object:
    """A tool's input as the JSON it is (its text when it is not JSON)."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _item_lines(item: Interaction) -> list[str]:
    """One inbox item whole, for a person: the lines `roost inbox --show ID` prints."""
    lines = [
        f"id            {item.id}",
        f"assistant     {item.assistant} ({item.assistant_id})",
        f"request       {item.request_id}",
        f"conversation  {item.conversation or '(not said)'}",
        f"kind          {item.kind}",
        f"asks          {item.summary}",
    ]
    request = item.request
    if request is None:
        return [*lines, "details       (not read: its runtime did not give them)"]
    if isinstance(request, Confirmation):
        risk = f"{request.risk}: {request.risk_reason}" if request.risk_reason else request.risk
        lines += [f"tool          {request.tool}", f"risk          {risk or '(not said)'}"]
        lines.append(f"runs on       {request.execution_target or '(not said)'}")
        lines += ["input", *(f"  {line}" for line in request.input_json.splitlines())]
        if request.diff is not None:
            lines += ["diff", *(f"  {line}" for line in _diff_lines(request))]
        if request.persistent_decisions_allowed and request.patterns and request.scopes:
            lines.append("always allow  (roost answer ID allow --always PATTERN --scope SCOPE)")
            lines += [f"  pattern {o.value}  {o.label}" for o in request.patterns]
            lines += [f"  scope   {o.value}  {o.label}" for o in request.scopes]
    elif isinstance(request, Questions):
        for question in request.questions:
            lines.append(f"question {question.id}: {question.question}")
            if question.description:
                lines.append(f"  {question.description}")
            lines += [f"  option {c.id}: {c.label}" for c in question.options]
            if question.placeholder:
                lines.append(f"  free text: {question.placeholder}")
    else:
        lines += [
            f"service       {request.service}",
            f"field         {request.field}",
            f"label         {request.label}",
        ]
    return lines


def _diff_lines(request: Confirmation) -> list[str]:
    diff = request.diff
    assert diff is not None
    before = "/dev/null" if diff.is_new_file else diff.file_path
    return list(
        difflib.unified_diff(
            diff.old.splitlines(), diff.new.splitlines(), before, diff.file_path, lineterm=""
        )
    )


Response = OptionAnswer | TextAnswer | SkipAnswer


def answer_request(args: argparse.Namespace) -> int:
    form, responses = _answer_form(args)

    async def answer(roost: Roost) -> tuple[Interaction, AnswerRecord] | AnswerRecord:
        reading = await roost.inbox()
        try:
            item = reading.find(args.id)
        except RoostError:
            earlier = await asyncio.to_thread(roost.answered, args.id)
            if earlier is None:
                raise
            return earlier  # answered before, by roost: not pending any more
        reply = await asyncio.to_thread(_answer_of, args, form, responses, item)
        return item, await roost.answer(item, reply, FRONT_END)

    answered = with_roost(answer)
    if isinstance(answered, AnswerRecord):
        say(
            f"roost: {args.id} ({answered.assistant}: {answered.asked}) was already answered: "
            f"{answered.answered}, from the {answered.front_end} at "
            f"{answered.at.astimezone():%Y-%m-%d %H:%M}; nothing sent",
            file=sys.stderr,
        )
        return 0
    item, record = answered
    what = f"{item.id} ({item.assistant}: {item.summary})"
    if record.outcome is Outcome.ACCEPTED:
        say(f"{what}: {record.answered}")
        return 0
    if record.outcome is Outcome.ALREADY_ANSWERED:
        if record.detail:  # an agent's dialog gone from its screen (perhaps interrupted)
            say(f"roost: {what}: {record.detail}", file=sys.stderr)
        else:
            say(f"roost: {what} was already answered elsewhere; nothing sent", file=sys.stderr)
        return 0
    raise RoostError(f"{what} not answered: {record.detail or record.outcome}")


def _answer_form(args: argparse.Namespace) -> tuple[InteractionKind, dict[str, Response]]:
    """Which kind of request the options answer, and a question's responses by question id.
    Raises UsageError when they mix kinds or lack what they need, before any runtime is asked."""
    responses: dict[str, Response] = {}

    def add(response: Response) -> None:
        if response.question_id in responses:
            raise UsageError(f"question {response.question_id} is answered twice")
        responses[response.question_id] = response

    for text in args.option:
        add(OptionAnswer(*_pair(text, "--option QID=OID")))
    for text in args.text:
        add(TextAnswer(*_pair(text, "--text QID=TEXT")))
    for question in args.skip:
        add(SkipAnswer(question))
    forms = [
        kind
        for kind, given in (
            (InteractionKind.CONFIRMATION, args.decision is not None),
            (InteractionKind.QUESTION, bool(responses or args.close)),
            (InteractionKind.SECRET, args.secret),
        )
        if given
    ]
    if len(forms) != 1:
        raise UsageError(
            "answer with one of: allow|deny, --option/--text/--skip (or --close), --secret"
        )
    if (args.always is None) != (args.scope is None):
        raise UsageError("--always PATTERN and --scope SCOPE go together")
    if args.always is not None and args.decision != Decision.ALLOW:
        raise UsageError("--always goes with allow")
    if args.close and responses:
        raise UsageError("--close dismisses the whole batch: no --option, --text or --skip")
    if args.transient and not args.secret:
        raise UsageError("--transient goes with --secret")
    return forms[0], responses


HOW_TO_ANSWER = {
    InteractionKind.CONFIRMATION: "allow or deny",
    InteractionKind.QUESTION: "--option, --text, --skip or --close",
    InteractionKind.SECRET: "--secret",
}


def _answer_of(
    args: argparse.Namespace,
    form: InteractionKind,
    responses: dict[str, Response],
    item: Interaction,
) -> Answer:
    """The answer the options give `item`, checked against what it asks (blocking: a secret
    is read from standard input). Raises RoostError."""
    if form is not item.kind:
        raise RoostError(f"{item.id} is a {item.kind}: answer it with {HOW_TO_ANSWER[item.kind]}")
    if form is InteractionKind.CONFIRMATION:
        return _allow(args, item)
    if form is InteractionKind.QUESTION:
        return Reply(close=True) if args.close else _reply(responses, item)
    return Secret(_read_secret(item), "transient_send" if args.transient else "store")


def _allow(args: argparse.Namespace, item: Interaction) -> Allow:
    decision = Decision(args.decision)
    request = item.request
    if args.always is None:
        return Allow(decision)
    if isinstance(request, Confirmation):  # else the runtime judges the rule alone
        if not request.persistent_decisions_allowed:
            raise RoostError(f"{item.id} cannot be always allowed: its runtime allows it once")
        for given, options, what in (
            (args.always, request.patterns, "pattern"),
            (args.scope, request.scopes, "scope"),
        ):
            if given not in (option.value for option in options):
                choices = ", ".join(option.value for option in options) or "none"
                raise RoostError(f"no {what} {given!r} in {item.id}; its {what}s: {choices}")
    return Allow(decision, args.always, args.scope)


def _reply(responses: dict[str, Response], item: Interaction) -> Reply:
    """The responses checked against the questions asked, every question not named skipped."""
    request = item.request
    if not isinstance(request, Questions):  # details unknown: the runtime judges them
        return Reply(tuple(responses.values()))
    questions = {question.id: question for question in request.questions}
    for response in responses.values():
        asked = questions.get(response.question_id)
        if asked is None:
            choices = ", ".join(questions) or "none"
            raise RoostError(f"{item.id} has no question {response.question_id!r}: {choices}")
        options = [choice.id for choice in asked.options]
        if isinstance(response, OptionAnswer) and response.option_id not in options:
            raise RoostError(
                f"question {asked.id} has no option {response.option_id!r}:"
                f" {', '.join(options) or 'answer it with --text'}"
            )
    return Reply(tuple(responses.get(q, SkipAnswer(q)) for q in questions))


def _pair(text: str, form: str) -> tuple[str, str]:
    key, equals, value = text.partition("=")
    if not (key and equals and value):
        raise UsageError(f"expected {form}, not {text!r}")
    return key, value


def _read_secret(item: Interaction) -> str:
    """The secret's value from standard input: typed without echo at a terminal, else all of
    it (one line ending dropped). Never an argument: the command line shows in `ps`."""
    request = item.request
    what = (request.label or request.field) if isinstance(request, SecretRequest) else "the secret"
    if sys.stdin.isatty():
        value = getpass.getpass(printable(f"{what} for {item.assistant} (not shown): "))
    else:
        value = sys.stdin.read(SECRET_CAP + 1)
        if len(value) > SECRET_CAP:
            raise RoostError(f"the secret on standard input is over {SECRET_CAP} characters")
        value = value.removesuffix("\n").removesuffix("\r")
    if not value:
        raise RoostError("the secret is empty: nothing sent")
    return value


# Coding agents' hooks: `roost hook` (what the hooks run) and `roost hooks` (putting them in the
# agents' settings, taking them out, checking them) ------------------------------------------


def add_hook_commands(commands: argparse._SubParsersAction[_Command]) -> None:
    agents = ", ".join(map(str, Agent))
    hook = commands.add_parser(
        "hook",
        help="record a coding agent's event (what roost's hooks in the agents run)",
        description="Record one event of a coding agent for roost, from the hook `roost hooks "
        "install` put in its settings: the payload (Claude Code and Gemini CLI: standard "
        "input; Codex: the last argument) and the tmux pane ($TMUX, $TMUX_PANE) go into one "
        "file of roost's agent spool. Prints nothing and exits 0 whatever happens, so the "
        "agent never notices; `roost hooks status` shows the last problem.",
        usage="roost hook [-h] AGENT [--then PROG [ARGS...]] [PAYLOAD]",
    )
    hook.add_argument("agent", metavar="AGENT", help=f"the agent whose hook runs ({agents})")
    hook.add_argument(
        "args",
        nargs=argparse.REMAINDER,
        metavar="ARGS",
        help="Codex: `--then PROG ARGS...` (the user's own notify program, started with the "
        "payload once roost is done), then the payload",
    )
    hook.set_defaults(handler=record_hook)

    hooks = commands.add_parser(
        "hooks",
        help="install, remove or check roost's hooks in Claude Code, Codex and Gemini CLI",
        description="roost learns what coding agents do from hooks in their own settings "
        "(~/.claude/settings.json, ~/.codex/config.toml, ~/.gemini/settings.json): each event "
        "runs `roost hook AGENT`. Changes are merged with your own hooks, shown as a diff "
        "and asked for first; a backup of each file is kept beside it.",
    )
    actions = hooks.add_subparsers(
        title="actions", metavar="ACTION", parser_class=_Command, required=True
    )
    choices = [*map(str, Agent), "all"]
    install = actions.add_parser(
        "install",
        help="put roost's hook in the agents' settings",
        description="Add `roost hook AGENT` to the agent's settings for the events roost "
        "follows, beside your own hooks; with Codex, which runs one notify program, yours "
        "runs after roost's. Installing again changes nothing. Without --yes, each change "
        "is shown as a diff and asked for (at a terminal; elsewhere --yes is required).",
    )
    install.add_argument(
        "agent",
        nargs="?",
        default="all",
        choices=choices,
        metavar="AGENT",
        help=f"{agents} or all (the default: those set up here)",
    )
    install.add_argument("--yes", action="store_true", help="change the files without asking")
    install.add_argument(
        "--dry-run", action="store_true", help="show the changes as diffs, change nothing"
    )
    install.add_argument(
        "--force",
        action="store_true",
        help="install even where the agent's settings keep hooks from running "
        "(managed settings, disableAllHooks)",
    )
    install.set_defaults(handler=install_hooks)

    uninstall = actions.add_parser(
        "uninstall",
        help="take roost's hooks out of the agents' settings",
        description="Remove every `roost hook AGENT` entry from the agent's settings, and "
        "what roost left empty; Codex's notify becomes your own program again.",
    )
    uninstall.add_argument(
        "agent",
        nargs="?",
        default="all",
        choices=choices,
        metavar="AGENT",
        help=f"{agents} or all (the default)",
    )
    uninstall.add_argument("--yes", action="store_true", help="change the files without asking")
    uninstall.add_argument(
        "--dry-run", action="store_true", help="show the changes as diffs, change nothing"
    )
    uninstall.set_defaults(handler=uninstall_hooks, force=False)

    state = actions.add_parser(
        "status",
        help="show where roost's hooks are installed and what waits in the spool",
        description="For each agent: its settings file, the events roost's hook is installed "
        "for, and settings that keep hooks from running; then the spool the hooks write to, "
        "how many events wait there, and the last problem a hook had.",
    )
    state.add_argument("--json", action="store_true", help="print one JSON object")
    state.set_defaults(handler=show_hooks)


def record_hook(args: argparse.Namespace) -> int:
    return hook_main([args.agent, *args.args])


def install_hooks(args: argparse.Namespace) -> int:
    files = AgentFiles.resolve(os.environ)
    roost = roost_executable(sys.argv[0], sys.executable)
    agents = _agents(args, files)
    return _change_hooks(args, [(a, partial(plan_install, a, files, roost)) for a in agents])


def uninstall_hooks(args: argparse.Namespace) -> int:
    files = AgentFiles.resolve(os.environ)
    agents = list(Agent) if args.agent == "all" else [Agent(args.agent)]
    return _change_hooks(args, [(agent, partial(plan_uninstall, agent, files)) for agent in agents])


def _agents(args: argparse.Namespace, files: AgentFiles) -> list[Agent]:
    """The agents named, or with `all` those set up here (their settings directory exists)."""
    if args.agent != "all":
        return [Agent(args.agent)]
    agents = []
    for agent in Agent:
        if files.of(agent).parent.is_dir():
            agents.append(agent)
        else:
            say(
                f"{agent}: skipped, {files.of(agent).parent} does not exist "
                f"(`roost hooks install {agent}` installs all the same)"
            )
    return agents


def _change_hooks(
    args: argparse.Namespace, plans: Sequence[tuple[Agent, Callable[[], Change]]]
) -> int:
    """Plan every agent's change, then show, ask and apply them one file at a time."""
    failed = False
    pending: list[Change] = []
    for agent, plan in plans:
        try:
            change = plan()
        except RoostError as error:
            say(f"roost: {agent}: {error_text(error)}", file=sys.stderr)
            failed = True
            continue
        if not change.changed:
            say(change.summary)
        elif change.restrictions and not args.force:
            for reason in change.restrictions:
                say(f"roost: {agent}: hooks would not run: {reason}", file=sys.stderr)
            say(f"roost: {agent}: nothing changed (--force installs all the same)", file=sys.stderr)
            failed = True
        else:
            pending.append(change)
    if pending and not (args.yes or args.dry_run or sys.stdin.isatty()):
        raise UsageError("not at a terminal to confirm: pass --yes (or --dry-run to see the diff)")
    for change in pending:
        if args.dry_run or not args.yes:
            for line in change.diff():
                say(line)
        if args.dry_run:
            say(f"(dry run) {change.summary}")
            continue
        if not args.yes and not _confirmed(f"Change {change.path}? [y/N] "):
            say(f"{change.agent}: {change.path} left as it was")
            continue
        backup = apply(change, datetime.now(UTC))
        say(change.summary + (f" (the file as it was: {backup})" if backup else ""))
        for reason in change.restrictions:
            say(f"roost: warning: {change.agent}: hooks will not run: {reason}", file=sys.stderr)
    return 1 if failed else 0


def _confirmed(question: str) -> bool:
    return input(printable(question)).strip().lower() in {"y", "yes"}


def show_hooks(args: argparse.Namespace) -> int:
    files = AgentFiles.resolve(os.environ)
    agents = [hook_status(agent, files) for agent in Agent]
    spool = spool_status(spool_dir(RoostPaths.resolve(), os.environ))
    if args.json:
        report = {
            "agents": [
                {
                    "agent": str(s.agent),
                    "config": str(s.path),
                    "exists": s.exists,
                    "installed": s.installed,
                    "events": list(s.events),
                    "missing": list(s.missing),
                    "then": list(s.chained),
                    "restrictions": list(s.restrictions),
                    "problem": s.problem,
                }
                for s in agents
            ],
            "spool": {
                "directory": str(spool.directory),
                "waiting": spool.waiting,
                "bad": spool.bad,
                "last_error": spool.last_error,
            },
        }
        print(json.dumps(report, indent=2))
        return 0
    for s in agents:
        if s.problem:
            state = "unreadable"
        elif not s.installed:
            state = "not installed"
        else:
            state = f"installed ({len(s.events)} events)" if s.missing else "installed"
        absent = "" if s.exists else "  (absent)"
        say(f"{s.agent:<8}{state:<24}{s.path}{absent}")
        notes = [s.problem] if s.problem else []
        if s.installed and s.missing:
            notes.append(f"missing: {', '.join(s.missing)} (`roost hooks install {s.agent}`)")
        if s.chained:
            notes.append(f"then runs your notify: {shlex.join(s.chained)}")
        notes += [f"hooks will not run: {reason}" for reason in s.restrictions]
        for note in notes:
            say(f"{'':<8}{note}")
    bad = f", {spool.bad} unreadable set aside (*.bad)" if spool.bad else ""
    say(f"{'spool':<8}{spool.waiting} events waiting{bad} in {spool.directory}")
    say(f"{'':<8}last hook error: {spool.last_error or 'none'}")
    return 0
