"""Text from outside made safe to show, and error texts cleared of secrets.

`printable` is applied where outside data (lockfile names, health answers, ...) enters roost's
models, and again by the command line and the log as a last line of defence: an ESC from a
remote server must never reach a terminal, where it could retitle the window or hide text.

`scrub` removes what an error text could carry of a credential: httpx quotes a header value it
refuses ("Illegal header value b'Bearer ...'"), and any token roost has read is known here, so
it is hidden wherever it appears. `error_text` is both, for an exception about to become words.
"""

from __future__ import annotations

import re

HIDDEN = "[hidden]"

_UNSAFE = re.compile(
    "["
    "\x00-\x1f\x7f-\x9f"  # C0 and C1 controls, ESC and DEL among them
    "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"  # bidi marks, embeddings and overrides
    "\u2028\u2029"  # line and paragraph separators
    "\ud800-\udfff"  # lone surrogates (undecodable bytes read with surrogateescape)
    "]"
)
_UNSAFE_KEEPING_LINES = re.compile(_UNSAFE.pattern.replace("\x00-\x1f", "\x00-\x09\x0b-\x1f"))

_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r", "\x1b": "\\e"}

_HEADER_VALUE = re.compile(
    r"""(header value )(b?'(?:\\.|[^'\\])*'|b?"(?:\\.|[^"\\])*"|\S+)""", re.IGNORECASE
)
"""h11's refusal quotes the value as a bytes repr: `Illegal header value b'Bearer ...'`."""
_CREDENTIAL_HEADER = re.compile(
    r"""\b(authorization|x-session-token|vellum-organization-id)(['"]?\s*[:=]\s*['"]?)"""
    r"""(?:bearer\s+)?[^\s'",;)}\]]+""",
    re.IGNORECASE,
)
_BEARER = re.compile(r"\b(bearer\s+)(?!\[hidden\])\S+", re.IGNORECASE)
_MIN_KNOWN_SECRET = 8
"""Shorter values would hide ordinary words; a real token is far longer."""
_known_secrets: set[str] = set()


def printable(text: str, *, keep_newlines: bool = False) -> str:
    """`text` with every control character, bidi override and line separator replaced by a
    visible escape (`\\e`, `\\x07`, `\\u202e`), so it shows as what it is and does nothing.

    `keep_newlines` lets `\\n` through, for texts that are several lines on purpose (a
    traceback in the log); a line of a table or a message never has one.
    """
    pattern = _UNSAFE_KEEPING_LINES if keep_newlines else _UNSAFE
    if pattern.search(text) is None:
        return text
    return pattern.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    char = match[0]
    named = _NAMED.get(char)
    if named:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def is_printable(text: str) -> bool:
    """Whether `printable` would leave `text` as it is."""
    return _UNSAFE.search(text) is None


def remember_secret(value: str) -> None:
    """Hide `value` from every text `scrub` sees from now on (tokens, as roost reads them)."""
    if len(value) >= _MIN_KNOWN_SECRET:
        _known_secrets.add(value)


def scrub(text: str) -> str:
    """`text` without credentials: header values an error quotes, what follows `Bearer` or a
    credential header's name, and every secret passed to `remember_secret`."""
    text = _HEADER_VALUE.sub(lambda m: m[1] + HIDDEN, text)
    text = _CREDENTIAL_HEADER.sub(lambda m: m[1] + m[2] + HIDDEN, text)
    text = _BEARER.sub(lambda m: m[1] + HIDDEN, text)
    # Longest first, so a token that contains another is hidden whole.
    for secret in sorted(_known_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, HIDDEN)
    return text


def error_text(error: BaseException) -> str:
    """An exception as one safe line for the user, the log or the job history."""
    return printable(scrub(str(error) or type(error).__name__))
