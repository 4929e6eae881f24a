"""Screen rules: what a coding agent's terminal screen shows (a permission dialog, a question, a
spinner, an idle prompt, an error), read from `tmux capture-pane` text (no I/O).

The weakest evidence roost uses (../shared/AGENT-SIGNALS.md): agents redraw their screens at
will and a new version can break a rule, so `watch.py` reads a screen only when hooks and tmux
leave a pane's state ambiguous or stale, and `answer.py` reads it again before typing into a
dialog. Every rule is tested against saved sample screens (tests/agents/screens/, with where
each came from) and must match nothing on an ordinary shell screen.

Only the bottom of the screen counts: a dialog answered long ago may still sit in the
scrollback above the live one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from services.activity.model import Decision
from services.agents.model import Agent
from services.core.safe_text import printable


class ScreenState(StrEnum):
    PERMISSION = "permission"
    QUESTION = "question"
    WORKING = "working"
    IDLE = "idle"
    ERROR = "error"


@dataclass(frozen=True)
class MenuOption:
    """One numbered choice of a dialog on screen."""

    key: str
    """What to type to choose it: the number, or the agent's own letter (Codex's `(y)`)."""
    label: str
    """As on screen, printable."""
    decision: Decision | None
    """`ALLOW` for the plain "Yes" / "Allow once", `DENY` for "No", None for the others
    (they trust the tool from now on, or open an editor)."""


@dataclass(frozen=True)
class ScreenReading:
    """What one rule found on a screen."""

    agent: str
    """The `Agent` whose screen it is."""
    state: ScreenState
    rule: str
    """The rule's name, shown as evidence: `claude permission dialog`."""
    detail: str = ""
    """The tool, command, question or error on screen: printable, one line."""
    options: tuple[MenuOption, ...] = ()


MAX_SCREEN_CHARS = 64_000
"""A screen is at most a few thousand characters; anything longer is cut to its end."""
_BOTTOM_LINES = 60
"""Rules look this far up from the last line (a dialog with a long diff still fits)."""
_RECENT_LINES = 14
"""How far up a spinner, an error or an idle prompt counts as current."""
_DETAIL_CHARS = 200

_LINE_CHARS = 1000
_BORDER_EDGE = re.compile(r"^[│┃|]\s?|\s?[│┃|]$")
_RULE = re.compile(r"^[\s─━═╌┄\-╭╮╰╯┌┐└┘]{3,}$")
_DIALOG_TOP = re.compile(r"^(?:[─━]{3,}|[╭┌][─━]{3,}[╮┐]?)$")
_OPTION = re.compile(  # a choice, perhaps under the cursor (U+276F Claude, U+203A Codex, ● Gemini)
    r"^\s*(?:[\u276f\u203a>●▶]\s*)?(\d{1,2})\.\s+(\S.*?)\s*$"
)
_SHORTCUT = re.compile(r"\s\(([a-z])\)$")
_COLUMNS = re.compile(r"\s{3,}")
_SPINNER = "✱✲✳✴✵✶✷✸✹✺✻✼✽✾✿❀❁❂❃❇❈❉❊❋✢✣✤✥✦✧✨⊛⊕⊙◉◎◍⁂⁕※⍟☼★☆·*⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"

_ERROR = re.compile(
    r".*API Error: .*|.*(?:usage limit reached|hit your (?:usage )?limit|rate limit reached"
    r"|credit balance is too low|invalid api key|please run /login|quota exceeded).*",
    re.IGNORECASE,
)


def read_screen(text: str, agent: str | None = None) -> ScreenReading | None:
    """What the screen `text` shows, by the first rule that matches (dialogs before spinners,
    spinners before errors, errors before idle prompts); None when none does.

    `agent` limits the rules to that agent's; None (or an agent without rules of its own,
    such as OpenCode or Aider) tries them all."""
    lines = _screen_lines(text)
    if not lines:
        return None
    rules = _RULES.get(agent or "", ()) or tuple(r for rs in _RULES.values() for r in rs)
    for state in _ORDER:
        for rule in rules:
            if rule.state is state:
                reading = rule.read(lines)
                if reading is not None:
                    return reading
    return None


