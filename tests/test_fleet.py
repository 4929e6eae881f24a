"""The fleet model: every source's assistants, merged, filtered, sorted; the status buckets."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.activity.model import Activity, ActivityState
from services.docker.discovery import ContainerState, EngineScan
from services.docker.engines import Engine
from services.fleet.builder import FleetBuilder, build_fleet, health_targets
from services.fleet.filter import FilterError, FilterTerm, FleetFilter, filter_fleet, parse_filter
from services.fleet.model import FILTER_FIELDS, HOST_KEY, Assistant, FleetSnapshot, Source
from services.fleet.sort import sort_fleet
from services.fleet.sources import with_session_activity
from services.health.probes import Health, HealthRecord
from services.health.status import Bucket, bucket
from services.terminal.tmux import TmuxListing, TmuxSession, TmuxState
from services.vellum.lockfile import LockfileProblem, LockfileRead

T0 = datetime(2026, 1, 1, tzinfo=UTC)
ENGINE = Engine("box", "unix:///run/box.sock", None, implicit=False)


def session(name: str, attached: int = 0) -> TmuxSession:
    return TmuxSession(f"${name}", name, 1, attached, T0, T0)


def lockfile(*entries: dict[str, Any], **top: Any) -> LockfileRead:
    path = Path("/home/u/.vellum.lock.json")
    return LockfileRead(path, {"assistants": list(entries), **top}, (), path)


def container(name: str, state: str = "running", **labels: str) -> ContainerState:
    status = "Up 2 minutes (healthy)" if state == "running" else "Exited (0) 1 minute ago"
    health = "healthy" if state == "running" else None
    return ContainerState(name[:12], name, state, status, health, "img", labels, T0)


def snapshot(**parts: Any) -> FleetSnapshot:
    return FleetSnapshot(hostname="box", tmux_server="tmux -L t", **parts)


def by_name(fleet: tuple[Assistant, ...]) -> dict[str, Assistant]:
    return {assistant.name: assistant for assistant in fleet}


def test_this_machine_counts_its_sessions_and_names_its_server() -> None:
    listing = TmuxListing(TmuxState.RUNNING, (session("a"), session("b", attached=1)))

    [host] = build_fleet(snapshot(tmux=listing, tmux_version="tmux 3.3a"))

    assert (host.name, host.kind, host.where, host.status) == (
        "this machine",
        "local host",
        "box",
        "running",
    )
    assert host.detail == "2 tmux sessions"
    assert dict(host.facts) == {"tmux": "tmux 3.3a", "server": "tmux -L t"}
    assert [s.name for s in host.sessions] == ["a", "b"]


def test_the_agents_in_sessions_show_on_them_and_the_most_urgent_on_this_machine() -> None:
    listing = TmuxListing(TmuxState.RUNNING, (session("build"), session("api"), session("sh")))
    working = Activity(ActivityState.WORKING, "Bash npm test", T0, "hook PreToolUse")
    asking = Activity(ActivityState.NEEDS_YOU, "Bash rm -rf dist", T0, "hook PermissionRequest")
    builder = FleetBuilder()
    before = builder.build(snapshot(tmux=listing))
    agents = with_session_activity(HOST_KEY, {"$build": working, "$api": asking})

    [host] = builder.build(agents(snapshot(tmux=listing)))

    assert host is not before[0]
    assert dict(host.session_activity) == {"$build": working, "$api": asking}
    assert host.activity == replace(asking, detail="api: Bash rm -rf dist")


def test_session_activity_is_replaced_whole_and_an_unchanged_look_changes_nothing() -> None:
    listing = TmuxListing(TmuxState.RUNNING, (session("build"), session("api")))
    working = Activity(ActivityState.WORKING, "Bash", T0, "hook PreToolUse")
    own = Activity(ActivityState.IDLE, "", T0, "event stream")
    first = with_session_activity(HOST_KEY, {"$build": working, "$api": working})(
        snapshot(tmux=listing, activity={"lockfile:x": own})
    )

    assert with_session_activity(HOST_KEY, {"$build": working, "$api": working})(first) is first
    second = with_session_activity(HOST_KEY, {"$api": working})(first)

    assert second.activity == {"lockfile:x": own, f"{HOST_KEY}/session:$api": working}
    [host] = build_fleet(second)
    assert dict(host.session_activity) == {"$api": working}


@pytest.mark.parametrize("state", [TmuxState.NO_SERVER, TmuxState.NOT_INSTALLED, TmuxState.ERROR])
def test_this_machine_without_a_running_server_says_why(state: TmuxState) -> None:
    [host] = build_fleet(snapshot(tmux=TmuxListing(state, detail="because")))

    assert (host.status, host.detail, host.sessions) == (state.value, "because", ())
    version = "not found" if state is TmuxState.NOT_INSTALLED else "unknown"
    assert dict(host.facts)["tmux"] == version


def test_tmux_is_not_called_missing_while_it_is_still_being_looked_for() -> None:
    [host] = build_fleet(snapshot())

    assert (host.status, dict(host.facts)["tmux"]) == ("checking", "checking")


def test_every_lockfile_entry_is_a_row_and_the_active_one_is_marked() -> None:
    read = lockfile(
        {"assistantId": "loc", "cloud": "local", "runtimeUrl": "http://127.0.0.1:7821"},
        {"assistantId": "dead", "cloud": "local", "runtimeUrl": "http://127.0.0.1:7822"},
        {"assistantId": "cloudy", "cloud": "vellum", "runtimeUrl": "https://p.example"},
        {"assistantId": "vm", "cloud": "gcp", "runtimeUrl": "https://vm.example:7821"},
        {"assistantId": "odd", "cloud": "apple-container", "runtimeUrl": "http://10.0.0.2"},
        {"cloud": "local"},
        activeAssistant="cloudy",
    )

    fleet = by_name(build_fleet(snapshot(lockfile=read, local_alive={"loc": True, "dead": False})))

    assert fleet["loc"].status == "running" and fleet["loc"].where == "box"
    assert fleet["dead"].status == "sleeping" and "vellum.pid" in fleet["dead"].detail
    assert (fleet["cloudy"].status, fleet["cloudy"].active) == ("active", True)
    assert [a.name for a in fleet.values() if a.active] == ["cloudy"]
    assert (fleet["vm"].kind, fleet["vm"].where, fleet["vm"].status) == (
        "gcp",
        "vm.example",
        "remote",
    )
    assert fleet["odd"].kind == "apple-container"  # an unknown kind is shown as it is
    invalid = fleet["#6"]
    assert invalid.status == "invalid" and "assistantId" in invalid.detail


def test_secrets_never_reach_the_model() -> None:
    read = lockfile(
        {
            "assistantId": "a",
            "cloud": "local",
            "runtimeUrl": "http://127.0.0.1:1",
            "bearerToken": "sekrit-bearer-value",
            "resources": {"signingKey": "sekrit-signing-key", "daemonPort": 7821},
        }
    )

    [_, assistant] = build_fleet(snapshot(lockfile=read))

    shown = repr(assistant)
    assert "sekrit" not in shown
    assert ("resources.daemonPort", "7821") in assistant.facts
    [target] = health_targets(snapshot(lockfile=read), [assistant])
    assert target.inline_token == "sekrit-bearer-value"
    assert "sekrit" not in repr(target)


def test_docker_entries_take_their_state_from_the_derived_containers() -> None:
    read = lockfile(
        {"assistantId": "up", "cloud": "docker", "runtimeUrl": "http://127.0.0.1:7830"},
        {"assistantId": "down", "cloud": "docker", "runtimeUrl": "http://127.0.0.1:7831"},
        {"assistantId": "gone", "cloud": "docker", "runtimeUrl": "http://127.0.0.1:7832"},
    )
    scan = EngineScan(
        ENGINE,
        (
            container("up-assistant"),
            container("up-gateway"),
            container("down-assistant", state="exited"),
        ),
    )

    fleet = by_name(build_fleet(snapshot(lockfile=read, engines=(scan,))))

    assert (fleet["up"].status, fleet["up"].where) == ("running", "box")
    assert dict(fleet["up"].facts)["up-gateway"].endswith("on box")
    assert fleet["down"].status == "sleeping" and "Exited" in fleet["down"].detail
    assert fleet["gone"].status == "sleeping"
    assert fleet["gone"].detail == "no container gone-assistant"


def test_labelled_containers_are_assistants_and_a_dead_engine_is_one_row() -> None:
    up = EngineScan(ENGINE, (container("c1", **{"roost.assistant": "helper"}), container("x")))
    down = EngineScan(Engine("far", "ssh://me@far", None, False), error="connection refused")
    quiet = EngineScan(Engine("default", "unix:///var/run/docker.sock", None, True), error="no")

    fleet = by_name(build_fleet(snapshot(engines=(up, down, quiet))))

    assert set(fleet) == {"this machine", "helper", "engine far"}
    assert (fleet["helper"].source, fleet["helper"].status) == (Source.DOCKER_LABEL, "running")
    assert fleet["engine far"].status == "unreachable"
    assert "connection refused" in fleet["engine far"].detail


def test_a_stopped_labelled_container_is_asleep_with_its_exit_in_the_detail() -> None:
    scan = EngineScan(ENGINE, (container("c1", state="exited", **{"roost.assistant": "helper"}),))

    [_, helper] = build_fleet(snapshot(engines=(scan,)))

    assert (helper.status, helper.detail) == ("sleeping", "c1: Exited (0) 1 minute ago")


def test_an_action_under_way_is_the_rows_status_until_it_is_dropped() -> None:
    scan = EngineScan(ENGINE, (container("c1", **{"roost.assistant": "helper"}),))
    builder, plain = FleetBuilder(), snapshot(engines=(scan,))
    [_, helper] = builder.build(plain)

    [_, stopping] = builder.build(replace(plain, actions={helper.key: "stopping…"}))
    [_, again] = builder.build(plain)

    assert (stopping.status, again.status) == ("stopping…", "running")
    assert again is helper  # the row without the action is the very same object as before


def test_a_broken_lockfile_is_an_error_row_naming_the_file_and_line() -> None:
    path = Path("/home/u/.vellum.lock.json")
    problem = LockfileProblem(path, "Expecting value", 3, 7)
    read = LockfileRead(None, {}, (problem,), path)

    fleet = build_fleet(snapshot(lockfile=read))

    [row] = [a for a in fleet if a.kind == "lockfile"]
    assert row.status == "error (lockfile)"
    assert row.detail == f"{path}, line 3, column 7: Expecting value"


def test_health_fills_in_status_latency_version_and_last_seen() -> None:
    read = lockfile({"assistantId": "vm", "cloud": "custom", "runtimeUrl": "http://127.0.0.1:1"})
    key = "lockfile:vm"
    healthy = HealthRecord.single(Health("degraded", "db slow", "1.2.3", 12.5))

    fleet = by_name(
        build_fleet(snapshot(lockfile=read, health={key: healthy}, last_seen={key: T0}))
    )

    vm = fleet["vm"]
    assert (vm.status, vm.health, vm.detail, vm.version, vm.latency_ms, vm.last_seen) == (
        "running",
        "degraded",
        "db slow",
        "1.2.3",
        12.5,
        T0,
    )
    assert vm.summary == "degraded"
    down = by_name(
        build_fleet(
            snapshot(
                lockfile=read, health={key: HealthRecord.single(Health("timeout", "", None, None))}
            )
        )
    )
    assert down["vm"].status == "unreachable"


def test_only_awake_assistants_with_a_url_are_probed() -> None:
    read = lockfile(
        {"assistantId": "awake", "cloud": "local", "runtimeUrl": "http://127.0.0.1:1"},
        {"assistantId": "asleep", "cloud": "local", "runtimeUrl": "http://127.0.0.1:2"},
        {"assistantId": "managed", "cloud": "vellum", "runtimeUrl": "http://127.0.0.1:3"},
        {"assistantId": "nourl", "cloud": "gcp"},
    )
    state = snapshot(lockfile=read, local_alive={"awake": True, "asleep": False})

    targets = health_targets(state, build_fleet(state))

    assert [(t.assistant_id, t.managed) for t in targets] == [("awake", False), ("managed", True)]


def fleet_for_filters() -> tuple[Assistant, ...]:
    read = lockfile(
        {"assistantId": "alpha", "cloud": "docker", "runtimeUrl": "http://127.0.0.1:1"},
        {"assistantId": "beta", "cloud": "local", "runtimeUrl": "http://127.0.0.1:2"},
    )
    listing = TmuxListing(TmuxState.RUNNING, (session("build"), session("agent-claude")))
    return build_fleet(snapshot(lockfile=read, tmux=listing, local_alive={"beta": True}))


def shown(query: str) -> list[tuple[str, list[str]]]:
    return [
        (a.name, [s.name for s in sessions])
        for a, sessions in filter_fleet(fleet_for_filters(), query)
    ]


def test_bare_words_match_any_field_and_all_must_match() -> None:
    assert shown("") == [
        ("this machine", ["build", "agent-claude"]),
        ("alpha", []),
        ("beta", []),
    ]
    assert shown("ALPHA") == [("alpha", [])]
    assert shown("agent") == [("this machine", ["agent-claude"])]
    assert shown("agent build") == []
    assert shown("nothing-like-this") == []


def test_field_tokens_match_only_their_field() -> None:
    assert shown("kind:docker") == [("alpha", [])]
    assert shown("status:sleeping") == [("alpha", [])]
    assert shown("status:running") == [("this machine", ["build", "agent-claude"]), ("beta", [])]
    assert shown("kind:local status:running") == [
        ("this machine", ["build", "agent-claude"]),
        ("beta", []),
    ]
    assert shown("name:build") == [("this machine", ["build"])]


def test_an_unknown_field_is_an_error_naming_the_fields() -> None:
    with pytest.raises(FilterError) as raised:
        shown("kind:docker colour:red")
    assert str(raised.value).startswith("unknown field 'colour'; fields: name, kind, where,")
    assert shown('"colour:red"') == []  # quoted, it is a word like any other


def test_a_quoted_value_may_hold_blanks() -> None:
    assert parse_filter('name:"My Bot" kind:docker "two words"') == (
        FilterTerm("name", "my bot"),
        FilterTerm("kind", "docker"),
        FilterTerm(None, "two words"),
    )
    assert shown('name:"agent-claude"') == [("this machine", ["agent-claude"])]
    assert parse_filter('name:"still typ') == (FilterTerm("name", "still typ"),)


FIELD_NAMES = st.sampled_from(sorted(FILTER_FIELDS))
VALUES = st.text(st.characters(exclude_characters='"', exclude_categories=["Cs"]))


@given(st.lists(st.tuples(st.none() | FIELD_NAMES, VALUES), max_size=6))
def test_quoted_terms_parse_back_to_themselves(terms: list[tuple[str | None, str]]) -> None:
    query = " ".join(f'{f"{name}:" if name else ""}"{value}"' for name, value in terms)
    assert parse_filter(query) == tuple(FilterTerm(name, value.lower()) for name, value in terms)


@given(st.text())
def test_any_text_parses_or_names_a_field_that_does_not_exist(query: str) -> None:
    try:
        terms = parse_filter(query)
    except FilterError as error:
        assert str(error).startswith("unknown field ")
    else:
        assert all(term.field is None or term.field in FILTER_FIELDS for term in terms)
        assert all(not term.value or not term.value.isspace() or '"' in query for term in terms)


QUERY_PIECES = st.sampled_from(
    [
        "a",
        "al",
        "alpha",
        "b",
        "e",
        "agent",
        "build",
        "-",
        " ",
        '"',
        "kind:",
        "status:",
        "name:",
        "r",
    ]
)


@given(st.lists(st.lists(QUERY_PIECES, max_size=5).map("".join), max_size=12))
def test_the_remembering_filter_shows_what_filtering_afresh_shows(queries: list[str]) -> None:
    """Typed, deleted, narrowed in any order: each result as `filter_fleet` gives it."""
    fleet = fleet_for_filters()
    remembering = FleetFilter()
    for query in queries:
        try:
            expected = filter_fleet(fleet, query)
        except FilterError:
            with pytest.raises(FilterError):
                remembering.shown(fleet, query)
            continue
        assert remembering.shown(fleet, query) == expected


def test_the_remembering_filter_forgets_an_older_fleet() -> None:
    fleet = fleet_for_filters()
    remembering = FleetFilter()
    assert [a.name for a, _ in remembering.shown(fleet, "status:sleeping")] == ["alpha"]
    woken = tuple(replace(a, status="running") if a.name == "alpha" else a for a in fleet)
    assert remembering.shown(woken, "status:sleeping") == []
    assert [a.name for a, _ in remembering.shown(woken, "status:sleeping run")] == []


def test_sorting_keeps_this_machine_on_top() -> None:
    fleet = fleet_for_filters()

    assert [a.name for a in sort_fleet(fleet, "name", reverse=True)] == [
        "this machine",
        "beta",
        "alpha",
    ]
    # By status, what needs attention comes first: alpha sleeps, beta runs.
    assert [a.name for a in sort_fleet(fleet, "status")] == ["this machine", "alpha", "beta"]
    assert sort_fleet(fleet, None) == list(fleet)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("running", Bucket.GOOD),
        ("healthy", Bucket.GOOD),
        ("OK", Bucket.GOOD),
        ("active", Bucket.GOOD),
        ("error (500)", Bucket.BAD),
        ("unreachable", Bucket.BAD),
        ("exited (1)", Bucket.BAD),
        ("invalid", Bucket.BAD),
        ("sleeping", Bucket.ASLEEP),
        ("timeout", Bucket.WARN),
        ("degraded", Bucket.WARN),
        ("no tmux server", Bucket.WARN),
        ("tmux not installed", Bucket.WARN),
    ],
)
def test_every_status_has_one_bucket(status: str, expected: Bucket) -> None:
    assert bucket(status) is expected


def test_a_new_tmux_listing_remakes_only_this_machine_and_what_else_changed() -> None:
    read = lockfile(
        {"assistantId": "a", "cloud": "gcp", "runtimeUrl": "http://127.0.0.1:1"},
        {"assistantId": "b", "cloud": "gcp", "runtimeUrl": "http://127.0.0.1:2"},
    )
    builder = FleetBuilder()
    first = by_name(builder.build(snapshot(lockfile=read)))
    one = TmuxListing(TmuxState.RUNNING, (session("x"),))
    healthy = {"lockfile:b": HealthRecord.single(Health("healthy", "", "1", 3.0))}

    second = by_name(builder.build(snapshot(lockfile=read, tmux=one, health=healthy)))
    two = TmuxListing(TmuxState.RUNNING, (session("x"), session("y")))
    third = by_name(builder.build(snapshot(lockfile=read, tmux=two, health=healthy)))

    assert second["a"] is first["a"] and third["a"] is first["a"]
    assert second["b"].health == "healthy" and third["b"] is second["b"]
    assert [s.name for s in second["this machine"].sessions] == ["x"]
    assert [s.name for s in third["this machine"].sessions] == ["x", "y"]
    assert third["this machine"].detail == "2 tmux sessions"


def test_a_repeated_assistant_id_still_gets_a_row_of_its_own() -> None:
    read = lockfile(
        {"assistantId": "twin", "cloud": "gcp", "runtimeUrl": "http://127.0.0.1:1"},
        {"assistantId": "twin", "cloud": "gcp", "runtimeUrl": "http://127.0.0.1:2"},
    )

    fleet = [a for a in build_fleet(snapshot(lockfile=read)) if a.id == "twin"]

    assert len({a.key for a in fleet}) == 2
    assert [a.status for a in fleet] == ["remote", "invalid"]
    assert "more than once" in fleet[1].detail


def test_an_unchanged_assistant_comes_back_as_the_same_object() -> None:
    read = lockfile(
        {"assistantId": "a", "cloud": "gcp", "runtimeUrl": "http://127.0.0.1:1"},
        {"assistantId": "b", "cloud": "gcp", "runtimeUrl": "http://127.0.0.1:2"},
    )
    builder = FleetBuilder()
    first = by_name(builder.build(snapshot(lockfile=read)))

    second = by_name(
        builder.build(
            snapshot(
                lockfile=read,
                health={"lockfile:b": HealthRecord.single(Health("healthy", "", "1", 3.0))},
            )
        )
    )

    assert second["a"] is first["a"]
    assert second["b"] is not first["b"] and second["b"].health == "healthy"
