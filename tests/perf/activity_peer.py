"""A fast loopback peer for the activity benchmark: many runtimes' event streams, in its own
process.

Run: python -m tests.perf.activity_peer COUNT
Prints its URL, then serves until its stdin closes, for the assistants `a0` .. `a<COUNT-1>`:
- `GET /rt/a<i>/v1/events`: an endless Server-Sent-Events stream framed as docs/protocol.md §7
  (chunked; `event: assistant_event`, `id:`, `data: <envelope>`, a blank line), with a
  `: heartbeat` comment every HEARTBEAT seconds; a subscriber that lets more than DROP_AFTER
  bytes pile up is dropped, as the runtime does;
- `GET /rt/a<i>/v1/pending-interactions`: `{"interactions": []}` (nothing is pending before the
  events start);
- `GET /rt/a<i>/v1/health`: healthy, so a console following these probes them green;
- `GET /control/start?rate=R&confirm_every=K`: from now on R events a second in all, dealt to
  the open streams in turn; every K-th a `confirmation_request`, which that stream's next
  event resolves (`interaction_resolved`), so the inbox stays small however long it runs. The
  others are `assistant_activity_state` events with each conversation's `activityVersion`
  rising, through thinking, tool_running and streaming;
- `GET /control/heartbeats?on=0|1`: stop or resume the heartbeats (a reader's memory is
  measured while nothing arrives);
- `GET /control/stop`, `GET /control/stats[?streams=N]` (once N streams are open): the counts so
  far as JSON (`streams` open, `sent`, `confirmations`, `heartbeats`, `dropped`, and the peer's
  own `cpu_ms`).

Every event says when it was sent, on the monotonic clock (which every process of one machine
shares): `sentAt` in its message, and again where roost shows it: in full in a `statusText`
(`#<tag> step <n> sent <t>`) and a confirmation's `requestId` (`bench-<i>-<n>-<t>`), and as a
`#<tag>` short enough to survive a narrow column (`tag`: the send time in milliseconds, modulo
36**3, in base 36) at the start of the `statusText` and in the confirmation's tool name
(`bash#<tag>`), so a reader can tell each event's latency from what it shows, even on screen.

The test peer (tests/peers/vellum.py) is a thread per connection; this one is a plain asyncio
server that writes thousands of events a second without measuring itself instead of the reader.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
import time
import uuid
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

HEARTBEAT = 5.0
DROP_AFTER = 1 << 20
"""Bytes waiting in a stream's send buffer beyond which its reader counts as too slow."""
TICK = 0.002
"""Seconds between two looks at what is due: the spacing of events within a second."""
PHASES = ("thinking", "tool_running", "streaming")
SSE_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n"
)


def answer(status: str, body: bytes = b"") -> bytes:
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


HEALTHY = answer("200 OK", json.dumps({"status": "healthy", "version": "1.0"}).encode())
NOTHING_PENDING = answer("200 OK", json.dumps({"interactions": []}).encode())
NOT_FOUND = answer("404 Not Found")


TAG_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"
TAG_PERIOD = len(TAG_DIGITS) ** 3
"""Milliseconds after which tags repeat (46.6 s): far beyond any latency measured."""


