"""The Vellum tokens roost reads, never writes (docs/protocol.md §1).

The platform token logs roost in to the Vellum platform; a guardian token authenticates it to one
local or docker assistant. Both are secrets: the dataclasses holding them mask the value in their
repr, and no message here ever quotes one.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass
from pathlib import Path

from services.core.errors import RoostError
from services.core.files import FileError, read_bytes, read_json
from services.core.safe_text import printable, remember_secret
from services.vellum.environment import VellumEnvironment

API_KEY_PREFIX = "vak_"
MAX_TOKEN_FILE_BYTES = 64 * 1024
MAX_TOKEN_LENGTH = 8192
"""Longer than any token the Vellum CLI or a gateway issues, and than headers servers take."""
_MASK = "'***'"


class TokenFileError(RoostError):
    """A token file exists but roost refuses to use it; the message says how to fix it."""


@dataclass(frozen=True)
class PlatformToken:
    value: str
    path: Path

    @property
    def is_api_key(self) -> bool:
        """API keys are sent as a bearer; anything else is a session token."""
        return self.value.startswith(API_KEY_PREFIX)

    def __repr__(self) -> str:
        return f"PlatformToken(value={_MASK}, path={str(self.path)!r})"


@dataclass(frozen=True)
class GuardianToken:
    access_token: str
    expires_at: str | None
    """`accessTokenExpiresAt` exactly as the Vellum CLI stored it."""
    path: Path

    def __repr__(self) -> str:
        return (
            f"GuardianToken(access_token={_MASK}, expires_at={self.expires_at!r}, "
            f"path={str(self.path)!r})"
        )


def read_platform_token(path: Path) -> PlatformToken | None:
    """The platform token in `path` (the Vellum CLI's `platform-token`, or the one config.toml
    names), or None when there is none (not logged in).

    Raises TokenFileError when the file is unreadable or open to group or others (not 0600).
    """
    value = read_token_file(path)
    return PlatformToken(value, path) if value else None


def read_token_file(path: Path) -> str | None:
    """A one-line secret; None when the file is absent or empty. Raises TokenFileError when it
    is unreadable, open to group or others (a secret must be mode 0600), or not a token."""
    try:
        raw = read_bytes(path, MAX_TOKEN_FILE_BYTES, refuse=_exposure)
    except FileNotFoundError:
        return None
    except FileError as error:
        raise TokenFileError(str(error)) from None
    try:
        value = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise TokenFileError(f"{path}: cannot be read (not UTF-8 text)") from None
    return check_token(value, str(path)) if value else None


def check_token(value: str, where: str) -> str:
    """`value`, a token read from `where` (a file, or a file and a field), if it can be sent
    in a header: printable ASCII without spaces, at most MAX_TOKEN_LENGTH characters.

    Raises TokenFileError naming `where` and the problem, never the value. A token that passes
    is hidden from every error text from now on (services.core.safe_text.scrub).
    """
    problem = token_problem(value)
    if problem:
        raise TokenFileError(f"{where}: the token {problem}; log in again or fix the file")
    remember_secret(value)
    return value


def token_problem(value: str) -> str | None:
    """What makes `value` unusable as a token, in words that never quote it; None if nothing."""
    if not value:
        return "is empty"
    if len(value) > MAX_TOKEN_LENGTH:
        return f"is longer than {MAX_TOKEN_LENGTH} characters"
    for position, char in enumerate(value, 1):
        if "!" <= char <= "~":
            continue
        if char in "\r\n":
            what = "a line break"
        elif char.isspace():
            what = "a space"
        elif char < " " or char == "\x7f":
            what = "a control character"
        else:
            what = "a character that is not ASCII"
        return f"contains {what} (character {position} of {len(value)})"
    return None


def secret_file_problem(path: Path) -> str | None:
    """Why the secret in `path` is not private (mode 0600), or None when it is or is absent."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return None
    except OSError as error:
        return f"{path}: cannot be read ({error.strerror})"
    exposed = _exposure(path, mode)
    return f"{path}: {exposed}" if exposed else None


def _exposure(path: Path, mode: int) -> str | None:
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        return f"open to other users (mode {stat.S_IMODE(mode):04o}); run: chmod 600 {path}"
    return None


def read_guardian_token(environment: VellumEnvironment, assistant_id: str) -> GuardianToken | None:
    """The guardian token the Vellum CLI leased for an assistant; None if absent or without an
    `accessToken`.

    Raises TokenFileError when the file cannot be read or parsed, or its `accessToken` cannot
    be sent (a line break, say): falling back to another token would hide why the assistant
    refuses roost.
    """
    if assistant_id in ("", ".", "..") or "/" in assistant_id:
        return None  # the id names a directory: never let it point outside `assistants/`
    path = environment.config_dir / "assistants" / assistant_id / "guardian-token.json"
    try:
        data = read_json(path, MAX_TOKEN_FILE_BYTES)
    except FileNotFoundError:
        return None
    except FileError as error:
        raise TokenFileError(str(error)) from None
    if not isinstance(data, dict):
        return None
    access_token, expires_at = data.get("accessToken"), data.get("accessTokenExpiresAt")
    if not isinstance(access_token, str) or not access_token:
        return None
    check_token(access_token, f"{path}: accessToken")
    expires_at = printable(expires_at) if isinstance(expires_at, str) else None
    return GuardianToken(access_token, expires_at, path)
