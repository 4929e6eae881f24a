"""The main screen with a Vellum lockfile and the loopback peer: rows, active mark, `u`,
sorting, field filters, masked details, and no platform traffic without a token."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import RichLog

from services.core.config import Config
from tests.peers.vellum import VellumPeer, json_reply
from tests.pilot import SIZE, make_app, static_text, table_names, wait_until
from tui.app import RoostApp
from widgets.keyed_table import KeyedTable

SECRET = "do-not-show-this-token"


@pytest.fixture(autouse=True)
def no_docker(monkeypatch: pytest.MonkeyPatch) -> None:
    """An engine that is down, named explicitly: the same rows whether Docker runs here or not."""
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")


def write_lockfile(home: Path, **data: Any) -> Path:
    path = home / ".vellum.lock.json"
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


def fleet_file(home: Path, peer: VellumPeer) -> Path:
    zed = peer.runtime("zed", health=json_reply({"status": "healthy", "version": "9.9"}))
    return write_lockfile(
        home,
        assistants=[
            {
                "assistantId": "zed",
                "cloud": "local",
                "runtimeUrl": zed.base_url,
                "bearerToken": SECRET,
                "resources": {"daemonPort": 7821},
            },
            {"assistantId": "amy", "cloud": "docker", "runtimeUrl": "http://127.0.0.1:9"},
            {"assistantId": "kit", "cloud": "gcp", "runtimeUrl": "http://127.0.0.1:9"},
        ],
        activeAssistant="kit",
    )


def table(app: RoostApp) -> KeyedTable:
    return app.screen.query_one("#assistants", KeyedTable)


def cell(app: RoostApp, name: str, column: str) -> str:
    """The cell of row `name` in the column whose key is `column`."""
    index = [c.key for c in table(app).columns].index(column)
    for row in table(app).rows_shown:
        if row.cells[0].plain.lstrip("* ") == name:
            return row.cells[index].plain
    raise AssertionError(f"no row {name!r}")


async def probed(pilot: Pilot[None], app: RoostApp) -> None:
    """Until the lockfile's rows are listed and zed (healthy) and amy (no answer) probed."""
    await wait_until(pilot, lambda: "zed" in table_names(app), "the lockfile rows")
    await wait_until(pilot, lambda: cell(app, "zed", "health") == "● healthy", "zed's health")
    await wait_until(pilot, lambda: cell(app, "amy", "health") != "", "amy's probe")


async def test_lockfile_assistants_are_listed_probed_and_the_active_one_marked(
    isolated_env: Path, vellum_peer: VellumPeer
) -> None:
    fleet_file(isolated_env, vellum_peer)
    app = make_app()

    async with app.run_test(size=SIZE) as pilot:
        await probed(pilot, app)

        assert table_names(app)[1:] == ["zed", "amy", "kit", "engine default"]
        assert cell(app, "kit", "name") == "* kit"
        assert cell(app, "zed", "version") == "9.9"
        # Its engine cannot be asked and its runtime does not answer.
        assert (cell(app, "amy", "status"), cell(app, "amy", "health")) == (
            "✖ unreachable",
            "✖ unreachable",
        )
        assert cell(app, "engine default", "status") == "✖ unreachable"
        # Not logged in: the platform is never asked anything; zed's runtime is probed and
        # its activity followed, with its bearer.
        paths = {r.path for r in vellum_peer.requests}
        assert "/rt/zed/v1/health" in paths
        assert paths <= {
            f"/rt/zed/v1/{path}" for path in ("health", "events", "pending-interactions")
        }
        assert {r.headers["authorization"] for r in vellum_peer.requests} == {f"Bearer {SECRET}"}


async def test_u_makes_the_selected_assistant_active_in_the_lockfile(
    isolated_env: Path, vellum_peer: VellumPeer
) -> None:
    path = fleet_file(isolated_env, vellum_peer)
    app = make_app()

    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: "zed" in table_names(app), "the lockfile rows")
        table(app).move_cursor(table_names(app).index("zed"))
        await pilot.press("u")

        await wait_until(pilot, lambda: cell(app, "zed", "name") == "* zed", "the new mark")
        assert json.loads(path.read_text())["activeAssistant"] == "zed"
        assert cell(app, "kit", "name") == "  kit"

        table(app).move_cursor(0)  # this machine: not in the lockfile
        await pilot.press("u")
        await pilot.pause()
        assert json.loads(path.read_text())["activeAssistant"] == "zed"


