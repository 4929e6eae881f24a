"""Helpers for driving the real app in tests."""

from __future__ import annotations

import dataclasses
import io
import time
from collections.abc import Callable
from typing import Any

from rich.console import Console
from textual.app import App
from textual.pilot import Pilot
from textual.widgets import Static

from services.context import Context
from tui.app import RoostApp, create_app
from widgets.keyed_table import KeyedTable

SIZE = (160, 45)


def make_app(**changes: object) -> RoostApp:
    """The app as `roost` builds it, from the test's environment, with a fixed host name."""
    context = dataclasses.replace(Context.load(), hostname="test-host")
    return create_app(dataclasses.replace(context, **changes))  # type: ignore[arg-type]


async def wait_until(
    pilot: Pilot[Any], condition: Callable[[], bool], what: str, *, within: float = 10
) -> None:
    """Let the app run until `condition` holds; fail after `within` s naming `what`."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.02)


def table_names(app: App[Any]) -> list[str]:
    """The NAME column of the assistants table, as shown (tree and active marks removed); empty
    until the screen is composed."""
    tables = app.screen.query("#assistants").results(KeyedTable)
    return [row.cells[0].plain.lstrip("├└* ") for table in tables for row in table.rows_shown]


def static_text(app: App[Any], selector: str) -> str:
    """What a Static shows, rendered as plain text 100 columns wide."""
    console = Console(width=100, file=io.StringIO(), record=True, color_system=None)
    console.print(app.screen.query_one(selector, Static).content)
    return console.export_text()
