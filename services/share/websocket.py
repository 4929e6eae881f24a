"""The server's side of RFC 6455 (WebSocket), as much as a read-only share needs.

A share only ever sends: frames go out unfragmented and unmasked (a server's frames are never
masked, section 5.1). What a viewer sends is read only to keep the connection honest: a ping
is answered with a pong, a close with a close, and everything else is read within `limit`
bytes and dropped. A frame the RFC forbids (unmasked from a client, reserved bits or opcodes,
a fragmented or over-long control frame, a length over the limit) ends the connection with
the close code the RFC names for it (`ProtocolError.code`).

`encode` takes a mask too, so the tests' client speaks the same codec the server reads.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import struct
from dataclasses import dataclass
from enum import IntEnum

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
"""Section 1.3: appended to the client's key to prove the server read the handshake."""
CONTROL_LIMIT = 125
"""Section 5.5: a control frame's payload is at most this long."""


class Opcode(IntEnum):
    CONTINUATION = 0x0
    TEXT = 0x1
    BINARY = 0x2
    CLOSE = 0x8
    PING = 0x9
    PONG = 0xA

    @property
    def control(self) -> bool:
        return self >= Opcode.CLOSE


class Close(IntEnum):
    """The close codes a share uses (section 7.4.1)."""

    NORMAL = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    TOO_BIG = 1009
    SHARE_ENDED = 4000
    """asciinema-player shows the reason of a close in 4000-4100 as the stream's end."""


class ProtocolError(Exception):
    """The peer broke RFC 6455: the connection closes with `code`."""

    def __init__(self, code: Close, reason: str) -> None:
        super().__init__(reason)
        self.code = code


@dataclass(frozen=True)
class Frame:
    opcode: Opcode
    payload: bytes
    fin: bool = True


def accept_key(key: str) -> str:
    """Sec-WebSocket-Accept for the client's Sec-WebSocket-Key (section 4.2.2)."""
    digest = hashlib.sha1((key + GUID).encode("ascii"), usedforsecurity=False).digest()
    return base64.b64encode(digest).decode("ascii")


def valid_key(key: str) -> bool:
    """A Sec-WebSocket-Key is 16 random bytes in base64 (section 4.1)."""
    try:
        return len(base64.b64decode(key.encode("ascii"), validate=True)) == 16
    except (ValueError, UnicodeEncodeError):
        return False


def encode(frame: Frame, mask: bytes | None = None) -> bytes:
    """One frame on the wire; `mask` (4 bytes) only for a client's frames."""
    length = len(frame.payload)
    head = bytearray([(0x80 if frame.fin else 0) | frame.opcode])
    mask_bit = 0x80 if mask is not None else 0
    if length < 126:
        head.append(mask_bit | length)
    elif length < 1 << 16:
        head += struct.pack("!BH", mask_bit | 126, length)
    else:
        head += struct.pack("!BQ", mask_bit | 127, length)
    if mask is None:
        return bytes(head) + frame.payload
    return bytes(head) + mask + unmask(frame.payload, mask)


def unmask(payload: bytes, mask: bytes) -> bytes:
    """XOR with the repeated 4-byte mask (its own inverse), a whole integer at a time."""
    if not payload:
        return payload
    repeated = (mask * (len(payload) // 4 + 1))[: len(payload)]
    value = int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")
    return value.to_bytes(len(payload), "big")


async def read_frame(reader: asyncio.StreamReader, *, limit: int, masked: bool = True) -> Frame:
    """The next frame from a peer; `masked`: it must be masked (a client's, section 5.1).
    Raises ProtocolError for a frame the RFC forbids or one longer than `limit`, and
    asyncio.IncompleteReadError when the stream ends inside a frame."""
    first, second = await reader.readexactly(2)
    if first & 0x70:
        raise ProtocolError(Close.PROTOCOL_ERROR, "reserved bits set")
    try:
        opcode = Opcode(first & 0x0F)
    except ValueError:
        raise ProtocolError(Close.PROTOCOL_ERROR, f"reserved opcode {first & 0x0F}") from None
    fin = bool(first & 0x80)
    if bool(second & 0x80) != masked:
        raise ProtocolError(Close.PROTOCOL_ERROR, "a client's frames must be masked")
    length = second & 0x7F
    if opcode.control and (not fin or length > CONTROL_LIMIT):
        raise ProtocolError(Close.PROTOCOL_ERROR, "a control frame is short and unfragmented")
    if length == 126:
        (length,) = struct.unpack("!H", await reader.readexactly(2))
    elif length == 127:
        (length,) = struct.unpack("!Q", await reader.readexactly(8))
        if length >> 63:
            raise ProtocolError(Close.PROTOCOL_ERROR, "the length's top bit is set")
    if length > limit:
        raise ProtocolError(Close.TOO_BIG, f"a frame of {length} bytes (the limit is {limit})")
    mask = await reader.readexactly(4) if masked else b""
    payload = await reader.readexactly(length)
    return Frame(opcode, unmask(payload, mask) if masked else payload, fin)


def close_frame(code: Close, reason: str = "") -> Frame:
    """A close frame with its code and a reason cut to fit a control frame."""
    reason_bytes = reason.encode()[: CONTROL_LIMIT - 2]
    return Frame(Opcode.CLOSE, struct.pack("!H", code) + reason_bytes)
