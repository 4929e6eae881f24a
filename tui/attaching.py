"""The console's side of attach: from a request (a row, `t`, `roost attach`) to a pane.

Where the assistant's terminal lives, its tmux sessions and the backend that carries a pane's
bytes come from `Roost`; this module asks which session when there is a choice, and opens the
pane on the panes screen.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from services.core.errors import RoostError
from services.core.mode import Mode
from services.fleet.model import Assistant
from services.roost import AttachRequest
from services.terminal.attach import Attachment, HostPlace, Place
from services.terminal.backend import TerminalSize
from services.terminal.recording import Recorder
from services.terminal.tmux import TmuxState
from tui.screens.pick import NEW_SHELL, SessionPicker
from tui.terminal_pane import TerminalPane

if TYPE_CHECKING:
    from tui.app import RoostApp


class Attaching:
    """Opens panes on assistants' sessions (one per console)."""

    def __init__(self, app: RoostApp) -> None:
        self._app = app
        self._roost = app.roost
        self._config = app.context.config

    async def open(self, request: AttachRequest) -> None:
        """Open a pane on the requested session; without one, on a session the user picks
        among the assistant's tmux sessions, or a new shell. Problems are notified, never
        raised."""
        assistant, session, mode = request.assistant, request.session, request.mode
        title = f"Attach to {assistant.name}"
        try:
            place = await self._roost.place(assistant)
            here = isinstance(place, HostPlace)
            asks = request.choose or mode is Mode.WATCH or not here
            if session is None and asks and not request.shell:
                session = await self._pick_session(assistant, place, mode)
                if session is None:
                    return
        except RoostError as error:
            self._app.notify(str(error), title=title, severity="warning")
            return
        if session:
            attachment = Attachment(assistant.name, place, session)
        else:
            attachment = self._roost.new_shell(assistant, place)
        if attachment.session is None:
            mode = Mode.DRIVE  # a new shell is the operator's own
        elif mode is None:
            mode = self._config.local_mode if here else self._config.remote_mode
        await self.open_pane(attachment, mode)

    async def _pick_session(
        self, assistant: Assistant, place: Place, mode: Mode | None
    ) -> str | None:
        """A tmux session of `assistant` (NEW_SHELL for a new shell, None: nothing to open).
        The only session is taken without asking when there is nothing else to choose."""
        self._app.notify(f"Looking for {assistant.name}'s tmux sessions…", timeout=2)
        listing = await self._roost.sessions(place)
        names = [session.name for session in listing.sessions]
        watching = mode is Mode.WATCH
        if listing.state is TmuxState.ERROR and not watching:
            self._app.notify(f"{listing.detail}; opening a shell", title=assistant.name)
        if not names:
            if watching:
                raise RoostError(
                    f"nothing to watch: {assistant.name} has no tmux session "
                    f"({listing.detail or 'none running'})"
                )
            return NEW_SHELL
        if watching and len(names) == 1:
            return names[0]
        picker = SessionPicker(f"{assistant.name}: attach to", names, new_shell=not watching)
        return await self._app.push_screen_wait(picker)

    async def open_pane(self, attachment: Attachment, mode: Mode) -> None:
        """Show the panes screen with a new pane on `attachment`, current and typing."""
        pane = TerminalPane(
            attachment,
            self._roost.open,
            mode=mode,
            scrollback=self._config.terminal_scrollback,
            record=self._recorder if self._config.recordings_mb else None,
            history=self._roost.attacher.history,
        )
        app, panes = self._app, self._app.panes_screen
        if app.screen is not panes:
            await app.push_screen(panes)
        await panes.add(pane)

    def _recorder(self, attachment: Attachment, size: TerminalSize) -> Recorder:
        return Recorder(
            self._app.context.paths.recordings_dir,
            name=attachment.title,
            size=size,
            title=attachment.title,
            limit_bytes=self._config.recordings_mb << 20,
        )
