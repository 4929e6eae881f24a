"""The Vellum lockfile on real files: reading, choosing, masking, and writing it under the lock
without ever losing an entry, a field, or a file roost could not parse."""

from __future__ import annotations

import errno
import json
import os
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from services.core.errors import RoostError
from services.core.safe_text import is_printable
from services.vellum.environment import VellumEnvironment
from services.vellum.lockfile import (
    MASK,
    LockfileBusy,
    LockfileEntry,
    LockfileRead,
    SyncResult,
    choose_target,
    locked_update,
    masked_fields,
    read_lockfile,
    set_active,
    sync_managed,
)
from tests.lockfile_writer import remove_entry, save_entry

WRITER = Path(__file__).with_name("lockfile_writer.py")
LOCAL = {"assistantId": "local-1", "cloud": "local", "runtimeUrl": "http://127.0.0.1:7830"}


@pytest.fixture
def environment(tmp_path: Path) -> VellumEnvironment:
    """Production, with both candidates in their own directory so leftovers are easy to see."""
    (tmp_path / "locks").mkdir()
    return VellumEnvironment.resolve(
        {"HOME": str(tmp_path), "VELLUM_LOCKFILE_DIR": str(tmp_path / "locks")}
    )


def primary(environment: VellumEnvironment) -> Path:
    return environment.lockfile_candidates[0]


def write_json(path: Path, data: object) -> None:
    path.write_text(json.dumps(data), encoding="utf-8")


