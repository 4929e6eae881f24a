"""roost's hook in the agents' own settings: installed, taken out again, and checked.

The files are the user's (Claude Code's and Gemini CLI's settings.json, Codex's config.toml), so
every change keeps what is theirs: roost's entries are merged in beside the user's own hooks and
unknown keys, and recognised again only by their command (`roost hook AGENT`: argv[0] named
`roost`, then `hook` and the agent). Installing twice changes nothing; uninstalling leaves the
file meaning what it meant before (what roost emptied, it removes). A change is planned first
(`Change`: the text before and after, shown as a diff), then applied only if the file still
holds what was read: a copy is kept beside it (`<file>.roost-backup-<UTC time>`, same mode) and
the new text is written aside and renamed, keeping the file's mode (a symlinked file is written
where the link points). A file that is not valid JSON or TOML is refused, never rewritten.

Codex runs a single `notify` program. When the user has one, roost's takes its place and runs
it after itself (`roost hook codex --then THEIRS...`); uninstalling puts theirs back. TOML is
edited as text (only a one-line top-level `notify = [...]`), then parsed again to check that the
file means exactly what was intended, everything else equal.

Hooks that would not run are said so: Claude Code's managed settings may allow only managed
hooks (`allowManagedHooksOnly`) and any settings may set `disableAllHooks`; Gemini CLI's
`hooksConfig.enabled` may be false or its `hooksConfig.disabled` name roost's hook.
"""

from __future__ import annotations

import copy
import difflib
import json
import os
import re
import shlex
import stat
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from services.agents.hook import THEN
from services.agents.model import Agent
from services.core.errors import RoostError
from services.core.files import FileError, parse_json, read_text

MAX_SETTINGS = 4 * 1024 * 1024
"""An agent's settings file larger than this is not one roost edits."""
CLAUDE_EVENTS = (
    "SessionStart",
    "UserPromptSubmit",
    "PreToolUse",
    "PostToolUse",
    "PostToolUseFailure",
    "PermissionRequest",
    "Notification",
    "Stop",
    "StopFailure",
    "SessionEnd",
)
GEMINI_EVENTS = (
    "SessionStart",
    "BeforeAgent",
    "BeforeTool",
    "AfterTool",
    "Notification",
    "AfterAgent",
    "SessionEnd",
)
CODEX_KEY = "notify"
CLAUDE_TIMEOUT_SECONDS = 10
GEMINI_TIMEOUT_MS = 10_000
"""Gemini CLI counts a hook's timeout in milliseconds, Claude Code in seconds."""
GEMINI_HOOK_NAME = "roost"
"""The name Gemini CLI shows, and `/hooks disable` takes."""
CLAUDE_MANAGED = (
    Path("/etc/claude-code/managed-settings.json"),
    Path("/Library/Application Support/ClaudeCode/managed-settings.json"),
)
"""Where administrators put Claude Code's managed settings (Linux, macOS)."""


class HookError(RoostError):
    """An agent's settings cannot be changed as asked; the message names the file."""


@dataclass(frozen=True)
class AgentFiles:
    """The settings file of each agent, and Claude Code's managed settings."""

    claude: Path
    codex: Path
    gemini: Path
    claude_managed: tuple[Path, ...] = CLAUDE_MANAGED

    @classmethod
    def resolve(cls, environ: Mapping[str, str]) -> AgentFiles:
        """Each agent's user settings, as it finds them (`$CLAUDE_CONFIG_DIR`, `$CODEX_HOME`)."""
        home = Path(environ.get("HOME") or Path.home())
        claude = environ.get("CLAUDE_CONFIG_DIR")
        codex = environ.get("CODEX_HOME")
        return cls(
            claude=(Path(claude).expanduser() if claude else home / ".claude") / "settings.json",
            codex=(Path(codex).expanduser() if codex else home / ".codex") / "config.toml",
            gemini=home / ".gemini" / "settings.json",
        )

    def of(self, agent: Agent) -> Path:
        return {Agent.CLAUDE: self.claude, Agent.CODEX: self.codex, Agent.GEMINI: self.gemini}[
            agent
        ]


