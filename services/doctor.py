"""`roost doctor`: check what roost depends on, one line per check with a hint when not OK."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from services.context import Context
from services.core.config import ConfigError
from services.core.errors import RoostError
from services.docker.engines import configured_engines, probe
from services.hosts.probe import probe_hosts, ssh_version
from services.hosts.ssh import HostProblem
from services.terminal.tmux import WATCH_FLAGS_VERSION, TmuxState, parse_version
from services.vellum.lockfile import read_lockfile
from services.vellum.tokens import (
    TokenFileError,
    read_guardian_token,
    read_token_file,
    secret_file_problem,
)


class Verdict(StrEnum):
    OK = "OK"
    WARN = "WARN"
    FAIL = "FAIL"


@dataclass(frozen=True)
class Check:
    verdict: Verdict
    subject: str
    message: str
    hint: str = ""


def run_checks(context: Context, config_error: ConfigError | None = None) -> Iterator[Check]:
    """Every check, in a stable order; blocking (Docker engines get a few seconds each)."""
    yield _config(context, config_error)
    yield from _tmux(context)
    yield from _docker(context)
    yield from _hosts(context)
    yield from _lockfile(context)
    yield from _tokens(context)
    yield _log_dir(context.paths.log_dir)


def _config(context: Context, error: ConfigError | None) -> Check:
    path = context.paths.config_file
    if error is not None:
        return Check(Verdict.FAIL, "config", str(error), "fix the file; roost never rewrites it")
    if not path.exists():
        return Check(Verdict.OK, "config", f"no {path} (defaults in use)")
    return Check(Verdict.OK, "config", f"{path} is valid")


def _tmux(context: Context) -> Iterator[Check]:
    server = context.tmux
    version = server.version()
    if version is None:
        yield Check(
            Verdict.WARN,
            "tmux",
            "tmux not found on PATH",
            "install tmux (e.g. apt-get install tmux) to list and attach local sessions",
        )
        return
    parsed = parse_version(version)
    if parsed is not None and parsed < WATCH_FLAGS_VERSION:
        wanted = ".".join(map(str, WATCH_FLAGS_VERSION))
        yield Check(
            Verdict.WARN,
            "tmux",
            f"{version} is older than {wanted}",
            f"tmux {wanted} or newer lets a watcher attach without resizing the driver's window",
        )
    else:
        yield Check(Verdict.OK, "tmux", version)
    listing = server.list_sessions()
    if listing.state is TmuxState.RUNNING:
        yield Check(
            Verdict.OK, "tmux server", f"{server.describe()}: {len(listing.sessions)} sessions"
        )
    elif listing.state is TmuxState.NO_SERVER:
        yield Check(
            Verdict.OK,
            "tmux server",
            f"{server.describe()}: not running (no sessions yet)",
            f"start one with: {' '.join(server.argv('new', '-s', 'NAME'))}",
        )
    else:
        yield Check(Verdict.FAIL, "tmux server", f"{server.describe()}: {listing.detail}")


def _docker(context: Context) -> Iterator[Check]:
    for engine in configured_engines(context.config, context.environ):
        result = probe(engine)
        subject = f"docker {engine.name}"
        if result.reachable:
            yield Check(Verdict.OK, subject, f"{engine.describe()}: engine {result.version}")
        elif engine.implicit:
            yield Check(
                Verdict.WARN,
                subject,
                f"{engine.describe()}: {result.error}",
                "no Docker assistants will be listed; name engines in config.toml under "
                "[[docker.engines]]",
            )
        else:
            yield Check(
                Verdict.FAIL,
                subject,
                f"{engine.describe()}: {result.error}",
                "check that the engine runs and that this user may reach it",
            )


def _hosts(context: Context) -> Iterator[Check]:
    """Each `[[hosts]]` host, all probed at once: reachable with key authentication (a host
    key roost will not accept for the user fails here, saying how to), its connection shared,
    and tmux there. Its Docker engine is checked with the others."""
    hosts = context.config.hosts
    if not hosts:
        return
    try:
        ssh = context.ssh
    except RoostError as error:
        yield Check(Verdict.FAIL, "ssh", str(error), "set ROOST_RUNTIME_DIR to a directory")
        return
    client = ssh_version(ssh.executable)
    if client is None:
        yield Check(
            Verdict.FAIL,
            "ssh",
            f"no ssh client ({ssh.executable!r} not found)",
            "install OpenSSH's client (e.g. apt-get install openssh-client) to reach [[hosts]]",
        )
        return
    yield Check(Verdict.OK, "ssh", client)
    for found in asyncio.run(probe_hosts(ssh, hosts)):
        subject = f"host {found.host.name}"
        if found.problem is not None:
            yield Check(Verdict.FAIL, subject, found.error, _HOST_HINTS.get(found.problem, ""))
            continue
        assert found.latency_ms is not None
        round_trip = f"{found.latency_ms:.0f} ms round trip"
        if found.multiplexed:
            yield Check(Verdict.OK, subject, f"key auth OK, shared connection, {round_trip}")
        else:
            yield Check(
                Verdict.WARN,
                subject,
                f"key auth OK, but the connection is not shared ({round_trip})",
                f"every refresh costs a handshake: check that {ssh.control_dir} is writable "
                "and the ssh config sets no ControlMaster=no",
            )
        if found.tmux_version:
            yield Check(Verdict.OK, subject, f"{found.tmux_version} there")
        else:
            yield Check(
                Verdict.WARN,
                subject,
                "tmux not found there",
                "install tmux on it to list and attach its sessions",
            )


_HOST_HINTS = {
    HostProblem.UNREACHABLE: "check that it is up and that `ssh` reaches it from here",
    HostProblem.TIMEOUT: "check the network path to it (and any jump host)",
    HostProblem.NO_CLIENT: "install OpenSSH's client",
}
"""What to do, where the error does not say it already (host keys and authentication do)."""


def _lockfile(context: Context) -> Iterator[Check]:
    environment = context.vellum
    if environment.warning:
        yield Check(Verdict.WARN, "vellum env", environment.warning)
    read = read_lockfile(environment)
    for problem in read.problems:
        yield Check(
            Verdict.FAIL,
            "lockfile",
            str(problem),
            "roost will not rewrite it; fix or move the file",
        )
    if read.path is not None:
        count = len(read.entries)
        suffix = f", active {read.active}" if read.active else ""
        yield Check(Verdict.OK, "lockfile", f"{read.path}: {count} assistants{suffix}")
    elif not read.problems:
        yield Check(
            Verdict.OK,
            "lockfile",
            f"no lockfile at {environment.lockfile_candidates[0]} (no Vellum assistants yet)",
        )


def _tokens(context: Context) -> Iterator[Check]:
    """Every token file roost would read: the platform's (config.toml may name another), the
    guardian tokens, and the token files of config.toml's runtimes."""
    plain = [
        context.platform_token_file,
        *(r.token_file for r in context.config.runtimes if r.token_file),
    ]
    guardian = list(context.vellum.guardian_token_files)
    for path in [*plain, *guardian]:
        if not path.exists():
            continue
        problem = secret_file_problem(path)
        if problem:
            yield Check(Verdict.FAIL, "token file", problem, "others could use this secret")
            continue
        try:
            if path in guardian:
                read_guardian_token(context.vellum, path.parent.name)
            else:
                read_token_file(path)
        except TokenFileError as error:
            yield Check(Verdict.FAIL, "token file", str(error), "roost will not send this token")
        else:
            yield Check(Verdict.OK, "token file", f"{path} is readable by its owner only")
    if not context.platform_token_file.exists():
        yield Check(
            Verdict.OK,
            "platform",
            "not logged in (no platform token): cloud assistants are not listed",
            "run 'vellum login' to see cloud assistants",
        )


def _log_dir(log_dir: Path) -> Check:
    try:
        log_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=log_dir, prefix=".doctor-"):
            pass
    except OSError as error:
        return Check(
            Verdict.FAIL,
            "log dir",
            f"{log_dir}: {error.strerror}",
            "set ROOST_LOG_DIR to a writable directory",
        )
    return Check(Verdict.OK, "log dir", f"{log_dir} is writable")
