"""A managed assistant's terminal (docs/protocol.md §5) against the loopback platform, whose
sessions are real programs in real PTYs: output without repeats across dropped streams, input
that survives failing requests, tmux re-attached on a new session, watch mode, sizes, errors."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import os
import random
import re
import shlex
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from services.core.mode import Mode
from services.terminal.backend import LinkNotice, SessionError, SessionLost, TerminalSize
from services.terminal.remote import (
    EventDecoder,
    RemoteSession,
    attach_line,
    shows_prompt,
    strip_ansi,
)
from services.vellum.platform import AUTHENTICATION_FAILED, PlatformClient
from services.vellum.tokens import PlatformToken
from tests.conftest import require
from tests.peers.terminal import API_KEY, ASSISTANT, Remote, until
from tests.peers.vellum import refused_url

BACKOFF = (0.02, 0.04, 0.08)
SIZE = TerminalSize(80, 24)
COUNTER = [
    sys.executable,
    "-u",
    "-c",
    "import time\nfor i in range(1, 10**6):\n    print(f'line-{i}', flush=True)\n"
    "    time.sleep(0.01)",
]


def event(seq: object, data: bytes | str, *, envelope: bool = False) -> bytes:
    text = data if isinstance(data, str) else base64.b64encode(data).decode()
    payload = {"seq": seq, "data": text}
    return b"data: " + json.dumps({"message": payload} if envelope else payload).encode()


# -- the events stream, line by line ---------------------------------------------------------------


def test_data_lines_carry_output_plain_wrapped_and_with_crlf() -> None:
    decoder = EventDecoder()
    assert decoder.decode(event(0, b"zero")) == b"zero"
    assert decoder.decode(event(1, b"one", envelope=True)) == b"one"
    assert decoder.decode(event(2, b"two") + b"\r") == b"two"
    assert decoder.decode(b'data:{"seq":3,"data":"dGhyZWU="}') == b"three"  # no space after colon
    assert decoder.decode(b'data: {"seq": 4, "note": "\xff", "data": "Zm91cg=="}') == b"four"
    assert decoder.last_seq == 4


@pytest.mark.parametrize(
    "line",
    [
        b": keepalive",
        b"",
        b"event: output",
        b"id: 7",
        b"retry: 100",
        b"data: {not json",
        b"data: [1, 2]",
        b'data: {"message": "text"}',
        b'data: {"data": "eA=="}',
        b'data: {"seq": "5", "data": "eA=="}',
        b'data: {"seq": true, "data": "eA=="}',
        b'data: {"seq": 5.0, "data": "eA=="}',
        b'data: {"seq": -1, "data": "eA=="}',
        b'data: {"seq": 5, "data": ""}',
        b'data: {"seq": 5, "data": 42}',
        b'data: {"seq": 5, "data": "not base64!"}',
        b'data: {"seq": 5, "data": "eA\xc3\xa9=="}',
        pytest.param(
            b"data: " + json.dumps({"seq": 5, "data": "eA=="}).encode("utf-16"), id="UTF-16"
        ),
        pytest.param(b"data: " + b"[" * 100_000, id="data: nested 100000 deep"),
        pytest.param(b'data: {"seq": ' + b"9" * 5000 + b', "data": "eA=="}', id="seq 10**5000"),
        b'x-data: {"seq": 5, "data": "eA=="}',
    ],
)
def test_lines_without_new_output_carry_nothing_and_leave_the_mark(line: bytes) -> None:
    decoder = EventDecoder()
    assert decoder.decode(line) == b""
    assert decoder.last_seq == -1
    assert decoder.decode(event(5, b"x")) == b"x"  # seq 5 still counts as new


def test_each_seq_is_delivered_once() -> None:
    decoder = EventDecoder()
    lines = [event(seq, f"<{seq}>".encode()) for seq in (1, 2, 2, 1, 3, 3, 10, 4, 11)]
    delivered = b"".join(decoder.decode(line) for line in lines)
    assert delivered == b"<1><2><3><10><11>"


def reference(line: bytes, last_seq: int) -> tuple[bytes, int]:
    """The protocol read the plain way, json for every payload: (new output, the new mark)."""
    if not line.startswith(b"data:"):
        return b"", last_seq
    try:
        payload = json.loads(line[5:].decode("utf-8", "replace"))
    except (ValueError, RecursionError):
        return b"", last_seq
    if isinstance(payload, dict) and isinstance(payload.get("message"), dict):
        payload = payload["message"]
    if not isinstance(payload, dict):
        return b"", last_seq
    seq, text = payload.get("seq"), payload.get("data")
    if type(seq) is not int or seq <= last_seq or not isinstance(text, str):
        return b"", last_seq
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return b"", last_seq
    return (data, seq) if data else (b"", last_seq)


_B64 = st.binary(max_size=12).map(lambda data: base64.b64encode(data).decode())
_PAYLOADS = st.fixed_dictionaries(
    {
        "seq": st.one_of(st.integers(-1, 9), st.sampled_from([True, 1.0, "7"])),
        "data": st.one_of(_B64, st.text(max_size=6)),
    },
    optional={"note": st.text(max_size=3)},
)


@st.composite
def event_lines(draw: st.DrawFn) -> bytes:
    """Events as servers write them (either key order, with or without spaces, wrapped or not),
    some with a byte changed or put in, or a different end."""
    payload = draw(_PAYLOADS)
    if draw(st.integers(0, 3)) == 0:
        payload = dict(reversed(payload.items()))
    if draw(st.integers(0, 3)) == 0:
        payload = {"message": payload}
    separators = draw(st.sampled_from([(", ", ": "), (",", ":")]))
    line = b"data:" + draw(st.sampled_from([b" ", b"", b"  "]))
    line += json.dumps(payload, separators=separators).encode()
    change = draw(st.integers(0, 3))
    if change == 1:  # a different end
        end = draw(st.sampled_from([b"", b"A", b"AA", b"==", b"}", b'"']))
        line = line[: -draw(st.integers(1, 3))] + end
    elif change == 2:
        at = draw(st.integers(0, len(line)))
        odd = draw(st.sampled_from([b"", b'"', b"\\", b"=", b"A", b"}", b"\xc3\xa9", b" "]))
        line = line[:at] + odd + line[at + draw(st.integers(0, 2)) :]
    return line


@settings(max_examples=300)
@given(st.lists(st.one_of(event_lines(), st.binary(max_size=40)), min_size=2, max_size=12))
@example([b'data: {"seq": 2, "data": "QUI="}', b'data: {"seq": 1, "data": "QUI="}'])
@example([b'data: {"seq":1,"data":"QUJDAA', b'data: {"seq": 1, "data": "QUJD"}.'])
def test_every_line_reads_as_json_would_read_it(lines: list[bytes]) -> None:
    decoder, last_seq = EventDecoder(), -1
    for line in lines:
        expected, last_seq = reference(line, last_seq)
        assert decoder.decode(line) == expected, line
        assert decoder.last_seq == last_seq


def test_prompts_ansi_and_the_attach_line() -> None:
    assert shows_prompt("motd # not yet\r\n\x1b[1muser@box:~\x1b[0m$ ")
    assert shows_prompt("\x1b]0;title\x07root# ")
    assert not shows_prompt("# a banner line\r\nloading")
    assert strip_ansi("\x1b[?2004h\x1b(Bok\x1b[32m!\x1b[0m") == "ok!"
    assert attach_line("work", Mode.DRIVE) == "tmux attach -t 'work'"
    line = attach_line("it's $HOME", Mode.WATCH)
    assert line == "tmux attach -r -t 'it'\\''s $HOME'"
    assert shlex.split(line) == ["tmux", "attach", "-r", "-t", "it's $HOME"]


# -- sessions against the peer ---------------------------------------------------------------------


class Reader:
    """Reads a session in the background: its output, its link notices, and how it ended."""

    def __init__(self, backend: RemoteSession) -> None:
        self.backend = backend
        self.output = bytearray()
        self.notices: list[LinkNotice] = []
        self.end: bytes | SessionError | None = None
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            while True:
                item = await self.backend.read()
                if isinstance(item, LinkNotice):
                    self.notices.append(item)
                elif item:
                    self.output += item
                else:
                    self.end = item
                    return
        except SessionError as error:
            self.end = error

    @property
    def lives(self) -> int:
        return sum(notice.live for notice in self.notices)

    def shows(self, text: str) -> bool:
        return text.encode() in self.output

    async def new_lines(self, count: int) -> None:
        seen = self.output.count(b"\n")
        await until(lambda: self.output.count(b"\n") >= seen + count, f"{count} new lines")

    async def back(self, *, times: int) -> None:
        """Wait until the link has come back `times` times in all."""
        await until(lambda: self.lives >= times, f"the link back {times} times")
        assert self.lives == times

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


@contextlib.asynccontextmanager
async def running(backend: RemoteSession, size: TerminalSize = SIZE) -> AsyncIterator[Reader]:
    await backend.start(size)
    reader = Reader(backend)
    try:
        yield reader
    finally:
        await backend.close()
        await reader.stop()


def session(remote: Remote, **options: object) -> RemoteSession:
    return RemoteSession(
        remote.http,
        remote.platform,
        ASSISTANT,
        backoff=BACKOFF,
        **options,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("id_key", ["session_id", "id"])
async def test_typing_into_a_shell_and_reading_its_answer(remote: Remote, id_key: str) -> None:
    remote.terminals.id_key = id_key
    backend = session(remote)
    async with running(backend) as reader:
        await until(lambda: reader.shows("$ "), "the prompt")
        backend.write("echo $((6 * 7)) é\r".encode())
        await until(lambda: reader.shows("42 é"), "the answer")
        assert backend.session_id == remote.terminals.latest.id
    [create] = [r for r in remote.peer.requests if r.path.endswith("/terminal/sessions/")]
    assert json.loads(create.body) == {"cols": 80, "rows": 24}
    assert remote.terminals.latest.received == "echo $((6 * 7)) é\r".encode()
    assert reader.notices == []


async def test_twenty_dropped_streams_lose_and_repeat_nothing(remote: Remote) -> None:
    terminals = remote.terminals
    terminals.argv = COUNTER
    terminals.replay = terminals.crlf = terminals.envelope = terminals.noise = True
    async with running(session(remote)) as reader:
        for drop in range(1, 21):
            await reader.new_lines(3)
            terminals.drop_streams()
            await reader.back(times=drop)
        await reader.new_lines(3)
    numbers = [int(n) for n in re.findall(rb"line-(\d+)\r\n", bytes(reader.output))]
    assert numbers == list(range(1, len(numbers) + 1))
    assert [notice.live for notice in reader.notices] == [False, True] * 20
    assert all(n.attempt == 1 for n in reader.notices if not n.live)
    assert len(remote.requests("events")) == 21
    assert len(remote.requests("create")) == 1  # the same session every time


async def test_input_arrives_whole_and_in_order_while_requests_fail(
    remote: Remote, tmp_path: Path
) -> None:
    received = tmp_path / "received"
    terminals = remote.terminals
    terminals.argv = ["/bin/sh", "-c", f"stty raw -echo; echo READY; exec cat > {received}"]
    terminals.input_failure_rate = 0.1
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789 .,;:-_/é✓\n"
    text = "".join(random.Random(3).choice(alphabet) for _ in range(5000))
    async with running(session(remote)) as reader:
        await until(lambda: reader.shows("READY"), "raw mode")
        for start in range(0, len(text), 50):
            typed = text[start : start + 50].encode()
            for piece in (typed[:20], typed[20:]):  # splits some UTF-8 sequences
                reader.backend.write(piece)
            await asyncio.sleep(0.01)  # pacing the typist, so the input goes out in many requests
        expected = text.encode()
        await until(lambda: terminals.latest.received == expected, "all the input")
        await until(lambda: received.read_bytes() == expected, "cat to write it all")
    failed = [status for kind, status in terminals.failures if kind == "input"]
    assert failed and set(failed) == {503}
    assert len(remote.requests("input")) >= 10 + len(failed)  # many requests, some retried


async def test_keys_typed_while_a_request_is_out_go_together_in_the_next(remote: Remote) -> None:
    """The first key goes at once, alone: no batching window holds it for the keys that follow.
    The keys typed while its request is out go in one request after it (each written on its
    own): one request at a time, and no more requests than that."""
    terminals = remote.terminals
    terminals.argv = ["/bin/sh", "-c", "stty raw -echo; echo READY; exec cat >/dev/null"]
    async with running(session(remote)) as reader:
        await until(lambda: reader.shows("READY"), "raw mode")
        terminals.delay = 0.3  # every answer is held: the first key's request stays out a while
        reader.backend.write(b"a")
        for _ in range(5):
            await asyncio.sleep(0)  # a few turns of the loop, no time: the sender takes the key
        for key in (b"b", b"c", b"d"):
            reader.backend.write(key)
            await asyncio.sleep(0)
        await until(lambda: terminals.latest.received == b"abcd", "every key")
        terminals.delay = 0.0
    inputs = [r for r in remote.peer.requests if r.path.endswith("/input/")]
    assert [json.loads(r.body)["data"] for r in inputs] == ["a", "bcd"]


@pytest.fixture
def work_session(remote: Remote) -> str:
    """A session `work` on the peer's private tmux server, showing a marker."""
    require("tmux", "ROOST_REQUIRE_TMUX")
    command = "echo screen-marker-42; exec sleep 3600"
    argv = remote.terminals.tmux.argv(
        "new-session", "-d", "-s", "work", "-x", "80", "-y", "24", command
    )
    subprocess.run(argv, check=True, env={**os.environ, "LANG": "C.UTF-8"})
    return "work"