@dataclass(frozen=True)
class Change:
    """What installing or uninstalling does to one agent's settings file."""

    agent: Agent
    path: Path
    """The file written (where a symlink points)."""
    before: str | None
    """Its text as read; None when it does not exist."""
    after: str
    summary: str
    """One line: what changes, or why nothing does."""
    restrictions: tuple[str, ...] = ()
    """Why the agent would not run roost's hook, whatever the file says."""

    @property
    def changed(self) -> bool:
        return self.after != (self.before or "")

    def diff(self) -> list[str]:
        """The change as a unified diff, one line per item (without line ends)."""
        return [
            line.rstrip("\r\n")
            for line in difflib.unified_diff(
                _lines(self.before or ""),
                _lines(self.after),
                fromfile=f"{self.path}" if self.before is not None else "/dev/null",
                tofile=f"{self.path}",
            )
        ]


@dataclass(frozen=True)
class HookStatus:
    """Whether roost's hook is in one agent's settings, and whether it would run."""

    agent: Agent
    path: Path
    exists: bool
    events: tuple[str, ...]
    """The events roost's hook is installed for (Codex: `notify`)."""
    missing: tuple[str, ...]
    """The events roost installs that lack it."""
    restrictions: tuple[str, ...] = ()
    chained: tuple[str, ...] = ()
    """Codex: the user's own notify program, run after roost's."""
    problem: str = ""
    """Why the file cannot be read (then nothing else is known)."""

    @property
    def installed(self) -> bool:
        return bool(self.events)


def roost_executable(argv0: str, python: str) -> Path:
    """The `roost` command to name in the agents' settings: the one running when it runs as
    `roost`, else the one beside this Python (a virtual environment's bin)."""
    running = Path(argv0)
    if running.name == "roost" and running.parent != Path():
        return running.absolute()
    beside = Path(python).parent / "roost"
    if beside.exists():
        return beside
    raise HookError(f"cannot find the roost command (not run as roost, and none beside {python})")


def is_roost_hook(argv: Sequence[object], agent: str) -> bool:
    """Whether a command line is roost's hook for `agent`."""
    return (
        len(argv) >= 3
        and all(isinstance(word, str) for word in argv[:3])
        and Path(str(argv[0])).name == "roost"
        and list(argv[1:3]) == ["hook", agent]
    )


def events_of(agent: Agent) -> tuple[str, ...]:
    return {Agent.CLAUDE: CLAUDE_EVENTS, Agent.GEMINI: GEMINI_EVENTS, Agent.CODEX: (CODEX_KEY,)}[
        agent
    ]


def plan_install(agent: Agent, files: AgentFiles, roost: Path) -> Change:
    """The change that puts roost's hook (`roost hook AGENT`) in `agent`'s settings.

    Raises FileError when the file cannot be read or parsed, HookError when it cannot be
    changed safely.
    """
    path, before = _read(files.of(agent))
    command = [str(roost), "hook", str(agent)]
    if agent is Agent.CODEX:
        document = _toml(path, before)
        current = _notify(path, document)
        if current is not None and is_roost_hook(current, agent):
            wanted = command + current[3:]
        else:
            wanted = command + ([THEN, *current] if current else [])
        after = _set_notify(path, before, document, wanted)
        then = f", then {shlex.join(wanted[4:])}" if len(wanted) > 4 else ""
        summary = f"codex runs {shlex.join(command)}{then}"
        restrictions: tuple[str, ...] = ()
    else:
        data = _json(path, before)
        after = _json_text(before, data, _with_roost(path, data, agent, shlex.join(command)))
        summary = f"{agent} runs {shlex.join(command)} on {len(events_of(agent))} events"
        restrictions = _restrictions(agent, files, data)
    if after == (before or ""):
        summary = f"{agent}: already installed in {path}: nothing to change"
    return Change(agent, path, before, after, summary, restrictions)


