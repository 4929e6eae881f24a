"""The registry end to end: `roost ps` and `roost use` as subprocesses, and the platform sync,
against real files in a temporary home and the loopback Vellum peer."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import httpx

from services.context import Context
from services.fleet.sources import FleetSources
from services.vellum.platform import PlatformClient
from services.vellum.tokens import PlatformToken
from tests.peers.vellum import VellumPeer, json_reply, text_reply
from tests.test_cli import roost

SESSION = "session-token-for-tests"


def write_lockfile(home: Path, data: dict[str, Any]) -> Path:
    path = home / ".vellum.lock.json"
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


def log_in(home: Path) -> None:
    token = home / ".config/vellum/platform-token"
    token.parent.mkdir(parents=True, exist_ok=True)
    token.write_text(SESSION + "\n")
    token.chmod(0o600)


def ps_json(status: int = 0, **env: str) -> list[dict[str, Any]]:
    """`roost ps --json`'s rows; `status` 1 when a source is expected to fail."""
    result = roost("ps", "--json", **env)
    assert result.returncode == status, result.stderr
    rows: list[dict[str, Any]] = json.loads(result.stdout)
    return rows


def test_ps_probes_every_assistant_and_marks_the_active_one(
    isolated_env: Path, vellum_peer: VellumPeer
) -> None:
    good = vellum_peer.runtime("good", health=json_reply({"status": "healthy", "version": "2.1"}))
    sick = vellum_peer.runtime("sick", health=text_reply("boom", status=500))
    write_lockfile(
        isolated_env,
        {
            "assistants": [
                {"assistantId": "good", "cloud": "local", "runtimeUrl": good.base_url},
                {"assistantId": "sick", "cloud": "gcp", "runtimeUrl": sick.base_url},
                {"assistantId": "cloudy", "cloud": "vellum", "runtimeUrl": vellum_peer.url},
                {"assistantId": "broken", "cloud": "custom"},
            ],
            "activeAssistant": "sick",
        },
    )

    rows = {row["name"]: row for row in ps_json(VELLUM_PLATFORM_URL=vellum_peer.url)}

    assert all(
        list(row)
        == [
            "name",
            "id",
            "kind",
            "where",
            "status",
            "detail",
            "version",
            "runtime_url",
            "active",
            "source",
            "activity",
        ]
        for row in rows.values()
    )
    assert (rows["good"]["status"], rows["good"]["version"]) == ("healthy", "2.1")
    assert rows["sick"]["status"] == "error (500)" and rows["sick"]["active"] is True
    assert (rows["cloudy"]["status"], rows["cloudy"]["detail"]) == ("error (auth)", "not logged in")
    assert rows["broken"]["status"] == "invalid"
    # Not logged in: not one request to the platform, and no managed health request either.
    assert [r.path for r in vellum_peer.requests if not r.path.startswith("/rt/")] == []

    text = roost("ps", VELLUM_PLATFORM_URL=vellum_peer.url).stdout.splitlines()
    assert text[0].split() == ["NAME", "KIND", "STATUS", "ACTIVITY", "INFO"]
    assert [line for line in text if line.startswith("*")] == [
        next(line for line in text if " sick " in line)
    ]


def test_ps_adds_the_platforms_assistants_to_the_lockfile_and_keeps_the_rest(
    isolated_env: Path, vellum_peer: VellumPeer
) -> None:
    log_in(isolated_env)
    vellum_peer.platform.session_tokens.add(SESSION)
    vellum_peer.platform.assistants = [
        {"id": "m-new", "name": "New", "status": "active"},
        {"id": "m-old", "name": "Old", "status": "retired"},
    ]
    path = write_lockfile(
        isolated_env,
        {
            "assistants": [
                {"assistantId": "m-gone", "cloud": "vellum", "runtimeUrl": vellum_peer.url},
                {"assistantId": "mine", "cloud": "local", "runtimeUrl": "http://127.0.0.1:9"},
            ],
            "x-unknown": {"kept": True},
        },
    )

    rows = {row["id"]: row for row in ps_json(VELLUM_PLATFORM_URL=vellum_peer.url)}

    on_disk = json.loads(path.read_text())
    assert [e["assistantId"] for e in on_disk["assistants"]] == ["mine", "m-new"]
    assert on_disk["assistants"][1]["runtimeUrl"] == vellum_peer.url
    assert on_disk["x-unknown"] == {"kept": True}
    assert {"m-new", "mine"} <= set(rows) and "m-gone" not in rows
    assert rows["m-new"]["status"] == "healthy"  # managed health with the platform headers
    for request in vellum_peer.requests:
        assert SESSION not in request.target


