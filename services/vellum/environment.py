"""Where the Vellum CLI keeps its files (docs/protocol.md §1); vellum/lockfile.py reads them.

roost shares these files with the Vellum CLI, so the rules here follow the reference exactly:
environment name, lockfile candidates and the config dir that holds the tokens.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from services.core.files import FileError, read_text
from services.core.safe_text import printable

PRODUCTION = "production"
KNOWN_ENVIRONMENTS = (PRODUCTION, "staging", "dev", "test", "local")
MAX_ENVIRONMENT_BYTES = 256
"""The environment file holds one name."""


@dataclass(frozen=True)
class VellumEnvironment:
    """The Vellum environment in effect and the files that belong to it."""

    name: str
    source: str
    """Where the name came from: `VELLUM_ENVIRONMENT`, the environment file, or the default."""
    warning: str | None
    config_dir: Path
    lockfile_candidates: tuple[Path, ...]
    """Read in this order; the first that parses as a JSON object wins. The first is written."""

    @property
    def platform_token_file(self) -> Path:
        return self.config_dir / "platform-token"

    @property
    def guardian_token_files(self) -> tuple[Path, ...]:
        """The guardian token of every assistant that has one, sorted."""
        return tuple(sorted(self.config_dir.glob("assistants/*/guardian-token.json")))

    @classmethod
    def resolve(cls, environ: Mapping[str, str] | None = None) -> VellumEnvironment:
        env = os.environ if environ is None else environ
        home = Path(env.get("HOME") or Path.home())
        xdg_config = Path(env.get("XDG_CONFIG_HOME") or home / ".config")

        name, source, warning = _environment_name(env, xdg_config)
        config_dir = xdg_config / ("vellum" if name == PRODUCTION else f"vellum-{name}")
        lockfile_dir = env.get("VELLUM_LOCKFILE_DIR", "").strip()
        candidates: tuple[Path, ...]
        if name == PRODUCTION:
            directory = Path(lockfile_dir) if lockfile_dir else home
            candidates = (directory / ".vellum.lock.json", directory / ".vellum.lockfile.json")
        else:
            directory = Path(lockfile_dir) if lockfile_dir else config_dir
            candidates = (directory / "lockfile.json",)
        return cls(name, source, warning, config_dir, candidates)


def _environment_name(env: Mapping[str, str], xdg_config: Path) -> tuple[str, str, str | None]:
    name, source = env.get("VELLUM_ENVIRONMENT", "").strip(), "VELLUM_ENVIRONMENT"
    if not name:
        env_file = xdg_config / "vellum" / "environment"
        try:
            name, source = read_text(env_file, MAX_ENVIRONMENT_BYTES).strip(), str(env_file)
        except (OSError, FileError):
            name = ""
    if not name:
        return PRODUCTION, "default", None
    if name not in KNOWN_ENVIRONMENTS:
        known = ", ".join(KNOWN_ENVIRONMENTS)
        warning = f"unknown Vellum environment '{printable(name)}' from {source} (known: {known})"
        return PRODUCTION, source, f"{warning}; using production"
    return name, source, None
