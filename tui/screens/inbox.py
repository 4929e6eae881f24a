"""The needs-you inbox: everything the fleet waits for from a human, oldest first, the selected
item in full, and the keys that answer it without attaching.

The app's activity part (tui/activity.py) sets `items` whenever the inbox changes and sends the
answers this screen asks for (`AnswerRequested`); an item leaves when its runtime says it is
resolved, whoever answered it. Everything drawn from a request goes through `printable`.
"""

from __future__ import annotations

import difflib
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from rich.console import Group, RenderableType
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.reactive import var
from textual.screen import Screen
from textual.widgets import Header, Static

from services.activity.model import (
    Allow,
    Answer,
    Confirmation,
    Decision,
    Diff,
    Interaction,
    InteractionKind,
    Questions,
    Reply,
    SecretRequest,
)
from services.core.safe_text import printable
from services.health.status import Bucket
from tui.formats import format_age
from tui.present import bucket_styles
from tui.screens.answer import AnswerDialog, QuestionsForm, SecretPrompt, TrustPicker
from tui.screens.confirm import ConfirmScreen
from widgets.footer import PinnedFooter
from widgets.keyed_table import Column, KeyedTable, Row

INBOX_COLUMNS = (
    Column("ASSISTANT", "assistant", max_width=24),
    Column("KIND", "kind", max_width=12, priority=3),
    Column("WAITING", "age", priority=4),
    Column("ASKS", "asks", max_width=60),
    Column("CONVERSATION", "conversation", max_width=20, priority=1),
)
EMPTY = "Nothing waits for you: no assistant has a confirmation, question or secret pending."
MAX_LINES = 2000
"""A tool's input or a diff is shown up to this many lines (and says how many more there are):
a request is capped at 4 MiB, but a screen of it is what an operator reads."""


def high_risk(item: Interaction) -> bool:
    """Whether an answer to `item` is confirmed first (known from the pending list too)."""
    request = item.request
    if isinstance(request, Confirmation):
        return request.high_risk
    return Confirmation(item.tool, "", item.risk).high_risk


def inbox_row(item: Interaction, now: datetime, styles: dict[Bucket, str]) -> Row:
    return Row(
        item.id,
        (
            Text(printable(item.assistant), style="bold"),
            Text(str(item.kind)),
            Text(format_age(item.since, now), justify="right"),
            Text(printable(item.summary), style=styles[Bucket.BAD] if high_risk(item) else ""),
            Text(printable(item.conversation), style="dim"),
        ),
    )


def _lines(text: str) -> tuple[list[str], int]:
    """The first MAX_LINES lines of `text`, each made printable (tabs set out as a terminal
    would, not escaped: a diff of a Makefile reads as one), and how many were left out."""
    lines = text.splitlines()
    shown = [printable(line.expandtabs(8)) for line in lines[:MAX_LINES]]
    return shown, max(0, len(lines) - MAX_LINES)


def _more(left_out: int) -> Text:
    return Text(f"… {left_out} more lines", style="dim italic")


def diff_text(diff: Diff, styles: dict[Bucket, str]) -> Text:
    """A unified diff of the change, `+` lines in the good colour and `-` in the bad (the
    marks say it without colour)."""
    old, _ = _lines(diff.old)
    new, _ = _lines(diff.new)
    path = printable(diff.file_path)
    before = "/dev/null" if diff.is_new_file else f"a/{path}"
    unified = difflib.unified_diff(old, new, before, f"b/{path}", lineterm="")
    text = Text()
    for line in itertools.islice(unified, MAX_LINES):
        if line.startswith(("+++", "---")):
            style = "bold"
        elif line.startswith("@@"):
            style = "dim"
        elif line.startswith("+"):
            style = styles[Bucket.GOOD]
        elif line.startswith("-"):
            style = styles[Bucket.BAD]
        else:
            style = ""
        text.append(line + "\n", style=style)
    if not text:
        text.append("(no change)", style="dim")
    text.rstrip()
    return text


def _facts(rows: list[tuple[str, str | Text]]) -> Table:
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="dim", no_wrap=True)
    grid.add_column(overflow="fold")
    for label, value in rows:
        grid.add_row(label, value if isinstance(value, Text) else Text(printable(value)))
    return grid


