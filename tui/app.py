"""The roost App and its factory, the one way to build the app (the command and the tests)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from typing import ClassVar

from rich.text import Text
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from services.config import ConfigError
from services.context import Context
from services.fleet import this_machine
from tui.commands import binding_ids, commands
from tui.screens.help import HelpScreen
from tui.screens.main import MainScreen

log = logging.getLogger(__name__)


class RoostApp(App[None]):
    CSS_PATH = "roost.tcss"
    TITLE = "roost"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit", id="quit", tooltip="Leave roost"),
        Binding(
            "ctrl+q",
            "quit",
            "Quit from anywhere",
            id="quit_now",
            show=False,
            priority=True,
            tooltip="Leave roost, even from a text field",
        ),
        Binding("question_mark", "help", "Help", id="help", tooltip="Show every key"),
        Binding(
            "ctrl+p",
            "command_palette",
            "Commands",
            id="command_palette",
            show=False,
            priority=True,
            tooltip="Search every command",
        ),
    ]

    def __init__(self, context: Context) -> None:
        super().__init__()
        self.context = context
        self._refresh_requested = asyncio.Event()
        self.set_keymap(dict(context.config.keys))

    def get_default_screen(self) -> Screen[None]:
        self.main_screen = MainScreen(self.context)
        return self.main_screen

    def on_mount(self) -> None:
        self.sub_title = self.context.hostname
        self.run_worker(
            self._watch_this_machine(),
            name="this machine",
            group="sources",
            exclusive=True,
            exit_on_error=False,
        )

    async def _watch_this_machine(self) -> None:
        """Re-arming poller: one listing, then wait for the interval or a refresh request."""
        tmux, hostname = self.context.tmux, self.context.hostname
        version = await asyncio.to_thread(tmux.version)
        previous_state = None
        while True:
            self._refresh_requested.clear()
            listing = await asyncio.to_thread(tmux.list_sessions)
            if listing.state != previous_state:
                log.info("%s: %s %s", tmux.describe(), listing.state.value, listing.detail)
                previous_state = listing.state
            self.main_screen.fleet = (this_machine(hostname, tmux, listing, version),)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._refresh_requested.wait(), self.context.config.tmux_refresh_seconds
                )

    def on_main_screen_refresh_requested(self) -> None:
        self._refresh_requested.set()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state is WorkerState.ERROR:
            error = event.worker.error
            log.error("worker %r failed", event.worker.name, exc_info=error)
            self.notify(
                f"{event.worker.name}: {error}",
                title="Stopped watching",
                severity="error",
                timeout=30,
            )

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            return
        self.push_screen(HelpScreen(commands(self, self.screen)))

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        """The palette lists every roost command of the current screen, then Textual's own."""
        for command in commands(self, screen):
            if command.action == "command_palette" or not command.enabled:
                continue

            async def run(action: str = command.action, node: object = command.node) -> None:
                await self.run_action(action, node)  # type: ignore[arg-type]

            keys = ", ".join(command.keys)
            yield SystemCommand(command.description, f"{command.tooltip} [{keys}]", run)
        yield from super().get_system_commands(screen)

    def _handle_exception(self, error: Exception) -> None:
        # Textual would print the traceback on the terminal; roost keeps it in its log file.
        log.error("unhandled error in the TUI", exc_info=error)
        super()._handle_exception(error)

    def _fatal_error(self) -> None:
        self.bell()
        self.panic(
            Text(
                f"roost stopped on an internal error; details are in {self.context.paths.log_file}"
            )
        )


KNOWN_BINDING_IDS = frozenset(
    binding_ids(RoostApp.BINDINGS, MainScreen.BINDINGS, HelpScreen.BINDINGS)  # type: ignore[arg-type]
)


def create_app(context: Context) -> RoostApp:
    """Build the app for `context`; raises ConfigError for a [keys] entry naming no binding."""
    for binding_id in context.config.keys:
        if binding_id not in KNOWN_BINDING_IDS:
            known = ", ".join(sorted(KNOWN_BINDING_IDS))
            raise ConfigError(
                context.paths.config_file,
                f"keys.{binding_id}",
                f"no key has this id (known: {known})",
            )
    return RoostApp(context)
