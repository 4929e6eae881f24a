"""Where the Vellum CLI keeps its files, and reading its lockfile (PROTOCOL.md section 1).

roost shares these files with the Vellum CLI, so the rules here follow the reference exactly:
environment name, lockfile candidates and the config dir that holds the tokens.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PRODUCTION = "production"
KNOWN_ENVIRONMENTS = (PRODUCTION, "staging", "dev", "test", "local")


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
            name, source = env_file.read_text(encoding="utf-8").strip(), str(env_file)
        except (OSError, UnicodeDecodeError):
            name = ""
    if not name:
        return PRODUCTION, "default", None
    if name not in KNOWN_ENVIRONMENTS:
        known = ", ".join(KNOWN_ENVIRONMENTS)
        warning = f"unknown Vellum environment {name!r} from {source} (known: {known})"
        return PRODUCTION, source, f"{warning}; using production"
    return name, source, None


@dataclass(frozen=True)
class LockfileProblem:
    """Why one lockfile candidate was skipped. The file itself is never rewritten."""

    path: Path
    problem: str
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        where = str(self.path)
        if self.line is not None:
            where += f", line {self.line}, column {self.column}"
        return f"{where}: {self.problem}"


@dataclass(frozen=True)
class LockfileRead:
    """The outcome of reading the lockfile: the file used (if any) and the candidates skipped."""

    path: Path | None
    data: dict[str, Any]
    problems: tuple[LockfileProblem, ...]

    @property
    def assistants(self) -> list[Any]:
        entries = self.data.get("assistants")
        return entries if isinstance(entries, list) else []


def read_lockfile(environment: VellumEnvironment) -> LockfileRead:
    """Take the first candidate that parses as a JSON object; report every one that does not."""
    problems: list[LockfileProblem] = []
    for path in environment.lockfile_candidates:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            continue
        except UnicodeDecodeError as error:
            problems.append(LockfileProblem(path, f"not UTF-8 text ({error.reason})"))
            continue
        except OSError as error:
            problems.append(LockfileProblem(path, f"cannot be read ({error.strerror})"))
            continue
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            problems.append(LockfileProblem(path, error.msg, error.lineno, error.colno))
            continue
        if not isinstance(data, dict):
            problems.append(
                LockfileProblem(path, f"the top level is {_json_type(data)}, not an object")
            )
            continue
        return LockfileRead(path, data, tuple(problems))
    return LockfileRead(None, {}, tuple(problems))


def _json_type(value: object) -> str:
    names = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")
