"""The Vellum lockfile: read it, choose an assistant, write it safely (docs/protocol.md §1).

The Vellum CLI reads and writes the same file, so writes follow its protocol exactly: the
`<lockfile>.lock` directory lock, a temporary file renamed into place, 2-space JSON. Where the
reference loses data, roost does better: every unknown key and entry field is kept, an entry it
cannot use is listed with its problems instead of dropped, a file that does not parse is never
rewritten, and every read-modify-write happens inside the lock so no writer loses another's work.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import stat
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import Any

from services.core.errors import RoostError
from services.core.files import MAX_PID_BYTES, FileError, read_json, read_text
from services.core.processes import process_alive
from services.core.safe_text import is_printable, printable
from services.vellum.environment import VellumEnvironment

MANAGED = "vellum"
"""The `cloud` of assistants that live in the Vellum platform."""

MASK = "••••••••"
"""Shown instead of a secret: the same for every secret, so not even its length shows."""

SECRET_FIELDS = frozenset({"bearerToken", "resources.signingKey", "guardianBootstrapSecret"})
"""The secrets docs/protocol.md names; any key containing one of `_SECRET_WORDS` is secret too."""
_SECRET_WORDS = ("token", "secret", "signingkey", "password", "apikey")
_SECRET_WORD = re.compile("|".join(_SECRET_WORDS), re.IGNORECASE)
"""Any of `_SECRET_WORDS` in a key, in any case: one search per key (10,000 entries' keys are
looked at in a first render)."""
_IDENTIFYING = ("assistantId", "cloud", "runtimeUrl", "localUrl")

MAX_LOCKFILE_BYTES = 8 << 20
"""About 16,000 assistants; a file larger than this is not a lockfile."""

LOCK_ATTEMPTS = 10
LOCK_RETRY_SECONDS = 0.025
STALE_LOCK_SECONDS = 5.0
"""A lock this old may be broken, but only when its owner process is gone."""
HARD_STALE_LOCK_SECONDS = 600.0
"""Past this age a lock is broken whatever its owner PID says: PIDs get reused."""


class LockfileBusy(RoostError):
    """Another writer held the lock for all of the attempts; trying again later may succeed."""


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
            where += f", line {self.line}"
        if self.column is not None:
            where += f", column {self.column}"
        return f"{where}: {self.problem}"


@dataclass(frozen=True)
class LockfileEntry:
    """One element of `assistants`, read leniently: what is wrong with it is in `problems`."""

    assistant_id: str
    """`assistantId`, or `#<position>` (1-based) when it has none, so rows stay distinct."""
    name: str | None
    """`name`, else the older `assistantName`, as the reference shows it."""
    cloud: str
    """`cloud` when set, else inferred: `project` means gcp, `sshUser` custom, otherwise local."""
    runtime_url: str | None
    local_url: str | None
    species: str | None
    hatched_at: str | None
    resources: Mapping[str, Any] = field(repr=False)
    container_info: Mapping[str, Any] | None
    raw: Mapping[str, Any] = field(repr=False)
    """The entry as read (empty when it is not an object); holds secrets, so never in a repr."""
    problems: tuple[str, ...]

    @property
    def display_name(self) -> str:
        return self.name or self.assistant_id

    @cached_property
    def masked(self) -> tuple[tuple[str, str], ...]:
        """`masked_fields` of this entry, computed once (the fleet is rebuilt often)."""
        return tuple(masked_fields(self))

    @property
    def base_url(self) -> str | None:
        if self.cloud == "local":
            return self.local_url or self.runtime_url
        return self.runtime_url

    @classmethod
    def parse(cls, value: object, position: int) -> LockfileEntry:
        """Read the entry at `position` (1-based) of `assistants`; never fails."""
        fallback_id = f"#{position}"
        if not isinstance(value, dict):
            problem = f"entry {position} is not an object ({_json_type(value)})"
            empty: Mapping[str, Any] = MappingProxyType({})
            return cls(
                fallback_id, None, "local", None, None, None, None, empty, None, empty, (problem,)
            )
        problems: list[str] = []
        id_problem = _string_problem(value, "assistantId")
        if id_problem:
            problems.append(id_problem)
        cloud = _resolve_cloud(value)
        url_problem = _string_problem(value, "runtimeUrl")
        # Managed assistants are reached through the platform, so they may lack a runtimeUrl.
        if url_problem and (cloud != MANAGED or "runtimeUrl" in value):
            problems.append(url_problem)
        # What names or reaches the assistant is used as it is, so it cannot be escaped for
        # the screen: with a control character in it, the entry is unusable.
        unsafe = [key for key in _IDENTIFYING if not is_printable(_text(value, key) or "")]
        problems += [f"{key} contains control characters" for key in unsafe]
        resources = value.get("resources")
        container_info = value.get("containerInfo")
        name = (_text(value, "name") or "").strip() or (_text(value, "assistantName") or "").strip()
        return cls(
            assistant_id=(
                fallback_id if id_problem or "assistantId" in unsafe else value["assistantId"]
            ),
            name=printable(name) or None,
            cloud=printable(cloud),
            runtime_url=_text(value, "runtimeUrl"),
            local_url=_text(value, "localUrl"),
            species=_printable_text(value, "species"),
            hatched_at=_printable_text(value, "hatchedAt"),
            resources=MappingProxyType(resources if isinstance(resources, dict) else {}),
            container_info=(
                MappingProxyType(container_info) if isinstance(container_info, dict) else None
            ),
            raw=MappingProxyType(value),
            problems=tuple(problems),
        )


def _text(entry: Mapping[str, Any], key: str) -> str | None:
    value = entry.get(key)
    return value if isinstance(value, str) else None


def _printable_text(entry: Mapping[str, Any], key: str) -> str | None:
    value = _text(entry, key)
    return None if value is None else printable(value)


def _string_problem(entry: Mapping[str, Any], key: str) -> str | None:
    if key not in entry:
        return f"no {key}"
    if not isinstance(entry[key], str):
        return f"{key} is not a string"
    if not entry[key]:
        return f"{key} is empty"
    return None


def _resolve_cloud(entry: Mapping[str, Any]) -> str:
    cloud = entry.get("cloud")
    if isinstance(cloud, str) and cloud:
        return cloud
    if entry.get("project"):
        return "gcp"
    if entry.get("sshUser"):
        return "custom"
    return "local"


def mask(value: str) -> str:
    """The mask for a secret; an empty value stays empty, as there is nothing to hide."""
    return MASK if value else ""


def masked_fields(entry: LockfileEntry) -> list[tuple[str, str]]:
    """Every field of the raw entry as (dotted path, text), in file order, secrets masked.

    A secret key hides its whole value, even an object, so not even its shape shows.
    """
    rows: list[tuple[str, str]] = []
    for key, value in entry.raw.items():
        _add_rows(key, key, value, rows)
    return rows


def _add_rows(path: str, key: str, value: object, rows: list[tuple[str, str]]) -> None:
    if path in SECRET_FIELDS or _SECRET_WORD.search(key):
        rows.append((printable(path), mask(_display(value))))
    elif isinstance(value, dict) and value:
        for child_key, child in value.items():
            _add_rows(f"{path}.{child_key}", child_key, child, rows)
    elif isinstance(value, list) and value:
        for index, child in enumerate(value):
            _add_rows(f"{path}[{index}]", "", child, rows)
    else:
        rows.append((printable(path), _display(value)))


def _display(value: object) -> str:
    return printable(value if isinstance(value, str) else json.dumps(value, ensure_ascii=False))


@dataclass(frozen=True)
class LockfileRead:
    """The outcome of reading the lockfile: the file used (if any) and the candidates skipped."""

    path: Path | None
    data: dict[str, Any] = field(repr=False)
    problems: tuple[LockfileProblem, ...]
    primary: Path
    """The first candidate: where writes go, and the file named when there is none."""

    @cached_property
    def entries(self) -> tuple[LockfileEntry, ...]:
        """Parsed once per read: the same entry objects for as long as the file is unchanged."""
        assistants = self.data.get("assistants")
        if not isinstance(assistants, list):
            return ()
        return tuple(LockfileEntry.parse(value, index) for index, value in enumerate(assistants, 1))

    @property
    def active(self) -> str | None:
        active = self.data.get("activeAssistant")
        return active if isinstance(active, str) and active else None

    @property
    def platform_base_url(self) -> str | None:
        url = self.data.get("platformBaseUrl")
        if not isinstance(url, str):
            return None
        return url.strip() or None


def read_lockfile(environment: VellumEnvironment) -> LockfileRead:
    """Take the first candidate that parses as a JSON object; report every one that does not."""
    primary = environment.lockfile_candidates[0]
    problems: list[LockfileProblem] = []
    for path in environment.lockfile_candidates:
        try:
            data = read_json(path, MAX_LOCKFILE_BYTES)
        except FileNotFoundError:
            continue
        except FileError as error:
            problems.append(LockfileProblem(path, error.problem, error.line, error.column))
            continue
        if not isinstance(data, dict):
            problems.append(
                LockfileProblem(path, f"the top level is {_json_type(data)}, not an object")
            )
            continue
        return LockfileRead(path, data, tuple(problems), primary)
    return LockfileRead(None, {}, tuple(problems), primary)


def _json_type(value: object) -> str:
    names = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


def choose_target(read: LockfileRead, name: str | None) -> LockfileEntry:
    """The assistant a command acts on: `name` (an exact `assistantId`, then a display name),
    else `activeAssistant`, else the only entry. Entries without an id cannot be chosen."""
    where = read.path or read.primary
    if read.problems and read.path is None:
        raise RoostError("; ".join(map(str, read.problems)))
    if read.path is None:
        raise RoostError(f"no Vellum assistants yet: {where} does not exist")
    # Only entries with an assistantId of their own: a "#3" stand-in names nothing on disk.
    choices = [
        entry for entry in read.entries if entry.raw.get("assistantId") == entry.assistant_id
    ]
    if not choices:
        raise RoostError(f"there are no assistants in {where}")
    ids = ", ".join(entry.assistant_id for entry in choices)
    if name is not None:
        for entry in choices:
            if entry.assistant_id == name:
                return entry
        named = [entry for entry in choices if entry.name == name]
        if len(named) == 1:
            return named[0]
        if named:
            same = ", ".join(entry.assistant_id for entry in named)
            raise RoostError(f"{len(named)} assistants are named {name!r} ({same}): use the id")
        raise RoostError(f"no assistant {name!r} in {where}; the choices are: {ids}")
    for entry in choices:
        if entry.assistant_id == read.active:
            return entry
    if len(choices) == 1:
        return choices[0]
    raise RoostError(
        f"{len(choices)} assistants in {where} and none is active; choose one of: {ids}"
    )


@contextmanager
def locked_update(environment: VellumEnvironment) -> Iterator[dict[str, Any]]:
    """Yield the lockfile's data, re-read under the lock, and write it back to the first
    candidate if the block completes and changed it.

    The data comes from whichever candidate parses, so a legacy file is migrated to the first
    candidate by the first write, as the reference does. Raises RoostError, writing nothing, when
    a candidate that exists does not parse: roost never replaces a file it could not read.
    """
    target = environment.lockfile_candidates[0]
    with _lock(target):
        read = read_lockfile(environment)
        if read.problems:
            raise RoostError(f"{read.problems[0]} (roost will not write until it is fixed)")
        assistants = read.data.get("assistants", [])
        if not isinstance(assistants, list):
            raise RoostError(
                f"{read.path}: assistants is {_json_type(assistants)}, not an array "
                "(roost will not replace it)"
            )
        before = _serialize(read.data)
        yield read.data
        text = _serialize(read.data)
        if text != before:
            _write(target, text)


def set_active(environment: VellumEnvironment, assistant_id: str) -> None:
    with locked_update(environment) as data:
        if assistant_id not in map(_id_of, _assistants(data)):
            target = environment.lockfile_candidates[0]
            raise RoostError(f"no assistant {assistant_id!r} in {target}")
        data["activeAssistant"] = assistant_id


@dataclass(frozen=True)
class SyncResult:
    added: tuple[str, ...]
    removed: tuple[str, ...]


def sync_managed(
    environment: VellumEnvironment, listed: Sequence[tuple[str, str]], platform_url: str
) -> SyncResult:
    """Make the managed (`cloud: vellum`) entries match a platform listing of active assistants,
    given as (id, name) pairs. New entries get `runtimeUrl` = the platform URL and `species`
    vellum, as the Vellum CLI writes them (it ignores entries without a `runtimeUrl`).

    Call it only after a successful (2xx) listing: an empty `listed` removes every managed entry.
    New assistants are appended, so the order the user knows stays put; entries of every other
    kind are left alone, and nothing is written when nothing changes.
    """
    listed_ids = {assistant_id for assistant_id, _ in listed}
    with locked_update(environment) as data:
        managed = [
            e["assistantId"] for e in _assistants(data) if _id_of(e) and e.get("cloud") == MANAGED
        ]
        removed = tuple(dict.fromkeys(i for i in managed if i not in listed_ids))
        drop_entries(data, set(removed))
        present = set(map(_id_of, _assistants(data)))
        new: list[dict[str, str]] = []
        for assistant_id, name in listed:
            if assistant_id not in present:
                present.add(assistant_id)
                new.append(
                    {
                        "assistantId": assistant_id,
                        "name": name,
                        "cloud": MANAGED,
                        "runtimeUrl": platform_url,
                        "species": MANAGED,
                    }
                )
        if new:
            data["assistants"] = [*_assistants(data), *new]
    return SyncResult(tuple(e["assistantId"] for e in new), removed)


def _assistants(data: dict[str, Any]) -> list[Any]:
    """`assistants`, which locked_update has checked is an array when present."""
    assistants: list[Any] = data.get("assistants", [])
    return assistants


def _id_of(entry: object) -> str | None:
    assistant_id = entry.get("assistantId") if isinstance(entry, dict) else None
    return assistant_id if isinstance(assistant_id, str) else None


def drop_entries(data: dict[str, Any], assistant_ids: set[str]) -> None:
    """Remove these entries from the data `locked_update` yields; when the active one goes, the
    first remaining entry takes over, as the Vellum CLI does."""
    kept = [e for e in _assistants(data) if _id_of(e) not in assistant_ids]
    if len(kept) != len(_assistants(data)):
        data["assistants"] = kept
    if data.get("activeAssistant") in assistant_ids:
        remaining = [i for i in map(_id_of, kept) if i]
        if remaining:
            data["activeAssistant"] = remaining[0]
        else:
            del data["activeAssistant"]


def _serialize(data: dict[str, Any]) -> str:
    # What JSON.stringify(data, null, 2) + "\n" writes, non-ASCII included.
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def _write(target: Path, text: str) -> None:
    """Replace `target` atomically: readers see the old file or the new one, never a part."""
    temp = target.with_name(f"{target.name}.{secrets.token_hex(4)}.tmp")
    try:
        with temp.open("x", encoding="utf-8") as file:
            # The file holds secrets: a mode the user narrowed stays narrowed.
            if target.exists():
                os.fchmod(file.fileno(), stat.S_IMODE(target.stat().st_mode))
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        temp.replace(target)
    except OSError as error:
        temp.unlink(missing_ok=True)
        raise RoostError(f"cannot write {target}: {error.strerror}") from error


@contextmanager
def _lock(lockfile: Path) -> Iterator[None]:
    """The Vellum CLI's cross-process lock: the directory `<lockfile>.lock`, whose `owner` file
    holds the writer's PID. mkdir is atomic, so exactly one process wins."""
    lock_dir = lockfile.with_name(f"{lockfile.name}.lock")
    for attempt in range(LOCK_ATTEMPTS):
        if attempt:
            time.sleep(LOCK_RETRY_SECONDS)
        try:
            lockfile.parent.mkdir(parents=True, exist_ok=True)
            lock_dir.mkdir()
        except FileExistsError:
            _break_if_stale(lock_dir)
            continue
        except OSError as error:
            raise RoostError(f"cannot create the lock {lock_dir}: {error.strerror}") from error
        break
    else:
        owner = _owner_pid(lock_dir)
        raise LockfileBusy(
            f"the lockfile is busy: {lock_dir} is held by PID {owner or 'unknown'} "
            f"(gave up after {LOCK_ATTEMPTS} attempts); try again"
        )
    try:
        (lock_dir / "owner").write_text(str(os.getpid()), encoding="utf-8")
    except OSError as error:
        shutil.rmtree(lock_dir, ignore_errors=True)
        raise RoostError(f"cannot record the owner of {lock_dir}: {error.strerror}") from error
    try:
        yield
    finally:
        # A lock broken as stale while we held it belongs to its new owner: leave it.
        if _owner_pid(lock_dir) == os.getpid():
            shutil.rmtree(lock_dir, ignore_errors=True)


def _break_if_stale(lock_dir: Path) -> None:
    try:
        age = time.time() - lock_dir.stat().st_mtime
        if age <= STALE_LOCK_SECONDS:
            return
        if age <= HARD_STALE_LOCK_SECONDS:
            owner = _owner_pid(lock_dir)
            if owner is not None and process_alive(owner):
                return
        # Rename first so exactly one contender breaks it, as the reference does.
        tombstone = lock_dir.with_name(
            f"{lock_dir.name}.stale-{os.getpid()}-{secrets.token_hex(4)}"
        )
        lock_dir.rename(tombstone)
    except OSError:
        return  # released meanwhile, or another contender broke it: the next mkdir decides
    shutil.rmtree(tombstone, ignore_errors=True)


def _owner_pid(lock_dir: Path) -> int | None:
    try:
        pid = int(read_text(lock_dir / "owner", MAX_PID_BYTES).strip())
    except (OSError, ValueError, FileError):
        return None
    return pid if pid > 0 else None
