"""A fast loopback peer for benchmarks: many healthy runtimes, in its own process.

Run: python -m tests.perf.fleet_peer COUNT DELAY_SECONDS LOCKFILE_DIR
Writes a Vellum lockfile of COUNT `custom` assistants into LOCKFILE_DIR, prints its URL, and
answers every `GET /rt/<name>/v1/health` with a healthy JSON body after DELAY_SECONDS, until its
stdin closes. Like an idle runtime (docs/protocol.md §7) it keeps each `/v1/events` stream open
with a heartbeat every 7 s and has nothing pending (a stream answered with a health body and
closed would have roost reconnecting all the time, and measure that).
The test peer (tests/peers/vellum.py) is a thread per connection and tops out near
300 requests a second here, which would measure the peer instead of roost: this one is a plain
asyncio server with keep-alive, good for several thousand.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

HEARTBEAT_SECONDS = 7.0


def json_answer(value: object) -> bytes:
    body = json.dumps(value).encode()
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )


ANSWER = json_answer({"status": "healthy", "version": "1.0"})
NOTHING_PENDING = json_answer({"interactions": []})
EVENTS = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"


async def serve(delay: float) -> None:
    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                if not head.startswith(b"GET /rt/"):
                    writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                    continue
                path = head.split(b" ", 2)[1]
                if path.endswith(b"/v1/events"):
                    writer.write(EVENTS)
                    while True:  # until roost closes it
                        await asyncio.sleep(HEARTBEAT_SECONDS)
                        writer.write(b": heartbeat\n\n")
                        await writer.drain()
                if b"/v1/pending-interactions" in path:
                    writer.write(NOTHING_PENDING)
                    continue
                if delay:
                    await asyncio.sleep(delay)
                writer.write(ANSWER)
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(connection, "127.0.0.1", 0)
    count, directory = int(sys.argv[1]), Path(sys.argv[3])
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    entries = [
        {
            "assistantId": f"agent-{i:04d}",
            "cloud": "custom",
            "runtimeUrl": f"{url}/rt/agent-{i:04d}",
        }
        for i in range(count)
    ]
    (directory / ".vellum.lock.json").write_text(json.dumps({"assistants": entries}))
    print(url, flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    server.close()


if __name__ == "__main__":
    asyncio.run(serve(float(sys.argv[2])))
