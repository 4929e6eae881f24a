"""Logging to roost's rotated log file, and never to the terminal.

While the TUI runs, anything written to the terminal would corrupt the screen, so the root logger
gets exactly one handler: the file. When the file cannot be written, records are dropped
silently (`roost doctor` reports an unwritable log dir).
"""

from __future__ import annotations

import logging
import logging.handlers
from pathlib import Path
from typing import Any

from services.core.safe_text import printable, scrub

MAX_BYTES = 1024 * 1024
BACKUPS = 3
CHATTY = ("httpx", "httpcore")
"""Libraries that log every request at INFO: a fleet's health probes would fill the log in
seconds (it rotates at MAX_BYTES), and each line costs a probe a scrubbed, written record.
Their warnings still come."""


def configure_logging(log_file: Path, level: int = logging.INFO) -> None:
    """Send every log record to `log_file` (rotated), opened with the first record."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    root.setLevel(level)
    handler = _RotatingFile(
        log_file, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8", delay=True
    )
    handler.setFormatter(
        _SafeFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%Y-%m-%d %H:%M:%S")
    )
    root.addHandler(handler)
    for name in CHATTY:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))


class _SafeFormatter(logging.Formatter):
    """Every record's text scrubbed of secrets and escaped, whoever logged it: a formatter
    rather than a filter, so the traceback (which quotes exception messages) is cleaned too.
    A message stays on its line; only a traceback keeps its line breaks."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = printable(scrub(record.message))
        return super().formatMessage(record)

    def formatException(self, ei: Any) -> str:
        return printable(scrub(super().formatException(ei)), keep_newlines=True)

    def formatStack(self, stack_info: str) -> str:
        return printable(scrub(stack_info), keep_newlines=True)


class _RotatingFile(logging.handlers.RotatingFileHandler):
    """Makes the log directory with the first record, and never reports its own failures on the
    terminal (the logging default prints them to stderr, over the TUI)."""

    def _open(self):  # type: ignore[no-untyped-def]
        Path(self.baseFilename).parent.mkdir(parents=True, exist_ok=True)
        return super()._open()

    def handleError(self, record: logging.LogRecord) -> None:
        pass
