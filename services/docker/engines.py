"""The Docker engines roost watches, and reaching them with the docker SDK.

Blocking (the SDK is); callers run it in a worker thread. With no engine configured, the one
the environment names (`DOCKER_HOST`, else the default socket) is used, as `docker` would.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

import docker
from docker.context import ContextAPI
from docker.errors import DockerException
from docker.tls import TLSConfig

from services.core.config import Config
from services.core.errors import RoostError

DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"


@dataclass(frozen=True)
class Engine:
    """A Docker engine by name: a URL, or a Docker context resolved when connecting."""

    name: str
    host: str | None
    context: str | None
    implicit: bool
    """True for the default socket, used when neither config.toml nor `DOCKER_HOST` names an
    engine: a machine without Docker is normal, so its absence is not an error."""

    def describe(self) -> str:
        return f"context {self.context}" if self.context else str(self.host)


@dataclass(frozen=True)
class EngineProbe:
    engine: Engine
    version: str | None
    error: str | None

    @property
    def reachable(self) -> bool:
        return self.error is None


def configured_engines(config: Config, environ: Mapping[str, str] | None = None) -> list[Engine]:
    """config.toml's engines (else the environment's), and the engine of every `[[hosts]]`
    host with `docker = true`, named after it."""
    env = os.environ if environ is None else environ
    on_hosts = [
        Engine(h.name, ssh_url(h.ssh), None, implicit=False) for h in config.hosts if h.docker
    ]
    if not config.docker_engines:
        host = env.get("DOCKER_HOST")
        return [Engine("default", host or DEFAULT_DOCKER_HOST, None, implicit=not host), *on_hosts]
    engines = [Engine(e.name, e.host, e.context, implicit=False) for e in config.docker_engines]
    return engines + on_hosts


def ssh_url(destination: str) -> str:
    """The `ssh://` URL docker reaches a host's engine by: docker runs the system ssh with it
    (`docker system dial-stdio` there), so the user's ssh config applies (`[ssh] config` and
    roost's shared connections do not: docker passes ssh no options)."""
    return destination if destination.startswith("ssh://") else f"ssh://{destination}"


def connect(engine: Engine, timeout: int = 5) -> docker.DockerClient:
    """A client for `engine`; raises RoostError when its context does not exist."""
    host: str | None = engine.host
    tls: TLSConfig | bool = False
    if engine.context is not None:
        found = ContextAPI.get_context(engine.context)
        if found is None:
            raise RoostError(f"no Docker context named {engine.context!r}")
        host, tls = found.Host, found.TLSConfig or False
    use_ssh = bool(host and host.startswith("ssh://"))
    # use_ssh_client shells out to `ssh` (honouring ~/.ssh/config) instead of needing paramiko.
    return docker.DockerClient(base_url=host, tls=tls, timeout=timeout, use_ssh_client=use_ssh)


def probe(engine: Engine, timeout: int = 3) -> EngineProbe:
    """Ask the engine its version; any failure becomes a short error text, never an exception."""
    try:
        client = connect(engine, timeout)
        try:
            version = client.version().get("Version")
        finally:
            client.close()
    except (DockerException, RoostError, OSError) as error:
        return EngineProbe(engine, None, describe_error(error))
    return EngineProbe(engine, str(version) if version else "unknown", None)


def describe_error(error: BaseException) -> str:
    """The most specific cause of a docker SDK failure, in one short line."""
    cause: BaseException = error
    while cause.__cause__ is not None or cause.__context__ is not None:
        cause = cause.__cause__ or cause.__context__  # type: ignore[assignment]
    for specific, words in (
        (FileNotFoundError, "no engine socket there"),
        (PermissionError, "permission denied on the engine socket"),
        (ConnectionRefusedError, "connection refused"),
        (TimeoutError, "timed out"),
    ):
        if isinstance(cause, specific) or isinstance(error, specific):
            return words
    text = " ".join(str(error).split())
    return text[:200] or type(error).__name__