def test_platform_errors_leave_the_lockfile_untouched_and_say_why(
    isolated_env: Path, vellum_peer: VellumPeer
) -> None:
    log_in(isolated_env)
    vellum_peer.platform.session_tokens.add(SESSION)
    entry = {"assistantId": "m-1", "cloud": "vellum", "runtimeUrl": vellum_peer.url}
    path = write_lockfile(isolated_env, {"assistants": [entry]})
    before = path.read_bytes(), path.stat().st_mtime_ns

    for failure, words in (
        (text_reply("down", status=503), "platform answered 503"),
        (json_reply({"detail": "no"}, status=401), "Authentication failed"),
    ):
        vellum_peer.platform.assistants_override = failure
        rows = {row["id"]: row for row in ps_json(1, VELLUM_PLATFORM_URL=vellum_peer.url)}

        assert (path.read_bytes(), path.stat().st_mtime_ns) == before
        assert "m-1" in rows
        assert words in rows["platform"]["detail"]


async def test_a_platform_timeout_removes_nothing(
    isolated_env: Path, vellum_peer: VellumPeer
) -> None:
    vellum_peer.platform.session_tokens.add(SESSION)
    vellum_peer.platform.assistants_override = json_reply({"results": []}, delay=2)
    path = write_lockfile(
        isolated_env,
        {"assistants": [{"assistantId": "m-1", "cloud": "vellum", "runtimeUrl": "x"}]},
    )
    before = path.read_bytes()

    async with httpx.AsyncClient() as http:
        sources = FleetSources(Context.load(), http)
        sources.platform = PlatformClient(
            http, vellum_peer.url, PlatformToken(SESSION, path), timeout=0.3
        )
        update, changed = await sources.platform_listing()

    state = update(sources.empty_snapshot())
    assert not changed and path.read_bytes() == before
    assert state.platform_error is not None and "timed out" in state.platform_error


def test_use_sets_the_active_assistant_by_id_or_name(isolated_env: Path) -> None:
    path = write_lockfile(
        isolated_env,
        {
            "assistants": [
                {"assistantId": "a1", "name": "Ada", "cloud": "local", "runtimeUrl": "x"},
                {"assistantId": "b2", "name": "Bob", "cloud": "local", "runtimeUrl": "y"},
            ],
            "activeAssistant": "a1",
        },
    )

    assert roost("use").stdout == "Ada (active)\n"
    result = roost("use", "Bob")

    assert result.returncode == 0, result.stderr
    assert result.stdout == "Bob is now the active assistant\n"
    assert json.loads(path.read_text())["activeAssistant"] == "b2"
    assert roost("use").stdout == "Bob (active)\n"


def test_use_of_an_unknown_name_lists_the_choices(isolated_env: Path) -> None:
    write_lockfile(
        isolated_env,
        {"assistants": [{"assistantId": "a1", "runtimeUrl": "x"}, {"assistantId": "b2"}]},
    )

    result = roost("use", "zed")

    assert result.returncode == 1
    assert result.stderr.startswith("roost: no assistant 'zed' in ")
    assert result.stderr.rstrip().endswith("the choices are: a1, b2")


def test_a_malformed_lockfile_is_an_error_row_and_use_refuses_with_the_same_words(
    isolated_env: Path,
) -> None:
    path = isolated_env / ".vellum.lock.json"
    path.write_text('{"assistants": [\n  {"assistantId": "a1",}\n]}\n')
    before = path.read_bytes(), path.stat().st_mtime_ns

    rows = ps_json(1)
    refused = roost("use", "a1")

    [row] = [r for r in rows if r["kind"] == "lockfile"]
    assert row["status"] == "error (lockfile)"
    assert row["detail"].startswith(f"{path}, line 2, column")
    assert refused.returncode == 1
    assert refused.stderr == f"roost: {row['detail']}\n"
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before


def test_no_platform_token_means_no_platform_request_at_all(
    vellum_peer: VellumPeer,
) -> None:
    assert os.environ["VELLUM_PLATFORM_URL"].startswith("http://127.0.0.1")

    ps_json(VELLUM_PLATFORM_URL=vellum_peer.url)

    assert vellum_peer.requests == ()