def interaction_detail(item: Interaction, styles: dict[Bucket, str]) -> Group:
    """Everything the item asks, as an operator decides on it (its age is in the list: this
    is drawn again only when another item is selected or the item changes)."""
    facts: list[tuple[str, str | Text]] = [
        ("assistant", item.assistant),
        ("conversation", item.conversation or "—"),
        ("kind", str(item.kind)),
        ("since", item.since.astimezone().strftime("%Y-%m-%d %H:%M:%S")),
        ("id", f"{item.id} (for roost answer)"),
    ]
    if item.pane is not None:
        where = f"{item.pane.agent} in tmux pane {item.pane.pane}"
        facts.append(("answered", f"by typing into {where}, once its prompt is seen still there"))
    parts: list[RenderableType] = [Text(printable(item.summary), style="bold"), Text()]
    request = item.request
    if isinstance(request, Confirmation):
        facts.extend(_confirmation_facts(request, styles))
        parts.append(_facts(facts))
        parts.extend(_confirmation_body(request, styles))
    elif isinstance(request, Questions):
        parts.append(_facts(facts))
        parts.extend(_questions_body(request))
    elif isinstance(request, SecretRequest):
        facts.extend(
            [("service", request.service), ("field", request.field), ("label", request.label)]
        )
        parts.append(_facts(facts))
    else:
        parts.append(_facts(facts))
        parts.append(Text("\nIts details are not known yet: roost is asking its runtime.", "dim"))
    return Group(*parts)


def _confirmation_facts(
    request: Confirmation, styles: dict[Bucket, str]
) -> list[tuple[str, str | Text]]:
    risk = Text(printable(request.risk or "not said"))
    if request.high_risk:
        risk.stylize(f"bold {styles[Bucket.BAD]}")
    facts: list[tuple[str, str | Text]] = [("tool", request.tool), ("risk", risk)]
    if request.risk_reason:
        facts.append(("why", request.risk_reason))
    facts.append(("runs on", request.execution_target or "not said"))
    if request.patterns and request.scopes and request.persistent_decisions_allowed:
        offered = ", ".join(printable(p.label or p.value) for p in request.patterns)
        facts.append(("always allow", f"{offered} (A)"))
    return facts


def _confirmation_body(request: Confirmation, styles: dict[Bucket, str]) -> list[RenderableType]:
    body: list[RenderableType] = []
    if request.diff is not None:
        body += [Text("\ndiff", style="bold"), diff_text(request.diff, styles)]
    if not request.input_json:
        return [*body, Text("\ninput not said (known from a notification or the screen)", "dim")]
    lines, left_out = _lines(request.input_json)
    body += [
        Text("\ninput", style="bold"),
        Syntax("\n".join(lines), "json", theme="ansi_dark", word_wrap=True, background_color=""),
    ]
    if left_out:
        body.append(_more(left_out))
    return body


def _questions_body(request: Questions) -> list[RenderableType]:
    body: list[RenderableType] = []
    for index, question in enumerate(request.questions):
        text = Text(f"\n{index + 1}. {printable(question.question)}", style="bold")
        if question.description:
            text.append(f"\n   {printable(question.description)}", style="dim")
        for option in question.options:
            text.append(f"\n   ○ {printable(option.label)}")
            if option.description:
                text.append(f"  {printable(option.description)}", style="dim")
        text.append("\n   … or free text", style="dim italic")
        body.append(text)
    return body


