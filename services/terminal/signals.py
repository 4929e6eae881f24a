"""What a program's output says besides the screen: its title, bells and desktop notifications.

Coding agents announce themselves in the terminal stream: Claude Code puts a spinner in the
window title (OSC 0/2) while it works, and Claude Code, Codex and Gemini ring the bell or send a
desktop notification ("Claude needs your permission to use Bash") when they wait for someone.
A pane roost is attached to sees that stream, so these are evidence of what the agent is doing
(supporting evidence only: ../shared/AGENT-SIGNALS.md). The emulator finds them as it parses
(`Emulator.take_signals`); this module holds the value it hands over and the parsers of the
three notification forms, each bounded and never raising:

- OSC 9 ; text (iTerm2). ConEmu's sub-commands share the code (`9;4;1;50` sets a progress
  bar): a text that starts with a number and a `;` is one of those, not a notification.
- OSC 777 ; notify ; title ; body (urxvt, Ghostty, foot).
- OSC 99 ; metadata ; payload (kitty): `:`-separated `key=value` metadata; `i` names a
  notification whose parts come in several sequences until one says `d=1` (the default);
  `p` says which part the payload is (`title`, the default, or `body`; buttons and icons add
  no text; queries, `close` and `alive` are no notification); `e=1` means base64.

Texts become one printable line (`signal_text`): whitespace runs, such as the newlines Claude
Code puts around its OSC 9 text, are one space, and other controls are escaped.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from services.core.safe_text import printable

MAX_SIGNAL_TEXT = 512
"""Characters kept of a title or notification (and of each part of one being assembled)."""

_CONEMU = re.compile(r"\d+(?:;|$)")


class SignalKind(StrEnum):
    TITLE = "title"
    """The window title changed (OSC 0 or 2, or a title popped off the stack)."""
    BELL = "bell"
    """The bell rang, once or more (BEL)."""
    NOTIFICATION = "notification"
    """A desktop notification (OSC 9, OSC 777, OSC 99)."""


@dataclass(frozen=True)
class TerminalSignal:
    """One thing the output said: the new title, a bell (no text) or a notification's text
    (`title: body` when it has both), printable and at most `MAX_SIGNAL_TEXT` long."""

    kind: SignalKind
    text: str
    at: datetime


def signal_text(text: str) -> str:
    """`text` as one safe line of at most `MAX_SIGNAL_TEXT` characters."""
    return printable(" ".join(text[:MAX_SIGNAL_TEXT].split()))[:MAX_SIGNAL_TEXT]


def _titled(title: str, body: str) -> str:
    title, body = title.strip(), body.strip()
    return f"{title}: {body}" if title and body else title or body


def osc9_notification(param: str) -> str | None:
    """The text of `OSC 9 ; param`; None for ConEmu's sub-commands."""
    return None if _CONEMU.match(param) else param


def osc777_notification(param: str) -> str | None:
    """The text of `OSC 777 ; param` when it is `notify;title;body`, else None."""
    command, _, rest = param.partition(";")
    if command != "notify":
        return None
    title, _, body = rest.partition(";")
    return _titled(title, body)


class KittyNotifications:
    """Assembles OSC 99 notifications. One notification at a time is held open (a program
    sends its parts together): a part with another `i` drops the one being assembled."""

    def __init__(self) -> None:
        self._id: str | None = None
        self._title = ""
        self._body = ""

    def feed(self, param: str) -> str | None:
        """Take the `metadata;payload` after `99;`; the notification's text once it is done."""
        metadata, separator, payload = param.partition(";")
        if not separator:
            return None  # the two semicolons are always there (the spec)
        keys = {
            key: value for key, _, value in (pair.partition("=") for pair in metadata.split(":"))
        }
        part = keys.get("p", "title")
        if part not in ("title", "body", "buttons", "icon"):
            return None  # a query, `close`, `alive`: no notification, none disturbed
        identity = keys.get("i", "")
        if identity != self._id:
            self._id, self._title, self._body = identity, "", ""
        if keys.get("e") == "1":
            try:
                payload = base64.b64decode(payload, validate=True).decode("utf-8", "replace")
            except ValueError:  # binascii.Error, or a character outside ASCII
                self._id, self._title, self._body = None, "", ""  # the rest would mislead
                return None
        if part == "title":
            self._title = (self._title + payload)[:MAX_SIGNAL_TEXT]
        elif part == "body":
            self._body = (self._body + payload)[:MAX_SIGNAL_TEXT]
        if keys.get("d", "1") == "0":
            return None
        text = _titled(self._title, self._body)
        self._id, self._title, self._body = None, "", ""
        return text
