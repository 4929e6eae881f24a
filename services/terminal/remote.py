"""A managed assistant's terminal, through the Vellum platform's terminal sessions (docs/protocol.md
§5): plain HTTPS requests plus one Server-Sent-Events stream of output.

Output: one task follows the events stream and queues what it carries for `read()`, each `seq`
once (`EventDecoder`): the new output of all the events one read of the stream brought, as one
chunk, so that a flood costs a queue step and a pane update per read rather than per event.
When the stream drops, it reconnects: up to `len(backoff)` attempts, each after its delay. An
attempt first re-opens the stream of the same session (the platform may send output again that
was already shown: the `seq` mark drops it). Only when that session is gone (404/410) does a
tmux pane get a new session, sized as the pane, where the tmux session is attached again at the
first prompt, so the view comes back whole. The reference client starts a fresh shell on every
reconnect instead. A stream that ends before it carried new output (and before STABLE_AFTER)
counts as a failed attempt; otherwise the next drop starts from attempt 1.

Ending: the platform sends no exit signal and no exit code. A session whose stream closed and
whose events then answer 404/410 has ended (its shell exited, or the platform dropped it): a plain
shell pane then reads `b""` (a fresh shell would have lost everything anyway; `start()` opens one),
and `exit_status` stays None. A tmux pane's shell is disposable, so it gets a new one; a stream
that ends before it carried new output counts as a failed attempt, so a session that dies as
soon as it starts ends in `SessionLost` instead of a loop.

Input: one request at a time, so order holds. A key typed while none is out goes at once; what
is typed while one is out goes together in the next (up to INPUT_BATCH characters), so typing
costs a round trip, not a batching window (docs/protocol.md §5). A request that failed (no
answer, 429, 5xx) is retried with capped backoff before later input goes out. Input for a
session that is gone is dropped: it was meant for a shell that no longer exists. Any other
refusal (401/403, another 4xx) ends the session with a SessionError raised by `read()`, rather
than dropping keystrokes silently. In watch mode `write()` sends nothing at all: the tmux attach
line is the only input a watcher ever sends.

Sizes: resizes are debounced for `resize_delay`, and the size is sent again after every
reconnect. `close()` always deletes the session (404 is fine, errors are ignored).

The token travels only in request headers: errors are re-raised `from None` (an httpx error holds
its request) and name no header. Every answer is read against a cap (core/http.py): an events
line or event past its cap ends the session with a SessionError, as does an oversized answer.
"""

from __future__ import annotations

import asyncio
import binascii
import codecs
import contextlib
import json
import re
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from urllib.parse import quote

import httpx

from services.core.http import AnswerError, read_body, send, sse_line_batches, timeout
from services.core.mode import Mode
from services.core.safe_text import error_text
from services.terminal.backend import LinkNotice, SessionError, SessionLost, TerminalSize
from services.vellum.platform import AUTHENTICATION_FAILED, PlatformClient, PlatformError

REQUEST_TIMEOUT = 10.0
MAX_ANSWER = 64 << 10
"""Answers to create, input, resize and delete are a few bytes of JSON."""
MAX_EVENT_LINE = 1 << 20
"""An output line: a chunk of output in base64 (the platform sends a few KiB at a time)."""
MAX_EVENT = 4 << 20
CLOSE_TIMEOUT = 1.0
"""The DELETE on close: a platform that does not answer must not hold the pane."""
PROMPT_WAIT = 3.0
"""Seconds to wait for a shell prompt before typing the startup line anyway."""
STABLE_AFTER = 10.0
"""A stream open this long has proved the link even if it carried nothing (an idle shell)."""
INPUT_BATCH = 4096
"""Characters per input request at most."""
INPUT_RETRY_FIRST = 0.05
INPUT_RETRY_CAP = 2.0
OUTBOX_ITEMS = 16
"""Output chunks queued for `read()`; past that the stream is read no further until it catches
up, so a flood is held back by the platform instead of filling memory. A chunk is what one read
of the stream brought (in a flood, a read's 64 KiB of base64: 48 KiB of output), so this holds
up to about 768 KiB ahead of a slow reader: an interrupt's effect shows after that much."""
_GONE = (404, 410)
_PROMPT_TAIL = 256
_ANSI = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI: colours, cursor moves, modes
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)"  # OSC: window titles
    r"|\x1b[()*+][0-9A-Za-z]"  # character sets
    r"|\x1b[=>78DEHMc]"  # keypad modes, cursor save and restore, index
)
_PROMPT = re.compile(r"[$#%>] *\Z")
_PLAIN_EVENT = re.compile(rb'data: ?\{"seq": ?(0|[1-9][0-9]*), ?"data": ?"')
"""Where the base64 starts in a line as servers write it (see EventDecoder)."""


