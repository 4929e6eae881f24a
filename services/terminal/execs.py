"""Running one command to completion in an assistant's environment (`roost exec`).

Every kind answers with the same `ExecResult`: on this machine a subprocess, in a Docker
assistant an exec, in a managed one a terminal session read with sentinels (docs/protocol.md
§5). A command that outlives its timeout is stopped; the result keeps what it printed
and the exit code is 124, as coreutils' `timeout` reports it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import BinaryIO

from services.core.errors import RoostError

TIMEOUT_EXIT = 124
DEFAULT_TIMEOUT = 30.0


@dataclass(frozen=True)
class ExecResult:
    exit_code: int
    """The command's exit status (128 + N after signal N; TIMEOUT_EXIT when it timed out)."""
    stdout: bytes = b""
    stderr: bytes = b""
    """Empty where the command ran on a terminal, which merges both streams into `stdout`."""
    timed_out: bool = False
    dropped: int = 0
    """Bytes of output left out from the front, where only the last ones are kept."""


def run_here(
    argv: Sequence[str],
    *,
    timeout: float,
    environ: Mapping[str, str] | None = None,
    stdout: BinaryIO | None = None,
    stderr: BinaryIO | None = None,
) -> ExecResult:
    """`argv` on this machine, its output passed straight to `stdout`/`stderr` as it comes
    (the caller's own streams when None). Raises RoostError when it cannot start."""
    try:
        process = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            env=None if environ is None else dict(environ),
            start_new_session=True,  # so a timeout stops the command's children too
        )
    except OSError as error:
        raise RoostError(f"cannot run {argv[0]!r}: {error.strerror or error}") from None
    try:
        status = process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        return ExecResult(TIMEOUT_EXIT, timed_out=True)
    return ExecResult(128 - status if status < 0 else status)
