"""Plain-text formats shared by the command line and the TUI (no Textual here: `roost backup`
and friends load fast)."""

from __future__ import annotations

from datetime import datetime

from services.activity.model import Activity
from services.jobs.record import Job, JobKind

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


def format_bytes(size: float) -> str:
    units = ("B", "KiB", "MiB", "GiB")
    power = 0
    while size >= 1024 and power < len(units) - 1:
        size /= 1024
        power += 1
    return f"{size:.0f} B" if power == 0 else f"{size:.1f} {units[power]}"


def job_progress(job: Job, width: int = 12, tick: int = 0) -> str:
    """A bar when the size is known, a spinner while it is not, the outcome once finished."""
    if job.state.finished:
        return job.state.value
    total = job.bytes_total or job.expected_size
    if total:
        done = min(job.bytes_done / total, 1.0)
        filled = round(done * width)
        return f"{'█' * filled}{'░' * (width - filled)} {done:4.0%}"
    if job.bytes_done:
        return f"{SPINNER[tick % len(SPINNER)]} {format_bytes(job.bytes_done)}"
    return f"{SPINNER[tick % len(SPINNER)]} {job.state.value}"


def job_eta(job: Job, now: datetime) -> str:
    """Seconds left at the average rate so far, when the size is known."""
    total = job.bytes_total or job.expected_size
    elapsed = (now - job.started_at).total_seconds()
    if job.state.finished or not total or not job.bytes_done or elapsed <= 0:
        return ""
    left = (total - job.bytes_done) / (job.bytes_done / elapsed)
    return format_duration(left)


def format_duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def job_result(job: Job) -> str:
    if job.kind is JobKind.RESTORE:
        said = job.error or (job.outcome.summary() if job.outcome else None) or job.note
        return f"from {job.destination}" + (f": {said}" if said else "")
    if job.result_path is not None and job.size is not None:
        return f"{job.result_path} ({format_bytes(job.size)})"
    return job.error or job.note or ""


def format_age(then: datetime, now: datetime) -> str:
    """A short age: seconds while recent, then minutes, hours, days (always rounded down)."""
    seconds = max(0, int((now - then).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def activity_line(activity: Activity | None, now: datetime, width: int | None = None) -> str:
    """`! needs you · bash (high risk) · 3m`: symbol, state, what, and for how long (empty
    when roost follows no stream for the assistant). Within `width` the detail is cut, never
    the state or the age."""
    if activity is None:
        return ""
    state, age = f"{activity.state.symbol} {activity.state}", format_age(activity.since, now)
    detail = activity.detail
    if detail and width is not None:
        room = width - len(state) - len(age) - 6  # two " · " separators
        if len(detail) > room:
            detail = detail[: max(0, room - 1)] + "…" if room > 1 else ""
    return " · ".join(filter(None, (state, detail, age)))
