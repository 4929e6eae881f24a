"""The HTTP rules of services/core/http.py that need no server: the SSE line reader against any
chunking and line ends (Hypothesis), caps on lines, events and bodies, and timeouts."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Sequence

import httpx
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from services.core.http import (
    AnswerError,
    AnswerTooLarge,
    read_body,
    read_json,
    same_origin,
    sse_line_batches,
    sse_lines,
    timeout,
)

URL = "http://127.0.0.1:9/v1/events/?signature=secret"


def streamed(chunks: Sequence[bytes], headers: dict[str, str] | None = None) -> httpx.Response:
    """A response whose body arrives as `chunks`, one by one."""

    async def body() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield chunk

    return httpx.Response(200, headers=headers, content=body(), request=httpx.Request("GET", URL))


async def lines_of(response: httpx.Response, max_line: int = 1 << 20) -> list[str]:
    return [line async for line in sse_lines(response, max_line=max_line, max_event=1 << 20)]


def cut(data: bytes, sizes: list[int]) -> list[bytes]:
    chunks, at = [], 0
    for size in sizes:
        chunks.append(data[at : at + size])
        at += size
    return [*chunks, data[at:]]


@given(
    st.lists(
        st.text(st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=30),
        max_size=20,
    ),
    st.lists(st.sampled_from([b"\n", b"\r\n", b"\r"]), min_size=20, max_size=20),
    st.lists(st.integers(1, 9), max_size=60),
)
async def test_lines_come_back_whatever_the_line_ends_and_the_chunks(
    lines: list[str], ends: list[bytes], sizes: list[int]
) -> None:
    pairs = list(zip(lines, ends, strict=False))
    # A CR, then an empty line ended by LF, reads as one CRLF: the stream itself is ambiguous.
    assume(not any(a[1] == b"\r" and b == ("", b"\n") for a, b in itertools.pairwise(pairs)))
    data = b"".join(line.encode() + end for line, end in pairs)
    assert await lines_of(streamed(cut(data, sizes))) == lines


async def test_the_lines_one_read_completes_come_together() -> None:
    chunks = [b"data: 1\n\ndata: 2\r\n\r\nda", b"ta: 3\n\n", b"data: 4"]
    batches = sse_line_batches(streamed(chunks), max_line=100, max_event=100)
    assert [batch async for batch in batches] == [
        [b"data: 1", b"", b"data: 2", b""],
        [b"data: 3", b""],
        [b"data: 4"],
    ]


async def test_a_last_line_without_its_end_still_counts() -> None:
    assert await lines_of(streamed([b"data: 1\n", b"data: 2"])) == ["data: 1", "data: 2"]


@pytest.mark.parametrize("chunks", [[b"data: " + b"x" * 200], [b"data: ", b"x" * 100, b"y" * 100]])
async def test_a_line_past_its_cap_is_refused(chunks: list[bytes]) -> None:
    with pytest.raises(AnswerTooLarge, match=r"^http://127\.0\.0\.1:9/v1/events/: line larger"):
        await lines_of(streamed(chunks), max_line=100)


async def test_an_event_past_its_cap_is_refused_and_a_blank_line_starts_the_next() -> None:
    small = [b"data: " + b"x" * 40 + b"\n"] * 2 + [b"\n"]
    lines = sse_lines(streamed(small * 3), max_line=100, max_event=100)
    assert len([line async for line in lines]) == 9
    with pytest.raises(AnswerTooLarge, match="event larger than 100 bytes"):
        async for _ in sse_lines(streamed(small[:2] * 2), max_line=100, max_event=100):
            pass


async def test_a_body_is_read_whole_within_its_cap() -> None:
    assert await read_json(streamed([b'{"a":', b" 1}"]), 8) == {"a": 1}


async def test_a_body_past_its_cap_is_refused_without_its_query() -> None:
    with pytest.raises(AnswerTooLarge, match=r"^http://127\.0\.0\.1:9/v1/events/: answer larger"):
        await read_body(streamed([b"x" * 6, b"x" * 6]), 10)


async def test_a_body_announced_past_its_cap_is_refused_before_it_is_read() -> None:
    async def never() -> AsyncIterator[bytes]:
        raise AssertionError("read")
        yield b""

    response = httpx.Response(
        200, headers={"Content-Length": "11"}, content=never(), request=httpx.Request("GET", URL)
    )
    with pytest.raises(AnswerTooLarge, match="answer larger than 10 bytes"):
        await read_body(response, 10)


async def test_a_compressed_body_is_refused() -> None:
    with pytest.raises(AnswerError, match=r"compressed answer \(gzip\)"):
        await read_body(streamed([b"\x1f\x8b"], {"Content-Encoding": "gzip"}), 1 << 20)


def test_every_step_of_a_call_gets_its_timeout() -> None:
    assert timeout(30.0) == httpx.Timeout(connect=10.0, read=30.0, write=30.0, pool=30.0)
    assert timeout(1.5) == httpx.Timeout(1.5)
    assert timeout(10.0, endless_reads=True).read is None


def test_an_origin_is_scheme_host_and_port() -> None:
    assert same_origin(httpx.URL("http://a:80/x"), httpx.URL("http://a/y"))
    assert not same_origin(httpx.URL("http://a:8080/"), httpx.URL("http://a:8081/"))
    assert not same_origin(httpx.URL("http://a/"), httpx.URL("https://a/"))
