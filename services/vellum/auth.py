"""How roost authenticates to an assistant's runtime (docs/protocol.md sections 1-4).

Which credentials a runtime gets depends on its kind: a managed assistant's runtime takes the
platform's headers (`PlatformClient.auth_headers`: an API key as a bearer, or a session token
with its organization); every other runtime takes a bearer token: a configured token file, else
the guardian token the Vellum CLI leased, else the lockfile's `bearerToken` (`bearer_token`).
The health probe, the backup and anything else that calls a runtime go through here, so they
send the same credentials.

roost reads tokens, never writes or leases them: on a 401 a bearer is read again from disk (the
Vellum CLI may have renewed it meanwhile), the platform headers are built again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol
from urllib.parse import quote

from services.core.errors import RoostError
from services.vellum.environment import VellumEnvironment
from services.vellum.platform import NOT_LOGGED_IN, PlatformClient, PlatformError
from services.vellum.tokens import TokenFileError, check_token, read_guardian_token, read_token_file


class AuthUnavailable(RoostError):
    """No credentials to send (not logged in, an unreadable token file)."""


class RuntimeCredentials(Protocol):
    """What the fleet knows about one runtime's credentials (`HealthTarget` is one)."""

    @property
    def assistant_id(self) -> str: ...

    @property
    def managed(self) -> bool:
        """Managed by the platform: platform headers instead of a bearer."""
        ...

    @property
    def token_file(self) -> str | None:
        """A file holding the bearer token (a config runtime's token file)."""
        ...

    @property
    def inline_token(self) -> str | None:
        """The lockfile entry's `bearerToken`: a secret, never shown."""
        ...

    @property
    def lockfile(self) -> str:
        """The file `inline_token` comes from, for errors about it."""
        ...

    @property
    def url(self) -> str:
        """The runtime's base URL."""
        ...


def bearer_token(credentials: RuntimeCredentials, environment: VellumEnvironment) -> str | None:
    """A configured token file, else the guardian token the Vellum CLI leased, else the
    lockfile's `bearerToken` (docs/protocol.md §2).

    Raises TokenFileError when the token found cannot be used (unreadable, open to others, a
    line break in it...): sending none instead would only hide why the runtime refuses roost.
    """
    if credentials.token_file:
        return read_token_file(Path(credentials.token_file))
    guardian = read_guardian_token(environment, credentials.assistant_id)
    if guardian:
        return guardian.access_token
    if credentials.inline_token is None:
        return None
    where = f"{credentials.lockfile}: bearerToken of {credentials.assistant_id}"
    return check_token(credentials.inline_token, where)


class RuntimeAuth(Protocol):
    """The headers that authenticate roost to one runtime."""

    async def headers(self) -> Mapping[str, str]:
        """Raises AuthUnavailable."""
        ...

    async def refresh(self) -> Mapping[str, str]:
        """Fresh headers after the runtime refused the last ones (401). Raises AuthUnavailable."""
        ...


def runtime_auth(
    credentials: RuntimeCredentials,
    environment: VellumEnvironment,
    connect_platform: Callable[[], PlatformClient | None],
) -> RuntimeAuth:
    """The credentials for `credentials`' runtime, by kind. `connect_platform` makes a client
    with the platform token read now (None: logged out)."""
    if credentials.managed:
        return PlatformAuth(connect_platform)
    return BearerAuth(lambda: bearer_token(credentials, environment))


class BearerAuth:
    """A guardian (or configured) bearer token, read from its file when first needed.

    On a 401 the reference CLI leases a new guardian token (`POST /v1/guardian/init`) and saves
    it over the Vellum CLI's token file. roost never writes the Vellum CLI's tokens, so
    `refresh` reads the file again instead: the Vellum CLI may have renewed it meanwhile.
    """

    def __init__(self, read_token: Callable[[], str | None]) -> None:
        self._read_token = read_token
        self._headers: Mapping[str, str] | None = None

    async def headers(self) -> Mapping[str, str]:
        if self._headers is None:
            return await self.refresh()
        return self._headers

    async def refresh(self) -> Mapping[str, str]:
        try:
            token = self._read_token()
        except TokenFileError as error:
            raise AuthUnavailable(str(error)) from None
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self._headers


class PlatformAuth:
    """The platform headers (API key, or session token plus organization) for managed runtimes.

    `refresh` connects anew: the token file is read again (after a `vellum login`) and the
    organization id looked up again, as the reference does by invalidating its cache.
    """

    def __init__(self, connect: Callable[[], PlatformClient | None]) -> None:
        self._connect = connect
        self._client: PlatformClient | None = None

    async def headers(self) -> Mapping[str, str]:
        if self._client is None:
            return await self.refresh()
        return await self._headers(self._client)

    async def refresh(self) -> Mapping[str, str]:
        try:
            self._client = self._connect()
        except TokenFileError as error:
            raise AuthUnavailable(str(error)) from None
        if self._client is None:
            raise AuthUnavailable(NOT_LOGGED_IN)
        return await self._headers(self._client)

    @staticmethod
    async def _headers(client: PlatformClient) -> Mapping[str, str]:
        try:
            return await client.auth_headers()
        except PlatformError as error:
            raise AuthUnavailable(str(error)) from None


@dataclass(frozen=True)
class RuntimeEndpoint:
    """One assistant's runtime as roost calls it: where, how its paths are formed, and the
    credentials it takes. Backups, the activity stream and answers all go through one."""

    assistant_id: str
    name: str
    runtime_url: str
    managed: bool
    """Managed by the platform: platform headers and per-assistant paths
    (`<base>/v1/assistants/<id>/<path>`); otherwise `<runtimeUrl>/v1/<path>` with a bearer."""
    auth: RuntimeAuth = field(compare=False, repr=False)

    @classmethod
    def of(
        cls,
        credentials: RuntimeCredentials,
        name: str,
        environment: VellumEnvironment,
        connect_platform: Callable[[], PlatformClient | None],
    ) -> RuntimeEndpoint:
        """From the fleet's health target: the same URL and credentials as its health probe.
        `connect_platform` makes a client with the platform token read now (None: logged out)."""
        auth = runtime_auth(credentials, environment, connect_platform)
        return cls(credentials.assistant_id, name, credentials.url, credentials.managed, auth)

    def url(self, path: str) -> str:
        """The URL of the runtime's `path` (`migrations/export`, `events`, ...)."""
        base = self.runtime_url.rstrip("/")
        if self.managed:
            return f"{base}/v1/assistants/{quote(self.assistant_id, safe='')}/{path}"
        return f"{base}/v1/{path}"