def plan_uninstall(agent: Agent, files: AgentFiles) -> Change:
    """The change that takes every roost hook out of `agent`'s settings, and what roost
    emptied doing so. Raises FileError or HookError as `plan_install` does."""
    path, before = _read(files.of(agent))
    if before is None:
        return Change(agent, path, None, "", f"{agent}: {path} does not exist: nothing to change")
    if agent is Agent.CODEX:
        document = _toml(path, before)
        current = _notify(path, document)
        after = before
        summary = "codex: roost's notify removed"
        if current is not None and is_roost_hook(current, agent):
            chained = current[4:] if current[3:4] == [THEN] else []
            after = _set_notify(path, before, document, chained or None)
            if chained:
                summary = f"codex: notify is {shlex.join(chained)} again"
    else:
        data = _json(path, before)
        after = _json_text(before, data, _without_roost(data, agent))
        summary = f"{agent}: roost's hooks removed"
    if after == before:
        summary = f"{agent}: roost's hook is not in {path}: nothing to change"
    return Change(agent, path, before, after, summary)


def apply(change: Change, now: datetime) -> Path | None:
    """Write `change` if its file still holds what was read; returns the backup copy made of
    the file as it was (None when it did not exist). Raises HookError."""
    _, current = _read(change.path)
    if current != change.before:
        raise HookError(f"{change.path} changed since roost read it: run the command again")
    mode = 0o600  # settings may hold credentials (environment variables for the agent)
    backup = None
    try:
        if change.before is not None:
            mode = stat.S_IMODE(change.path.stat().st_mode)
            backup = _backup(change.path, change.before, mode, now)
        else:
            change.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        _write(change.path, change.after, mode)
    except OSError as error:
        raise HookError(f"cannot write {change.path}: {error.strerror}") from None
    return backup


def status(agent: Agent, files: AgentFiles) -> HookStatus:
    """Where roost's hook is installed for `agent`, and what would keep it from running."""
    wanted = events_of(agent)
    try:
        path, text = _read(files.of(agent))
        if agent is Agent.CODEX:
            current = _notify(path, _toml(path, text)) or []
            ours = is_roost_hook(current, agent)
            chained = tuple(current[4:]) if ours and current[3:4] == [THEN] else ()
            events = wanted if ours else ()
            return HookStatus(
                agent, path, text is not None, events, wanted[len(events) :], (), chained
            )
        data = _json(path, text)
    except RoostError as error:
        return HookStatus(agent, files.of(agent), True, (), wanted, problem=str(error))
    hooks = data.get("hooks")
    events = tuple(
        event
        for event, groups in (hooks.items() if isinstance(hooks, dict) else ())
        if isinstance(groups, list) and _strip_groups(groups, agent) != groups
    )
    missing = tuple(event for event in wanted if event not in events)
    return HookStatus(
        agent, path, text is not None, events, missing, _restrictions(agent, files, data)
    )


def _lines(text: str) -> list[str]:
    """`text`'s lines with their ends, split at "\n" only (TOML's and JSON's line end; a
    string may hold the other characters `str.splitlines` splits at)."""
    pieces = text.split("\n")
    return [piece + "\n" for piece in pieces[:-1]] + ([pieces[-1]] if pieces[-1] else [])


# Reading and writing -------------------------------------------------------------------------


def _read(path: Path) -> tuple[Path, str | None]:
    """The file to edit (a symlink's target) and its text, None when it does not exist."""
    target = path.resolve() if path.is_symlink() else path
    try:
        return target, read_text(target, MAX_SETTINGS)
    except FileNotFoundError:
        return target, None