def strip_ansi(text: str) -> str:
    """`text` without terminal escape sequences."""
    return _ANSI.sub("", text)


def shows_prompt(text: str) -> bool:
    """Whether output ends the way a shell prompt does (`$ `, `# `, `% `, `> `), waiting for
    input. The reference accepts any `$`, `#` or `%` anywhere, which a banner can trigger."""
    return _PROMPT.search(strip_ansi(text)) is not None


def attach_line(tmux_session: str, mode: Mode) -> str:
    """What a pane types to attach: `tmux attach [-r] -t '<name>'`, the name always quoted."""
    quoted = "'" + tmux_session.replace("'", "'\\''") + "'"
    return f"tmux attach {'-r ' if mode is Mode.WATCH else ''}-t {quoted}"


class EventDecoder:
    """The output in the lines of one session's events stream, each `seq` at most once.

    Only `data:` lines count; their payload is `{seq, data: <base64>}`, possibly wrapped as
    `{message: {...}}`. Comments, `event:` and `id:` lines, malformed payloads, `seq < 0` and
    empty data carry nothing and never move the `seq` mark.

    A line shaped as servers write one (`{"seq": n, "data": "..."}`, spaces or none) is read
    without json: base64 holds no quote or backslash, so when all between the string's opening
    quote and the line's closing `"}` decodes as base64, the payload is exactly that `{seq,
    data}`. Anything else, or a line where that does not hold, goes through json. On a flood
    this leaves a line costing little beyond its base64 (json scanned and copied it twice).
    """

    def __init__(self) -> None:
        self.last_seq = -1
        """The highest `seq` delivered; anything at or below it is a repeat."""

    def decode(self, line: bytes) -> bytes:
        """The new output `line` carries, else `b""`."""
        plain = _plain_event(line)
        if plain is not None:
            return self._new(*plain)
        if not line.startswith(b"data:"):
            return b""
        try:
            # Decoded here, not by json: it would take UTF-16 or UTF-32 too.
            payload = json.loads(line[5:].decode("utf-8", "replace"))
        except (ValueError, RecursionError):  # RecursionError: deeply nested arrays
            return b""
        if isinstance(payload, dict) and isinstance(payload.get("message"), dict):
            payload = payload["message"]
        if not isinstance(payload, dict):
            return b""
        seq, text = payload.get("seq"), payload.get("data")
        if type(seq) is not int or seq <= self.last_seq or not isinstance(text, str):
            return b""
        try:
            data = binascii.a2b_base64(text, strict_mode=True)
        except (binascii.Error, ValueError):  # ValueError: not ASCII
            return b""
        return self._new(seq, data)

    def _new(self, seq: int, data: bytes) -> bytes:
        if seq <= self.last_seq or not data:
            return b""
        self.last_seq = seq
        return data


def _plain_event(line: bytes) -> tuple[int, bytes] | None:
    """(seq, output) of a line shaped as servers write one (see EventDecoder), else None."""
    match = _PLAIN_EVENT.match(line)
    if match is None or not line.endswith(b'"}'):
        return None
    try:
        return int(match[1]), binascii.a2b_base64(line[match.end() : -2], strict_mode=True)
    except ValueError:  # not base64 alone (binascii.Error), or past int's digits
        return None


@dataclass(frozen=True)
class _Answer:
    status: int
    body: bytes

    @property
    def is_success(self) -> bool:
        return 200 <= self.status < 300


class _Unanswered(SessionError):
    """No answer, or one worth asking again (429, 5xx)."""


class _Gone(SessionError):
    """The session no longer exists on the platform (404, 410)."""