async def test_a_forgotten_session_comes_back_attached_to_the_same_tmux_session(
    remote: Remote, work_session: str
) -> None:
    terminals = remote.terminals
    backend = session(remote, tmux_session=work_session)
    async with running(backend) as reader:
        await until(lambda: reader.shows("screen-marker-42"), "the tmux pane")
        first = backend.session_id
        assert first is not None
        shown = len(reader.output)
        terminals.forget(first)
        await reader.back(times=1)
        await until(lambda: b"screen-marker-42" in reader.output[shown:], "the pane again")
        second = backend.session_id
        assert second not in (None, first)
        backend.write(b"typed-after\r")  # reaches tmux in the new session
        await until(lambda: terminals.sessions[second].received.endswith(b"typed-after\r"), "input")
    assert terminals.sessions[first].received == b"tmux attach -t 'work'\r"
    assert terminals.sessions[second].received.startswith(b"tmux attach -t 'work'\r")
    assert [n.live for n in reader.notices] == [False, True]
    assert len(remote.requests("create")) == 2


async def test_watching_without_tmux_never_sends_input(remote: Remote) -> None:
    watcher, driver = session(remote, mode=Mode.WATCH), session(remote)
    async with running(watcher) as watched, running(driver) as driven:
        await until(lambda: watched.shows("$ ") and driven.shows("$ "), "both prompts")
        for backend in (watcher, driver):
            for key in (b"echo typed\r", b"\x1b[A", b"q"):
                backend.write(key)
            # The resize goes out after its debounce, well after input would have gone.
            backend.resize(TerminalSize(90, 30))
        sessions = remote.terminals.sessions
        driven_input = sessions[str(driver.session_id)].received
        await until(lambda: driven_input == b"echo typed\r\x1b[Aq", "the driver's input")
        await until(lambda: len(remote.requests("resize")) == 2, "both resizes")
        assert sessions[str(watcher.session_id)].received == b""
        watched_path = f"/sessions/{watcher.session_id}/"
    assert remote.requests("input") and not any(
        watched_path in path for path in remote.requests("input")
    )


