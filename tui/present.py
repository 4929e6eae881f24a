"""How fleet entries look: table rows, detail facts, status symbols and ages.

One home for presentation, shared by the main screen and the command line, so a status reads the
same everywhere. Symbols differ per bucket, so statuses stay readable with NO_COLOR.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from rich.text import Text
from textual.color import Color
from textual.theme import Theme

from services.activity.model import Activity, ActivityState, TimelineEntry, session_key
from services.core.memo import Memo
from services.core.safe_text import printable
from services.fleet.model import TMUX_SESSION, Assistant, session_status
from services.health.status import Bucket, bucket
from services.jobs.record import Job, JobKind, JobState
from services.terminal.tmux import TmuxSession
from tui.formats import (
    activity_line,
    format_age,
    format_bytes,
    format_duration,
    job_eta,
    job_progress,
    job_result,
)
from widgets.keyed_table import Cell, Column, Row

ACTIVITY_WIDTH = 36
ASSISTANT_COLUMNS = (
    Column("NAME", "name", max_width=28),
    Column("KIND", "kind", max_width=13, priority=6),
    Column("WHERE", "where", max_width=18, priority=5),
    Column("STATUS", "status", max_width=18),
    Column("ACTIVITY", "activity", max_width=ACTIVITY_WIDTH, priority=8),
    Column("HEALTH", "health", max_width=18, priority=7),
    Column("LATENCY", "latency", priority=3),
    Column("VERSION", "version", max_width=12, priority=1),
    Column("SESSIONS", "sessions", priority=4),
    Column("SEEN", "last_seen", priority=2),
)
"""Name and status always show, each cut to its column; the others give way on a narrow screen,
version first, health and then activity last."""

SYMBOLS = {Bucket.GOOD: "●", Bucket.WARN: "▲", Bucket.BAD: "✖", Bucket.ASLEEP: "◌"}
FLAPPING = "↯"
SPARKS = "▁▂▃▄▅▆▇█"
NO_ANSWER = "·"
ACTIVE_MARK = "*"


MIN_CONTRAST = 4.5
"""WCAG AA for text: every status colour reaches it on every background a status is drawn on."""
STATUS_BACKGROUNDS = ("surface", "surface-lighten-1", "background")
"""Theme variables under a status: the tables and their odd rows, the detail panel. A table's
cursor row is drawn in the cursor's own colours."""

_styles: dict[tuple[str, bool], dict[Bucket, str]] = {}


def bucket_styles(theme: Theme) -> dict[Bucket, str]:
    """The colour of each status bucket in `theme`: the theme's own (success, warning, error,
    secondary), made lighter or darker where it would not reach MIN_CONTRAST; ANSI themes'
    colours are left to the terminal's palette, made for its own background. The same dict
    for the same theme (rows are cached on it)."""
    key = (theme.name, theme.dark)
    if key not in _styles:
        wanted = {
            Bucket.GOOD: theme.success or "green",
            Bucket.WARN: theme.warning or "yellow",
            Bucket.BAD: theme.error or "red",
            Bucket.ASLEEP: theme.secondary or "blue",
        }
        variables = theme.to_color_system().generate()
        backgrounds = [Color.parse(variables[name]) for name in STATUS_BACKGROUNDS]
        if any(colour.ansi is not None or colour.a < 1 for colour in backgrounds):
            # Rich's name for an ANSI colour (`color(2)`): it cannot parse `ansi_green`.
            _styles[key] = {
                name: Color.parse(colour).rich_color.name for name, colour in wanted.items()
            }
        else:
            _styles[key] = {
                name: readable(Color.parse(colour), backgrounds, theme.dark).hex
                for name, colour in wanted.items()
            }
    return _styles[key]


def readable(colour: Color, backgrounds: Sequence[Color], dark: bool) -> Color:
    """`colour`, lightened (dark theme) or darkened (light theme) in small steps until it
    reaches MIN_CONTRAST on every one of `backgrounds`."""
    for step in range(41):
        amount = step / 40
        candidate = colour.lighten(amount) if dark else colour.darken(amount)
        if all(contrast(candidate, background) >= MIN_CONTRAST for background in backgrounds):
            return candidate
    return Color(255, 255, 255) if dark else Color(0, 0, 0)