def on_disk(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def snapshot(path: Path) -> tuple[bytes, int, int]:
    """Bytes, mtime and inode: a rewrite or a rename-into-place changes at least one."""
    info = path.stat()
    return path.read_bytes(), info.st_mtime_ns, info.st_ino


def leftovers(environment: VellumEnvironment) -> list[str]:
    return sorted(path.name for path in primary(environment).parent.iterdir())


def read_of(environment: VellumEnvironment, data: object) -> LockfileRead:
    write_json(primary(environment), data)
    return read_lockfile(environment)


# Reading


def test_the_primary_name_wins_over_the_legacy_one(environment: VellumEnvironment) -> None:
    first, legacy = environment.lockfile_candidates
    write_json(first, {"assistants": [{"assistantId": "new"}]})
    write_json(legacy, {"assistants": [{"assistantId": "old"}]})

    read = read_lockfile(environment)

    assert read.path == first
    assert [entry.assistant_id for entry in read.entries] == ["new"]


def test_the_first_candidate_that_parses_wins_and_broken_ones_are_reported(
    environment: VellumEnvironment,
) -> None:
    broken, legacy = environment.lockfile_candidates
    broken.write_text('{\n  "assistants": [\n    {"assistantId": "a",}\n  ]\n}\n')
    write_json(legacy, {"assistants": [{"assistantId": "old"}], "x-extra": 1})
    before = snapshot(broken)

    read = read_lockfile(environment)

    assert read.path == legacy
    assert read.data == {"assistants": [{"assistantId": "old"}], "x-extra": 1}
    [problem] = read.problems
    assert (problem.path, problem.line) == (broken, 3)
    assert f"{broken}, line 3, column" in str(problem)
    assert snapshot(broken) == before


def test_a_lockfile_that_is_not_an_object_is_skipped(environment: VellumEnvironment) -> None:
    primary(environment).write_text("[1, 2]")

    read = read_lockfile(environment)

    assert read.path is None and read.entries == ()
    assert [p.problem for p in read.problems] == ["the top level is an array, not an object"]


def test_no_lockfile_is_no_problem(environment: VellumEnvironment) -> None:
    read = read_lockfile(environment)

    assert (read.path, read.data, read.problems) == (None, {}, ())
    assert read.primary == primary(environment)


def test_bytes_that_are_not_utf8_are_reported(environment: VellumEnvironment) -> None:
    primary(environment).write_bytes(b'{"a": "\xff"}')

    read = read_lockfile(environment)

    assert read.path is None
    assert "not UTF-8" in read.problems[0].problem


def test_active_and_platform_url_are_read_only_when_they_are_strings(
    environment: VellumEnvironment,
) -> None:
    read = read_of(environment, {"activeAssistant": "a", "platformBaseUrl": " https://p.example "})
    odd = read_of(environment, {"activeAssistant": 3, "platformBaseUrl": ["x"]})

    assert (read.active, read.platform_base_url) == ("a", "https://p.example")
    assert (odd.active, odd.platform_base_url) == (None, None)


# Entries


def test_an_entry_is_read_with_every_field() -> None:
    raw = {
        "assistantId": "a1",
        "name": " Ada ",
        "cloud": "local",
        "runtimeUrl": "http://ada.local:7830",
        "localUrl": "http://127.0.0.1:7830",
        "species": "vellum",
        "hatchedAt": "2025-01-02T03:04:05Z",
        "resources": {"instanceDir": "/srv/a1", "daemonPort": 7821},
        "containerInfo": {"assistantImage": "img:1"},
        "futureField": {"kept": True},
    }

    entry = LockfileEntry.parse(raw, 1)

    assert (entry.assistant_id, entry.name, entry.display_name) == ("a1", "Ada", "Ada")
    assert (entry.cloud, entry.species, entry.hatched_at) == ("local", "vellum", raw["hatchedAt"])
    assert (entry.runtime_url, entry.local_url) == (raw["runtimeUrl"], raw["localUrl"])
    assert entry.base_url == "http://127.0.0.1:7830"  # local prefers the loopback URL
    assert entry.resources == raw["resources"]
    assert entry.container_info == raw["containerInfo"]
    assert entry.raw == raw and entry.problems == ()


def test_remote_kinds_are_reached_at_their_runtime_url_and_shown_by_id() -> None:
    entry = LockfileEntry.parse(
        {"assistantId": "d1", "cloud": "docker", "runtimeUrl": "http://h:1", "localUrl": "x"}, 1
    )

    assert (entry.base_url, entry.display_name, entry.resources) == ("http://h:1", "d1", {})
    assert entry.container_info is None


def test_the_older_assistant_name_field_is_the_display_name_when_name_is_missing() -> None:
    entry = LockfileEntry.parse({"assistantId": "a", "assistantName": "Old Name"}, 1)

    assert entry.display_name == "Old Name"


@pytest.mark.parametrize(
    ("fields", "cloud"),
    [
        ({"cloud": "docker"}, "docker"),
        ({"cloud": "aws", "project": "p"}, "aws"),
        ({"project": "p"}, "gcp"),
        ({"project": "p", "sshUser": "ubuntu"}, "gcp"),
        ({"cloud": "", "sshUser": "ubuntu"}, "custom"),
        ({"project": "", "sshUser": None}, "local"),
        ({}, "local"),
        ({"cloud": "moon-base"}, "moon-base"),
    ],
)
def test_cloud_is_the_field_else_inferred_from_project_and_ssh_user(
    fields: dict[str, Any], cloud: str
) -> None:
    entry = LockfileEntry.parse({"assistantId": "a", "runtimeUrl": "http://h", **fields}, 1)

    assert entry.cloud == cloud


def test_entries_it_cannot_use_are_listed_with_their_problems(
    environment: VellumEnvironment,
) -> None:
    read = read_of(
        environment,
        {
            "assistants": [
                {"assistantId": "no-url", "cloud": "local"},
                {"assistantId": "managed", "cloud": "vellum"},
                {"name": "nameless", "runtimeUrl": "http://h"},
                {"assistantId": 7, "runtimeUrl": "http://h"},
                "not an entry",
                {"assistantId": "odd", "cloud": "moon-base", "runtimeUrl": "http://h"},
                {"assistantId": "", "runtimeUrl": 5},
                ["neither"],
            ]
        },
    )

    assert [(e.assistant_id, e.cloud, e.problems) for e in read.entries] == [
        ("no-url", "local", ("no runtimeUrl",)),
        ("managed", "vellum", ()),
        ("#3", "local", ("no assistantId",)),
        ("#4", "local", ("assistantId is not a string",)),
        ("#5", "local", ("entry 5 is not an object (a string)",)),
        ("odd", "moon-base", ()),
        ("#7", "local", ("assistantId is empty", "runtimeUrl is not a string")),
        ("#8", "local", ("entry 8 is not an object (an array)",)),
    ]
    assert read.entries[2].display_name == "nameless"


# Masking


def test_fields_are_flattened_in_file_order_with_every_secret_masked() -> None:
    entry = LockfileEntry.parse(
        {
            "assistantId": "a1",
            "bearerToken": "tok-123456",
            "resources": {"instanceDir": "/srv/a1", "daemonPort": 7821, "signingKey": "abcdef"},
            "guardianBootstrapSecret": "boot-secret",
            "containerInfo": {"assistantImage": "img:1", "networkName": None},
            "services": [{"name": "x", "ApiToken": "svc-token"}],
            "oauth": {"refreshTOKEN": "r-1", "clientSecrets": {"a": "hidden-shape"}},
            "empty": {},
            "enabled": True,
            "backupToken": "",
        },
        1,
    )

    assert masked_fields(entry) == [
        ("assistantId", "a1"),
        ("bearerToken", MASK),
        ("resources.instanceDir", "/srv/a1"),
        ("resources.daemonPort", "7821"),
        ("resources.signingKey", MASK),
        ("guardianBootstrapSecret", MASK),
        ("containerInfo.assistantImage", "img:1"),
        ("containerInfo.networkName", "null"),
        ("services[0].name", "x"),
        ("services[0].ApiToken", MASK),
        ("oauth.refreshTOKEN", MASK),
        ("oauth.clientSecrets", MASK),
        ("empty", "{}"),
        ("enabled", "true"),
        ("backupToken", ""),  # an empty secret hides nothing
    ]
    assert "tok-123456" not in repr(entry) and "abcdef" not in repr(entry)


def entry_with_secrets(bearer: str, signing: str) -> LockfileEntry:
    raw = {
        "assistantId": "a1",
        "runtimeUrl": "http://127.0.0.1:7830",
        "bearerToken": bearer,
        "resources": {"daemonPort": 7821, "signingKey": signing},
    }
    return LockfileEntry.parse(raw, 1)


def shown(entry: LockfileEntry) -> str:
    return "\n".join(f"{path} {text}" for path, text in masked_fields(entry))


SHOWN_FOR_OTHER_SECRETS = shown(entry_with_secrets("x", "y"))


@given(bearer=st.text(min_size=3), signing=st.text(min_size=3))
def test_no_three_characters_of_a_secret_are_ever_shown(bearer: str, signing: str) -> None:
    pieces = {secret[i : i + 3] for secret in (bearer, signing) for i in range(len(secret) - 2)}
    # A piece that field names, public values or the mask hold anyway proves nothing.
    assume(not any(piece in SHOWN_FOR_OTHER_SECRETS for piece in pieces))

    text = shown(entry_with_secrets(bearer, signing))

    assert [piece for piece in pieces if piece in text] == []
    assert text == SHOWN_FOR_OTHER_SECRETS  # not even a secret's length changes what is shown


# Choosing a target


def test_an_explicit_name_is_an_exact_id_first_then_a_display_name(
    environment: VellumEnvironment,
) -> None:
    read = read_of(
        environment,
        {
            "assistants": [
                {"assistantId": "alpha", "name": "beta"},
                {"assistantId": "beta", "name": "Gamma"},
            ],
            "activeAssistant": "alpha",
        },
    )

    assert choose_target(read, "beta").assistant_id == "beta"
    assert choose_target(read, "Gamma").assistant_id == "beta"
    assert choose_target(read, None).assistant_id == "alpha"


def test_without_a_name_a_stale_active_falls_through_to_the_only_entry(
    environment: VellumEnvironment,
) -> None:
    read = read_of(
        environment,
        {"assistants": [{"assistantId": "only"}, {"name": "no id"}], "activeAssistant": "gone"},
    )

    assert choose_target(read, None).assistant_id == "only"


def test_the_choice_errors_list_the_ids(environment: VellumEnvironment) -> None:
    path = primary(environment)
    read = read_of(
        environment,
        {"assistants": [{"assistantId": "a"}, {"assistantId": "b"}, {"name": "x"}, "junk"]},
    )

    with pytest.raises(RoostError) as none_active:
        choose_target(read, None)
    with pytest.raises(RoostError) as unknown:
        choose_target(read, "zeta")
    with pytest.raises(RoostError) as stand_in:
        choose_target(read, "#3")  # entries without an id cannot be chosen

    assert str(none_active.value) == (
        f"2 assistants in {path} and none is active; choose one of: a, b"
    )
    assert str(unknown.value) == f"no assistant 'zeta' in {path}; the choices are: a, b"
    assert "the choices are: a, b" in str(stand_in.value)


def test_a_display_name_two_assistants_share_needs_the_id(environment: VellumEnvironment) -> None:
    read = read_of(
        environment,
        {
            "assistants": [
                {"assistantId": "a", "name": "Twin"},
                {"assistantId": "b", "name": "Twin"},
            ]
        },
    )

    with pytest.raises(RoostError, match=r"2 assistants are named 'Twin' \(a, b\): use the id"):
        choose_target(read, "Twin")


def test_no_assistants_names_the_lockfile_and_whether_it_exists(
    environment: VellumEnvironment,
) -> None:
    with pytest.raises(RoostError) as missing:
        choose_target(read_lockfile(environment), None)
    with pytest.raises(RoostError) as empty:
        choose_target(read_of(environment, {"assistants": []}), "a")

    assert str(missing.value) == f"no Vellum assistants yet: {primary(environment)} does not exist"
    assert str(empty.value) == f"there are no assistants in {primary(environment)}"


def test_a_lockfile_that_does_not_parse_is_named_with_its_line_and_problem(
    environment: VellumEnvironment,
) -> None:
    primary(environment).write_text('{"assistants": [\n,]}')

    with pytest.raises(RoostError) as caught:
        choose_target(read_lockfile(environment), "a")

    assert str(caught.value) == f"{primary(environment)}, line 2, column 1: Expecting value"


# Writing


def test_save_keeps_unknown_keys_and_fields_and_writes_two_space_json(
    environment: VellumEnvironment,
) -> None:
    write_json(
        primary(environment),
        {
            "schemaVersion": 99,
            "assistants": [
                {"assistantId": "old", "futureField": {"keep": [1, 2]}, "name": "Zoë"},
                "junk",
                {"no": "id"},
            ],
            "activeAssistant": "old",
            "platformBaseUrl": "https://p",
        },
    )

    save_entry(environment, {"assistantId": "new", "cloud": "local"})

    assert primary(environment).read_text(encoding="utf-8") == textwrap.dedent(
        """\
        {
          "schemaVersion": 99,
          "assistants": [
            {
              "assistantId": "new",
              "cloud": "local"
            },
            {
              "assistantId": "old",
              "futureField": {
                "keep": [
                  1,
                  2
                ]
              },
              "name": "Zoë"
            },
            "junk",
            {
              "no": "id"
            }
          ],
          "activeAssistant": "old",
          "platformBaseUrl": "https://p"
        }
        """
    )


def test_save_puts_the_entry_first_and_replaces_the_one_with_its_id(
    environment: VellumEnvironment,
) -> None:
    write_json(primary(environment), {"assistants": [{"assistantId": "a"}, {"assistantId": "b"}]})

    save_entry(environment, {"assistantId": "b", "version": 2})
    save_entry(environment, {"assistantId": "c"})

    assert on_disk(primary(environment))["assistants"] == [
        {"assistantId": "c"},
        {"assistantId": "b", "version": 2},
        {"assistantId": "a"},
    ]


def test_a_write_creates_the_lockfile_and_its_directory(tmp_path: Path) -> None:
    environment = VellumEnvironment.resolve(
        {"HOME": str(tmp_path), "VELLUM_ENVIRONMENT": "staging"}
    )

    save_entry(environment, LOCAL)

    assert on_disk(tmp_path / ".config/vellum-staging/lockfile.json") == {"assistants": [LOCAL]}


def test_a_legacy_lockfile_is_read_and_the_first_write_goes_to_the_primary_name(
    environment: VellumEnvironment,
) -> None:
    first, legacy = environment.lockfile_candidates
    write_json(legacy, {"assistants": [{"assistantId": "old"}], "x-extra": 1})
    legacy_before = snapshot(legacy)

    save_entry(environment, {"assistantId": "new"})

    assert on_disk(first) == {
        "assistants": [{"assistantId": "new"}, {"assistantId": "old"}],
        "x-extra": 1,
    }
    assert snapshot(legacy) == legacy_before
    assert read_lockfile(environment).path == first


def test_removing_the_active_entry_makes_the_first_remaining_one_active(
    environment: VellumEnvironment,
) -> None:
    path = primary(environment)
    ids = [{"assistantId": i} for i in ("a", "b", "c")]
    write_json(path, {"assistants": ["junk", *ids], "activeAssistant": "b"})

    remove_entry(environment, "b")
    after_active = on_disk(path)
    remove_entry(environment, "c")
    after_other = on_disk(path)
    remove_entry(environment, "a")

    assert after_active == {"assistants": ["junk", ids[0], ids[2]], "activeAssistant": "a"}
    assert after_other["activeAssistant"] == "a"
    assert on_disk(path) == {"assistants": ["junk"]}


def test_removing_an_absent_entry_writes_nothing(environment: VellumEnvironment) -> None:
    write_json(primary(environment), {"assistants": [LOCAL], "activeAssistant": "local-1"})
    before = snapshot(primary(environment))

    remove_entry(environment, "gone")

    assert snapshot(primary(environment)) == before


def test_set_active_names_an_existing_entry(environment: VellumEnvironment) -> None:
    write_json(primary(environment), {"assistants": [{"assistantId": "a"}, {"assistantId": "b"}]})

    set_active(environment, "b")
    before = snapshot(primary(environment))
    with pytest.raises(RoostError, match="no assistant 'zeta' in"):
        set_active(environment, "zeta")

    assert on_disk(primary(environment))["activeAssistant"] == "b"
    assert snapshot(primary(environment)) == before


def test_sync_adds_listed_assistants_and_removes_only_managed_entries_it_lacks(
    environment: VellumEnvironment,
) -> None:
    kept = {"assistantId": "m-kept", "cloud": "vellum", "name": "Kept", "extra": 1}
    docker = {"assistantId": "dock", "cloud": "docker", "runtimeUrl": "http://127.0.0.1:7831"}
    gcp = {"assistantId": "vm", "project": "p", "runtimeUrl": "http://10.0.0.2:7830"}
    write_json(
        primary(environment),
        {
            "assistants": [
                {"assistantId": "m-gone", "cloud": "vellum", "runtimeUrl": "https://p"},
                LOCAL,
                kept,
                docker,
                gcp,
                "junk",
            ],
            "activeAssistant": "m-gone",
            "x-extra": True,
        },
    )

    result = sync_managed(
        environment,
        [("m-kept", "Renamed"), ("m-new", "New"), ("local-1", "Same id")],
        "http://127.0.0.1:9",
    )

    assert result == SyncResult(added=("m-new",), removed=("m-gone",))
    assert on_disk(primary(environment)) == {
        "assistants": [
            LOCAL,
            kept,
            docker,
            gcp,
            "junk",
            {
                "assistantId": "m-new",
                "name": "New",
                "cloud": "vellum",
                "runtimeUrl": "http://127.0.0.1:9",
                "species": "vellum",
            },
        ],
        "activeAssistant": "local-1",
        "x-extra": True,
    }


def test_an_empty_listing_removes_every_managed_entry(environment: VellumEnvironment) -> None:
    managed = [{"assistantId": i, "cloud": "vellum"} for i in ("m1", "m2")]
    write_json(primary(environment), {"assistants": managed, "activeAssistant": "m2"})

    result = sync_managed(environment, [], "http://127.0.0.1:9")

    assert result == SyncResult(added=(), removed=("m1", "m2"))
    assert on_disk(primary(environment)) == {"assistants": []}


def test_sync_writes_nothing_when_nothing_changes(environment: VellumEnvironment) -> None:
    write_json(primary(environment), {"assistants": [{"assistantId": "m1", "cloud": "vellum"}]})
    before = snapshot(primary(environment))

    result = sync_managed(environment, [("m1", "One")], "http://127.0.0.1:9")

    assert result == SyncResult(added=(), removed=())
    assert snapshot(primary(environment)) == before


def test_sync_with_no_lockfile_and_nothing_listed_creates_nothing(
    environment: VellumEnvironment,
) -> None:
    assert sync_managed(environment, [], "http://127.0.0.1:9") == SyncResult(added=(), removed=())
    assert leftovers(environment) == []


WRITES: dict[str, Callable[[VellumEnvironment], object]] = {
    "save_entry": lambda environment: save_entry(environment, {"assistantId": "new"}),
    "remove_entry": lambda environment: remove_entry(environment, "old"),
    "set_active": lambda environment: set_active(environment, "old"),
    "sync_managed": lambda environment: sync_managed(
        environment, [("m1", "Managed")], "http://127.0.0.1:9"
    ),
}


@pytest.mark.parametrize("write", WRITES.values(), ids=WRITES.keys())
@pytest.mark.parametrize("legacy_parses", [True, False], ids=["legacy-ok", "only-broken"])
def test_a_candidate_that_does_not_parse_is_never_rewritten(
    environment: VellumEnvironment,
    write: Callable[[VellumEnvironment], object],
    legacy_parses: bool,
) -> None:
    first, legacy = environment.lockfile_candidates
    broken = first if legacy_parses else legacy
    broken.write_text('{\n  "assistants": [\n    {"assistantId": "old",}\n  ]\n}\n')
    if legacy_parses:
        write_json(legacy, {"assistants": [{"assistantId": "old", "cloud": "vellum"}]})
    before = {path: snapshot(path) for path in (first, legacy) if path.exists()}

    with pytest.raises(RoostError) as caught:
        write(environment)

    assert str(caught.value).startswith(f"{broken}, line 3, column 27: Expecting property name")
    assert {path: snapshot(path) for path in (first, legacy) if path.exists()} == before
    assert leftovers(environment) == sorted(path.name for path in before)


def test_assistants_that_is_not_an_array_is_never_replaced(
    environment: VellumEnvironment,
) -> None:
    write_json(primary(environment), {"assistants": {"a": 1}})
    before = snapshot(primary(environment))

    with pytest.raises(RoostError, match="assistants is a number, not an array"):
        save_entry(environment, LOCAL)

    assert snapshot(primary(environment)) == before


def test_the_lock_is_held_during_an_update_and_released_after(
    environment: VellumEnvironment,
) -> None:
    lock = primary(environment).with_name(".vellum.lock.json.lock")

    with locked_update(environment) as data:
        owner = (lock / "owner").read_text(encoding="utf-8")
        data["platformBaseUrl"] = "https://platform.example"

    assert owner == str(os.getpid())
    assert read_lockfile(environment).platform_base_url == "https://platform.example"
    assert leftovers(environment) == [".vellum.lock.json"]


def test_an_update_that_raises_writes_nothing_and_releases_the_lock(
    environment: VellumEnvironment,
) -> None:
    write_json(primary(environment), {"assistants": [LOCAL]})
    before = snapshot(primary(environment))

    with pytest.raises(KeyError), locked_update(environment) as data:
        data["assistants"] = []
        raise KeyError("the caller changed its mind")

    assert snapshot(primary(environment)) == before
    assert leftovers(environment) == [".vellum.lock.json"]


def test_a_write_keeps_the_file_mode_the_user_narrowed(environment: VellumEnvironment) -> None:
    write_json(primary(environment), {"assistants": []})
    primary(environment).chmod(0o600)

    save_entry(environment, LOCAL)

    assert stat.S_IMODE(primary(environment).stat().st_mode) == 0o600


def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(
    environment: VellumEnvironment, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_json(primary(environment), {"assistants": [LOCAL]})
    before = snapshot(primary(environment))

    def disk_full(self: Path, target: Path) -> Path:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    # A full disk cannot be had for real here; the rename is where it would bite last.
    monkeypatch.setattr(Path, "replace", disk_full)
    with pytest.raises(RoostError, match=r"cannot write .*: No space left on device"):
        save_entry(environment, {"assistantId": "new"})

    assert snapshot(primary(environment)) == before
    assert leftovers(environment) == [".vellum.lock.json"]


# The cross-process lock


def hold_lock(environment: VellumEnvironment, owner: int, age_seconds: float) -> Path:
    """A lock as another writer leaves it: the directory, its owner file, and its age."""
    lock = primary(environment).with_name(".vellum.lock.json.lock")
    lock.mkdir()
    (lock / "owner").write_text(str(owner))
    then = time.time() - age_seconds
    os.utime(lock, (then, then))
    return lock


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", ""])
    process.wait()
    return process.pid


def test_a_stale_lock_whose_owner_is_dead_is_broken(environment: VellumEnvironment) -> None:
    hold_lock(environment, dead_pid(), age_seconds=6)

    save_entry(environment, LOCAL)

    assert on_disk(primary(environment)) == {"assistants": [LOCAL]}
    assert leftovers(environment) == [".vellum.lock.json"]


def test_a_lock_older_than_ten_minutes_is_broken_even_with_a_live_owner(
    environment: VellumEnvironment,
) -> None:
    hold_lock(environment, os.getpid(), age_seconds=601)

    save_entry(environment, LOCAL)

    assert leftovers(environment) == [".vellum.lock.json"]


@pytest.mark.parametrize(
    ("live_owner", "age_seconds"),
    [(True, 6), (False, 1)],
    ids=["live-owner", "young-lock-of-a-dead-owner"],
)
def test_a_held_lock_makes_the_writer_give_up(
    environment: VellumEnvironment, live_owner: bool, age_seconds: float
) -> None:
    owner = os.getpid() if live_owner else dead_pid()
    lock = hold_lock(environment, owner, age_seconds)

    with pytest.raises(LockfileBusy) as caught:
        save_entry(environment, LOCAL)

    assert str(caught.value) == (
        f"the lockfile is busy: {lock} is held by PID {owner} (gave up after 10 attempts); "
        "try again"
    )
    assert (lock / "owner").read_text() == str(owner)
    assert leftovers(environment) == [lock.name]


def test_two_writer_processes_lose_nothing_and_a_reader_never_sees_a_partial_file(
    tmp_path: Path, environment: VellumEnvironment
) -> None:
    path = primary(environment)
    save_entry(environment, {"assistantId": "seed"})  # so the reader has a file from the start
    variables = {**os.environ, "HOME": str(tmp_path), "VELLUM_LOCKFILE_DIR": str(path.parent)}
    assert VellumEnvironment.resolve(variables).lockfile_candidates[0] == path
    writers = [
        subprocess.Popen(
            [sys.executable, str(WRITER), prefix, "200"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=variables,
        )
        for prefix in ("one", "two")
    ]
    try:
        for writer in writers:
            assert writer.stdout is not None and writer.stdout.readline() == "ready\n"
        for writer in writers:
            assert writer.stdin is not None
            writer.stdin.write("go\n")
            writer.stdin.flush()
        reads = 0
        deadline = time.monotonic() + 120
        while any(writer.poll() is None for writer in writers):
            assert time.monotonic() < deadline, "the writers did not finish"
            json.loads(path.read_text(encoding="utf-8"))  # a partial file would not parse
            reads += 1
    finally:
        for writer in writers:
            if writer.poll() is None:
                writer.kill()
    results = [writer.communicate() for writer in writers]

    assert [writer.returncode for writer in writers] == [0, 0], results
    assert reads > 0
    ids = [entry["assistantId"] for entry in on_disk(path)["assistants"]]
    expected = {"seed"} | {f"{prefix}-{i}" for prefix in ("one", "two") for i in range(200)}
    assert sorted(ids) == sorted(expected)
    assert leftovers(environment) == [".vellum.lock.json"]


# Text from the file, on screen --------------------------------------------------------------

ENTRY_TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=12) | st.sampled_from(
    ["\x1b]0;pwned\x07", "\x1b[2J", "\u202eevil", "line\nbreak", "\x9b31m"]
)
ENTRY_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | ENTRY_TEXT,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(ENTRY_TEXT, children, max_size=3)
    ),
    max_leaves=8,
)
ENTRY_KEYS = (
    st.sampled_from(
        [
            "assistantId",
            "name",
            "assistantName",
            "cloud",
            "runtimeUrl",
            "localUrl",
            "species",
            "hatchedAt",
            "resources",
            "bearerToken",
        ]
    )
    | ENTRY_TEXT
)


@given(st.dictionaries(ENTRY_KEYS, ENTRY_VALUES, max_size=8) | ENTRY_VALUES)
def test_whatever_an_entry_holds_what_is_shown_of_it_is_printable(value: object) -> None:
    entry = LockfileEntry.parse(value, 1)

    shown = [
        entry.display_name,
        entry.assistant_id,
        entry.cloud,
        entry.species or "",
        entry.hatched_at or "",
        *entry.problems,
        *(text for row in masked_fields(entry) for text in row),
    ]
    assert all(is_printable(text) for text in shown), shown