async def test_watching_a_tmux_session_sends_only_the_read_only_attach(
    remote: Remote, work_session: str
) -> None:
    backend = session(remote, tmux_session=work_session, mode=Mode.WATCH)
    async with running(backend) as reader:
        await until(lambda: reader.shows("screen-marker-42"), "the tmux pane")
        backend.write(b"should never arrive\r")
        backend.resize(TerminalSize(100, 30))
        await until(lambda: len(remote.requests("resize")) == 1, "the resize")
    assert remote.terminals.latest.received == b"tmux attach -r -t 'work'\r"
    assert len(remote.requests("input")) == 1


async def test_resizes_are_debounced_then_sent_again_after_a_reconnect(remote: Remote) -> None:
    terminals = remote.terminals
    backend = session(remote, resize_delay=0.1)
    async with running(backend) as reader:
        await until(lambda: reader.shows("$ "), "the prompt")
        for columns in range(81, 121):
            backend.resize(TerminalSize(columns, 40))
        await until(lambda: len(remote.requests("resize")) == 1, "one resize")
        # The peer records a request before it acts on it.
        await until(lambda: len(terminals.latest.sizes) == 2, "the resize applied")
        assert terminals.latest.sizes == [(80, 24), (120, 40)]
        terminals.drop_streams()
        await reader.back(times=1)
        await until(lambda: len(remote.requests("resize")) == 2, "the size again")
        backend.write(b"stty size\r")
        await until(lambda: reader.shows("40 120"), "the shell's size")
    assert terminals.latest.sizes == [(80, 24), (120, 40), (120, 40)]


