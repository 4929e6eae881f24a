"""Hostile and broken servers on 127.0.0.1, against every request roost makes (issue 12, items 11,
13 and 14): redirects that would carry credentials to another origin, answers and event lines that
never end, a command that floods its output, calls slower than httpx's default timeout.

Memory is measured where it is at stake: the client runs in a child process (the peer stays
here, so its buffers do not count), which reports the peak of what it allocated (tracemalloc)
while it met the hostile answer. The bound is generous (four times the cap, plus room for a
parsed result); without the caps the peak is a multiple of the flood.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import subprocess
import sys
from collections.abc import AsyncGenerator, Iterator
from pathlib import Path

import pytest

from services.core.http import CREDENTIAL_HEADERS, TransferLimits, http_client
from services.health.probes import probe_direct, probe_managed
from services.jobs.exports import Exporter
from services.jobs.record import Job, JobState
from services.jobs.runtime import Timeouts
from services.terminal.backend import SessionError, TerminalSize
from services.terminal.remote import RemoteSession
from services.vellum.auth import BearerAuth, RuntimeEndpoint
from services.vellum.platform import PlatformClient
from services.vellum.tokens import PlatformToken
from tests.peers.terminal import API_KEY, ASSISTANT, FLOOD_SIZE, Remote
from tests.peers.vellum import Reply, VellumPeer, flood_reply, json_reply, redirect_to

SESSION_TOKEN = "session-secret-7"
ROOT = Path(__file__).resolve().parent.parent
CAP = 1 << 20
"""The caps the children use: a thirty-second of the flood."""
ALLOWANCE = 8 << 20
"""What a child may allocate besides its capped buffers: httpx's, a parsed result."""


@pytest.fixture
def elsewhere() -> Iterator[VellumPeer]:
    """A second server: another port on 127.0.0.1 is another origin."""
    with VellumPeer() as peer:
        yield peer


def credentials_in(peer: VellumPeer) -> list[str]:
    return [
        name for request in peer.requests for name in request.headers if name in CREDENTIAL_HEADERS
    ]


# -- item 11: no credential header crosses an origin --------------------------------------------


async def test_a_health_probe_redirected_to_another_origin_sends_it_no_credentials(
    vellum_peer: VellumPeer, elsewhere: VellumPeer
) -> None:
    target = elsewhere.runtime("collector")
    moved = vellum_peer.runtime("moved", health=redirect_to(target.base_url + "/v1/health"))
    platform = {"X-Session-Token": SESSION_TOKEN, "Vellum-Organization-Id": "org-1"}
    moved.managed_health = redirect_to(target.base_url + "/v1/health")

    async with http_client() as http:
        direct = await probe_direct(http, moved.base_url, "guardian-secret")
        managed = await probe_managed(http, moved.base_url, "asst-1", platform)

    assert len(elsewhere.requests) == 2  # followed, both times
    assert credentials_in(elsewhere) == []
    assert direct.status == managed.status == "healthy"


async def test_a_redirect_within_the_origin_keeps_the_credentials(vellum_peer: VellumPeer) -> None:
    vellum_peer.runtime("alpha", bearer="guardian-secret")
    moved = vellum_peer.runtime("moved", health=redirect_to("/rt/alpha/v1/health"))

    async with http_client() as http:
        health = await probe_direct(http, moved.base_url, "guardian-secret")

    assert health.status == "healthy"


async def test_a_refusal_after_a_redirect_to_another_origin_says_why(
    vellum_peer: VellumPeer, elsewhere: VellumPeer
) -> None:
    target = elsewhere.runtime("collector", bearer="guardian-secret")
    moved = vellum_peer.runtime("moved", health=redirect_to(target.base_url + "/v1/health"))

    async with http_client() as http:
        health = await probe_direct(http, moved.base_url, "guardian-secret")

    assert (health.status, health.detail) == (
        "error (401)",
        "redirected to 127.0.0.1, which gets no credentials",
    )


async def test_platform_and_terminal_calls_follow_no_redirect(
    remote: Remote, elsewhere: VellumPeer
) -> None:
    away = redirect_to(elsewhere.url + "/v1/assistants/")
    remote.peer.platform.assistants_override = away
    remote.terminals.assistants.clear()  # so the create below reaches no real terminal
    session = RemoteSession(remote.http, remote.platform, ASSISTANT)

    listing = await remote.platform.list_assistants()
    with pytest.raises(SessionError):
        await session.start(TerminalSize(80, 24))

    assert (listing.ok, listing.error) == (False, "platform answered 302")
    assert elsewhere.requests == ()


# -- item 13: every body and line is read against a cap -----------------------------------------

