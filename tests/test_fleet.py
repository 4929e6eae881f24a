"""The fleet model: this machine's entry, filtering, and the status buckets."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.fleet import Assistant, filter_fleet, this_machine
from services.status import Bucket, bucket
from services.tmux import TmuxListing, TmuxServer, TmuxSession, TmuxSocket, TmuxState

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def session(name: str, attached: int = 0) -> TmuxSession:
    return TmuxSession(f"${name}", name, 1, attached, T0, T0)


def host(name: str, *sessions: TmuxSession, status: str = "running") -> Assistant:
    return Assistant(f"host:{name}", name, "local host", f"{name}.lan", status, sessions=sessions)


def test_this_machine_counts_its_sessions_and_names_its_server() -> None:
    server = TmuxServer(TmuxSocket("private"))
    listing = TmuxListing(TmuxState.RUNNING, (session("a"), session("b", attached=1)))

    entry = this_machine("box", server, listing, "tmux 3.3a")

    assert (entry.name, entry.kind, entry.where, entry.status) == (
        "this machine",
        "local host",
        "box",
        "running",
    )
    assert entry.detail == "2 tmux sessions"
    assert dict(entry.facts) == {"tmux": "tmux 3.3a", "server": "tmux -L private"}
    assert [s.name for s in entry.sessions] == ["a", "b"]


@pytest.mark.parametrize("state", [TmuxState.NO_SERVER, TmuxState.NOT_INSTALLED, TmuxState.ERROR])
def test_this_machine_without_a_running_server_says_why(state: TmuxState) -> None:
    entry = this_machine("box", TmuxServer(), TmuxListing(state, detail="because"), None)

    assert (entry.status, entry.detail, entry.sessions) == (state.value, "because", ())
    assert dict(entry.facts)["tmux"] == "not found"


def test_filter_words_must_all_match_and_sessions_keep_their_host() -> None:
    fleet = [
        host("alpha", session("build"), session("agent-claude")),
        host("beta", session("agent-codex")),
    ]

    def names(query: str) -> list[tuple[str, list[str]]]:
        return [(a.name, [s.name for s in shown]) for a, shown in filter_fleet(fleet, query)]

    assert names("") == [("alpha", ["build", "agent-claude"]), ("beta", ["agent-codex"])]
    assert names("AGENT") == [("alpha", ["agent-claude"]), ("beta", ["agent-codex"])]
    assert names("agent codex") == [("beta", ["agent-codex"])]
    assert names("beta") == [("beta", ["agent-codex"])]
    assert names("attached") == []
    assert names("detached build") == [("alpha", ["build"])]
    assert names("nothing-like-this") == []


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("running", Bucket.GOOD),
        ("healthy", Bucket.GOOD),
        ("OK", Bucket.GOOD),
        ("error (500)", Bucket.BAD),
        ("unreachable", Bucket.BAD),
        ("exited (1)", Bucket.BAD),
        ("sleeping", Bucket.ASLEEP),
        ("timeout", Bucket.WARN),
        ("degraded", Bucket.WARN),
        ("no tmux server", Bucket.WARN),
        ("tmux not installed", Bucket.WARN),
    ],
)
def test_every_status_has_one_bucket(status: str, expected: Bucket) -> None:
    assert bucket(status) is expected
