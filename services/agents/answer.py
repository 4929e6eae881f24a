"""Answering a coding agent's prompt by typing into its tmux pane (blocking; a worker thread
calls it).

An agent's dialog has no API: the answer is the keys a person would press. So the pane's
screen is read again first (`screens.read_screen`), and keys are typed only while the same
prompt is still on it: a dialog answered in the terminal meanwhile, or replaced by another
tool's, gets nothing (typing `1` into the next dialog would allow what nobody saw). The keys
come from the menu on screen (`keys_for`), never from a table of what an agent used to show.
"""

from __future__ import annotations

import json
import re

from services.activity.model import (
    Allow,
    Answer,
    Confirmation,
    Decision,
    Interaction,
    InteractionKind,
    OptionAnswer,
    Outcome,
    Questions,
    Reply,
    TextAnswer,
)
from services.agents.screens import MenuOption, ScreenReading, ScreenState, read_screen
from services.core.errors import RoostError
from services.core.safe_text import error_text, is_printable
from services.terminal.tmux import TmuxServer, TmuxSocket

Keys = list[tuple[tuple[str, ...], bool]]
"""What to type, in order: tmux key names, or (when the flag is set) literal text."""

GONE = "the dialog is no longer on screen: nothing typed"
_TRUST = re.compile(r"don't ask again|always|this session", re.IGNORECASE)
"""The wording of a choice that allows and trusts the tool from now on."""
_FREE_TEXT = re.compile(r"type something\.?", re.IGNORECASE)
"""Claude Code's question menu: the choice that takes typed text."""
_SUBJECT_CHARS = 40
"""How much of a command must be on screen: its first line may be wrapped or cut there."""


class Unanswerable(RoostError):
    """The answer does not fit the prompt on screen (roost refuses it; nothing is typed)."""


def keys_for(reading: ScreenReading, answer: Answer) -> Keys:
    """The keys that give `answer` to the prompt `reading` found on screen; Unanswerable when
    it has no such choice (an "always" where the dialog offers none, a text for a dialog)."""
    if reading.state is ScreenState.PERMISSION:
        if not isinstance(answer, Allow):
            raise Unanswerable("a permission dialog takes allow or deny")
        return [((_permission_option(reading, answer).key,), False)]
    if reading.state is ScreenState.QUESTION:
        if not isinstance(answer, Reply):
            raise Unanswerable("a question takes a reply, not allow or deny")
        return _reply_keys(reading, answer)
    raise Unanswerable(f"nothing to answer: the screen shows {reading.state}")


def _permission_option(reading: ScreenReading, answer: Allow) -> MenuOption:
    if answer.decision is Decision.ALLOW and (answer.pattern or answer.scope):
        found = [o for o in reading.options if o.decision is None and _TRUST.search(o.label)]
        if not found:
            raise Unanswerable("this dialog offers no 'don't ask again': allow it once instead")
        return found[0]
    option = next((o for o in reading.options if o.decision is answer.decision), None)
    if option is None:
        raise Unanswerable(f"this dialog has no choice to {answer.decision}")
    return option


def _reply_keys(reading: ScreenReading, answer: Reply) -> Keys:
    if answer.close:
        return [(("Escape",), False)]
    if len(answer.responses) != 1:
        raise Unanswerable("a question on screen takes exactly one answer")
    [response] = answer.responses
    if isinstance(response, OptionAnswer):
        chosen = response.option_id
        option = next((o for o in reading.options if chosen in (o.key, o.label)), None)
        if option is None:
            raise Unanswerable(f"no choice {chosen!r} on screen")
        return [((option.key,), False)]
    if not isinstance(response, TextAnswer):
        raise Unanswerable("skip the question with close instead")
    if not is_printable(response.text):
        raise Unanswerable("the answer must be one line of printable text")
    free = next((o for o in reading.options if _FREE_TEXT.fullmatch(o.label)), None)
    keys: Keys = [((free.key,), False)] if free else []
    if response.text:
        keys.append(((response.text,), True))
    return [*keys, (("Enter",), False)]


def answer_in_pane(
    tmux: TmuxServer, interaction: Interaction, answer: Answer
) -> tuple[Outcome, str]:
    """Type `answer` into the pane of `interaction` if its prompt is still on screen.

    `tmux` is the server to use when the interaction names none (its executable and timeout
    serve for the one it names). Returns the outcome and why (empty when accepted); the
    expected failures (a pane gone, an answer the prompt cannot take) are outcomes, not
    exceptions."""
    target = interaction.pane
    if target is None:
        return Outcome.REFUSED, "not a coding agent's prompt: nothing to type into"
    if target.server:
        tmux = TmuxServer(TmuxSocket(target.server), tmux.executable, tmux.timeout)
    try:
        reading = read_screen(tmux.capture_pane(target.pane), target.agent or None)
        if reading is None or not _same_prompt(interaction, reading):
            return Outcome.ALREADY_ANSWERED, GONE
        keys = keys_for(reading, answer)
        for typed, literal in keys:
            tmux.send_keys(target.pane, *typed, literal=literal)
    except Unanswerable as error:
        return Outcome.REFUSED, error_text(error)
    except RoostError as error:
        return Outcome.FAILED, error_text(error)
    return Outcome.ACCEPTED, ""


def _same_prompt(interaction: Interaction, reading: ScreenReading) -> bool:
    """Whether `reading` shows the prompt `interaction` asks: a dialog for a confirmation, a
    question for a question, naming the same command or file, else the same tool (or the same
    question) when both say."""
    wanted = {
        InteractionKind.CONFIRMATION: ScreenState.PERMISSION,
        InteractionKind.QUESTION: ScreenState.QUESTION,
    }.get(interaction.kind)
    if reading.state is not wanted:
        return False
    on_screen = _normal(reading.detail)
    request = interaction.request
    if isinstance(request, Questions) and request.questions and on_screen:
        asked = _normal(request.questions[0].question)
        return not asked or asked in on_screen or on_screen in asked
    if isinstance(request, Confirmation) and request.input_json:
        subject = _subject(request)
        return not subject or subject in on_screen
    tool = _normal(interaction.tool).lower()  # known from a notification or the screen only
    name = tool.rsplit("__", 1)[-1]  # an MCP tool (`mcp__exa__web_search`) shows its own name
    return not tool or tool in on_screen.lower() or name in on_screen.lower()


def _subject(request: Confirmation) -> str:
    """What a dialog for `request` must show: the start of its command, else its file's name
    (empty when its input names neither)."""
    try:
        tool_input = json.loads(request.input_json)
    except ValueError:
        return ""
    if not isinstance(tool_input, dict):
        return ""
    command = tool_input.get("command")
    if isinstance(command, str) and command.strip():
        return _normal(command.strip().splitlines()[0])[:_SUBJECT_CHARS]
    path = tool_input.get("file_path") or tool_input.get("path")
    if isinstance(path, str) and path.strip():
        return _normal(path.rstrip("/").rsplit("/", 1)[-1])
    return ""


def _normal(text: str) -> str:
    return " ".join(text.split())