CHILD = """
import asyncio, json, sys, tracemalloc
from pathlib import Path

import httpx

from services.core.http import http_client

CAP = {cap}
url = sys.argv[1]

{scenario}

async def main() -> None:
    async with http_client() as http:
        tracemalloc.start()
        outcome = await scenario(http)
        growth = tracemalloc.get_traced_memory()[1]
        print(json.dumps({{"growth": growth, "outcome": outcome}}))

asyncio.run(main())
"""


def run_child(scenario: str, url: str, tmp_path: Path, *argv: str) -> tuple[int, str]:
    """Run `scenario` (it defines `async def scenario(http) -> str`) in a child process, `url`
    and `argv` on its command line; the peak of its allocations meanwhile, and its outcome."""
    child = subprocess.run(
        [sys.executable, "-c", CHILD.format(cap=CAP, scenario=scenario), url, *argv],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "HOME": str(tmp_path)},
        timeout=120,
        check=False,
    )
    assert child.returncode == 0, child.stderr
    report = json.loads(child.stdout)
    return report["growth"], report["outcome"]


PLATFORM_LIST = f"""
from services.vellum.platform import PlatformClient
from services.vellum.tokens import PlatformToken

async def scenario(http: httpx.AsyncClient) -> str:
    token = PlatformToken("{API_KEY}", Path("/nowhere"))
    listing = await PlatformClient(http, url, token, max_answer=CAP).list_assistants()
    return f"{{listing.ok}} {{listing.error}}"
"""


def test_an_endless_platform_list_is_cut_off_at_its_cap(
    vellum_peer: VellumPeer, tmp_path: Path
) -> None:
    item = json.dumps({"id": "x" * 200, "name": "flood", "status": "active"}).encode() + b","
    vellum_peer.platform.assistants_override = flood_reply(b'{"results": [', item)

    growth, outcome = run_child(PLATFORM_LIST, vellum_peer.url, tmp_path)

    assert outcome == (
        f"False platform answer refused: {vellum_peer.url}/v1/assistants/: answer larger than 1 MiB"
    )
    assert growth < 4 * CAP + ALLOWANCE


BACKUP = """
from services.jobs.exports import Exporter
from services.vellum.auth import BearerAuth, RuntimeEndpoint

async def scenario(http: httpx.AsyncClient) -> str:
    target = RuntimeEndpoint("asst-1", "mia", url, True, BearerAuth(lambda: None))
    last = None
    async for job in Exporter(http).backup(target, Path.home() / "mia.vbundle"):
        last = job
    return f"{last.state.value}: {last.error}"
"""


def test_an_endless_json_answer_during_a_backup_ends_it_at_the_cap(
    vellum_peer: VellumPeer, tmp_path: Path
) -> None:
    mia = vellum_peer.runtime("mia")
    mia.migrations.start_replies.append(flood_reply(b'{"job_id": "', b"9" * 1024))

    growth, outcome = run_child(BACKUP, mia.base_url, tmp_path)

    where = f"{mia.base_url}/v1/assistants/asst-1/migrations/export-to-gcs"
    assert outcome == (
        f"failed: the runtime's answer was refused: {where}: answer larger than 1 MiB"
    )
    assert growth < 4 * (1 << 20) + ALLOWANCE


PANE = f"""
from services.vellum.platform import PlatformClient
from services.terminal.backend import SessionError, TerminalSize
from services.terminal.remote import RemoteSession
from services.vellum.tokens import PlatformToken
from services.vellum.tokens import PlatformToken

async def scenario(http: httpx.AsyncClient) -> str:
    platform = PlatformClient(http, url, PlatformToken("{API_KEY}", Path("/nowhere")))
    session = RemoteSession(http, platform, "{ASSISTANT}")
    await session.start(TerminalSize(80, 24))
    try:
        while True:
            await session.read()
    except SessionError as error:
        return str(error)
    finally:
        await session.close()
"""

EXEC = f"""
from services.vellum.platform import PlatformClient
from services.terminal.remote_commands import remote_exec
from services.terminal.backend import SessionError
from services.vellum.tokens import PlatformToken

async def scenario(http: httpx.AsyncClient) -> str:
    platform = PlatformClient(http, url, PlatformToken("{API_KEY}", Path("/nowhere")))
    argv = sys.argv[2:] or ["true"]
    try:
        result = await remote_exec(http, platform, "{ASSISTANT}", argv, max_output=CAP)
    except SessionError as error:
        return str(error)
    return f"{{result.exit_code}} kept {{len(result.stdout)}} dropped {{result.dropped}}"
"""