def tag(sent: float) -> str:
    """Three base-36 digits: the monotonic time `sent`, in milliseconds modulo TAG_PERIOD."""
    value = int(sent * 1000) % TAG_PERIOD
    return "".join(TAG_DIGITS[value // 36**power % 36] for power in (2, 1, 0))


def tag_age(tagged: str, now: float) -> float:
    """Seconds since the moment `tagged` (a `tag`) was made, as of the monotonic time `now`."""
    made = int(tagged, 36)
    return ((int(now * 1000) - made) % TAG_PERIOD) / 1000


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


HEARTBEAT_CHUNK = chunk(b": heartbeat\n\n")


@dataclass
class Stream:
    """One open event stream: an assistant's conversation and where it stands."""

    index: int
    writer: asyncio.StreamWriter
    version: int = 0
    turn: int = 0
    unresolved: str | None = None
    """A confirmation this stream asked for and has not resolved yet."""

    @property
    def conversation(self) -> str:
        return f"c{self.index}"


@dataclass
class Peer:
    count: int
    streams: dict[int, Stream] = field(default_factory=dict)
    sent: int = 0
    confirmations: int = 0
    heartbeats: int = 0
    dropped: int = 0
    emitting: asyncio.Task[None] | None = None
    beating: bool = True
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    """Set (and replaced) whenever a stream opens or closes."""

    def stats(self) -> dict[str, int]:
        return {
            "streams": len(self.streams),
            "sent": self.sent,
            "confirmations": self.confirmations,
            "heartbeats": self.heartbeats,
            "dropped": self.dropped,
            "cpu_ms": int(time.process_time() * 1000),
        }

    def write(self, stream: Stream, data: bytes) -> None:
        transport = stream.writer.transport
        if transport.is_closing():
            return
        if transport.get_write_buffer_size() > DROP_AFTER:
            self.dropped += 1
            self.streams.pop(stream.index, None)
            self.opened_or_closed()
            transport.abort()
            return
        stream.writer.write(data)

    def event(self, stream: Stream, message: dict[str, object]) -> None:
        envelope = {
            "id": str(uuid.uuid4()),
            "assistantId": f"a{stream.index}",
            "conversationId": stream.conversation,
            "emittedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "message": message,
        }
        frame = f"event: assistant_event\nid: {envelope['id']}\ndata: {json.dumps(envelope)}\n\n"
        self.write(stream, chunk(frame.encode()))
        self.sent += 1

    def next_event(self, stream: Stream, confirm: bool) -> None:
        """The stream's next event: resolving its confirmation, asking one, or a new phase."""
        sent = time.monotonic()
        stream.turn += 1
        if stream.unresolved is not None:
            request, stream.unresolved = stream.unresolved, None
            self.event(
                stream,
                {
                    "type": "interaction_resolved",
                    "requestId": request,
                    "conversationId": stream.conversation,
                    "state": "approved",
                    "kind": "confirmation",
                    "sentAt": sent,
                },
            )
            return
        if confirm:
            request = f"bench-{stream.index}-{stream.turn}-{sent:.6f}"
            stream.unresolved = request
            self.confirmations += 1
            self.event(
                stream,
                {
                    "type": "confirmation_request",
                    "requestId": request,
                    "conversationId": stream.conversation,
                    "toolName": f"bash#{tag(sent)}",
                    "input": {"command": f"make step-{stream.turn}"},
                    "riskLevel": "low",
                    "executionTarget": "sandbox",
                    "allowlistOptions": [],
                    "scopeOptions": [],
                    "sentAt": sent,
                },
            )
            return
        stream.version += 1
        self.event(
            stream,
            {
                "type": "assistant_activity_state",
                "conversationId": stream.conversation,
                "activityVersion": stream.version,
                "phase": PHASES[stream.turn % len(PHASES)],
                "anchor": "assistant_turn",
                "reason": "tool_started",
                "statusText": f"#{tag(sent)} step {stream.turn} sent {sent:.6f}",
                "sentAt": sent,
            },
        )

    async def emit(self, rate: float, confirm_every: int) -> None:
        """`rate` events a second, dealt to the open streams in turn, until cancelled."""
        loop = asyncio.get_running_loop()
        started, due_before = loop.time(), 0
        turns = itertools.cycle(range(self.count))
        while True:
            due = int((loop.time() - started) * rate)
            for number in range(due_before + 1, due + 1):
                stream = None
                for _ in range(self.count):
                    stream = self.streams.get(next(turns))
                    if stream is not None:
                        break
                if stream is None:
                    break
                self.next_event(stream, confirm=confirm_every > 0 and number % confirm_every == 0)
            due_before = due
            await asyncio.sleep(TICK)

    async def beat(self) -> None:
        """A heartbeat on every stream every HEARTBEAT seconds, spread over the interval."""
        slices = 50
        for tick in itertools.count():
            for stream in list(self.streams.values()) if self.beating else ():
                if stream.index % slices == tick % slices:
                    self.write(stream, HEARTBEAT_CHUNK)
                    self.heartbeats += 1
            await asyncio.sleep(HEARTBEAT / slices)

    def opened_or_closed(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()

    async def control(self, path: str, query: dict[str, list[str]]) -> bytes:
        if path == "/control/start":
            if self.emitting is not None:
                self.emitting.cancel()
            rate = float(query["rate"][0])
            confirm_every = int(query.get("confirm_every", ["0"])[0])
            self.emitting = asyncio.create_task(self.emit(rate, confirm_every))
        elif path == "/control/stop" and self.emitting is not None:
            self.emitting.cancel()
            self.emitting = None
        elif path == "/control/heartbeats":
            self.beating = query["on"][0] == "1"
        elif path == "/control/stats" and "streams" in query:
            while len(self.streams) < int(query["streams"][0]):
                await self.changed.wait()
        return answer("200 OK", json.dumps(self.stats()).encode())

    async def connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                target = head.split(b" ", 2)[1].decode()
                url = urlsplit(target)
                if url.path.startswith("/control/"):
                    writer.write(await self.control(url.path, parse_qs(url.query)))
                    continue
                parts = url.path.split("/")  # "", "rt", "a<i>", "v1", what
                index = int(parts[2][1:]) if len(parts) == 5 and parts[2][1:].isdigit() else -1
                if parts[1:2] != ["rt"] or not 0 <= index < self.count:
                    writer.write(NOT_FOUND)
                elif parts[4] == "events":
                    await self.stream(index, reader, writer)
                    return
                elif parts[4] == "pending-interactions":
                    writer.write(NOTHING_PENDING)
                elif parts[4] == "health":
                    writer.write(HEALTHY)
                else:
                    writer.write(NOT_FOUND)
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def stream(
        self, index: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Serve one event stream until the reader goes (a newer one for the same assistant
        replaces it, as a reconnect does)."""
        stream = Stream(index, writer)
        replaced = self.streams.get(index)
        if replaced is not None:
            replaced.writer.transport.abort()
        self.streams[index] = stream
        self.opened_or_closed()
        writer.write(SSE_HEAD)
        try:
            while await reader.read(4096):
                pass
        finally:
            if self.streams.get(index) is stream:
                del self.streams[index]
                self.opened_or_closed()


async def serve(count: int) -> None:
    peer = Peer(count)
    server = await asyncio.start_server(peer.connection, "127.0.0.1", 0, backlog=4096)
    print(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", flush=True)
    beating = asyncio.create_task(peer.beat())
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    beating.cancel()
    server.close()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1])))
