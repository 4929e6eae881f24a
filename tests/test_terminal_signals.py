"""Signals from a terminal stream: the title, bells and the three forms of desktop notification
coding agents send (OSC 9, OSC 777, kitty's OSC 99), as the emulator hands them over.

Every form is fed whole and split at every byte, since a PTY cuts reads anywhere."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.core.safe_text import is_printable
from services.terminal.emulator import MAX_NOTIFICATIONS, MAX_STRING, Emulator
from services.terminal.signals import MAX_SIGNAL_TEXT, SignalKind, TerminalSignal

AT = datetime(2026, 12, 2, 22, 0, tzinfo=UTC)
BELL = (SignalKind.BELL, "")


def clock() -> datetime:
    return AT


def fed(data: bytes, read: int | None = None) -> tuple[tuple[SignalKind, str], ...]:
    """The signals after `data`, fed in reads of `read` bytes (whole when None)."""
    screen = Emulator(20, 4)
    read = read or max(1, len(data))
    for start in range(0, len(data), read):
        screen.feed(data[start : start + read])
    signals = screen.take_signals(clock)
    assert all(signal.at == AT for signal in signals)
    return tuple((signal.kind, signal.text) for signal in signals)


def fed_kinds(screen: Emulator) -> list[tuple[SignalKind, str]]:
    """What `screen` hands over now, without the time."""
    return [(signal.kind, signal.text) for signal in screen.take_signals(clock)]


def notes(*texts: str) -> tuple[tuple[SignalKind, str], ...]:
    return tuple((SignalKind.NOTIFICATION, text) for text in texts)


def b64(text: str) -> bytes:
    return base64.b64encode(text.encode())


CLAUDE_KITTY = (
    b"\x1b]99;i=4242:d=0:p=title;Claude Code\x1b\\"
    b"\x1b]99;i=4242:p=body;Claude needs your permission to use Bash\x1b\\"
    b"\x1b]99;i=4242:d=1:a=focus;\x1b\\"
)
"""Claude Code's three sequences for kitty: the title, the body (done: `d` is 1 by default),
then an empty one asking for focus on a click, which shows nothing."""

NOTIFYING = [
    (b"\x1b]9;Claude needs your permission\x07", notes("Claude needs your permission")),
    (b"\x1b]9;Codex: turn complete\x1b\\", notes("Codex: turn complete")),
    ("\x9d9;eight-bit OSC and ST\x9c".encode(), notes("eight-bit OSC and ST")),
    (
        b"\x1b]9;\n\nClaude Code:\nClaude needs your permission to use Bash\x07",
        notes("Claude Code: Claude needs your permission to use Bash"),  # as Claude Code sends
    ),
    (b"\x1b]9;4;1;50\x07\x1b]9;4;0\x07\x1b]9;1;100\x07\x1b]9;9;/home\x1b\\", ()),  # ConEmu's
    (b"\x1b]9;\x07\x1b]9;  \n \x07", ()),
    (b"\x1b]777;notify;Claude Code;Claude is waiting\x07", notes("Claude Code: Claude is waiting")),
    (b"\x1b]777;notify;Gemini;a;b;c\x1b\\", notes("Gemini: a;b;c")),
    (
        b"\x1b]777;notify;title only\x07\x1b]777;notify;;body only\x07",
        notes("title only", "body only"),
    ),
    (b"\x1b]777;preexec\x07\x1b]777;notify\x07\x1b]777;notify;;\x07", ()),
    (b"\x1b]99;;Hello world\x1b\\", notes("Hello world")),
    (
        b"\x1b]99;i=1:d=0;Hello world\x1b\\\x1b]99;i=1:p=body;This is cool\x1b\\",
        notes("Hello world: This is cool"),
    ),
    (CLAUDE_KITTY, notes("Claude Code: Claude needs your permission to use Bash")),
    (
        b"\x1b]99;i=a:d=0:p=title;Part \x1b\\\x1b]99;i=a:d=0:p=title;one\x1b\\"
        b"\x1b]99;i=a:d=0:p=body;and \x1b\\\x1b]99;i=a:d=0:p=icon;ZmFjZQ==\x1b\\"
        b"\x1b]99;i=a:p=body;two\x1b\\",
        notes("Part one: and two"),  # chunks joined per part; an icon adds no text
    ),
    (
        b"\x1b]99;i=b:d=0:e=1;" + b64("Réglé") + b"\x1b\\"
        b"\x1b]99;i=b:e=1:p=body;" + b64("ça marche") + b"\x1b\\",
        notes("Réglé: ça marche"),
    ),
    (
        b"\x1b]99;i=c:d=0;held\x1b\\\x1b]99;i=c:p=?;\x1b\\\x1b]99;i=c:p=alive;\x1b\\"
        b"\x1b]99;i=c:p=close;\x1b\\\x1b]99;i=c:p=body;still here\x1b\\",
        notes("held: still here"),  # queries and closing neither show nor disturb one
    ),
    (
        b"\x1b]99;i=d:d=0;forgotten\x1b\\\x1b]99;i=e;another\x1b\\",
        notes("another"),  # a notification under another id drops the unfinished one
    ),
    (
        b"\x1b]99;i=f:d=0;lost\x1b\\\x1b]99;i=f:e=1:p=body;not base64!\x1b\\"
        b"\x1b]99;i=f;after\x1b\\",
        notes("after"),  # a part that does not decode loses its notification
    ),
    (b"\x1b]99;i=g:d=0;never done\x1b\\", ()),
    (b"\x1b]99;no second semicolon\x1b\\\x1b]99;e=1;\xff\xfe\x1b\\", ()),
]


@pytest.mark.parametrize(("data", "expected"), NOTIFYING)
def test_each_form_of_notification_whole_and_split_at_every_byte(
    data: bytes, expected: tuple[tuple[SignalKind, str], ...]
) -> None:
    assert fed(data) == expected
    assert fed(data, read=1) == expected
    for cut in range(1, len(data)):
        screen = Emulator(20, 4)
        screen.feed(data[:cut])
        screen.feed(data[cut:])
        assert fed_kinds(screen) == list(expected)


def test_a_notification_draws_nothing_and_the_text_around_it_shows() -> None:
    screen = Emulator(20, 2)
    screen.feed(b"before\x1b]9;note\x07after")
    assert "".join(screen.buffer[0][x].data for x in range(11)) == "beforeafter"


def test_controls_and_bidi_overrides_in_a_notification_are_escaped() -> None:
    data = "\x1b]777;notify;\x1b[31mred;\u202eevil\x00\x07".encode()
    assert fed(data) == notes("\\e[31mred: \\u202eevil\\x00")


def test_long_notifications_are_cut_and_oversized_ones_dropped() -> None:
    long = b"x" * (MAX_STRING - 10)
    assert fed(b"\x1b]9;" + long + b"\x07") == notes("x" * MAX_SIGNAL_TEXT)
    huge = b"\x1b]9;" + b"y" * (MAX_STRING * 3) + b"\x07"
    after = b"\x1b]9;after\x07"
    assert fed(huge + after) == notes("y" * MAX_SIGNAL_TEXT, "after")  # complete in one read
    assert fed(huge + after, read=1000) == notes("after")  # unterminated past the cap: skipped
    many_chunks = b"".join(b"\x1b]99;i=z:d=0;" + b"t" * 1000 + b"\x1b\\" for _ in range(100))
    assert fed(many_chunks + b"\x1b]99;i=z;\x1b\\") == notes("t" * MAX_SIGNAL_TEXT)


def test_a_flood_of_notifications_keeps_the_newest() -> None:
    data = b"".join(b"\x1b]9;note %d\x07" % n for n in range(100))
    assert fed(data) == notes(*(f"note {n}" for n in range(100 - MAX_NOTIFICATIONS, 100)))


def test_the_title_goes_once_when_it_changed_and_bells_once_however_many_rang() -> None:
    screen = Emulator(20, 2)
    assert screen.take_signals(clock) == ()
    screen.feed(b"\x1b]0;\xe2\xa0\x8b working\x07\x07\x07\x1b]2;\xe2\xa0\x99 working\x07\x07")
    assert screen.take_signals(clock) == (
        TerminalSignal(SignalKind.TITLE, "⠙ working", AT),  # the latest
        TerminalSignal(SignalKind.BELL, "", AT),
    )
    assert screen.take_signals(clock) == ()
    screen.feed(b"\x1b]2;\xe2\xa0\x99 working\x07")  # the same title again: no change
    assert screen.take_signals(clock) == ()
    screen.feed(b"\x1b]2;other\x07\x1b]2;\xe2\xa0\x99 working\x07")  # and back within a frame
    assert screen.take_signals(clock) == ()
    screen.feed(b"\x1b[22;2t\x1b]2;vim\x07")
    assert fed_kinds(screen) == [(SignalKind.TITLE, "vim")]
    screen.feed(b"\x1b[23;2t")  # popped
    assert fed_kinds(screen) == [(SignalKind.TITLE, "⠙ working")]
    screen.feed(b"\x1bc")  # a reset clears the title, and rings no bell
    assert fed_kinds(screen) == [(SignalKind.TITLE, "")]
    screen.feed(b"\x07\x1b]2;a\nb\x1b\\\x1b]9;note\x07")
    assert fed_kinds(screen) == [(SignalKind.TITLE, "a b"), BELL, *notes("note")]


def test_the_bell_that_ends_an_osc_is_no_bell() -> None:
    assert fed(b"\x1b]2;title\x07\x1b]9;note\x07") == ((SignalKind.TITLE, "title"), *notes("note"))


_openers = st.sampled_from(
    [
        "\x1b]9;",
        "\x1b]777;notify;",
        "\x1b]99;;",
        "\x1b]99;i=1:d=0;",
        "\x1b]99;i=1:p=body;",
        "\x1b]99;i=1:e=1;",
        "\x1b]0;",
        "\x9d9;",
        "\x1b]99;i=1:d=0:e=1;",
    ]
)
_terminators = st.sampled_from(["\x07", "\x1b\\", "\x9c", ""])
_pieces = st.one_of(
    st.builds(lambda *parts: "".join(parts), _openers, st.text(max_size=600), _terminators),
    st.text(max_size=20),
    st.sampled_from(["\x07", "\x1bc", "\x1b[22;2t", "\x1b[23;2t"]),
    st.builds(
        lambda text: f"\x1b]99;e=1;{base64.b64encode(text.encode()).decode()}\x07", st.text()
    ),
)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=3000), st.lists(_pieces, max_size=12).map("".join).map(str.encode)
    ),
    st.integers(1, 64),
)
def test_whatever_the_stream_signals_are_printable_capped_and_cut_anywhere(
    data: bytes, read: int
) -> None:
    whole, split = Emulator(20, 4), Emulator(20, 4)
    whole.feed(data)
    for start in range(0, len(data), read):
        split.feed(data[start : start + read])
    signals = split.take_signals(clock)
    assert all(is_printable(signal.text) for signal in signals)
    assert all(len(signal.text) <= MAX_SIGNAL_TEXT for signal in signals)
    assert len(signals) <= 2 + MAX_NOTIFICATIONS
    if len(data) <= MAX_STRING:  # past the cap an unterminated string is cut where reads end
        assert whole.take_signals(clock) == signals
