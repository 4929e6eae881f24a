"""The share's wire codecs: RFC 6455 frames (both directions, any chunking), the handshake's
accept key, and ALiS's integers and UTF-8 cuts."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.share import alis, websocket
from services.share.websocket import Close, Frame, Opcode, ProtocolError

opcodes = st.sampled_from(list(Opcode))
masks = st.binary(min_size=4, max_size=4)


@st.composite
def frames(draw: st.DrawFn) -> Frame:
    opcode = draw(opcodes)
    if opcode.control:
        return Frame(opcode, draw(st.binary(max_size=websocket.CONTROL_LIMIT)))
    size = draw(st.sampled_from([0, 1, 125, 126, 127, 65535, 65536, 70000]) | st.integers(0, 300))
    return Frame(opcode, draw(st.binary(min_size=size, max_size=size)), draw(st.booleans()))


def _reader(data: bytes, cuts: list[int]) -> asyncio.StreamReader:
    """A stream that holds `data`, fed in pieces at `cuts`, then ended."""
    reader = asyncio.StreamReader()
    start = 0
    for cut in sorted(cut % (len(data) + 1) for cut in cuts):
        reader.feed_data(data[start:cut])
        start = max(start, cut)
    reader.feed_data(data[start:])
    reader.feed_eof()
    return reader


async def _frames(data: bytes, cuts: list[int], *, masked: bool, limit: int) -> list[Frame]:
    """Every frame in `data` (built in the loop: a StreamReader belongs to one)."""
    reader = _reader(data, cuts)
    found = []
    while not reader.at_eof():
        frame = await websocket.read_frame(reader, limit=limit, masked=masked)
        assert len(frame.payload) <= limit
        found.append(frame)
    return found


@settings(max_examples=150, deadline=None)
@given(
    st.lists(frames(), max_size=4),
    st.lists(masks | st.none(), min_size=4, max_size=4),
    st.lists(st.integers(0, 1 << 20), max_size=6),
)
def test_frames_round_trip_in_any_chunks(
    sent: list[Frame], chosen: list[bytes | None], cuts: list[int]
) -> None:
    """A client's masked frames and a server's plain ones read back as sent."""
    masked = chosen[0] is not None
    mask = chosen[0] if masked else None
    wire = b"".join(websocket.encode(frame, mask=mask) for frame in sent)
    assert asyncio.run(_frames(wire, cuts, masked=masked, limit=1 << 20)) == sent


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.lists(st.integers(0, 400), max_size=4))
def test_any_bytes_are_a_frame_or_a_protocol_error(data: bytes, cuts: list[int]) -> None:
    with contextlib.suppress(ProtocolError, asyncio.IncompleteReadError):
        asyncio.run(_frames(data, cuts, masked=True, limit=128))


@pytest.mark.parametrize(
    ("wire", "code"),
    [
        (websocket.encode(Frame(Opcode.TEXT, b"x")), Close.PROTOCOL_ERROR),  # unmasked
        (websocket.encode(Frame(Opcode.BINARY, b"x" * 200), mask=b"abcd"), Close.TOO_BIG),
        (websocket.encode(Frame(Opcode.PING, b"", fin=False), mask=b"abcd"), Close.PROTOCOL_ERROR),
        (bytes([0x83, 0x80]) + b"abcd", Close.PROTOCOL_ERROR),  # reserved opcode 3
        (bytes([0xC1, 0x80]) + b"abcd", Close.PROTOCOL_ERROR),  # RSV1 without an extension
        (bytes([0x82, 0xFF]) + b"\x80" + bytes(7) + b"abcd", Close.PROTOCOL_ERROR),
    ],
)
def test_forbidden_frames_name_their_close_code(wire: bytes, code: Close) -> None:
    with pytest.raises(ProtocolError) as raised:
        asyncio.run(_frames(wire, [], masked=True, limit=128))
    assert raised.value.code is code


def test_a_too_long_frame_is_refused_before_its_payload_is_read() -> None:
    """The length alone refuses it: a peer announcing 2**62 bytes costs nothing."""
    wire = bytes([0x82, 0xFF]) + (1 << 62).to_bytes(8, "big") + b"abcd"
    with pytest.raises(ProtocolError) as raised:
        asyncio.run(_frames(wire, [], masked=True, limit=4096))
    assert raised.value.code is Close.TOO_BIG


def test_accept_key_is_the_rfcs_example() -> None:
    assert websocket.accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    assert websocket.valid_key("dGhlIHNhbXBsZSBub25jZQ==")
    assert not websocket.valid_key("c2hvcnQ=")
    assert not websocket.valid_key("not base64 at all!")


def _read_varuint(data: bytes) -> tuple[int, int]:
    """The player's decodeVarUint, in Python: (value, bytes used)."""
    value = shift = used = 0
    while True:
        byte = data[used]
        used += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, used


@given(st.integers(0, 1 << 64))
def test_varuint_reads_back_as_the_player_reads_it(value: int) -> None:
    encoded = alis.varuint(value)
    assert _read_varuint(encoded) == (value, len(encoded))


@given(st.text(), st.integers(0, 1000))
def test_utf8_split_never_cuts_a_character(text: str, cut: int) -> None:
    data = text.encode()
    data = data[: cut % (len(data) + 1)]
    whole, tail = alis.utf8_split(data)
    assert whole + tail == data
    whole.decode()  # the player decodes each frame on its own: never half a character
    assert len(tail) < 4


def test_utf8_split_passes_invalid_bytes() -> None:
    assert alis.utf8_split(b"a\xff") == (b"a\xff", b"")
    assert alis.utf8_split(b"\x80\x80\x80\x80") == (b"\x80\x80\x80\x80", b"")
