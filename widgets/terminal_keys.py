"""What an xterm sends for a key, a paste or a mouse event, given Textual's names for them.

The terminal view translates input into the bytes a program in the session expects, the way
xterm (and tmux inside it) would send them: cursor keys in normal or application mode,
`CSI 1;<modifier>` forms for modified keys, the VT220 editing keys, F1-F12, control
characters, alt as an ESC prefix, bracketed paste, and mouse reports in the X10 or SGR
encoding.
"""

from __future__ import annotations

from textual.keys import key_to_character

_CURSOR = {"up": "A", "down": "B", "right": "C", "left": "D", "home": "H", "end": "F"}
"""Keys sent as `CSI <final>` (or `SS3 <final>` in application cursor mode)."""

_TILDE = {"insert": 2, "delete": 3, "pageup": 5, "pagedown": 6}
_TILDE.update(
    {f"f{n}": code for n, code in zip(range(5, 13), (15, 17, 18, 19, 20, 21, 23, 24), strict=True)}
)
"""Keys sent as `CSI <code> ~`."""

_SS3_FUNCTION = {"f1": "P", "f2": "Q", "f3": "R", "f4": "S"}

_PLAIN = {
    "enter": b"\r",
    "tab": b"\t",
    "shift+tab": b"\x1b[Z",
    "backspace": b"\x7f",
    "escape": b"\x1b",
    "ctrl+space": b"\x00",
    "ctrl+@": b"\x00",
    "ctrl+left_square_bracket": b"\x1b",
    "ctrl+backslash": b"\x1c",
    "ctrl+right_square_bracket": b"\x1d",
    "ctrl+circumflex_accent": b"\x1e",
    "ctrl+underscore": b"\x1f",
    "ctrl+minus": b"\x1f",
    "alt+enter": b"\x1b\r",
    "alt+backspace": b"\x1b\x7f",
    "alt+escape": b"\x1b\x1b",
    "ctrl+backspace": b"\x08",
}

_MODIFIER_BITS = {"shift": 1, "alt": 2, "ctrl": 4}


def encode_key(key: str, character: str | None, *, application_cursor: bool = False) -> bytes:
    """The bytes for Textual's `key` (e.g. "ctrl+up", "alt+x", "f5"); empty when an xterm
    sends nothing for it."""
    plain = _PLAIN.get(key)
    if plain is not None:
        return plain
    *modifiers, name = key.split("+")
    bits = sum(_MODIFIER_BITS.get(modifier, 0) for modifier in modifiers)
    if name in _CURSOR:
        final = _CURSOR[name]
        if bits:
            return f"\x1b[1;{bits + 1}{final}".encode()
        return f"\x1bO{final}".encode() if application_cursor else f"\x1b[{final}".encode()
    if name in _SS3_FUNCTION:
        final = _SS3_FUNCTION[name]
        return f"\x1b[1;{bits + 1}{final}".encode() if bits else f"\x1bO{final}".encode()
    if name in _TILDE:
        code = _TILDE[name]
        return f"\x1b[{code};{bits + 1}~".encode() if bits else f"\x1b[{code}~".encode()
    if modifiers == ["ctrl"] or modifiers == ["ctrl", "shift"]:
        return _control(name)
    if modifiers and modifiers[0] == "alt":
        rest = "+".join([*modifiers[1:], name])
        inner = encode_key(rest, character, application_cursor=application_cursor)
        return b"\x1b" + inner if inner else b""
    if character is None and not modifiers:
        character = key_to_character(name)
    if character and character.isprintable():
        return character.encode()
    return b""


def _control(name: str) -> bytes:
    """Ctrl with a letter or one of `@[\\]^_` is that character's control code."""
    if len(name) == 1 and ("a" <= name <= "z" or name in "@[\\]^_"):
        return bytes([ord(name.upper()) & 0x1F])
    return b""


def encode_paste(text: str, *, bracketed: bool) -> bytes:
    """Pasted text as typed: line ends become CR (as xterm sends them), wrapped in the
    bracketed-paste marks when the program asked for them. Marks inside the text are removed,
    so a paste cannot end the bracket early and smuggle in keystrokes."""
    text = text.replace("\r\n", "\r").replace("\n", "\r")
    if not bracketed:
        return text.encode()
    text = text.replace("\x1b[200~", "").replace("\x1b[201~", "")
    return b"\x1b[200~" + text.encode() + b"\x1b[201~"


WHEEL_UP = 64
WHEEL_DOWN = 65


def encode_mouse(button: int, x: int, y: int, *, pressed: bool, sgr: bool, mods: int = 0) -> bytes:
    """A mouse report for `button` (0-2, or WHEEL_UP/WHEEL_DOWN) at 0-based cell `x`, `y`.
    `mods` adds xterm's modifier bits (4 shift, 8 alt, 16 ctrl)."""
    code = button | mods
    if sgr:
        return f"\x1b[<{code};{x + 1};{y + 1}{'M' if pressed else 'm'}".encode()
    if not pressed:
        code = 3 | mods  # X10 reports a release without saying which button
    if x > 222 or y > 222:
        return b""  # beyond what the X10 encoding can express
    return bytes([0x1B, 0x5B, 0x4D, 32 + code, 33 + x, 33 + y])
