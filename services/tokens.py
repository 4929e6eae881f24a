"""The Vellum tokens roost reads, never writes (PROTOCOL.md section 1).

The platform token logs roost in to the Vellum platform; a guardian token authenticates it to one
local or docker assistant. Both are secrets: the dataclasses holding them mask the value in their
repr, and no message here ever quotes one.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from services.errors import RoostError
from services.vellum import VellumEnvironment

API_KEY_PREFIX = "vak_"
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
    is unreadable or open to group or others (a secret must be mode 0600)."""
    try:
        with path.open(encoding="utf-8") as file:
            exposed = _exposure(path, os.fstat(file.fileno()).st_mode)
            if exposed:
                raise TokenFileError(exposed)
            value = file.read().strip()
    except FileNotFoundError:
        return None
    except OSError as error:
        raise TokenFileError(f"{path}: cannot be read ({error.strerror})") from None
    except UnicodeDecodeError:
        raise TokenFileError(f"{path}: cannot be read (not UTF-8 text)") from None
    return value or None


def secret_file_problem(path: Path) -> str | None:
    """Why the secret in `path` is not private (mode 0600), or None when it is or is absent."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return None
    except OSError as error:
        return f"{path}: cannot be read ({error.strerror})"
    return _exposure(path, mode)


def _exposure(path: Path, mode: int) -> str | None:
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        return (
            f"{path} is open to other users (mode {stat.S_IMODE(mode):04o}); run: chmod 600 {path}"
        )
    return None


def read_guardian_token(environment: VellumEnvironment, assistant_id: str) -> GuardianToken | None:
    """The guardian token the Vellum CLI leased for an assistant; None if absent or malformed."""
    if assistant_id in ("", ".", "..") or "/" in assistant_id:
        return None  # the id names a directory: never let it point outside `assistants/`
    path = environment.config_dir / "assistants" / assistant_id / "guardian-token.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(data, dict):
        return None
    access_token, expires_at = data.get("accessToken"), data.get("accessTokenExpiresAt")
    if not isinstance(access_token, str) or not access_token:
        return None
    return GuardianToken(access_token, expires_at if isinstance(expires_at, str) else None, path)