def _screen_lines(text: str) -> list[str]:
    """The screen's last lines, with box borders, trailing blanks and controls removed."""
    lines = []
    for raw in text[-MAX_SCREEN_CHARS:].splitlines()[-_BOTTOM_LINES:]:
        line = printable(raw[:_LINE_CHARS].replace("\u00a0", " ").replace("\t", "    "))
        for _ in range(2):  # a dialog boxed inside a box (Gemini's diff)
            line = _BORDER_EDGE.sub("", line.strip()).rstrip()
        lines.append(line)
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


def _one_line(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _DETAIL_CHARS else text[: _DETAIL_CHARS - 1] + "…"


def _last(lines: Sequence[str], pattern: re.Pattern[str], within: int) -> int | None:
    """The index of the last of the bottom `within` lines that `pattern` matches in full."""
    for index in range(len(lines) - 1, max(-1, len(lines) - 1 - within), -1):
        if pattern.fullmatch(lines[index].strip()):
            return index
    return None


def _menu(lines: Sequence[str], start: int) -> list[tuple[str, str]]:
    """The numbered choices 1, 2, 3 ... below line `start` (lines between them, such as a
    choice's description, are skipped): (number, label) each."""
    options: list[tuple[str, str]] = []
    for line in lines[start:]:
        match = _OPTION.match(line)
        if match and int(match[1]) == len(options) + 1:
            options.append((match[1], _COLUMNS.split(match[2])[0]))
    return options


def _heading_block(lines: Sequence[str], heading: int) -> list[str]:
    """The non-blank lines above a dialog's question, up to the rule or box top above it."""
    block: list[str] = []
    for line in reversed(lines[max(0, heading - 40) : heading]):
        if _DIALOG_TOP.fullmatch(line.strip()):
            break
        if line.strip():
            block.append(line.strip())
    return block[::-1]


def _decision(label: str, allow: re.Pattern[str], deny: re.Pattern[str]) -> Decision | None:
    if allow.fullmatch(label):
        return Decision.ALLOW
    if deny.match(label):
        return Decision.DENY
    return None


@dataclass(frozen=True)
class _Rule:
    agent: Agent
    state: ScreenState
    name: str
    read_lines: Callable[[_Rule, Sequence[str]], ScreenReading | None]

    def read(self, lines: Sequence[str]) -> ScreenReading | None:
        return self.read_lines(self, lines)

    def found(self, detail: str = "", options: Sequence[MenuOption] = ()) -> ScreenReading:
        return ScreenReading(self.agent, self.state, self.name, _one_line(detail), tuple(options))


def _dialog(
    heading: re.Pattern[str],
    allow: re.Pattern[str],
    deny: re.Pattern[str],
    detail: Callable[[Sequence[str], int, re.Match[str]], str],
    *,
    shortcuts: bool = False,
) -> Callable[[_Rule, Sequence[str]], ScreenReading | None]:
    """A rule for a permission dialog: a question line, then numbered choices of which one
    allows and one denies (the agent's own wording tells its dialog from another's)."""

    def read(rule: _Rule, lines: Sequence[str]) -> ScreenReading | None:
        index = _last(lines, heading, _BOTTOM_LINES)
        if index is None:
            return None
        match = heading.fullmatch(lines[index].strip())
        assert match is not None
        options = []
        for number, label in _menu(lines, index + 1):
            key = number
            shortcut = _SHORTCUT.search(label) if shortcuts else None
            if shortcut:
                key = shortcut[1]
            options.append(MenuOption(key, label, _decision(label, allow, deny)))
        decisions = {option.decision for option in options}
        if Decision.ALLOW not in decisions or Decision.DENY not in decisions:
            return None
        return rule.found(detail(lines, index, match), options)

    return read


def _claude_detail(lines: Sequence[str], heading: int, match: re.Match[str]) -> str:
    """`Bash command: npm test`, `Edit file: src/cart.py`: the dialog's title and subject."""
    block = _heading_block(lines, heading)
    if not block:
        return match[0]
    title, subject = block[0], block[1] if len(block) > 1 else ""
    return f"{title}: {subject}" if subject else title


def _codex_detail(lines: Sequence[str], heading: int, match: re.Match[str]) -> str:
    """The command (`$ git add ...`) or the reason the dialog gives, else its question."""
    below = [line.strip() for line in lines[heading + 1 :] if line.strip()]
    for line in below:
        if line.startswith("$ "):
            return line[2:]
        if _OPTION.match(line):
            break
    reason = next((line for line in below if line.startswith("Reason: ")), "")
    return reason.removeprefix("Reason: ") or match[0]


def _gemini_detail(lines: Sequence[str], heading: int, match: re.Match[str]) -> str:
    """The tool line (`?  Shell npm install ...`) above the question, else the question."""
    for line in reversed(lines[max(0, heading - 40) : heading]):
        if line.strip().startswith("? "):
            return line.strip()[2:]
    return match[0]


def _working(
    marker: re.Pattern[str], *, latest: bool = False
) -> Callable[[_Rule, Sequence[str]], ScreenReading | None]:
    """A rule for a busy agent: its spinner line near the bottom. With `latest`, only when
    nothing but tips and blank lines separates it from the input box below (a finished turn
    leaves spinner lines in the scrollback)."""

    def read(rule: _Rule, lines: Sequence[str]) -> ScreenReading | None:
        index = _last(lines, marker, _RECENT_LINES)
        if index is None:
            return None
        if latest:
            for line in lines[index + 1 :]:
                if _RULE.fullmatch(line):
                    break
                if line.strip() and not line.strip().startswith(("⎿", "└")):
                    return None
        match = marker.fullmatch(lines[index].strip())
        assert match is not None
        what = match.groupdict().get("what") or match.groupdict().get("hint") or ""
        return rule.found(what.strip(_SPINNER + " •"))

    return read


def _error(rule: _Rule, lines: Sequence[str]) -> ScreenReading | None:
    index = _last(lines, _ERROR, _RECENT_LINES)
    if index is None:
        return None
    return rule.found(lines[index].strip().lstrip("⎿ ").strip())


def _idle(
    prompt: re.Pattern[str], framed: bool
) -> Callable[[_Rule, Sequence[str]], ScreenReading | None]:
    """A rule for an agent waiting for a prompt: its input line (between two rules or inside
    a box when `framed`) near the bottom."""

    def read(rule: _Rule, lines: Sequence[str]) -> ScreenReading | None:
        index = _last(lines, prompt, _RECENT_LINES)
        if index is None:
            return None
        if framed and not (index > 0 and _RULE.fullmatch(lines[index - 1])):
            return None
        return rule.found()

    return read


def _question(
    footer: re.Pattern[str],
) -> Callable[[_Rule, Sequence[str]], ScreenReading | None]:
    """A rule for a question menu: its footer, numbered choices above it, and the question
    (the last line ending in `?` above the choices)."""

    def read(rule: _Rule, lines: Sequence[str]) -> ScreenReading | None:
        end = _last(lines, footer, _RECENT_LINES)
        if end is None:
            return None
        first = next(
            (
                i
                for i in range(max(0, end - 40), end)
                if (m := _OPTION.match(lines[i])) and m[1] == "1"
            ),
            None,
        )
        if first is None:
            return None
        options = [MenuOption(n, label, None) for n, label in _menu(lines[: end + 1], first)]
        asked = next(
            (
                line.strip()
                for line in reversed(lines[max(0, first - 10) : first])
                if line.strip().endswith("?")
            ),
            "",
        )
        return rule.found(asked, options)

    return read


_CLAUDE_ALLOW = re.compile(r"Yes(?:, allow once)?")
_CLAUDE_DENY = re.compile(r"No\b")
_CODEX_ALLOW = re.compile(r"Yes, proceed(?: \(y\))?|Allow(?: \(y\))?")
_CODEX_DENY = re.compile(r"No\b|Cancel\b")
_GEMINI_ALLOW = re.compile(r"Allow once|Yes, allow once")
_GEMINI_DENY = re.compile(r"No\b")

_RULES: dict[str, tuple[_Rule, ...]] = {
    Agent.CLAUDE: (
        _Rule(
            Agent.CLAUDE,
            ScreenState.PERMISSION,
            "claude permission dialog",
            _dialog(
                re.compile(
                    r"Do you want to (?:proceed|make this edit to .+|create .+|allow .+)\?"
                    r"|Allow this command to run\?"
                ),
                _CLAUDE_ALLOW,
                _CLAUDE_DENY,
                _claude_detail,
            ),
        ),
        _Rule(
            Agent.CLAUDE,
            ScreenState.QUESTION,
            "claude question",
            _question(re.compile(r"Enter to select · .*Esc to cancel")),
        ),
        _Rule(
            Agent.CLAUDE,
            ScreenState.WORKING,
            "claude spinner",
            _working(
                re.compile(
                    rf"(?P<what>[{_SPINNER}] [^(]+?…)\s*(?:\(.*\))?|"
                    rf"(?P<hint>[{_SPINNER}] [^(]+?)\s*\(.*esc to interrupt.*\)"
                ),
                latest=True,
            ),
        ),
        _Rule(Agent.CLAUDE, ScreenState.ERROR, "claude error", _error),
        _Rule(
            Agent.CLAUDE,
            ScreenState.IDLE,
            "claude prompt box",
            _idle(re.compile(r"(?:\u276f|>)(?: (?!\s*Type your message).*)?"), framed=True),
        ),
    ),
    Agent.CODEX: (
        _Rule(
            Agent.CODEX,
            ScreenState.PERMISSION,
            "codex approval",
            _dialog(
                re.compile(
                    r"Would you like to (?:run the following command|make the following edits"
                    r"|grant these permissions)\?|Allow the .+ MCP server to run tool .+\?"
                ),
                _CODEX_ALLOW,
                _CODEX_DENY,
                _codex_detail,
                shortcuts=True,
            ),
        ),
        _Rule(
            Agent.CODEX,
            ScreenState.QUESTION,
            "codex question",
            _question(re.compile(r".*enter to submit answer.*", re.IGNORECASE)),
        ),
        _Rule(
            Agent.CODEX,
            ScreenState.WORKING,
            "codex working",
            _working(re.compile(r"(?P<what>• [^(]+?)\s*\(.*esc to interrupt\)")),
        ),
        _Rule(Agent.CODEX, ScreenState.ERROR, "codex error", _error),
        _Rule(
            Agent.CODEX,
            ScreenState.IDLE,
            "codex composer",
            _idle(re.compile(r"\d+% context left(?: · .*)?"), framed=False),
        ),
    ),
    Agent.GEMINI: (
        _Rule(
            Agent.GEMINI,
            ScreenState.PERMISSION,
            "gemini confirmation",
            _dialog(
                re.compile(r"Allow execution of.*\?|Apply this change\?|Do you want to proceed\?"),
                _GEMINI_ALLOW,
                _GEMINI_DENY,
                _gemini_detail,
            ),
        ),
        _Rule(
            Agent.GEMINI,
            ScreenState.WORKING,
            "gemini working",
            _working(re.compile(r"(?P<what>.+?)\s*\(esc to cancel, [^)]*\)")),
        ),
        _Rule(Agent.GEMINI, ScreenState.ERROR, "gemini error", _error),
        _Rule(
            Agent.GEMINI,
            ScreenState.IDLE,
            "gemini prompt",
            _idle(re.compile(r">\s+Type your message.*"), framed=True),
        ),
    ),
}
_ORDER = (
    ScreenState.PERMISSION,
    ScreenState.QUESTION,
    ScreenState.WORKING,
    ScreenState.ERROR,
    ScreenState.IDLE,
)
