"""The dialogs that answer one inbox item: always allow (a trust rule), a question batch, a
secret. Each returns its answer to the inbox screen, which sends it; none sends anything itself.

A dialog whose item leaves the inbox while it is open (answered elsewhere, resolved) is closed
by the inbox screen (`AnswerDialog.interaction` says which item it answers).
"""

from __future__ import annotations

from typing import ClassVar, Generic, TypeVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, RadioButton, RadioSet, Static
from textual.widgets.option_list import Option

from services.activity.model import (
    Confirmation,
    Interaction,
    OptionAnswer,
    Questions,
    Reply,
    Secret,
    SecretRequest,
    SkipAnswer,
    TextAnswer,
)
from services.core.safe_text import printable

Result = TypeVar("Result")


class AnswerDialog(ModalScreen[Result | None], Generic[Result]):
    """A dialog answering `interaction`; None means cancelled."""

    def __init__(self, interaction: Interaction) -> None:
        super().__init__()
        self.interaction = interaction

    def action_cancel(self) -> None:
        self.dismiss(None)


class TrustPicker(AnswerDialog[tuple[str, str]]):
    """ "Always allow": one of the request's patterns in one of its scopes (every pair offered,
    as the runtime accepts only its own options); enter picks, esc cancels."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="trust_cancel"),
    ]

    def __init__(self, interaction: Interaction, request: Confirmation) -> None:
        super().__init__(interaction)
        self.request = request

    def compose(self) -> ComposeResult:
        options = [
            Option(
                Text.assemble(
                    (printable(pattern.label or pattern.value), "bold"),
                    "  in  ",
                    printable(scope.label or scope.value),
                ),
                id=f"{index}/{scope_index}",
            )
            for index, pattern in enumerate(self.request.patterns)
            for scope_index, scope in enumerate(self.request.scopes)
        ]
        with Vertical(classes="dialog") as dialog:
            dialog.border_title = f"Always allow {printable(self.request.tool)}"
            yield Static(Text("Allow this now, and from now on whatever matches:"))
            yield OptionList(*options, id="trust-options")
            yield Static(Text("enter: allow always    esc: cancel", style="dim"))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        pattern, scope = (int(part) for part in (event.option.id or "0/0").split("/"))
        chosen = self.request.patterns[pattern].value, self.request.scopes[scope].value
        self.dismiss(chosen)


NO_OPTION = "skip"
"""The radio button id of "no option" (a question left unanswered is skipped)."""


class QuestionsForm(AnswerDialog[Reply]):
    """Each question of a batch with its options and a free-text field: text wins over an
    option, and a question with neither is skipped. ctrl+s sends the whole batch."""

    AUTO_FOCUS = "RadioSet, Input"
    """The first question's options (or text), not the scrolling dialog around them."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "send", "Send", id="questions_send", tooltip="Send these answers"),
        Binding("escape", "cancel", "Cancel", id="questions_cancel"),
    ]

    def __init__(self, interaction: Interaction, request: Questions) -> None:
        super().__init__(interaction)
        self.request = request

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog", id="questions-form") as dialog:
            dialog.border_title = f"Questions from {printable(self.interaction.assistant)}"
            dialog.border_subtitle = "ctrl+s: send · esc: cancel"
            for index, question in enumerate(self.request.questions):
                heading = Text(f"{index + 1}. {printable(question.question)}", style="bold")
                if question.description:
                    heading.append(f"\n{printable(question.description)}", style="dim")
                yield Static(heading, classes="question")
                if question.options:
                    with RadioSet(id=f"options-{index}"):
                        for option in question.options:
                            label = Text(printable(option.label))
                            if option.description:
                                label.append(f"  {printable(option.description)}", style="dim")
                            yield RadioButton(label, name=option.id)
                placeholder = printable(question.placeholder) or "or type an answer"
                yield Input(
                    placeholder=placeholder,
                    id=f"text-{index}",
                    classes="answer-text",
                    compact=True,
                )
            yield Static(
                Text(
                    "tab: next field    ctrl+s: send    esc: cancel\n"
                    "Free text wins over an option; a question with neither is skipped.",
                    style="dim",
                )
            )

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Enter in a text field goes to the next field; in the last one, it sends."""
        inputs = list(self.query(".answer-text").results(Input))
        if event.input is inputs[-1]:
            self.action_send()
        else:
            self.focus_next()

    def action_send(self) -> None:
        self.dismiss(Reply(tuple(self._responses())))

    def _responses(self) -> list[OptionAnswer | TextAnswer | SkipAnswer]:
        responses: list[OptionAnswer | TextAnswer | SkipAnswer] = []
        for index, question in enumerate(self.request.questions):
            text = self.query_one(f"#text-{index}", Input).value.strip()
            pressed = None
            if question.options:
                button = self.query_one(f"#options-{index}", RadioSet).pressed_button
                pressed = button.name if button is not None else None
            if text:
                responses.append(TextAnswer(question.id, text))
            elif pressed:
                responses.append(OptionAnswer(question.id, pressed))
            else:
                responses.append(SkipAnswer(question.id))
        return responses


class SecretPrompt(AnswerDialog[Secret]):
    """A masked field for a secret; enter sends it. The field is emptied as the dialog closes,
    so the value lives on only in the answer being sent."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="secret_cancel"),
    ]

    def __init__(self, interaction: Interaction, request: SecretRequest) -> None:
        super().__init__(interaction)
        self.request = request

    def compose(self) -> ComposeResult:
        request = self.request
        with Vertical(classes="dialog") as dialog:
            dialog.border_title = f"Secret for {printable(self.interaction.assistant)}"
            yield Static(
                Text.assemble(
                    ("service  ", "dim"),
                    printable(request.service),
                    ("\nfield    ", "dim"),
                    printable(request.field),
                    ("\nlabel    ", "dim"),
                    printable(request.label),
                )
            )
            yield Input(password=True, id="secret-value", placeholder="the secret (hidden)")
            yield Static(
                Text(
                    "enter: send    esc: cancel\n"
                    "The value goes to the assistant only: roost never shows, logs or keeps it.",
                    style="dim",
                )
            )

    def on_input_submitted(self, event: Input.Submitted) -> None:
        value = event.value
        event.input.value = ""
        if value:
            self.dismiss(Secret(value))

    def action_cancel(self) -> None:
        self.query_one("#secret-value", Input).value = ""
        self.dismiss(None)