class RemoteSession:
    """A shell in managed assistant `assistant_id`, optionally attached to `tmux_session`.

    `startup_line` is typed at the first prompt of every new session (a tmux pane's is the attach
    line); it is sent in watch mode too, and a plain shell never gets a second session, so it never
    runs twice.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        platform: PlatformClient,
        assistant_id: str,
        *,
        tmux_session: str | None = None,
        mode: Mode = Mode.DRIVE,
        description: str | None = None,
        startup_line: str | None = None,
        backoff: Sequence[float] = (1.0, 2.0, 4.0),
        resize_delay: float = 0.15,
    ) -> None:
        if tmux_session is not None and startup_line is not None:
            raise ValueError("a tmux pane's startup line is its attach line")
        self._http = http
        self._platform = platform
        self.assistant_id = assistant_id
        self.tmux_session = tmux_session
        self.mode = mode
        self.description = description or (
            f"tmux {tmux_session} in {assistant_id}" if tmux_session else f"shell in {assistant_id}"
        )
        self._startup = attach_line(tmux_session, mode) if tmux_session else startup_line
        self._backoff = tuple(backoff)
        self._resize_delay = resize_delay
        self._sessions_url = (
            f"{platform.base_url}/v1/assistants/{quote(assistant_id, safe='')}/terminal/sessions/"
        )
        self.session_id: str | None = None
        self._size = TerminalSize(80, 24)
        self._decoder = EventDecoder()
        self._stream: httpx.Response | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._outbox: asyncio.Queue[bytes | LinkNotice | SessionError] = asyncio.Queue()
        self._end: bytes | SessionError | None = None
        """`b""` once the session ended or was closed, the error once it failed."""
        self._input = ""
        self._utf8 = codecs.getincrementaldecoder("utf-8")("replace")
        self._input_ready = asyncio.Event()
        self._size_changed = asyncio.Event()
        self._prompt_line: str | None = None
        """The startup line, until it is typed."""
        self._prompt_tail = ""
        self._prompt_timer: asyncio.TimerHandle | None = None

    # -- the TerminalBackend interface ---------------------------------------------------------

    async def start(self, size: TerminalSize) -> None:
        await self._stop()
        self._size = size
        self._end = None
        self._outbox = asyncio.Queue(OUTBOX_ITEMS)
        self._input = ""
        self._utf8.reset()
        self._input_ready.clear()
        self._size_changed.clear()  # the session is created at this size
        await self._new_session()
        self._tasks = [
            asyncio.create_task(self._pump()),
            asyncio.create_task(self._send_input()),
            asyncio.create_task(self._send_sizes()),
        ]

    async def read(self) -> bytes | LinkNotice:
        if self._end is not None and self._outbox.empty():
            item: bytes | LinkNotice | SessionError = self._end
        elif not self._tasks:
            return b""
        else:
            item = await self._outbox.get()
        if isinstance(item, SessionError):
            raise item
        return item

    def write(self, data: bytes) -> None:
        if self.mode is Mode.WATCH or self._end is not None or not self._tasks:
            return
        self._queue_input(self._utf8.decode(data))

    def resize(self, size: TerminalSize) -> None:
        if size != self._size:
            self._size = size
            self._size_changed.set()

    async def close(self) -> None:
        await self._stop()

    @property
    def exit_status(self) -> int | None:
        """Always None: the platform never says how a session's shell exited."""
        return None

    # -- sessions and the output stream --------------------------------------------------------

    async def _new_session(self) -> None:
        """Create a session at the current size and open its events stream."""
        self._input = ""  # typed for a shell that no longer exists
        answer = await self._request(
            "POST", "", {"cols": self._size.columns, "rows": self._size.rows}
        )
        if answer.status == 404:
            raise SessionError(f"assistant {self.assistant_id} has no terminal (404)")
        self._check(answer.status, "opening a terminal")
        self.session_id = _session_id(answer.body)
        self._decoder = EventDecoder()
        try:
            self._stream = await self._open_events()
        except SessionError:
            await self._delete()
            raise
        if self._startup is not None:
            self._prompt_line, self._prompt_tail = self._startup, ""
            self._prompt_timer = asyncio.get_running_loop().call_later(
                PROMPT_WAIT, self._type_startup_line
            )

    async def _open_events(self) -> httpx.Response:
        url = f"{self._sessions_url}{self.session_id}/events/"
        headers = {**await self._headers(), "Accept": "text/event-stream"}
        # No read timeout: an idle shell sends nothing for as long as it likes.
        limits = timeout(REQUEST_TIMEOUT, endless_reads=True)
        request = self._http.build_request("GET", url, headers=headers, timeout=limits)
        async with _answer_within(REQUEST_TIMEOUT):
            response = await send(self._http, request)
        if not response.is_success:
            await response.aclose()
            self._check(response.status_code, "the terminal output")
        return response

    async def _reopen(self) -> None:
        """The events stream again: of the same session, else (a tmux pane) of a new one.

        Raises _Gone when a plain shell's session has ended.
        """
        if self.session_id is not None:
            try:
                self._stream = await self._open_events()
                return
            except _Gone:
                if self.tmux_session is None:
                    raise
                self.session_id = None
        try:
            await self._new_session()
        except _Gone as error:  # a new session that died at once: a failed attempt, not an end
            raise SessionError(str(error)) from None

    async def _pump(self) -> None:
        """Follow the output; reconnect when the stream drops; end or fail the session."""
        attempts = len(self._backoff)
        attempt = 0
        try:
            while True:
                proved, reason = await self._follow()
                if proved:
                    attempt = 0
                while True:
                    attempt += 1
                    if attempt > attempts:
                        raise SessionLost(f"lost the link to {self.description}: {reason}")
                    await self._outbox.put(LinkNotice(False, attempt, attempts, reason))
                    await asyncio.sleep(self._backoff[attempt - 1])
                    try:
                        await self._reopen()
                    except _Gone:
                        self._finish(b"")
                        return
                    except SessionError as error:
                        reason = str(error)
                        continue
                    break
                self._size_changed.set()
                await self._outbox.put(LinkNotice(True))
        except SessionError as error:
            self._finish(error)

    async def _follow(self) -> tuple[bool, str]:
        """Queue the open stream's output until it ends. Returns whether it proved the link
        (it carried new output, or stayed open STABLE_AFTER seconds), and why it ended.

        Repeats and keepalives prove nothing: a platform that served a finished session's
        stream again and again would otherwise be reconnected to forever."""
        stream = self._stream
        assert stream is not None
        opened = time.monotonic()
        carried = False
        try:
            batches = sse_line_batches(stream, max_line=MAX_EVENT_LINE, max_event=MAX_EVENT)
            decode = self._decoder.decode
            async for lines in batches:
                parts = [data for line in lines if line and (data := decode(line))]
                if parts:
                    carried = True
                    for part in parts:  # each event's end, where a prompt may show
                        self._watch_for_prompt(part)
                    await self._outbox.put(b"".join(parts))
            reason = "the platform closed the output stream"
        except httpx.HTTPError as error:
            reason = f"the output stream broke ({error_text(error)})"
        except AnswerError as error:  # reconnecting would only fetch more of the same
            raise SessionError(
                f"the terminal output of {self.description} broke off: {error}"
            ) from None
        finally:
            self._stream = None
            await stream.aclose()
        return carried or time.monotonic() - opened >= STABLE_AFTER, reason

    def _finish(self, end: bytes | SessionError) -> None:
        """The session is over: wake the reader, stop everything else."""
        if self._end is None:
            self._end = end
            with contextlib.suppress(asyncio.QueueFull):  # a full outbox: read() sees _end
                self._outbox.put_nowait(end)
        current = asyncio.current_task()
        for task in self._tasks:
            if task is not current:
                task.cancel()
        if self._prompt_timer is not None:
            self._prompt_timer.cancel()
            self._prompt_timer = None

    async def _stop(self) -> None:
        self._finish(b"")
        tasks, self._tasks = self._tasks, []
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._stream is not None:
            await self._stream.aclose()
            self._stream = None
        await self._delete()

    async def _delete(self) -> None:
        session, self.session_id = self.session_id, None
        if session is not None:
            with contextlib.suppress(SessionError):
                await self._request("DELETE", f"{session}/", seconds=CLOSE_TIMEOUT)

    # -- the startup line ----------------------------------------------------------------------

    def _watch_for_prompt(self, data: bytes) -> None:
        if self._prompt_line is None:
            return
        tail = self._prompt_tail + data.decode("utf-8", "replace")
        self._prompt_tail = tail[-_PROMPT_TAIL:]
        if shows_prompt(self._prompt_tail):
            self._type_startup_line()

    def _type_startup_line(self) -> None:
        if self._prompt_timer is not None:
            self._prompt_timer.cancel()
            self._prompt_timer = None
        line, self._prompt_line = self._prompt_line, None
        if line is not None:
            self._queue_input(line + "\r")

    # -- input and size ------------------------------------------------------------------------

    def _queue_input(self, text: str) -> None:
        if text:
            self._input += text
            self._input_ready.set()

    async def _send_input(self) -> None:
        """Post the queued input in order, one request at a time."""
        while True:
            await self._input_ready.wait()
            # Whatever is queued goes now: one key when none was out, or all that was typed
            # while the last request was.
            batch, self._input = self._input[:INPUT_BATCH], self._input[INPUT_BATCH:]
            if not self._input:
                self._input_ready.clear()
            if batch:
                await self._deliver(batch)

    async def _deliver(self, batch: str) -> None:
        """Post `batch` to the current session until it is taken (or the session is gone)."""
        session = self.session_id
        delay = INPUT_RETRY_FIRST
        while session is not None and session == self.session_id:
            try:
                answer = await self._request("POST", f"{session}/input/", {"data": batch})
            except _Unanswered:
                pass
            else:
                status = answer.status
                if answer.is_success or status in _GONE:
                    return
                if not _worth_retrying(status):
                    self._finish(self._refusal(status, "input"))
                    return
            await asyncio.sleep(delay)
            delay = min(delay * 2, INPUT_RETRY_CAP)

    async def _send_sizes(self) -> None:
        """Post the size once it has stayed put for `resize_delay`."""
        while True:
            await self._size_changed.wait()
            while self._size_changed.is_set():
                self._size_changed.clear()
                await asyncio.sleep(self._resize_delay)
            session = self.session_id
            if session is None:
                continue
            size = {"cols": self._size.columns, "rows": self._size.rows}
            try:
                answer = await self._request("POST", f"{session}/resize/", size)
            except _Unanswered:
                continue  # sent again after the reconnect that follows
            if _worth_retrying(answer.status):
                self._size_changed.set()

    # -- requests ------------------------------------------------------------------------------

    async def _headers(self) -> dict[str, str]:
        try:
            return await self._platform.auth_headers()
        except PlatformError as error:
            # Retried like no answer: after the first request this can only be the organization
            # lookup failing for a while; start() shows the message itself.
            raise _Unanswered(str(error)) from None

    async def _request(
        self, method: str, path: str, body: object = None, *, seconds: float = REQUEST_TIMEOUT
    ) -> _Answer:
        headers = await self._headers()
        request = self._http.build_request(
            method, self._sessions_url + path, json=body, headers=headers, timeout=timeout(seconds)
        )
        async with _answer_within(seconds):
            response = await send(self._http, request)
            async with contextlib.aclosing(response):
                return _Answer(response.status_code, await read_body(response, MAX_ANSWER))

    def _check(self, status: int, what: str) -> None:
        """Raise the SessionError a non-2xx status means."""
        if 200 <= status < 300:
            return
        if status in _GONE:
            raise _Gone(f"the terminal session has ended ({status})")
        if _worth_retrying(status):
            raise _Unanswered(f"platform answered {status} to {what}")
        raise self._refusal(status, what)

    def _refusal(self, status: int, what: str) -> SessionError:
        if status in (401, 403):
            return SessionError(AUTHENTICATION_FAILED)
        return SessionError(f"platform refused {what} for {self.assistant_id} ({status})")


@contextlib.asynccontextmanager
async def _answer_within(seconds: float) -> AsyncIterator[None]:
    """Raise _Unanswered when the request inside gets no answer in time, or none at all."""
    # `from None`: an httpx error holds the request, and so the token in its headers.
    try:
        async with asyncio.timeout(seconds):
            yield
    except (TimeoutError, httpx.TimeoutException):
        raise _Unanswered(f"platform timed out after {seconds:g} s") from None
    except httpx.HTTPError as error:
        raise _Unanswered(f"platform unreachable: {error_text(error)}") from None
    except AnswerError as error:
        raise SessionError(f"platform answer refused: {error}") from None


def _worth_retrying(status: int) -> bool:
    return status == 429 or status >= 500


def _session_id(body: bytes) -> str:
    try:
        answer = json.loads(body)
    except (ValueError, RecursionError):
        answer = None
    if isinstance(answer, dict):
        for key in ("session_id", "id"):
            value = answer.get(key)
            if (isinstance(value, str) and value) or type(value) is int:
                return quote(str(value), safe="")
    raise SessionError("platform sent no terminal session id")