class InboxScreen(Screen[None]):
    """The inbox, oldest first; the app sets `items` and answers what is asked here."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="inbox_back", tooltip="Back to the fleet"),
        Binding("a", "allow", "Allow", id="inbox_allow", tooltip="Allow the selected tool use"),
        Binding("d", "deny", "Deny", id="inbox_deny", tooltip="Deny the selected tool use"),
        Binding(
            "A",
            "always_allow",
            "Always allow",
            id="inbox_always_allow",
            tooltip="Allow it, and from now on what matches a pattern in a scope you pick",
        ),
        Binding(
            "enter",
            "answer",
            "Answer",
            id="inbox_answer",
            tooltip="Answer the selected questions or secret in a form",
        ),
        Binding(
            "c",
            "close_questions",
            "Close",
            id="inbox_close",
            tooltip="Dismiss the selected question batch without answering",
        ),
        Binding(
            "tab",
            "app.focus_next",
            "Next panel",
            id="inbox_next_panel",
            show=False,
            tooltip="Move between the list and the selected item's detail",
        ),
    ]

    items: var[tuple[Interaction, ...]] = var((), init=False, always_update=True)

    @dataclass
    class AnswerRequested(Message):
        """The user answered an item (confirmed first when its risk is high)."""

        interaction: Interaction
        answer: Answer

    def __init__(self, clock: Callable[[], datetime], items: tuple[Interaction, ...]) -> None:
        super().__init__()
        self.clock = clock
        self._initial = items
        self._composed = False
        """The app may set `items` before the widgets exist: they show them once mounted."""
        self._shown: Interaction | None = None
        """The item the detail panel shows."""

    def compose(self) -> ComposeResult:
        yield Header(icon="")
        with Vertical(id="inbox-panel", classes="panel") as panel:
            panel.border_title = "Inbox"
            yield KeyedTable(INBOX_COLUMNS, id="inbox")
            yield Static(Text(EMPTY), id="inbox-empty")
        with VerticalScroll(id="inbox-detail-panel", classes="panel") as detail:
            detail.border_title = "What it asks"
            yield Static(id="inbox-detail")
        yield PinnedFooter(("back", "help"))

    def on_mount(self) -> None:
        self._composed = True
        self.items = self._initial
        self.table.focus()

    @property
    def table(self) -> KeyedTable:
        return self.query_exactly_one("#inbox", KeyedTable)

    def watch_items(self, items: tuple[Interaction, ...]) -> None:
        if not self._composed:
            self._initial = items
            return
        self.tick()
        self.query_exactly_one("#inbox-empty").display = not items
        self.query_exactly_one("#inbox-panel").border_subtitle = f"{len(items)} waiting"
        ids = {item.id for item in items}
        dialog = self.app.screen
        if isinstance(dialog, AnswerDialog) and dialog.interaction.id not in ids:
            dialog.dismiss(None)
            self.notify("That item was answered elsewhere.", title="Inbox", timeout=4)

    def tick(self) -> None:
        """Show the items again at the clock's time (their ages move on)."""
        if not self._composed:
            return
        now, styles = self.clock(), bucket_styles(self.app.current_theme)
        self.table.show_rows([inbox_row(item, now, styles) for item in self.items])
        self._show_selected()

    def selected(self) -> Interaction | None:
        key = self.table.selected_key
        return next((item for item in self.items if item.id == key), None)

    def on_keyed_table_row_highlighted(self) -> None:
        self._show_selected()

    def _show_selected(self) -> None:
        item = self.selected()
        if item is self._shown:
            return
        self._shown = item
        detail = self.query_exactly_one("#inbox-detail", Static)
        if item is None:
            detail.update(Text(""))
        else:
            detail.update(interaction_detail(item, bucket_styles(self.app.current_theme)))

    # -- answering -------------------------------------------------------------------------

    def action_back(self) -> None:
        self.dismiss()

    def _confirmation(self, keys: str) -> tuple[Interaction, Confirmation] | None:
        """The selected item when it is a confirmation whose details are known; else None,
        having said why."""
        item = self.selected()
        if item is None:
            return None
        request = item.request
        if item.kind is not InteractionKind.CONFIRMATION:
            self.notify(f"{keys} answer a tool's confirmation: enter answers this one.")
        elif not isinstance(request, Confirmation):
            self.notify("Its details are not known yet: a moment.", title="Inbox")
        else:
            return item, request
        return None

    def action_allow(self) -> None:
        if found := self._confirmation("a, d and A"):
            self._send(*found, Allow(Decision.ALLOW))

    def action_deny(self) -> None:
        if found := self._confirmation("a, d and A"):
            self._send(*found, Allow(Decision.DENY))

    def action_always_allow(self) -> None:
        found = self._confirmation("a, d and A")
        if found is None:
            return
        item, request = found
        if not (request.patterns and request.scopes and request.persistent_decisions_allowed):
            self.notify("This request offers no rule to always allow it.", title="Inbox")
            return

        def picked(choice: tuple[str, str] | None) -> None:
            if choice is not None:
                pattern, scope = choice
                self._send(item, request, Allow(Decision.ALLOW, pattern, scope))

        self.app.push_screen(TrustPicker(item, request), picked)

    def _send(self, item: Interaction, request: Confirmation, answer: Allow) -> None:
        """Send an answer to a confirmation, asking first when the risk is high: a request the
        runtime rates high gets a second look whichever way it is answered (a denial can stop
        an agent's work as surely as an allow can let a tool loose)."""
        if not request.high_risk:
            self.post_message(self.AnswerRequested(item, answer))
            return
        rule = f" from now on ({answer.pattern}, {answer.scope})" if answer.pattern else ""
        reason = f": {request.risk_reason}" if request.risk_reason else ""
        where = f" It runs on the {request.execution_target}." if request.execution_target else ""
        question = printable(
            f"{item.assistant} asks to run {request.tool}, rated {request.risk} risk{reason}."
            f"{where}\n\n{answer.decision.value.capitalize()} it{rule}?",
            keep_newlines=True,
        )

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.post_message(self.AnswerRequested(item, answer))

        self.app.push_screen(ConfirmScreen("High risk", question), confirmed)

    def action_answer(self) -> None:
        item = self.selected()
        if item is None:
            return
        request = item.request
        dialog: AnswerDialog[Any]
        if isinstance(request, Questions):
            dialog = QuestionsForm(item, request)
        elif isinstance(request, SecretRequest):
            dialog = SecretPrompt(item, request)
        elif item.kind is InteractionKind.CONFIRMATION:
            self.notify("a allows it, d denies it, A allows it always.", title="Inbox")
            return
        else:
            self.notify("Its details are not known yet: a moment.", title="Inbox")
            return

        def answered(answer: Answer | None) -> None:
            if answer is not None:
                self.post_message(self.AnswerRequested(item, answer))

        self.app.push_screen(dialog, answered)

    def action_close_questions(self) -> None:
        item = self.selected()
        if item is not None and item.kind is InteractionKind.QUESTION:
            self.post_message(self.AnswerRequested(item, Reply(close=True)))
        elif item is not None:
            self.notify("c closes a question batch.", title="Inbox")
