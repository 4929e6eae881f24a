"""Following a Docker engine's container events, so changes show up at once without polling.

Blocking, for a thread: `EngineEvents.run` reads the engine's event stream and calls `changed`
for every container event, and once after each (re)connection, since events may have been
missed while the stream was down. A dropped stream is reconnected with backoff (1 s, doubling,
up to 30 s) until `close` is called from another thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from docker.errors import DockerException
from requests.exceptions import RequestException

from services.core.errors import RoostError
from services.docker.engines import Engine, connect, describe_error

log = logging.getLogger(__name__)

MAX_RECONNECT_DELAY = 30.0


class EngineEvents:
    def __init__(self, engine: Engine, changed: Callable[[], None]) -> None:
        self.engine = engine
        self.changed = changed
        self._closed = threading.Event()
        self._stream: Any = None

    def run(self) -> None:
        delay = 1.0
        while not self._closed.is_set():
            try:
                self._follow()
                delay = 1.0  # it was up: start the backoff over
            except (DockerException, RoostError, RequestException, OSError) as error:
                if not self._closed.is_set():
                    log.info("docker %s: events: %s", self.engine.name, describe_error(error))
            if self._closed.wait(delay):
                return
            delay = min(delay * 2, MAX_RECONNECT_DELAY)

    def _follow(self) -> None:
        client = connect(self.engine)
        try:
            stream = client.events(decode=True, filters={"type": "container"})
            self._stream = stream
            if self._closed.is_set():
                return
            log.info("docker %s: following container events", self.engine.name)
            self.changed()  # whatever happened while nobody was listening
            for event in stream:
                if self._closed.is_set():
                    return
                log.debug(
                    "docker %s: %s %s", self.engine.name, event.get("Action"), event.get("id")
                )
                self.changed()
        finally:
            self._stream = None
            client.close()

    def close(self) -> None:
        """Stop following: ends `run` in its thread (closing the stream unblocks the read)."""
        self._closed.set()
        stream = self._stream
        if stream is not None:
            try:
                stream.close()
            except Exception:  # closing a half-dead connection may fail in many ways
                log.debug("docker %s: closing the event stream", self.engine.name, exc_info=True)
