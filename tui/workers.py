"""The console's background work, and the one place a worker's unexpected failure is handled.

Every roost worker runs with `exit_on_error=False`: an error it expects (a RoostError) it
handles itself, in its own words. Anything else it raises is a bug, handled here when the
worker's state changes to ERROR: the traceback goes to the log, the user gets one line naming
the log, and what the worker was doing is put right by the cleanup it was started with (its
job marked failed, its assistant released), so nothing stays "running" for ever.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from textual.app import App
from textual.worker import Worker, WorkerState

log = logging.getLogger(__name__)

Cleanup = Callable[[str], None]
"""Puts right what a failed worker leaves behind, given the problem as the user reads it."""


class Workers:
    """Starts the console's workers and handles their failures (`state_changed`)."""

    def __init__(self, app: App[Any], log_file: Path) -> None:
        self._app = app
        self._log_file = log_file
        self._cleanups: dict[Worker[Any], Cleanup] = {}

    def run(
        self,
        work: Callable[[], Any] | Awaitable[Any],
        *,
        group: str,
        name: str = "",
        thread: bool = False,
        exclusive: bool = False,
        cleanup: Cleanup | None = None,
    ) -> Worker[Any]:
        """Start `work` in `group`; `cleanup` runs if it fails on an unexpected error."""
        worker = self._app.run_worker(
            work, name=name, group=group, thread=thread, exclusive=exclusive, exit_on_error=False
        )
        if cleanup is not None:
            self._cleanups[worker] = cleanup
        return worker

    @property
    def problem(self) -> str:
        """What the user reads about a bug: where its details are."""
        return f"internal error; details are in {self._log_file}"

    def state_changed(self, event: Worker.StateChanged) -> None:
        """A worker that keeps roost running when it fails (`exit_on_error=False`) handles the
        errors it expects; anything else it raised is a bug: logged with its traceback, one
        line for the user, and its cleanup run."""
        worker = event.worker
        if not worker.is_finished:
            return
        cleanup = self._cleanups.pop(worker, None)
        if event.state is not WorkerState.ERROR or worker.exit_on_error:
            return
        name = worker.name or worker.group
        log.error("internal error in %s", name, exc_info=worker.error)
        self._app.notify(
            f"{name} stopped on an {self.problem}",
            title="Internal error",
            severity="error",
            timeout=30,
        )
        if cleanup is not None:
            cleanup(self.problem)