def _backup(path: Path, text: str, mode: int, now: datetime) -> Path:
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    for attempt in range(100):
        backup = path.with_name(
            f"{path.name}.roost-backup-{stamp}" + (f"-{attempt}" * bool(attempt))
        )
        try:
            fd = os.open(backup, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
        except FileExistsError:
            continue
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as file:
            os.fchmod(file.fileno(), mode)  # the umask must not widen or narrow it
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        return backup
    raise HookError(f"cannot name a backup of {path}: too many made at {stamp}")


def _write(path: Path, text: str, mode: int) -> None:
    temp = path.with_name(f".{path.name}.roost-{os.getpid()}.tmp")
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as file:
            os.fchmod(file.fileno(), mode)
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        temp.replace(path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


# JSON settings (Claude Code, Gemini CLI) -----------------------------------------------------


def _json(path: Path, text: str | None) -> dict[str, Any]:
    if text is None or not text.strip():
        return {}
    data = parse_json(path, text)
    if not isinstance(data, dict):
        raise FileError(path, "not a JSON object")
    return data


def _json_text(before: str | None, data: dict[str, Any], changed: dict[str, Any]) -> str:
    """`changed` as the file's text, indented as `before` was; `before` itself when nothing
    changed (its formatting stays)."""
    if before is not None and changed == data:
        return before
    indent = re.search(r"^([ \t]+)\S", before or "", re.MULTILINE)
    return json.dumps(changed, indent=indent[1] if indent else 2, ensure_ascii=False) + "\n"


def _entry(agent: Agent, command: str) -> dict[str, Any]:
    if agent is Agent.GEMINI:
        return {
            "name": GEMINI_HOOK_NAME,
            "type": "command",
            "command": command,
            "timeout": GEMINI_TIMEOUT_MS,
        }
    return {"type": "command", "command": command, "timeout": CLAUDE_TIMEOUT_SECONDS}


def _group(agent: Agent, command: str) -> dict[str, Any]:
    # Claude Code: an empty matcher matches every tool and every event; Gemini CLI: no matcher.
    hooks = {"hooks": [_entry(agent, command)]}
    return hooks if agent is Agent.GEMINI else {"matcher": "", **hooks}


def _with_roost(path: Path, data: dict[str, Any], agent: Agent, command: str) -> dict[str, Any]:
    changed = copy.deepcopy(data)
    hooks = changed.setdefault("hooks", {})
    if not isinstance(hooks, dict):
        raise HookError(f'{path}: "hooks" is not an object: roost leaves it alone')
    group = _group(agent, command)
    for event in events_of(agent):
        groups = hooks.setdefault(event, [])
        if not isinstance(groups, list):
            raise HookError(f'{path}: "hooks"."{event}" is not a list: roost leaves it alone')
        others = _strip_groups(groups, agent)
        ours = [g for g in groups if g not in others]
        if ours != [group]:
            groups[:] = [*others, group]
    return changed


def _without_roost(data: dict[str, Any], agent: Agent) -> dict[str, Any]:
    changed = copy.deepcopy(data)
    hooks = changed.get("hooks")
    if not isinstance(hooks, dict):
        return changed
    for event, groups in list(hooks.items()):
        if not isinstance(groups, list):
            continue
        kept = _strip_groups(groups, agent)
        if kept != groups:
            if kept:
                hooks[event] = kept
            else:
                del hooks[event]
            if not hooks:
                del changed["hooks"]
    return changed


def _strip_groups(groups: list[Any], agent: Agent) -> list[Any]:
    """`groups` without roost's hooks; a group left with no hook goes too."""
    kept = []
    for group in groups:
        inner = group.get("hooks") if isinstance(group, dict) else None
        if isinstance(inner, list):
            others = [hook for hook in inner if not _is_roost_entry(hook, agent)]
            if len(others) != len(inner):
                if not others:
                    continue
                group = {**group, "hooks": others}
        kept.append(group)
    return kept


def _is_roost_entry(hook: object, agent: Agent) -> bool:
    if not isinstance(hook, dict) or not isinstance(hook.get("command"), str):
        return False
    try:
        return is_roost_hook(shlex.split(hook["command"]), agent)
    except ValueError:
        return False


def _restrictions(agent: Agent, files: AgentFiles, data: dict[str, Any]) -> tuple[str, ...]:
    found = []
    if agent is Agent.CLAUDE:
        if data.get("disableAllHooks") is True:
            found.append(f"{files.claude} sets disableAllHooks: no hook runs")
        for managed in files.claude_managed:
            try:
                policy = parse_json(managed, read_text(managed, MAX_SETTINGS))
            except FileNotFoundError:
                continue
            except FileError as error:
                found.append(f"managed settings unreadable: {error}")
                continue
            if not isinstance(policy, dict):
                continue
            if policy.get("allowManagedHooksOnly") is True:
                found.append(f"{managed} sets allowManagedHooksOnly: only managed hooks run")
            if policy.get("disableAllHooks") is True:
                found.append(f"{managed} sets disableAllHooks: no hook runs")
    elif agent is Agent.GEMINI:
        config = data.get("hooksConfig")
        if isinstance(config, dict):
            if config.get("enabled") is False:
                found.append(f"{files.gemini} sets hooksConfig.enabled to false: no hook runs")
            disabled = config.get("disabled")
            if isinstance(disabled, list) and GEMINI_HOOK_NAME in disabled:
                found.append(f"{files.gemini}: hooksConfig.disabled names {GEMINI_HOOK_NAME}")
    return tuple(found)


# Codex's config.toml -------------------------------------------------------------------------

_NOTIFY_LINE = re.compile(r"""[ \t]*(?:notify|"notify"|'notify')[ \t]*=""")


def _toml(path: Path, text: str | None) -> dict[str, Any]:
    if text is None:
        return {}
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise FileError(path, f"invalid TOML: {error}") from None
    except (RecursionError, ValueError):
        raise FileError(path, "invalid TOML: nested too deeply, or a number too long") from None


def _notify(path: Path, document: dict[str, Any]) -> list[str] | None:
    value = document.get(CODEX_KEY)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(word, str) for word in value):
        raise HookError(f"{path}: notify is not a list of strings: roost leaves it alone")
    return value


def _set_notify(
    path: Path, before: str | None, document: dict[str, Any], notify: list[str] | None
) -> str:
    """`before` with its top-level `notify` set to `notify` (None: removed), checked by
    parsing it again; raises HookError when it cannot be done by editing one line."""
    if document.get(CODEX_KEY) == notify:
        return before or ""
    lines = _lines(before or "")
    number = _notify_line(lines) if CODEX_KEY in document else None
    if number is None and CODEX_KEY in document:
        raise HookError(f"{path}: cannot find its top-level notify line: change it by hand")
    if number is not None:
        line = lines[number]
        body = line.rstrip("\r\n")
        comment = _comment(body, document[CODEX_KEY])
        if comment is None:
            raise HookError(
                f"{path}, line {number + 1}: notify spans several lines; roost edits only a"
                f" one-line notify = [...]: put it on one line, or set it by hand to"
                f" {_toml_array(notify or [])}"
            )
        if notify is None:
            del lines[number]
        else:
            indent = body[: len(body) - len(body.lstrip())]
            lines[number] = f"{indent}notify = {_toml_array(notify)}{comment}{line[len(body) :]}"
    else:
        # Before any table, after the comments that open the file (or first, when the file is
        # all comments): always top level, and no line of theirs changes.
        at = 0
        while at < len(lines) and (not lines[at].strip() or lines[at].lstrip().startswith("#")):
            at += 1
        lines.insert(at if at < len(lines) else 0, f"notify = {_toml_array(notify or [])}\n")
    after = "".join(lines)
    expected = {key: value for key, value in document.items() if key != CODEX_KEY}
    if notify is not None:
        expected[CODEX_KEY] = notify
    try:
        parsed = tomllib.loads(after)
    except tomllib.TOMLDecodeError:
        parsed = None
    if parsed != expected:
        raise HookError(f"{path}: roost could not change notify safely: change it by hand")
    return after


def _notify_line(lines: list[str]) -> int | None:
    """The number of the top-level `notify = ...` line (before the first table)."""
    for number, line in enumerate(lines):
        if line.lstrip().startswith("["):
            return None
        if _NOTIFY_LINE.match(line):
            return number
    return None


def _comment(body: str, value: object) -> str | None:
    """What follows the array on a one-line `notify = [...]` (a comment and the spaces before
    it, or ""); None when the line alone does not hold the whole array."""
    cuts = [len(body)] + [at for at, char in enumerate(body) if char == "#"]
    for cut in sorted(cuts):
        try:
            if tomllib.loads(body[:cut]).get(CODEX_KEY) == value:
                return body[len(body[:cut].rstrip()) :]
        except tomllib.TOMLDecodeError:
            continue
    return None


def _toml_array(words: Sequence[str]) -> str:
    # A JSON string is a TOML basic string, once DEL (which TOML wants escaped) is.
    return (
        "["
        + ", ".join(json.dumps(w, ensure_ascii=False).replace("\x7f", "\\u007f") for w in words)
        + "]"
    )
