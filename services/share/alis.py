"""ALiS v1, the live stream asciinema-player reads over a websocket (subprotocol `v1.alis`).

Read from the player's own source (asciinema-player 3.18.0, `alisHandler` in the bundle shipped
in `static/`): binary messages, the first the magic `ALiS\\x01`, then frames whose first byte is
their type. Every frame starts with an event id and a time as unsigned LEB128 integers (the
player reads and skips the id), times in microseconds: the reset's from the stream's start,
every other frame's since the previous frame.

- reset `0x01`: id, time, columns, rows, a theme byte (0: none), then the init text's length
  and the text, written to a fresh terminal of that size: the snapshot of the current screen.
  The player starts over on each reset, so one is sent again after anything a viewer missed.
- output `o`: id, relative time, length, UTF-8 text (decoded per frame: never split a
  character across frames, see `utf8_split`).
- resize `r`: id, relative time, columns, rows.
- EOT `0x04`: the stream ended; the player shows it as ended rather than reconnecting.
"""

from __future__ import annotations

MAGIC = b"ALiS\x01"
SUBPROTOCOL = "v1.alis"
EOT = b"\x04"


def varuint(value: int) -> bytes:
    """Unsigned LEB128: seven bits a byte, low first, the top bit set on all but the last."""
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def reset(event: int, time: int, columns: int, rows: int, init: bytes) -> bytes:
    return b"\x01" + _ints(event, time, columns, rows) + b"\x00" + varuint(len(init)) + init


def output(event: int, elapsed: int, text: bytes) -> bytes:
    return b"o" + _ints(event, elapsed, len(text)) + text


def resize(event: int, elapsed: int, columns: int, rows: int) -> bytes:
    return b"r" + _ints(event, elapsed, columns, rows)


def _ints(*values: int) -> bytes:
    return b"".join(varuint(value) for value in values)


def utf8_split(data: bytes) -> tuple[bytes, bytes]:
    """`data` cut before a UTF-8 sequence its end leaves incomplete: (whole, the tail to
    prepend to the next chunk). Invalid bytes pass (the player shows them as U+FFFD)."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte < 0x80 or byte >= 0xF8:  # ASCII, or a byte no character starts with
            return data, b""
        if byte >= 0xC0:  # a lead byte: how long its sequence is decides
            needed = 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            return (data[:-back], data[-back:]) if needed > back else (data, b"")
    return data, b""