async def test_closing_deletes_the_session_and_stops_its_program(remote: Remote) -> None:
    backend = session(remote)
    async with running(backend) as reader:
        await until(lambda: reader.shows("$ "), "the prompt")
        sid = backend.session_id
    assert remote.requests("delete") == [f"/v1/assistants/{ASSISTANT}/terminal/sessions/{sid}/"]
    assert remote.terminals.sessions[str(sid)].forgotten
    assert not remote.terminals.sessions[str(sid)].process.isalive()
    assert await backend.read() == b""
    await backend.close()  # again: nothing more happens
    assert len(remote.requests("delete")) == 1


async def test_closing_never_waits_long_for_a_platform_that_does_not_answer(
    remote: Remote,
) -> None:
    backend = session(remote)
    async with running(backend) as reader:
        await until(lambda: reader.shows("$ "), "the prompt")
        remote.terminals.delay = 60.0
        async with asyncio.timeout(5):  # the DELETE gives up after CLOSE_TIMEOUT
            await backend.close()
    assert len(remote.requests("delete")) == 1


async def test_a_shell_that_exits_ends_the_session(remote: Remote) -> None:
    backend = session(remote)
    async with running(backend) as reader:
        await until(lambda: reader.shows("$ "), "the prompt")
        backend.write(b"exit 5\r")
        await until(lambda: reader.end is not None, "the end")
        assert reader.end == b""
    assert backend.exit_status is None  # the platform never says
    assert len(remote.requests("create")) == 1  # no new shell in its place
    assert remote.requests("delete")  # deleted anyway (the platform answered 404)