async def test_sorting_by_key_and_by_header_click(
    isolated_env: Path, vellum_peer: VellumPeer
) -> None:
    fleet_file(isolated_env, vellum_peer)
    app = make_app()

    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: "zed" in table_names(app), "the lockfile rows")

        await pilot.press("s")  # first sortable column: name
        assert table_names(app) == ["this machine", "amy", "engine default", "kit", "zed"]
        assert "sorted by name" in str(app.screen.query_one("#assistants-panel").border_subtitle)
        await pilot.press("S")
        assert table_names(app) == ["this machine", "zed", "kit", "engine default", "amy"]

        await pilot.click("#assistants", offset=(1, 0))  # the NAME header: reverse again
        assert table_names(app) == ["this machine", "amy", "engine default", "kit", "zed"]


async def test_field_filters_narrow_by_kind_and_status(
    isolated_env: Path, vellum_peer: VellumPeer
) -> None:
    fleet_file(isolated_env, vellum_peer)
    app = make_app()

    async with app.run_test(size=SIZE) as pilot:
        await probed(pilot, app)

        await pilot.press("slash", *"kind", "colon", *"docker")
        assert table_names(app) == ["amy", "engine default"]  # kinds docker, docker engine
        await pilot.press("escape", "slash", *"kind", "colon", *"docker", "space", *"status")
        await pilot.press("colon", *"unreachable")
        assert table_names(app) == ["amy", "engine default"]  # no engine, and no answer
        await pilot.press("escape", "slash", *"health", "colon", *"healthy")
        assert table_names(app) == ["zed"]


async def test_details_show_every_field_with_secrets_masked(
    isolated_env: Path, vellum_peer: VellumPeer
) -> None:
    fleet_file(isolated_env, vellum_peer)
    app = make_app()

    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: "zed" in table_names(app), "the lockfile rows")
        table(app).move_cursor(table_names(app).index("zed"))
        await pilot.pause()

        detail = static_text(app, "#detail")
        assert "bearerToken" in detail and "••••••••" in detail
        assert "resources.daemonPort" in detail and "7821" in detail
        assert SECRET not in detail


async def test_a_malformed_lockfile_is_an_error_row_and_is_not_rewritten(
    isolated_env: Path,
) -> None:
    path = isolated_env / ".vellum.lock.json"
    path.write_text('{"assistants": [}\n')
    before = path.read_bytes(), path.stat().st_mtime_ns
    app = make_app(config=Config(tmux_refresh_seconds=3600))

    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: "lockfile" in table_names(app), "the error row")
        assert cell(app, "lockfile", "status") == "✖ error (lockfile)"
        table(app).move_cursor(1)
        await pilot.press("u")
        await pilot.pause()

    assert (path.read_bytes(), path.stat().st_mtime_ns) == before


async def test_status_changes_are_listed_in_the_events_panel_kept_and_r_reprobes(
    isolated_env: Path, vellum_peer: VellumPeer
) -> None:
    fleet_file(isolated_env, vellum_peer)
    zed = vellum_peer.runtimes["zed"]
    app = make_app()

    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: cell(app, "zed", "health") == "● healthy", "zed's health")
        zed.health = json_reply({"status": "degraded", "message": "db slow"})
        table(app).move_cursor(table_names(app).index("zed"))
        await pilot.press("r")  # re-probe now, not in ten seconds

        await wait_until(pilot, lambda: cell(app, "zed", "health") == "▲ degraded", "the re-probe")
        await pilot.press("e")
        events = app.screen.query_one("#events", RichLog)
        assert events.display
        assert any("zed: healthy → degraded" in line.text for line in events.lines)
        detail = static_text(app, "#detail")
        assert "last 2" in detail and "db slow" in detail

    again = make_app()  # the events of the last run are shown at start
    async with again.run_test(size=SIZE) as pilot:
        await pilot.press("e")
        events = again.screen.query_one("#events", RichLog)
        await wait_until(
            pilot,
            lambda: any("zed: healthy → degraded" in line.text for line in events.lines),
            "the last run's events",
        )
