"""Reading files roost does not own (the lockfile, config.toml, tokens, PID files): the one way.

Any of them may be hostile or broken: a symlink to /dev/zero, a FIFO nobody writes, gigabytes,
100,000 levels of nesting, a 5,000-digit number. Every read goes through here, so each is
bounded the same way: the open never blocks (O_NONBLOCK; symlinks are followed, then `fstat`
refuses anything but a regular file), at most `limit` bytes are read, and every failure,
parse errors included, is a `FileError` naming the file, the problem and, when known, the line.
A file missing is not a failure: `FileNotFoundError` goes through for the caller to decide.
"""

from __future__ import annotations

import json
import os
import re
import stat
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from services.core.errors import RoostError

MAX_DEPTH = 64
"""Nesting deeper than this is refused: no file roost reads nests past a handful of levels,
and recursive code (json.dumps on a write, the detail panel's walk) must not run out of stack."""

MAX_PID_BYTES = 64
"""A PID file holds one number."""

_DEEP_TOML_KEY = re.compile(
    # MAX_DEPTH dots in a row between bare or quoted key parts, counted from a chain's start
    # only (the lookbehind), so a long document is scanned once.
    r"""(?<![A-Za-z0-9_.'"-])(?:(?:[A-Za-z0-9_-]+|"[^"\n]*"|'[^'\n]*')[ \t]*\.[ \t]*)"""
    + f"{{{MAX_DEPTH},}}"
)
_CONTAINERS = (dict, list)
_TOO_MANY_DIGITS = f"a number has more than {sys.get_int_max_str_digits()} digits"

_KINDS = {
    stat.S_IFDIR: "a directory",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFIFO: "a FIFO",
    stat.S_IFSOCK: "a socket",
}


class FileError(RoostError):
    """A file roost needs cannot be used; the message names it and says why."""

    def __init__(
        self, path: Path, problem: str, line: int | None = None, column: int | None = None
    ) -> None:
        self.path, self.problem, self.line, self.column = path, problem, line, column
        where = str(path)
        if line is not None:
            where += f", line {line}" + (f", column {column}" if column is not None else "")
        super().__init__(f"{where}: {problem}")


def read_bytes(
    path: Path, limit: int, *, refuse: Callable[[Path, int], str | None] | None = None
) -> bytes:
    """The whole of `path`, a regular file of at most `limit` bytes.

    `refuse`, given the path and the open file's mode, says why the file must not be read
    (a secret others can read), or None. Raises FileNotFoundError when it is absent,
    FileError for anything else that goes wrong.
    """
    fd = open_regular(path)
    try:
        mode = os.fstat(fd).st_mode
        refused = refuse(path, mode) if refuse else None
        if refused:
            raise FileError(path, refused)
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, limit + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as error:
        raise FileError(path, f"cannot be read ({error.strerror})") from None
    finally:
        os.close(fd)
    if size > limit:
        raise FileError(path, f"is larger than {_size(limit)}, too large to be what roost expects")
    return b"".join(chunks)


def open_regular(path: Path) -> int:
    """A descriptor of `path` open for reading, never blocking on the open: a regular file only
    (symlinks followed). The caller closes it. Raises FileNotFoundError when it is absent,
    FileError for anything else."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except FileNotFoundError:
        raise
    except OSError as error:
        raise FileError(path, f"cannot be read ({error.strerror})") from None
    try:
        mode = os.fstat(fd).st_mode
    except OSError as error:
        os.close(fd)
        raise FileError(path, f"cannot be read ({error.strerror})") from None
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = _KINDS.get(stat.S_IFMT(mode), "not a file")
        raise FileError(path, f"cannot be read ({kind}, not a regular file)")
    return fd


def read_text(path: Path, limit: int) -> str:
    """`read_bytes` decoded as UTF-8; raises FileError when it is not UTF-8 text."""
    raw = read_bytes(path, limit)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        raise FileError(path, f"not UTF-8 text ({error.reason})", line) from None


def read_json(path: Path, limit: int) -> object:
    """The JSON value in `path`, nested at most MAX_DEPTH deep; raises FileError otherwise."""
    return parse_json(path, read_text(path, limit))


def parse_json(path: Path, text: str) -> object:
    """`text`, the contents of `path`, as JSON; every way it can fail is a FileError."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise FileError(path, error.msg, error.lineno, error.colno) from None
    except RecursionError:
        raise FileError(path, f"nested more than {MAX_DEPTH} levels deep") from None
    except ValueError:  # an integer longer than Python converts
        raise FileError(path, _TOO_MANY_DIGITS) from None
    if _too_deep(value):
        raise FileError(path, f"nested more than {MAX_DEPTH} levels deep")
    return value


def read_toml(path: Path, limit: int) -> dict[str, Any]:
    """The TOML document in `path`; raises FileError when it is not one."""
    text = read_text(path, limit)
    # tomllib takes time quadratic in the parts of a dotted key (100,000 parts: minutes).
    deep_key = _DEEP_TOML_KEY.search(text)
    if deep_key:
        line = text.count("\n", 0, deep_key.start()) + 1
        raise FileError(path, f"a key is nested more than {MAX_DEPTH} levels deep", line)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise FileError(path, f"invalid TOML: {error}") from None
    except RecursionError:
        raise FileError(path, "invalid TOML: nested too deeply") from None
    except ValueError:  # an integer longer than Python converts
        raise FileError(path, _TOO_MANY_DIGITS) from None


def _too_deep(value: object) -> bool:
    """Whether arrays and objects nest more than MAX_DEPTH deep in a parsed JSON value: one
    level at a time, without recursion (json.loads makes only exact dicts and lists)."""
    level = [value]
    for _ in range(MAX_DEPTH):
        level = [
            child
            for item in level
            if type(item) in _CONTAINERS
            for child in (item.values() if type(item) is dict else item)  # type: ignore[attr-defined]
            if type(child) in _CONTAINERS
        ]
        if not level:
            return False
    return True


def _size(limit: int) -> str:
    for unit, size in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if limit >= size:
            return f"{limit / size:g} {unit}"
    return f"{limit} bytes"