@pytest.mark.parametrize("scenario", [PANE, EXEC], ids=["pane", "exec"])
def test_an_endless_event_line_ends_the_session_with_a_clear_error(
    remote: Remote, tmp_path: Path, scenario: str
) -> None:
    remote.terminals.endless_line = True

    growth, outcome = run_child(scenario, remote.peer.url, tmp_path)

    assert outcome.startswith(f"the terminal output of {'shell' if scenario is PANE else 'exec'}")
    assert outcome.endswith("/events/: line larger than 1 MiB")
    assert growth < 4 * (1 << 20) + ALLOWANCE


def test_a_command_flooding_its_output_keeps_the_last_of_it_and_says_what_went(
    remote: Remote, tmp_path: Path
) -> None:
    flood = FLOOD_SIZE // 2
    command = f"head -c {flood} /dev/zero | tr '\\0' x"

    growth, outcome = run_child(EXEC, remote.peer.url, tmp_path, "sh", "-c", command)

    exit_code, _, kept, _, dropped = outcome.split()
    assert exit_code == "0" and 0 < int(kept) <= CAP
    assert int(kept) + int(dropped) >= flood
    assert growth < 4 * CAP + ALLOWANCE


# -- item 14: each call states its timeout; long transfers have a stall detector and a deadline --

HTTPX_DEFAULT_TIMEOUT = 5.0
"""What httpx applies to a call that states no timeout (and a client that sets none)."""


async def test_calls_slower_than_httpxs_default_but_within_their_own_timeout_succeed(
    vellum_peer: VellumPeer, tmp_path: Path
) -> None:
    slow = HTTPX_DEFAULT_TIMEOUT + 0.5
    vellum_peer.platform.api_keys.add(API_KEY)
    vellum_peer.platform.assistants_override = json_reply({"results": []}, delay=slow)
    mia = vellum_peer.runtime("mia")
    mia.migrations.start_replies.append(json_reply({"detail": "busy"}, status=400, delay=slow))
    target = RuntimeEndpoint("asst-1", "mia", mia.base_url, True, BearerAuth(lambda: None))

    async with http_client() as http:
        platform = PlatformClient(http, vellum_peer.url, PlatformToken(API_KEY, Path("/x")))
        exporter = Exporter(http, timeouts=Timeouts(request=slow + 3))
        listing, jobs = await asyncio.gather(
            platform.list_assistants(),
            collect(exporter.backup(target, tmp_path / "mia.vbundle")),
        )

    assert listing.ok
    assert jobs[-1].error == "the runtime answered 400: busy"  # an answer, not a timeout


async def collect(jobs: AsyncGenerator[Job, None]) -> list[Job]:
    async with contextlib.aclosing(jobs):
        return [job async for job in jobs]


def trickling_archive() -> Reply:
    """An export whose bytes come one every 20 ms: never silent long enough for a read timeout."""
    return Reply(content_type="application/octet-stream", body=b"x" * 10_000, trickle=0.02)


@pytest.mark.parametrize(
    ("limits", "error"),
    [
        (
            TransferLimits(stall_seconds=0.3, stall_bytes=100),
            r"the download stalled: less than 100 bytes in 0\.3 s, after \d+ bytes",
        ),
        (
            TransferLimits(stall_seconds=10, stall_bytes=1, deadline=0.5),
            r"the download was still going after 0\.5 s \(\d+ bytes\)",
        ),
    ],
    ids=["stall", "deadline"],
)
async def test_a_trickling_export_is_ended_by_the_watchdog(
    vellum_peer: VellumPeer, tmp_path: Path, limits: TransferLimits, error: str
) -> None:
    alpha = vellum_peer.runtime("alpha")
    alpha.migrations.export_replies.append(trickling_archive())
    target = RuntimeEndpoint("alpha", "alpha", alpha.base_url, False, BearerAuth(lambda: None))

    async with http_client() as http:
        exporter = Exporter(http, timeouts=Timeouts(transfer=limits))
        jobs = await collect(exporter.backup(target, tmp_path / "backups" / "alpha.vbundle"))

    assert jobs[-1].state is JobState.FAILED
    assert re.fullmatch(error, jobs[-1].error or "")
    assert files(tmp_path / "backups") == []  # neither the archive nor its .part


def files(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


async def test_a_timeout_message_quotes_the_figure_that_applied(
    vellum_peer: VellumPeer, tmp_path: Path
) -> None:
    alpha = vellum_peer.runtime("alpha")
    alpha.migrations.export_replies.append(Reply(delay=2.0))
    target = RuntimeEndpoint("alpha", "alpha", alpha.base_url, False, BearerAuth(lambda: None))

    async with http_client() as http:
        exporter = Exporter(http, timeouts=Timeouts(export=0.3))
        jobs = await collect(exporter.backup(target, tmp_path / "backups" / "alpha.vbundle"))

    assert jobs[-1].error == "the export got no answer within 0.3 s"