async def test_a_forgotten_plain_shell_ends_instead_of_starting_a_new_one(remote: Remote) -> None:
    backend = session(remote)
    async with running(backend) as reader:
        await until(lambda: reader.shows("$ "), "the prompt")
        remote.terminals.forget(str(backend.session_id))
        await until(lambda: reader.end is not None, "the end")
        assert reader.end == b""
        assert [n.live for n in reader.notices] == [False]
    assert len(remote.requests("create")) == 1


async def test_a_tmux_pane_whose_new_sessions_die_at_once_is_lost_not_looping(
    remote: Remote,
) -> None:
    terminals = remote.terminals
    backend = session(remote, tmux_session="work")
    async with running(backend) as reader:
        await until(lambda: reader.shows("$ "), "the prompt")
        terminals.argv = ["/bin/true"]
        terminals.forget(str(backend.session_id))
        await until(lambda: reader.end is not None, "the end")
    assert isinstance(reader.end, SessionLost)
    assert [(n.live, n.attempt) for n in reader.notices if not n.live] == [
        (False, 1),
        (False, 2),
        (False, 3),
    ]
    assert len(remote.requests("create")) <= 4


async def test_three_failed_reconnects_lose_the_session(remote: Remote) -> None:
    backend = session(remote)
    async with running(backend) as reader:
        await until(lambda: reader.shows("$ "), "the prompt")
        remote.terminals.scripted["events"] = [503, 502, 503]
        remote.terminals.drop_streams()
        await until(lambda: reader.end is not None, "the end")
        backend.write(b"echo too late\r")
    assert isinstance(reader.end, SessionLost)
    assert "503" in str(reader.end) and str(reader.end).startswith("lost the link to shell in")
    assert reader.notices == [
        LinkNotice(False, 1, 3, "the platform closed the output stream"),
        LinkNotice(False, 2, 3, "platform answered 503 to the terminal output"),
        LinkNotice(False, 3, 3, "platform answered 502 to the terminal output"),
    ]
    assert remote.requests("input") == []
    assert remote.requests("delete")


