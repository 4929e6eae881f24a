"""A backup with the repair on connect that the native Vellum client does (what to export and
how to wake the assistant are the application layer's: `services.roost`).

When the export of a docker or local assistant fails because nothing answers at its address
(it is asleep), the assistant is woken once and backed up once more, as a new job whose note
says what was done; a failure of that second attempt is reported, never repaired again. Other
failures (401 after a fresh read of the token, 403, a corrupt archive...) are not repairs.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncGenerator
from pathlib import Path

from services.jobs.exports import Exporter, ExportTarget
from services.jobs.repair import Repair
from services.jobs.store import Job, JobState


async def backup_with_repair(
    exporter: Exporter, target: ExportTarget, destination: Path, wake: Repair | None
) -> AsyncGenerator[Job, None]:
    """The export's snapshots; after a failure because nothing answered, and only then, wake
    the assistant once and yield a second export's snapshots (to the same destination: the
    first left nothing there), each noting what was done."""
    last: Job | None = None
    async with contextlib.aclosing(exporter.backup(target, destination)) as jobs:
        async for last in jobs:
            yield last
    if wake is None or last is None or last.state is not JobState.FAILED or not last.unreachable:
        return
    report = await wake()
    if not report.ok:
        yield dataclasses.replace(last, note=f"not repaired: {report.summary}")
        return
    note = f"the first attempt found nothing listening; {report.summary}, retried"
    async with contextlib.aclosing(exporter.backup(target, destination)) as jobs:
        async for job in jobs:
            yield dataclasses.replace(job, note="; ".join(filter(None, (note, job.note))))
