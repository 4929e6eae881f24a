"""One assistant's activity and inbox (services/activity/tracker.py): every state rule, late
versions, reconciling with pending lists, resolution by someone else, bounded memory."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.activity.client import PendingItem, PendingList
from services.activity.events import (
    Completed,
    Failed,
    Notified,
    PhaseChanged,
    Requested,
    Resolved,
)
from services.activity.model import (
    ActivityState,
    Confirmation,
    InteractionKind,
    SecretRequest,
)
from services.activity.tracker import (
    MAX_CONVERSATIONS,
    MAX_ITEMS,
    QUIET_STREAM,
    STREAM,
    AssistantActivity,
)

T0 = datetime(2026, 12, 2, 19, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def phase(
    version: int,
    name: str,
    *,
    conversation: str = "c1",
    reason: str = "",
    status: str = "",
) -> PhaseChanged:
    return PhaseChanged(conversation, version, name, reason, status, "")


def confirmation(request_id: str = "r1", conversation: str = "c1", risk: str = "high") -> Requested:
    request = Confirmation(tool="bash", input_json="{}", risk=risk)
    return Requested(request_id, conversation, InteractionKind.CONFIRMATION, request)


def tracker(**kwargs: int) -> AssistantActivity:
    return AssistantActivity("local:kit", "kit-id", "kit", since=T0, **kwargs)


def connected() -> AssistantActivity:
    activity = tracker()
    activity.connected(at(1))
    return activity


def test_before_connecting_it_is_unknown_never_idle() -> None:
    activity = tracker().activity
    assert activity.state is ActivityState.UNKNOWN
    assert activity.since == T0
    assert activity.evidence == "not connected yet"


def test_connected_and_quiet_is_idle_saying_so() -> None:
    activity = connected()
    assert activity.activity.state is ActivityState.IDLE
    assert activity.activity.evidence == QUIET_STREAM
    activity.apply(phase(1, "idle", reason="message_complete"), at(2))
    assert activity.activity.evidence == STREAM
    assert activity.activity.since == at(1)


def test_a_working_phase_shows_its_status_and_keeps_its_start_across_tools() -> None:
    activity = connected()
    activity.apply(phase(1, "thinking"), at(2))
    assert (activity.activity.state, activity.activity.detail) == (
        ActivityState.WORKING,
        "thinking",
    )
    activity.apply(phase(2, "tool_running", status="Running the test suite"), at(5))
    assert activity.activity.detail == "tool_running · Running the test suite"
    assert activity.activity.since == at(2)
    activity.apply(phase(3, "idle", reason="message_complete"), at(9))
    assert activity.activity.state is ActivityState.IDLE
    assert activity.activity.since == at(9)


def test_a_phase_roost_does_not_know_is_working_not_idle() -> None:
    activity = connected()
    activity.apply(phase(1, "compacting"), at(2))
    assert (activity.activity.state, activity.activity.detail) == (
        ActivityState.WORKING,
        "compacting",
    )


def test_a_late_older_version_is_ignored() -> None:
    activity = connected()
    activity.apply(phase(5, "tool_running"), at(2))
    activity.apply(phase(4, "idle"), at(3))
    assert activity.activity.state is ActivityState.WORKING
    activity.apply(phase(5, "streaming"), at(4))  # the same version is not older
    assert activity.activity.detail == "streaming"


def test_versions_are_per_conversation() -> None:
    activity = connected()
    activity.apply(phase(9, "idle", conversation="a"), at(2))
    activity.apply(phase(1, "thinking", conversation="b"), at(3))
    assert activity.activity.state is ActivityState.WORKING
    assert activity.conversations == ("a", "b")


def test_any_working_conversation_makes_the_assistant_work() -> None:
    activity = connected()
    activity.apply(phase(1, "streaming", conversation="a"), at(2))
    activity.apply(phase(1, "idle", conversation="b"), at(3))
    assert (activity.activity.state, activity.activity.detail) == (
        ActivityState.WORKING,
        "streaming",
    )


def test_a_pending_item_needs_you_with_the_oldest_item_s_summary_and_age() -> None:
    activity = connected()
    activity.apply(phase(1, "tool_running"), at(2))
    activity.apply(confirmation("r1"), at(3))
    activity.apply(
        Requested("r2", "c1", InteractionKind.SECRET, SecretRequest("github", "t", "token")), at(4)
    )
    state = activity.activity
    assert (state.state, state.detail, state.since, state.evidence) == (
        ActivityState.NEEDS_YOU,
        "bash (high risk)",
        at(3),
        STREAM,
    )
    assert [item.request_id for item in activity.inbox] == ["r1", "r2"]
    assert activity.inbox[0].assistant == "kit"
    assert activity.inbox[0].tool == "bash"
    assert activity.inbox[0].risk == "high"


def test_a_request_seen_again_keeps_when_it_was_first_known() -> None:
    activity = connected()
    activity.apply(confirmation("r1"), at(3))
    activity.apply(confirmation("r1", risk="low"), at(8))
    [item] = activity.inbox
    assert item.since == at(3)
    assert item.risk == "low"


def test_resolution_by_anyone_removes_the_item() -> None:
    activity = connected()
    activity.apply(confirmation("r1"), at(2))
    activity.apply(Resolved("r1", "c1", "approved", "confirmation"), at(3))
    assert activity.inbox == ()
    assert activity.activity.state is ActivityState.IDLE
    assert activity.timeline[-1].text == "approved: bash (high risk)"
    activity.apply(Resolved("unknown", "c1", "approved", "confirmation"), at(4))
    assert activity.timeline[-1].text == "approved: bash (high risk)"


def test_awaiting_confirmation_without_an_item_needs_you() -> None:
    activity = connected()
    activity.apply(phase(1, "awaiting_confirmation", reason="confirmation_requested"), at(2))
    assert (activity.activity.state, activity.activity.detail) == (
        ActivityState.NEEDS_YOU,
        "awaiting confirmation",
    )


def test_an_error_event_errs_until_a_later_phase() -> None:
    activity = connected()
    activity.apply(phase(1, "thinking"), at(2))
    activity.apply(Failed("c1", "model overloaded"), at(3))
    assert (activity.activity.state, activity.activity.detail, activity.activity.since) == (
        ActivityState.ERRORED,
        "model overloaded",
        at(3),
    )
    activity.apply(phase(2, "idle", reason="error_terminal"), at(4))
    assert activity.activity.detail == "model overloaded"
    assert activity.activity.since == at(3)
    activity.apply(phase(3, "thinking"), at(5))
    assert activity.activity.state is ActivityState.WORKING


def test_error_terminal_alone_errs_and_a_completed_turn_clears_it() -> None:
    activity = connected()
    activity.apply(phase(1, "idle", reason="error_terminal"), at(2))
    assert (activity.activity.state, activity.activity.detail) == (
        ActivityState.ERRORED,
        "error_terminal",
    )
    activity.apply(Completed("c1"), at(3))
    assert activity.activity.state is ActivityState.IDLE


def test_needs_you_outranks_an_error() -> None:
    activity = connected()
    activity.apply(Failed("c1", "boom"), at(2))
    activity.apply(confirmation(), at(3))
    assert activity.activity.state is ActivityState.NEEDS_YOU


def test_disconnected_is_unknown_with_why_and_items_stay_until_reconciled() -> None:
    activity = connected()
    activity.apply(confirmation(), at(2))
    activity.disconnected(at(3), "connection refused")
    state = activity.activity
    assert (state.state, state.since, state.evidence) == (
        ActivityState.UNKNOWN,
        at(3),
        "connection refused",
    )
    assert len(activity.inbox) == 1
    activity.disconnected(at(9), "connection refused")
    assert activity.activity.since == at(3)


def test_reconnecting_forgets_phases_that_are_no_evidence_any_more() -> None:
    activity = connected()
    activity.apply(phase(4, "tool_running"), at(2))
    activity.apply(Failed("c1", "boom"), at(2))
    activity.disconnected(at(3), "reset")
    activity.connected(at(4))
    assert activity.activity.state is ActivityState.IDLE
    assert activity.activity.evidence == QUIET_STREAM
    activity.apply(phase(3, "thinking"), at(5))  # still late: versions are kept
    assert activity.activity.state is ActivityState.IDLE


def test_reconcile_adds_what_was_made_meanwhile_and_removes_what_is_gone() -> None:
    activity = connected()
    activity.apply(confirmation("old"), at(2))
    listed = PendingItem("new", "c2", InteractionKind.CONFIRMATION, "curl", "medium")
    activity.reconcile(PendingList((listed,), complete=True), at(5))
    [item] = activity.inbox
    assert (item.request_id, item.conversation, item.since, item.request) == (
        "new",
        "c2",
        at(5),
        None,
    )
    assert item.summary == "curl (medium risk)"
    assert activity.activity.evidence == "pending list"
    assert "c2" in activity.conversations
    assert [entry.text for entry in activity.timeline[-2:]] == [
        "no longer pending: bash (high risk)",
        "asks: curl (medium risk)",
    ]


def test_an_incomplete_list_removes_nothing() -> None:
    activity = connected()
    activity.apply(confirmation("r1"), at(2))
    activity.reconcile(PendingList((), complete=False), at(3))
    assert len(activity.inbox) == 1


def test_details_from_a_later_list_or_the_stream_fill_a_listed_item_keeping_its_age() -> None:
    activity = connected()
    bare = PendingItem("r1", "c1", InteractionKind.CONFIRMATION, "bash")
    activity.reconcile(PendingList((bare,), complete=True), at(2))
    detailed = Confirmation(tool="bash", input_json='{"a": 1}', risk="low")
    full = PendingItem("r1", "c1", InteractionKind.CONFIRMATION, "bash", "low", detailed)
    activity.reconcile(PendingList((full,), complete=True), at(3))
    [item] = activity.inbox
    assert (item.request, item.since) == (detailed, at(2))
    activity.apply(confirmation("r1"), at(4))
    assert activity.inbox[0].since == at(2)
    assert activity.activity.evidence == STREAM


def test_an_unchanged_activity_is_the_same_object() -> None:
    activity = connected()
    activity.apply(phase(1, "thinking"), at(2))
    before = activity.activity
    activity.apply(Notified("c1", "Hello", "world"), at(3))
    assert activity.activity is before
    assert activity.timeline[-1].text == "notification: Hello: world"


def test_the_timeline_is_bounded_and_repeats_of_a_phase_are_not_noted() -> None:
    activity = tracker(timeline=5)
    activity.connected(at(0))
    for version in range(1, 40):
        activity.apply(phase(version, "thinking" if version % 2 else "streaming"), at(version))
        activity.apply(phase(version, "thinking" if version % 2 else "streaming"), at(version))
    assert len(activity.timeline) == 5
    assert [entry.text for entry in activity.timeline][-2:] == ["streaming", "thinking"]


def test_conversations_are_bounded_forgetting_the_least_recently_active() -> None:
    activity = connected()
    for number in range(MAX_CONVERSATIONS + 10):
        activity.apply(phase(1, "idle", conversation=f"c{number}"), at(number))
    activity.apply(phase(2, "idle", conversation="c10"), at(100))
    known = activity.conversations
    assert len(known) == MAX_CONVERSATIONS
    assert "c0" not in known
    assert known[-1] == "c10"


def test_the_inbox_is_bounded_keeping_the_oldest() -> None:
    activity = connected()
    for number in range(MAX_ITEMS + 5):
        activity.apply(confirmation(f"r{number}"), at(number))
    listed = PendingItem("late", "c1", InteractionKind.CONFIRMATION)
    activity.reconcile(PendingList((listed,), complete=False), at(999))
    assert len(activity.inbox) == MAX_ITEMS
    assert activity.inbox[-1].request_id == f"r{MAX_ITEMS - 1}"
    activity.apply(Resolved("r0", "c1", "approved", "confirmation"), at(1000))
    activity.apply(confirmation("r0-again"), at(1001))
    assert activity.inbox[-1].request_id == "r0-again"
