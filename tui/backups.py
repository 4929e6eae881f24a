"""The console's backup library: the backups screen opened on an assistant, and the work it asks
for (reading the library, checking files, deleting one), each in a worker so the screen stays
live while a large file is hashed."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from services.core.errors import RoostError
from services.core.safe_text import printable
from services.fleet.model import Assistant
from services.jobs.library import BackupCheck, Hashing, Verification
from tui.formats import format_bytes
from tui.screens.backups import BackupsScreen

if TYPE_CHECKING:
    from tui.app import RoostApp

log = logging.getLogger(__name__)

PROGRESS_SECONDS = 0.1
"""A check's progress line is drawn at most this often."""


class Backups:
    """Opens the backups screen and runs what it asks (one per console)."""

    def __init__(self, app: RoostApp) -> None:
        self._app = app
        self._roost = app.roost

    def open(self, assistant: Assistant) -> None:
        directory = self._roost.library.directory
        screen = BackupsScreen(assistant.name, directory, self._app.context.clock)
        self._app.push_screen(screen)
        self._load(screen)

    def changed(self, name: str) -> None:
        """`name`'s backups changed (a backup saved, retention ran): read them again if they
        are on screen."""
        screen = self._app.screen
        if isinstance(screen, BackupsScreen) and screen.assistant == name:
            self._load(screen)

    def _load(self, screen: BackupsScreen) -> None:
        self._app.background.run(
            self._read(screen), group="backups", name="backups", exclusive=True
        )

    async def _read(self, screen: BackupsScreen) -> None:
        try:
            entries = await asyncio.to_thread(self._roost.backups, screen.assistant)
        except RoostError as error:
            self._app.notify(str(error), title="Backups", severity="error", timeout=15)
            return
        screen.entries = tuple(entries)

    # -- checking ----------------------------------------------------------------------------

    def verify(self, screen: BackupsScreen, paths: tuple[Path, ...]) -> None:
        """Check `paths` one after the other (a newer request replaces one still running)."""
        self._app.background.run(
            self._verify(screen, paths), group="backup-checks", name="verify", exclusive=True
        )

    async def _verify(self, screen: BackupsScreen, paths: tuple[Path, ...]) -> None:
        checks: list[BackupCheck] = []
        for number, path in enumerate(paths, start=1):
            label = f"{number}/{len(paths)} " if len(paths) > 1 else ""
            try:
                check = await self._check(screen, path, label)
            except RoostError as error:
                screen.show_status(f"{label}cannot verify: {error}")
                self._app.notify(str(error), title="Verify", severity="error", timeout=15)
                continue
            checks.append(check)
        self._load(screen)
        bad = [c for c in checks if c.verification in (Verification.CHANGED, Verification.MISSING)]
        summary = _summary(checks)
        screen.show_status(summary)
        if bad:
            lines = "\n".join(f"{c.verification}: {printable(str(c.path))}" for c in bad)
            self._app.notify(f"{summary}\n{lines}", title="Verify", severity="error", timeout=30)
        elif checks:
            self._app.notify(summary, title="Verify")

    async def _check(self, screen: BackupsScreen, path: Path, label: str) -> BackupCheck:
        """Hash one file in a thread, a chunk at a time, drawing its progress now and then."""
        reports: Iterator[Hashing] = self._roost.verify_backup(path)
        drawn = 0.0
        while (report := await asyncio.to_thread(next, reports, None)) is not None:
            if report.check is not None:
                return report.check
            if time.monotonic() - drawn >= PROGRESS_SECONDS:
                drawn = time.monotonic()
                share = report.done / report.total if report.total else 1.0
                screen.show_status(
                    f"{label}verifying {path.name}: {share:.0%} ({format_bytes(report.done)}"
                    f" of {format_bytes(report.total)})"
                )
        raise AssertionError("a check ends with its verdict")  # pragma: no cover

    # -- deleting ----------------------------------------------------------------------------

    def delete(self, screen: BackupsScreen, path: Path) -> None:
        self._app.background.run(self._delete(screen, path), group="backup-deletes", name="delete")

    async def _delete(self, screen: BackupsScreen, path: Path) -> None:
        try:
            await asyncio.to_thread(self._roost.delete_backup, path)
        except RoostError as error:
            self._app.notify(str(error), title="Delete", severity="error", timeout=15)
            return
        log.info("backup %s deleted", path)
        self._app.events.add(f"{screen.assistant}: backup deleted: {printable(str(path))}")
        self._app.notify(f"{printable(str(path))} deleted.", title="Delete")
        self._load(screen)


def _summary(checks: list[BackupCheck]) -> str:
    """`3 verified, 1 changed`: how a round of checks went."""
    counts = Counter(str(check.verification) for check in checks)
    return ", ".join(f"{n} {state}" for state, n in counts.items()) or "nothing checked"
