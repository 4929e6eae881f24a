"""The fleet model the UI and the command line show: assistants and their terminal sessions.

For now the fleet is this machine and the sessions of its tmux server; registry sources (the
Vellum lockfile, Docker engines, the platform) add assistants of other kinds to the same model.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from services.tmux import TmuxListing, TmuxServer, TmuxSession, TmuxState

LOCAL_HOST = "local host"
TMUX_SESSION = "tmux session"
THIS_MACHINE = "this machine"


@dataclass(frozen=True)
class Assistant:
    """One row of the fleet, with the terminal sessions shown under it."""

    key: str
    name: str
    kind: str
    where: str
    status: str
    detail: str = ""
    sessions: tuple[TmuxSession, ...] = ()
    facts: tuple[tuple[str, str], ...] = ()
    """Further (label, value) pairs for the detail panel, in display order."""


def session_status(session: TmuxSession) -> str:
    return "attached" if session.attached else "detached"


def this_machine(
    hostname: str, server: TmuxServer, listing: TmuxListing, version: str | None
) -> Assistant:
    """This machine as a fleet entry: its tmux server's state and sessions."""
    if listing.state is TmuxState.RUNNING:
        count = len(listing.sessions)
        status = "running"
        detail = f"{count} tmux session{'' if count == 1 else 's'}"
    else:
        status, detail = listing.state.value, listing.detail
    return Assistant(
        key="host:this-machine",
        name=THIS_MACHINE,
        kind=LOCAL_HOST,
        where=hostname,
        status=status,
        detail=detail,
        sessions=listing.sessions,
        facts=(("tmux", version or "not found"), ("server", server.describe())),
    )


def filter_fleet(
    assistants: Iterable[Assistant], query: str
) -> list[tuple[Assistant, tuple[TmuxSession, ...]]]:
    """The assistants and sessions that match `query` (case-insensitive words, all must match).

    An assistant that matches keeps all its sessions; one that does not is still shown, for
    context, when any of its sessions match.
    """
    words = query.lower().split()
    shown: list[tuple[Assistant, tuple[TmuxSession, ...]]] = []
    for assistant in assistants:
        own = " ".join((assistant.name, assistant.kind, assistant.where, assistant.status))
        if all(word in own.lower() for word in words):
            shown.append((assistant, assistant.sessions))
            continue
        sessions = tuple(
            session
            for session in assistant.sessions
            if all(
                word in f"{session.name} {TMUX_SESSION} {session_status(session)}".lower()
                for word in words
            )
        )
        if sessions:
            shown.append((assistant, sessions))
    return shown
