"""How fleet entries look: table rows, detail facts, status symbols and ages.

One home for presentation, shared by the main screen and the command line, so a status reads the
same everywhere. Symbols differ per bucket, so statuses stay readable with NO_COLOR.
"""

from __future__ import annotations

from datetime import datetime

from rich.text import Text
from textual.theme import Theme

from services.fleet import TMUX_SESSION, Assistant, session_status
from services.status import Bucket, bucket
from services.tmux import TmuxSession
from widgets.keyed_table import Row

ASSISTANT_COLUMNS = (
    ("NAME", "name"),
    ("KIND", "kind"),
    ("WHERE", "where"),
    ("STATUS", "status"),
    ("WINDOWS", "windows"),
    ("CLIENTS", "clients"),
    ("CREATED", "created"),
    ("ACTIVITY", "activity"),
)

SYMBOLS = {Bucket.GOOD: "●", Bucket.WARN: "▲", Bucket.BAD: "✖", Bucket.ASLEEP: "◌"}


def bucket_styles(theme: Theme) -> dict[Bucket, str]:
    return {
        Bucket.GOOD: theme.success or "green",
        Bucket.WARN: theme.warning or "yellow",
        Bucket.BAD: theme.error or "red",
        Bucket.ASLEEP: theme.secondary or "blue",
    }


def format_age(then: datetime, now: datetime) -> str:
    """A short age: seconds while recent, then minutes, hours, days (always rounded down)."""
    seconds = max(0, int((now - then).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def status_text(status: str, styles: dict[Bucket, str]) -> Text:
    kind = bucket(status)
    return Text(f"{SYMBOLS[kind]} {status}", style=styles[kind])


def session_key(assistant: Assistant, session: TmuxSession) -> str:
    return f"{assistant.key}/session:{session.id}"


def assistant_row(assistant: Assistant, styles: dict[Bucket, str]) -> Row:
    blank = Text("")
    return Row(
        assistant.key,
        (
            Text(assistant.name, style="bold"),
            Text(assistant.kind),
            Text(assistant.where),
            status_text(assistant.status, styles),
            blank,
            blank,
            blank,
            blank,
        ),
    )


def session_row(
    assistant: Assistant, session: TmuxSession, last: bool, now: datetime, styles: dict[Bucket, str]
) -> Row:
    return Row(
        session_key(assistant, session),
        (
            Text(f"{'└' if last else '├'} {session.name}"),
            Text(TMUX_SESSION, style="dim"),
            Text(assistant.where, style="dim"),
            status_text(session_status(session), styles),
            Text(str(session.windows), justify="right"),
            Text(str(session.attached), justify="right"),
            Text(format_age(session.created, now), justify="right"),
            Text(format_age(session.activity, now), justify="right"),
        ),
    )


def fleet_rows(
    shown: list[tuple[Assistant, tuple[TmuxSession, ...]]],
    now: datetime,
    styles: dict[Bucket, str],
) -> list[Row]:
    rows: list[Row] = []
    for assistant, sessions in shown:
        rows.append(assistant_row(assistant, styles))
        rows.extend(
            session_row(assistant, session, index == len(sessions) - 1, now, styles)
            for index, session in enumerate(sessions)
        )
    return rows


def assistant_facts(
    assistant: Assistant, styles: dict[Bucket, str]
) -> list[tuple[str, str | Text]]:
    facts: list[tuple[str, str | Text]] = [
        ("kind", assistant.kind),
        ("where", assistant.where),
        ("status", status_text(assistant.status, styles)),
    ]
    if assistant.detail:
        facts.append(("detail", assistant.detail))
    facts.extend(assistant.facts)
    return facts


def session_facts(
    assistant: Assistant,
    session: TmuxSession,
    attach_command: str,
    now: datetime,
    styles: dict[Bucket, str],
) -> list[tuple[str, str | Text]]:
    def moment(when: datetime) -> str:
        local = when.astimezone().strftime("%Y-%m-%d %H:%M:%S")
        return f"{local} ({format_age(when, now)} ago)"

    return [
        ("kind", TMUX_SESSION),
        ("on", f"{assistant.name} ({assistant.where})"),
        ("status", status_text(session_status(session), styles)),
        ("session id", session.id),
        ("windows", str(session.windows)),
        ("clients", str(session.attached)),
        ("created", moment(session.created)),
        ("activity", moment(session.activity)),
        ("attach", attach_command),
    ]