async def test_refused_input_ends_the_session_with_the_reason(remote: Remote) -> None:
    backend = session(remote)
    async with running(backend) as reader:
        await until(lambda: reader.shows("$ "), "the prompt")
        remote.terminals.scripted["input"] = [400]
        backend.write(b"echo refused\r")
        await until(lambda: reader.end is not None, "the end")
    assert isinstance(reader.end, SessionError)
    assert str(reader.end) == f"platform refused input for {ASSISTANT} (400)"


@pytest.mark.parametrize("how", ["unknown key", "forbidden"])
async def test_refused_credentials_say_how_to_log_in(remote: Remote, how: str) -> None:
    platform = remote.platform
    if how == "unknown key":
        token = PlatformToken("vak_wrong-secret", Path("/nowhere/platform-token"))
        platform = PlatformClient(remote.http, remote.peer.url, token)
    else:
        remote.terminals.scripted["create"] = [403]
    backend = RemoteSession(remote.http, platform, ASSISTANT)
    with pytest.raises(SessionError) as raised:
        await backend.start(SIZE)
    assert str(raised.value) == AUTHENTICATION_FAILED
    assert "secret" not in str(raised.value)
    assert await backend.read() == b""
    await backend.close()


async def test_an_unreachable_platform_is_one_clear_line(remote: Remote) -> None:
    with refused_url() as url:
        token = PlatformToken(API_KEY, Path("/nowhere/platform-token"))
        backend = RemoteSession(remote.http, PlatformClient(remote.http, url, token), ASSISTANT)
        with pytest.raises(SessionError) as raised:
            await backend.start(SIZE)
    message = str(raised.value)
    assert message.startswith("platform unreachable: ") and "\n" not in message
    assert API_KEY not in message
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


async def test_an_assistant_without_a_terminal(remote: Remote) -> None:
    backend = RemoteSession(remote.http, remote.platform, "asst-9")
    with pytest.raises(SessionError, match=r"^assistant asst-9 has no terminal \(404\)$"):
        await backend.start(SIZE)
