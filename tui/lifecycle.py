"""The console's side of wake, sleep and retire: one action per assistant at a time, from the
request (planning and asking included) until the fleet shows what the action left.

The steps come from `Roost` and run in thread workers (blocking Docker calls); the threads
post what happens (tui/messages.py) and this module, on the event loop, shows it: each step in
the events panel, the row saying what is under way, one notification at the end. A worker that
fails on a bug releases its assistant (tui/workers.py).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from functools import partial
from typing import TYPE_CHECKING

from textual.message import Message

from services.core.errors import RoostError
from services.docker.lifecycle import RetirePlan, Step, summarize
from services.fleet.model import Assistant, AssistantKind, FleetSnapshot
from services.fleet.sources import Update
from services.roost import Action
from tui.messages import (
    LifecycleEnded,
    LifecycleFailed,
    LifecycleStarted,
    LifecycleStepped,
    RetirePlanned,
    SleepPlanned,
)
from tui.screens.confirm import ConfirmScreen, TypedConfirmScreen

if TYPE_CHECKING:
    from tui.app import RoostApp

DOING = {Action.WAKE: "waking", Action.SLEEP: "stopping", Action.RETIRE: "retiring"}
"""What an assistant's row says while a lifecycle action runs on it (`stopping…`)."""


class Lifecycle:
    """Wakes, puts to sleep and retires assistants (one per console)."""

    def __init__(self, app: RoostApp) -> None:
        self._app = app
        self._roost = app.roost
        self._busy: dict[str, Action] = {}
        """assistant key -> the lifecycle action under way on it."""

    def request(self, assistant: Assistant, action: Action) -> None:
        """The one place lifecycle work starts: refused when the assistant does not support
        it or already has an action under way."""
        title = action.capitalize()
        refusal = self._roost.capabilities(assistant).refusal(action)
        if refusal:
            self._app.notify(refusal, title=title, severity="warning")
            return
        doing = self._busy.get(assistant.key)
        if doing is not None:
            self._app.notify(f"already {DOING[doing]} {assistant.name}", title=title)
            return
        self._busy[assistant.key] = action
        roost = self._roost
        if action is Action.WAKE:
            self._steps(assistant, action, lambda: roost.wake(assistant))
        elif action is Action.SLEEP:
            self._work(
                assistant, action, lambda: SleepPlanned(assistant, roost.plan_sleep(assistant))
            )
        else:
            self._work(
                assistant, action, lambda: RetirePlanned(assistant, roost.plan_retire(assistant))
            )

    def _work(self, assistant: Assistant, action: Action, body: Callable[[], Message]) -> None:
        """Run `body` in a thread worker and post the message it makes; a RoostError ends the
        action as failed, in its own words."""

        def run() -> None:
            try:
                message = body()
            except RoostError as error:
                message = LifecycleFailed(assistant, action, str(error))
            self._app.post_message(message)

        self._app.background.run(
            run,
            group="lifecycle",
            name=f"{action} of {assistant.name}",
            thread=True,
            cleanup=lambda problem: self._stopped(assistant, action, problem),
        )

    def _steps(
        self, assistant: Assistant, action: Action, steps: Callable[[], Iterator[Step]]
    ) -> None:
        """Run an action's steps in a thread worker, each posted as it happens."""

        def body() -> Message:
            self._app.post_message(LifecycleStarted(assistant, action))
            done = []
            for step in steps():
                self._app.post_message(LifecycleStepped(assistant, step))
                done.append(step)
            return LifecycleEnded(assistant, action, summarize(done), any(s.failed for s in done))

        self._work(assistant, action, body)

    def confirm_sleep(self, assistant: Assistant, names: tuple[str, ...]) -> None:
        if not names:
            self._app.notify(f"Nothing of {assistant.name} is running.", title="Sleep")
            self._busy.pop(assistant.key, None)
            return
        question = f"Stop {', '.join(names)}? The assistant stops answering until it is woken."
        steps = partial(self._roost.sleep, assistant)
        screen = ConfirmScreen(f"Sleep {assistant.name}", question)
        self._app.push_screen(screen, self._answered(assistant, Action.SLEEP, steps))

    def confirm_retire(self, assistant: Assistant, plan: RetirePlan) -> None:
        if plan.empty:
            self._app.notify(f"Nothing of {assistant.name} is left to remove.", title="Retire")
            self._busy.pop(assistant.key, None)
            return
        screen = retire_question(assistant.name, assistant.id, plan)
        steps = partial(self._roost.retire, plan)
        self._app.push_screen(screen, self._answered(assistant, Action.RETIRE, steps))

    def _answered(
        self, assistant: Assistant, action: Action, steps: Callable[[], Iterator[Step]]
    ) -> Callable[[bool | None], None]:
        """What a confirmation's answer does: yes runs the steps, no releases the assistant."""

        def answered(yes: bool | None) -> None:
            if yes:
                self._steps(assistant, action, steps)
            else:
                self._busy.pop(assistant.key, None)

        return answered

    def started(self, assistant: Assistant, action: Action) -> None:
        """The row says what is under way until the fleet shows what the action left."""
        doing = f"{DOING[action]}…"
        self._app.events.add(f"{assistant.name}: {doing}")
        self._app.apply_update(
            lambda s: dataclasses.replace(s, actions={**s.actions, assistant.key: doing})
        )

    def failed(self, assistant: Assistant, action: Action, error: str) -> None:
        """A failure before any step (no engine, unreadable): in the events panel too."""
        self._app.events.add(f"{assistant.name}: {action} failed: {error}")
        self.ended(assistant, action, error, True)

    def _stopped(self, assistant: Assistant, action: Action, problem: str) -> None:
        """The worker stopped on a bug (already notified): in the events panel, and the
        assistant released."""
        self._app.events.add(f"{assistant.name}: {action} failed: {problem}")
        self._settle(assistant)

    def ended(self, assistant: Assistant, action: Action, text: str, failed: bool) -> None:
        title = f"{action.capitalize()} {assistant.name}"
        self._app.notify(text, title=title, severity="error" if failed else "information")
        self._settle(assistant)

    def _settle(self, assistant: Assistant) -> None:
        self._app.background.run(self._settled(assistant), group="lifecycle", name="lifecycle")

    async def _settled(self, assistant: Assistant) -> None:
        """Show the assistant as the action left it, in the same update that drops what its row
        said was under way, then accept the next action on it."""
        key = assistant.key
        update: Update | None = None

        def settled(snapshot: FleetSnapshot) -> FleetSnapshot:
            if update is not None:
                snapshot = update(snapshot)
            actions = {k: v for k, v in snapshot.actions.items() if k != key}
            return dataclasses.replace(snapshot, actions=actions)

        sources = self._roost.sources
        try:
            local = assistant.kind is AssistantKind.LOCAL
            update = await (sources.registry() if local else sources.engines())
        finally:
            self._app.apply_update(settled)
            self._busy.pop(key, None)
        self._app.fleet_refresh.follow_fleet()


def retire_question(name: str, assistant_id: str, plan: RetirePlan) -> TypedConfirmScreen:
    """The question before a retire: everything `plan` removes, confirmed by typing the id."""
    lines = ["This removes, for good:", *plan.describe()]
    return TypedConfirmScreen(f"Retire {name}", lines, assistant_id)