def contrast(first: Color, second: Color) -> float:
    """The WCAG 2 contrast ratio of two opaque colours, from 1 to 21."""
    lighter, darker = sorted((_luminance(first), _luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def _luminance(colour: Color) -> float:
    def linear(channel: int) -> float:
        value = channel / 255
        return value / 12.92 if value <= 0.03928 else ((value + 0.055) / 1.055) ** 2.4

    red, green, blue = colour.rgb
    return 0.2126 * linear(red) + 0.7152 * linear(green) + 0.0722 * linear(blue)


ACTIVITY_BUCKETS = {
    ActivityState.NEEDS_YOU: Bucket.WARN,
    ActivityState.ERRORED: Bucket.BAD,
    ActivityState.WORKING: Bucket.GOOD,
    ActivityState.STOPPED: Bucket.ASLEEP,
}
"""The colour of each activity state that has one (an agent that ended is drawn as a sleeping
assistant is); idle is plain and unknown dim. The symbols (`ActivityState.symbol`) tell them
apart without colour."""


def activity_text(
    activity: Activity | None,
    now: datetime,
    styles: dict[Bucket, str],
    width: int | None = None,
) -> Text:
    """`activity_line` in its state's colour, bold when it needs you."""
    if activity is None:
        return Text("")
    state = activity.state
    kind = ACTIVITY_BUCKETS.get(state)
    style = styles[kind] if kind else "dim" if state is ActivityState.UNKNOWN else ""
    if state is ActivityState.NEEDS_YOU:
        style += " bold"
    return Text(activity_line(activity, now, width), style=style.strip())


def inbox_title(count: int, styles: dict[Bucket, str]) -> Text:
    """The inbox count as the assistants panel shows it, always: `! 3 need you`, or `inbox 0`."""
    if not count:
        return Text("inbox 0")
    verb = "needs" if count == 1 else "need"
    return Text(f"! {count} {verb} you", style=f"bold {styles[Bucket.WARN]}")


def format_latency(latency_ms: float | None) -> str:
    if latency_ms is None:
        return ""
    return f"{latency_ms:.0f} ms" if latency_ms >= 10 else f"{latency_ms:.1f} ms"


def sparkline(latencies: Sequence[float | None]) -> str:
    """One cell per probe, scaled from the lowest to the highest latency; `·` for no answer."""
    answered = [value for value in latencies if value is not None]
    low, high = min(answered, default=0.0), max(answered, default=0.0)
    span = (high - low) or 1.0
    top = len(SPARKS) - 1
    return "".join(
        NO_ANSWER if value is None else SPARKS[round((value - low) / span * top)]
        for value in latencies
    )


def health_text(assistant: Assistant, styles: dict[Bucket, str]) -> Text:
    text = status_text(assistant.health, styles)
    if assistant.flapping:
        text.append(f" {FLAPPING}", style=styles[Bucket.WARN])
    return text


def status_text(status: str, styles: dict[Bucket, str]) -> Text:
    cell = status_cell(status, styles)
    return Text(cell.plain, style=cell.style)


def status_cell(status: str, styles: dict[Bucket, str]) -> Cell:
    """A status with its bucket's symbol, in its bucket's colour."""
    if not status:
        return EMPTY
    kind = bucket(status)
    return Cell(f"{SYMBOLS[kind]} {status}", styles[kind])


EMPTY = Cell("")


def assistant_row(assistant: Assistant, now: datetime, styles: dict[Bucket, str]) -> Row:
    mark = f"{ACTIVE_MARK} " if assistant.active else "  "
    activity = assistant.activity
    return Row(
        assistant.key,
        (
            Cell(f"{mark}{assistant.name}", "bold"),
            Cell(assistant.kind),
            Cell(assistant.where),
            status_cell(assistant.status, styles),
            EMPTY if activity is None else activity_text(activity, now, styles, ACTIVITY_WIDTH),
            health_text(assistant, styles)
            if assistant.flapping
            else status_cell(assistant.health, styles),
            Cell(format_latency(assistant.latency_ms), justify="right"),
            Cell(assistant.version or ""),
            Cell(str(len(assistant.sessions)) if assistant.sessions else "", justify="right"),
            Cell(format_age(assistant.last_seen, now) if assistant.last_seen else ""),
        ),
    )


def session_row(
    assistant: Assistant, session: TmuxSession, last: bool, now: datetime, styles: dict[Bucket, str]
) -> Row:
    dim = "dim"
    return Row(
        session_key(assistant.key, session.id),
        (
            Cell(f"  {'└' if last else '├'} {printable(session.name)}"),
            Cell(TMUX_SESSION, dim),
            Cell(assistant.where, dim),
            status_cell(session_status(session), styles),
            activity_text(assistant.session_activity.get(session.id), now, styles, ACTIVITY_WIDTH),
            EMPTY,
            EMPTY,
            EMPTY,
            Cell(f"{session.windows} win", dim, "right"),
            Cell(format_age(session.activity, now)),
        ),
    )


class FleetRows:
    """Table rows for the shown fleet, remade only for an assistant that changed (a new
    object from the FleetBuilder) or whose age on screen moved on; the others are the same Row
    objects as last time, which the table skips without comparing a cell. Rows of assistants a
    filter hides are kept, so clearing the filter does not remake them."""

    def __init__(self) -> None:
        self._memo: Memo[Row] = Memo()

    def rows(
        self,
        shown: list[tuple[Assistant, tuple[TmuxSession, ...]]],
        now: datetime,
        styles: dict[Bucket, str],
    ) -> list[Row]:
        rows: list[Row] = []
        for assistant, sessions in shown:
            rows.append(self._assistant_row(assistant, now, styles))
            for index, session in enumerate(sessions):
                last = index == len(sessions) - 1
                agent = assistant.session_activity.get(session.id)
                busy_for = format_age(agent.since, now) if agent else ""
                rows.append(
                    self._memo.get(
                        session_key(assistant.key, session.id),
                        (
                            assistant,
                            session,
                            last,
                            format_age(session.activity, now),
                            busy_for,
                            styles,
                        ),
                        lambda a=assistant, s=session, last=last: session_row(  # type: ignore[misc]
                            a, s, last, now, styles
                        ),
                    )
                )
        return rows

    def forget_all_but(self, fleet: Sequence[Assistant]) -> None:
        """Drop the rows of assistants and sessions that are gone."""
        self._memo.keep_only(
            [a.key for a in fleet] + [session_key(a.key, s.id) for a in fleet for s in a.sessions]
        )

    def changed(
        self, assistants: list[Assistant], now: datetime, styles: dict[Bucket, str]
    ) -> list[Row]:
        """The rows of these assistants alone, the others kept for the next full pass."""
        return [self._assistant_row(assistant, now, styles) for assistant in assistants]

    def _assistant_row(self, assistant: Assistant, now: datetime, styles: dict[Bucket, str]) -> Row:
        seen = format_age(assistant.last_seen, now) if assistant.last_seen else ""
        activity = assistant.activity
        busy_for = format_age(activity.since, now) if activity else ""
        return self._memo.get(
            assistant.key,
            (assistant, seen, busy_for, styles),
            lambda: assistant_row(assistant, now, styles),
        )


def moment(when: datetime, now: datetime) -> str:
    """A local date and time with its age: `2026-03-14 09:27:30 (2m ago)`."""
    local = when.astimezone().strftime("%Y-%m-%d %H:%M:%S")
    return f"{local} ({format_age(when, now)} ago)"


def assistant_facts(
    assistant: Assistant,
    now: datetime,
    styles: dict[Bucket, str],
    timeline: Sequence[TimelineEntry] = (),
) -> list[tuple[str, str | Text]]:
    """Everything about an assistant for the detail panel, its activity's recent events
    (`timeline`, oldest first) after its activity."""
    facts: list[tuple[str, str | Text]] = [
        ("id", assistant.id),
        ("kind", assistant.kind),
        ("where", assistant.where or "—"),
        ("status", status_text(assistant.status, styles)),
    ]
    if assistant.activity is not None:
        facts.extend(activity_facts(assistant.activity, timeline, now, styles))
    if assistant.health:
        facts.append(("health", health_text(assistant, styles)))
    if assistant.flapping:
        facts.append(("flapping", "its health changed 3 or more times in 2 minutes"))
    if assistant.detail:
        facts.append(("detail", assistant.detail))
    if assistant.latency_ms is not None:
        facts.append(("latency", format_latency(assistant.latency_ms)))
    if assistant.latencies:
        answered = [v for v in assistant.latencies if v is not None]
        spread = f"  {min(answered):.0f} to {max(answered):.0f} ms" if answered else ""
        facts.append((f"last {len(assistant.latencies)}", sparkline(assistant.latencies) + spread))
    if assistant.failures:
        facts.append(("failures", f"{assistant.failures} unanswered in a row (probing less often)"))
    if assistant.last_error:
        facts.append(("last error", assistant.last_error))
    if assistant.version:
        facts.append(("version", assistant.version))
    if assistant.last_seen:
        facts.append(("last seen", f"{format_age(assistant.last_seen, now)} ago"))
    if assistant.active:
        facts.append(("active", "yes: the default target of roost and vellum commands"))
    facts.append(("source", assistant.source.value))
    facts.extend(assistant.facts)
    return facts


def activity_facts(
    activity: Activity,
    timeline: Sequence[TimelineEntry],
    now: datetime,
    styles: dict[Bucket, str],
) -> list[tuple[str, str | Text]]:
    """The activity, how roost knows it, since when, then the last events (time, what)."""
    facts: list[tuple[str, str | Text]] = [
        ("activity", activity_text(activity, now, styles)),
        ("evidence", activity.evidence),
        ("since", moment(activity.since, now)),
    ]
    for entry in timeline:
        facts.append((entry.at.astimezone().strftime("%H:%M:%S"), Text(entry.text, style="dim")))
    return facts


def session_facts(
    assistant: Assistant,
    session: TmuxSession,
    attach_command: str,
    now: datetime,
    styles: dict[Bucket, str],
) -> list[tuple[str, str | Text]]:
    """A tmux session's facts, with what the coding agent in it is doing and how roost knows."""
    agent = assistant.session_activity.get(session.id)
    doing = activity_facts(agent, (), now, styles) if agent else []
    return [
        ("kind", TMUX_SESSION),
        ("on", f"{assistant.name} ({assistant.where})"),
        ("status", status_text(session_status(session), styles)),
        ("session id", printable(session.id)),
        ("windows", str(session.windows)),
        ("clients", str(session.attached)),
        ("created", moment(session.created, now)),
        ("last output", moment(session.activity, now)),
        *doing,
        ("attach", attach_command),
    ]


# Jobs --------------------------------------------------------------------------------------

_JOB_BUCKETS = {
    JobState.COMPLETE: Bucket.GOOD,
    JobState.FAILED: Bucket.BAD,
    JobState.LOST: Bucket.BAD,
}


def job_style(job: Job, styles: dict[Bucket, str]) -> str:
    """A finished job's colour: a status colour for how it ended, dim when cancelled."""
    if job.state is JobState.CANCELLED:
        return "dim"
    return styles[_JOB_BUCKETS[job.state]] if job.state in _JOB_BUCKETS else ""


def job_row(job: Job, now: datetime, tick: int, styles: dict[Bucket, str]) -> Row:
    end = job.finished_at or now
    style = job_style(job, styles)
    return Row(
        job.id,
        (
            Text(job.id),
            Text(job.assistant_name),
            Text(job.kind.value),
            Text(job.state.value, style=style),
            Text(job_progress(job, tick=tick), style=style),
            Text(format_duration((end - job.started_at).total_seconds())),
            Text(job_eta(job, now)),
            Text(job_result(job), style=styles[Bucket.BAD] if job.error else ""),
        ),
    )


def _restore_facts(job: Job) -> list[tuple[str, str | Text]]:
    """A restore's audit: the file's check, the preflight report, the safety backup, the
    outcome."""
    facts: list[tuple[str, str | Text]] = []
    if job.verification:
        facts.append(("file", job.verification))
    if job.preflight is not None:
        verdict = "can import" if job.preflight.can_import else "cannot import"
        facts.append(("preflight", f"{verdict}: {job.preflight.summary()}"))
        for problem in (*job.preflight.errors, *job.preflight.conflicts):
            facts.append(("", Text(str(problem), style="red")))
    if job.safety_backup is not None:
        facts.append(("safety backup", str(job.safety_backup)))
    if job.outcome is not None:
        facts.append(("imported", job.outcome.summary()))
        facts += [("warning", warning) for warning in job.outcome.warnings]
    return facts


def job_facts(job: Job, now: datetime, styles: dict[Bucket, str]) -> list[tuple[str, str | Text]]:
    """Everything about a job for the detail panel: the last status polls included."""
    end = job.finished_at or now
    facts: list[tuple[str, str | Text]] = [
        ("assistant", job.assistant_name),
        ("type", job.kind.value),
        ("state", Text(job.state.value, style=job_style(job, styles))),
        ("progress", job_progress(job)),
        ("started", job.started_at.astimezone().strftime("%Y-%m-%d %H:%M:%S")),
        ("elapsed", format_duration((end - job.started_at).total_seconds())),
        ("from" if job.kind is JobKind.RESTORE else "to", str(job.result_path or job.destination)),
    ]
    facts += _restore_facts(job)
    if job.size is not None:
        facts.append(("size", f"{job.size} bytes ({format_bytes(job.size)})"))
    if job.sha256:
        checked = "verified" if job.verified else "not verified: nothing to check against"
        facts.append(("sha256", f"{job.sha256} ({checked})"))
    if job.runtime_job_id:
        facts.append(("runtime job", job.runtime_job_id))
    if job.corrupt_path:
        facts.append(("kept", f"{job.corrupt_path} (failed the check)"))
    if job.error:
        facts.append(("error", Text(job.error, style=styles[Bucket.BAD])))
    if job.note:
        facts.append(("note", job.note))
    for poll in job.polls:
        facts.append((poll.at.astimezone().strftime("%H:%M:%S"), Text(poll.outcome, style="dim")))
    return facts
